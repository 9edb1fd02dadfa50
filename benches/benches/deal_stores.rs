//! Deal stores side by side in one run: SQLite (the embedded default: WAL, `synchronous =
//! FULL`, group commit) and Postgres (a real server on loopback with `fsync` on, through the
//! pool), for what a provider does per proposal:
//!
//! - `deal_stores/insert_64_concurrent/*`: 64 deals inserted at once, as 64 clients'
//!   proposals arrive together (each durable before its acceptance goes out);
//! - `deal_stores/insert_one/*`: one insert at a time;
//! - `deal_stores/update/*`: a state change (row and timeline entry in one transaction);
//! - `deal_stores/lookup/*`: a deal by proposal CID.
//!
//! Run with `cargo bench -p benches --bench deal_stores`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use market_postgres::testing::PgServer;
use market_postgres::{PgDb, PgDealStore};
use storage_market::state::StorageDealStatus;
use storage_market::store::{DealStore, SqliteDealStore};
use storage_market::testing::sample_deal;
use storage_market::types::Address;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start_with(&dir.path().join("pg"), true);
    let url = pg.database("bench");
    let sqlite: Arc<dyn DealStore> =
        Arc::new(SqliteDealStore::open(dir.path().join("deals.db")).unwrap());
    let postgres: Arc<dyn DealStore> = Arc::new(
        rt.block_on(PgDealStore::open(PgDb::connect(&url, 16).unwrap()))
            .unwrap(),
    );
    let miner = Address::new_id(1000);
    let next = AtomicU64::new(0);
    let fresh = || {
        sample_deal(
            next.fetch_add(1, Ordering::Relaxed),
            miner,
            StorageDealStatus::WaitingForData,
        )
    };
    let stores = [("sqlite", &sqlite), ("postgres", &postgres)];

    let mut g = c.benchmark_group("deal_stores/insert_64_concurrent");
    g.sample_size(10);
    g.throughput(Throughput::Elements(64));
    for (name, store) in stores {
        g.bench_function(name, |b| {
            b.iter(|| {
                let deals: Vec<_> = (0..64).map(|_| fresh()).collect();
                rt.block_on(async {
                    let tasks: Vec<_> = deals
                        .into_iter()
                        .map(|d| {
                            let s = store.clone();
                            tokio::spawn(async move { s.insert_provider_deal(d).await.unwrap() })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                })
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("deal_stores/insert_one");
    g.throughput(Throughput::Elements(1));
    for (name, store) in stores {
        g.bench_function(name, |b| {
            b.iter(|| rt.block_on(store.insert_provider_deal(fresh())).unwrap())
        });
    }
    g.finish();

    let mut deal = fresh();
    for (_, store) in stores {
        rt.block_on(store.insert_provider_deal(deal.clone()))
            .unwrap();
    }
    let mut g = c.benchmark_group("deal_stores/update");
    g.throughput(Throughput::Elements(1));
    for (name, store) in stores {
        g.bench_function(name, |b| {
            b.iter(|| {
                deal.state = if deal.state == StorageDealStatus::Transferring {
                    StorageDealStatus::WaitingForData
                } else {
                    StorageDealStatus::Transferring
                };
                rt.block_on(store.update_provider_deal(&deal)).unwrap()
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("deal_stores/lookup");
    g.throughput(Throughput::Elements(1));
    for (name, store) in stores {
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(store.provider_deal(&deal.proposal_cid))
                    .unwrap()
                    .unwrap()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
