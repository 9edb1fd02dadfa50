//! Getting unsealed bytes from a sealer.

use market_core::Cid;
use piecestore::{ByteRange, DealRecord, PieceReader};

/// Supplies unsealed piece bytes when the piece store keeps no copy (lotus-miner's
/// `SectorsUnsealPiece` and sector readers, droplet's `piece-storage`, Curio's unsealed
/// sector store).
///
/// Implementations may take long (unsealing a sector takes hours); the HTTP server calls
/// this only for pieces the store does not have.
#[async_trait::async_trait]
pub trait Unsealer: Send + Sync {
    /// `range` of the unpadded piece `piece`, held at `deal.offset` (padded) in
    /// `deal.sector` of `deal.miner`. `None` when that sector has no unsealed copy.
    async fn unsealed(
        &self,
        piece: &Cid,
        deal: &DealRecord,
        range: ByteRange,
    ) -> Result<Option<PieceReader>, UnsealError>;
}

/// Why a sealer could not supply unsealed bytes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnsealError {
    /// The sealer could not be reached or answered with an error; another deal's copy may
    /// still serve.
    #[error("sealer unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Reading the unsealed sector failed.
    #[error("reading the unsealed sector")]
    Io(#[from] std::io::Error),
}
