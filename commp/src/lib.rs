//! Filecoin piece commitments at hardware speed.
//!
//! A *piece* is a payload zero-padded to `127 · 2^k` bytes and fr32-padded to `128 · 2^k`;
//! its commitment (commP) is the root of a binary SHA-256 tree over the padded bytes, with
//! every node's two top bits cleared so it fits the BLS12-381 scalar field. This crate
//! computes it streaming, in constant memory, with SHA-NI kernels that hash several nodes
//! of a level at once (portable fallback with identical output), and provides what
//! surrounds it on a market:
//!
//! - [`PaddedPieceSize`] / [`UnpaddedPieceSize`]: checked size newtypes ([`size`]).
//! - [`fr32`]: padding and unpadding of whole 127/128-byte blocks.
//! - [`CommP`]: the streaming hasher (`update`, [`std::io::Write`], async readers and
//!   streams), finishing into a [`PieceInfo`]; [`commp`] and [`commp_reader`] for one call.
//! - Piece CIDs: v1 ([`Commitment::to_cid_v1`]), v2 ([`PieceCidV2`], FRC-0069) and either
//!   ([`PieceCid`]).
//! - [`zero_commitment`]: the commitments of all-zero pieces.
//! - [`commd`]: unsealed sector commitments from piece lists.
//!
//! ```
//! let piece = commp::commp(&[42u8; 3000])?;
//! assert_eq!(piece.padded_size.get(), 4096);
//! println!("{} {}", piece.cid_v1(), piece.cid_v2());
//! # Ok::<(), commp::CommPError>(())
//! ```
//!
//! ## Short payloads
//!
//! By default a payload under 65 bytes ([`MIN_PAYLOAD`]) is refused, as Boost and Curio do
//! (go-fil-commp-hashhash), because go-fil-commcid will not parse a v2 CID for it either.
//! [`ShortPayload::ZeroPad`] computes FRC-0069's definition down to zero bytes instead.

#[cfg(feature = "async")]
mod async_io;
mod cid;
pub mod commd;
mod commitment;
pub mod fr32;
mod hasher;
mod parallel;
mod sha256;
pub mod size;
mod zero;

#[cfg(feature = "async")]
pub use async_io::{commp_async_read, commp_stream};
pub use cid::{
    CidError, FIL_COMMITMENT_UNSEALED, FR32_SHA256_TRUNC254_PADBINTREE, MAX_CID_STR_LEN, PieceCid,
    PieceCidV2, RAW, SHA2_256_TRUNC254_PADDED, parse_cid,
};
pub use commitment::{Commitment, PieceInfo};
pub use hasher::{CommP, CommPError, MIN_PAYLOAD, ShortPayload, commp, commp_reader};
pub use sha256::Backend;
pub use size::{PaddedPieceSize, SizeError, UnpaddedPieceSize};
pub use zero::{zero_commitment, zero_commitments};

/// Re-exported so callers can name the CID type without a direct dependency.
pub use ::cid::Cid;
