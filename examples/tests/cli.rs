//! The provider daemon and the client CLI together: init, run, ask, funds, an offline deal
//! imported through the admin API, listing, retrieval, and the admin API's token checks.

use std::process::{Command, Output};
use std::time::{Duration, Instant};

mod common;
use common::{Daemon, field, wait_for};

fn run(bin: &str, args: &[&str]) -> Output {
    Command::new(bin).args(args).output().unwrap()
}

fn ok(out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn provider_and_client_binaries_work_together() {
    let provider = env!("CARGO_BIN_EXE_provider");
    let client = env!("CARGO_BIN_EXE_client");
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("prov");
    let repo_s = repo.to_str().unwrap();
    ok(run(provider, &["--repo", repo_s, "init"]));
    assert!(
        !run(provider, &["--repo", repo_s, "init"]).status.success(),
        "init twice"
    );
    let cfg = std::fs::read_to_string(repo.join("config.toml")).unwrap();
    let cfg = cfg
        .replace("\"127.0.0.1:7777\"", "\"127.0.0.1:0\"")
        .replace("/ip4/0.0.0.0/tcp/58418", "/ip4/127.0.0.1/tcp/0")
        .replace("block_time_ms = 1000", "block_time_ms = 50")
        .replace("sealing_period_ms = 2000", "sealing_period_ms = 200")
        .replace("short_deal_terms = false", "short_deal_terms = true")
        .replace("confidence = 2", "confidence = 1")
        .replace("period_secs = 3600", "period_secs = 0")
        .replace("expected_seal_hours = 24.0", "expected_seal_hours = 0.1");
    std::fs::write(repo.join("config.toml"), cfg).unwrap();
    let log = std::fs::File::create(dir.path().join("provider.log")).unwrap();
    let _daemon = Daemon(
        Command::new(provider)
            .args(["--repo", repo_s, "run"])
            .stdout(log)
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let api = wait_for(&repo.join("api"));
    let info = ok(run(provider, &["--repo", repo_s, "info"]));
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    let peer = format!(
        "{}/p2p/{}",
        info["Addrs"][0].as_str().unwrap(),
        info["PeerId"].as_str().unwrap()
    );
    let miner = info["Miners"][0].as_str().unwrap().to_string();

    // The read token cannot change the ask; no token gets 401.
    let read = std::fs::read_to_string(repo.join("token.read")).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let url = url::Url::parse(api.trim()).unwrap();
    let denied = rt.block_on(market_node::admin::call_remote(
        &url,
        &read,
        "Market.SetAsk",
        serde_json::json!([miner, "1", "1", 256, 1024]),
    ));
    assert!(denied.unwrap_err().contains("need 'admin'"));
    let unauth = rt.block_on(market_node::admin::call_remote(
        &url,
        "nope",
        "Market.Info",
        serde_json::json!([]),
    ));
    assert!(unauth.unwrap_err().contains("401"));
    ok(run(
        provider,
        &[
            "--repo",
            repo_s,
            "set-ask",
            "--price",
            "1000",
            "--verified-price",
            "100",
        ],
    ));
    assert!(ok(run(provider, &["--repo", repo_s, "get-ask"])).contains("\"Price\": \"1000\""));

    // The client reaches the provider's embedded devnet like a Lotus node: token and
    // multiaddr, FULLNODE_API_INFO style.
    let chain = format!(
        "{}:{}",
        std::fs::read_to_string(repo.join("devnet/token"))
            .unwrap()
            .trim(),
        wait_for(&repo.join("devnet/api")).trim()
    );
    let crepo = dir.path().join("cli");
    let c = |args: &[&str]| {
        let mut all = vec![
            "--repo",
            crepo.to_str().unwrap(),
            "--chain-api",
            chain.as_str(),
        ];
        all.extend_from_slice(args);
        run(client, &all)
    };
    // Files Lotus makes deals for that once failed here: empty and one-byte files (CARs
    // under 65 bytes), an inline 126-byte file.
    for size in [0u64, 1, 126] {
        let f = dir.path().join(format!("small-{size}.bin"));
        market_node::client::generate_file(&f, size, 5).unwrap();
        let out = ok(c(&[
            "data",
            "generate-car",
            f.to_str().unwrap(),
            dir.path()
                .join(format!("small-{size}.car"))
                .to_str()
                .unwrap(),
        ]));
        assert!(field(&out, "root").starts_with("bafk"), "{size} B: {out}");
        assert!(
            field(&out, "piece cid").starts_with("baga"),
            "{size} B: {out}"
        );
    }
    // The deal's file has a Lotus inline root, as every file of (1 MiB, 2 MiB] does.
    let file = dir.path().join("f.bin");
    market_node::client::generate_file(&file, 1_500_000, 11).unwrap();
    let car = dir.path().join("f.car");
    let prepared = ok(c(&[
        "data",
        "generate-car",
        file.to_str().unwrap(),
        car.to_str().unwrap(),
    ]));
    let root = field(&prepared, "root");
    let piece = field(&prepared, "piece cid");
    assert!(root.starts_with("bafyaa"), "an inline DAG-PB root: {root}");
    assert_eq!(
        field(
            &ok(c(&["data", "commp", car.to_str().unwrap()])),
            "piece cid"
        ),
        piece
    );
    let ask = ok(c(&[
        "storage", "asks", "query", "--peer", &peer, "--miner", &miner,
    ]));
    assert!(ask.contains("1000 attoFIL"), "{ask}");
    ok(c(&["actor-funds", "add", "5", "--faucet"]));
    // Wallet and escrow: list with balances, a second key, export to another keystore and
    // back in, 1 FIL withdrawn of the 5 in escrow.
    let json = |out: String| -> Vec<serde_json::Value> {
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    };
    let wallets = json(ok(c(&["wallet", "list", "--json"])));
    assert_eq!(wallets.len(), 1, "{wallets:?}");
    assert_eq!(wallets[0]["Default"], true);
    let second = ok(c(&["wallet", "new", "--key-type", "secp256k1"]));
    let second = second.trim();
    assert!(
        second.starts_with('f') || second.starts_with('t'),
        "{second}"
    );
    assert_eq!(json(ok(c(&["wallet", "list", "--json"]))).len(), 2);
    let exported = ok(c(&["wallet", "export", second]));
    let key_file = dir.path().join("exported.key");
    std::fs::write(&key_file, exported.trim()).unwrap();
    let other = dir.path().join("other-client");
    let imported = ok(run(
        client,
        &[
            "--repo",
            other.to_str().unwrap(),
            "--chain-api",
            chain.as_str(),
            "wallet",
            "import",
            key_file.to_str().unwrap(),
        ],
    ));
    assert_eq!(imported.trim(), second);
    let escrow = ok(c(&["actor-funds", "balance"]));
    assert!(escrow.contains("available  5 FIL"), "{escrow}");
    let withdrew = ok(c(&["actor-funds", "withdraw", "1"]));
    assert!(withdrew.contains("withdrew 1 FIL"), "{withdrew}");
    assert!(ok(c(&["actor-funds", "balance"])).contains("available  4 FIL"));
    let deal = ok(c(&[
        "storage",
        "deals",
        "init",
        "--peer",
        &peer,
        "--miner",
        &miner,
        "--car",
        car.to_str().unwrap(),
    ]));
    let uuid = field(&deal, "deal uuid");
    ok(run(
        provider,
        &[
            "--repo",
            repo_s,
            "import-data",
            &uuid,
            car.to_str().unwrap(),
        ],
    ));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let deals = ok(run(provider, &["--repo", repo_s, "deals", "list"]));
        if deals.contains("StorageDealActive") {
            break;
        }
        assert!(Instant::now() < deadline, "deal not active:\n{deals}");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ok(run(provider, &["--repo", repo_s, "pieces", "list"])).contains(&piece));
    assert!(ok(c(&["storage", "deals", "list"])).contains(&uuid));
    // The same lists as JSON, and filtered by state.
    let active = json(ok(run(
        provider,
        &[
            "--repo", repo_s, "deals", "list", "--state", "Active", "--json",
        ],
    )));
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["DealUuid"], uuid.as_str());
    let none = json(ok(run(
        provider,
        &[
            "--repo",
            repo_s,
            "deals",
            "list",
            "--state",
            "Transferring",
            "--json",
        ],
    )));
    assert!(none.is_empty(), "{none:?}");
    // The sector holding it, no transfer (an offline deal), and the miners in the config.
    let sectors = json(ok(run(
        provider,
        &["--repo", repo_s, "sectors", "list", "--json"],
    )));
    assert_eq!(sectors.len(), 1, "{sectors:?}");
    assert_eq!(sectors[0]["Miner"], miner.as_str());
    assert_eq!(sectors[0]["Deals"][0]["DealUuid"], uuid.as_str());
    let transfers = json(ok(run(
        provider,
        &["--repo", repo_s, "transfers", "list", "--json"],
    )));
    assert!(transfers.is_empty(), "{transfers:?}");
    let listed = ok(run(provider, &["--repo", repo_s, "miners", "list"]));
    assert_eq!(listed.lines().count(), 1, "{listed}");
    let words: Vec<&str> = listed.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "worker").unwrap();
    let worker = words[at + 1].to_string();
    ok(run(
        provider,
        &[
            "--repo",
            repo_s,
            "miners",
            "add",
            "--address",
            "f09999",
            "--owner",
            &worker,
            "--worker",
            &worker,
            "--sector-size",
            "2048",
        ],
    ));
    assert_eq!(
        ok(run(provider, &["--repo", repo_s, "miners", "list"]))
            .lines()
            .count(),
        2
    );
    ok(run(
        provider,
        &["--repo", repo_s, "miners", "remove", "f09999"],
    ));
    let last = run(provider, &["--repo", repo_s, "miners", "list"]);
    assert_eq!(String::from_utf8_lossy(&last.stdout).lines().count(), 1);
    let pieces = json(ok(run(
        provider,
        &["--repo", repo_s, "pieces", "list", "--json"],
    )));
    assert_eq!(pieces[0]["PieceCid"], piece.as_str());
    let mine = json(ok(c(&["storage", "deals", "list", "--json"])));
    assert_eq!(mine[0]["DealUuid"], uuid.as_str());
    assert_eq!(mine[0]["PieceCid"], piece.as_str());
    assert_eq!(mine[0]["Offline"], true);
    // The client's list shows what it last saw (the acceptance) until it refreshes: from
    // the miner's on-chain address once the provider has put it there.
    assert_ne!(mine[0]["Checkpoint"], "Complete", "{mine:?}");
    let unreachable = c(&["storage", "deals", "list", "--refresh"]);
    assert!(
        String::from_utf8_lossy(&unreachable.stderr).contains("no peer id on chain"),
        "{unreachable:?}"
    );
    let set_peer_info = |addr: &str| {
        run(
            provider,
            &["--repo", repo_s, "actor", "set-peer-info", "--addr", addr],
        )
    };
    // An address naming another peer is refused before anything is sent.
    let foreign = set_peer_info(
        "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
    );
    assert!(
        String::from_utf8_lossy(&foreign.stderr).contains("names peer"),
        "{foreign:?}"
    );
    // Another instance's address (a closed port here) goes after this node's.
    let said = ok(set_peer_info("/ip4/127.0.0.1/tcp/9"));
    let listed: Vec<&str> = said
        .lines()
        .filter_map(|l| l.strip_prefix("multiaddr  "))
        .collect();
    assert!(listed.len() >= 2, "{said}");
    assert_eq!(listed.last(), Some(&"/ip4/127.0.0.1/tcp/9"), "{said}");
    let fresh = json(ok(c(&["storage", "deals", "list", "--refresh", "--json"])));
    assert_eq!(fresh[0]["Checkpoint"], "Complete", "{fresh:?}");
    assert!(fresh[0]["DealId"].as_u64().is_some(), "{fresh:?}");

    let out = dir.path().join("out.bin");
    ok(c(&[
        "retrieve",
        "--peer",
        &peer,
        "--root",
        &root,
        "--out",
        out.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&file).unwrap());
    let piece_out = dir.path().join("out.piece");
    ok(c(&[
        "retrieve",
        "--peer",
        &peer,
        "--root",
        &root,
        "--piece",
        &piece,
        "--out",
        piece_out.to_str().unwrap(),
    ]));
    let got = std::fs::read(&piece_out).unwrap();
    let sent = std::fs::read(&car).unwrap();
    assert_eq!(&got[..sent.len()], &sent[..]);
}

