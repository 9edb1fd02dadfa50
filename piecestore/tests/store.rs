//! The filesystem piece store and the SQLite piece index.

mod support;

use market_core::cid::PieceCidExt;
use std::pin::Pin;
use std::task::{Context, Poll};

use piecestore::{
    ByteRange, DealRecord, ExpectedPiece, FsPieceStore, PaddedPieceSize, PieceIndex, PieceReader,
    PieceStore, PieceStoreError, SqlitePieceIndex, StagedPiece,
};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};

/// Indexes a piece the store holds by reading it back.
async fn index_stored(
    index: &SqlitePieceIndex,
    store: &FsPieceStore,
    meta: piecestore::PieceMeta,
) -> piecestore::IndexReport {
    let data = store.get(&meta.piece_cid, None).await.unwrap();
    piecestore::index_payload(index, meta, data).await.unwrap()
}

fn reader(bytes: Vec<u8>) -> PieceReader {
    Box::pin(std::io::Cursor::new(bytes))
}

async fn read_all(mut r: PieceReader) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.unwrap();
    out
}

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".partial"))
        .collect()
}

#[tokio::test]
async fn put_verifies_commp_and_serves_ranges() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsPieceStore::open(dir.path()).unwrap();
    let bytes = payload(3 << 20);
    let want = commp::commp(&bytes).unwrap();
    let padded = PaddedPieceSize::new(8 << 20).unwrap();
    let big = {
        let mut h = commp::CommP::new();
        h.update(&bytes);
        h.finish_padded_to(padded).unwrap()
    };
    // Padded to the deal's size, which is larger than the minimal one.
    let meta = store
        .put(
            reader(bytes.clone()),
            Some(ExpectedPiece {
                piece_cid: big.piece_cid(),
                padded_size: padded,
            }),
        )
        .await
        .unwrap();
    assert_eq!(meta.piece_cid, big.piece_cid());
    assert_eq!(meta.padded_size, padded);
    assert_eq!(meta.payload_size, bytes.len() as u64);
    assert_ne!(big.piece_cid(), want.piece_cid());

    assert!(store.has(&meta.piece_cid).await.unwrap());
    assert_eq!(store.stat(&meta.piece_cid).await.unwrap(), Some(meta));
    assert_eq!(store.list().await.unwrap(), vec![meta]);
    assert_eq!(
        read_all(store.get(&meta.piece_cid, None).await.unwrap()).await,
        bytes
    );
    let r = ByteRange::new(1_000_000, 1_000_100);
    assert_eq!(
        read_all(store.get(&meta.piece_cid, Some(r)).await.unwrap()).await,
        &bytes[1_000_000..1_000_100]
    );
    let err = store
        .get(
            &meta.piece_cid,
            Some(ByteRange::new(10, bytes.len() as u64 + 1)),
        )
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, PieceStoreError::RangeNotSatisfiable { .. }),
        "{err}"
    );
    // Positional reads: exact bytes, refused past the end, reversed or too large.
    for (start, end) in [(0, 1), (1_000_000, 1_000_100), (0, bytes.len() as u64)] {
        let got = store
            .read_at(&meta.piece_cid, ByteRange::new(start, end))
            .await
            .unwrap();
        assert_eq!(got, bytes[start as usize..end as usize]);
    }
    let past_end = ByteRange::new(10, bytes.len() as u64 + 1);
    let err = store.read_at(&meta.piece_cid, past_end).await.unwrap_err();
    assert!(
        matches!(err, PieceStoreError::RangeNotSatisfiable { .. }),
        "{err}"
    );
    let reversed = ByteRange { start: 10, end: 5 };
    let too_large = ByteRange::new(0, piecestore::MAX_READ_AT + 1);
    for bad in [reversed, too_large] {
        let err = store.read_at(&meta.piece_cid, bad).await.unwrap_err();
        assert!(matches!(err, PieceStoreError::InvalidSize(_)), "{err}");
    }
    assert!(store.path_of(&meta.piece_cid).is_some());
    assert_eq!(
        store.locator(&meta.piece_cid),
        store
            .path_of(&meta.piece_cid)
            .unwrap()
            .display()
            .to_string()
    );

    // Survives reopening.
    let store = FsPieceStore::open(dir.path()).unwrap();
    assert_eq!(store.stat(&meta.piece_cid).await.unwrap(), Some(meta));
    let head = ByteRange::new(0, 100);
    assert_eq!(
        store.read_at(&meta.piece_cid, head).await.unwrap(),
        bytes[..100]
    );
    assert!(store.delete(&meta.piece_cid).await.unwrap());
    // The cached handle went with the file.
    let err = store.read_at(&meta.piece_cid, head).await.unwrap_err();
    assert!(matches!(err, PieceStoreError::NotFound(_)), "{err}");
    assert!(!store.delete(&meta.piece_cid).await.unwrap());
    assert!(!store.has(&meta.piece_cid).await.unwrap());
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[tokio::test]
async fn a_commp_mismatch_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsPieceStore::open(dir.path()).unwrap();
    let other = commp::commp(&payload(5000)).unwrap();
    let err = store
        .put(
            reader(payload(4000)),
            Some(ExpectedPiece {
                piece_cid: other.piece_cid(),
                padded_size: other.padded_size,
            }),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, PieceStoreError::CommPMismatch { .. }),
        "{err}"
    );
    assert!(store.list().await.unwrap().is_empty());
    assert!(leftovers(dir.path()).is_empty());
    // Too large for the promised size.
    let err = store
        .put(
            reader(payload(5000)),
            Some(ExpectedPiece {
                piece_cid: other.piece_cid(),
                padded_size: PaddedPieceSize::new(2048).unwrap(),
            }),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, PieceStoreError::InvalidSize(_)), "{err}");
    assert!(leftovers(dir.path()).is_empty());
}

