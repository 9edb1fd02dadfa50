//! [`IpniProvider`]: one provider identity's ad chain. A node calls
//! [`announce_piece`](IpniProvider::announce_piece) when a piece is stored and indexed and
//! [`remove_piece`](IpniProvider::remove_piece) when the last deal holding it ends; both
//! only write to the store. The loop ([`spawn`](IpniProvider::spawn)) announces new heads to
//! every configured indexer, retrying with backoff, and confirms ingestion ad by ad.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cid::Cid;
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use url::Url;

use crate::announce::{self, Announcement};
use crate::ingest::{self, AdState};
use crate::metadata::{self, Transport};
use crate::schema::{self, ENTRIES_PER_CHUNK, no_entries};
use crate::store::{AdDraft, AdStatus, AdStore, DueAnnounce, DueCheck};
use crate::{IpniError, context};

/// How a provider publishes.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct IpniConfig {
    /// Indexers' announce URLs (`https://cid.contact/ingest/announce`, or a local
    /// storetheindex's `http://127.0.0.1:3001/announce`). None: ads are only published.
    pub announce_urls: Vec<Url>,
    /// Where indexers fetch ads: the HTTP server carrying [`IpniProvider::router`].
    pub publisher_addrs: Vec<Multiaddr>,
    /// Where content is retrieved from, written into each ad.
    pub retrieval_addrs: Vec<Multiaddr>,
    /// The transports served there.
    pub transports: Vec<Transport>,
    /// The gossipsub topic named in the signed head.
    pub topic: String,
    /// Multihashes per entry chunk.
    pub entries_per_chunk: usize,
    /// Whether to confirm ingestion with the first indexer.
    pub check_ingest: bool,
    /// The find API of that indexer (defaults to the announce URL's origin).
    pub find_url: Option<Url>,
    /// Warn about an ad still unconfirmed this long after its announcement.
    pub unindexed_warning: Duration,
    /// How often the loop looks for work.
    pub tick: Duration,
    /// Timeout of each request to an indexer.
    pub request_timeout: Duration,
    /// Announce the chain at `/ipni-provider/{peer}` on the publisher (an `http-path` in the
    /// announced addresses) rather than at its root: how a node with several provider
    /// identities (one per miner) tells indexers which chain is whose.
    pub peer_path: bool,
}

impl Default for IpniConfig {
    fn default() -> Self {
        Self {
            announce_urls: Vec::new(),
            publisher_addrs: Vec::new(),
            retrieval_addrs: Vec::new(),
            transports: vec![Transport::IpfsGatewayHttp, Transport::FilecoinPieceHttp],
            topic: "/indexer/ingest/mainnet".into(),
            entries_per_chunk: ENTRIES_PER_CHUNK,
            check_ingest: true,
            find_url: None,
            unindexed_warning: Duration::from_secs(3600),
            tick: Duration::from_secs(1),
            request_timeout: Duration::from_secs(30),
            peer_path: false,
        }
    }
}

impl IpniConfig {
    /// Announces the chain under `/ipni-provider/{peer}` ([`IpniConfig::peer_path`]).
    pub fn with_peer_path(mut self, on: bool) -> Self {
        self.peer_path = on;
        self
    }

    /// Sets the announce URLs.
    pub fn with_announce_urls(mut self, urls: Vec<Url>) -> Self {
        self.announce_urls = urls;
        self
    }

    /// Sets both the publisher and retrieval addresses (one HTTP server serves both).
    pub fn with_http_addrs(mut self, addrs: Vec<Multiaddr>) -> Self {
        self.publisher_addrs = addrs.clone();
        self.retrieval_addrs = addrs;
        self
    }

    /// Sets the find API used for ingest checks.
    pub fn with_find_url(mut self, url: Option<Url>) -> Self {
        self.find_url = url;
        self
    }

    /// Sets the loop's period.
    pub fn with_tick(mut self, tick: Duration) -> Self {
        self.tick = tick;
        self
    }
}

