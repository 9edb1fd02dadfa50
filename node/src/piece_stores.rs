//! The piece stores of `[storage]`: one filesystem store by default, or the
//! `[[storage.stores]]` entries (directories and S3 buckets) behind one
//! [`MultiPieceStore`]; and the daily sweep of payloads a killed process left in a bucket.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use piecestore::{FsPieceStore, MultiPieceStore, PieceStore, S3PieceStore, StoreEntry};

use crate::config::{PieceStoreSection, StorageSection};
use crate::node::NodeError;

/// The opened stores and a one-line description of them for the UI and logs.
pub(crate) struct OpenedStores {
    pub(crate) store: Arc<dyn PieceStore>,
    pub(crate) description: String,
    /// The writable buckets, by store name, for [`sweep_daily`].
    pub(crate) buckets: Vec<(String, Arc<S3PieceStore>)>,
}

/// How long a payload no meta names is left alone: far longer than any put takes between
/// its last part and its meta, on any instance sharing the bucket.
const ORPHAN_GRACE: Duration = Duration::from_secs(24 * 3600);

/// Sweeps `store` of orphaned payloads now and then every day; a failed sweep is logged and
/// tried again the next day (it deletes nothing it is unsure of).
pub(crate) async fn sweep_daily(name: String, store: Arc<S3PieceStore>) {
    loop {
        match store.sweep_orphans(ORPHAN_GRACE).await {
            Ok(r) if r.removed > 0 => {
                tracing::info!(store = %name, removed = r.removed, bytes = r.removed_bytes, kept = r.kept, "orphaned payloads deleted from the bucket");
            }
            Ok(r) => tracing::debug!(store = %name, kept = r.kept, young = r.young, "bucket swept"),
            Err(e) => {
                tracing::warn!(store = %name, error = %market_core::report(&e), "bucket sweep failed")
            }
        }
        tokio::time::sleep(ORPHAN_GRACE).await;
    }
}

fn start_err(e: impl std::error::Error + Send + Sync + 'static) -> NodeError {
    NodeError::Start {
        part: "piece store",
        source: Box::new(e),
    }
}

/// Opens every configured store; each bucket is listed once, so a wrong endpoint, bucket or
/// key stops the node at start rather than failing its first deal.
pub(crate) async fn open(cfg: &StorageSection, repo: &Path) -> Result<OpenedStores, NodeError> {
    let under = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            repo.join(p)
        }
    };
    if cfg.stores.is_empty() {
        let dir = under(&cfg.pieces);
        return Ok(OpenedStores {
            store: Arc::new(FsPieceStore::open(&dir).map_err(start_err)?),
            description: dir.display().to_string(),
            buckets: Vec::new(),
        });
    }
    let mut entries = Vec::with_capacity(cfg.stores.len());
    let mut described = Vec::new();
    let mut buckets = Vec::new();
    for s in &cfg.stores {
        let (store, where_): (Arc<dyn PieceStore>, String) = match s {
            PieceStoreSection::Fs(f) => {
                let dir = under(&f.path);
                (
                    Arc::new(FsPieceStore::open(&dir).map_err(start_err)?),
                    dir.display().to_string(),
                )
            }
            PieceStoreSection::S3(b) => {
                let config = b.to_config(repo)?;
                let store = S3PieceStore::open(&config).map_err(start_err)?;
                store.check().await.map_err(|e| NodeError::Start {
                    part: "piece store",
                    source: format!("store {}: bucket {}: {e}", b.name, b.bucket).into(),
                })?;
                let store = Arc::new(store);
                if !s.read_only() {
                    buckets.push((s.name().to_string(), store.clone()));
                }
                (
                    store,
                    format!("s3://{}/{}", b.bucket, b.prefix.trim_matches('/')),
                )
            }
        };
        tracing::info!(store = s.name(), at = %where_, priority = s.priority(), read_only = s.read_only(), "piece store");
        described.push(format!(
            "{} ({where_}{})",
            s.name(),
            if s.read_only() { ", read-only" } else { "" }
        ));
        entries.push(StoreEntry {
            name: s.name().to_string(),
            store,
            priority: s.priority(),
            read_only: s.read_only(),
        });
    }
    Ok(OpenedStores {
        store: Arc::new(MultiPieceStore::new(entries).map_err(start_err)?),
        description: described.join(", "),
        buckets,
    })
}
