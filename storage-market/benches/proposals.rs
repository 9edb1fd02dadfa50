//! Deal proposals accepted per second by one provider: over libp2p on loopback (the product
//! path: encode, noise/yamux stream, decode, validate with chain lookups and signature check,
//! SQLite insert with a synchronous commit, response), one client at a time and 64 clients at
//! once (their inserts share group commits), beside the same acceptance called in process (no
//! network) and a bare SQLite insert of the deal row.

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use storage_market::message::DealParams;
use storage_market::protocol::Protocol;
use storage_market::state::StorageDealStatus;
use storage_market::store::{DealStore, ProviderDeal, SqliteDealStore};

/// Concurrent clients of `libp2p_64_clients`.
const CLIENTS: usize = 64;

fn proposals(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    let env = rt.block_on(harness::Env::start(|_| {}, false));
    let mut maker = rt.block_on(harness::ProposalMaker::new(&env));
    let mut make = |n: u64| maker.make(n);
    let network = storage_market::network::MarketNetwork::start(
        libp2p::identity::Keypair::generate_ed25519(),
        Default::default(),
    )
    .unwrap();

    let mut g = c.benchmark_group("deal_proposals");
    g.throughput(Throughput::Elements(1));
    g.sample_size(20);
    g.bench_function("libp2p_loopback", |b| {
        b.iter_custom(|iters| {
            let batch = make(iters);
            rt.block_on(async {
                let start = Instant::now();
                for params in batch {
                    let (_, r) = network.propose(&env.peer, params).await.unwrap();
                    assert!(r.accepted, "{}", r.message);
                }
                start.elapsed()
            })
        })
    });
    // 64 clients, each its own libp2p host with its own connection, proposing at once; the
    // provider's inserts meet in group commits.
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            storage_market::network::MarketNetwork::start(
                libp2p::identity::Keypair::generate_ed25519(),
                Default::default(),
            )
            .unwrap()
        })
        .collect();
    let failures = std::sync::Arc::new(AtomicU64::new(0));
    let sent = std::sync::Arc::new(AtomicU64::new(0));
    g.bench_function("libp2p_64_clients", |b| {
        b.iter_custom(|iters| {
            // At least one proposal per client, so every client is timed.
            let batch = make(iters.max(CLIENTS as u64));
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
                        let (failures, sent) = (failures.clone(), sent.clone());
                        tokio::spawn(async move {
                            for params in share {
                                match net.propose(&peer, params).await {
                                    Ok((_, r)) => assert!(r.accepted, "{}", r.message),
                                    // Counted and printed, not hidden: see the summary line.
                                    Err(e) => {
                                        failures.fetch_add(1, Ordering::Relaxed);
                                        eprintln!(
                                            "proposal failed: {}",
                                            market_core::report::report(&e)
                                        );
                                    }
                                }
                                sent.fetch_add(1, Ordering::Relaxed);
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
                start.elapsed()
            });
            // Scaled to the `iters` criterion asked for.
            elapsed.mul_f64(iters as f64 / iters.max(CLIENTS as u64) as f64)
        })
    });
    println!(
        "libp2p_64_clients: {} of {} proposals failed",
        failures.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed)
    );
    g.bench_function("in_process", |b| {
        b.iter_custom(|iters| {
            let batch = make(iters);
            rt.block_on(async {
                let start = Instant::now();
                for params in batch {
                    let r = env.provider.propose(params, Protocol::DealV121).await;
                    assert!(r.accepted, "{}", r.message);
                }
                start.elapsed()
            })
        })
    });
    let store = SqliteDealStore::open(env.dir.path().join("bare.db")).unwrap();
    g.bench_function("sqlite_insert_only", |b| {
        b.iter_custom(|iters| {
            let batch = make(iters);
            rt.block_on(async {
                let start = Instant::now();
                for params in batch {
                    let deal = ProviderDeal::new(
                        &params,
                        Protocol::DealV121,
                        StorageDealStatus::WaitingForData,
                    );
                    store.insert_provider_deal(deal).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group!(benches, proposals);
criterion_main!(benches);
