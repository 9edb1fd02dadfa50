//! Pieces as objects in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Aliyun OSS).
//!
//! Layout under the configured prefix, mirroring [`crate::FsPieceStore`]:
//! - `<piece CID>`: the payload, uploaded in parts while its commP is computed, so no local
//!   copy is needed and the bytes pass once;
//! - `<piece CID>.meta.json`: what is stored (sizes, and the payload's object key), written
//!   only after the payload is complete and verified. A piece exists exactly when its meta
//!   object does: an upload that fails, mismatches or is cancelled is aborted (an incomplete
//!   multipart upload is invisible; a bucket lifecycle rule that aborts old incomplete uploads
//!   cleans up after a process that died mid-upload).
//!
//! A payload hashed without a promised CID goes to `incoming/<uuid>`, since its name is known
//! only at the end and S3 cannot rename (a copy of a 32 GiB object is refused); its meta object
//! records that key.
//!
//! A process killed between a payload's last part and its meta leaves a payload no meta
//! names: [`S3PieceStore::sweep_orphans`] deletes those once they are older than a grace
//! period (the node sweeps each writable bucket at start and daily).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use commp::{CommP, PaddedPieceSize, PieceInfo};
use futures::{StreamExt, TryStreamExt};
use market_core::Cid;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncReadExt;

use crate::PieceStoreError;
use crate::store::{
    ByteRange, ExpectedPiece, PieceMeta, PieceReader, PieceStore, check_piece_cid, check_read_at,
};

/// Bytes read from the source before they are handed to the hasher and the upload.
const READ_CHUNK: usize = 1 << 20;
/// Largest meta object read back: a few hundred bytes are expected; a tampered bucket must not
/// make the node buffer a large object.
pub const MAX_META: u64 = 4096;
/// Metas cached in memory (they never change once written); past this the cache is cleared.
const META_CACHE: usize = 4096;
const META_SUFFIX: &str = ".meta.json";
const INCOMING: &str = "incoming";

/// Where the bucket is and how to sign for it.
///
/// Credentials not given here come from the usual `AWS_*` environment variables
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`), so they need not be
/// written into a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct S3Config {
    /// The bucket.
    pub bucket: String,
    /// The service URL without the bucket (`https://oss-cn-hangzhou.aliyuncs.com`,
    /// `http://127.0.0.1:9000`); unset means AWS S3 in `region`.
    pub endpoint: Option<String>,
    /// The region (`us-east-1`, `oss-cn-hangzhou`); AWS needs the right one to sign.
    pub region: Option<String>,
    /// Access key id.
    pub access_key: Option<String>,
    /// Secret access key.
    pub secret_key: Option<String>,
    /// Session token of temporary credentials (STS).
    pub session_token: Option<String>,
    /// `bucket.host` requests instead of `host/bucket` (Aliyun OSS requires them; MinIO and
    /// Ceph take both).
    pub virtual_hosted: bool,
    /// Key prefix of every object (`pieces/`); empty for the bucket's root.
    pub prefix: String,
    /// Upload part size in bytes: at least 5 MiB (S3's minimum), and a 64 GiB piece must fit
    /// in S3's 10,000 parts.
    pub part_size: usize,
    /// Parts uploaded at once per piece; memory is about `part_size` times this.
    pub upload_concurrency: usize,
    /// Bytes fetched around a small [`PieceStore::read_at`] and kept for the next ones: a CAR
    /// retrieval reads its blocks in payload order, so one GET serves hundreds of blocks
    /// instead of one GET each (0 turns this off).
    pub read_window: u64,
    /// Read windows kept in memory (memory is about `read_window` times this).
    pub read_windows: usize,
    /// Retries of a failed request (with backoff) before the operation fails.
    pub max_retries: usize,
    /// Time spent retrying one request at most: a bucket that went away fails a deal's step
    /// within this, it does not hang it.
    pub retry_timeout: std::time::Duration,
}

