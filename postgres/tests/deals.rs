//! The Postgres deal store against a real Postgres server: the conformance suite every deal
//! store runs, migrations raced by several instances, and a server restart under the pool.

use std::sync::Arc;

use market_postgres::testing::PgServer;
use market_postgres::{PgDb, PgDealStore};
use storage_market::state::StorageDealStatus;
use storage_market::store::{DealStore, StoreError};
use storage_market::types::Address;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_deal_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start(&dir.path().join("pg"));
    let db = PgDb::connect(&server.database("deals"), 8).unwrap();
    let store = Arc::new(PgDealStore::open(db).await.unwrap());
    storage_market::testing::deal_store_conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deal_leases_conform() {
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start(&dir.path().join("pg"));
    let db = PgDb::connect(&server.database("leases"), 8).unwrap();
    let store = Arc::new(PgDealStore::open(db).await.unwrap());
    storage_market::testing::lease_conformance(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once_and_share_deals() {
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start(&dir.path().join("pg"));
    let url = server.database("shared");
    let opened = futures_join(16, |_| {
        let url = url.clone();
        async move { PgDealStore::open(PgDb::connect(&url, 2).unwrap()).await }
    })
    .await;
    let stores: Vec<PgDealStore> = opened.into_iter().map(|r| r.unwrap()).collect();
    let deal = storage_market::testing::sample_deal(
        1,
        Address::new_id(1000),
        StorageDealStatus::WaitingForData,
    );
    stores[0].insert_provider_deal(deal.clone()).await.unwrap();
    assert!(matches!(
        stores[1].insert_provider_deal(deal.clone()).await,
        Err(StoreError::Duplicate(_))
    ));
    assert_eq!(
        stores[3]
            .provider_deal(&deal.proposal_cid)
            .await
            .unwrap()
            .map(|d| d.deal_uuid),
        Some(deal.deal_uuid)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_fails_calls_in_flight_and_the_pool_reconnects() {
    let dir = tempfile::tempdir().unwrap();
    let pg_dir = dir.path().join("pg");
    let mut server = PgServer::start(&pg_dir);
    let url = server.database("deals");
    let store = PgDealStore::open(PgDb::connect(&url, 2).unwrap())
        .await
        .unwrap();
    let deal = storage_market::testing::sample_deal(
        1,
        Address::new_id(1000),
        StorageDealStatus::WaitingForData,
    );
    store.insert_provider_deal(deal.clone()).await.unwrap();
    server.kill();
    // The server is gone: a typed error, not a hang or a panic.
    let down = tokio::time::timeout(std::time::Duration::from_secs(60), store.provider_deals())
        .await
        .expect("a dead server is an error, not a hang");
    assert!(matches!(down, Err(StoreError::Database(_))), "{down:?}");
    // Restarted on the same data (a new process on the same directory and port is what an
    // operator's restart is): the same store object works again, and the deal is there.
    let restarted = PgServer::restart(&pg_dir, server.port());
    let deals = store.provider_deals().await.unwrap();
    assert_eq!(deals.len(), 1);
    drop(restarted);
}

async fn futures_join<F, Fut, T>(n: usize, f: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(f(i))).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
