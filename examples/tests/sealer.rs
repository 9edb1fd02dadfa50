//! The pull model end to end, with every part a separate process or a real client: the
//! `provider` binary (embedded devnet, `[sealing] mode = "pull"`) and the `sealer` binary,
//! which takes deals over the `VENUS_MARKET` API, downloads pieces from `/resource`, checks
//! commP, computes commD and pre-commits and proves through the devnet's Lotus API.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use commp::PaddedPieceSize;
use market_core::cid::PieceCidExt;
use market_core::types::Address;
use market_node::client::{self, DealTerms};
use piecestore::unixfs::ImportProfile;
use sealing::client::MarketClient;
use sealing::json::SectorId;
use serde_json::{Value, json};

mod common;
use common::{Daemon, spawn};

struct Env {
    dir: tempfile::TempDir,
    repo: PathBuf,
    http: url::Url,
    admin: String,
    chain_api: String,
    miner: Address,
    owner: String,
    _provider: Daemon,
    pieces: Vec<storage_market::Cid>,
}

/// A provider with 2 KiB sectors in pull mode and `n` online deals of 1 KiB pieces made to it.
async fn setup(n: usize) -> Env {
    let common::PullProvider {
        dir,
        repo,
        ports,
        http,
        admin,
        daemon: provider,
    } = common::PullProvider::start();
    let owner = common::owner_of(&repo);
    let chain_api = common::devnet_api_info(&repo, ports.chain);
    let (peer, miner) = common::provider_peer(&http, &admin).await;

    let api: lotus_api::ApiInfo = chain_api.parse().unwrap();
    let c = common::funded_client(&dir.path().join("client"), &api, 100, 20).await;
    let (server, car_base) = common::car_server().await;
    let mut pieces = Vec::new();
    for i in 0..n {
        let file = dir.path().join(format!("d{i}.bin"));
        client::generate_file(&file, 500 + 20 * i as u64, 40 + i as u64).unwrap();
        let car = dir.path().join(format!("d{i}.car"));
        let p = client::prepare(&file, &car, ImportProfile::LOTUS, &mut |_| {}).unwrap();
        assert_eq!(
            p.piece.padded_size.get(),
            1024,
            "the test wants 1 KiB pieces"
        );
        let transfer = common::online_transfer(
            &server,
            &car_base,
            &format!("t{i}"),
            &car,
            p.import.car_size,
        );
        let spec = c
            .spec(
                &peer,
                DealTerms {
                    miner,
                    piece_cid: p.piece.piece_cid(),
                    piece_size: PaddedPieceSize::new(1024).unwrap(),
                    root: p.root,
                    start_in: 900,
                    duration: 1000,
                    verified: false,
                    transfer: Some(transfer),
                },
            )
            .await
            .unwrap();
        c.storage.propose_deal(&peer, &spec).await.unwrap();
        pieces.push(p.piece.piece_cid());
    }
    Env {
        dir,
        repo,
        http,
        admin,
        chain_api,
        miner,
        owner,
        _provider: provider,
        pieces,
    }
}

impl Env {
    async fn deals(&self) -> Vec<Value> {
        common::list_deals(&self.http, &self.admin).await
    }

