//! Load, not a benchmark: 1,000 deal proposals in flight at once from 50 clients (each its own
//! libp2p host and connection, 20 proposals each, all sent together) against one provider
//! over loopback. Prints errors, latency percentiles, the wall time and the process's peak
//! memory (clients included: they run in this process).
//!
//!   cargo bench -p storage-market --bench load
//!   cargo bench -p storage-market --bench load -- 2000 100   # proposals, clients

#[path = "../tests/harness/mod.rs"]
mod harness;

use std::time::{Duration, Instant};

use storage_market::client::DealProtocol;
use storage_market::message::DealParams;
use storage_market::types::{DealLabel, TokenAmount};
use storage_market::wallet::KeyType;

/// Peak resident memory of this process (VmHWM), in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let total = args.first().copied().unwrap_or(1000) as usize;
    let clients = args.get(1).copied().unwrap_or(50).max(1) as usize;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    let env = rt.block_on(harness::Env::start(|_| {}, false));
    let client = env.keys.generate(KeyType::Secp256k1).unwrap();
    env.chain.fund(&client, TokenAmount::from_whole(5000));
    rt.block_on(async {
        let chain = env.chain.clone();
        let miner = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                chain.advance(1);
            }
        });
        let c = storage_market::client::Client::new(
            storage_market::network::MarketNetwork::start(
                libp2p::identity::Keypair::generate_ed25519(),
                Default::default(),
            )
            .unwrap(),
            std::sync::Arc::new(env.keys.clone()),
            std::sync::Arc::new(env.chain.clone()),
            std::sync::Arc::new(storage_market::store::SqliteDealStore::in_memory().unwrap()),
        );
        c.add_funds(
            &client,
            TokenAmount::from_whole(2000),
            TokenAmount::from_whole(1),
        )
        .await
        .unwrap();
        miner.abort();
    });
    let (_, piece_cid, size) = env.data_file("load.car", 3000, 1);
    let mut spec = rt.block_on(env.offline_spec(piece_cid, size, DealProtocol::V12));
    spec.client = client;
    let base = rt.block_on(env.client.sign_proposal(&spec)).unwrap();
    let proposals: Vec<DealParams> = (0..total)
        .map(|i| {
            let mut p = base.proposal.clone();
            p.label = DealLabel::String(format!("load-{i}"));
            let sig = env.keys.sign_sync(&client, &p.to_cbor()).unwrap();
            DealParams::offline(
                storage_market::deal::ClientDealProposal {
                    proposal: p,
                    client_signature: sig,
                },
                piece_cid,
            )
        })
        .collect();
    let nets: Vec<_> = (0..clients)
        .map(|_| {
            storage_market::network::MarketNetwork::start(
                libp2p::identity::Keypair::generate_ed25519(),
                Default::default(),
            )
            .unwrap()
        })
        .collect();
    let before = peak_rss_mib();
    let (mut latencies, errors, wall) = rt.block_on(async {
        let start = Instant::now();
        let tasks: Vec<_> = proposals
            .into_iter()
            .enumerate()
            .map(|(i, params)| {
                let (net, peer) = (nets[i % clients].clone(), env.peer.clone());
                tokio::spawn(async move {
                    let t = Instant::now();
                    let r = net.propose(&peer, params).await;
                    let ok = matches!(&r, Ok((_, resp)) if resp.accepted);
                    if !ok {
                        match r {
                            Ok((_, resp)) => eprintln!("rejected: {}", resp.message),
                            Err(e) => eprintln!("failed: {}", market_core::report(&e)),
                        }
                    }
                    (t.elapsed(), ok)
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(tasks.len());
        let mut errors = 0;
        for t in tasks {
            let (d, ok) = t.await.unwrap();
            latencies.push(d);
            errors += usize::from(!ok);
        }
        (latencies, errors, start.elapsed())
    });
    latencies.sort();
    println!(
        "{total} proposals in flight at once from {clients} clients over libp2p: {errors} errors, \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, all answered in {:.2} s ({:.0}/s); \
         peak RSS {:.0} MiB (before sending {:.0} MiB)",
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        wall.as_secs_f64(),
        total as f64 / wall.as_secs_f64(),
        peak_rss_mib(),
        before,
    );
    if errors > 0 {
        std::process::exit(1);
    }
}
