//! commP throughput on one thread and on every core, against baselines and a real peer
//! measured in the same run:
//!
//! - `sha256_stream`: plain streaming SHA-256 (sha2 crate) over the same bytes, the
//!   hardware's single-stream hashing rate;
//! - `naive_tree`: fr32 then a tree hashed one node at a time with the sha2 crate;
//! - `go_commp_hashhash`: go-fil-commp-hashhash (what Boost and Curio use) in a small Go
//!   program built here from the Go module proxy (`benches/go/commp-hashhash`), reading the
//!   same bytes from a file in the page cache; its commitment must equal ours first.
//!
//! Inputs fill a 1 MiB, 32 MiB and 1 GiB piece exactly (payload = 127/128 of the padded
//! size), so no implementation can skip zero padding. Throughput is payload bytes per second.
//! The ratios of the medians are printed at the end. Run with
//! `cargo bench -p benches --bench commp` (Go required; `COMMP_BENCH_NO_GO=1` skips the peer).

use std::hint::black_box;
use std::time::Duration;

use benches::{baseline, go_peer, median_ns, splitmix64_bytes};
use commp::{Backend, CommP};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn commp_with(backend: Backend, threads: usize, data: &[u8]) -> commp::PieceInfo {
    let mut h = CommP::new()
        .with_threads(threads)
        .with_backend(backend)
        .expect("backend supported");
    // 1 MiB writes, as a reader or network stream would deliver them.
    for chunk in data.chunks(1 << 20) {
        h.update(chunk);
    }
    h.finish().expect("valid payload")
}

fn bench(c: &mut Criterion) {
    let cores = CommP::new().threads();
    let all = format!("commp_{cores}_threads");
    let go = (std::env::var("COMMP_BENCH_NO_GO").as_deref() != Ok("1"))
        .then(|| go_peer("commp-hashhash").expect("building the go-fil-commp-hashhash peer"));
    let dir = tempfile::tempdir().expect("temp dir");
    let mut names = Vec::new();
    let sizes: [(&str, u64); 3] = [("1MiB", 1 << 20), ("32MiB", 32 << 20), ("1GiB", 1 << 30)];
    let only = std::env::var("COMMP_BENCH_SIZES").ok();
    let mut group = c.benchmark_group("commp");
    for (name, padded) in sizes {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|s| s == name))
        {
            continue;
        }
        names.push(name);
        let data = splitmix64_bytes(0, (padded / 128 * 127) as usize);
        // Every implementation must agree before any of them is timed.
        let fast = commp_with(Backend::detect(), 1, &data);
        assert_eq!(fast.commitment.to_bytes(), baseline::naive_commp(&data));
        assert_eq!(fast.padded_size.get(), padded);
        assert_eq!(commp_with(Backend::detect(), cores, &data), fast);
        let file = dir.path().join(format!("{name}.bin"));
        std::fs::write(&file, &data).expect("payload file");
        let go_run = |bin: &std::path::Path| {
            let out = std::process::Command::new(bin)
                .arg(&file)
                .output()
                .expect("running the Go peer");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8(out.stdout).expect("text")
        };
        if let Some(bin) = &go {
            let expected = format!("{} {padded}", fast.commitment.to_hex());
            assert_eq!(go_run(bin).trim(), expected);
        }

        group.throughput(Throughput::Bytes(data.len() as u64));
        if padded >= 1 << 30 {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(30));
        } else {
            group.sample_size(20);
            group.measurement_time(Duration::from_secs(10));
        }
        group.bench_with_input(BenchmarkId::new("commp_1_thread", name), &data, |b, d| {
            b.iter(|| commp_with(Backend::detect(), 1, black_box(d)))
        });
        group.bench_with_input(BenchmarkId::new(&all, name), &data, |b, d| {
            b.iter(|| commp_with(Backend::detect(), cores, black_box(d)))
        });
        if let Some(bin) = go.as_deref().filter(|_| padded >= 32 << 20) {
            group.bench_function(BenchmarkId::new("go_commp_hashhash", name), |b| {
                b.iter(|| go_run(bin))
            });
        }
        for backend in Backend::ALL.into_iter().filter(|b| b.is_supported()) {
            let id = format!("commp_{backend:?}").to_lowercase();
            group.bench_with_input(BenchmarkId::new(id, name), &data, |b, d| {
                b.iter(|| commp_with(backend, 1, black_box(d)))
            });
        }
        group.bench_with_input(BenchmarkId::new("fr32_pad", name), &data, |b, d| {
            let mut out = vec![0u8; padded as usize];
            b.iter(|| commp::fr32::pad(black_box(d), &mut out).expect("whole blocks"))
        });
        group.bench_with_input(BenchmarkId::new("naive_tree", name), &data, |b, d| {
            b.iter(|| baseline::naive_commp(black_box(d)))
        });
        group.bench_with_input(BenchmarkId::new("sha256_stream", name), &data, |b, d| {
            b.iter(|| baseline::sha256_stream(black_box(d)))
        });
    }
    group.finish();
    for name in names {
        let m = |id: &str| median_ns("commp", id, name);
        let (one, many) = (m("commp_1_thread"), m(&all));
        let ratio =
            |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| format!("{:.2}x", a / b));
        println!(
            "{name}: {cores} threads vs 1: {} (per-core efficiency {}); 1 thread vs sha256_stream: {}; \
             vs go-fil-commp-hashhash: 1 thread {}, {cores} threads {}",
            ratio(one, many).unwrap_or_default(),
            one.zip(many)
                .map(|(o, a)| format!("{:.2}", o / a / cores as f64))
                .unwrap_or_default(),
            ratio(m("sha256_stream"), one).unwrap_or_default(),
            ratio(m("go_commp_hashhash"), one).unwrap_or("-".into()),
            ratio(m("go_commp_hashhash"), many).unwrap_or("-".into()),
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
