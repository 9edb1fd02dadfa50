//! A piece store on a filesystem that fills up: the put fails with "no space left", leaves
//! nothing behind (so the space comes back at once), and the next put that fits succeeds.
//! The small filesystem is a real tmpfs the test mounts, which needs root (as CI runs).

use std::path::Path;

use market_core::cid::PieceCidExt;
use market_core::testing::SmallFs;
use piecestore::{ExpectedPiece, FsPieceStore, PaddedPieceSize, PieceStore, PieceStoreError};

fn used_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_put_cleanly_and_space_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let fs = SmallFs::mount(&dir.path().join("mnt"), "3m");
    let store = FsPieceStore::open(fs.path()).unwrap();
    let big = payload(4 << 20, 1);
    let info = commp::commp(&big).unwrap();
    let expect = ExpectedPiece {
        piece_cid: info.piece_cid(),
        padded_size: info.padded_size,
    };
    let err = store
        .put(Box::pin(std::io::Cursor::new(big)), Some(expect))
        .await
        .unwrap_err();
    match &err {
        PieceStoreError::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::StorageFull, "{e}"),
        other => panic!("want a no-space error, got {other}"),
    }
    assert!(err.to_string().contains("No space left"), "{err}");
    assert!(
        used_files(fs.path()).is_empty(),
        "{:?}",
        used_files(fs.path())
    );

    // The space is back: a piece that fits goes in, whole and readable.
    let small = payload(1 << 20, 2);
    let info = commp::commp(&small).unwrap();
    let size = PaddedPieceSize::new(2 << 20).unwrap();
    let padded = {
        let mut h = commp::CommP::new();
        h.update(&small);
        h.finish_padded_to(size).unwrap()
    };
    assert!(info.padded_size <= size);
    let meta = store
        .put(
            Box::pin(std::io::Cursor::new(small.clone())),
            Some(ExpectedPiece {
                piece_cid: padded.piece_cid(),
                padded_size: size,
            }),
        )
        .await
        .unwrap();
    let mut back = Vec::new();
    use tokio::io::AsyncReadExt;
    store
        .get(&meta.piece_cid, None)
        .await
        .unwrap()
        .read_to_end(&mut back)
        .await
        .unwrap();
    assert_eq!(back, small);
}
