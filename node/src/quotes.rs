//! The node's side of the quote protocol: `[quotes]` and `[ask]` made a bidding policy, the
//! free space of the piece stores kept fresh for it, and the protocol served on the host.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use market_broker::bidding::{BiddingPolicy, ClientRule, Discount};
use market_broker::serve::QuoteProvider;
use market_core::chain::ChainNode;
use market_core::types::{Address, ChainEpoch, TokenAmount};
use market_core::wallet::Wallet;
use piecestore::PieceStore;

use crate::config::{AskSection, ConfigError, QuotesSection};

/// How often the free space quoted against is measured again.
const CAPACITY_REFRESH: Duration = Duration::from_secs(10);

/// The policy `[quotes]` and `[ask]` describe.
pub(crate) fn policy(q: &QuotesSection, ask: &AskSection) -> Result<BiddingPolicy, ConfigError> {
    let price = |s: &str| {
        TokenAmount::from_str(s).map_err(|e| ConfigError::Invalid(format!("[ask] price {s}: {e}")))
    };
    let days =
        |d: u64| i64::try_from(d.saturating_mul(ChainEpoch::PER_DAY as u64)).unwrap_or(i64::MAX);
    let epochs = |e: u64| i64::try_from(e).unwrap_or(i64::MAX);
    let mut clients = std::collections::BTreeMap::new();
    for (addr, rule) in &q.clients {
        let a = Address::from_str(addr)
            .map_err(|e| ConfigError::Invalid(format!("[quotes] clients {addr}: {e}")))?;
        clients.insert(
            a,
            client_rule(rule).map_err(|e| {
                ConfigError::Invalid(format!("[quotes] clients {addr} = {rule:?}: {e}"))
            })?,
        );
    }
    let mut p = BiddingPolicy::default();
    p.price_per_gib_epoch = price(&ask.price)?;
    p.verified_price_per_gib_epoch = price(&ask.verified_price)?;
    p.min_piece_size = ask.min_piece_size;
    p.max_piece_size = ask.max_piece_size;
    p.min_duration = days(q.min_duration_days);
    p.max_duration = days(q.max_duration_days);
    p.start_lead = epochs(q.start_lead_epochs);
    p.quote_validity = epochs(q.validity_epochs);
    p.reserve_bytes = q.reserve_gib.saturating_mul(1 << 30);
    p.discounts = q
        .discounts
        .iter()
        .map(|d| {
            if d.percent > 100 {
                return Err(ConfigError::Invalid(format!(
                    "[[quotes.discounts]] percent {} is over 100",
                    d.percent
                )));
            }
            Ok(Discount::new(
                d.min_piece_size,
                days(d.min_duration_days),
                d.percent,
            ))
        })
        .collect::<Result<_, _>>()?;
    p.clients = clients;
    p.listed_clients_only = q.listed_clients_only;
    Ok(p)
}

/// `"decline"` or `"<n>%"`.
fn client_rule(s: &str) -> Result<ClientRule, String> {
    if s == "decline" {
        return Ok(ClientRule::Decline);
    }
    let n = s
        .strip_suffix('%')
        .ok_or("expected \"decline\" or a percentage such as \"80%\"")?;
    n.trim()
        .parse::<u32>()
        .map(ClientRule::PricePercent)
        .map_err(|e| format!("percentage {n}: {e}"))
}

/// Keeps the free space quotes are made against fresh: run it as a task once the node has
/// started (so a start that fails leaves none behind).
pub(crate) struct CapacityRefresh {
    free: Arc<AtomicU64>,
    pieces: Arc<dyn PieceStore>,
}

impl CapacityRefresh {
    /// Measures every ten seconds, forever.
    pub(crate) async fn run(self) {
        loop {
            tokio::time::sleep(CAPACITY_REFRESH).await;
            measure(&self.pieces, &self.free).await;
        }
    }
}

/// Free space of the piece stores; unknown space (S3) counts as unbounded, and a failed
/// measurement keeps the last one.
async fn measure(pieces: &Arc<dyn PieceStore>, free: &AtomicU64) {
    match pieces.free_space().await {
        Ok(space) => free.store(space.unwrap_or(u64::MAX), Ordering::Relaxed),
        Err(e) => tracing::warn!(error = %e, "measuring free space for quotes"),
    }
}

/// The quote provider for `miners`, quoting against the piece stores' free space, measured
/// now and then by the returned [`CapacityRefresh`].
pub(crate) async fn start(
    chain: Arc<dyn ChainNode>,
    wallet: Arc<dyn Wallet>,
    miners: Vec<Address>,
    policy: BiddingPolicy,
    pieces: Arc<dyn PieceStore>,
) -> (QuoteProvider, CapacityRefresh) {
    let free = Arc::new(AtomicU64::new(0));
    measure(&pieces, &free).await;
    let capacity = {
        let free = free.clone();
        Arc::new(move || free.load(Ordering::Relaxed))
    };
    (
        QuoteProvider::new(chain, wallet, miners, policy, capacity),
        CapacityRefresh { free, pieces },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DiscountSection;

    #[test]
    fn the_config_makes_the_policy() {
        let mut q = QuotesSection::default();
        q.discounts.push(DiscountSection {
            min_piece_size: 1 << 35,
            min_duration_days: 540,
            percent: 20,
        });
        q.clients.insert("f01234".into(), "decline".into());
        q.clients.insert("f05678".into(), "80%".into());
        let ask = AskSection {
            price: "1000".into(),
            ..AskSection::default()
        };
        let p = policy(&q, &ask).unwrap();
        assert_eq!(p.price_per_gib_epoch, TokenAmount::from_atto(1000));
        assert_eq!(p.min_duration, 180 * 2880);
        assert_eq!(p.discounts, vec![Discount::new(1 << 35, 540 * 2880, 20)]);
        assert_eq!(
            p.clients.get(&Address::new_id(1234)),
            Some(&ClientRule::Decline)
        );
        assert_eq!(
            p.clients.get(&Address::new_id(5678)),
            Some(&ClientRule::PricePercent(80))
        );
        for bad in ["80", "x%", "maybe"] {
            q.clients.insert("f05678".into(), bad.into());
            assert!(policy(&q, &ask).is_err(), "{bad}");
        }
        q.clients.clear();
        q.discounts[0].percent = 101;
        assert!(policy(&q, &ask).is_err());
    }
}