impl S3Config {
    /// A bucket with the defaults: AWS endpoint, path-style, 16 MiB parts, 4 in flight.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            endpoint: None,
            region: None,
            access_key: None,
            secret_key: None,
            session_token: None,
            virtual_hosted: false,
            prefix: String::new(),
            part_size: 16 << 20,
            upload_concurrency: 4,
            read_window: 4 << 20,
            read_windows: 8,
            max_retries: 3,
            retry_timeout: std::time::Duration::from_secs(60),
        }
    }

    /// The service URL (without the bucket).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// The region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// Static credentials.
    pub fn with_credentials(
        mut self,
        access_key: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Self {
        self.access_key = Some(access_key.into());
        self.secret_key = Some(secret_key.into());
        self
    }

    /// A session token for temporary credentials.
    pub fn with_session_token(mut self, token: impl Into<String>) -> Self {
        self.session_token = Some(token.into());
        self
    }

    /// Virtual-hosted-style requests.
    pub fn with_virtual_hosted(mut self, virtual_hosted: bool) -> Self {
        self.virtual_hosted = virtual_hosted;
        self
    }

    /// The key prefix.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Upload part size and parts in flight.
    pub fn with_parts(mut self, part_size: usize, concurrency: usize) -> Self {
        self.part_size = part_size;
        self.upload_concurrency = concurrency;
        self
    }

    /// Read window size and how many are kept (`0` size: every read is its own GET).
    pub fn with_read_windows(mut self, size: u64, count: usize) -> Self {
        self.read_window = size;
        self.read_windows = count;
        self
    }
}

/// The endpoint object_store wants for virtual-hosted requests: the bucket as the first label
/// of the host (`https://oss-cn-hangzhou.aliyuncs.com` → `https://b.oss-cn-hangzhou…`).
pub fn virtual_hosted_endpoint(endpoint: &str, bucket: &str) -> Result<String, PieceStoreError> {
    let mut url = url::Url::parse(endpoint)
        .map_err(|e| PieceStoreError::Config(format!("S3 endpoint {endpoint:?}: {e}")))?;
    let host = url
        .host_str()
        .ok_or_else(|| PieceStoreError::Config(format!("S3 endpoint {endpoint:?} has no host")))?
        .to_string();
    if !host.starts_with(&format!("{bucket}.")) {
        url.set_host(Some(&format!("{bucket}.{host}")))
            .map_err(|e| PieceStoreError::Config(format!("S3 endpoint {endpoint:?}: {e}")))?;
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

/// What `<piece CID>.meta.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredMeta {
    piece_cid: String,
    payload_size: u64,
    padded_size: u64,
    /// The payload's key under the prefix.
    object: String,
}

/// A meta object as stored: the piece and where its payload is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaRecord {
    /// The piece.
    pub meta: PieceMeta,
    /// The payload's key under the store's prefix.
    pub object: String,
}

/// Reads a meta object; anything but a well-formed record of `expected` (when given) is
/// [`PieceStoreError::Corrupt`].
pub fn parse_meta(bytes: &[u8], expected: Option<&Cid>) -> Result<MetaRecord, PieceStoreError> {
    let corrupt = |why: String| PieceStoreError::Corrupt(format!("S3 piece meta: {why}"));
    if bytes.len() as u64 > MAX_META {
        return Err(corrupt(format!(
            "{} bytes, at most {MAX_META}",
            bytes.len()
        )));
    }
    let m: StoredMeta = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    let piece_cid: Cid = m
        .piece_cid
        .parse()
        .map_err(|e| corrupt(format!("piece CID {:?}: {e}", m.piece_cid)))?;
    check_piece_cid(&piece_cid)?;
    if let Some(want) = expected
        && *want != piece_cid
    {
        return Err(corrupt(format!("holds {piece_cid}, expected {want}")));
    }
    let padded_size =
        PaddedPieceSize::new(m.padded_size).map_err(|e| corrupt(format!("padded size: {e}")))?;
    if m.payload_size > u64::from(padded_size.unpadded()) {
        return Err(corrupt(format!(
            "payload of {} bytes in a {}-byte piece",
            m.payload_size, m.padded_size
        )));
    }
    let object_ok = !m.object.is_empty()
        && m.object.len() <= 256
        && m.object
            .split('/')
            .all(|p| !p.is_empty() && p != "." && p != "..");
    if !object_ok {
        return Err(corrupt(format!("object key {:?}", m.object)));
    }
    Ok(MetaRecord {
        meta: PieceMeta {
            piece_cid,
            payload_size: m.payload_size,
            padded_size,
        },
        object: m.object,
    })
}

fn render_meta(meta: &PieceMeta, object: &str) -> Vec<u8> {
    serde_json::to_vec(&StoredMeta {
        piece_cid: meta.piece_cid.to_string(),
        payload_size: meta.payload_size,
        padded_size: meta.padded_size.get(),
        object: object.to_string(),
    })
    .expect("a meta record serialises")
}

/// A piece store on an S3-compatible bucket. Cheap to clone.
#[derive(Debug, Clone)]
pub struct S3PieceStore {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: Path,
    part_size: usize,
    concurrency: usize,
    /// Meta records read or written, with when: another instance's delete shows here within
    /// [`WINDOW_TTL`].
    metas: Arc<Mutex<HashMap<Cid, (MetaRecord, std::time::Instant)>>>,
    windows: Arc<Mutex<Windows>>,
}

