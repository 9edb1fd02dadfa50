//! Deal proposals accepted per second over libp2p on loopback with the provider's deals in
//! SQLite (the embedded default, WAL with a synchronous commit) beside Postgres (a real
//! server on loopback, fsync on), in one run: 64 clients at once (their inserts share
//! commits on SQLite; Postgres gets one connection each from the pool) and one at a time.

#[path = "../../storage-market/tests/harness/mod.rs"]
mod harness;

use std::sync::Arc;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use storage_market::message::DealParams;
use storage_market::network::MarketNetwork;
use storage_market::store::{DealStore, SqliteDealStore};

const CLIENTS: usize = 64;

fn proposals(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    let dir = tempfile::tempdir().unwrap();
    let pg = market_postgres::testing::PgServer::start_with(&dir.path().join("pg"), true);
    let url = pg.database("bench");
    let backends: Vec<(&str, Arc<dyn DealStore>)> = vec![
        (
            "sqlite",
            Arc::new(SqliteDealStore::open(dir.path().join("deals.db")).unwrap()),
        ),
        (
            "postgres",
            Arc::new(
                rt.block_on(market_postgres::PgDealStore::open(
                    market_postgres::PgDb::connect(&url, CLIENTS).unwrap(),
                ))
                .unwrap(),
            ),
        ),
    ];
    let clients: Vec<MarketNetwork> = (0..CLIENTS)
        .map(|_| {
            MarketNetwork::start(
                libp2p::identity::Keypair::generate_ed25519(),
                Default::default(),
            )
            .unwrap()
        })
        .collect();
    let mut g = c.benchmark_group("proposals_stores");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    for (name, store) in backends {
        let env = rt.block_on(harness::Env::start_with_store(store, false));
        let mut maker = rt.block_on(harness::ProposalMaker::new(&env));
        g.bench_function(format!("{name}/one_client"), |b| {
            b.iter_custom(|iters| {
                let batch = maker.make(iters);
                rt.block_on(async {
                    let start = Instant::now();
                    for params in batch {
                        let (_, r) = clients[0].propose(&env.peer, params).await.unwrap();
                        assert!(r.accepted, "{}", r.message);
                    }
                    start.elapsed()
                })
            })
        });
        g.bench_function(format!("{name}/64_clients"), |b| {
            b.iter_custom(|iters| {
                // At least one proposal per client, so every client is timed.
                let batch = maker.make(iters.max(CLIENTS as u64));
                let mut shares: Vec<Vec<DealParams>> = vec![Vec::new(); CLIENTS];
                for (i, p) in batch.into_iter().enumerate() {
                    shares[i % CLIENTS].push(p);
                }
                let elapsed = rt.block_on(async {
                    let start = Instant::now();
                    let tasks: Vec<_> = clients
                        .iter()
                        .zip(shares)
                        .map(|(net, share)| {
                            let (net, peer) = (net.clone(), env.peer.clone());
                            tokio::spawn(async move {
                                for params in share {
                                    let (_, r) = net.propose(&peer, params).await.unwrap();
                                    assert!(r.accepted, "{}", r.message);
                                }
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.unwrap();
                    }
                    start.elapsed()
                });
                elapsed.mul_f64(iters as f64 / iters.max(CLIENTS as u64) as f64)
            })
        });
        env.provider.stop();
        env.node.stop();
    }
    g.finish();
}

criterion_group!(benches, proposals);
criterion_main!(benches);
