//! Advertising a piece of 32,768 blocks and serving its entry chunks, each beside a baseline
//! from the same run:
//!
//! - `ipni/announce_32k`: `IpniProvider::announce_piece` into a file-backed ad store: sort and
//!   dedup, two entry chunks of 16,384 in DAG-JSON, sign, one fsynced transaction;
//!   `ipni/chunks_32k` the chunking alone; `ipni/sha256_32k_baseline` sha2-256 over the same
//!   encoded bytes (what any CID of them costs).
//! - `ipni/serve_chunk`: `GET /ipni/v1/ad/{chunk}` of a full chunk from the publisher on
//!   127.0.0.1; `ipni/serve_static_baseline` the same number of bytes from a static route on
//!   the same server.
//!
//! Run with `cargo bench -p benches --bench ipni`.

use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use market_ipni::schema::{self, ENTRIES_PER_CHUNK};
use market_ipni::store::SqliteAdStore;
use market_ipni::{IpniConfig, IpniProvider};
use sha2::{Digest, Sha256};

const BLOCKS: usize = 32_768;

fn multihashes(salt: u64) -> Vec<Vec<u8>> {
    (0..BLOCKS as u64)
        .map(|i| {
            let mut m = vec![0x12, 0x20];
            m.extend_from_slice(&Sha256::digest(
                [salt.to_le_bytes(), i.to_le_bytes()].concat(),
            ));
            m
        })
        .collect()
}

fn piece(n: u64) -> cid::Cid {
    let mut d = [0u8; 32];
    d[..8].copy_from_slice(&n.to_le_bytes());
    cid::Cid::new_v1(0xf101, multihash::Multihash::wrap(0x1012, &d).unwrap())
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let provider = IpniProvider::new(
        std::sync::Arc::new(SqliteAdStore::open(&dir.path().join("ipni.db")).unwrap()),
        libp2p::identity::Keypair::generate_ed25519(),
        IpniConfig::default(),
    )
    .unwrap();
    let mhs = multihashes(0);
    let (_, blocks) = schema::entry_chunks(mhs.clone(), ENTRIES_PER_CHUNK).unwrap();
    let encoded: u64 = blocks.iter().map(|b| b.data.len() as u64).sum();

    let mut g = c.benchmark_group("ipni");
    g.throughput(Throughput::Elements(BLOCKS as u64));
    let mut n = 0u64;
    g.bench_function("announce_32k", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(provider.announce_piece(&piece(n), 1 << 30, mhs.clone()))
                .unwrap()
                .unwrap()
        })
    });
    g.bench_function("chunks_32k", |b| {
        b.iter(|| schema::entry_chunks(mhs.clone(), ENTRIES_PER_CHUNK).unwrap())
    });
    g.bench_function("sha256_32k_baseline", |b| {
        b.iter(|| {
            for blk in &blocks {
                std::hint::black_box(Sha256::digest(&blk.data));
            }
        })
    });

    // Serving: the first (full) chunk, and a static body of its size.
    let chunk = blocks[0].clone();
    let body = bytes::Bytes::from(chunk.data.clone());
    let app = provider.router().route(
        "/static",
        axum::routing::get(move || {
            let body = body.clone();
            async move { body }
        }),
    );
    let base = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    });
    let http = reqwest::Client::new();
    g.throughput(Throughput::Bytes(chunk.data.len() as u64));
    let chunk_url = format!("{base}/ipni/v1/ad/{}", chunk.cid);
    g.bench_function("serve_chunk", |b| {
        b.iter(|| {
            rt.block_on(async {
                let r = http.get(&chunk_url).send().await.unwrap();
                assert!(r.status().is_success());
                r.bytes().await.unwrap()
            })
        })
    });
    let static_url = format!("{base}/static");
    g.bench_function("serve_static_baseline", |b| {
        b.iter(|| {
            rt.block_on(async {
                http.get(&static_url)
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap()
            })
        })
    });
    g.finish();
    println!(
        "32,768 multihashes: {} chunks, {} bytes of DAG-JSON; a full chunk is {} bytes",
        blocks.len(),
        encoded,
        chunk.data.len()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .sample_size(20);
    targets = bench
}
criterion_main!(benches);