/// A reader that fails after `ok` bytes, like a connection that breaks.
struct Broken {
    ok: usize,
}

impl AsyncRead for Broken {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        if self.ok == 0 {
            return Poll::Ready(Err(std::io::Error::other("connection reset")));
        }
        let n = self.ok.min(buf.remaining()).min(4096);
        buf.put_slice(&vec![1u8; n]);
        self.ok -= n;
        Poll::Ready(Ok(()))
    }
}

#[tokio::test]
async fn a_broken_stream_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsPieceStore::open(dir.path()).unwrap();
    let err = store
        .put(Box::pin(Broken { ok: 100_000 }), None)
        .await
        .unwrap_err();
    assert!(matches!(err, PieceStoreError::Io(_)), "{err}");
    assert!(leftovers(dir.path()).is_empty());
}

#[tokio::test]
async fn open_removes_what_a_crash_left() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsPieceStore::open(dir.path()).unwrap();
    let meta = store.put(reader(payload(1000)), None).await.unwrap();
    std::fs::write(dir.path().join("0b1c.partial"), b"half a piece").unwrap();
    // Metadata whose payload rename never happened.
    let orphan = commp::commp(&payload(2000)).unwrap().piece_cid();
    std::fs::write(dir.path().join(format!("{orphan}.meta.json")), b"{}").unwrap();
    let store = FsPieceStore::open(dir.path()).unwrap();
    assert_eq!(store.list().await.unwrap(), vec![meta]);
    // The piece and its metadata are all that is left.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
}

#[tokio::test]
async fn only_piece_cids_name_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsPieceStore::open(dir.path()).unwrap();
    let raw = support::raw_cid(b"not a piece");
    for r in [
        store.get(&raw, None).await.err().unwrap(),
        store.stat(&raw).await.unwrap_err(),
        store.delete(&raw).await.unwrap_err(),
    ] {
        assert!(matches!(r, PieceStoreError::InvalidPieceCid(_)), "{r}");
    }
    let missing = commp::commp(&payload(100)).unwrap().piece_cid();
    assert!(matches!(
        store.get(&missing, None).await.err().unwrap(),
        PieceStoreError::NotFound(_)
    ));
}

