//! The hand-off to sealing: the sealer takes a published deal's piece into a sector.
//!
//! After hand-off the market follows the sector on chain (pre-commit, then activation of the
//! deal), so the trait has one method. The sealer gets a [`PieceHandle`], not a path: a
//! sealer that pushes (lotus-miner `SectorAddPieceToAny`) streams the bytes from it and
//! answers [`Handoff::Placed`]; one that pulls (damocles and venus-sealer through the
//! market's sealer API) answers [`Handoff::Queued`], and the deal waits in
//! `AwaitingPreCommit` until a sealer takes it and records its
//! [placement](crate::placement). The `devnet` crate's `DevSealer` seals on the dev chain;
//! the `sealing` crate has the pull API and the lotus-miner sealer.

use std::sync::Arc;

use crate::Cid;

use piecestore::{ByteRange, PieceMeta, PieceReader, PieceStore, PieceStoreError};

use crate::deal::DealProposal;
use crate::types::{Address, DealId, SectorNumber};

/// What the sealer needs to know about a deal.
#[derive(Debug, Clone)]
pub struct SealingDeal {
    /// The miner.
    pub miner: Address,
    /// On-chain deal id.
    pub deal_id: DealId,
    /// The publish message.
    pub publish_cid: Cid,
    /// The proposal.
    pub proposal: DealProposal,
    /// Keep an unsealed copy of the sector (the client did not ask to remove it).
    pub keep_unsealed: bool,
}

/// Where a piece was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceLocation {
    /// The sector.
    pub sector: SectorNumber,
    /// Padded byte offset within the sector.
    pub offset: u64,
}

/// What became of a piece handed to the sealer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Handoff {
    /// The sealer put it in a sector (push model).
    Placed(PieceLocation),
    /// It waits for a sealer to take it through the sealer API (pull model).
    Queued,
}

/// Sealer errors.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum SealerError {
    /// The sealer cannot take pieces now; the market retries later.
    #[error("sealer unavailable: {0}")]
    Unavailable(String),
    /// The sealer refused the piece; the deal fails.
    #[error("sealer rejected the piece: {0}")]
    Rejected(String),
}

/// Takes pieces into sectors (lotus-miner `SectorAddPieceToAny`, droplet's assigner).
#[async_trait::async_trait]
pub trait Sealer: Send + Sync {
    /// Adds `piece` for `deal`. Must be idempotent per deal id: calling it again after a
    /// restart returns the same answer.
    async fn add_piece(
        &self,
        deal: &SealingDeal,
        piece: &PieceHandle,
    ) -> Result<Handoff, SealerError>;

    /// The sealer's own word on a sector (lotus-miner's `PreCommit1`, `WaitSeed`, …), shown
    /// in the deal's message while it seals; `None` when the sealer does not say.
    async fn sector_state(&self, _miner: &Address, _sector: SectorNumber) -> Option<String> {
        None
    }
}

/// A stored piece, readable whenever the sealer wants its bytes.
#[derive(Clone)]
pub struct PieceHandle {
    meta: PieceMeta,
    store: Arc<dyn PieceStore>,
}

impl std::fmt::Debug for PieceHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PieceHandle")
            .field("meta", &self.meta)
            .finish_non_exhaustive()
    }
}

impl PieceHandle {
    /// The piece `meta` describes, in `store`.
    pub fn new(meta: PieceMeta, store: Arc<dyn PieceStore>) -> Self {
        Self { meta, store }
    }

    /// Its CID and sizes. The sector holds the payload zero-padded to the unpadded size.
    pub fn meta(&self) -> PieceMeta {
        self.meta
    }

    /// The payload.
    pub async fn open(&self) -> Result<PieceReader, PieceStoreError> {
        self.store.get(&self.meta.piece_cid, None).await
    }

    /// `range` of the payload.
    pub async fn open_range(&self, range: ByteRange) -> Result<PieceReader, PieceStoreError> {
        self.store.get(&self.meta.piece_cid, Some(range)).await
    }
}
