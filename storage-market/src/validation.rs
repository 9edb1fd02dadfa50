//! Deal proposal validation: every check go-fil-markets, Boost and droplet run before
//! accepting a deal, as one pure function over a snapshot of chain facts.
//!
//! The provider gathers the facts ([`ValidationFacts`]) with async chain calls, then
//! [`validate`] decides without I/O, so the table of rejection cases is testable on its own.
//! Order follows Boost's `validateDealProposal` (protocols.md §5.2), so clients see the same
//! first failure a Boost provider would report.

use commp::PaddedPieceSize;

use crate::chain::{CollateralBounds, DealPolicy, MarketBalance};
use crate::deal::ClientDealProposal;
use crate::message::StorageAsk;
use crate::types::{Address, ChainEpoch, DealLabel, NetworkVersion, TokenAmount};

/// Why a proposal was rejected. The `Display` text is what the client receives; amounts are
/// attoFIL integers, as Boost prints them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rejection {
    /// The client signature does not verify.
    #[error("invalid client signature: {0}")]
    InvalidSignature(String),
    /// The client address cannot be resolved to a key.
    #[error("cannot resolve client {client}: {reason}")]
    UnknownClient {
        /// The client.
        client: Address,
        /// Why.
        reason: String,
    },
    /// The proposal names a miner this provider does not serve.
    #[error("incorrect provider for deal: {0} is not served here")]
    WrongProvider(Address),
    /// The label is longer than 256 bytes.
    #[error("deal label is {0} bytes, the limit is 256")]
    LabelTooLong(usize),
    /// The piece size is not a power of two ≥ 128.
    #[error("proposal piece size is invalid: {0}")]
    InvalidPieceSize(String),
    /// The piece CID is not a `fil-commitment-unsealed` / `sha2-256-trunc254-padded` CID.
    #[error("proposal PieceCID had wrong prefix: {0}")]
    InvalidPieceCid(String),
    /// End epoch not after start epoch.
    #[error("proposal end {end} before proposal start {start}")]
    EndBeforeStart {
        /// Start.
        start: ChainEpoch,
        /// End.
        end: ChainEpoch,
    },
    /// Start epoch is in the past.
    #[error("deal start epoch {start} has already elapsed (current epoch {head})")]
    StartElapsed {
        /// Start.
        start: ChainEpoch,
        /// Current epoch.
        head: ChainEpoch,
    },
    /// Duration outside the network's bounds.
    #[error("deal duration {duration} epochs out of bounds [{min}, {max}]")]
    DurationOutOfBounds {
        /// Proposed duration.
        duration: i64,
        /// Minimum.
        min: i64,
        /// Maximum.
        max: i64,
    },
    /// End epoch too far in the future.
    #[error(
        "invalid deal end epoch {end}: cannot be more than {max_offset} epochs past current epoch {head}"
    )]
    EndTooFar {
        /// End.
        end: ChainEpoch,
        /// Current epoch.
        head: ChainEpoch,
        /// Allowed offset.
        max_offset: i64,
    },
    /// Provider collateral outside the bounds.
    #[error(
        "proposed provider collateral {} not between bounds [{}, {}]",
        .got.atto(), .min.atto(), .max.atto()
    )]
    CollateralOutOfBounds {
        /// Proposed.
        got: TokenAmount,
        /// Minimum.
        min: TokenAmount,
        /// Maximum (min × MaxProviderCollateralMultiplier).
        max: TokenAmount,
    },
    /// The miner has no ask set.
    #[error("no storage ask set for miner {0}")]
    NoAsk(Address),
    /// Price per epoch below the ask (per GiB) scaled to the piece.
    #[error(
        "storage price per epoch less than asking price: {} < {} (ask is per GiB per epoch)",
        .got.atto(), .min.atto()
    )]
    PriceTooLow {
        /// Proposed total price per epoch.
        got: TokenAmount,
        /// Minimum for this piece size.
        min: TokenAmount,
    },
    /// Piece size outside the ask's bounds.
    #[error("piece size {size} outside the ask's bounds [{min}, {max}]")]
    PieceSizeOutOfBounds {
        /// Proposed padded size.
        size: u64,
        /// Ask minimum.
        min: u64,
        /// Ask maximum.
        max: u64,
    },
    /// Client escrow cannot cover collateral and storage fee.
    #[error(
        "clientMarketBalance.Available too small: {} < {}",
        .available.atto(), .required.atto()
    )]
    InsufficientClientFunds {
        /// Client escrow available.
        available: TokenAmount,
        /// Collateral plus total storage fee.
        required: TokenAmount,
    },
    /// A verified deal on a chain where FIL+ has ended.
    #[error(
        "verified deals are no longer accepted: the chain runs network version {} and FIL+ ended with nv29 Solstice (FIP-0118); propose the deal as unverified",
        .0.0
    )]
    VerifiedDealsEnded(NetworkVersion),
    /// Verified deal from a client without DataCap.
    #[error("client {0} is not a verified client")]
    NotVerifiedClient(Address),
    /// Verified deal larger than the client's remaining DataCap.
    #[error("verified deal DataCap too small for proposed piece size: {have} < {need}")]
    InsufficientDataCap {
        /// Remaining DataCap.
        have: u128,
        /// Piece size.
        need: u64,
    },
    /// The same signed proposal was already accepted.
    #[error("deal proposal is identical to deal {0} (proposal CIDs match)")]
    DuplicateProposal(String),
    /// The deal UUID is already used.
    #[error("deal has the same uuid as an existing deal: {0}")]
    DuplicateUuid(String),
    /// A deal filter (basic flags or the external command) refused the deal.
    #[error("{0}")]
    Filtered(String),
    /// The transfer parameters of an online deal are unusable.
    #[error("invalid transfer: {0}")]
    InvalidTransfer(String),
    /// The staging area cannot hold the deal's data now.
    #[error("cannot accept the deal's data: {0}")]
    StagingSpace(String),
    /// The provider could not complete validation (chain or database unavailable).
    #[error("provider error: {0}")]
    Internal(String),
}