#[tokio::test]
async fn put_staged_moves_the_file_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsPieceStore::open(dir.path().join("pieces")).unwrap();
    let bytes = payload(70_000);
    let info = commp::commp(&bytes).unwrap();
    let staged = dir.path().join("staged.car");
    std::fs::write(&staged, &bytes).unwrap();
    let meta = piecestore::PieceMeta {
        piece_cid: info.piece_cid(),
        payload_size: bytes.len() as u64,
        padded_size: info.padded_size,
    };
    let short = piecestore::PieceMeta {
        payload_size: 1,
        ..meta
    };
    assert!(matches!(
        store
            .put_staged(StagedPiece::new(&staged, short))
            .await
            .unwrap_err(),
        PieceStoreError::InvalidSize(_)
    ));
    store
        .put_staged(StagedPiece::new(&staged, meta))
        .await
        .unwrap();
    assert!(!staged.exists());
    assert_eq!(
        read_all(store.get(&meta.piece_cid, None).await.unwrap()).await,
        bytes
    );
}

#[tokio::test]
async fn put_verified_takes_a_stream_and_checks_its_length() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsPieceStore::open(dir.path().join("pieces")).unwrap();
    let bytes = payload(70_000);
    let info = commp::commp(&bytes).unwrap();
    let meta = piecestore::PieceMeta {
        piece_cid: info.piece_cid(),
        payload_size: bytes.len() as u64,
        padded_size: info.padded_size,
    };
    let cut = Box::pin(std::io::Cursor::new(bytes[..1000].to_vec()));
    assert!(matches!(
        store.put_verified(cut, meta).await.unwrap_err(),
        PieceStoreError::InvalidSize(_)
    ));
    assert!(!store.has(&meta.piece_cid).await.unwrap());
    assert!(store.list().await.unwrap().is_empty());
    store
        .put_verified(Box::pin(std::io::Cursor::new(bytes.clone())), meta)
        .await
        .unwrap();
    assert_eq!(store.stat(&meta.piece_cid).await.unwrap(), Some(meta));
    assert_eq!(
        read_all(store.get(&meta.piece_cid, None).await.unwrap()).await,
        bytes
    );
}

