//! kill -9 of the provider process (with its embedded devnet) at each deal stage, then
//! restart: every deal completes, Active deals stay Active, no deal id is reused, and the
//! chain keeps its epoch and escrow.
//!
//! Two offline and two online deals are made against the `provider` binary; the client runs
//! in this process and reaches the devnet over its Lotus API like any Lotus node. It runs
//! twice: with the repo's SQLite files and pieces directory, and with deals and the piece
//! index in a real PostgreSQL and the pieces in a real S3 server (which outlive the kills).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use commp::PaddedPieceSize;
use market_core::chain::ChainNode;
use market_core::cid::PieceCidExt;
use market_core::types::DealId;
use market_node::client::{self, DealTerms};
use market_node::config::{NodeConfig, PieceStoreSection, S3StoreSection};
use piecestore::unixfs::ImportProfile;
use serde_json::{Value, json};

mod common;
use common::{Daemon, list_deals, spawn, wait_for};

/// Starts the provider and waits for its `api` file.
fn start(repo: &Path, log: &Path) -> Daemon {
    let _ = std::fs::remove_file(repo.join("api"));
    let d = spawn(
        env!("CARGO_BIN_EXE_provider"),
        &["--repo", repo.to_str().unwrap(), "run"],
        log,
    );
    wait_for(&repo.join("api"));
    d
}

