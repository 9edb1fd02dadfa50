//! How a provider answers a request for quote: a pure function of its policy, the request and
//! what it knows now (the chain head, free capacity, the chain's minimum collateral), so the
//! same facts always give the same bid and the rules are tested without a network.
//!
//! The price is the ask's formula (attoFIL per GiB per epoch × padded size / 2^30), the
//! verified or unverified list price, less the largest discount the deal qualifies for by
//! size and duration, then the client's own rule (a percentage of that price, or a refusal).

use std::collections::BTreeMap;
use std::fmt;

use market_core::types::{Address, ChainEpoch, TokenAmount};

use crate::quote::{Quote, QuoteRequest};

const GIB: u128 = 1 << 30;

/// A discount for deals at least this large and this long.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Discount {
    /// Smallest padded piece size it applies to.
    pub min_piece_size: u64,
    /// Shortest duration (epochs) it applies to.
    pub min_duration: i64,
    /// Percent off the list price (0-100).
    pub percent: u8,
}

impl Discount {
    /// `percent` off deals of at least `min_piece_size` bytes over `min_duration` epochs.
    pub fn new(min_piece_size: u64, min_duration: i64, percent: u8) -> Self {
        Self {
            min_piece_size,
            min_duration,
            percent: percent.min(100),
        }
    }
}

/// What a provider does for one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientRule {
    /// Never quote it.
    Decline,
    /// Quote this percent of the price others get (after discounts).
    PricePercent(u32),
}

/// A provider's bidding policy.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BiddingPolicy {
    /// attoFIL per GiB per epoch, unverified deals.
    pub price_per_gib_epoch: TokenAmount,
    /// attoFIL per GiB per epoch, verified deals.
    pub verified_price_per_gib_epoch: TokenAmount,
    /// Smallest padded piece size quoted.
    pub min_piece_size: u64,
    /// Largest padded piece size quoted.
    pub max_piece_size: u64,
    /// Shortest duration quoted (epochs).
    pub min_duration: i64,
    /// Longest duration quoted (epochs).
    pub max_duration: i64,
    /// Epochs from now before a deal can start (transfer, sealing, confidence).
    pub start_lead: i64,
    /// How long a quote stays valid (epochs).
    pub quote_validity: i64,
    /// Bytes kept free whatever is quoted.
    pub reserve_bytes: u64,
    /// Discounts by size and duration; the largest that applies wins.
    pub discounts: Vec<Discount>,
    /// Per-client rules.
    pub clients: BTreeMap<Address, ClientRule>,
    /// Quote only the clients in `clients` (with a price rule).
    pub listed_clients_only: bool,
}

impl Default for BiddingPolicy {
    /// Mainnet-like defaults: 0 price (as most providers ask today), 256 B to 32 GiB,
    /// 180 to 1,278 days, deals starting at least 4 hours out, quotes valid an hour.
    fn default() -> Self {
        Self {
            price_per_gib_epoch: TokenAmount::ZERO,
            verified_price_per_gib_epoch: TokenAmount::ZERO,
            min_piece_size: 256,
            max_piece_size: 32 << 30,
            min_duration: 180 * ChainEpoch::PER_DAY,
            max_duration: 1278 * ChainEpoch::PER_DAY,
            start_lead: 480,
            quote_validity: 120,
            reserve_bytes: 0,
            discounts: Vec::new(),
            clients: BTreeMap::new(),
            listed_clients_only: false,
        }
    }
}

/// What the provider knows when it bids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BidFacts {
    /// The chain head.
    pub head: ChainEpoch,
    /// Bytes it can still take in (sealing capacity or staging space, whichever is less).
    pub free_bytes: u64,
    /// The market actor's minimum provider collateral for this piece.
    pub min_collateral: TokenAmount,
}

impl BidFacts {
    /// Facts at `head`.
    pub fn new(head: ChainEpoch, free_bytes: u64, min_collateral: TokenAmount) -> Self {
        Self {
            head,
            free_bytes,
            min_collateral,
        }
    }
}

/// Why a provider does not bid.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decline {
    /// The client is refused by rule, or not listed.
    Client,
    /// The piece size is outside the quoted range.
    PieceSize {
        /// What was asked.
        size: u64,
        /// The range quoted.
        min: u64,
        /// The range quoted.
        max: u64,
    },
    /// The duration is outside the quoted range.
    Duration {
        /// What was asked.
        duration: i64,
        /// The range quoted.
        min: i64,
        /// The range quoted.
        max: i64,
    },
    /// The window closes before the provider can start.
    Window {
        /// The earliest start it can give.
        earliest: ChainEpoch,
        /// The end of the window asked.
        start_before: ChainEpoch,
    },
    /// Not enough free space.
    Capacity {
        /// Bytes it could take.
        free: u64,
    },
}

