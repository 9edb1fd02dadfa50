//! What happens to a deal after hand-off, decided from chain facts: activation by a sector
//! commit, slashing, expiry, removal by the market actor.
//!
//! The provider gathers the facts ([`SealingFacts`], [`ActiveFacts`]) with chain calls;
//! [`while_sealing`] and [`while_active`] decide without I/O, as
//! [`validate`](crate::validation::validate) does for proposals, so every branch is
//! testable without a chain.

use crate::chain::MarketDeal;
use crate::types::{ChainEpoch, DealId};

/// The chain's view of a deal that was handed to the sealer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealingFacts {
    /// The deal on the market actor, `None` if it is no longer there.
    pub market_deal: Option<MarketDeal>,
    /// Whether the sector holding the piece is pre-committed (asked only while waiting for
    /// the pre-commit).
    pub sector_precommitted: bool,
}

/// The next step of a deal being sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SealingDecision {
    /// A sector commit activated the deal.
    Activated,
    /// Its sector is pre-committed; now wait for the prove-commit.
    PreCommitted,
    /// Nothing yet; ask again later.
    Wait,
    /// The market actor dropped the deal before activation (its start epoch passed).
    Removed {
        /// Why, for the deal's record.
        message: String,
    },
}

/// Decides the step of a deal in `AwaitingPreCommit` (`awaiting_precommit`) or `Sealing`.
pub fn while_sealing(
    deal_id: DealId,
    start_epoch: ChainEpoch,
    awaiting_precommit: bool,
    facts: &SealingFacts,
) -> SealingDecision {
    match &facts.market_deal {
        Some(md) if md.state.sector_start_epoch.get() >= 0 => SealingDecision::Activated,
        Some(_) if awaiting_precommit && facts.sector_precommitted => SealingDecision::PreCommitted,
        Some(_) => SealingDecision::Wait,
        None => SealingDecision::Removed {
            message: format!(
                "deal {deal_id} was removed from the market actor before activation (start epoch {start_epoch})"
            ),
        },
    }
}

/// The chain's view of an active deal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveFacts {
    /// The chain head, read after `market_deal` (see [`while_active`]).
    pub head: ChainEpoch,
    /// The deal on the market actor, `None` once it expired or was terminated.
    pub market_deal: Option<MarketDeal>,
}

/// What became of an active deal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActiveDecision {
    /// Still active; ask again later.
    Active,
    /// It reached its end epoch and the actor removed it.
    Expired,
    /// The provider was slashed, or the deal ended early.
    Slashed {
        /// Why, for the deal's record.
        message: String,
    },
}

/// Decides what became of an active deal ending at `end_epoch`.
///
/// A missing deal counts as expired when the head has reached its end, so the head must be
/// read after the deal: read before, a deal expiring between the reads looks terminated early.
pub fn while_active(end_epoch: ChainEpoch, facts: &ActiveFacts) -> ActiveDecision {
    match &facts.market_deal {
        Some(md) if md.state.slash_epoch.get() >= 0 => ActiveDecision::Slashed {
            message: format!("slashed at epoch {}", md.state.slash_epoch),
        },
        Some(_) => ActiveDecision::Active,
        None if facts.head >= end_epoch => ActiveDecision::Expired,
        None => ActiveDecision::Slashed {
            message: "deal terminated before its end epoch".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deal::{DealProposal, DealState};
    use crate::types::{Address, DealLabel, TokenAmount};

    fn market_deal(sector_start: i64, slash: i64) -> MarketDeal {
        MarketDeal {
            proposal: DealProposal {
                piece_cid: "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
                    .parse()
                    .unwrap(),
                piece_size: 2048,
                verified_deal: false,
                client: Address::new_id(1001),
                provider: Address::new_id(1000),
                label: DealLabel::default(),
                start_epoch: ChainEpoch::new(100),
                end_epoch: ChainEpoch::new(200),
                storage_price_per_epoch: TokenAmount::ZERO,
                provider_collateral: TokenAmount::ZERO,
                client_collateral: TokenAmount::ZERO,
            },
            state: DealState {
                sector_start_epoch: ChainEpoch::new(sector_start),
                last_updated_epoch: ChainEpoch::new(-1),
                slash_epoch: ChainEpoch::new(slash),
                verified_claim: 0,
            },
            sector: None,
        }
    }

    #[test]
    fn sealing_decisions() {
        let id = DealId(7);
        let start = ChainEpoch::new(100);
        let facts = |md, pre| SealingFacts {
            market_deal: md,
            sector_precommitted: pre,
        };
        let pending = Some(market_deal(-1, -1));
        assert_eq!(
            while_sealing(id, start, true, &facts(Some(market_deal(50, -1)), false)),
            SealingDecision::Activated
        );
        assert_eq!(
            while_sealing(id, start, true, &facts(pending.clone(), true)),
            SealingDecision::PreCommitted
        );
        assert_eq!(
            while_sealing(id, start, true, &facts(pending.clone(), false)),
            SealingDecision::Wait
        );
        // Once sealing, a pre-commit is old news.
        assert_eq!(
            while_sealing(id, start, false, &facts(pending, true)),
            SealingDecision::Wait
        );
        let SealingDecision::Removed { message } =
            while_sealing(id, start, false, &facts(None, false))
        else {
            panic!("a deal gone from the actor is removed")
        };
        assert!(message.contains("deal 7") && message.contains("start epoch 100"));
    }

    #[test]
    fn active_decisions() {
        let end = ChainEpoch::new(200);
        let at = |head, md| ActiveFacts {
            head: ChainEpoch::new(head),
            market_deal: md,
        };
        assert_eq!(
            while_active(end, &at(150, Some(market_deal(50, -1)))),
            ActiveDecision::Active
        );
        assert_eq!(
            while_active(end, &at(160, Some(market_deal(50, 155)))),
            ActiveDecision::Slashed {
                message: "slashed at epoch 155".into()
            }
        );
        assert_eq!(while_active(end, &at(200, None)), ActiveDecision::Expired);
        assert_eq!(
            while_active(end, &at(199, None)),
            ActiveDecision::Slashed {
                message: "deal terminated before its end epoch".into()
            }
        );
    }
}
