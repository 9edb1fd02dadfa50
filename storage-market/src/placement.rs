//! Where a published deal's piece is being sealed: the placement the sealing side writes and
//! the provider follows.
//!
//! A pull sealer (damocles, venus-sealer, the `sealer` example) takes deals through the
//! market's sealer API and says which sector and offset it put each one in; a push sealer
//! (lotus-miner) answers `SectorAddPieceToAny` with them. Either way the placement is its own
//! record, written with compare-and-set on [`PieceStatus`], so two sealers never take the
//! same deal and the provider's own updates of the deal never overwrite it. Its life, in
//! droplet's terms: `Undefine` (waiting for a sealer) → `Assigned` (in a sector being
//! packed) → `Packing` → `Proving` (activated), and back to `Undefine` when a sealer
//! releases the deal.

use std::fmt;
use std::str::FromStr;

use crate::Cid;
use crate::types::{Address, DealId, SectorNumber};

/// droplet's `PieceStatus` of a deal, as strings on its API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PieceStatus {
    /// Waiting for a sealer to take it.
    Undefine,
    /// Assigned to a sector.
    Assigned,
    /// The sealer is packing it (push sealers report this).
    Packing,
    /// Its sector is proven.
    Proving,
}

impl PieceStatus {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Undefine => "Undefine",
            Self::Assigned => "Assigned",
            Self::Packing => "Packing",
            Self::Proving => "Proving",
        }
    }
}

impl fmt::Display for PieceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A piece status name that droplet does not have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown piece status {0:?} (Undefine, Assigned, Packing or Proving)")]
pub struct UnknownPieceStatus(pub String);

impl FromStr for PieceStatus {
    type Err = UnknownPieceStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "Undefine" => Self::Undefine,
            "Assigned" => Self::Assigned,
            "Packing" => Self::Packing,
            "Proving" => Self::Proving,
            other => return Err(UnknownPieceStatus(other.chars().take(64).collect())),
        })
    }
}

/// Where a deal's piece is, as far as sealing has got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The deal's signed proposal CID.
    pub proposal_cid: Cid,
    /// The miner.
    pub miner: Address,
    /// The on-chain deal id.
    pub deal_id: DealId,
    /// How far sealing has got.
    pub status: PieceStatus,
    /// The sector, once assigned.
    pub sector: Option<SectorNumber>,
    /// The padded offset in the sector, once assigned.
    pub offset: Option<u64>,
}

impl Placement {
    /// A deal waiting for a sealer.
    pub fn waiting(proposal_cid: Cid, miner: Address, deal_id: DealId) -> Self {
        Self {
            proposal_cid,
            miner,
            deal_id,
            status: PieceStatus::Undefine,
            sector: None,
            offset: None,
        }
    }

    /// This placement, now in `sector` at `offset` with `status`.
    pub fn at(self, status: PieceStatus, sector: SectorNumber, offset: u64) -> Self {
        Self {
            status,
            sector: Some(sector),
            offset: Some(offset),
            ..self
        }
    }

    /// This placement returned to the pool.
    pub fn released(self) -> Self {
        Self {
            status: PieceStatus::Undefine,
            sector: None,
            offset: None,
            ..self
        }
    }
}

/// One compare-and-set of [`DealStore::update_placements`](crate::store::DealStore::update_placements):
/// write `new` if the stored status is one of `expect` (an empty `expect` accepts any).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlacementChange {
    /// The statuses the placement must be in.
    pub expect: Vec<PieceStatus>,
    /// What to write.
    pub new: Placement,
}

impl PlacementChange {
    /// Whether the change may be written over the stored status `current` (`None`: the deal
    /// has no placement); the refusal says why, for [`StoreError::Conflict`](crate::store::StoreError::Conflict).
    pub fn check(&self, current: Option<PieceStatus>) -> Result<(), String> {
        let Some(current) = current else {
            return Err(format!(
                "deal {} is not offered to sealers",
                self.new.deal_id
            ));
        };
        if !self.expect.is_empty() && !self.expect.contains(&current) {
            let expected: Vec<&str> = self.expect.iter().map(|s| s.as_str()).collect();
            return Err(format!(
                "deal {} is {current}, not {}",
                self.new.deal_id,
                expected.join(" or ")
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip_and_unknown_names_are_refused() {
        for s in [
            PieceStatus::Undefine,
            PieceStatus::Assigned,
            PieceStatus::Packing,
            PieceStatus::Proving,
        ] {
            assert_eq!(s.as_str().parse::<PieceStatus>(), Ok(s));
        }
        assert!("Sealed".parse::<PieceStatus>().is_err());
    }
}
