//! Running transfers: admission (address policy, staging limits), concurrency, retries,
//! progress, cancel, and resume after a restart.
//!
//! A transfer writes into `<staging>/<id>.car` at its final offsets, one task per connection.
//! A [`CommPFollower`] hashes the contiguous written prefix on its own thread, so when the
//! last byte lands the commP is nearly done. Every `checkpoint_bytes` a connection fsyncs the
//! file and records its offset in SQLite; after a crash each connection resumes from its last
//! recorded offset with a `Range` request, and the hasher re-reads the prefix from disk.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use piecestore::{CarBlocks, CommPFollower, PieceMeta};
use tokio::sync::{Notify, Semaphore, broadcast};
use tokio_util::sync::CancellationToken;

use crate::fetch::{FetchError, Fetcher, header_map};
use crate::policy::{AddressPolicy, http_client};
use crate::store::TransferStore;
use crate::transfer::{
    Chunk, TransferEvent, TransferId, TransferRecord, TransferRequest, TransferState,
};
use market_core::host::Host;

use crate::{Source, TransferError};

/// Retry schedule for connection failures and 5xx answers.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// First wait (Boost: 5 s).
    pub min_backoff: Duration,
    /// Longest wait (Boost: 10 min).
    pub max_backoff: Duration,
    /// Growth per attempt (Boost: 1.5).
    pub factor: f64,
    /// Attempts per connection before giving up (Boost: 15).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
            factor: 1.5,
            max_attempts: 15,
        }
    }
}

/// Transfer limits and behaviour. Defaults follow Boost.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TransferConfig {
    /// Where partial and finished transfers are written.
    pub staging_dir: PathBuf,
    /// Transfers receiving at once (Boost: 20); more wait in `Queued`.
    pub max_concurrent: usize,
    /// Bytes all unfinished or not yet collected transfers may occupy.
    pub max_staging_bytes: u64,
    /// Of those, bytes one host may occupy.
    pub max_staging_bytes_per_host: u64,
    /// A connection that delivers nothing for this long is dropped and retried (5 min).
    pub stall_timeout: Duration,
    /// Retries.
    pub retry: RetryPolicy,
    /// Parallel connections for large HTTP transfers (Boost NChunks: 5). libp2p uses one.
    pub connections: usize,
    /// Below this size one connection is used (10 MiB).
    pub multi_connection_threshold: u64,
    /// fsync and record progress every this many bytes per connection (32 MiB).
    pub checkpoint_bytes: u64,
    /// Upper bound on one transfer (Boost: 24 h).
    pub max_duration: Duration,
    /// How long a transfer waits for space when the staging disk is full before it fails
    /// (1 h); it retries the write every [`RetryPolicy::min_backoff`] and resumes where the
    /// durable bytes end.
    pub disk_full_timeout: Duration,
    /// Which addresses may be fetched from.
    pub policy: AddressPolicy,
}

impl TransferConfig {
    /// Sets [`staging_dir`](Self::staging_dir).
    pub fn with_staging_dir(mut self, staging_dir: PathBuf) -> Self {
        self.staging_dir = staging_dir;
        self
    }

    /// Sets [`max_concurrent`](Self::max_concurrent).
    pub fn with_max_concurrent(mut self, max_concurrent: usize) -> Self {
        self.max_concurrent = max_concurrent;
        self
    }

    /// Sets [`max_staging_bytes`](Self::max_staging_bytes).
    pub fn with_max_staging_bytes(mut self, max_staging_bytes: u64) -> Self {
        self.max_staging_bytes = max_staging_bytes;
        self
    }

    /// Sets [`max_staging_bytes_per_host`](Self::max_staging_bytes_per_host).
    pub fn with_max_staging_bytes_per_host(mut self, max_staging_bytes_per_host: u64) -> Self {
        self.max_staging_bytes_per_host = max_staging_bytes_per_host;
        self
    }

