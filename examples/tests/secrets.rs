//! Secrets never reach the logs: the provider binary runs at `debug` (its devnet embedded)
//! through an online deal whose transfer carries an `Authorization` header, admin and sealer
//! calls with good and bad tokens, and a rejected proposal; then its whole log is searched for
//! every secret it holds or was given, in every encoding they are stored or sent in: API
//! tokens, JWT secrets, wallet private keys, the libp2p key and the transfer header. What a
//! read token sees of the deals is searched too.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use market_core::cid::PieceCidExt;
use market_node::client::{self, DealTerms};
use piecestore::unixfs::ImportProfile;
use serde_json::{Value, json};

mod common;

/// The forms a secret of `bytes` may be written in.
fn encodings(bytes: &[u8]) -> Vec<String> {
    vec![
        hex::encode(bytes),
        STANDARD.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ]
}

/// Every secret in a repo: token files, JWT secret, and the keys of its key store (Lotus's
/// hex(JSON{Type, PrivateKey: base64}) files, so the raw key, its base64 and the file).
fn repo_secrets(repo: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for f in ["token", "token.read", "jwt.secret"] {
        if let Ok(s) = std::fs::read_to_string(repo.join(f)) {
            out.push((format!("{}/{f}", repo.display()), s.trim().to_string()));
        }
    }
    if let Ok(k) = std::fs::read(repo.join("libp2p.key")) {
        for e in encodings(&k) {
            out.push(("libp2p.key".into(), e));
        }
    }
    let keys = std::fs::read_dir(repo.join("keys"));
    assert!(keys.is_ok(), "{} has no key store", repo.display());
    for e in keys.unwrap().flatten() {
        let file = std::fs::read_to_string(e.path()).unwrap();
        let json: Value = serde_json::from_slice(&hex::decode(file.trim()).unwrap()).unwrap();
        let b64 = json["PrivateKey"].as_str().unwrap().to_string();
        let raw = STANDARD.decode(&b64).unwrap();
        let name = e.file_name().to_string_lossy().to_string();
        out.push((name.clone(), file.trim().to_string()));
        for enc in encodings(&raw) {
            out.push((name.clone(), enc));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("prov");
    let log = dir.path().join("provider.log");
    let ports = common::init_fast_provider(&repo, &[("mode = \"\"", "mode = \"pull\"")]);
    let mut daemon = common::spawn_logging(
        env!("CARGO_BIN_EXE_provider"),
        &["--repo", repo.to_str().unwrap(), "run"],
        &log,
        "debug,libp2p=info,yamux=info,multistream_select=info,hickory=info",
    );
    let http = url::Url::parse(&common::wait_for(&repo.join("api"))).unwrap();
    let sealer_info = common::wait_for(&repo.join("sealer-api-info"));
    let admin = common::read_token(&repo.join("token"));
    let (peer, miner) = common::provider_peer(&http, &admin).await;
    let api: lotus_api::ApiInfo = common::devnet_api_info(&repo, ports.chain).parse().unwrap();

    // An online deal whose data sits behind a secret.
    let c = common::funded_client(&dir.path().join("client"), &api, 50, 5).await;
    let (server, car_base) = common::car_server().await;
    let file = dir.path().join("d.bin");
    client::generate_file(&file, 300_000, 9).unwrap();
    let car = dir.path().join("d.car");
    let p = client::prepare(&file, &car, ImportProfile::LOTUS, &mut |_| {}).unwrap();
    let transfer_token = "transfer-secret-5f0c2a9e7d41";
    server.add(transfer_token, car.clone());
    let transfer_header = data_transfer::CarServer::auth_header(transfer_token);
    let terms = |transfer| DealTerms {
        miner,
        piece_cid: p.piece.piece_cid(),
        piece_size: p.piece.padded_size,
        root: p.root,
        start_in: 900,
        duration: 1000,
        verified: false,
        transfer,
    };
    let spec = c
        .spec(
            &peer,
            terms(Some(client::http_transfer(
                &format!("{car_base}/{transfer_token}.car"),
                vec![("Authorization".into(), transfer_header.clone())],
                p.import.car_size,
            ))),
        )
        .await
        .unwrap();
    c.storage.propose_deal(&peer, &spec).await.unwrap();
    // A transfer that fails (wrong secret at a wrong path): its error is logged too.
    let bad_secret = "wrong-secret-b7e13c09aa52";
    let mut failing = c
        .spec(
            &peer,
            terms(Some(client::http_transfer(
                &format!("{car_base}/{bad_secret}.car"),
                vec![(
                    "Authorization".into(),
                    data_transfer::CarServer::auth_header(bad_secret),
                )],
                p.import.car_size,
            ))),
        )
        .await
        .unwrap();
    failing.duration += 1;
    c.storage.propose_deal(&peer, &failing).await.unwrap();

    // Admin and sealer calls, with good tokens and with near misses of them.
    let tampered = format!("{}x", &admin[..admin.len() - 1]);
    for token in [admin.as_str(), tampered.as_str(), "not-a-token"] {
        for m in ["Market.ListDeals", "Market.Info", "Market.SetAsk"] {
            let _ = market_node::admin::call_remote(&http, token, m, json!([])).await;
        }
    }
    let sealer_token = sealer_info.split(':').next().unwrap().to_string();
    let sealer_url = format!("http://127.0.0.1:{}/rpc/v0", ports.http);
    let rpc = reqwest::Client::new();
    for token in [sealer_token.as_str(), &format!("{sealer_token}x")] {
        let _ = rpc
            .post(&sealer_url)
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(
                json!({"jsonrpc": "2.0", "id": 1,
                    "method": "VENUS_MARKET.ListPieceStorageInfos", "params": []})
                .to_string(),
            )
            .send()
            .await;
        let _ = rpc.get(format!("{sealer_url}?token={token}")).send().await;
    }

    // Wait until the good deal's data is in (the transfer ran and was logged) and the bad
    // one's transfer has failed at least once.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ds = market_node::admin::call_remote(&http, &admin, "Market.ListDeals", json!([]))
            .await
            .unwrap();
        let states: Vec<&str> = ds
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["State"].as_str().unwrap_or_default())
            .collect();
        let logged = std::fs::read_to_string(&log).unwrap_or_default();
        if states.contains(&"StorageDealAwaitingPreCommit")
            && logged
                .lines()
                .any(|l| l.contains("WARN") && l.contains("transfer"))
        {
            break;
        }
        assert!(Instant::now() < deadline, "deals stuck: {ds}\n{logged}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // What a read token sees of the deals is searched too.
    let read = common::read_token(&repo.join("token.read"));
    let listed = market_node::admin::call_remote(&http, &read, "Market.ListDeals", json!([]))
        .await
        .unwrap()
        .to_string();
    daemon.kill9();

    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.lines().count() > 50,
        "the provider logged too little for this test to mean anything:\n{logged}"
    );
    let mut secrets = repo_secrets(&repo);
    secrets.extend(repo_secrets(&repo.join("devnet")));
    secrets.extend(repo_secrets(&dir.path().join("client")));
    secrets.push(("sealer token".into(), sealer_token.clone()));
    for s in [transfer_token, bad_secret] {
        secrets.push(("transfer token".into(), s.into()));
        let basic = data_transfer::CarServer::auth_header(s);
        secrets.push((
            "transfer header".into(),
            basic.strip_prefix("Basic ").unwrap().into(),
        ));
    }
    let mut leaks = Vec::new();
    for (what, secret) in &secrets {
        assert!(secret.len() >= 16, "{what} is too short to search for");
        if let Some(line) = logged.lines().find(|l| l.contains(secret.as_str())) {
            leaks.push(format!("{what}: {line}"));
        }
        if listed.contains(secret.as_str()) {
            leaks.push(format!("{what}: in Market.ListDeals for a read token"));
        }
    }
    assert!(
        leaks.is_empty(),
        "{} of {} secrets leaked into the log:\n{}",
        leaks.len(),
        secrets.len(),
        leaks.join("\n")
    );
    eprintln!(
        "{} secrets absent from {} log lines",
        secrets.len(),
        logged.lines().count()
    );
}