/// How long a read window or a meta record is served from memory. Payloads never change, but
/// another instance may delete one: this instance answers from memory at most this long
/// after.
pub const WINDOW_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Recently fetched windows of payloads, most recent last.
#[derive(Debug, Default)]
struct Windows {
    size: u64,
    max: usize,
    kept: Vec<(Cid, u64, Bytes, std::time::Instant)>,
}

impl Windows {
    fn get(&mut self, piece: &Cid, start: u64) -> Option<Bytes> {
        self.kept.retain(|w| w.3.elapsed() < WINDOW_TTL);
        let i = self
            .kept
            .iter()
            .position(|(c, s, _, _)| c == piece && *s == start)?;
        let w = self.kept.remove(i);
        let data = w.2.clone();
        self.kept.push(w);
        Some(data)
    }

    fn insert(&mut self, piece: Cid, start: u64, data: Bytes) {
        self.kept
            .retain(|(c, s, _, _)| !(*c == piece && *s == start));
        if self.kept.len() >= self.max {
            self.kept.remove(0);
        }
        self.kept
            .push((piece, start, data, std::time::Instant::now()));
    }

    fn forget(&mut self, piece: &Cid) {
        self.kept.retain(|(c, _, _, _)| c != piece);
    }
}

/// The windows a read of `range` touches, as `(start, end)` of each, for windows of `size`
/// bytes over a payload of `len` bytes.
pub fn windows_of(range: ByteRange, size: u64, len: u64) -> Vec<(u64, u64)> {
    if range.is_empty() || size == 0 {
        return Vec::new();
    }
    let first = range.start / size;
    let last = (range.end - 1) / size;
    (first..=last)
        .map(|w| (w * size, ((w + 1) * size).min(len)))
        .collect()
}

/// An object under a store's prefix, as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// Its key below the prefix (`<piece CID>`, `<piece CID>.meta.json`, `incoming/<uuid>`).
    pub name: String,
    /// Bytes.
    pub size: u64,
    /// How long ago it was last written.
    pub age: std::time::Duration,
}

/// What a sweep found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Payloads a meta names.
    pub kept: usize,
    /// Payloads no meta names, too young to delete yet (a put may be writing its meta).
    pub young: usize,
    /// Payloads no meta names, deleted.
    pub removed: usize,
    /// Their bytes.
    pub removed_bytes: u64,
}

/// Whether `name` is a payload object of this layout: a piece CID at the top, or
/// `incoming/<uuid>`. Anything else under the prefix (an operator's own files) is never
/// touched by a sweep.
fn is_payload_name(name: &str) -> bool {
    match name.split_once('/') {
        Some((INCOMING, id)) => uuid::Uuid::parse_str(id).is_ok(),
        Some(_) => false,
        None => name
            .parse::<Cid>()
            .is_ok_and(|c| check_piece_cid(&c).is_ok()),
    }
}

/// The payloads a sweep deletes: of this layout, named by no meta (`referenced` holds the
/// `object` of every meta), and older than `grace`. Decided over a listing, apart from I/O.
pub fn orphans<'a>(
    objects: &'a [ListedObject],
    referenced: &HashSet<String>,
    grace: std::time::Duration,
) -> (Vec<&'a ListedObject>, SweepReport) {
    let mut report = SweepReport::default();
    let mut out = Vec::new();
    for o in objects.iter().filter(|o| is_payload_name(&o.name)) {
        if referenced.contains(&o.name) {
            report.kept += 1;
        } else if o.age < grace {
            report.young += 1;
        } else {
            report.removed += 1;
            report.removed_bytes += o.size;
            out.push(o);
        }
    }
    (out, report)
}