    /// Waits until every deal is in `state` (90 s at most).
    async fn wait_all(&self, state: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let ds = self.deals().await;
            if ds.len() == self.pieces.len() && ds.iter().all(|d| d["State"] == state) {
                return ds;
            }
            assert!(
                Instant::now() < deadline,
                "deals never all reached {state}: {ds:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn market(&self, token_file: &str) -> MarketClient {
        let info = std::fs::read_to_string(self.repo.join("sealer-api-info")).unwrap();
        let mut info: lotus_api::ApiInfo = info.trim().parse().unwrap();
        if token_file != "sealer" {
            info.token = Some(
                std::fs::read_to_string(self.repo.join(token_file))
                    .unwrap()
                    .trim()
                    .into(),
            );
        }
        MarketClient::new(&info)
    }

    fn sealer_args(&self, state: &Path) -> Vec<String> {
        vec![
            "--market-api".into(),
            std::fs::read_to_string(self.repo.join("sealer-api-info"))
                .unwrap()
                .trim()
                .into(),
            "--chain-api".into(),
            self.chain_api.clone(),
            "--miner".into(),
            self.miner.to_string(),
            "--wallet".into(),
            self.repo.join("keys").to_str().unwrap().into(),
            "--sender".into(),
            self.owner.clone(),
            "--state".into(),
            state.to_str().unwrap().into(),
            "--idle-secs".into(),
            "0.2".into(),
        ]
    }

    fn sealer(&self, extra: &[&str]) -> Daemon {
        let mut args = self.sealer_args(&self.dir.path().join("sealer"));
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        spawn(
            env!("CARGO_BIN_EXE_sealer"),
            &args,
            &self.dir.path().join("sealer.log"),
        )
    }

    fn sealer_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sealer.log")).unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_external_sealer_fills_two_sectors_and_the_deals_activate() {
    let env = setup(3).await;
    env.wait_all("StorageDealAwaitingPreCommit").await;

    // A read token cannot take deals; a sector assigned and then aborted gives them back.
    let read = env.market("token.read");
    let miner_id = env.miner.id().unwrap();
    let refused = read
        .assign_unpacked_deals(
            SectorId {
                miner: miner_id,
                number: 77,
            },
            2048,
            None,
        )
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("missing permission"),
        "{refused}"
    );
    let other = env.market("sealer");
    let taken = other
        .assign_unpacked_deals(
            SectorId {
                miner: miner_id,
                number: 77,
            },
            2048,
            None,
        )
        .await
        .unwrap();
    let taken: Vec<u64> = taken
        .iter()
        .filter(|d| !d.is_filler())
        .map(|d| d.deal_id)
        .collect();
    assert_eq!(taken.len(), 2, "two 1 KiB deals fill a 2 KiB sector");
    let again = other
        .assign_unpacked_deals(
            SectorId {
                miner: miner_id,
                number: 78,
            },
            2048,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        again.iter().filter(|d| !d.is_filler()).count(),
        1,
        "assigned deals are not offered twice"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.deals().await.iter().any(|d| d["Sector"] == 77) {
        assert!(
            Instant::now() < deadline,
            "the provider never followed the placement"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all: Vec<u64> = taken
        .iter()
        .copied()
        .chain(again.iter().filter(|d| !d.is_filler()).map(|d| d.deal_id))
        .collect();
    other.release_deals(&env.miner, &all).await.unwrap();
    for id in &all {
        let info = other.deal_info(&env.miner, *id).await.unwrap();
        assert_eq!(
            info.status, "Undefine",
            "released deals wait for a sealer again"
        );
    }

    // The external sealer takes them all: two sectors, every deal active.
    let _sealer = env.sealer(&[]);
    let ds = env.wait_all("StorageDealActive").await;
    let mut sectors: Vec<u64> = ds.iter().map(|d| d["Sector"].as_u64().unwrap()).collect();
    sectors.sort();
    assert_eq!(
        sectors[0], sectors[1],
        "two deals share the first sector: {ds:#?}"
    );
    assert_ne!(sectors[1], sectors[2], "the third needs a second sector");
    assert!(!sectors.contains(&77), "the aborted sector is not used");
    let log = env.sealer_log();
    assert_eq!(
        log.matches("piece fetched and verified").count(),
        3,
        "{log}"
    );
    // Where each piece lives is in the piece index.
    for piece in &env.pieces {
        let info = other.piece_info(piece).await.unwrap();
        assert_eq!(info.deals.len(), 1, "{info:?}");
        assert!(sectors.contains(&info.deals[0].sector_id));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_piece_corrupted_at_fetch_is_refused_and_sealed_once_repaired() {
    let env = setup(1).await;
    env.wait_all("StorageDealAwaitingPreCommit").await;
    let path = env.repo.join("pieces").join(env.pieces[0].to_string());
    let good = std::fs::read(&path).unwrap();
    let mut bad = good.clone();
    bad[200] ^= 0xff;
    std::fs::write(&path, &bad).unwrap();

    let out = Command::new(env!("CARGO_BIN_EXE_sealer"))
        .args(env.sealer_args(&env.dir.path().join("sealer")))
        .arg("--once")
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("fetched as") && text.contains("aborted"),
        "{text}"
    );
    let ds = env.deals().await;
    assert_eq!(ds[0]["State"], "StorageDealAwaitingPreCommit", "{ds:#?}");
    let id = ds[0]["DealId"].as_u64().unwrap();
    let info = env
        .market("sealer")
        .deal_info(&env.miner, id)
        .await
        .unwrap();
    assert_eq!(
        info.status, "Undefine",
        "the refused deal went back to the pool"
    );

    std::fs::write(&path, &good).unwrap();
    let _sealer = env.sealer(&[]);
    env.wait_all("StorageDealActive").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_piece_with_no_unsealed_copy_is_unsealed_by_the_sealer_for_retrieval() {
    let env = setup(1).await;
    env.wait_all("StorageDealAwaitingPreCommit").await;
    let _sealer = env.sealer(&[]);
    env.wait_all("StorageDealActive").await;
    let piece = env.pieces[0];
    let stored = env.repo.join("pieces").join(piece.to_string());
    let payload = std::fs::read(&stored).unwrap();
    // The market loses its copy (a RemoveUnsealedCopy deal, a disk gone).
    std::fs::remove_file(&stored).unwrap();
    std::fs::remove_file(env.repo.join("pieces").join(format!("{piece}.meta.json"))).unwrap();

    let url = env.http.join(&format!("piece/{piece}")).unwrap();
    let body = reqwest::get(url.clone()).await.unwrap();
    assert_eq!(body.status(), 200, "{}", env.sealer_log());
    let body = body.bytes().await.unwrap();
    assert_eq!(body.len(), 1016, "the unpadded piece");
    assert_eq!(&body[..payload.len()], &payload[..]);
    assert!(body[payload.len()..].iter().all(|b| *b == 0));
    let log = env.sealer_log();
    assert!(
        log.contains("unsealed piece uploaded to the market"),
        "{log}"
    );
    // The market keeps the copy the sealer uploaded (its commP checked on the way in).
    assert!(stored.exists());
    assert_eq!(
        reqwest::get(url).await.unwrap().bytes().await.unwrap(),
        body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sealer_killed_before_its_precommit_releases_the_sector_on_restart() {
    let env = setup(1).await;
    env.wait_all("StorageDealAwaitingPreCommit").await;
    // What a sealer killed between AssignUnPackedDeals and its pre-commit leaves behind.
    let market = env.market("sealer");
    let sid = SectorId {
        miner: env.miner.id().unwrap(),
        number: 50,
    };
    let taken = market.assign_unpacked_deals(sid, 2048, None).await.unwrap();
    let id = taken.iter().find(|d| !d.is_filler()).unwrap().deal_id;
    let state = env.dir.path().join("sealer");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::write(
        state.join("sealer-state.json"),
        json!({"next_sector": 51, "current": [50, [id]]}).to_string(),
    )
    .unwrap();

    let _sealer = env.sealer(&[]);
    let ds = env.wait_all("StorageDealActive").await;
    assert_eq!(
        ds[0]["Sector"], 51,
        "sealed in the next sector, not the abandoned one"
    );
    let log = env.sealer_log();
    assert!(
        log.contains("aborting a sector left before its pre-commit"),
        "{log}"
    );
}
