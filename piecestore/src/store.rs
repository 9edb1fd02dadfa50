//! The piece store trait and the small types around it.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use cid::Cid;
use commp::{FIL_COMMITMENT_UNSEALED, PaddedPieceSize, SHA2_256_TRUNC254_PADDED};
use tokio::io::AsyncRead;

use crate::PieceStoreError;

/// A stream of piece bytes.
pub type PieceReader = Pin<Box<dyn AsyncRead + Send>>;

/// What is known of a stored piece.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceMeta {
    /// The v1 piece CID.
    pub piece_cid: Cid,
    /// Bytes of payload (what the client sent, before zero and fr32 padding).
    pub payload_size: u64,
    /// Padded piece size (the deal's piece size).
    pub padded_size: PaddedPieceSize,
}

/// What a put must hash to; a mismatch stores nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedPiece {
    /// The v1 piece CID from the deal proposal.
    pub piece_cid: Cid,
    /// The proposal's padded piece size; the payload is zero-padded up to it before hashing.
    pub padded_size: PaddedPieceSize,
}

/// A half-open byte range of a payload, `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// `start..end`.
    pub fn new(start: u64, end: u64) -> Self {
        Self { start, end }
    }

    /// Bytes in the range.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Refuses anything but a v1 piece CID. Stores name files after piece CIDs, so this also keeps
/// a peer-supplied CID from naming any other file.
pub fn check_piece_cid(cid: &Cid) -> Result<(), PieceStoreError> {
    if cid.version() != cid::Version::V1
        || cid.codec() != FIL_COMMITMENT_UNSEALED
        || cid.hash().code() != SHA2_256_TRUNC254_PADDED
        || cid.hash().size() != 32
    {
        return Err(PieceStoreError::InvalidPieceCid(cid.to_string()));
    }
    Ok(())
}

/// Where piece payloads live.
///
/// Implementations differ in where bytes go (a local filesystem, object storage); all of them
/// must make a piece visible only once it is whole and verified.
#[async_trait::async_trait]
pub trait PieceStore: Send + Sync {
    /// Stores the payload read from `data`, computing its commP while writing. With `expect`,
    /// the payload is padded to that size and must hash to that CID, or nothing is stored and
    /// [`PieceStoreError::CommPMismatch`] is returned. Without it the minimal padded size is
    /// used.
    async fn put(
        &self,
        data: PieceReader,
        expect: Option<ExpectedPiece>,
    ) -> Result<PieceMeta, PieceStoreError>;

    /// Takes in a file whose commP the caller already computed (data transfer hashes while it
    /// receives). The file is moved when it can be, copied otherwise.
    async fn put_verified_file(&self, path: &Path, meta: PieceMeta) -> Result<(), PieceStoreError>;

    /// The payload, or `range` of it.
    async fn get(
        &self,
        piece: &Cid,
        range: Option<ByteRange>,
    ) -> Result<PieceReader, PieceStoreError>;

    /// What is stored under `piece`, if anything.
    async fn stat(&self, piece: &Cid) -> Result<Option<PieceMeta>, PieceStoreError>;

    /// Whether `piece` is stored.
    async fn has(&self, piece: &Cid) -> Result<bool, PieceStoreError> {
        Ok(self.stat(piece).await?.is_some())
    }

    /// Removes `piece`; `false` if it was not there.
    async fn delete(&self, piece: &Cid) -> Result<bool, PieceStoreError>;

    /// Every stored piece.
    async fn list(&self) -> Result<Vec<PieceMeta>, PieceStoreError>;

    /// A local file holding the payload, for sealers that read from disk. `None` for remote
    /// backends.
    fn local_path(&self, _piece: &Cid) -> Option<PathBuf> {
        None
    }
}