    /// Sets [`stall_timeout`](Self::stall_timeout).
    pub fn with_stall_timeout(mut self, stall_timeout: Duration) -> Self {
        self.stall_timeout = stall_timeout;
        self
    }

    /// Sets [`retry`](Self::retry).
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets [`connections`](Self::connections).
    pub fn with_connections(mut self, connections: usize) -> Self {
        self.connections = connections;
        self
    }

    /// Sets [`multi_connection_threshold`](Self::multi_connection_threshold).
    pub fn with_multi_connection_threshold(mut self, multi_connection_threshold: u64) -> Self {
        self.multi_connection_threshold = multi_connection_threshold;
        self
    }

    /// Sets [`checkpoint_bytes`](Self::checkpoint_bytes).
    pub fn with_checkpoint_bytes(mut self, checkpoint_bytes: u64) -> Self {
        self.checkpoint_bytes = checkpoint_bytes;
        self
    }

    /// Sets [`disk_full_timeout`](Self::disk_full_timeout).
    pub fn with_disk_full_timeout(mut self, timeout: Duration) -> Self {
        self.disk_full_timeout = timeout;
        self
    }

    /// Sets [`max_duration`](Self::max_duration).
    pub fn with_max_duration(mut self, max_duration: Duration) -> Self {
        self.max_duration = max_duration;
        self
    }

    /// Sets [`policy`](Self::policy).
    pub fn with_policy(mut self, policy: AddressPolicy) -> Self {
        self.policy = policy;
        self
    }
}

impl TransferConfig {
    /// Defaults with staging in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            staging_dir: dir.into(),
            max_concurrent: 20,
            max_staging_bytes: 1 << 40,
            max_staging_bytes_per_host: 1 << 40,
            stall_timeout: Duration::from_secs(300),
            retry: RetryPolicy::default(),
            connections: 5,
            multi_connection_threshold: 10 << 20,
            checkpoint_bytes: 32 << 20,
            max_duration: Duration::from_secs(24 * 3600),
            disk_full_timeout: Duration::from_secs(3600),
            policy: AddressPolicy::default(),
        }
    }
}

/// A transfer that finished: the staged file and its piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completed {
    /// The staged payload; hand it to [`piecestore::PieceStore::put_staged`] (see
    /// [`Completed::staged`]), then call [`TransferManager::remove`].
    pub path: PathBuf,
    /// CID and sizes of the received payload.
    pub piece: PieceMeta,
    /// The payload's CAR blocks, found while it was hashed, for indexing without reading
    /// the piece again. `None` after a restart since completion, or past
    /// [`MAX_INDEXED_BLOCKS`] blocks.
    pub blocks: Option<CarBlocks>,
}

impl Completed {
    /// The staged payload, for [`piecestore::PieceStore::put_staged`].
    pub fn staged(&self) -> piecestore::StagedPiece {
        piecestore::StagedPiece::new(&self.path, self.piece)
    }
}

struct Inner {
    config: TransferConfig,
    store: TransferStore,
    slots: Arc<Semaphore>,
    events: broadcast::Sender<TransferEvent>,
    http: reqwest::Client,
    p2p: Option<Host>,
    running: Mutex<HashMap<TransferId, Running>>,
    /// CAR blocks of completed transfers, until they are removed.
    blocks: Mutex<HashMap<TransferId, CarBlocks>>,
    /// Serialises admission so two transfers cannot both take the last staging bytes.
    admit: tokio::sync::Mutex<()>,
}

struct Running {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    /// Bytes written so far, updated as they arrive (the record only moves at checkpoints).
    received: Arc<AtomicU64>,
}

/// Runs and tracks transfers. Cheap to clone.
#[derive(Clone)]
pub struct TransferManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for TransferManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferManager")
            .field("staging_dir", &self.inner.config.staging_dir)
            .finish_non_exhaustive()
    }
}

/// Why one attempt stopped.
enum Attempt {
    /// Try again after a backoff.
    Retry(String),
    /// Give up on the transfer.
    Fatal(TransferError),
}

