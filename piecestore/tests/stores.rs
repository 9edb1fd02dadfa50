//! One conformance suite for every piece store: the filesystem store, the S3 store on a real
//! S3 server (s3s-fs, installed by scripts/s3/install), and several stores as one.

use std::sync::Arc;

use market_core::Cid;
use object_store::{ObjectStore, ObjectStoreExt};
use piecestore::testing::S3Server;
use piecestore::{
    ByteRange, ExpectedPiece, FsPieceStore, MultiPieceStore, PaddedPieceSize, PieceMeta,
    PieceReader, PieceStore, PieceStoreError, S3Config, S3PieceStore, StagedPiece, StoreEntry,
};
use tokio::io::AsyncReadExt;

fn reader(bytes: Vec<u8>) -> PieceReader {
    Box::pin(std::io::Cursor::new(bytes))
}

async fn read_all(mut r: PieceReader) -> Vec<u8> {
    let mut out = Vec::new();
    r.read_to_end(&mut out).await.unwrap();
    out
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 7 + seed as usize) % 251) as u8)
        .collect()
}

fn piece_of(bytes: &[u8], padded: u64) -> ExpectedPiece {
    let padded_size = PaddedPieceSize::new(padded).unwrap();
    let mut h = commp::CommP::new();
    h.update(bytes);
    let info = h.finish_padded_to(padded_size).unwrap();
    ExpectedPiece {
        piece_cid: market_core::cid::widen(&info.cid_v1()),
        padded_size,
    }
}

