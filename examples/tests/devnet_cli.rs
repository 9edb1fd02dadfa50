//! The `devnet` binary on its own, like a lotus daemon, with a provider pointed at it by
//! `[chain] api` and a client by `FULLNODE_API_INFO`: a deal goes Active through the Lotus
//! API alone, and the devnet survives kill -9 with its chain.

use std::process::Command;
use std::time::{Duration, Instant};

use market_core::chain::ChainNode;
use market_core::cid::PieceCidExt;
use market_core::types::DealId;
use market_node::client::{self, DealTerms};
use piecestore::unixfs::ImportProfile;
use serde_json::json;

mod common;
use common::{free_port, spawn, wait_for};

#[tokio::test(flavor = "multi_thread")]
async fn provider_and_client_on_a_standalone_devnet() {
    let devnet = env!("CARGO_BIN_EXE_devnet");
    let provider = env!("CARGO_BIN_EXE_provider");
    let dir = tempfile::tempdir().unwrap();
    let chain_repo = dir.path().join("devnet");
    let chain_s = chain_repo.to_str().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    common::init_fast_devnet(&chain_repo, &listen);
    let log = dir.path().join("devnet.log");
    let mut chain_daemon = spawn(devnet, &["--repo", chain_s, "run"], &log);
    let api_info = wait_for(&chain_repo.join("api-info"));
    assert!(
        api_info.ends_with(&format!("/ip4/127.0.0.1/tcp/{port}/http")),
        "{api_info}"
    );

    // A provider pointed at it like at a Lotus node.
    let prov = dir.path().join("prov");
    let prov_s = prov.to_str().unwrap();
    let out = Command::new(provider)
        .args(["--repo", prov_s, "init"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let cfg = std::fs::read_to_string(prov.join("config.toml")).unwrap();
    let cfg = cfg
        .replace("\"127.0.0.1:7777\"", "\"127.0.0.1:0\"")
        .replace("/ip4/0.0.0.0/tcp/58418", "/ip4/127.0.0.1/tcp/0")
        .replace("[chain]\n", &format!("[chain]\napi = \"{api_info}\"\n"))
        .replace("short_deal_terms = false", "short_deal_terms = true")
        .replace("confidence = 2", "confidence = 1")
        .replace("period_secs = 3600", "period_secs = 0")
        .replace("expected_seal_hours = 24.0", "expected_seal_hours = 0.1");
    assert!(cfg.contains("api = "), "{cfg}");
    std::fs::write(prov.join("config.toml"), cfg).unwrap();
    let plog = dir.path().join("provider.log");
    let _prov_daemon = spawn(provider, &["--repo", prov_s, "run"], &plog);
    let http = url::Url::parse(&wait_for(&prov.join("api"))).unwrap();
    assert!(
        !prov.join("devnet").exists(),
        "the provider must not embed a devnet here"
    );
    let admin = std::fs::read_to_string(prov.join("token")).unwrap();
    let (peer, miner) = common::provider_peer(&http, admin.trim()).await;

    // A client through FULLNODE_API_INFO's form.
    let api: lotus_api::ApiInfo = api_info.parse().unwrap();
    let c = common::funded_client(&dir.path().join("client"), &api, 50, 5).await;
    let file = dir.path().join("d.bin");
    client::generate_file(&file, 100_000, 3).unwrap();
    let car = dir.path().join("d.car");
    let p = client::prepare(&file, &car, ImportProfile::LOTUS, &mut |_| {}).unwrap();
    let spec = c
        .spec(
            &peer,
            DealTerms {
                miner,
                piece_cid: p.piece.piece_cid(),
                piece_size: p.piece.padded_size,
                root: p.root,
                start_in: 400,
                duration: 1000,
                verified: false,
                transfer: None,
            },
        )
        .await
        .unwrap();
    let deal = c.storage.propose_deal(&peer, &spec).await.unwrap();
    market_node::admin::call_remote(
        &http,
        admin.trim(),
        "Market.ImportData",
        json!([deal.deal_uuid.to_string(), car.to_string_lossy()]),
    )
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let id = loop {
        let ds =
            market_node::admin::call_remote(&http, admin.trim(), "Market.ListDeals", json!([]))
                .await
                .unwrap();
        if ds[0]["State"] == "StorageDealActive" {
            break ds[0]["DealId"].as_u64().unwrap();
        }
        assert!(Instant::now() < deadline, "deal not active: {ds}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // kill -9 the devnet; it comes back with its chain.
    let head = c.chain.head().await.unwrap();
    let _ = chain_daemon.0.kill();
    let _ = chain_daemon.0.wait();
    std::fs::remove_file(chain_repo.join("api-info")).unwrap();
    chain_daemon = spawn(devnet, &["--repo", chain_s, "run"], &log);
    wait_for(&chain_repo.join("api-info"));
    let d = c
        .chain
        .market_deal(DealId(id))
        .await
        .unwrap()
        .expect("deal still on chain");
    assert!(d.state.sector_start_epoch.get() >= 0);
    assert_eq!(d.state.slash_epoch.get(), -1);
    assert!(c.chain.head().await.unwrap() >= head, "epoch reset");
    drop(chain_daemon);
}
