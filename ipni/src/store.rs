//! The ad store: every block served to indexers (ads and entry chunks), each provider's chain
//! head, which contexts are live, and per ad when it was announced and when an indexer
//! confirmed it. An ad, its chunks and the new head are written in one transaction that is
//! durable before anything is announced, so a restart serves the chain it announced.
//!
//! [`AdStore`] is the trait; [`SqliteAdStore`] (one file per node) is the embedded default
//! and `market_postgres::PgAdStore` lets several instances of one provider share its chains.
//! Either way an append reads the head and writes the new one under one lock, so a chain
//! stays a line however many handles append to it.

mod sqlite;

use std::str::FromStr;

use cid::Cid;
use libp2p::identity::Keypair;

use crate::IpniError;
use crate::schema::{Advertisement, Block};
use crate::sign::sign_ad;

pub use sqlite::SqliteAdStore;

/// Where a node keeps its IPNI chains. Times are unix milliseconds, given by the caller so
/// the decisions are the caller's clock, not the database's.
#[async_trait::async_trait]
pub trait AdStore: Send + Sync + std::fmt::Debug {
    /// Appends `draft` to the chain of `key`'s provider, unless it changes nothing (the
    /// context is already live for a put, or not live for a removal; see
    /// [`changes_context`]). Returns the new ad, signed by `key` and linked to the head.
    async fn append(
        &self,
        key: &Keypair,
        draft: AdDraft,
        now_ms: i64,
    ) -> Result<Option<Block>, IpniError>;

    /// A stored block (ad or entry chunk).
    async fn block(&self, cid: Cid) -> Result<Option<Vec<u8>>, IpniError>;

    /// The newest ad of `provider`.
    async fn head(&self, provider: &str) -> Result<Option<Cid>, IpniError>;

    /// Whether `context_id` of `provider` is live (announced and not removed).
    async fn is_live(&self, provider: &str, context_id: &[u8]) -> Result<bool, IpniError>;

    /// The context ids of `provider` that are live, in byte order.
    async fn live_contexts(&self, provider: &str) -> Result<Vec<Vec<u8>>, IpniError>;

    /// Announcements of `provider`'s head due at `now_ms`: the indexers that have not taken
    /// it yet and are not waiting out a failure, in the order given.
    async fn due_announces(
        &self,
        provider: &str,
        indexers: Vec<String>,
        now_ms: i64,
    ) -> Result<Vec<DueAnnounce>, IpniError>;

    /// Records the outcome of announcing `due`: on success the indexer has the head and
    /// every ad of the chain up to it counts as announced (first ingest check at
    /// `first_check_at_ms`); on failure the next attempt waits until `retry_at_ms`.
    async fn record_announce(
        &self,
        due: DueAnnounce,
        result: Result<(), String>,
        now_ms: i64,
        retry_at_ms: i64,
        first_check_at_ms: i64,
    ) -> Result<(), IpniError>;

    /// Makes `provider`'s head due again at every indexer: its announcement led to no
    /// ingestion (the indexer lost it, or the instance it was to fetch from died).
    async fn forget_announced(&self, provider: &str) -> Result<(), IpniError>;