/// What every store must do, in one pass over a fresh, empty store.
async fn conformance(store: Arc<dyn PieceStore>, staging: &std::path::Path) {
    assert!(store.list().await.unwrap().is_empty());

    // A piece over several upload parts (5 MiB) and read chunks (1 MiB), padded to the deal's
    // size rather than the minimal one.
    let bytes = payload(11 << 20 | 12345, 1);
    let expect = piece_of(&bytes, 16 << 20);
    let meta = store
        .put(reader(bytes.clone()), Some(expect))
        .await
        .unwrap();
    assert_eq!(meta.piece_cid, expect.piece_cid);
    assert_eq!(meta.payload_size, bytes.len() as u64);
    assert_eq!(meta.padded_size, expect.padded_size);
    assert_eq!(store.stat(&meta.piece_cid).await.unwrap(), Some(meta));
    assert!(store.has(&meta.piece_cid).await.unwrap());
    assert_eq!(
        read_all(store.get(&meta.piece_cid, None).await.unwrap()).await,
        bytes
    );
    let r = ByteRange::new(5 << 20, (5 << 20) + 4096);
    assert_eq!(
        read_all(store.get(&meta.piece_cid, Some(r)).await.unwrap()).await,
        &bytes[r.start as usize..r.end as usize]
    );
    let small = ByteRange::new(17, 17 + 300);
    assert_eq!(
        store.read_at(&meta.piece_cid, small).await.unwrap(),
        &bytes[17..317]
    );
    assert!(
        read_all(
            store
                .get(&meta.piece_cid, Some(ByteRange::new(9, 9)))
                .await
                .unwrap()
        )
        .await
        .is_empty()
    );
    let len = bytes.len() as u64;
    for beyond in [
        ByteRange::new(len - 1, len + 1),
        ByteRange::new(len + 5, len + 9),
    ] {
        assert!(matches!(
            store.get(&meta.piece_cid, Some(beyond)).await,
            Err(PieceStoreError::RangeNotSatisfiable { .. })
        ));
        assert!(matches!(
            store.read_at(&meta.piece_cid, beyond).await,
            Err(PieceStoreError::RangeNotSatisfiable { .. })
        ));
    }
    assert!(
        store
            .locator(&meta.piece_cid)
            .contains(&meta.piece_cid.to_string())
    );

    // A commP mismatch stores nothing.
    let other = payload(300_000, 2);
    let wrong = ExpectedPiece {
        piece_cid: expect.piece_cid,
        padded_size: PaddedPieceSize::new(512 << 10).unwrap(),
    };
    let lied = piece_of(&payload(300_000, 3), 512 << 10);
    match store.put(reader(other.clone()), Some(lied)).await {
        Err(PieceStoreError::CommPMismatch { expected, actual }) => {
            assert_eq!(*expected, lied.piece_cid);
            assert_eq!(*actual, piece_of(&other, 512 << 10).piece_cid);
        }
        other => panic!("expected a commP mismatch, got {other:?}"),
    }
    assert_eq!(store.stat(&lied.piece_cid).await.unwrap(), None);
    // More bytes than the promised piece can hold: refused, nothing stored.
    let mut tiny = wrong;
    tiny.padded_size = PaddedPieceSize::new(128 << 10).unwrap();
    tiny.piece_cid = piece_of(&other[..1000], 128 << 10).piece_cid;
    assert!(matches!(
        store.put(reader(other.clone()), Some(tiny)).await,
        Err(PieceStoreError::InvalidSize(_))
    ));
    assert_eq!(store.stat(&tiny.piece_cid).await.unwrap(), None);
    assert_eq!(store.list().await.unwrap(), vec![meta]);

    // Without a promised CID the piece is what the bytes hash to.
    let free = payload(200_000, 4);
    let free_meta = store.put(reader(free.clone()), None).await.unwrap();
    assert_eq!(free_meta.piece_cid, piece_of(&free, 256 << 10).piece_cid);
    assert_eq!(
        read_all(store.get(&free_meta.piece_cid, None).await.unwrap()).await,
        free
    );

    // A verified payload: only its length is checked.
    let verified = payload(70_000, 5);
    let v = piece_of(&verified, 128 << 10);
    let v_meta = PieceMeta {
        piece_cid: v.piece_cid,
        payload_size: verified.len() as u64,
        padded_size: v.padded_size,
    };
    for bad in [
        verified[..69_999].to_vec(),
        [verified.clone(), vec![0]].concat(),
    ] {
        assert!(matches!(
            store.put_verified(reader(bad), v_meta).await,
            Err(PieceStoreError::InvalidSize(_))
        ));
        assert_eq!(store.stat(&v.piece_cid).await.unwrap(), None);
    }
    store
        .put_verified(reader(verified.clone()), v_meta)
        .await
        .unwrap();
    assert_eq!(
        read_all(store.get(&v.piece_cid, None).await.unwrap()).await,
        verified
    );

    // A staged file is taken in and gone from staging.
    let staged_bytes = payload(90_000, 6);
    let s = piece_of(&staged_bytes, 128 << 10);
    let s_meta = PieceMeta {
        piece_cid: s.piece_cid,
        payload_size: staged_bytes.len() as u64,
        padded_size: s.padded_size,
    };
    let path = staging.join("staged.car");
    std::fs::write(&path, &staged_bytes).unwrap();
    store
        .put_staged(StagedPiece::new(&path, s_meta))
        .await
        .unwrap();
    assert!(!path.exists());
    assert_eq!(
        read_all(store.get(&s.piece_cid, None).await.unwrap()).await,
        staged_bytes
    );

    let mut all = vec![meta, free_meta, v_meta, s_meta];
    all.sort_by_key(|m| m.piece_cid.to_string());
    assert_eq!(store.list().await.unwrap(), all);

    // Deleting: gone, and a second delete says it was not there.
    assert!(store.delete(&meta.piece_cid).await.unwrap());
    assert!(!store.delete(&meta.piece_cid).await.unwrap());
    assert_eq!(store.stat(&meta.piece_cid).await.unwrap(), None);
    assert!(matches!(
        store.get(&meta.piece_cid, None).await,
        Err(PieceStoreError::NotFound(_))
    ));
    assert!(matches!(
        store.read_at(&meta.piece_cid, small).await,
        Err(PieceStoreError::NotFound(_))
    ));
    assert_eq!(store.list().await.unwrap().len(), 3);

    // Only piece CIDs name pieces.
    let not_a_piece: Cid = "bafkqaaa".parse().unwrap();
    assert!(matches!(
        store.stat(&not_a_piece).await,
        Err(PieceStoreError::InvalidPieceCid(_))
    ));
}

fn s3_store(config: &S3Config) -> S3PieceStore {
    S3PieceStore::open(&config.clone().with_parts(5 << 20, 3)).unwrap()
}

#[tokio::test]
async fn the_filesystem_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(FsPieceStore::open(dir.path().join("pieces")).unwrap());
    conformance(store.clone(), dir.path()).await;
    assert!(store.free_space().await.unwrap().unwrap() > 0);
}