#[tokio::test]
async fn the_index_finds_deals_roots_and_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsPieceStore::open(dir.path().join("pieces")).unwrap();
    let index = SqlitePieceIndex::open(&dir.path().join("index.db")).unwrap();
    let blocks: Vec<Vec<u8>> = (0..20_000u32).map(|i| i.to_le_bytes().repeat(8)).collect();
    let (car, entries) = support::car(&blocks);
    let meta = store.put(reader(car.clone()), None).await.unwrap();
    let report = index_stored(&index, &store, meta).await;
    assert_eq!(report.error, None);
    assert_eq!(report.blocks, blocks.len() as u64);
    assert_eq!(report.roots, vec![support::raw_cid(b"root")]);

    // Indexing again as the bytes stream past, in odd-sized pieces, replaces the first
    // index with the same result.
    let mut indexer = piecestore::PieceIndexer::begin(&index, &meta.piece_cid)
        .await
        .unwrap();
    assert!(index.blocks(&meta.piece_cid).await.unwrap().is_empty());
    for part in car.chunks(777) {
        indexer.push(part).await.unwrap();
    }
    assert_eq!(indexer.finish(meta).await.unwrap(), report);

    let deal = DealRecord {
        miner: "f01000".into(),
        deal_id: 77,
        sector: 3,
        offset: 0,
        length: meta.padded_size.get(),
    };
    index.add_deal(&meta.piece_cid, deal.clone()).await.unwrap();
    index.add_deal(&meta.piece_cid, deal.clone()).await.unwrap();

    // Reopened: everything persisted.
    drop(index);
    let index = SqlitePieceIndex::open(&dir.path().join("index.db")).unwrap();
    let rec = index.piece(&meta.piece_cid).await.unwrap().unwrap();
    assert!(rec.indexed);
    assert_eq!(rec.deals, vec![deal]);
    assert_eq!(rec.block_count, blocks.len() as u64);
    assert_eq!(
        index
            .pieces_for_root(&support::raw_cid(b"root"))
            .await
            .unwrap(),
        vec![meta.piece_cid]
    );
    // Many lookups at once answer in the order asked, a missing block with nothing.
    let mut asked: Vec<_> = entries.iter().step_by(501).map(|e| e.cid).collect();
    asked.insert(3, support::raw_cid(b"not stored"));
    let found = index.find_blocks(&asked).await.unwrap();
    assert_eq!(found.len(), asked.len());
    assert!(found[3].is_empty());
    for (cid, found) in asked.iter().zip(&found).filter(|(_, f)| !f.is_empty()) {
        let e = entries.iter().find(|e| e.cid == *cid).unwrap();
        assert_eq!(found, &vec![(meta.piece_cid, e.offset, e.size)]);
        let range = ByteRange::new(e.offset, e.offset + e.size);
        let got = store.read_at(&meta.piece_cid, range).await.unwrap();
        assert_eq!(got, car[e.offset as usize..(e.offset + e.size) as usize]);
    }
    for e in entries.iter().step_by(997) {
        let found = index.find_block(&e.cid).await.unwrap();
        assert_eq!(found, vec![(meta.piece_cid, e.offset, e.size)]);
        let got = read_all(
            store
                .get(
                    &meta.piece_cid,
                    Some(ByteRange::new(e.offset, e.offset + e.size)),
                )
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(got, car[e.offset as usize..(e.offset + e.size) as usize]);
    }
    assert_eq!(
        index.blocks(&meta.piece_cid).await.unwrap().len(),
        blocks.len()
    );

    index.remove_piece(&meta.piece_cid).await.unwrap();
    assert!(index.piece(&meta.piece_cid).await.unwrap().is_none());
    assert!(index.find_block(&entries[0].cid).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_payload_that_is_not_a_car_is_recorded_without_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let store = FsPieceStore::open(dir.path().join("pieces")).unwrap();
    let index = SqlitePieceIndex::open(&dir.path().join("index.db")).unwrap();
    let (mut car, _) = support::car(&[vec![5u8; 100_000]]);
    car.truncate(50_000);
    let meta = store.put(reader(car), None).await.unwrap();
    let report = index_stored(&index, &store, meta).await;
    assert!(report.error.unwrap().contains("truncated"));
    let rec = index.piece(&meta.piece_cid).await.unwrap().unwrap();
    assert!(rec.indexed);
    assert_eq!(rec.block_count, 0);
    assert!(index.blocks(&meta.piece_cid).await.unwrap().is_empty());
}

/// The follower finds a CAR's blocks while it hashes, even when the file fills out of order
/// and part of it is read back from disk, and gives up (no blocks) past its cap.
#[tokio::test]
async fn the_follower_finds_car_blocks_in_the_hashing_pass() {
    use std::os::unix::fs::FileExt;
    let blocks: Vec<Vec<u8>> = (0..3000u32).map(|i| i.to_le_bytes().repeat(100)).collect();
    let (car, entries) = support::car(&blocks);
    let want = commp::commp(&car).unwrap();
    for (cap, expect_blocks) in [(10_000, true), (100, false)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("staged.car");
        let file = std::fs::File::create_new(&path).unwrap();
        let follower =
            piecestore::CommPFollower::start_indexing(file.try_clone().unwrap(), 0, cap).unwrap();
        // Second half first (read back later), then the first half handed over.
        let half = car.len() / 2;
        file.write_all_at(&car[half..], half as u64).unwrap();
        follower.advance(0);
        file.write_all_at(&car[..half], 0).unwrap();
        follower.feed(
            0,
            bytes::Bytes::copy_from_slice(&car[..half]),
            car.len() as u64,
        );
        let (info, found) = follower
            .finish_indexed(car.len() as u64, None)
            .await
            .unwrap();
        assert_eq!(info.piece_cid(), want.piece_cid());
        if expect_blocks {
            let found = found.expect("under the cap");
            assert_eq!(found.error, None);
            assert_eq!(found.roots, vec![support::raw_cid(b"root")]);
            assert_eq!(found.entries, entries);
        } else {
            assert!(found.is_none(), "past the cap the blocks are dropped");
        }
    }
}

/// Frames handed over as they came off the network (uneven, some already hashed from the
/// file, one empty) give the same commitment and blocks as one buffer.
#[tokio::test]
async fn the_follower_hashes_frames_as_they_are() {
    use std::os::unix::fs::FileExt;
    let blocks: Vec<Vec<u8>> = (0..500u32).map(|i| i.to_le_bytes().repeat(300)).collect();
    let (car, entries) = support::car(&blocks);
    let want = commp::commp(&car).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = std::fs::File::create_new(dir.path().join("staged.car")).unwrap();
    file.write_all_at(&car, 0).unwrap();
    let follower =
        piecestore::CommPFollower::start_indexing(file.try_clone().unwrap(), 0, 10_000).unwrap();
    // The first 1000 bytes are complete before any frame arrives; the first frame overlaps
    // them, so only its tail is new.
    follower.advance(1000);
    let cuts = [0, 700, 5_000, 5_000, 77_777, 300_001, car.len()];
    let frames: Vec<bytes::Bytes> = cuts
        .windows(2)
        .map(|w| bytes::Bytes::copy_from_slice(&car[w[0]..w[1]]))
        .collect();
    follower.feed_frames(0, frames, car.len() as u64);
    let (info, found) = follower
        .finish_indexed(car.len() as u64, None)
        .await
        .unwrap();
    assert_eq!(info.piece_cid(), want.piece_cid());
    assert_eq!(found.expect("under the cap").entries, entries);
}

/// An endless source for a small piece is refused once it overflows the piece, not read
/// to its (never reached) end; a put that is cancelled mid-way leaves no `.partial` file.
#[tokio::test]
async fn endless_and_cancelled_puts_leave_nothing() {
    use futures::FutureExt;
    let dir = tempfile::tempdir().unwrap();
    let store = FsPieceStore::open(dir.path()).unwrap();
    let small = PaddedPieceSize::new(4 << 20).unwrap();
    let expect = ExpectedPiece {
        piece_cid: commp::commp(&payload(1000)).unwrap().piece_cid(),
        padded_size: small,
    };
    let endless: PieceReader = Box::pin(tokio::io::repeat(0));
    let err = store.put(endless, Some(expect)).await.unwrap_err();
    assert!(matches!(err, PieceStoreError::InvalidSize(_)), "{err}");
    assert!(leftovers(dir.path()).is_empty());

    // A source that delivers a first chunk and then stalls: the put is dropped while it
    // waits, as when the client of an import goes away.
    let (mut tx, rx) = tokio::io::duplex(1 << 20);
    use tokio::io::AsyncWriteExt;
    tx.write_all(&payload(64 << 10)).await.unwrap();
    let mut put = Box::pin(store.put(Box::pin(rx), Some(expect)));
    assert!((&mut put).now_or_never().is_none());
    assert_eq!(leftovers(dir.path()).len(), 1, "the write has begun");
    drop(put);
    assert!(leftovers(dir.path()).is_empty());
    drop(tx);
}

/// The suite every piece index runs (Postgres runs it in `market-postgres`), here on two
/// connections to one SQLite file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_index_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let a = SqlitePieceIndex::open(&dir.path().join("index.db")).unwrap();
    let b = SqlitePieceIndex::open(&dir.path().join("index.db")).unwrap();
    piecestore::testing::piece_index_conformance(std::sync::Arc::new(a), std::sync::Arc::new(b))
        .await;
}
