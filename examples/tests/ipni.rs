//! Findable and retrievable by the network: a provider (the binary, on its devnet) stores a
//! deal's file, advertises it to a real storetheindex, records when the indexer confirmed
//! the ad; the indexer finds the provider for the file's blocks; a real lassie fetches the
//! file over HTTP, once told the provider and once finding it through the indexer, and the
//! CAR it writes verifies and holds the original file; when the deal expires the ad is
//! removed and the indexer forgets the content.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use market_ipni::testing::Indexer;

/// Polls the provider's deals until `done` holds for the first one.
async fn wait_deal(
    http: &url::Url,
    admin: &str,
    within: Duration,
    what: &str,
    log: &std::path::Path,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + within;
    loop {
        let ds = list_deals(http, admin).await;
        if let Some(d) = ds.first()
            && done(d)
        {
            return d.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {ds:#?}\n{}",
            log_tail(log, 30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn advertised_to_storetheindex_and_fetched_by_lassie() {
    let indexer = Indexer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("prov");
    let announce = format!("announce_urls = [\"{}\"]", indexer.announce_url());
    let find = format!("find_url = \"{}\"\ncheck_ingest", indexer.find);
    let ports = init_fast_provider(
        &repo,
        &[
            ("announce_urls = []", &announce),
            ("check_ingest", &find),
            ("reconcile_secs = 10", "reconcile_secs = 1"),
        ],
    );
    let log = dir.path().join("provider.log");
    let _provider = spawn(
        env!("CARGO_BIN_EXE_provider"),
        &["--repo", repo.to_str().unwrap(), "run"],
        &log,
    );
    let http = url::Url::parse(&wait_for(&repo.join("api"))).unwrap();
    let admin = read_token(&repo.join("token"));
    let info = market_node::admin::call_remote(&http, &admin, "Market.Info", serde_json::json!([]))
        .await
        .unwrap();
    let peer_id = info["PeerId"].as_str().unwrap().to_string();
    let peer = format!("{}/p2p/{peer_id}", info["Addrs"][0].as_str().unwrap());
    let miner = info["Miners"][0].as_str().unwrap().to_string();

    // A file of several blocks, dealt offline with a short term (300 epochs of 100 ms) so it
    // also expires here, yet after ingest checks that back off under load (5, 10, 20 s…).
    let chain = devnet_api_info(&repo, ports.chain);
    let crepo = dir.path().join("client");
    let client = |args: &[&str]| -> String {
        let out = run_ok(
            Command::new(env!("CARGO_BIN_EXE_client"))
                .args(["--repo", crepo.to_str().unwrap(), "--chain-api", &chain])
                .args(args),
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let file = dir.path().join("f.bin");
    market_node::client::generate_file(&file, 3_000_000, 7).unwrap();
    let car = dir.path().join("f.car");
    let prepared = client(&[
        "data",
        "generate-car",
        file.to_str().unwrap(),
        car.to_str().unwrap(),
    ]);
    let root = field(&prepared, "root");
    client(&["actor-funds", "add", "5", "--faucet"]);
    let deal = client(&[
        "storage",
        "deals",
        "init",
        "--peer",
        &peer,
        "--miner",
        &miner,
        "--car",
        car.to_str().unwrap(),
        "--duration",
        "300",
    ]);
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_provider"))
            .args(["--repo", repo.to_str().unwrap(), "import-data"])
            .arg(field(&deal, "deal uuid"))
            .arg(&car),
    );

    // Advertised once sealing, confirmed by the indexer.
    let d = wait_deal(
        &http,
        &admin,
        Duration::from_secs(120),
        "ad not confirmed",
        &log,
        |d| !d["Ipni"]["IndexedAt"].is_null(),
    )
    .await;
    assert_eq!(d["Ipni"]["Provider"], peer_id.as_str());
    if d["Ipni"]["Removal"] != false {
        let ads = market_node::admin::call_remote(
            &http,
            &admin,
            "Market.PieceIpni",
            serde_json::json!([d["PieceCid"]]),
        )
        .await
        .unwrap();
        panic!(
            "the first confirmed ad is a removal: {d:#}\nads: {ads:#}\nindexer:\n{}",
            indexer.log_tail()
        );
    }
    assert!(d["Ipni"]["Entries"].as_u64().unwrap() >= 3, "{d:#}");
    let listed = run_ok(Command::new(env!("CARGO_BIN_EXE_provider")).args([
        "--repo",
        repo.to_str().unwrap(),
        "pieces",
        "list",
    ]));
    assert!(String::from_utf8_lossy(&listed.stdout).contains("ipni indexed"));
    let root_cid: cid::Cid = root.parse().unwrap();
    let find_root = || async {
        market_ipni::find::find(
            &reqwest::Client::new(),
            &indexer.find,
            &root_cid.hash().to_bytes(),
        )
        .await
        .unwrap()
    };
    let recs = find_root().await;
    let ours: Vec<_> = recs.iter().filter(|r| r.provider == peer_id).collect();
    assert_eq!(ours.len(), 1, "{recs:?}");
    let http_ma = retrieval_market::client::url_to_multiaddr(&http)
        .unwrap()
        .to_string();
    assert_eq!(ours[0].addrs, [http_ma]);

    // lassie, told the provider, then finding it through the indexer.
    let origin = format!("http://127.0.0.1:{}", ports.http);
    let ipni = indexer.find.as_str().trim_end_matches('/').to_string();
    for (name, how) in [
        ("direct", ["--providers", origin.as_str()]),
        ("ipni", ["--ipni-endpoint", ipni.as_str()]),
    ] {
        let out_car = dir.path().join(format!("lassie-{name}.car"));
        let mut args = how.to_vec();
        args.extend(["-o", out_car.to_str().unwrap(), root.as_str()]);
        let out = lassie(&args);
        assert!(
            out.status.success(),
            "lassie ({name}): {}\n{}\nprovider log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            log_tail(&log, 30)
        );
        let mut got = Vec::new();
        piecestore::unixfs::export_car(&out_car, Some(root.parse().unwrap()), &mut got).unwrap();
        assert!(
            got == std::fs::read(&file).unwrap(),
            "lassie ({name}) fetched other bytes"
        );
    }

    // The doctor, from outside: the devnet's MinerInfo has no peer id yet, so it fails and
    // says how to fix it; after `actor set-peer-info` every check passes, the indexer's too.
    let doctor = || {
        Command::new(env!("CARGO_BIN_EXE_doctor"))
            .args(["--chain-api", &chain, "--miner", &miner, "--repo"])
            .arg(&repo)
            .args(["--indexer", indexer.find.as_str()])
            .output()
            .unwrap()
    };
    let sick = doctor();
    let said = String::from_utf8_lossy(&sick.stdout).to_string();
    assert!(!sick.status.success(), "{said}");
    assert!(said.contains("[FAIL] peer id on chain"), "{said}");
    assert!(
        said.contains("fix: run `provider actor set-peer-info`"),
        "{said}"
    );
    let set = run_ok(Command::new(env!("CARGO_BIN_EXE_provider")).args([
        "--repo",
        repo.to_str().unwrap(),
        "actor",
        "set-peer-info",
    ]));
    assert!(String::from_utf8_lossy(&set.stdout).contains(&peer_id));
    let well = doctor();
    let said = String::from_utf8_lossy(&well.stdout).to_string();
    assert!(well.status.success(), "{said}");
    for line in [
        "[ok  ] peer id on chain",
        "[ok  ] dialable",
        "[ok  ] ask signed by the worker",
        "[ok  ] /piece answers",
        "[ok  ] /ipfs answers",
        "[ok  ] IPNI provider is the peer id",
        "[ok  ] found at the indexer",
    ] {
        assert!(said.contains(line), "{line} missing:\n{said}");
    }
    println!("doctor:\n{said}");

    // Our client, finding the provider through the indexer: the file by its root, and the
    // piece by its v2 CID after a dead provider given first.
    let ipni_url = indexer.find.as_str();
    let out_file = dir.path().join("ours.bin");
    let said = client(&[
        "retrieve",
        "--indexer",
        ipni_url,
        "--root",
        &root,
        "--out",
        out_file.to_str().unwrap(),
    ]);
    assert!(said.contains(&peer_id), "{said}");
    assert!(std::fs::read(&out_file).unwrap() == std::fs::read(&file).unwrap());
    let piece_v1: cid::Cid = d["PieceCid"].as_str().unwrap().parse().unwrap();
    let car_len = std::fs::metadata(&car).unwrap().len();
    let padded = commp::PaddedPieceSize::new(d["PieceSize"].as_u64().unwrap()).unwrap();
    let piece_v2 = commp::PieceCidV2::new(
        commp::Commitment::from_cid_v1(&piece_v1).unwrap(),
        padded,
        car_len,
    )
    .unwrap()
    .to_cid();
    let out_piece = dir.path().join("ours.piece");
    let dead = format!("http://127.0.0.1:{}/", market_ipni::testing::free_port());
    let said = client(&[
        "retrieve",
        "--provider",
        &dead,
        "--indexer",
        ipni_url,
        "--piece",
        &piece_v2.to_string(),
        "--out",
        out_piece.to_str().unwrap(),
    ]);
    assert!(
        said.contains("verified") && said.contains(&peer_id),
        "{said}"
    );
    let got = std::fs::read(&out_piece).unwrap();
    assert_eq!(got.len() as u64, padded.unpadded().get());
    assert!(got[..car_len as usize] == std::fs::read(&car).unwrap()[..]);
    let find_piece = || async {
        market_ipni::find::find(
            &reqwest::Client::new(),
            &indexer.find,
            &piece_v1.hash().to_bytes(),
        )
        .await
        .unwrap()
    };
    assert!(find_piece().await.iter().any(|r| r.provider == peer_id));

    // The deal expires: a removal ad, confirmed, and the indexer no longer names us.
    let d = wait_deal(
        &http,
        &admin,
        Duration::from_secs(180),
        "no confirmed removal",
        &log,
        |d| d["Ipni"]["Removal"] == true && !d["Ipni"]["IndexedAt"].is_null(),
    )
    .await;
    assert_eq!(d["State"], "StorageDealExpired", "{d:#}");
    let recs = find_root().await;
    assert!(recs.iter().all(|r| r.provider != peer_id), "{recs:?}");
    let recs = find_piece().await;
    assert!(recs.iter().all(|r| r.provider != peer_id), "{recs:?}");
}
