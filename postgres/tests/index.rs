//! The Postgres piece index against a real Postgres server: the suite every piece index runs,
//! through two pools (two instances) on one database.

use std::sync::Arc;

use market_postgres::testing::PgServer;
use market_postgres::{PgDb, PgPieceIndex};
use piecestore::{PieceIndex, PieceStoreError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_piece_index_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start(&dir.path().join("pg"));
    let url = server.database("index");
    let (a, b) = tokio::join!(
        PgPieceIndex::open(PgDb::connect(&url, 4).unwrap()),
        PgPieceIndex::open(PgDb::connect(&url, 4).unwrap())
    );
    piecestore::testing::piece_index_conformance(Arc::new(a.unwrap()), Arc::new(b.unwrap())).await;
}

/// A server that goes away is a typed error, not a hang or a panic; back on the same data,
/// the same index object works and nothing was lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_index_survives_a_server_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = PgServer::start(&dir.path().join("pg"));
    let url = server.database("index");
    let db = PgDb::connect(&url, 2).unwrap();
    let index = PgPieceIndex::open(db).await.unwrap();
    let root = piecestore::testing::raw_cid(b"root");
    let blocks: Vec<Vec<u8>> = (0..100u32).map(|i| i.to_le_bytes().to_vec()).collect();
    let (car, meta, entries) = piecestore::testing::car_piece(&root, &blocks);
    let data: piecestore::PieceReader = Box::pin(std::io::Cursor::new(car));
    piecestore::index_payload(&index, meta, data).await.unwrap();

    let port = server.port();
    server.kill();
    let lookup = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        index.find_block(&entries[5].cid),
    )
    .await
    .expect("the call returns while the server is down");
    assert!(
        matches!(lookup, Err(PieceStoreError::Database(_))),
        "{lookup:?}"
    );

    let _server = PgServer::restart(&dir.path().join("pg"), port);
    let found = index.find_block(&entries[5].cid).await.unwrap();
    assert_eq!(
        found,
        vec![(meta.piece_cid, entries[5].offset, entries[5].size)]
    );
    assert_eq!(
        index.pieces_for_root(&root).await.unwrap(),
        vec![meta.piece_cid]
    );
}
