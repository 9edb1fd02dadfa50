//! Retrieval throughput on loopback, each beside a baseline read of the same bytes from the
//! page cache in the same run:
//!
//! - `retrieval/piece_http`: `GET /piece/{cid}` of a 1 GiB piece (1016 MiB unpadded) from the
//!   retrieval router on 127.0.0.1, body streamed and counted by a reqwest client;
//! - `retrieval/piece_file_read`: reading the stored payload file with 1 MiB reads;
//! - `retrieval/car_http`: `GET /ipfs/{root}?dag-scope=all` of a 256 MiB UnixFS file (Lotus
//!   profile: 1 MiB blocks) served block by block through the piece index;
//! - `retrieval/car_http_postgres`: the same CAR with the piece index in Postgres (a local
//!   server with fsync on, as several instances would share), every block looked up over
//!   its connection pool;
//! - `retrieval/car_file_read`: reading the CAR file.
//!
//! Server and client share the process (and the machine's cores). Peak RSS (VmHWM) is printed
//! at the end. Run with `cargo bench -p benches --bench retrieval`.

use std::path::Path;
use std::sync::Arc;

use benches::{peak_rss_mib, write_splitmix64_file};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use piecestore::unixfs::{ImportProfile, import_file};
use piecestore::{FsPieceStore, PieceIndex, PieceStore, SqlitePieceIndex};
use retrieval_market::RetrievalProvider;
use retrieval_market::http::{HttpConfig, router};
use tokio::io::AsyncReadExt;

async fn fetch(http: &reqwest::Client, url: &str) -> u64 {
    let resp = http.get(url).send().await.unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
    let mut body = resp.bytes_stream();
    let mut n = 0;
    while let Some(c) = body.next().await {
        n += c.unwrap().len() as u64;
    }
    n
}

async fn read_file(path: &Path) -> u64 {
    let mut f = tokio::fs::File::open(path).await.unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        let k = f.read(&mut buf).await.unwrap();
        if k == 0 {
            return n;
        }
        n += k as u64;
    }
}

fn bench(c: &mut Criterion) {
    // As the binaries do: peak RSS is read at the end.
    market_core::process::limit_malloc_arenas();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsPieceStore::open(dir.path().join("pieces")).unwrap());
    let index: Arc<dyn PieceIndex> =
        Arc::new(SqlitePieceIndex::open(&dir.path().join("index.db")).unwrap());
    let pg = market_postgres::testing::PgServer::start_with(&dir.path().join("pg"), true);
    let pg_index: Arc<dyn PieceIndex> = Arc::new(
        rt.block_on(market_postgres::PgPieceIndex::open(
            market_postgres::PgDb::connect(&pg.database("bench"), 16).unwrap(),
        ))
        .unwrap(),
    );

    // A 1 GiB piece: 1016 MiB of payload.
    let payload = dir.path().join("payload.bin");
    write_splitmix64_file(&payload, 1016 << 20, 7).unwrap();
    let piece = rt.block_on(async {
        let f = tokio::fs::File::open(&payload).await.unwrap();
        store.put(Box::pin(f), None).await.unwrap()
    });
    std::fs::remove_file(&payload).unwrap();

    // A 256 MiB file as a UnixFS CAR, stored and indexed.
    let file = dir.path().join("file.bin");
    write_splitmix64_file(&file, 256 << 20, 7).unwrap();
    let car_path = dir.path().join("file.car");
    let report = import_file(
        &file,
        ImportProfile::LOTUS,
        std::fs::File::create(&car_path).unwrap(),
        &mut |_| {},
    )
    .unwrap();
    let root = report.root;
    rt.block_on(async {
        let meta = store
            .put(
                Box::pin(tokio::fs::File::open(&car_path).await.unwrap()),
                None,
            )
            .await
            .unwrap();
        for index in [&index, &pg_index] {
            piecestore::index_payload(
                &**index,
                meta,
                Box::pin(tokio::fs::File::open(&car_path).await.unwrap()),
            )
            .await
            .unwrap();
        }
    });

    // One retrieval router per index, on the same piece store.
    let serve = |index: Arc<dyn PieceIndex>| {
        let provider = RetrievalProvider::new(
            store.clone(),
            index,
            None,
            storage_market::types::Address::new_id(1000),
        );
        rt.block_on(async {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            tokio::spawn(async move {
                axum::serve(listener, router(provider, HttpConfig::default()))
                    .await
                    .unwrap();
            });
            format!("http://{addr}")
        })
    };
    let base = serve(index);
    let pg_base = serve(pg_index);
    let http = reqwest::Client::new();
    let piece_url = format!("{base}/piece/{}", piece.piece_cid);
    let car_url = format!("{base}/ipfs/{root}?dag-scope=all");
    let pg_car_url = format!("{pg_base}/ipfs/{root}?dag-scope=all");
    let piece_file = store.path_of(&piece.piece_cid).unwrap();
    let unpadded = piece.padded_size.unpadded().get();
    let car_len = rt.block_on(fetch(&http, &car_url));
    assert_eq!(car_len, report.car_size);
    assert_eq!(rt.block_on(fetch(&http, &pg_car_url)), car_len);

    let mut g = c.benchmark_group("retrieval");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(unpadded));
    g.bench_function("piece_http", |b| {
        b.iter(|| assert_eq!(rt.block_on(fetch(&http, &piece_url)), unpadded))
    });
    g.bench_function("piece_file_read", |b| {
        b.iter(|| assert_eq!(rt.block_on(read_file(&piece_file)), piece.payload_size))
    });
    g.throughput(Throughput::Bytes(car_len));
    g.bench_function("car_http", |b| {
        b.iter(|| assert_eq!(rt.block_on(fetch(&http, &car_url)), car_len))
    });
    g.bench_function("car_http_postgres", |b| {
        b.iter(|| assert_eq!(rt.block_on(fetch(&http, &pg_car_url)), car_len))
    });
    g.bench_function("car_file_read", |b| {
        b.iter(|| assert_eq!(rt.block_on(read_file(&car_path)), car_len))
    });
    g.finish();
    println!("peak RSS (VmHWM): {} MiB", peak_rss_mib());
    drop(pg);
}

criterion_group!(benches, bench);
criterion_main!(benches);
