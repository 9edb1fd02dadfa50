//! A sealer for the dev chain: each deal's piece goes into a sector of its own, and sectors
//! are pre-committed and proven on command or on a timer. It keeps no sector data.
//!
//! The sectors it works on live in the dev chain's state (so they survive a restart with the
//! deals in them); the sealer reaches that state in process ([`DevChain`]) or over the
//! devnet's `Dev` API ([`DevApi`](crate::client::DevApi)), whichever [`SealingChain`] it holds.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use market_core::chain::ChainError;
use market_core::types::{Address, DealId, SectorNumber};
use storage_market::sealer::{
    Handoff, PieceHandle, PieceLocation, Sealer, SealerError, SealingDeal,
};

use crate::DevChain;

/// Where the dev sealer's sectors are kept and sealed.
#[async_trait::async_trait]
pub trait SealingChain: Send + Sync {
    /// Places a deal's piece in a sector (the same one if asked again).
    async fn add_piece(&self, miner: &Address, deal: DealId) -> Result<SectorNumber, ChainError>;
    /// Pre-commits the sectors holding pieces; returns how many.
    async fn precommit_all(&self) -> Result<usize, ChainError>;
    /// Proves the pre-committed sectors; returns how many.
    async fn prove_all(&self) -> Result<usize, ChainError>;
}

#[async_trait::async_trait]
impl SealingChain for DevChain {
    async fn add_piece(&self, miner: &Address, deal: DealId) -> Result<SectorNumber, ChainError> {
        Ok(self.seal_add_piece(miner, deal))
    }
    async fn precommit_all(&self) -> Result<usize, ChainError> {
        Ok(self.seal_precommit_all())
    }
    async fn prove_all(&self) -> Result<usize, ChainError> {
        Ok(self.seal_prove_all())
    }
}

/// A sealer for the dev chain: one deal per sector, sealing on command.
#[derive(Clone)]
pub struct DevSealer {
    chain: Arc<dyn SealingChain>,
    accepting: Arc<AtomicBool>,
}

impl DevSealer {
    /// A sealer that accepts pieces, sealing through `chain`.
    pub fn new(chain: impl SealingChain + 'static) -> Self {
        Self {
            chain: Arc::new(chain),
            accepting: Arc::new(AtomicBool::new(true)),
        }
    }

    /// Makes `add_piece` answer "unavailable" (false) or work (true).
    pub fn set_accepting(&self, accepting: bool) {
        self.accepting.store(accepting, Ordering::SeqCst);
    }

    /// Pre-commits every sector holding pieces. Returns how many.
    pub async fn precommit_all(&self) -> usize {
        self.chain.precommit_all().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "dev sealer: pre-commit failed");
            0
        })
    }

    /// Proves every pre-committed sector, activating its deals. Returns how many.
    pub async fn prove_all(&self) -> usize {
        self.chain.prove_all().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "dev sealer: prove-commit failed");
            0
        })
    }

    /// Seals continuously: every `period`, pre-commits open sectors and proves the ones
    /// pre-committed in the previous round.
    pub fn run(&self, period: std::time::Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                me.prove_all().await;
                me.precommit_all().await;
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
    ) -> Result<Handoff, SealerError> {
        if !self.accepting.load(Ordering::SeqCst) {
            return Err(SealerError::Unavailable("dev sealer paused".into()));
        }
        let sector = self
            .chain
            .add_piece(&deal.miner, deal.deal_id)
            .await
            .map_err(|e| SealerError::Unavailable(e.to_string()))?;
        Ok(Handoff::Placed(PieceLocation { sector, offset: 0 }))
    }
}