impl Rejection {
    /// A short stable code for the kind of rejection: the `reason` label of the proposals
    /// metric, and what a dashboard groups by.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidSignature(_) => "invalid_signature",
            Self::UnknownClient { .. } => "unknown_client",
            Self::WrongProvider(_) => "wrong_provider",
            Self::LabelTooLong(_) => "label_too_long",
            Self::InvalidPieceSize(_) => "invalid_piece_size",
            Self::InvalidPieceCid(_) => "invalid_piece_cid",
            Self::EndBeforeStart { .. } => "end_before_start",
            Self::StartElapsed { .. } => "start_elapsed",
            Self::DurationOutOfBounds { .. } => "duration_out_of_bounds",
            Self::EndTooFar { .. } => "end_too_far",
            Self::CollateralOutOfBounds { .. } => "collateral_out_of_bounds",
            Self::NoAsk(_) => "no_ask",
            Self::PriceTooLow { .. } => "price_too_low",
            Self::PieceSizeOutOfBounds { .. } => "piece_size_out_of_bounds",
            Self::InsufficientClientFunds { .. } => "insufficient_client_funds",
            Self::VerifiedDealsEnded(_) => "verified_deals_ended",
            Self::NotVerifiedClient(_) => "not_verified_client",
            Self::InsufficientDataCap { .. } => "insufficient_datacap",
            Self::DuplicateProposal(_) => "duplicate_proposal",
            Self::DuplicateUuid(_) => "duplicate_uuid",
            Self::Filtered(_) => "filtered",
            Self::InvalidTransfer(_) => "invalid_transfer",
            Self::StagingSpace(_) => "staging_space",
            Self::Internal(_) => "internal",
        }
    }
}

/// Chain and provider facts a proposal is checked against.
#[derive(Debug, Clone)]
pub struct ValidationFacts {
    /// Current epoch.
    pub head: ChainEpoch,
    /// Whether the proposal's provider is a miner this provider serves.
    pub serves_provider: bool,
    /// The client's key address, or why it could not be resolved.
    pub client_key: Result<Address, String>,
    /// The miner's current ask.
    pub ask: Option<StorageAsk>,
    /// Chain collateral bounds for the piece.
    pub collateral: CollateralBounds,
    /// Provider policy: max collateral = min × this.
    pub max_collateral_multiplier: u64,
    /// Client market escrow.
    pub client_balance: MarketBalance,
    /// Client DataCap (only consulted for verified deals before Solstice).
    pub datacap: Option<u128>,
    /// The network version at the head.
    pub network_version: NetworkVersion,
    /// Deal term rules.
    pub policy: DealPolicy,
}