impl From<TransferError> for Attempt {
    fn from(e: TransferError) -> Self {
        Self::Fatal(e)
    }
}

impl From<std::io::Error> for Attempt {
    fn from(e: std::io::Error) -> Self {
        Self::Fatal(e.into())
    }
}

impl TransferManager {
    /// Opens the transfer database in the staging directory and resumes every transfer that
    /// was queued or running. `p2p` is needed for `libp2p://` URLs.
    pub async fn open(config: TransferConfig, p2p: Option<Host>) -> Result<Self, TransferError> {
        std::fs::create_dir_all(&config.staging_dir)?;
        let store = TransferStore::open(&config.staging_dir.join("transfers.db"))?;
        let http = http_client(config.policy)?;
        let this = Self {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(config.max_concurrent.max(1))),
                config,
                store,
                events: broadcast::channel(1024).0,
                http,
                p2p,
                running: Mutex::new(HashMap::new()),
                blocks: Mutex::new(HashMap::new()),
                admit: tokio::sync::Mutex::new(()),
            }),
        };
        for rec in this.inner.store.list().await? {
            if !rec.state.is_terminal() {
                tracing::info!(id = %rec.request.id, received = rec.received(), "resuming transfer");
                this.spawn(rec);
            }
        }
        Ok(this)
    }

    /// The configuration.
    pub fn config(&self) -> &TransferConfig {
        &self.inner.config
    }

    /// Progress and state changes of every transfer.
    pub fn subscribe(&self) -> broadcast::Receiver<TransferEvent> {
        self.inner.events.subscribe()
    }

    fn staging_path(&self, id: &TransferId) -> PathBuf {
        staging_file(&self.inner.config.staging_dir, id)
    }

    async fn record(&self, id: &TransferId) -> Result<TransferRecord, TransferError> {
        self.inner
            .store
            .get(id)
            .await?
            .ok_or_else(|| TransferError::NotFound(id.to_string()))
    }

    /// Checks a transfer could be admitted now: URL, address policy, staging space. Deal
    /// acceptance calls this so a deal is refused with the reason, not failed later.
    pub async fn check(&self, url: &str, size: u64) -> Result<Source, TransferError> {
        let source = Source::parse(url)?;
        if size == 0 {
            return Err(TransferError::InvalidUrl {
                url: url.chars().take(256).collect(),
                reason: "transfer size is zero".into(),
            });
        }
        if let Some(ip) = source.ip() {
            self.inner.config.policy.check(ip)?;
        }
        let (total, per_host) = self.inner.store.staged_bytes(&source.host()).await?;
        let c = &self.inner.config;
        let available = c.max_staging_bytes.saturating_sub(total);
        if size > available {
            return Err(TransferError::StagingFull {
                needed: size,
                available,
                limit: c.max_staging_bytes,
            });
        }
        let available = c.max_staging_bytes_per_host.saturating_sub(per_host);
        if size > available {
            return Err(TransferError::HostStagingFull {
                host: source.host(),
                needed: size,
                available,
            });
        }
        Ok(source)
    }

    /// Admits and starts a transfer; it is persisted before this returns. Starting an id that
    /// exists with the same request is a no-op (so callers can retry after a crash).
    pub async fn start(&self, req: TransferRequest) -> Result<(), TransferError> {
        let _admit = self.inner.admit.lock().await;
        if let Some(existing) = self.inner.store.get(&req.id).await? {
            if existing.request == req {
                return Ok(());
            }
            return Err(TransferError::Duplicate(req.id.to_string()));
        }
        header_map(&req.headers)?;
        let source = self.check(&req.url, req.size).await?;
        let n = match source {
            Source::Http(_) if req.size >= self.inner.config.multi_connection_threshold => {
                self.inner.config.connections
            }
            _ => 1,
        };
        let chunks = Chunk::split(req.size, n);
        self.inner
            .store
            .insert(&req, &source.host(), &chunks)
            .await?;
        let rec = self.record(&req.id).await?;
        self.spawn(rec);
        Ok(())
    }

    /// The stored record of `id`.
    pub async fn status(&self, id: &TransferId) -> Result<Option<TransferRecord>, TransferError> {
        self.inner.store.get(id).await
    }

    /// Bytes of `id` received so far: counted as they arrive while it runs (progress for
    /// status answers and bars), the durable checkpointed count otherwise.
    pub async fn received(&self, id: &TransferId) -> Result<Option<u64>, TransferError> {
        if let Some(r) = self.lock_running().get(id) {
            return Ok(Some(r.received.load(Ordering::Relaxed)));
        }
        Ok(self.status(id).await?.map(|rec| rec.received()))
    }

    /// Every stored transfer.
    pub async fn list(&self) -> Result<Vec<TransferRecord>, TransferError> {
        self.inner.store.list().await
    }

    /// Cancels `id`: its connections close, its staged bytes are deleted, and it ends
    /// `Cancelled`.
    pub async fn cancel(&self, id: &TransferId) -> Result<(), TransferError> {
        let rec = self.record(id).await?;
        if rec.state.is_terminal() {
            return Ok(());
        }
        let running = self.lock_running().remove(id);
        if let Some(r) = running {
            r.cancel.cancel();
            let _ = r.task.await;
        }
        self.end(&rec, TransferState::Cancelled, "cancelled").await
    }

    /// Waits until `id` ends. `Ok` with the staged file and its piece if it completed; its
    /// error otherwise.
    pub async fn wait(&self, id: &TransferId) -> Result<Completed, TransferError> {
        let mut events = self.subscribe();
        loop {
            let rec = self.record(id).await?;
            match rec.state {
                TransferState::Completed => {
                    let piece_cid = rec.piece_cid.ok_or_else(|| {
                        TransferError::Corrupt(format!("{id} completed without a piece CID"))
                    })?;
                    let padded = match rec.request.padded_size {
                        Some(p) => p,
                        None => commp::PaddedPieceSize::for_payload(rec.request.size)
                            .map_err(|e| TransferError::Corrupt(e.to_string()))?,
                    };
                    return Ok(Completed {
                        path: self.staging_path(id),
                        piece: PieceMeta {
                            piece_cid,
                            payload_size: rec.request.size,
                            padded_size: padded,
                        },
                        blocks: self.lock_blocks().get(id).cloned(),
                    });
                }
                TransferState::Failed => {
                    return Err(TransferError::Task(format!(
                        "transfer {id} failed: {}",
                        rec.error
                    )));
                }
                TransferState::Cancelled => return Err(TransferError::Cancelled),
                _ => {}
            }
            // Wake on this transfer's next state change; re-read on lag.
            loop {
                match events.recv().await {
                    Ok(e) if &e.id == id && e.state.is_terminal() => break,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => {
                        return Err(TransferError::Cancelled);
                    }
                }
            }
        }
    }

    /// Forgets a finished transfer and deletes its staged file (if still there), releasing its
    /// staging space.
    pub async fn remove(&self, id: &TransferId) -> Result<(), TransferError> {
        self.lock_blocks().remove(id);
        if let Some(r) = self.lock_running().remove(id) {
            r.cancel.cancel();
            r.task.abort();
        }
        match tokio::fs::remove_file(self.staging_path(id)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        self.inner.store.delete(id).await
    }

    /// Stops every transfer where it is, without recording anything: what a crash does.
    /// A manager opened on the same directory resumes them.
    pub fn stop(&self) {
        for (_, r) in self.lock_running().drain() {
            r.task.abort();
        }
    }

    fn lock_blocks(&self) -> std::sync::MutexGuard<'_, HashMap<TransferId, CarBlocks>> {
        self.inner.blocks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<TransferId, Running>> {
        self.inner.running.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, rec: &TransferRecord, state: TransferState, received: u64, error: &str) {
        let _ = self.inner.events.send(TransferEvent {
            id: rec.request.id.clone(),
            state,
            received,
            total: rec.request.size,
            error: error.to_owned(),
        });
    }

    async fn end(
        &self,
        rec: &TransferRecord,
        state: TransferState,
        error: &str,
    ) -> Result<(), TransferError> {
        // Failed and cancelled transfers give their staging space back at once.
        let _ = tokio::fs::remove_file(self.staging_path(&rec.request.id)).await;
        self.inner
            .store
            .set_state(&rec.request.id, state, error, None)
            .await?;
        self.emit(rec, state, rec.received(), error);
        Ok(())
    }

    fn spawn(&self, rec: TransferRecord) {
        let cancel = CancellationToken::new();
        let this = self.clone();
        let token = cancel.clone();
        let id = rec.request.id.clone();
        let received = Arc::new(AtomicU64::new(rec.received()));
        let live = received.clone();
        // Held until the entry is in, so a transfer that ends at once still removes it.
        let mut running = self.lock_running();
        let task = tokio::spawn(async move {
            let limit = this.inner.config.max_duration;
            let result = tokio::select! {
                r = tokio::time::timeout(limit, this.run(&rec, &token, live)) => {
                    r.unwrap_or(Err(TransferError::TimedOut(limit)))
                }
                _ = token.cancelled() => return,
            };
            market_core::metrics::transfer_done(result.is_ok());
            if let Err(e) = result {
                tracing::warn!(id = %rec.request.id, error = %e, "transfer failed");
                if let Err(e2) = this.end(&rec, TransferState::Failed, &e.to_string()).await {
                    tracing::error!(id = %rec.request.id, error = %e2, "recording a failed transfer");
                }
            }
            this.lock_running().remove(&rec.request.id);
        });
        running.insert(
            id,
            Running {
                cancel,
                task,
                received,
            },
        );
    }

    async fn run(
        &self,
        rec: &TransferRecord,
        cancel: &CancellationToken,
        live: Arc<AtomicU64>,
    ) -> Result<(), TransferError> {
        let id = &rec.request.id;
        let _slot = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| TransferError::Cancelled)?;
        self.inner
            .store
            .set_state(id, TransferState::Running, "", None)
            .await?;
        self.emit(rec, TransferState::Running, rec.received(), "");

        let source = Source::parse(&rec.request.url)?;
        let addr = match &source {
            Source::Libp2p { addr, .. } => {
                Some(self.inner.config.policy.resolve_multiaddr(addr).await?)
            }
            Source::Http(_) => None,
        };
        let fetcher = Fetcher::new(
            &source,
            header_map(&rec.request.headers)?,
            &self.inner.http,
            self.inner.p2p.as_ref(),
            addr,
        )?;
        let path = self.staging_path(id);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)?;
        let shared = Arc::new(Shared {
            file: Arc::new(file.try_clone()?),
            chunks: Mutex::new(rec.chunks.clone()),
            written: Mutex::new(rec.chunks.iter().map(|c| c.done).collect()),
            follower: Mutex::new(None),
            checkpoint_wanted: Notify::new(),
            live,
            transport: match &source {
                Source::Libp2p { .. } => "libp2p",
                Source::Http(_) => "http",
            },
        });
        let frontier = shared.frontier();
        *shared.lock_follower() = Some(CommPFollower::start_indexing(
            file,
            frontier,
            MAX_INDEXED_BLOCKS,
        )?);

        let workers =
            (0..rec.chunks.len()).map(|i| self.fetch_chunk(rec, &fetcher, &shared, i, cancel));
        // Periodic checkpoints run beside the connections instead of stalling the one that
        // asked; each connection's last checkpoint is its own and awaited.
        let results = tokio::select! {
            results = futures::future::join_all(workers) => results,
            e = self.checkpoint_loop(rec, &shared) => return Err(e),
        };
        for r in results {
            r?;
        }
        let follower = shared
            .lock_follower()
            .take()
            .ok_or_else(|| TransferError::Task("commP follower missing".into()))?;
        let (info, blocks) = follower
            .finish_indexed(rec.request.size, rec.request.padded_size)
            .await?;
        let piece = market_core::cid::widen(&info.cid_v1());
        if let Some(blocks) = blocks {
            self.lock_blocks().insert(id.clone(), blocks);
        }
        self.inner
            .store
            .set_state(id, TransferState::Completed, "", Some(piece))
            .await?;
        tracing::info!(%id, %piece, bytes = rec.request.size, "transfer completed");
        self.emit(rec, TransferState::Completed, rec.request.size, "");
        Ok(())
    }

    async fn fetch_chunk(
        &self,
        rec: &TransferRecord,
        fetcher: &Fetcher,
        shared: &Arc<Shared>,
        index: usize,
        cancel: &CancellationToken,
    ) -> Result<(), TransferError> {
        let policy = self.inner.config.retry;
        let mut delay = policy.min_backoff;
        let mut attempts = 0;
        let mut full_since: Option<tokio::time::Instant> = None;
        loop {
            let chunk = shared.lock_chunks()[index];
            // Resume from what is written (page cache), which may be ahead of what is durable.
            let written = shared.written.lock().unwrap_or_else(|p| p.into_inner())[index];
            if chunk.start + written >= chunk.end {
                return Ok(());
            }
            let err = match self
                .attempt(rec, fetcher, shared, index, chunk, written)
                .await
            {
                Ok(()) => {
                    full_since = None;
                    continue;
                }
                Err(Attempt::Fatal(e)) if e.is_disk_full() => {
                    // Wait for space instead of failing the deal; nothing written is lost.
                    let first = full_since.is_none();
                    let since = *full_since.get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() >= self.inner.config.disk_full_timeout {
                        return Err(e);
                    }
                    if first {
                        tracing::warn!(id = %rec.request.id, error = %e, "staging disk full: waiting for space");
                    }
                    let received = shared.live.load(Ordering::Relaxed);
                    let why = format!("waiting for disk space: {e}");
                    self.emit(rec, TransferState::Running, received, &why);
                    tokio::select! {
                        _ = tokio::time::sleep(policy.min_backoff) => {}
                        _ = cancel.cancelled() => return Err(TransferError::Cancelled),
                    }
                    continue;
                }
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Retry(why)) => why,
            };
            attempts += 1;
            if attempts >= policy.max_attempts {
                return Err(TransferError::RetriesExhausted {
                    attempts,
                    last: err,
                });
            }
            tracing::debug!(id = %rec.request.id, chunk = index, attempts, %err, ?delay, "retrying");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = cancel.cancelled() => return Err(TransferError::Cancelled),
            }
            delay = delay.mul_f64(policy.factor).min(policy.max_backoff);
        }
    }

    /// One GET for the rest of chunk `index`, written as it arrives.
    async fn attempt(
        &self,
        rec: &TransferRecord,
        fetcher: &Fetcher,
        shared: &Arc<Shared>,
        index: usize,
        chunk: Chunk,
        written: u64,
    ) -> Result<(), Attempt> {
        let total = rec.request.size;
        let from = chunk.start + written;
        let reply = fetcher
            .get(from, chunk.end, total)
            .await
            .map_err(|e| match e {
                FetchError::Retry(why) => Attempt::Retry(why),
                FetchError::Forbidden(a) => Attempt::Fatal(TransferError::ForbiddenAddress(a)),
            })?;
        // A 200 carries the whole file: skip what we have.
        let mut skip = match reply.status {
            206 => {
                if let Some(t) = reply.range_total {
                    size_check(t, total)?;
                }
                0
            }
            200 => {
                if let Some(len) = reply.content_length {
                    size_check(len, total)?;
                }
                from
            }
            416 => {
                return Err(Attempt::Fatal(TransferError::Truncated {
                    expected: total,
                    available: reply.range_total.unwrap_or(0),
                }));
            }
            s @ 400..=499 => return Err(Attempt::Fatal(TransferError::Refused { status: s })),
            s => return Err(Attempt::Retry(format!("server answered {s}"))),
        };
        let mut body = reply.body;
        let mut pos = from;
        let mut buf = Frames::default();
        let mut since_checkpoint = 0u64;
        let stall = self.inner.config.stall_timeout;
        let flush_at = WRITE_CHUNK.min(self.inner.config.checkpoint_bytes.max(1));
        loop {
            let next = tokio::time::timeout(stall, body.next()).await;
            let bytes: Bytes = match next {
                Err(_) => {
                    self.flush(rec, shared, index, &mut buf, &mut pos).await?;
                    return Err(Attempt::Retry(format!("stalled for {stall:?}")));
                }
                Ok(None) => break,
                Ok(Some(Err(e))) => {
                    self.flush(rec, shared, index, &mut buf, &mut pos).await?;
                    self.checkpoint(rec, shared).await?;
                    return Err(Attempt::Retry(format!(
                        "connection broke at byte {}: {e}",
                        pos
                    )));
                }
                Ok(Some(Ok(b))) => b,
            };
            let mut bytes = bytes;
            if skip > 0 {
                let n = (skip as usize).min(bytes.len());
                skip -= n as u64;
                bytes = bytes.slice(n..);
            }
            let room = chunk.end - pos - buf.len;
            if bytes.len() as u64 > room {
                if chunk.end == total {
                    return Err(Attempt::Fatal(TransferError::Oversized { expected: total }));
                }
                // A whole-file answer to a ranged chunk: keep our part, drop the connection.
                buf.push(bytes.slice(..room as usize));
                break;
            }
            buf.push(bytes);
            if buf.len >= flush_at {
                since_checkpoint += buf.len;
                self.flush(rec, shared, index, &mut buf, &mut pos).await?;
                if since_checkpoint >= self.inner.config.checkpoint_bytes {
                    since_checkpoint = 0;
                    // Requests made while one runs are merged into the next.
                    shared.checkpoint_wanted.notify_one();
                }
            }
        }
        self.flush(rec, shared, index, &mut buf, &mut pos).await?;
        self.checkpoint(rec, shared).await?;
        if pos < chunk.end {
            return Err(Attempt::Retry(format!(
                "connection closed at byte {pos} of {}",
                chunk.end
            )));
        }
        Ok(())
    }

    /// Writes the frames at `pos`, starts their writeback, and lets the hasher follow.
    async fn flush(
        &self,
        rec: &TransferRecord,
        shared: &Arc<Shared>,
        index: usize,
        buf: &mut Frames,
        pos: &mut u64,
    ) -> Result<(), Attempt> {
        if buf.len == 0 {
            return Ok(());
        }
        let len = std::mem::take(&mut buf.len);
        let data = std::mem::take(&mut buf.frames);
        let file = shared.file.clone();
        let at = *pos;
        let data = tokio::task::spawn_blocking(move || {
            piecestore::write_frames_at(&file, &data, at)?;
            // The checkpoints' fsyncs then find these bytes on disk or on their way.
            piecestore::start_writeback(&file, at, len);
            Ok::<_, std::io::Error>(data)
        })
        .await
        .map_err(TransferError::from)??;
        *pos += len;
        market_core::metrics::transfer_bytes(shared.transport, len);
        let before = shared.frontier();
        let received = {
            let mut w = shared.written.lock().unwrap_or_else(|p| p.into_inner());
            w[index] += len;
            w.iter().sum()
        };
        shared.live.store(received, Ordering::Relaxed);
        let frontier = shared.frontier();
        if let Some(f) = shared.lock_follower().as_ref() {
            if at == before {
                // These bytes extend the complete prefix: hash them without reading back.
                f.feed_frames(at, data, frontier);
            } else {
                f.advance(frontier);
            }
        }
        self.emit(rec, TransferState::Running, received, "");
        Ok(())
    }

    /// Checkpoints whenever a connection asks, until a checkpoint fails: the error that
    /// ends the transfer (bytes that may not be on disk must not be recorded or used).
    async fn checkpoint_loop(&self, rec: &TransferRecord, shared: &Arc<Shared>) -> TransferError {
        loop {
            shared.checkpoint_wanted.notified().await;
            match self.checkpoint(rec, shared).await {
                Ok(()) => {}
                // As the connections do: a full disk is waited out, and the durable record
                // only lags meanwhile (the next request tries again).
                Err(Attempt::Fatal(e)) if e.is_disk_full() => {
                    tracing::debug!(id = %rec.request.id, error = %e, "checkpoint waits for disk space");
                }
                Err(Attempt::Fatal(e)) => return e,
                Err(Attempt::Retry(why)) => return TransferError::Task(why),
            }
        }
    }

    /// fsyncs the file, then records every connection's written bytes as durable.
    async fn checkpoint(&self, rec: &TransferRecord, shared: &Arc<Shared>) -> Result<(), Attempt> {
        let written: Vec<u64> = shared
            .written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let file = shared.file.clone();
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(TransferError::from)??;
        let chunks = {
            let mut c = shared.lock_chunks();
            for (chunk, w) in c.iter_mut().zip(&written) {
                chunk.done = chunk.done.max(*w);
            }
            c.clone()
        };
        self.inner
            .store
            .set_chunks(&rec.request.id, &chunks)
            .await?;
        Ok(())
    }
}