impl fmt::Display for Decline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Client => write!(f, "this provider does not take deals from this client"),
            Self::PieceSize { size, min, max } => {
                write!(f, "piece size {size} outside {min}..={max}")
            }
            Self::Duration { duration, min, max } => {
                write!(f, "duration {duration} outside {min}..={max} epochs")
            }
            Self::Window {
                earliest,
                start_before,
            } => write!(
                f,
                "earliest start {earliest} is after the window's end {start_before}"
            ),
            Self::Capacity { free } => write!(f, "only {free} bytes free"),
        }
    }
}

/// The provider's bid for `request` (unsigned), or why there is none.
pub fn bid(
    policy: &BiddingPolicy,
    request: &QuoteRequest,
    facts: &BidFacts,
) -> Result<Quote, Decline> {
    let rule = policy.clients.get(&request.client).copied();
    let percent = match rule {
        Some(ClientRule::Decline) => return Err(Decline::Client),
        None if policy.listed_clients_only => return Err(Decline::Client),
        Some(ClientRule::PricePercent(p)) => p,
        None => 100,
    };
    let size = request.piece_size;
    if size < policy.min_piece_size || size > policy.max_piece_size {
        return Err(Decline::PieceSize {
            size,
            min: policy.min_piece_size,
            max: policy.max_piece_size,
        });
    }
    if request.duration < policy.min_duration || request.duration > policy.max_duration {
        return Err(Decline::Duration {
            duration: request.duration,
            min: policy.min_duration,
            max: policy.max_duration,
        });
    }
    let earliest = facts.head.plus(policy.start_lead).max(request.start_after);
    if earliest > request.start_before {
        return Err(Decline::Window {
            earliest,
            start_before: request.start_before,
        });
    }
    let free = facts.free_bytes.saturating_sub(policy.reserve_bytes);
    if size > free {
        return Err(Decline::Capacity { free });
    }
    let list = if request.verified {
        policy.verified_price_per_gib_epoch
    } else {
        policy.price_per_gib_epoch
    };
    let discount = policy
        .discounts
        .iter()
        .filter(|d| size >= d.min_piece_size && request.duration >= d.min_duration)
        .map(|d| u128::from(d.percent.min(100)))
        .max()
        .unwrap_or(0);
    // Per GiB to the piece, then the discount, then the client's percentage; each step
    // rounds down, so a quote never asks more than the policy says.
    let price = list
        .mul_div(u128::from(size), GIB)
        .mul_div(100 - discount, 100)
        .mul_div(u128::from(percent), 100);
    Ok(Quote::new(
        request,
        price,
        facts.min_collateral,
        earliest,
        facts.head.plus(policy.quote_validity),
        free - size,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB64: u64 = 1 << 30;

    fn request(size: u64, duration: i64, verified: bool) -> QuoteRequest {
        QuoteRequest::new(
            Address::new_id(1000),
            Address::new_id(2000),
            size,
            duration,
            verified,
            ChainEpoch::new(0),
            ChainEpoch::new(10_000),
            7,
        )
    }

    fn policy() -> BiddingPolicy {
        BiddingPolicy {
            price_per_gib_epoch: TokenAmount::from_atto(1_000),
            verified_price_per_gib_epoch: TokenAmount::from_atto(10),
            min_duration: 100,
            max_duration: 5_000,
            start_lead: 200,
            quote_validity: 50,
            ..BiddingPolicy::default()
        }
    }

    fn facts() -> BidFacts {
        BidFacts::new(
            ChainEpoch::new(1_000),
            64 * GIB64,
            TokenAmount::from_atto(77),
        )
    }

    #[test]
    fn the_price_follows_size_verified_and_discounts() {
        let q = bid(&policy(), &request(4 * GIB64, 1_000, false), &facts()).unwrap();
        assert_eq!(q.price_per_epoch, TokenAmount::from_atto(4_000));
        assert_eq!(q.collateral, TokenAmount::from_atto(77));
        assert_eq!(q.earliest_start, ChainEpoch::new(1_200));
        assert_eq!(q.valid_until, ChainEpoch::new(1_050));
        assert_eq!(q.remaining_capacity, 60 * GIB64);
        assert_eq!(q.provider, Address::new_id(1000));
        let v = bid(&policy(), &request(4 * GIB64, 1_000, true), &facts()).unwrap();
        assert_eq!(v.price_per_epoch, TokenAmount::from_atto(40));
        // Half a GiB costs half; the price rounds down, never up.
        let small = bid(&policy(), &request(GIB64 / 2, 1_000, false), &facts()).unwrap();
        assert_eq!(small.price_per_epoch, TokenAmount::from_atto(500));
        let tiny = bid(&policy(), &request(256, 1_000, false), &facts()).unwrap();
        assert_eq!(tiny.price_per_epoch, TokenAmount::ZERO);

        let mut p = policy();
        p.discounts = vec![
            Discount::new(GIB64, 0, 10),
            Discount::new(8 * GIB64, 2_000, 25),
            Discount::new(0, 4_000, 20),
        ];
        let price = |size, duration| {
            bid(&p, &request(size, duration, false), &facts())
                .unwrap()
                .price_per_epoch
                .atto()
        };
        assert_eq!(price(GIB64 / 2, 1_000), 500, "no discount applies");
        assert_eq!(price(4 * GIB64, 1_000), 3_600, "10% for size");
        assert_eq!(price(8 * GIB64, 1_999), 7_200, "too short for 25%");
        assert_eq!(price(8 * GIB64, 2_000), 6_000, "25% for size and duration");
        assert_eq!(price(8 * GIB64, 4_000), 6_000, "the largest discount wins");
        assert_eq!(price(GIB64 / 2, 4_000), 400, "20% for duration alone");
    }

    #[test]
    fn client_rules_price_or_refuse() {
        let mut p = policy();
        p.clients
            .insert(Address::new_id(2000), ClientRule::PricePercent(50));
        let q = bid(&p, &request(4 * GIB64, 1_000, false), &facts()).unwrap();
        assert_eq!(q.price_per_epoch, TokenAmount::from_atto(2_000));
        p.clients.insert(Address::new_id(2000), ClientRule::Decline);
        assert_eq!(
            bid(&p, &request(GIB64, 1_000, false), &facts()),
            Err(Decline::Client)
        );
        let mut listed = policy();
        listed.listed_clients_only = true;
        assert_eq!(
            bid(&listed, &request(GIB64, 1_000, false), &facts()),
            Err(Decline::Client)
        );
        listed
            .clients
            .insert(Address::new_id(2000), ClientRule::PricePercent(100));
        assert!(bid(&listed, &request(GIB64, 1_000, false), &facts()).is_ok());
    }

    #[test]
    fn out_of_range_requests_are_declined_with_the_reason() {
        let p = policy();
        let f = facts();
        assert!(matches!(
            bid(&p, &request(128, 1_000, false), &f),
            Err(Decline::PieceSize { size: 128, .. })
        ));
        assert!(matches!(
            bid(&p, &request(64 * GIB64, 1_000, false), &f),
            Err(Decline::PieceSize { .. })
        ));
        assert!(matches!(
            bid(&p, &request(GIB64, 99, false), &f),
            Err(Decline::Duration { duration: 99, .. })
        ));
        assert!(matches!(
            bid(&p, &request(GIB64, 5_001, false), &f),
            Err(Decline::Duration { .. })
        ));
        let mut late = request(GIB64, 1_000, false);
        late.start_before = ChainEpoch::new(1_199);
        assert_eq!(
            bid(&p, &late, &f),
            Err(Decline::Window {
                earliest: ChainEpoch::new(1_200),
                start_before: ChainEpoch::new(1_199)
            })
        );
        late.start_before = ChainEpoch::new(1_200);
        assert!(bid(&p, &late, &f).is_ok());
        // A window that opens later than the lead: the start is the window's.
        let mut later = request(GIB64, 1_000, false);
        later.start_after = ChainEpoch::new(5_000);
        assert_eq!(
            bid(&p, &later, &f).unwrap().earliest_start,
            ChainEpoch::new(5_000)
        );
        let mut reserved = policy();
        reserved.reserve_bytes = 63 * GIB64 + 1;
        assert_eq!(
            bid(&reserved, &request(GIB64, 1_000, false), &f),
            Err(Decline::Capacity { free: GIB64 - 1 })
        );
        assert!(
            Decline::Capacity { free: 5 }
                .to_string()
                .contains("5 bytes")
        );
    }
}