#[tokio::test]
async fn the_s3_store_conforms_on_a_real_s3_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    let config = server.bucket("pieces").with_prefix("market/pieces/");
    let store = Arc::new(s3_store(&config));
    store.check().await.unwrap();
    conformance(store.clone(), dir.path()).await;
    assert_eq!(store.free_space().await.unwrap(), None);

    // What is left in the bucket is exactly the pieces and their metas: mismatched, oversized
    // and short uploads were aborted, not left as objects.
    let raw = server.raw_client("pieces");
    use futures::TryStreamExt;
    let objects: Vec<String> = raw
        .list(None)
        .map_ok(|o| o.location.to_string())
        .try_collect()
        .await
        .unwrap();
    let pieces = store.list().await.unwrap();
    assert_eq!(objects.len(), 2 * pieces.len(), "{objects:?}");
    assert!(objects.iter().all(|o| o.starts_with("market/pieces/")));
    for p in &pieces {
        assert!(objects.contains(&format!("market/pieces/{}.meta.json", p.piece_cid)));
    }
}

#[tokio::test]
async fn two_instances_on_one_bucket_see_each_others_pieces_and_deletes() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    let config = server.bucket("shared");
    // b without read windows: a window may serve a piece another instance deleted for up to
    // WINDOW_TTL; here the delete must show at once.
    let (a, b) = (
        s3_store(&config),
        s3_store(&config.clone().with_read_windows(0, 0)),
    );
    let bytes = payload(1 << 20, 9);
    let expect = piece_of(&bytes, 2 << 20);
    let meta = a.put(reader(bytes.clone()), Some(expect)).await.unwrap();
    // b reads (and caches) what a wrote...
    assert_eq!(b.stat(&meta.piece_cid).await.unwrap(), Some(meta));
    assert_eq!(
        b.read_at(&meta.piece_cid, ByteRange::new(0, 10))
            .await
            .unwrap(),
        &bytes[..10]
    );
    // ...and a delete by a is a clean NotFound at b, not a stale answer.
    assert!(a.delete(&meta.piece_cid).await.unwrap());
    assert!(matches!(
        b.read_at(&meta.piece_cid, ByteRange::new(0, 10)).await,
        Err(PieceStoreError::NotFound(_))
    ));
    assert_eq!(b.stat(&meta.piece_cid).await.unwrap(), None);
}

#[tokio::test]
async fn wrong_credentials_and_a_dead_server_are_backend_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = S3Server::start(&dir.path().join("s3"));
    let config = server.bucket("pieces");
    let mut bad = config.clone();
    bad.secret_key = Some("not-the-secret".into());
    let store = s3_store(&bad);
    assert!(matches!(
        store.check().await,
        Err(PieceStoreError::Backend(_))
    ));
    let bytes = payload(100_000, 1);
    assert!(matches!(
        store.put(reader(bytes.clone()), None).await,
        Err(PieceStoreError::Backend(_))
    ));
    // A good store, then the server goes away: an error, never a hang or a panic.
    let good = s3_store(&config);
    let meta = good.put(reader(bytes), None).await.unwrap();
    server.kill();
    let fresh = s3_store(&config);
    assert!(matches!(
        tokio::time::timeout(
            std::time::Duration::from_secs(120),
            fresh.stat(&meta.piece_cid)
        )
        .await
        .expect("a dead server is an error within the retry budget"),
        Err(PieceStoreError::Backend(_))
    ));
    // A config S3 cannot use is refused before any request.
    assert!(matches!(
        S3PieceStore::open(&config.clone().with_parts(1 << 20, 1)),
        Err(PieceStoreError::Config(_))
    ));
}

#[tokio::test]
async fn several_stores_conform_as_one_and_writes_follow_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    let local = Arc::new(FsPieceStore::open(dir.path().join("local")).unwrap());
    let bucket: Arc<dyn PieceStore> = Arc::new(s3_store(&server.bucket("pieces")));
    let multi = Arc::new(
        MultiPieceStore::new(vec![
            StoreEntry {
                name: "local".into(),
                store: local.clone(),
                priority: 0,
                read_only: false,
            },
            StoreEntry {
                name: "oss".into(),
                store: bucket.clone(),
                priority: 10,
                read_only: false,
            },
        ])
        .unwrap(),
    );
    conformance(multi.clone(), dir.path()).await;
    // Everything went to the higher-priority bucket.
    assert!(local.list().await.unwrap().is_empty());
    assert_eq!(bucket.list().await.unwrap().len(), 3);

    // A piece already on a read-only store is served from it; writes never go there.
    let old = Arc::new(FsPieceStore::open(dir.path().join("old")).unwrap());
    let bytes = payload(150_000, 7);
    let meta = old.put(reader(bytes.clone()), None).await.unwrap();
    let with_old = MultiPieceStore::new(vec![
        StoreEntry {
            name: "old".into(),
            store: old.clone(),
            priority: 100,
            read_only: true,
        },
        StoreEntry {
            name: "local".into(),
            store: local.clone(),
            priority: 0,
            read_only: false,
        },
    ])
    .unwrap();
    assert_eq!(with_old.holder(&meta.piece_cid).await.unwrap(), Some("old"));
    assert_eq!(
        with_old
            .read_at(&meta.piece_cid, ByteRange::new(5, 9))
            .await
            .unwrap(),
        &bytes[5..9]
    );
    let fresh = with_old.put(reader(payload(1000, 8)), None).await.unwrap();
    assert_eq!(
        with_old.holder(&fresh.piece_cid).await.unwrap(),
        Some("local")
    );
    // Deleting leaves the read-only copy alone.
    assert!(!with_old.delete(&meta.piece_cid).await.unwrap());
    assert!(old.has(&meta.piece_cid).await.unwrap());

    // Only read-only stores: nothing can be written.
    let none = MultiPieceStore::new(vec![StoreEntry {
        name: "old".into(),
        store: old,
        priority: 0,
        read_only: true,
    }])
    .unwrap();
    assert!(matches!(
        none.put(reader(payload(1000, 1)), None).await,
        Err(PieceStoreError::NoStoreFits(_))
    ));
}

