//! The demo binary runs end to end: two deals active, four verified retrievals.

use std::process::Command;

#[test]
fn demo_completes() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args([
            "--online-size",
            "400000",
            "--offline-size",
            "250000",
            "--timeout",
            "120",
        ])
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("online deal active on chain"), "{stdout}");
    assert!(stdout.contains("offline deal active on chain"), "{stdout}");
    assert_eq!(
        stdout.matches("exported file = original").count(),
        2,
        "{stdout}"
    );
    assert!(stdout.contains("demo complete"));
    // The retrieved files are the originals.
    for name in ["online", "offline"] {
        assert_eq!(
            std::fs::read(dir.path().join(format!("retrieved/{name}.bin"))).unwrap(),
            std::fs::read(dir.path().join(format!("data/{name}.bin"))).unwrap()
        );
    }
}

/// The same flow with the provider's pieces in a real S3 server (s3s-fs) and its deals in a
/// real Postgres: both deals reach Active, the pull sealer fetched them, every retrieval was
/// served from the bucket, and the deals' rows and timelines are in Postgres.
#[test]
fn demo_completes_on_postgres_and_s3() {
    let dir = tempfile::tempdir().unwrap();
    let server = piecestore::testing::S3Server::start(&dir.path().join("s3"));
    server.bucket("market");
    let pg = market_postgres::testing::PgServer::start(&dir.path().join("pg"));
    let url = pg.database("market");
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args([
            "--online-size",
            "400000",
            "--offline-size",
            "250000",
            "--timeout",
            "120",
            "--s3-bucket",
            "market",
            "--s3-endpoint",
            server.endpoint(),
            "--postgres",
            &url,
        ])
        .env("AWS_ACCESS_KEY_ID", piecestore::testing::ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", piecestore::testing::SECRET_KEY)
        .arg("--dir")
        .arg(dir.path().join("demo"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("online deal active on chain"), "{stdout}");
    assert!(stdout.contains("offline deal active on chain"), "{stdout}");
    assert_eq!(
        stdout.matches("exported file = original").count(),
        2,
        "{stdout}"
    );
    // Both pieces are in the bucket (read back through the S3 API); the repo holds none.
    let store = piecestore::S3PieceStore::open(&server.bucket("market").with_prefix("demo/pieces"))
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pieces = rt.block_on(piecestore::PieceStore::list(&store)).unwrap();
    assert_eq!(pieces.len(), 2, "{pieces:?}");
    // Both deals, Active, with their timelines, are rows in Postgres; no SQLite deal file.
    let deals = rt.block_on(async {
        use storage_market::store::DealStore;
        let store =
            market_postgres::PgDealStore::open(market_postgres::PgDb::connect(&url, 2).unwrap())
                .await
                .unwrap();
        let deals = store.provider_deals().await.unwrap();
        let mut timelines = Vec::new();
        for d in &deals {
            timelines.push(store.deal_events(&d.proposal_cid).await.unwrap());
        }
        (deals, timelines)
    });
    assert_eq!(deals.0.len(), 2);
    assert!(
        deals
            .0
            .iter()
            .all(|d| d.state == storage_market::state::StorageDealStatus::Active)
    );
    assert!(deals.1.iter().all(|t| t.len() > 3
        && t.last().unwrap().state == storage_market::state::StorageDealStatus::Active));
    assert!(!dir.path().join("demo/provider/provider.db").exists());
    let local = dir.path().join("demo/provider/pieces");
    assert!(
        !local.exists() || std::fs::read_dir(&local).unwrap().next().is_none(),
        "pieces on local disk"
    );
    for name in ["online", "offline"] {
        assert_eq!(
            std::fs::read(dir.path().join(format!("demo/retrieved/{name}.bin"))).unwrap(),
            std::fs::read(dir.path().join(format!("demo/data/{name}.bin"))).unwrap()
        );
    }
}