/// `--log-format json`: every line the devnet logs on stderr is one JSON object with a
/// timestamp, a level and the event's fields; text stays the default.
#[test]
fn json_logs_are_one_object_per_line() {
    let devnet = env!("CARGO_BIN_EXE_devnet");
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("devnet");
    let listen = format!("127.0.0.1:{}", common::free_port());
    common::init_fast_devnet(&repo, &listen);
    let mut lines = Vec::new();
    for (i, flag) in [&["--log-format", "json"][..], &[]].iter().enumerate() {
        let _ = std::fs::remove_file(repo.join("api-info"));
        let err = dir.path().join(format!("{i}.log"));
        let mut d = Daemon(
            Command::new(devnet)
                .args(*flag)
                .args(["--repo", repo.to_str().unwrap(), "run"])
                .env("RUST_LOG", "info")
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(&err).unwrap())
                .spawn()
                .unwrap(),
        );
        wait_for(&repo.join("api-info"));
        // Give it a few blocks to log.
        std::thread::sleep(Duration::from_millis(500));
        d.kill9();
        lines.push(std::fs::read_to_string(&err).unwrap());
    }
    let json: Vec<&str> = lines[0].lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!json.is_empty(), "the devnet logged nothing");
    for l in &json {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["timestamp"].is_string(), "{l}");
        assert!(v["level"].is_string(), "{l}");
        assert!(v["fields"].is_object(), "{l}");
    }
    assert!(
        lines[1]
            .lines()
            .any(|l| l.contains(" INFO ") && !l.starts_with('{')),
        "text is the default form: {}",
        lines[1]
    );
}

/// Every shell gets a completion script naming the subcommands.
#[test]
fn completions_cover_the_subcommands() {
    for (bin, words) in [
        (env!("CARGO_BIN_EXE_provider"), ["deals", "set-peer-info"]),
        (env!("CARGO_BIN_EXE_client"), ["wallet", "withdraw"]),
    ] {
        for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
            let script = ok(run(bin, &["completions", shell]));
            for w in words {
                assert!(script.contains(w), "{bin} {shell}: no {w}");
            }
        }
    }
}