/// What one round of the loop did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoundReport {
    /// Heads announced.
    pub announced: usize,
    /// Announcements that failed (retried later).
    pub announce_failures: usize,
    /// Ads confirmed indexed.
    pub confirmed: usize,
    /// Ads checked and not yet indexed.
    pub pending: usize,
}

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn AdStore>,
    pub(crate) key: Keypair,
    pub(crate) peer: PeerId,
    pub(crate) config: IpniConfig,
    http: reqwest::Client,
    wake: tokio::sync::Notify,
}

/// A provider identity publishing to IPNI.
#[derive(Clone)]
pub struct IpniProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for IpniProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpniProvider")
            .field("peer", &self.inner.peer)
            .finish_non_exhaustive()
    }
}

impl IpniProvider {
    /// A provider signing with `key` (its peer id is the provider id), keeping its chain in
    /// `store`.
    pub fn new(
        store: Arc<dyn AdStore>,
        key: Keypair,
        config: IpniConfig,
    ) -> Result<Self, IpniError> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| IpniError::Indexer {
                url: String::new(),
                message: format!("http client: {e}"),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                peer: key.public().to_peer_id(),
                store,
                key,
                config,
                http,
                wake: tokio::sync::Notify::new(),
            }),
        })
    }

    /// The provider id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer
    }

    /// The ad store.
    pub fn store(&self) -> &Arc<dyn AdStore> {
        &self.inner.store
    }

    /// The publisher routes to merge into the node's HTTP server (with several identities,
    /// [`crate::publisher::routes`] serves them all).
    pub fn router(&self) -> axum::Router {
        crate::publisher::routes(std::slice::from_ref(self))
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    /// Where indexers fetch this chain: the publisher addresses, under
    /// `/ipni-provider/{peer}` with [`IpniConfig::peer_path`].
    pub fn publisher_addrs(&self) -> Vec<Multiaddr> {
        let inner = &self.inner;
        inner
            .config
            .publisher_addrs
            .iter()
            .map(|a| {
                let mut a = a.clone();
                if inner.config.peer_path {
                    let path = format!("/ipni-provider/{}", inner.peer);
                    a.push(libp2p::multiaddr::Protocol::HttpPath(path.into()));
                }
                a
            })
            .collect()
    }

    /// Advertises `multihashes` (a piece's blocks; identity multihashes are skipped, an
    /// indexer has nothing to look up for them) under the piece's context id. Returns the
    /// new ad, or `None` when the piece is already advertised.
    pub async fn announce_piece(
        &self,
        piece: &Cid,
        padded_size: u64,
        multihashes: Vec<Vec<u8>>,
    ) -> Result<Option<Cid>, IpniError> {
        let context_id = context::piece_context_id(padded_size, piece);
        if self.is_announced(&context_id).await? {
            return Ok(None);
        }
        let multihashes: Vec<Vec<u8>> = multihashes
            .into_iter()
            .filter(|m| m.first() != Some(&0))
            .collect();
        let sample = multihashes.first().cloned();
        let per_chunk = self.inner.config.entries_per_chunk;
        let (entries, chunks, count) = tokio::task::spawn_blocking(move || {
            let count = multihashes.len() as u64;
            schema::entry_chunks(multihashes, per_chunk).map(|(e, c)| (e, c, count))
        })
        .await
        .map_err(|e| IpniError::Encode(format!("chunking task: {e}")))??;
        let draft = AdDraft {
            addresses: self.addresses(),
            context_id,
            metadata: metadata::encode(&self.inner.config.transports),
            entries,
            chunks,
            entry_count: count,
            sample,
            is_rm: false,
            piece: Some(piece.to_string()),
        };
        self.append(draft).await
    }

    /// Publishes a removal of the piece's ad. Returns it, or `None` when the piece is not
    /// advertised.
    pub async fn remove_piece(
        &self,
        piece: &Cid,
        padded_size: u64,
    ) -> Result<Option<Cid>, IpniError> {
        let draft = AdDraft {
            addresses: self.addresses(),
            context_id: context::piece_context_id(padded_size, piece),
            metadata: Vec::new(),
            entries: no_entries(),
            chunks: Vec::new(),
            entry_count: 0,
            sample: None,
            is_rm: true,
            piece: Some(piece.to_string()),
        };
        self.append(draft).await
    }

    /// Whether the piece is advertised (and not removed).
    pub async fn is_piece_announced(
        &self,
        piece: &Cid,
        padded_size: u64,
    ) -> Result<bool, IpniError> {
        self.is_announced(&context::piece_context_id(padded_size, piece))
            .await
    }

    /// The ads about `piece`, oldest first: when each was made, announced and indexed.
    pub async fn piece_ads(&self, piece: &Cid) -> Result<Vec<AdStatus>, IpniError> {
        self.inner.store.piece_ads(&piece.to_string()).await
    }

    async fn is_announced(&self, context_id: &[u8]) -> Result<bool, IpniError> {
        self.inner
            .store
            .is_live(&self.inner.peer.to_string(), context_id)
            .await
    }

    async fn append(&self, draft: AdDraft) -> Result<Option<Cid>, IpniError> {
        let block = self
            .inner
            .store
            .append(&self.inner.key, draft, now_ms())
            .await?;
        if let Some(b) = &block {
            tracing::info!(ad = %b.cid, provider = %self.inner.peer, "IPNI advertisement published");
            self.inner.wake.notify_one();
        }
        Ok(block.map(|b| b.cid))
    }

    fn addresses(&self) -> Vec<String> {
        self.inner
            .config
            .retrieval_addrs
            .iter()
            .map(|a| a.to_string())
            .collect()
    }

    /// Runs the loop until the returned task is aborted.
    pub fn spawn(&self) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                match this.run_once().await {
                    Ok(r) if r != RoundReport::default() => tracing::debug!(?r, "IPNI round"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "IPNI round failed"),
                }
                let _ =
                    tokio::time::timeout(this.inner.config.tick, this.inner.wake.notified()).await;
            }
        })
    }

    /// One round: announce every head an indexer has not taken, check due ads, warn about
    /// overdue ones.
    pub async fn run_once(&self) -> Result<RoundReport, IpniError> {
        let inner = &self.inner;
        let mut report = RoundReport::default();
        let urls: Vec<String> = inner
            .config
            .announce_urls
            .iter()
            .map(|u| u.to_string())
            .collect();
        if urls.is_empty() {
            return Ok(report);
        }
        let me = inner.peer.to_string();
        // Identities of one node take turns at the indexers: while another identity's ads are
        // announced and not yet confirmed, this one waits, but never once its own oldest
        // unannounced ad is TAKE_TURNS old (so a busy identity cannot starve the others). Two of
        // them advertising the same piece have identical entry chunks, and storetheindex,
        // syncing both publishers at once, loses the shared chunk to the first worker's
        // cleanup and gives up on the other chain until its next new ad.
        let wait_turn = inner.config.check_ingest
            && inner
                .store
                .other_identity_ingesting(&me, now_ms() - TAKE_TURNS.as_millis() as i64)
                .await?;
        let due = if wait_turn {
            Vec::new()
        } else {
            inner.store.due_announces(&me, urls, now_ms()).await?
        };
        for due in due {
            if self.announce(due).await? {
                report.announced += 1;
            } else {
                report.announce_failures += 1;
            }
        }
        if inner.config.check_ingest {
            for due in inner.store.due_checks(&me, now_ms(), 32).await? {
                if self.check(due).await? {
                    report.confirmed += 1;
                } else {
                    report.pending += 1;
                }
            }
            let before = now_ms() - inner.config.unindexed_warning.as_millis() as i64;
            for ad in inner.store.take_overdue(&me, before).await? {
                tracing::warn!(
                    ad = %ad.ad,
                    piece = ?ad.piece,
                    announced_at = ?ad.announced_at,
                    error = ?ad.check_error,
                    "IPNI advertisement still not indexed"
                );
            }
        }
        Ok(report)
    }

    async fn announce(&self, due: DueAnnounce) -> Result<bool, IpniError> {
        let inner = &self.inner;
        let url = Url::parse(&due.indexer).map_err(|e| IpniError::Indexer {
            url: due.indexer.clone(),
            message: e.to_string(),
        })?;
        let msg = Announcement::new(due.head, inner.peer, &self.publisher_addrs());
        let result = announce::send(&inner.http, &url, &msg).await;
        let now = now_ms();
        let ok = result.is_ok();
        if let Err(e) = &result {
            tracing::warn!(indexer = %url, head = %due.head, attempt = due.attempts + 1, error = %e, "IPNI announcement failed; retrying later");
        } else {
            tracing::info!(indexer = %url, head = %due.head, "IPNI head announced");
        }
        let retry_at = now + announce::retry_after(due.attempts).as_millis() as i64;
        let first_check = now + ingest::check_delay(0).as_millis() as i64;
        inner
            .store
            .record_announce(
                due,
                result.map_err(|e| e.to_string()),
                now,
                retry_at,
                first_check,
            )
            .await?;
        Ok(ok)
    }

    /// Checks one ad with the first indexer; true when confirmed.
    async fn check(&self, due: DueCheck) -> Result<bool, IpniError> {
        let inner = &self.inner;
        let Some(announce_url) = inner.config.announce_urls.first() else {
            return Ok(false);
        };
        let state =
            ingest::ad_state(&inner.http, &ingest::ingest_base(announce_url), &due.ad).await;
        let outcome: Result<bool, IpniError> = match state {
            Ok(AdState::Indexed) => Ok(true),
            Ok(AdState::Pending) => Ok(false),
            Ok(AdState::Unsupported) => self.check_by_find(announce_url, &due).await,
            Err(e) => Err(e),
        };
        let now = now_ms();
        let next = now + ingest::check_delay(due.attempts + 1).as_millis() as i64;
        let (indexed, error) = match outcome {
            Ok(i) => (i, None),
            Err(e) => (false, Some(e.to_string())),
        };
        if indexed {
            tracing::info!(ad = %due.ad, after_ms = now - due.announced_at, "IPNI advertisement indexed");
        }
        let checks = due.attempts + 1;
        inner
            .store
            .record_check(due.ad, indexed, error, now, next)
            .await?;
        if !indexed && ingest::reannounce_after(checks) {
            tracing::info!(ad = %due.ad, checks, "IPNI advertisement still not indexed; announcing the head again");
            inner.store.forget_announced(&due.provider).await?;
            inner.wake.notify_one();
        }
        Ok(indexed)
    }

    /// Without a status endpoint: a find for the ad's sample multihash names us (a put) or
    /// no longer does (a removal).
    async fn check_by_find(&self, announce_url: &Url, due: &DueCheck) -> Result<bool, IpniError> {
        let inner = &self.inner;
        let find_url = match &inner.config.find_url {
            Some(u) => u.clone(),
            None => announce_url.join("/").map_err(|e| IpniError::Indexer {
                url: announce_url.to_string(),
                message: e.to_string(),
            })?,
        };
        let Some(sample) = &due.sample else {
            // A removal or an empty ad: nothing to look up, the announcement is all we know.
            return Ok(due.is_rm);
        };
        let me = inner.peer.to_string();
        let found = crate::find::find(&inner.http, &find_url, sample)
            .await?
            .iter()
            .any(|r| r.provider == me);
        Ok(found != due.is_rm)
    }
}

/// The longest an identity waits for another identity's ads to be confirmed before it
/// announces anyway (an indexer that never confirms must not silence the others).
const TAKE_TURNS: std::time::Duration = std::time::Duration::from_secs(30);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
