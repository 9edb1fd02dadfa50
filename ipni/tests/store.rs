//! The ad store conformance suite on SQLite: two handles on one file, as two processes of a
//! node would open it.

use std::sync::Arc;

use market_ipni::store::SqliteAdStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_ad_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ipni.db");
    let a = SqliteAdStore::open(&path).unwrap();
    let b = SqliteAdStore::open(&path).unwrap();
    market_ipni::testing::ad_store_conformance(Arc::new(a), Arc::new(b)).await;
}