/// Bytes gathered before one write (and one hand-over to the hasher).
const WRITE_CHUNK: u64 = 1 << 20;

/// Body frames received and not yet written, kept as they came (no copy into one buffer).
#[derive(Default)]
struct Frames {
    frames: Vec<Bytes>,
    len: u64,
}

impl Frames {
    fn push(&mut self, frame: Bytes) {
        self.len += frame.len() as u64;
        self.frames.push(frame);
    }
}

/// Most CAR blocks a transfer keeps in memory for the piece index (about 45 MB); a payload
/// with more is indexed by reading it again. A 32 GiB CAR of 128 KiB blocks fits.
pub const MAX_INDEXED_BLOCKS: usize = 1 << 18;

fn size_check(source: u64, expected: u64) -> Result<(), Attempt> {
    if source < expected {
        return Err(Attempt::Fatal(TransferError::Truncated {
            expected,
            available: source,
        }));
    }
    if source > expected {
        return Err(Attempt::Fatal(TransferError::Oversized { expected }));
    }
    Ok(())
}

/// State the connections of one transfer share.
struct Shared {
    file: Arc<std::fs::File>,
    /// Durable progress (what is in the database).
    chunks: Mutex<Vec<Chunk>>,
    /// Bytes written per chunk (page cache; durable after the next checkpoint).
    written: Mutex<Vec<u64>>,
    follower: Mutex<Option<CommPFollower>>,
    /// A connection has written `checkpoint_bytes` since its last request.
    checkpoint_wanted: Notify,
    /// Their sum, for [`TransferManager::received`].
    live: Arc<AtomicU64>,
    /// `http` or `libp2p`, the transfer-bytes metric's label.
    transport: &'static str,
}

impl Shared {
    fn lock_chunks(&self) -> std::sync::MutexGuard<'_, Vec<Chunk>> {
        self.chunks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_follower(&self) -> std::sync::MutexGuard<'_, Option<CommPFollower>> {
        self.follower.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Length of the contiguous written prefix.
    fn frontier(&self) -> u64 {
        let chunks = self.lock_chunks();
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let mut end = 0;
        for (c, w) in chunks.iter().zip(written.iter()) {
            end = c.start + w;
            if c.start + w < c.end {
                break;
            }
        }
        end
    }
}

/// The staged file of a transfer in `dir` (for tools that inspect staging).
pub fn staging_file(dir: &Path, id: &TransferId) -> PathBuf {
    dir.join(format!("{id}.car"))
}
