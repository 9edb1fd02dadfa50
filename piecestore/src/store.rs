//! The piece store trait and the small types around it.

use std::path::{Path, PathBuf};
use std::pin::Pin;

use bytes::Bytes;
use commp::{FIL_COMMITMENT_UNSEALED, PaddedPieceSize, SHA2_256_TRUNC254_PADDED};
use market_core::Cid;
use tokio::io::{AsyncRead, AsyncReadExt};

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

/// Largest range [`PieceStore::read_at`] reads into one buffer (a CAR section is at most
/// [`crate::MAX_SECTION`]).
pub const MAX_READ_AT: u64 = 64 << 20;

/// Refuses a [`PieceStore::read_at`] range that is reversed or larger than [`MAX_READ_AT`].
pub fn check_read_at(range: ByteRange) -> Result<(), PieceStoreError> {
    if range.start > range.end || range.len() > MAX_READ_AT {
        return Err(PieceStoreError::InvalidSize(format!(
            "read_at of {}..{} (at most {MAX_READ_AT} bytes at once)",
            range.start, range.end
        )));
    }
    Ok(())
}

/// Exactly `len` bytes of `reader` in one buffer; fewer is an `UnexpectedEof` error.
pub async fn read_exactly(mut reader: PieceReader, len: u64) -> Result<Bytes, PieceStoreError> {
    let mut data = Vec::with_capacity(len as usize);
    (&mut reader).take(len).read_to_end(&mut data).await?;
    if data.len() as u64 != len {
        return Err(PieceStoreError::Io(
            std::io::ErrorKind::UnexpectedEof.into(),
        ));
    }
    Ok(Bytes::from(data))
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

    /// Stores a payload whose commP the caller has already verified (data transfer hashes
    /// while it receives). Only its length is checked against `meta`.
    async fn put_verified(&self, data: PieceReader, meta: PieceMeta)
    -> Result<(), PieceStoreError>;

    /// Takes in a verified payload staged on the market node's disk. The default streams it
    /// through [`put_verified`](Self::put_verified) and removes the staged file; a store on
    /// the same filesystem adopts the file instead.
    async fn put_staged(&self, staged: StagedPiece) -> Result<(), PieceStoreError> {
        let data = staged.open().await?;
        self.put_verified(data, staged.meta()).await?;
        staged.discard().await
    }

    /// The payload, or `range` of it.
    async fn get(
        &self,
        piece: &Cid,
        range: Option<ByteRange>,
    ) -> Result<PieceReader, PieceStoreError>;

    /// Exactly the bytes of `range` of the payload, in one buffer: for blocks and other small
    /// ranges read many at a time (CAR retrieval), where a stream per read costs more than
    /// the read. At most [`MAX_READ_AT`] bytes. The default reads [`get`](Self::get);
    /// stores override it with positional reads on cached handles.
    async fn read_at(&self, piece: &Cid, range: ByteRange) -> Result<Bytes, PieceStoreError> {
        check_read_at(range)?;
        read_exactly(self.get(piece, Some(range)).await?, range.len()).await
    }

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

    /// Bytes free for new pieces, if the store knows (a filesystem does; a bucket is
    /// unbounded and says `None`). [`crate::MultiPieceStore`] places writes by it.
    async fn free_space(&self) -> Result<Option<u64>, PieceStoreError> {
        Ok(None)
    }

    /// Where `piece` lives, for operators and logs (a file path, an object URL).
    fn locator(&self, piece: &Cid) -> String;
}

/// A verified payload in a local staging file (a finished data transfer), on its way into a
/// [`PieceStore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedPiece {
    path: PathBuf,
    meta: PieceMeta,
}

impl StagedPiece {
    /// The payload `meta` describes, in the file at `path`.
    pub fn new(path: impl Into<PathBuf>, meta: PieceMeta) -> Self {
        Self {
            path: path.into(),
            meta,
        }
    }

    /// The staging file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the payload hashed to.
    pub fn meta(&self) -> PieceMeta {
        self.meta
    }

    /// Reads the payload.
    pub async fn open(&self) -> Result<PieceReader, PieceStoreError> {
        Ok(Box::pin(tokio::fs::File::open(&self.path).await?))
    }

    /// Removes the staging file (after the store has its own copy).
    pub async fn discard(&self) -> Result<(), PieceStoreError> {
        match tokio::fs::remove_file(&self.path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