/// Checks a signed proposal. Signature, provider, label, piece size and CID, epochs,
/// duration, collateral, ask price and size, client funds and DataCap, in that order.
pub fn validate(
    deal: &ClientDealProposal,
    f: &ValidationFacts,
) -> Result<PaddedPieceSize, Rejection> {
    let p = &deal.proposal;
    let key = f
        .client_key
        .as_ref()
        .map_err(|reason| Rejection::UnknownClient {
            client: p.client,
            reason: reason.clone(),
        })?;
    crate::wallet::verify(&deal.client_signature, key, &p.to_cbor())
        .map_err(|e| Rejection::InvalidSignature(e.to_string()))?;
    if !f.serves_provider {
        return Err(Rejection::WrongProvider(p.provider));
    }
    if p.verified_deal && !f.network_version.allows_verified_deals() {
        return Err(Rejection::VerifiedDealsEnded(f.network_version));
    }
    if p.label.len() > DealLabel::MAX_LEN {
        return Err(Rejection::LabelTooLong(p.label.len()));
    }
    let size = p
        .padded_piece_size()
        .map_err(|e| Rejection::InvalidPieceSize(e.to_string()))?;
    commp::Commitment::from_cid_v1(&p.piece_cid)
        .map_err(|e| Rejection::InvalidPieceCid(e.to_string()))?;
    if p.end_epoch <= p.start_epoch {
        return Err(Rejection::EndBeforeStart {
            start: p.start_epoch,
            end: p.end_epoch,
        });
    }
    if p.start_epoch < f.head {
        return Err(Rejection::StartElapsed {
            start: p.start_epoch,
            head: f.head,
        });
    }
    let (min, max) = (f.policy.min_duration, f.policy.max_duration);
    if !(min..=max).contains(&p.duration()) {
        return Err(Rejection::DurationOutOfBounds {
            duration: p.duration(),
            min,
            max,
        });
    }
    if p.end_epoch.since(f.head) > f.policy.max_end_offset {
        return Err(Rejection::EndTooFar {
            end: p.end_epoch,
            head: f.head,
            max_offset: f.policy.max_end_offset,
        });
    }
    let cmin = f.collateral.min;
    let cmax = cmin
        .checked_mul(u128::from(f.max_collateral_multiplier))
        .unwrap_or(f.collateral.max)
        .min(f.collateral.max);
    if p.provider_collateral < cmin || p.provider_collateral > cmax {
        return Err(Rejection::CollateralOutOfBounds {
            got: p.provider_collateral,
            min: cmin,
            max: cmax,
        });
    }
    let ask = f.ask.as_ref().ok_or(Rejection::NoAsk(p.provider))?;
    let per_gib = if p.verified_deal {
        ask.verified_price
    } else {
        ask.price
    };
    let min_price = per_gib.mul_div(u128::from(size.get()), 1 << 30);
    if p.storage_price_per_epoch < min_price {
        return Err(Rejection::PriceTooLow {
            got: p.storage_price_per_epoch,
            min: min_price,
        });
    }
    if size.get() < ask.min_piece_size || size.get() > ask.max_piece_size {
        return Err(Rejection::PieceSizeOutOfBounds {
            size: size.get(),
            min: ask.min_piece_size,
            max: ask.max_piece_size,
        });
    }
    let required = p.client_balance_requirement();
    if f.client_balance.available() < required {
        return Err(Rejection::InsufficientClientFunds {
            available: f.client_balance.available(),
            required,
        });
    }
    if p.verified_deal {
        let have = f.datacap.ok_or(Rejection::NotVerifiedClient(p.client))?;
        if have < u128::from(size.get()) {
            return Err(Rejection::InsufficientDataCap {
                have,
                need: size.get(),
            });
        }
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_print_as_attofil_integers_like_boost() {
        let atto = TokenAmount::from_atto;
        let price = Rejection::PriceTooLow {
            got: atto(6102),
            min: atto(12_204),
        };
        assert_eq!(
            price.to_string(),
            "storage price per epoch less than asking price: 6102 < 12204 (ask is per GiB per epoch)"
        );
        let collateral = Rejection::CollateralOutOfBounds {
            got: atto(0),
            min: atto(5),
            max: atto(10),
        };
        assert_eq!(
            collateral.to_string(),
            "proposed provider collateral 0 not between bounds [5, 10]"
        );
        let funds = Rejection::InsufficientClientFunds {
            available: TokenAmount::from_whole(1),
            required: TokenAmount::from_whole(2),
        };
        assert_eq!(
            funds.to_string(),
            "clientMarketBalance.Available too small: 1000000000000000000 < 2000000000000000000"
        );
    }
}
