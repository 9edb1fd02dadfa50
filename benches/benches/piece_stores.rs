//! Piece stores side by side in one run: the filesystem store, the S3 store on a real S3
//! server on loopback (s3s-fs, `scripts/s3/install`) with its read windows, and the same S3
//! store with read windows off (one GET per read, what a naive S3 store does):
//!
//! - `piece_stores/car_blocks/*`: every block of a 32 MiB UnixFS CAR (Kubo profile: 256 KiB
//!   leaves, 129 blocks) read with `read_at` in payload order, as a CAR retrieval reads them;
//! - `piece_stores/put/*`: `put` of the 32 MiB payload with its promised piece CID (commP
//!   hashed while writing; for S3, multipart upload of 8 MiB parts, 4 in flight).
//!
//! Loopback has no network latency: against a real bucket each saved GET also saves a round
//! trip (tens of milliseconds), so the window's gain there is larger than here. Run with
//! `cargo bench -p benches --bench piece_stores`.

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use piecestore::testing::S3Server;
use piecestore::unixfs::{ImportProfile, import_file};
use piecestore::{
    BlockEntry, ByteRange, CarIndexer, ExpectedPiece, FsPieceStore, PaddedPieceSize, PieceStore,
    S3PieceStore,
};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    let bucket = server.bucket("bench");

    // A 32 MiB file as a Kubo-profile CAR.
    let file = dir.path().join("file.bin");
    benches::write_splitmix64_file(&file, 32 << 20, 11).unwrap();
    let mut car = Vec::new();
    import_file(&file, ImportProfile::KUBO, &mut car, &mut |_| {}).unwrap();
    let mut blocks: Vec<BlockEntry> = Vec::new();
    let mut indexer = CarIndexer::new();
    indexer.update(&car, &mut |b| blocks.push(b)).unwrap();
    indexer.finish().unwrap();
    let padded = PaddedPieceSize::new(64 << 20).unwrap();
    let expect = {
        let mut h = commp::CommP::new();
        h.update(&car);
        let info = h.finish_padded_to(padded).unwrap();
        ExpectedPiece {
            piece_cid: market_core::cid::widen(&info.cid_v1()),
            padded_size: padded,
        }
    };

    let fs: Arc<dyn PieceStore> = Arc::new(FsPieceStore::open(dir.path().join("pieces")).unwrap());
    let s3_config = bucket.clone().with_parts(8 << 20, 4);
    let s3: Arc<dyn PieceStore> = Arc::new(S3PieceStore::open(&s3_config).unwrap());
    let s3_direct: Arc<dyn PieceStore> =
        Arc::new(S3PieceStore::open(&s3_config.clone().with_read_windows(0, 0)).unwrap());
    rt.block_on(async {
        for s in [&fs, &s3] {
            s.put(Box::pin(std::io::Cursor::new(car.clone())), Some(expect))
                .await
                .unwrap();
        }
    });
    let piece = expect.piece_cid;
    println!("CAR of {} bytes, {} blocks", car.len(), blocks.len());

    let mut g = c.benchmark_group("piece_stores/car_blocks");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(blocks.iter().map(|b| b.size).sum()));
    for (name, store) in [
        ("fs", &fs),
        ("s3_windows", &s3),
        ("s3_get_per_block", &s3_direct),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let mut n = 0u64;
                    for blk in &blocks {
                        let r = ByteRange::new(blk.offset, blk.offset + blk.size);
                        n += store.read_at(&piece, r).await.unwrap().len() as u64;
                    }
                    n
                })
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("piece_stores/put");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(car.len() as u64));
    for (name, store) in [("fs", &fs), ("s3", &s3)] {
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    store
                        .put(Box::pin(std::io::Cursor::new(car.clone())), Some(expect))
                        .await
                        .unwrap()
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
