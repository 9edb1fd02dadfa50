//! A sealer for the dev chain: it packs each deal's piece into a sector of its own and
//! pre-commits and proves sectors on command or on a timer. It keeps no sector data.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use market_core::types::{Address, DealId, SectorNumber};
use storage_market::sealer::{PieceHandle, PieceLocation, Sealer, SealerError, SealingDeal};

use crate::DevChain;

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
        _piece: &PieceHandle,
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
