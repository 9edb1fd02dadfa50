//! The hand-off to sealing: the sealer takes a published deal's piece into a sector.
//!
//! After hand-off the market follows the sector on chain (pre-commit, then activation of the
//! deal), so the trait has one method. [`DevSealer`] seals on the dev chain: it packs pieces
//! into sectors and pre-commits and proves them when told to (or on a timer).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use cid::Cid;

use crate::deal::DealProposal;
use crate::devchain::DevChain;
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
}

/// Where a piece was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PieceLocation {
    /// The sector.
    pub sector: SectorNumber,
    /// Padded byte offset within the sector.
    pub offset: u64,
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
    /// Adds the piece at `piece_path` for `deal`. Must be idempotent per deal id: calling it
    /// again after a restart returns the same location.
    async fn add_piece(
        &self,
        deal: &SealingDeal,
        piece_path: &Path,
    ) -> Result<PieceLocation, SealerError>;
}

#[derive(Default)]
struct DevSealerState {
    accepting: bool,
    next_sector: u64,
    placed: HashMap<DealId, (Address, PieceLocation)>,
    /// Sectors handed pieces but not yet pre-committed / proven.
    open: Vec<(Address, SectorNumber, Vec<DealId>)>,
    precommitted: Vec<(Address, SectorNumber, Vec<DealId>)>,
}

/// A sealer for the dev chain: one deal per sector, sealing on command.
#[derive(Clone)]
pub struct DevSealer {
    chain: DevChain,
    state: Arc<Mutex<DevSealerState>>,
}

impl DevSealer {
    /// A sealer that accepts pieces.
    pub fn new(chain: DevChain) -> Self {
        let state = DevSealerState {
            accepting: true,
            next_sector: 1,
            ..Default::default()
        };
        Self {
            chain,
            state: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, DevSealerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `add_piece` answer "unavailable" (false) or work (true).
    pub fn set_accepting(&self, accepting: bool) {
        self.lock().accepting = accepting;
    }

    /// Pre-commits every sector holding pieces. Returns how many.
    pub fn precommit_all(&self) -> usize {
        let open = std::mem::take(&mut self.lock().open);
        let mut done = 0;
        for (miner, sector, deals) in open {
            match self.chain.precommit_sector(&miner, sector, &deals) {
                Ok(()) => {
                    done += 1;
                    self.lock().precommitted.push((miner, sector, deals));
                }
                Err(e) => tracing::warn!(%sector, error = %e, "dev sealer: pre-commit failed"),
            }
        }
        done
    }

    /// Proves every pre-committed sector, activating its deals. Returns how many.
    pub fn prove_all(&self) -> usize {
        let pre = std::mem::take(&mut self.lock().precommitted);
        let mut done = 0;
        for (miner, sector, deals) in pre {
            match self.chain.prove_commit_sector(&miner, sector, &deals) {
                Ok(()) => done += 1,
                Err(e) => tracing::warn!(%sector, error = %e, "dev sealer: prove-commit failed"),
            }
        }
        done
    }

    /// Seals continuously: every `period`, pre-commits open sectors and proves the ones
    /// pre-committed in the previous round.
    pub fn run(&self, period: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                me.prove_all();
                me.precommit_all();
            }
        })
    }
}

#[async_trait::async_trait]
impl Sealer for DevSealer {
    async fn add_piece(
        &self,
        deal: &SealingDeal,
        _piece_path: &Path,
    ) -> Result<PieceLocation, SealerError> {
        let mut s = self.lock();
        if let Some((_, loc)) = s.placed.get(&deal.deal_id) {
            return Ok(*loc);
        }
        if !s.accepting {
            return Err(SealerError::Unavailable("dev sealer paused".into()));
        }
        let sector = SectorNumber(s.next_sector);
        s.next_sector += 1;
        let loc = PieceLocation { sector, offset: 0 };
        s.placed.insert(deal.deal_id, (deal.miner, loc));
        s.open.push((deal.miner, sector, vec![deal.deal_id]));
        Ok(loc)
    }
}