#[tokio::test]
async fn small_reads_share_a_window_and_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    let config = server.bucket("pieces").with_read_windows(64 << 10, 4);
    let store = s3_store(&config);
    let bytes = payload(300_000, 3);
    let meta = store.put(reader(bytes.clone()), None).await.unwrap();
    // Reads at every offset pattern: inside a window, across two, at the payload's end,
    // larger than half a window (a direct GET).
    for (a, b) in [
        (0u64, 10u64),
        (10, 500),
        (65_000, 67_000),
        (131_071, 131_073),
        (299_990, 300_000),
        (1000, 50_000),
        (0, 300_000),
    ] {
        assert_eq!(
            store
                .read_at(&meta.piece_cid, ByteRange::new(a, b))
                .await
                .unwrap(),
            &bytes[a as usize..b as usize],
            "{a}..{b}"
        );
    }
    assert!(matches!(
        store
            .read_at(&meta.piece_cid, ByteRange::new(299_999, 300_001))
            .await,
        Err(PieceStoreError::RangeNotSatisfiable { .. })
    ));
}

/// Payloads no meta names (a process killed between its upload and its meta) are deleted by
/// a sweep once older than the grace period; pieces and foreign objects stay.
#[tokio::test]
async fn a_sweep_deletes_orphaned_payloads_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let server = S3Server::start(&dir.path().join("s3"));
    let config = server.bucket("pieces").with_prefix("p/");
    let store = s3_store(&config);
    let with_cid = payload(70_000, 1);
    let promised = commp::commp(&with_cid).unwrap();
    let a = store
        .put(
            reader(with_cid.clone()),
            Some(piecestore::ExpectedPiece {
                piece_cid: market_core::cid::widen(&promised.cid_v1()),
                padded_size: promised.padded_size,
            }),
        )
        .await
        .unwrap();
    let b = store.put(reader(payload(50_000, 2)), None).await.unwrap();

    let raw = server.raw_client("pieces");
    let orphan_cid = commp::commp(&payload(3000, 3)).unwrap().cid_v1();
    let orphans = [
        format!("p/{orphan_cid}"),
        format!("p/incoming/{}", uuid::Uuid::new_v4()),
    ];
    for name in orphans.iter().chain([&"p/notes.txt".to_string()]) {
        raw.put(
            &object_store::path::Path::parse(name).unwrap(),
            vec![7u8; 1000].into(),
        )
        .await
        .unwrap();
    }

    // Within the grace period nothing goes: a put may still be writing its meta.
    let young = store
        .sweep_orphans(std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!((young.kept, young.young, young.removed), (2, 2, 0));
    let swept = store
        .sweep_orphans(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        (swept.kept, swept.removed, swept.removed_bytes),
        (2, 2, 2000)
    );

    use futures::TryStreamExt;
    let left: Vec<String> = raw
        .list(None)
        .map_ok(|o| o.location.to_string())
        .try_collect()
        .await
        .unwrap();
    for name in &orphans {
        assert!(!left.contains(name), "{name} left in {left:?}");
    }
    assert!(left.contains(&"p/notes.txt".to_string()));
    assert_eq!(left.len(), 5, "{left:?}");
    for meta in [a, b] {
        let got = store.get(&meta.piece_cid, None).await.unwrap();
        assert_eq!(read_all(got).await.len() as u64, meta.payload_size);
    }
    // A sweep of a clean bucket removes nothing.
    let again = store
        .sweep_orphans(std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((again.kept, again.removed), (2, 0));
}
