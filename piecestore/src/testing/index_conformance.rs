//! What every [`PieceIndex`] must do, run against each backend (SQLite here, Postgres in
//! `market-postgres`), so an operator can switch backends and keep the behaviour.

use std::sync::Arc;

use market_core::Cid;
use market_core::cid::PieceCidExt;

use crate::{
    BlockEntry, CarWriter, DealRecord, IndexReport, PieceIndex, PieceIndexer, PieceMeta,
    PieceStoreError,
};

/// A raw-codec CID whose sha2-256 digest is made from `seed` (the index never checks
/// digests, so distinct seeds give distinct blocks).
pub fn raw_cid(seed: &[u8]) -> Cid {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(seed);
    Cid::new_v1(
        0x55,
        market_core::cid::Multihash::wrap(0x12, &digest).expect("a 32-byte digest fits"),
    )
}

/// A CARv1 of `blocks` under `root`, its piece's sizes and CID, and where each block is.
pub fn car_piece(root: &Cid, blocks: &[Vec<u8>]) -> (Vec<u8>, PieceMeta, Vec<BlockEntry>) {
    let mut w = CarWriter::new(Vec::new(), std::slice::from_ref(root)).expect("car header");
    let entries = blocks
        .iter()
        .map(|b| w.write_block(&raw_cid(b), b).expect("in memory"))
        .collect();
    let car = w.finish().expect("in memory");
    let info = commp::commp(&car).expect("a piece");
    let meta = PieceMeta {
        piece_cid: info.piece_cid(),
        payload_size: car.len() as u64,
        padded_size: info.padded_size,
    };
    (car, meta, entries)
}

async fn index_car(index: &dyn PieceIndex, car: &[u8], meta: PieceMeta) -> IndexReport {
    let mut indexer = PieceIndexer::begin(index, &meta.piece_cid)
        .await
        .expect("begin");
    // Odd-sized chunks, so sections straddle pushes; enough blocks for several batches.
    for part in car.chunks(7777) {
        indexer.push(part).await.expect("push");
    }
    indexer.finish(meta).await.expect("finish")
}

