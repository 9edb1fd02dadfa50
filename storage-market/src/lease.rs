//! Deal leases: which provider instance drives a deal when several share one database.
//!
//! An instance drives a deal only while it holds the deal's lease, a row in the deal store
//! with the holder's name and an expiry. It takes the lease before its driver runs
//! ([`DealStore::take_lease`](crate::store::DealStore::take_lease) succeeds only when the
//! lease is free, expired or already its own), renews every lease of a running driver each
//! third of the time to live, and gives it back when the deal waits for outside input or
//! is finished. An instance that dies stops renewing; once its leases expire, the others'
//! takeover scans find those deals and drive them from their stored state, as a restart
//! would. An instance that cannot renew (the database is unreachable) stops its own
//! drivers before the leases can expire, so two instances never drive one deal at once as
//! long as their clocks tick at about the same rate (the database's clock decides expiry).
//!
//! The decisions are pure functions here; the provider does the I/O.

use std::collections::HashSet;
use std::time::Duration;

use crate::Cid;
use crate::state::StorageDealStatus;

/// Leasing of deals among instances. Off (`None` in the provider's config) for a single
/// instance, which drives every unfinished deal it finds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeaseConfig {
    /// This instance's name, unique among the instances sharing the database and stable
    /// across its restarts (a restarted instance finds its own leases and resumes at once).
    pub holder: String,
    /// How long a lease lives without renewal: how soon another instance takes over the
    /// deals of one that died.
    pub ttl: Duration,
}

impl LeaseConfig {
    /// Leases held by `holder`, each living `ttl` without renewal.
    pub fn new(holder: impl Into<String>, ttl: Duration) -> Self {
        Self {
            holder: holder.into(),
            ttl,
        }
    }

    /// How often leases are renewed: three renewals per lifetime, so one late renewal
    /// does not lose them.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 3
    }

    /// How often the deals of instances that went away are looked for.
    pub fn takeover_every(&self) -> Duration {
        self.ttl / 2
    }

    /// Whether an instance whose last successful renewal was `since` ago must stop its
    /// drivers: past two thirds of the lifetime another instance may soon take the deals.
    pub fn must_fence(&self, since: Duration) -> bool {
        since >= self.ttl * 2 / 3
    }
}

/// The running drivers whose leases a renewal did not return: another instance holds
/// them now, so those drivers must stop.
pub fn lost(running: &HashSet<Cid>, renewed: &[Cid]) -> Vec<Cid> {
    let renewed: HashSet<&Cid> = renewed.iter().collect();
    let mut lost: Vec<Cid> = running
        .iter()
        .filter(|c| !renewed.contains(c))
        .copied()
        .collect();
    lost.sort();
    lost
}

/// Whether a deal in `state` has work for a driver. Deals waiting for outside input (the
/// data of an offline deal) have none; whoever imports the data takes the lease then.
pub const fn needs_driver(state: StorageDealStatus, is_offline: bool) -> bool {
    let waits_for_data = match state {
        StorageDealStatus::WaitingForData => true,
        StorageDealStatus::Transferring => is_offline,
        _ => false,
    };
    !state.is_terminal() && !waits_for_data
}

/// The states with no work for a driver whatever the deal (terminal or waiting for data),
/// for stores that filter in SQL; offline deals in `Transferring` are filtered besides.
pub fn idle_states() -> Vec<StorageDealStatus> {
    (0..=u64::from(u8::MAX))
        .filter_map(StorageDealStatus::from_code)
        .filter(|s| !needs_driver(*s, false))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cid(n: u8) -> Cid {
        let mh = cid::multihash::Multihash::<128>::wrap(0x12, &[n; 32]).expect("digest");
        Cid::new_v1(0x55, mh)
    }

    #[test]
    fn renewal_fencing_and_takeover_fit_in_one_lifetime() {
        let c = LeaseConfig::new("a", Duration::from_secs(30));
        assert_eq!(c.renew_every(), Duration::from_secs(10));
        assert_eq!(c.takeover_every(), Duration::from_secs(15));
        // Two renewals may fail before the instance fences itself, and it does so before
        // the lease can expire.
        assert!(!c.must_fence(Duration::from_secs(19)));
        assert!(c.must_fence(Duration::from_secs(20)));
        assert!(c.must_fence(c.ttl));
    }

    #[test]
    fn drivers_whose_lease_was_not_renewed_are_lost() {
        let running: HashSet<Cid> = [cid(1), cid(2), cid(3)].into();
        let mut l = lost(&running, &[cid(2), cid(9)]);
        l.sort();
        let mut want = vec![cid(1), cid(3)];
        want.sort();
        assert_eq!(l, want);
        assert!(lost(&running, &[cid(1), cid(2), cid(3)]).is_empty());
    }

    #[test]
    fn deals_waiting_for_their_data_have_no_driver() {
        use StorageDealStatus as S;
        assert!(!needs_driver(S::WaitingForData, true));
        assert!(!needs_driver(S::Transferring, true));
        assert!(needs_driver(S::Transferring, false));
        assert!(needs_driver(S::Publishing, true));
        assert!(needs_driver(S::Active, false));
        assert!(!needs_driver(S::Error, false));
        let idle = idle_states();
        assert!(idle.contains(&S::WaitingForData) && idle.contains(&S::Expired));
        assert!(!idle.contains(&S::Transferring) && !idle.contains(&S::Active));
    }
}