impl S3PieceStore {
    /// Connects lazily: nothing is sent until the first operation (see [`check`](Self::check)).
    pub fn open(config: &S3Config) -> Result<Self, PieceStoreError> {
        if config.part_size < (5 << 20) || config.part_size > (5 << 30) {
            return Err(PieceStoreError::Config(format!(
                "S3 part size {} is outside 5 MiB..5 GiB",
                config.part_size
            )));
        }
        let retry = object_store::RetryConfig {
            max_retries: config.max_retries,
            retry_timeout: config.retry_timeout,
            ..Default::default()
        };
        let mut b = AmazonS3Builder::from_env()
            .with_bucket_name(&config.bucket)
            .with_retry(retry)
            .with_client_options(
                object_store::ClientOptions::new()
                    .with_connect_timeout(std::time::Duration::from_secs(10)),
            );
        if let Some(endpoint) = &config.endpoint {
            let endpoint = if config.virtual_hosted {
                virtual_hosted_endpoint(endpoint, &config.bucket)?
            } else {
                endpoint.clone()
            };
            b = b
                .with_allow_http(endpoint.starts_with("http://"))
                .with_endpoint(endpoint);
        }
        b = b.with_virtual_hosted_style_request(config.virtual_hosted);
        if let Some(r) = &config.region {
            b = b.with_region(r);
        }
        if let Some(k) = &config.access_key {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &config.secret_key {
            b = b.with_secret_access_key(k);
        }
        if let Some(t) = &config.session_token {
            b = b.with_token(t);
        }
        let s3: AmazonS3 = b.build()?;
        let prefix = Path::parse(config.prefix.trim_matches('/'))
            .map_err(|e| PieceStoreError::Config(format!("S3 prefix {:?}: {e}", config.prefix)))?;
        let mut store = Self::with_object_store(
            Arc::new(s3),
            &config.bucket,
            prefix,
            config.part_size,
            config.upload_concurrency,
        );
        store.windows = Arc::new(Mutex::new(Windows {
            size: config.read_window,
            max: config.read_windows,
            kept: Vec::new(),
        }));
        Ok(store)
    }

    /// Any [`ObjectStore`] (tests, other clouds). `bucket` is only for [`locator`](PieceStore::locator).
    pub fn with_object_store(
        store: Arc<dyn ObjectStore>,
        bucket: &str,
        prefix: Path,
        part_size: usize,
        concurrency: usize,
    ) -> Self {
        Self {
            store,
            bucket: bucket.to_string(),
            prefix,
            part_size,
            concurrency: concurrency.max(1),
            metas: Arc::default(),
            windows: Arc::default(),
        }
    }

    /// Lists the prefix once: fails when the endpoint, the bucket or the credentials are wrong
    /// (what the node checks at start, rather than at the first deal).
    pub async fn check(&self) -> Result<(), PieceStoreError> {
        self.store.list_with_delimiter(Some(&self.prefix)).await?;
        Ok(())
    }

    /// Deletes payload objects no meta names that are older than `grace` (what a process
    /// killed after its upload and before its meta leaves). Every meta is read first; one
    /// that cannot be read stops the sweep with its error, so a payload is never deleted
    /// on a guess. Several instances may sweep one bucket at once: a delete of what another
    /// deleted is fine. Multipart uploads that never completed are invisible to listings:
    /// a bucket lifecycle rule aborts them.
    pub async fn sweep_orphans(
        &self,
        grace: std::time::Duration,
    ) -> Result<SweepReport, PieceStoreError> {
        let skip = self.prefix.parts_count();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let listed: Vec<object_store::ObjectMeta> =
            self.store.list(Some(&self.prefix)).try_collect().await?;
        let objects: Vec<ListedObject> = listed
            .iter()
            .map(|o| ListedObject {
                name: o
                    .location
                    .parts()
                    .skip(skip)
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/"),
                size: o.size,
                age: std::time::Duration::from_millis(
                    (now_ms - o.last_modified.timestamp_millis()).max(0) as u64,
                ),
            })
            .collect();
        let metas: Vec<Cid> = objects
            .iter()
            .filter_map(|o| o.name.strip_suffix(META_SUFFIX))
            .filter(|n| !n.contains('/'))
            .filter_map(|n| n.parse::<Cid>().ok())
            .collect();
        let referenced: HashSet<String> = futures::stream::iter(metas)
            .map(|cid| async move { self.record(&cid).await })
            .buffer_unordered(16)
            .try_filter_map(|r| async move { Ok(r.map(|r| r.object)) })
            .try_collect()
            .await?;
        let (doomed, report) = orphans(&objects, &referenced, grace);
        // Owned, so the future stays Send for any caller's runtime.
        let doomed: Vec<(String, u64)> = doomed.iter().map(|o| (o.name.clone(), o.size)).collect();
        futures::stream::iter(doomed)
            .map(|(name, size)| async move {
                match self.store.delete(&self.object_path(&name)).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {
                        tracing::info!(object = %name, bytes = size, "orphaned S3 payload deleted");
                        Ok(())
                    }
                    Err(e) => Err(PieceStoreError::from(e)),
                }
            })
            .buffer_unordered(8)
            .try_collect::<Vec<()>>()
            .await?;
        Ok(report)
    }

    fn key(&self, name: &str) -> Path {
        self.prefix.clone().join(name)
    }

    fn payload_key(piece: &Cid) -> String {
        piece.to_string()
    }