/// Runs the suite. `a` and `b` are two handles on one database (two connections, or two
/// instances' views of a shared server): what one writes the other must read.
pub async fn piece_index_conformance(a: Arc<dyn PieceIndex>, b: Arc<dyn PieceIndex>) {
    let root = raw_cid(b"root");
    let blocks: Vec<Vec<u8>> = (0..20_000u32).map(|i| i.to_le_bytes().repeat(8)).collect();
    let (car, meta, entries) = car_piece(&root, &blocks);

    // Nothing known yet; a CID that is no piece CID is refused with a typed error.
    assert!(a.piece(&meta.piece_cid).await.unwrap().is_none());
    assert!(a.find_block(&entries[0].cid).await.unwrap().is_empty());
    assert!(a.pieces_for_root(&root).await.unwrap().is_empty());
    assert!(a.find_blocks(&[]).await.unwrap().is_empty());
    for r in [
        a.begin_piece(&root).await,
        a.finish_piece(
            PieceMeta {
                piece_cid: root,
                ..meta
            },
            &IndexReport {
                roots: vec![],
                blocks: 0,
                error: None,
            },
        )
        .await,
        a.add_deal(&root, deal("f01000", 1)).await,
    ] {
        assert!(
            matches!(r, Err(PieceStoreError::InvalidPieceCid(_))),
            "{r:?}"
        );
    }

    // Indexed as the bytes stream past: every block, the root, the sizes.
    let report = index_car(a.as_ref(), &car, meta).await;
    assert_eq!(report.error, None);
    assert_eq!(report.blocks, blocks.len() as u64);
    assert_eq!(report.roots, vec![root]);
    let rec = b.piece(&meta.piece_cid).await.unwrap().expect("recorded");
    assert_eq!(rec.meta, meta);
    assert!(rec.indexed);
    assert_eq!(rec.index_error, None);
    assert_eq!(rec.block_count, blocks.len() as u64);
    assert_eq!(rec.roots, vec![root]);
    assert!(rec.deals.is_empty());
    assert_eq!(
        b.pieces_for_root(&root).await.unwrap(),
        vec![meta.piece_cid]
    );

    // Every block in payload order, and found by multihash whatever codec is asked with.
    let listed = b.blocks(&meta.piece_cid).await.unwrap();
    assert_eq!(listed.len(), entries.len());
    for (l, e) in listed.iter().zip(&entries) {
        assert_eq!(l, &(e.cid.hash().to_bytes(), e.offset, e.size));
    }
    let e = &entries[12_345];
    let as_dag_pb = Cid::new_v1(0x70, *e.cid.hash());
    assert_eq!(
        b.find_block(&as_dag_pb).await.unwrap(),
        vec![(meta.piece_cid, e.offset, e.size)]
    );

    // Many lookups at once answer in the order asked; a missing one with nothing, a
    // repeated one twice.
    let mut asked: Vec<Cid> = entries.iter().step_by(401).map(|e| e.cid).collect();
    asked.insert(3, raw_cid(b"not stored"));
    asked.push(entries[0].cid);
    let found = b.find_blocks(&asked).await.unwrap();
    assert_eq!(found.len(), asked.len());
    assert!(found[3].is_empty());
    for (cid, found) in asked.iter().zip(&found).filter(|(_, f)| !f.is_empty()) {
        let e = entries.iter().find(|e| e.cid == *cid).unwrap();
        assert_eq!(found, &vec![(meta.piece_cid, e.offset, e.size)]);
    }

    // Indexing again replaces the first index (begin forgets it) with the same result.
    let mut again = PieceIndexer::begin(b.as_ref(), &meta.piece_cid)
        .await
        .unwrap();
    assert!(a.blocks(&meta.piece_cid).await.unwrap().is_empty());
    assert!(a.pieces_for_root(&root).await.unwrap().is_empty());
    for part in car.chunks(100_003) {
        again.push(part).await.unwrap();
    }
    assert_eq!(again.finish(meta).await.unwrap(), report);
    assert_eq!(a.blocks(&meta.piece_cid).await.unwrap(), listed);

    // Deals: idempotent, a changed placement replaces the old one, ordered by deal id.
    a.add_deal(&meta.piece_cid, deal("f01000", 77))
        .await
        .unwrap();
    a.add_deal(&meta.piece_cid, deal("f01000", 77))
        .await
        .unwrap();
    a.add_deal(&meta.piece_cid, deal("f01001", 5))
        .await
        .unwrap();
    let mut moved = deal("f01000", 77);
    moved.sector = 9;
    moved.offset = 1 << 30;
    b.add_deal(&meta.piece_cid, moved.clone()).await.unwrap();
    let rec = a.piece(&meta.piece_cid).await.unwrap().unwrap();
    assert_eq!(rec.deals, vec![deal("f01001", 5), moved]);

    // A second piece sharing a block and the root: both places found, in piece order.
    let mut other_blocks = vec![blocks[7].clone()];
    other_blocks.extend((0..10u32).map(|i| format!("other {i}").into_bytes()));
    let (other_car, other, other_entries) = car_piece(&root, &other_blocks);
    index_car(b.as_ref(), &other_car, other).await;
    let mut both = vec![
        (meta.piece_cid, entries[7].offset, entries[7].size),
        (
            other.piece_cid,
            other_entries[0].offset,
            other_entries[0].size,
        ),
    ];
    both.sort_by_key(|(p, _, _)| p.to_string());
    assert_eq!(a.find_block(&entries[7].cid).await.unwrap(), both);
    let mut pieces = vec![meta.piece_cid, other.piece_cid];
    pieces.sort_by_key(|p| p.to_string());
    assert_eq!(a.pieces_for_root(&root).await.unwrap(), pieces);

    // A payload that is not a CAR is recorded, with the reason and no blocks, even where
    // blocks had been added before the parser gave up.
    let (mut broken, _, _) = car_piece(&raw_cid(b"broken root"), &[vec![5u8; 100_000]]);
    broken.truncate(50_000);
    let info = commp::commp(&broken).unwrap();
    let broken_meta = PieceMeta {
        piece_cid: info.piece_cid(),
        payload_size: broken.len() as u64,
        padded_size: info.padded_size,
    };
    let report = index_car(a.as_ref(), &broken, broken_meta).await;
    assert!(report.error.as_deref().unwrap().contains("truncated"));
    let rec = b.piece(&broken_meta.piece_cid).await.unwrap().unwrap();
    assert!(rec.indexed);
    assert_eq!(rec.block_count, 0);
    assert!(rec.index_error.unwrap().contains("truncated"));
    a.begin_piece(&broken_meta.piece_cid).await.unwrap();
    a.add_blocks(&broken_meta.piece_cid, other_entries.clone())
        .await
        .unwrap();
    assert_eq!(b.blocks(&broken_meta.piece_cid).await.unwrap().len(), 11);
    let failed = IndexReport {
        roots: vec![],
        blocks: 0,
        error: Some("not a CAR".into()),
    };
    a.finish_piece(broken_meta, &failed).await.unwrap();
    assert!(b.blocks(&broken_meta.piece_cid).await.unwrap().is_empty());
    let rec = b.piece(&broken_meta.piece_cid).await.unwrap().unwrap();
    assert_eq!(rec.index_error.as_deref(), Some("not a CAR"));

    // Two pieces indexed at once through both handles do not mix.
    let (car_x, meta_x, _) = car_piece(&raw_cid(b"x"), &blocks[..3000]);
    let (car_y, meta_y, _) = car_piece(&raw_cid(b"y"), &blocks[3000..9000]);
    let (rx, ry) = tokio::join!(
        index_car(a.as_ref(), &car_x, meta_x),
        index_car(b.as_ref(), &car_y, meta_y)
    );
    assert_eq!((rx.blocks, ry.blocks), (3000, 6000));
    assert_eq!(a.blocks(&meta_x.piece_cid).await.unwrap().len(), 3000);
    assert_eq!(a.blocks(&meta_y.piece_cid).await.unwrap().len(), 6000);

    // Removal forgets the piece, its deals, roots and blocks, and only its own.
    b.remove_piece(&meta.piece_cid).await.unwrap();
    assert!(a.piece(&meta.piece_cid).await.unwrap().is_none());
    assert!(a.blocks(&meta.piece_cid).await.unwrap().is_empty());
    assert!(a.find_block(&entries[15_000].cid).await.unwrap().is_empty());
    let left = a.find_block(&entries[7].cid).await.unwrap();
    assert!(
        left.iter().all(|(p, _, _)| *p != meta.piece_cid),
        "{left:?}"
    );
    assert!(left.contains(&(
        other.piece_cid,
        other_entries[0].offset,
        other_entries[0].size
    )));
    assert_eq!(
        a.pieces_for_root(&root).await.unwrap(),
        vec![other.piece_cid]
    );
    // Removing what is not there is no error.
    b.remove_piece(&meta.piece_cid).await.unwrap();
    // A deal for a piece whose blocks are unknown is kept (a deal can be recorded before
    // its piece is indexed).
    a.add_deal(&meta.piece_cid, deal("f01000", 78))
        .await
        .unwrap();
    assert!(b.piece(&meta.piece_cid).await.unwrap().is_none());
    index_car(a.as_ref(), &car, meta).await;
    assert_eq!(
        b.piece(&meta.piece_cid).await.unwrap().unwrap().deals,
        vec![deal("f01000", 78)]
    );
}

fn deal(miner: &str, deal_id: u64) -> DealRecord {
    DealRecord {
        miner: miner.into(),
        deal_id,
        sector: deal_id + 100,
        offset: 0,
        length: 1 << 20,
    }
}
