//! The piece stores of `[storage]`: one filesystem store by default, or the
//! `[[storage.stores]]` entries (directories and S3 buckets) behind one
//! [`MultiPieceStore`].

use std::path::Path;
use std::sync::Arc;

use piecestore::{FsPieceStore, MultiPieceStore, PieceStore, S3PieceStore, StoreEntry};

use crate::config::{PieceStoreSection, StorageSection};
use crate::node::NodeError;

/// The opened stores and a one-line description of them for the UI and logs.
pub(crate) struct OpenedStores {
    pub(crate) store: Arc<dyn PieceStore>,
    pub(crate) description: String,
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
        });
    }
    let mut entries = Vec::with_capacity(cfg.stores.len());
    let mut described = Vec::new();
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
                (
                    Arc::new(store),
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
    })
}
