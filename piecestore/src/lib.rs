//! Where piece bytes live, and the index of what is where.
//!
//! - [`PieceStore`]: put a piece from a stream (its commP is computed in the same pass and
//!   checked against what the deal promised), get it back whole or by byte range, stat, has,
//!   delete, list. [`FsPieceStore`] keeps one file per piece CID and never exposes a partial
//!   piece: bytes go to a temporary file on the same filesystem, are fsynced and renamed.
//! - [`CommPFollower`]: hashes a file that is being filled (possibly out of order, by several
//!   connections) by following its contiguous prefix on another thread, so receiving and
//!   hashing overlap. Data transfer and [`FsPieceStore::put`] are built on it.
//! - [`CarIndexer`]: a push parser that finds every block of a CARv1 payload (multihash,
//!   offset, size) from chunks of any size, in constant memory; [`CarWriter`] writes one.
//! - [`unixfs`]: a file to a UnixFS DAG in a CAR with the root CIDs Lotus and Kubo give,
//!   and back, verifying every block; [`directory`] does the same for directory trees
//!   (HAMT-sharded as Kubo shards them, [`hamt`]); [`dagpb`] holds the node encoding.
//! - [`PieceIndex`]: SQLite tables of piece → deals (miner, deal, sector, offset, length),
//!   payload root → pieces, and each piece's block index, so retrieval can serve any block
//!   without scanning.
//! - [`S3PieceStore`]: pieces in an S3-compatible bucket (AWS, MinIO, Ceph RGW, Aliyun OSS),
//!   uploaded in parts while commP is computed, read back by ranged GETs.
//! - [`MultiPieceStore`]: several stores as one: writes go to the store a rule picks
//!   (priority, then free space), reads to whichever holds the piece.
//! - [`read_bytes_at`], [`write_frames_at`], [`start_writeback`]: positional file I/O without
//!   extra copies, received bytes handed to the disk as they arrive.
//! - [`metered`]: a wrapper timing every call of any piece store, for the node's metrics.
//!
//! A piece's *payload* is the bytes the client sent (usually a CAR); its padded size is the
//! deal's piece size. Piece CIDs are v1 (`baga6ea4sea…`).

mod car;
pub mod dagpb;
pub mod directory;
mod error;
mod file_io;
mod follower;
mod fs;
pub mod hamt;
mod index;
pub mod metered;
mod multi;
pub mod s3;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod unixfs;

pub use car::{
    BlockEntry, CarError, CarIndexer, CarWriter, MAX_CAR_HEADER, MAX_SECTION, section_head,
};
pub use error::PieceStoreError;
pub use follower::{CarBlocks, CommPFollower};
pub use fs::FsPieceStore;
pub use index::{
    DealRecord, IndexReport, PieceIndex, PieceIndexer, PieceRecord, SqlitePieceIndex, index_blocks,
    index_payload,
};
pub use multi::{Candidate, MultiPieceStore, StoreEntry, choose_store};
pub use s3::{S3Config, S3PieceStore};
pub use store::{
    ByteRange, ExpectedPiece, MAX_READ_AT, PieceMeta, PieceReader, PieceStore, StagedPiece,
    check_piece_cid, check_read_at, read_exactly,
};

pub use file_io::{read_bytes_at, start_writeback, write_frames_at};

pub use commp::PaddedPieceSize;
pub use market_core::Cid;