    /// `provider`'s announced ads not yet confirmed whose next check is due, oldest first.
    async fn due_checks(
        &self,
        provider: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<DueCheck>, IpniError>;

    /// Records an ingest check: confirmed, or not yet (next check at `next_at_ms`, with the
    /// error if the indexer could not answer).
    async fn record_check(
        &self,
        ad: Cid,
        indexed: bool,
        error: Option<String>,
        now_ms: i64,
        next_at_ms: i64,
    ) -> Result<(), IpniError>;

    /// Whether `provider` should let another identity's ingestion finish before announcing:
    /// another identity has ads announced since `since_ms` that no indexer has confirmed yet,
    /// and `provider`'s oldest unannounced ad was created after `since_ms` too (so however
    /// busy the others are, an identity waits at most that long).
    async fn other_identity_ingesting(
        &self,
        provider: &str,
        since_ms: i64,
    ) -> Result<bool, IpniError>;

    /// `provider`'s announced ads still unconfirmed since before `before_ms` that were not
    /// warned about yet; they are marked warned, so each is returned once.
    async fn take_overdue(
        &self,
        provider: &str,
        before_ms: i64,
    ) -> Result<Vec<AdStatus>, IpniError>;

    /// The ads about `piece`, oldest first.
    async fn piece_ads(&self, piece: &str) -> Result<Vec<AdStatus>, IpniError>;

    /// Counts over the whole store (every provider), for dashboards and metrics.
    async fn summary(&self) -> Result<AdSummary, IpniError>;

    /// The last announce error per (provider, indexer), sorted, for status pages.
    async fn announce_errors(&self) -> Result<Vec<(String, String, String)>, IpniError>;
}

/// Whether appending an ad with `is_rm` changes a context that is `live` now: a put of a
/// context not live, or a removal of one that is. Anything else would only lengthen the chain
/// indexers walk.
pub fn changes_context(live: bool, is_rm: bool) -> bool {
    live == is_rm
}

/// Whether an indexer that last took `taken` (and must wait until `next_at_ms` after a
/// failure) is to be told of `head` at `now_ms`.
pub fn announce_is_due(taken: Option<&Cid>, head: &Cid, next_at_ms: i64, now_ms: i64) -> bool {
    taken != Some(head) && next_at_ms <= now_ms
}

/// The signed ad that follows `prev` in `key`'s chain.
pub fn next_ad(prev: Option<Cid>, key: &Keypair, draft: &AdDraft) -> Result<Block, IpniError> {
    let mut ad = Advertisement::new(
        prev,
        key.public().to_peer_id().to_string(),
        draft.addresses.clone(),
        draft.entries,
        draft.context_id.clone(),
        draft.metadata.clone(),
        draft.is_rm,
    );
    sign_ad(&mut ad, key)
}

/// A CID read back from a store.
pub fn parse_stored_cid(s: &str) -> Result<Cid, IpniError> {
    Cid::from_str(s).map_err(|e| IpniError::Decode(format!("stored cid {s}: {e}")))
}

/// An ad to append to a provider's chain (the store links it to the head and signs it).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AdDraft {
    /// Multiaddrs (text) of the content.
    pub addresses: Vec<String>,
    /// The context id.
    pub context_id: Vec<u8>,
    /// Encoded metadata ([`crate::metadata::encode`]).
    pub metadata: Vec<u8>,
    /// The first entry chunk, or [`crate::schema::no_entries`].
    pub entries: Cid,
    /// The chunks to store with the ad.
    pub chunks: Vec<Block>,
    /// Multihashes advertised (for the record).
    pub entry_count: u64,
    /// One advertised multihash, to confirm ingestion by a find when the indexer has no
    /// status endpoint.
    pub sample: Option<Vec<u8>>,
    /// Whether it removes the context.
    pub is_rm: bool,
    /// The piece it is about, for status queries.
    pub piece: Option<String>,
}

/// Where an ad stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AdStatus {
    /// The ad.
    pub ad: Cid,
    /// Its provider (peer id text).
    pub provider: String,
    /// The piece it is about.
    pub piece: Option<String>,
    /// Whether it removes its context.
    pub is_rm: bool,
    /// Multihashes advertised.
    pub entries: u64,
    /// Unix milliseconds of its creation.
    pub created_at: i64,
    /// Unix milliseconds of the first announcement of a head at or after it.
    pub announced_at: Option<i64>,
    /// Unix milliseconds when an indexer confirmed it.
    pub indexed_at: Option<i64>,
    /// Why the last ingest check failed, if it did.
    pub check_error: Option<String>,
}

impl AdStatus {
    /// An ad of `provider` made at `created_at` (unix ms), not yet announced; the other
    /// fields are set by the store that reads it back.
    pub fn new(ad: Cid, provider: String, created_at: i64) -> Self {
        Self {
            ad,
            provider,
            piece: None,
            is_rm: false,
            entries: 0,
            created_at,
            announced_at: None,
            indexed_at: None,
            check_error: None,
        }
    }
}

/// Counts over the ad store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct AdSummary {
    /// Ads of every provider (removals included).
    pub ads: u64,
    /// Ads no indexer has been told of yet.
    pub unannounced: u64,
    /// Announced ads no indexer has confirmed yet.
    pub unindexed: u64,
    /// Unix milliseconds of the oldest announcement still unconfirmed: the indexing lag.
    pub oldest_unindexed_announced_at: Option<i64>,
    /// (provider, indexer) pairs whose last announcement failed.
    pub failing_announces: u64,
}

/// An announcement to make: `head` of `provider` to `indexer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueAnnounce {
    /// The provider (peer id text).
    pub provider: String,
    /// The announce URL.
    pub indexer: String,
    /// The head to announce.
    pub head: Cid,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// An ad whose ingestion is to be checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueCheck {
    /// The ad.
    pub ad: Cid,
    /// Its provider.
    pub provider: String,
    /// One of its multihashes.
    pub sample: Option<Vec<u8>>,
    /// Whether it is a removal.
    pub is_rm: bool,
    /// Checks so far.
    pub attempts: u32,
    /// When it was announced (unix ms).
    pub announced_at: i64,
}
