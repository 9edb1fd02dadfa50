//! Receiving and verifying a piece over HTTP on loopback, against commP alone over the same
//! bytes, in the same run:
//!
//! - `transfer/http_receive_verify`: a `TransferManager` pulls the payload from a `CarServer`
//!   on 127.0.0.1 (five connections, Boost's default), writes it to staging with periodic
//!   fsync, and computes its commP while receiving;
//! - `transfer/commp_only`: `commp_reader` over the same file (from the page cache);
//! - `transfer/disk_write_fdatasync`: the same bytes written from memory into a new file
//!   beside staging and fdatasynced once, the disk's floor for any durable receive.
//!
//! The staged file is removed after each transfer, outside the timing (a provider renames it
//! into its piece store). Put `TMPDIR` on a tmpfs to see the transfer without the disk.
//! The payload fills a 1 GiB piece (1016 MiB). Peak RSS (VmHWM) of the process is printed at
//! the end; nothing here holds the payload in memory. Set `TRANSFER_BENCH_4GIB=1` to also run
//! one 4 GiB transfer and print its time and the peak RSS after it.
//! Run with `cargo bench -p benches --bench transfer`.

use market_core::cid::PieceCidExt;
use std::path::Path;
use std::time::{Duration, Instant};

use benches::{peak_rss_mib, write_splitmix64_file};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use data_transfer::{
    AddressPolicy, CarServer, TransferConfig, TransferId, TransferManager, TransferRequest,
};

struct Setup {
    rt: tokio::runtime::Runtime,
    manager: TransferManager,
    url: String,
    _dir: tempfile::TempDir,
}

fn setup(dir: tempfile::TempDir, files: &[(&str, &Path)]) -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = CarServer::new();
    for (token, path) in files {
        server.add(*token, *path);
    }
    let (manager, url) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = server.router();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let mut cfg = TransferConfig::new(dir.path().join("staging"));
        cfg.policy = AddressPolicy::allowing_private();
        cfg.max_staging_bytes = u64::MAX;
        cfg.max_staging_bytes_per_host = u64::MAX;
        if let Some(n) = std::env::var("TRANSFER_BENCH_CONNECTIONS")
            .ok()
            .and_then(|v| v.parse().ok())
        {
            cfg.connections = n;
        }
        if let Some(n) = std::env::var("TRANSFER_BENCH_CHECKPOINT_MIB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
        {
            cfg.checkpoint_bytes = n << 20;
        }
        (
            TransferManager::open(cfg, None).await.unwrap(),
            format!("http://{addr}/piece.car"),
        )
    });
    Setup {
        rt,
        manager,
        url,
        _dir: dir,
    }
}

/// One transfer of `size` bytes with `token`, received, verified and durable; returns the
/// piece CID text and the time that took. The staged file is removed afterwards, untimed: a
/// provider moves it into its piece store instead.
fn transfer(s: &Setup, n: u64, token: &str, size: u64) -> (String, Duration) {
    s.rt.block_on(async {
        let id = TransferId::new(format!("bench-{n}")).unwrap();
        let t = Instant::now();
        s.manager
            .start(TransferRequest {
                id: id.clone(),
                url: s.url.clone(),
                headers: vec![("Authorization".into(), CarServer::auth_header(token))],
                size,
                padded_size: None,
            })
            .await
            .unwrap();
        let done = s.manager.wait(&id).await.unwrap();
        let took = t.elapsed();
        s.manager.remove(&id).await.unwrap();
        (done.piece.piece_cid.to_string(), took)
    })
}

fn bench(c: &mut Criterion) {
    // As the binaries do: peak RSS is read at the end.
    market_core::process::limit_malloc_arenas();
    let dir = tempfile::tempdir().unwrap();
    let size: u64 = (1 << 30) / 128 * 127;
    let payload = dir.path().join("payload.car");
    write_splitmix64_file(&payload, size, 1).unwrap();
    let expected = commp::commp_reader(std::fs::File::open(&payload).unwrap())
        .unwrap()
        .piece_cid()
        .to_string();
    let s = setup(dir, &[("bench", &payload)]);
    let mut n = 0u64;

    let mut group = c.benchmark_group("transfer");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.throughput(Throughput::Bytes(size));
    group.bench_function("http_receive_verify", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let (piece, took) = transfer(&s, n, "bench", size);
                assert_eq!(piece, expected);
                total += took;
            }
            total
        })
    });
    // The disk's floor for any durable receive: the same bytes written from memory into a
    // new file in the staging directory, then one fdatasync.
    let mut chunk = vec![0u8; 1 << 20];
    std::io::Read::read_exact(&mut std::fs::File::open(&payload).unwrap(), &mut chunk).unwrap();
    let floor = s._dir.path().join("floor.bin");
    group.bench_function("disk_write_fdatasync", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let mut f = std::fs::File::create(&floor).unwrap();
                let mut left = size;
                while left > 0 {
                    let k = left.min(chunk.len() as u64) as usize;
                    std::io::Write::write_all(&mut f, &chunk[..k]).unwrap();
                    left -= k as u64;
                }
                f.sync_data().unwrap();
                total += t.elapsed();
                drop(f);
                std::fs::remove_file(&floor).unwrap();
            }
            total
        })
    });
    group.bench_function("commp_only", |b| {
        b.iter(|| {
            let f =
                std::io::BufReader::with_capacity(1 << 20, std::fs::File::open(&payload).unwrap());
            assert_eq!(
                commp::commp_reader(f).unwrap().piece_cid().to_string(),
                expected
            );
        })
    });
    group.finish();
    println!("peak RSS after the 1 GiB runs: {} MiB", peak_rss_mib());

    if std::env::var("TRANSFER_BENCH_4GIB").is_ok_and(|v| v == "1") {
        let big = s._dir.path().join("big.car");
        let big_size: u64 = 4 << 30;
        write_splitmix64_file(&big, big_size, 1).unwrap();
        // A second server entry for the big file on the same router.
        let s4 = setup(tempfile::tempdir().unwrap(), &[("big", &big)]);
        let t = Instant::now();
        transfer(&s4, 1, "big", big_size);
        println!(
            "4 GiB transfer: {:.1} s, peak RSS {} MiB",
            t.elapsed().as_secs_f64(),
            peak_rss_mib()
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
