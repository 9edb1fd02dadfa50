//! commP throughput against two baselines measured in the same run:
//!
//! - `sha256_stream`: plain streaming SHA-256 (sha2 crate) over the same bytes, the
//!   hardware's single-stream hashing rate;
//! - `naive_tree`: fr32 then a tree hashed one node at a time with the sha2 crate.
//!
//! Inputs fill a 1 MiB, 32 MiB and 1 GiB piece exactly (payload = 127/128 of the padded
//! size), so no implementation can skip zero padding. Throughput is payload bytes per second.
//! Run with `cargo bench -p benches --bench commp`.

use std::hint::black_box;
use std::time::Duration;

use benches::{baseline, splitmix64_bytes};
use commp::{Backend, CommP};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

fn commp_with(backend: Backend, data: &[u8]) -> commp::PieceInfo {
    let mut h = CommP::new()
        .with_backend(backend)
        .expect("backend supported");
    // 1 MiB writes, as a reader or network stream would deliver them.
    for chunk in data.chunks(1 << 20) {
        h.update(chunk);
    }
    h.finish().expect("valid payload")
}

fn bench(c: &mut Criterion) {
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
        let data = splitmix64_bytes(0, (padded / 128 * 127) as usize);
        // Every implementation must agree before any of them is timed.
        let fast = commp_with(Backend::detect(), &data);
        assert_eq!(fast.commitment.to_bytes(), baseline::naive_commp(&data));
        assert_eq!(fast.padded_size.get(), padded);

        group.throughput(Throughput::Bytes(data.len() as u64));
        if padded >= 1 << 30 {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(30));
        } else {
            group.sample_size(20);
            group.measurement_time(Duration::from_secs(10));
        }
        group.bench_with_input(BenchmarkId::new("commp", name), &data, |b, d| {
            b.iter(|| commp_with(Backend::detect(), black_box(d)))
        });
        for backend in Backend::ALL.into_iter().filter(|b| b.is_supported()) {
            let id = format!("commp_{backend:?}").to_lowercase();
            group.bench_with_input(BenchmarkId::new(id, name), &data, |b, d| {
                b.iter(|| commp_with(backend, black_box(d)))
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
}

criterion_group!(benches, bench);
criterion_main!(benches);