    fn meta_key(&self, piece: &Cid) -> Path {
        self.key(&format!("{piece}{META_SUFFIX}"))
    }

    fn object_path(&self, object: &str) -> Path {
        object
            .split('/')
            .fold(self.prefix.clone(), |p, part| p.join(part))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<Cid, (MetaRecord, std::time::Instant)>> {
        self.metas.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn forget(&self, piece: &Cid) {
        self.cache().remove(piece);
        self.lock_windows().forget(piece);
    }

    fn lock_windows(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One ranged GET of the payload.
    async fn get_range(
        &self,
        piece: &Cid,
        record: &MetaRecord,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, PieceStoreError> {
        let want = range.end - range.start;
        match self
            .store
            .get_range(&self.object_path(&record.object), range)
            .await
        {
            Ok(b) if b.len() as u64 == want => Ok(b),
            Ok(_) => Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
            Err(object_store::Error::NotFound { .. }) => {
                self.forget(piece);
                Err(PieceStoreError::NotFound(Box::new(*piece)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The meta record of `piece`, from the cache or the bucket.
    async fn record(&self, piece: &Cid) -> Result<Option<MetaRecord>, PieceStoreError> {
        if let Some((r, at)) = self.cache().get(piece)
            && at.elapsed() < WINDOW_TTL
        {
            return Ok(Some(r.clone()));
        }
        let got = match self
            .store
            .get_opts(&self.meta_key(piece), GetOptions::default())
            .await
        {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if got.meta.size > MAX_META {
            return Err(PieceStoreError::Corrupt(format!(
                "S3 piece meta of {piece}: {} bytes, at most {MAX_META}",
                got.meta.size
            )));
        }
        let record = parse_meta(&got.bytes().await?, Some(piece))?;
        let mut cache = self.cache();
        if cache.len() >= META_CACHE {
            cache.clear();
        }
        cache.insert(*piece, (record.clone(), std::time::Instant::now()));
        Ok(Some(record))
    }

    async fn write_meta(&self, meta: &PieceMeta, object: &str) -> Result<(), PieceStoreError> {
        self.store
            .put(
                &self.meta_key(&meta.piece_cid),
                PutPayload::from(render_meta(meta, object)),
            )
            .await?;
        self.cache().insert(
            meta.piece_cid,
            (
                MetaRecord {
                    meta: *meta,
                    object: object.to_string(),
                },
                std::time::Instant::now(),
            ),
        );
        Ok(())
    }

    async fn start_upload(&self, key: &Path) -> Result<Upload, PieceStoreError> {
        let upload = self.store.put_multipart(key).await?;
        Ok(Upload(Some(WriteMultipart::new_with_chunk_size(
            upload,
            self.part_size,
        ))))
    }

    /// A payload's range as a stream.
    async fn stream(
        &self,
        piece: &Cid,
        record: &MetaRecord,
        range: std::ops::Range<u64>,
    ) -> Result<PieceReader, PieceStoreError> {
        if range.is_empty() {
            return Ok(Box::pin(tokio::io::empty()));
        }
        let opts = GetOptions::default().with_range(Some(GetRange::Bounded(range)));
        let got = match self
            .store
            .get_opts(&self.object_path(&record.object), opts)
            .await
        {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => {
                // Deleted by another instance since the meta was cached.
                self.forget(piece);
                return Err(PieceStoreError::NotFound(Box::new(*piece)));
            }
            Err(e) => return Err(e.into()),
        };
        let stream = got.into_stream().map_err(std::io::Error::other);
        Ok(Box::pin(tokio_util::io::StreamReader::new(stream)))
    }
}

/// A multipart upload that is aborted unless it was finished: on an error, and when the put is
/// cancelled (a client that goes away), so no incomplete upload is left behind.
struct Upload(Option<WriteMultipart>);

impl Upload {
    async fn put(&mut self, data: Bytes, concurrency: usize) -> Result<(), PieceStoreError> {
        let w = self.0.as_mut().expect("an upload is used until finished");
        w.wait_for_capacity(concurrency).await?;
        w.put(data);
        Ok(())
    }

    async fn finish(mut self) -> Result<(), PieceStoreError> {
        let w = self.0.take().expect("an upload finishes once");
        w.finish().await?;
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let Some(w) = self.0.take() else { return };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if let Err(e) = w.abort().await {
                        tracing::warn!(error = %e, "cannot abort an S3 multipart upload");
                    }
                });
            }
            Err(_) => tracing::warn!("an S3 multipart upload was left incomplete"),
        }
    }
}

/// commP of a stream, on its own thread, fed through a bounded queue: hashing runs beside the
/// upload, and a slow hasher holds the upload back instead of growing memory.
struct StreamHasher {
    tx: Option<tokio::sync::mpsc::Sender<Bytes>>,
    done: tokio::sync::oneshot::Receiver<(CommP, u64)>,
}

impl StreamHasher {
    fn start() -> Result<Self, PieceStoreError> {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(8);
        let (done_tx, done) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("commp-s3".into())
            .spawn(move || {
                let mut hasher = CommP::new().with_short_payload(commp::ShortPayload::ZeroPad);
                let (mut total, mut hashing) = (0u64, std::time::Duration::ZERO);
                while let Some(chunk) = rx.blocking_recv() {
                    let t0 = std::time::Instant::now();
                    hasher.update(&chunk);
                    hashing += t0.elapsed();
                    total += chunk.len() as u64;
                }
                market_core::metrics::commp(total, hashing);
                let _ = done_tx.send((hasher, total));
            })?;
        Ok(Self { tx: Some(tx), done })
    }

    async fn feed(&self, data: Bytes) -> Result<(), PieceStoreError> {
        let tx = self.tx.as_ref().expect("fed until finished");
        tx.send(data)
            .await
            .map_err(|_| PieceStoreError::Task("commP thread stopped".into()))
    }

    async fn finish(
        mut self,
        padded: Option<PaddedPieceSize>,
    ) -> Result<(PieceInfo, u64), PieceStoreError> {
        drop(self.tx.take());
        let (hasher, total) = self
            .done
            .await
            .map_err(|_| PieceStoreError::Task("commP thread panicked".into()))?;
        let info = match padded {
            Some(size) => hasher.finish_padded_to(size),
            None => hasher.finish(),
        };
        Ok((
            info.map_err(|e| PieceStoreError::InvalidSize(e.to_string()))?,
            total,
        ))
    }
}

/// Reads up to [`READ_CHUNK`] bytes (fewer only at the end).
async fn read_chunk(data: &mut PieceReader) -> Result<Bytes, PieceStoreError> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    while buf.len() < READ_CHUNK && data.read_buf(&mut buf).await? > 0 {}
    Ok(buf.freeze())
}

#[async_trait::async_trait]
impl PieceStore for S3PieceStore {
    async fn put(
        &self,
        mut data: PieceReader,
        expect: Option<ExpectedPiece>,
    ) -> Result<PieceMeta, PieceStoreError> {
        if let Some(e) = &expect {
            check_piece_cid(&e.piece_cid)?;
        }
        // With a promised CID the payload goes straight to its final key; the meta object,
        // written last, is what makes it visible.
        let object = match &expect {
            Some(e) => Self::payload_key(&e.piece_cid),
            None => format!("{INCOMING}/{}", uuid::Uuid::new_v4()),
        };
        let mut upload = self.start_upload(&self.object_path(&object)).await?;
        let hasher = StreamHasher::start()?;
        let mut total = 0u64;
        loop {
            let chunk = read_chunk(&mut data).await?;
            if chunk.is_empty() {
                break;
            }
            if let Some(e) = &expect {
                let room = u64::from(e.padded_size.unpadded());
                if total + chunk.len() as u64 > room {
                    return Err(PieceStoreError::InvalidSize(format!(
                        "more than {room} bytes, the payload limit of a {}-byte piece",
                        e.padded_size.get()
                    )));
                }
            }
            total += chunk.len() as u64;
            hasher.feed(chunk.clone()).await?;
            upload.put(chunk, self.concurrency).await?;
        }
        let (info, hashed) = hasher.finish(expect.map(|e| e.padded_size)).await?;
        if hashed != total {
            return Err(PieceStoreError::Task(format!(
                "commP thread hashed {hashed} of {total} bytes"
            )));
        }
        let meta = PieceMeta {
            piece_cid: market_core::cid::widen(&info.cid_v1()),
            payload_size: total,
            padded_size: info.padded_size,
        };
        if let Some(e) = expect
            && e.piece_cid != meta.piece_cid
        {
            // Dropping the upload aborts it: nothing was visible and nothing is left.
            return Err(PieceStoreError::CommPMismatch {
                expected: Box::new(e.piece_cid),
                actual: Box::new(meta.piece_cid),
            });
        }
        upload.finish().await?;
        self.write_meta(&meta, &object).await?;
        Ok(meta)
    }

    async fn put_verified(
        &self,
        mut data: PieceReader,
        meta: PieceMeta,
    ) -> Result<(), PieceStoreError> {
        check_piece_cid(&meta.piece_cid)?;
        let object = Self::payload_key(&meta.piece_cid);
        let mut upload = self.start_upload(&self.object_path(&object)).await?;
        let mut total = 0u64;
        loop {
            let chunk = read_chunk(&mut data).await?;
            if chunk.is_empty() {
                break;
            }
            total += chunk.len() as u64;
            if total > meta.payload_size {
                break;
            }
            upload.put(chunk, self.concurrency).await?;
        }
        if total != meta.payload_size {
            return Err(PieceStoreError::InvalidSize(format!(
                "the stream held {}{total} bytes, expected {}",
                if total > meta.payload_size {
                    "at least "
                } else {
                    ""
                },
                meta.payload_size
            )));
        }
        upload.finish().await?;
        self.write_meta(&meta, &object).await
    }

    async fn get(
        &self,
        piece: &Cid,
        range: Option<ByteRange>,
    ) -> Result<PieceReader, PieceStoreError> {
        check_piece_cid(piece)?;
        let record = self
            .record(piece)
            .await?
            .ok_or_else(|| PieceStoreError::NotFound(Box::new(*piece)))?;
        let len = record.meta.payload_size;
        let r = range.unwrap_or(ByteRange::new(0, len));
        if r.start > r.end || r.end > len {
            return Err(PieceStoreError::RangeNotSatisfiable {
                start: r.start,
                end: r.end,
                len,
            });
        }
        self.stream(piece, &record, r.start..r.end).await
    }

    async fn read_at(&self, piece: &Cid, range: ByteRange) -> Result<Bytes, PieceStoreError> {
        check_piece_cid(piece)?;
        check_read_at(range)?;
        let record = self
            .record(piece)
            .await?
            .ok_or_else(|| PieceStoreError::NotFound(Box::new(*piece)))?;
        let len = record.meta.payload_size;
        if range.end > len {
            return Err(PieceStoreError::RangeNotSatisfiable {
                start: range.start,
                end: range.end,
                len,
            });
        }
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let (size, max) = {
            let w = self.lock_windows();
            (w.size, w.max)
        };
        // Large reads are their own GET; small ones go through windows.
        if size == 0 || max == 0 || range.len() > size / 2 {
            return self.get_range(piece, &record, range.start..range.end).await;
        }
        let mut out = BytesMut::with_capacity(range.len() as usize);
        for (start, end) in windows_of(range, size, len) {
            let cached = self.lock_windows().get(piece, start);
            let window = match cached {
                Some(w) => w,
                None => {
                    let w = self.get_range(piece, &record, start..end).await?;
                    self.lock_windows().insert(*piece, start, w.clone());
                    w
                }
            };
            let from = range.start.max(start) - start;
            let to = range.end.min(end) - start;
            out.extend_from_slice(&window[from as usize..to as usize]);
        }
        Ok(out.freeze())
    }

    async fn stat(&self, piece: &Cid) -> Result<Option<PieceMeta>, PieceStoreError> {
        check_piece_cid(piece)?;
        Ok(self.record(piece).await?.map(|r| r.meta))
    }

    async fn delete(&self, piece: &Cid) -> Result<bool, PieceStoreError> {
        check_piece_cid(piece)?;
        self.forget(piece);
        let Some(record) = self.record(piece).await? else {
            return Ok(false);
        };
        // The meta first: once it is gone the piece is gone, whatever happens to the payload.
        self.store.delete(&self.meta_key(piece)).await?;
        self.forget(piece);
        match self.store.delete(&self.object_path(&record.object)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(true),
            Err(e) => Err(e.into()),
        }
    }

    async fn list(&self) -> Result<Vec<PieceMeta>, PieceStoreError> {
        let depth = self.prefix.parts_count() + 1;
        let names: Vec<Cid> = self
            .store
            .list(Some(&self.prefix))
            .try_filter_map(|o| async move {
                let cid = (o.location.parts_count() == depth)
                    .then(|| o.location.filename().map(str::to_string))
                    .flatten()
                    .and_then(|n| n.strip_suffix(META_SUFFIX).map(str::to_string))
                    .and_then(|c| c.parse::<Cid>().ok());
                Ok(cid)
            })
            .try_collect()
            .await?;
        let mut out: Vec<PieceMeta> = futures::stream::iter(names)
            .map(|cid| async move { self.stat(&cid).await })
            .buffer_unordered(16)
            .try_filter_map(|m| async move { Ok(m) })
            .try_collect()
            .await?;
        out.sort_by_key(|m| m.piece_cid.to_string());
        Ok(out)
    }

    fn locator(&self, piece: &Cid) -> String {
        let object = self
            .cache()
            .get(piece)
            .map(|(r, _)| r.object.clone())
            .unwrap_or_else(|| Self::payload_key(piece));
        format!("s3://{}/{}", self.bucket, self.object_path(&object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sweep_deletes_only_old_payloads_no_meta_names() {
        let piece = "baga6ea4seaqcyns5i4fkqgiys3egpuq2erjq67d62jjur3uj4y4njnmvszwgwmi";
        let other = "baga6ea4seaqhf6nv7qoviuelccrpjqn6a7kx3vdj6xh2xs7xn6cact724xlamea";
        let incoming = format!("{INCOMING}/{}", uuid::Uuid::new_v4());
        let hour = std::time::Duration::from_secs(3600);
        let o = |name: &str, age: std::time::Duration| ListedObject {
            name: name.to_string(),
            size: 100,
            age,
        };
        let objects = [
            o(piece, hour * 48),
            o(&format!("{piece}{META_SUFFIX}"), hour * 48),
            o(other, hour * 48),
            o(&incoming, hour * 30),
            o(&format!("{INCOMING}/{}", uuid::Uuid::new_v4()), hour),
            o("notes.txt", hour * 99),
            o("incoming/not-a-uuid", hour * 99),
            o(&format!("deeper/{other}"), hour * 99),
        ];
        let referenced: HashSet<String> = [piece.to_string()].into();
        let (doomed, report) = orphans(&objects, &referenced, hour * 24);
        let names: Vec<&str> = doomed.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, [other, incoming.as_str()]);
        assert_eq!(
            (
                report.kept,
                report.young,
                report.removed,
                report.removed_bytes
            ),
            (1, 1, 2, 200)
        );
        // Named by a meta, a payload stays whatever its age.
        let referenced: HashSet<String> =
            [piece, other, incoming.as_str()].map(str::to_string).into();
        assert!(orphans(&objects, &referenced, hour * 24).0.is_empty());
    }

    #[test]
    fn virtual_hosted_endpoints_put_the_bucket_first() {
        assert_eq!(
            virtual_hosted_endpoint("https://oss-cn-hangzhou.aliyuncs.com", "deals").unwrap(),
            "https://deals.oss-cn-hangzhou.aliyuncs.com"
        );
        assert_eq!(
            virtual_hosted_endpoint("http://deals.minio.local:9000/", "deals").unwrap(),
            "http://deals.minio.local:9000"
        );
        assert!(virtual_hosted_endpoint("not a url", "deals").is_err());
    }

    #[test]
    fn reads_map_to_the_windows_they_touch() {
        let w = |a, b| windows_of(ByteRange::new(a, b), 100, 250);
        assert_eq!(w(0, 10), vec![(0, 100)]);
        assert_eq!(w(99, 101), vec![(0, 100), (100, 200)]);
        assert_eq!(w(200, 250), vec![(200, 250)]);
        assert_eq!(w(100, 200), vec![(100, 200)]);
        assert_eq!(w(5, 5), vec![]);
        assert_eq!(windows_of(ByteRange::new(0, 10), 0, 250), vec![]);
    }

    #[test]
    fn meta_records_round_trip_and_bad_ones_are_corrupt() {
        let piece: Cid = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
            .parse()
            .unwrap();
        let meta = PieceMeta {
            piece_cid: piece,
            payload_size: 1000,
            padded_size: PaddedPieceSize::new(2048).unwrap(),
        };
        let bytes = render_meta(&meta, "incoming/x");
        let back = parse_meta(&bytes, Some(&piece)).unwrap();
        assert_eq!(back.meta, meta);
        assert_eq!(back.object, "incoming/x");
        let other: Cid = "baga6ea4seaqjtovkwk4myyzj56eztkh5pzsk5upksan6f5outesy62bsvl4dsha"
            .parse()
            .unwrap();
        assert!(matches!(
            parse_meta(&bytes, Some(&other)),
            Err(PieceStoreError::Corrupt(_))
        ));
        for bad in [
            r#"{"piece_cid":"x","payload_size":1,"padded_size":128,"object":"a"}"#.to_string(),
            format!(
                r#"{{"piece_cid":"{piece}","payload_size":5000,"padded_size":2048,"object":"a"}}"#
            ),
            format!(r#"{{"piece_cid":"{piece}","payload_size":1,"padded_size":100,"object":"a"}}"#),
            format!(
                r#"{{"piece_cid":"{piece}","payload_size":1,"padded_size":128,"object":"../a"}}"#
            ),
            "[]".to_string(),
            " ".repeat(5000),
        ] {
            assert!(parse_meta(bad.as_bytes(), None).is_err(), "{bad}");
        }
    }
}
