//! The SQLite deal store against the conformance suite every deal store runs.

use std::sync::Arc;

use storage_market::store::SqliteDealStore;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_deal_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteDealStore::open(dir.path().join("deals.db")).unwrap());
    storage_market::testing::deal_store_conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_deal_leases_conform() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteDealStore::open(dir.path().join("deals.db")).unwrap());
    storage_market::testing::lease_conformance(store).await;
}