fn states(ds: &[Value]) -> Vec<String> {
    ds.iter()
        .map(|d| d["State"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Points the provider at a Postgres database and an S3 bucket.
fn use_postgres_and_s3(repo: &Path, pg: &str, s3: &piecestore::testing::S3Server) {
    s3.bucket("market");
    let path = repo.join("config.toml");
    let mut cfg = NodeConfig::load(&path).unwrap();
    let mut store = S3StoreSection::new("s3", "market");
    store.endpoint = Some(s3.endpoint().to_string());
    store.region = Some("us-east-1".into());
    store.access_key = Some(piecestore::testing::ACCESS_KEY.into());
    store.secret_key = Some(piecestore::testing::SECRET_KEY.into());
    cfg.storage.stores = vec![PieceStoreSection::S3(store)];
    cfg.database.postgres = Some(pg.to_string());
    cfg.save(&path).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_each_deal_stage_loses_nothing() {
    kill_9_at_each_deal_stage(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_at_each_deal_stage_loses_nothing_on_postgres_and_s3() {
    kill_9_at_each_deal_stage(true).await;
}

async fn kill_9_at_each_deal_stage(postgres_s3: bool) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("prov");
    let log = dir.path().join("provider.log");
    // Deals wait three seconds for their publish batch and 700 ms for each sealing step, so
    // the publish and sealing stages last long enough to be seen on a loaded machine (with
    // batches published at once, a CI run once saw every deal pass from its data to Active
    // between two looks).
    let ports = common::init_fast_provider(
        &repo,
        &[
            ("sealing_period_ms = 2000", "sealing_period_ms = 700"),
            ("period_secs = 0", "period_secs = 3"),
        ],
    );
    // Servers of their own: they live on while the provider is killed.
    let servers = postgres_s3.then(|| {
        let s3 = piecestore::testing::S3Server::start(&dir.path().join("s3"));
        let pg = market_postgres::testing::PgServer::start(&dir.path().join("pg"));
        use_postgres_and_s3(&repo, &pg.database("market"), &s3);
        (pg, s3)
    });

    let mut daemon = start(&repo, &log);
    let http = url::Url::parse(std::fs::read_to_string(repo.join("api")).unwrap().trim()).unwrap();
    let admin = std::fs::read_to_string(repo.join("token")).unwrap();
    let admin = admin.trim();
    let api: lotus_api::ApiInfo = common::devnet_api_info(&repo, ports.chain).parse().unwrap();
    let (peer, miner) = common::provider_peer(&http, admin).await;

    let c = common::funded_client(&dir.path().join("client"), &api, 100, 20).await;

    // Four deals: offline ones wait for their data; online ones fetch it from us.
    let (server, car_base) = common::car_server().await;
    let mut made: Vec<(String, bool, PathBuf)> = Vec::new();
    for (i, online) in [false, true, false, true].into_iter().enumerate() {
        let file = dir.path().join(format!("d{i}.bin"));
        client::generate_file(&file, 150_000 + 40_000 * i as u64, i as u64).unwrap();
        let car = dir.path().join(format!("d{i}.car"));
        let p = client::prepare(&file, &car, ImportProfile::LOTUS, &mut |_| {}).unwrap();
        let transfer = online.then(|| {
            common::online_transfer(
                &server,
                &car_base,
                &format!("t{i}"),
                &car,
                p.import.car_size,
            )
        });
        let spec = c
            .spec(
                &peer,
                DealTerms {
                    miner,
                    piece_cid: p.piece.piece_cid(),
                    piece_size: PaddedPieceSize::new(p.piece.padded_size.get()).unwrap(),
                    root: p.root,
                    start_in: 600,
                    duration: 1000,
                    verified: false,
                    transfer,
                },
            )
            .await
            .unwrap();
        let deal = c.storage.propose_deal(&peer, &spec).await.unwrap();
        made.push((deal.deal_uuid.to_string(), online, car));
    }

    // Kill when some deal is in each stage in turn (a stage already passed by every deal is
    // skipped), importing the offline deals' data after the first restart.
    let stages: &[&[&str]] = &[
        &["StorageDealWaitingForData"],
        &[
            "StorageDealTransferring",
            "StorageDealVerifyData",
            "StorageDealReserveProviderFunds",
            "StorageDealProviderFunding",
        ],
        &["StorageDealPublish", "StorageDealPublishing"],
        &[
            "StorageDealStaged",
            "StorageDealAwaitingPreCommit",
            "StorageDealSealing",
        ],
        &["StorageDealActive"],
    ];
    let mut killed_in = Vec::new();
    let mut imported = false;
    let mut active_ids: BTreeMap<String, u64> = BTreeMap::new();
    for (round, stage) in stages.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(45);
        let mut seen = std::collections::BTreeSet::new();
        let hit = loop {
            let ds = list_deals(&http, admin).await;
            let st = states(&ds);
            if let Some(s) = st.iter().find(|s| stage.contains(&s.as_str())) {
                break Some(s.clone());
            }
            seen.extend(st);
            if Instant::now() > deadline {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let before = list_deals(&http, admin).await;
        for d in &before {
            if d["State"] == "StorageDealActive" {
                active_ids.insert(
                    d["DealUuid"].as_str().unwrap().into(),
                    d["DealId"].as_u64().unwrap(),
                );
            }
        }
        daemon.kill9();
        killed_in.push(
            hit.clone()
                .unwrap_or_else(|| format!("(stage {round} passed; seen {seen:?})")),
        );
        daemon = start(&repo, &log);
        if !imported {
            for (uuid, online, car) in &made {
                if !online {
                    market_node::admin::call_remote(
                        &http,
                        admin,
                        "Market.ImportData",
                        json!([uuid, car.to_string_lossy()]),
                    )
                    .await
                    .unwrap();
                }
            }
            imported = true;
        }
    }

    // Every deal completes.
    let finished =
        common::wait_all_active(&http, admin, made.len(), Duration::from_secs(120), || {
            format!(
                "after kills in {killed_in:?}\n{}",
                common::log_tail(&log, 40)
            )
        })
        .await;
    // One more kill with everything Active.
    daemon.kill9();
    let epoch_before = c.chain.head().await.ok();
    let _daemon = start(&repo, &log);
    let after = loop {
        let ds = list_deals(&http, admin).await;
        if ds.len() == made.len() {
            break ds;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        states(&after).iter().all(|s| s == "StorageDealActive"),
        "{after:?}"
    );
    // The chain continued rather than restarting at genesis.
    let head = c.chain.head().await.unwrap();
    assert!(epoch_before.is_none_or(|e| head >= e), "epoch reset");
    let mut ids = HashSet::new();
    for d in &finished {
        let uuid = d["DealUuid"].as_str().unwrap();
        let id = d["DealId"].as_u64().unwrap();
        assert!(ids.insert(id), "deal id {id} used twice: {finished:?}");
        if let Some(earlier) = active_ids.get(uuid) {
            assert_eq!(*earlier, id, "an Active deal's id changed across a restart");
        }
        let later = after
            .iter()
            .find(|a| a["DealUuid"] == d["DealUuid"])
            .unwrap();
        assert_eq!(later["DealId"], d["DealId"]);
        // The chain's deal of that id is this deal, active and not slashed.
        let on_chain = c
            .chain
            .market_deal(DealId(id))
            .await
            .unwrap()
            .expect("deal on chain");
        assert_eq!(
            on_chain.proposal.piece_cid.to_string(),
            d["PieceCid"].as_str().unwrap()
        );
        assert!(on_chain.state.sector_start_epoch.get() >= 0);
        assert_eq!(on_chain.state.slash_epoch.get(), -1);
    }
    // The kills landed in most stages (timing decides the rest).
    let hits = killed_in.iter().filter(|k| !k.starts_with('(')).count();
    assert!(hits >= 3, "kills landed in too few stages: {killed_in:?}");
    eprintln!("killed in: {killed_in:?}");
    if let Some((_pg, s3)) = &servers {
        // Deals, index and pieces lived in the servers, not in the repo.
        for local in ["provider.db", "index.db"] {
            assert!(!repo.join(local).exists(), "{local} in the repo");
        }
        let pieces = std::fs::read_dir(repo.join("pieces"))
            .map(|d| d.count())
            .unwrap_or(0);
        assert_eq!(pieces, 0, "pieces on local disk");
        let metas = std::fs::read_dir(s3.root().join("market"))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".meta.json")
            })
            .count();
        assert_eq!(metas, made.len(), "one piece in the bucket per deal");
    }
}
