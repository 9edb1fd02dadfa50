//! What the tests that run the binaries share: daemons killed on drop, ports, files that
//! appear, and the provider's peer address from its admin API.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use market_core::types::Address;
use market_node::client;
use storage_market::network::PeerAddr;

/// A child process, killed with SIGKILL when dropped.
pub(crate) struct Daemon(pub(crate) Child);

impl Daemon {
    /// kill -9, then reap.
    pub(crate) fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Runs `bin args…` with stdout and stderr appended to `log`.
pub(crate) fn spawn(bin: &str, args: &[&str], log: &Path) -> Daemon {
    spawn_logging(bin, args, log, "info")
}

/// [`spawn`] with `RUST_LOG=rust_log`.
pub(crate) fn spawn_logging(bin: &str, args: &[&str], log: &Path, rust_log: &str) -> Daemon {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    Daemon(
        Command::new(bin)
            .args(args)
            .env("RUST_LOG", rust_log)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

/// The trimmed contents of `path` once it exists and is not empty (60 s at most).
pub(crate) fn wait_for(path: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(s) = std::fs::read_to_string(path)
            && !s.trim().is_empty()
        {
            return s.trim().to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A loopback port free at the time of the call.
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The provider's libp2p address and first miner, from `Market.Info`.
pub(crate) async fn provider_peer(http: &url::Url, admin: &str) -> (PeerAddr, Address) {
    let info = market_node::admin::call_remote(http, admin, "Market.Info", serde_json::json!([]))
        .await
        .unwrap();
    let peer = client::parse_peer(&format!(
        "{}/p2p/{}",
        info["Addrs"][0].as_str().unwrap(),
        info["PeerId"].as_str().unwrap()
    ))
    .unwrap();
    (peer, info["Miners"][0].as_str().unwrap().parse().unwrap())
}

/// Ports a test provider listens on.
pub(crate) struct Ports {
    pub(crate) p2p: u16,
    pub(crate) http: u16,
    pub(crate) chain: u16,
}

/// `provider init` at `repo`, then its config rewritten for a fast local test (loopback
/// ports, 100 ms blocks, short deal terms, immediate publishing, private transfers) with
/// `extra` replacements applied after.
pub(crate) fn init_fast_provider(repo: &Path, extra: &[(&str, &str)]) -> Ports {
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_provider"))
            .arg("--repo")
            .arg(repo)
            .arg("init"),
    );
    let ports = Ports {
        p2p: free_port(),
        http: free_port(),
        chain: free_port(),
    };
    let mut cfg = std::fs::read_to_string(repo.join("config.toml"))
        .unwrap()
        .replace(
            "\"127.0.0.1:7777\"",
            &format!("\"127.0.0.1:{}\"", ports.http),
        )
        .replace(
            "/ip4/0.0.0.0/tcp/58418",
            &format!("/ip4/127.0.0.1/tcp/{}", ports.p2p),
        )
        .replace(
            "devnet_listen = \"127.0.0.1:0\"",
            &format!("devnet_listen = \"127.0.0.1:{}\"", ports.chain),
        )
        .replace("block_time_ms = 1000", "block_time_ms = 100")
        .replace("short_deal_terms = false", "short_deal_terms = true")
        .replace("confidence = 2", "confidence = 1")
        .replace("period_secs = 3600", "period_secs = 0")
        .replace(
            "allow_private_transfers = false",
            "allow_private_transfers = true",
        )
        .replace("expected_seal_hours = 24.0", "expected_seal_hours = 0.1");
    for (from, to) in extra {
        assert!(cfg.contains(from), "{from} is not in the config");
        cfg = cfg.replace(from, to);
    }
    std::fs::write(repo.join("config.toml"), cfg).unwrap();
    ports
}

/// The embedded devnet's API info (`TOKEN:/ip4/127.0.0.1/tcp/PORT/http`).
pub(crate) fn devnet_api_info(repo: &Path, port: u16) -> String {
    format!(
        "{}:/ip4/127.0.0.1/tcp/{port}/http",
        std::fs::read_to_string(repo.join("devnet/token"))
            .unwrap()
            .trim()
    )
}

/// A running `provider` binary in pull mode with 2 KiB sectors, in its own temporary
/// directory (killed with the value).
pub(crate) struct PullProvider {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) repo: std::path::PathBuf,
    pub(crate) ports: Ports,
    /// Its HTTP base URL (admin API, sealer API, retrieval).
    pub(crate) http: url::Url,
    /// Its admin token.
    pub(crate) admin: String,
    pub(crate) daemon: Daemon,
}

impl PullProvider {
    /// Inits, configures and starts the provider; returns once its sealer API is up.
    pub(crate) fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("prov");
        let ports = init_fast_provider(
            &repo,
            &[
                ("sector_size = 34359738368", "sector_size = 2048"),
                ("mode = \"\"", "mode = \"pull\""),
            ],
        );
        let daemon = spawn(
            env!("CARGO_BIN_EXE_provider"),
            &["--repo", repo.to_str().unwrap(), "run"],
            &dir.path().join("provider.log"),
        );
        let http = url::Url::parse(&wait_for(&repo.join("api"))).unwrap();
        wait_for(&repo.join("sealer-api-info"));
        let admin = read_token(&repo.join("token"));
        Self {
            dir,
            repo,
            ports,
            http,
            admin,
            daemon,
        }
    }
}

/// A token file's contents, trimmed.
pub(crate) fn read_token(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

/// A client at `dir` on the chain at `api`, with `wallet` FIL from the faucet and `escrow`
/// of it in the market actor.
pub(crate) async fn funded_client(
    dir: &Path,
    api: &lotus_api::ApiInfo,
    wallet: u64,
    escrow: u64,
) -> client::ClientNode {
    use market_core::types::TokenAmount;
    let c = client::open(dir, api).await.unwrap();
    c.dev
        .fund(&c.address, TokenAmount::from_whole(wallet))
        .await
        .unwrap();
    c.add_funds(TokenAmount::from_whole(escrow)).await.unwrap();
    c
}

/// A CAR server on loopback, as a client serves its online deals' data: the server (add a
/// token per CAR) and its base URL.
pub(crate) async fn car_server() -> (data_transfer::CarServer, String) {
    let server = data_transfer::CarServer::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let router = server.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (server, base)
}

/// Serves `car` under `token` and returns the deal transfer that fetches it with that
/// token's `Authorization` header.
pub(crate) fn online_transfer(
    server: &data_transfer::CarServer,
    base: &str,
    token: &str,
    car: &Path,
    size: u64,
) -> storage_market::message::Transfer {
    server.add(token, car);
    client::http_transfer(
        &format!("{base}/{token}.car"),
        vec![(
            "Authorization".into(),
            data_transfer::CarServer::auth_header(token),
        )],
        size,
    )
}

/// The owner key address in a provider repo's config.
pub(crate) fn owner_of(repo: &Path) -> String {
    let cfg = std::fs::read_to_string(repo.join("config.toml")).unwrap();
    cfg.lines()
        .find_map(|l| l.strip_prefix("owner = \""))
        .expect("an owner in the config")
        .trim_end_matches('"')
        .to_string()
}

/// `devnet init` at `repo` for a fast local test: listening on `listen`, 100 ms blocks,
/// sealing every 500 ms, short deal terms.
pub(crate) fn init_fast_devnet(repo: &Path, listen: &str) {
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_devnet"))
            .args(["--repo", repo.to_str().unwrap(), "init"])
            .args(["--listen", listen, "--block-time-ms", "100"])
            .args(["--sealing-period-ms", "500", "--short-deal-terms"]),
    );
}

/// Runs `cmd` to its end; fails with its stderr unless it succeeded.
pub(crate) fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The provider's deals from its admin API; none while it is down or restarting.
pub(crate) async fn list_deals(http: &url::Url, admin: &str) -> Vec<serde_json::Value> {
    match market_node::admin::call_remote(http, admin, "Market.ListDeals", serde_json::json!([]))
        .await
    {
        Ok(serde_json::Value::Array(a)) => a,
        _ => Vec::new(),
    }
}

/// The last `lines` lines of the log at `path`.
pub(crate) fn log_tail(path: &Path, lines: usize) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let mut tail: Vec<&str> = log.lines().rev().take(lines).collect();
    tail.reverse();
    tail.join("\n")
}

/// Polls until the provider lists `n` deals, all Active; past `within` it fails with every
/// deal's state and message and `context()` (what was done to it, log tails).
pub(crate) async fn wait_all_active(
    http: &url::Url,
    admin: &str,
    n: usize,
    within: Duration,
    context: impl Fn() -> String,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + within;
    loop {
        let ds = list_deals(http, admin).await;
        if ds.len() == n && ds.iter().all(|d| d["State"] == "StorageDealActive") {
            return ds;
        }
        assert!(
            Instant::now() < deadline,
            "deals did not all reach Active: {:#?}\n{}",
            ds.iter()
                .map(|d| (d["State"].clone(), d["Message"].clone()))
                .collect::<Vec<_>>(),
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The first word after `key` on the line of a binary's output that starts with it
/// (`root        bafy…`).
pub(crate) fn field(text: &str, key: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .unwrap_or_else(|| panic!("no {key} in\n{text}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// `lassie fetch` over HTTP only, with a minute to finish.
pub(crate) fn lassie(args: &[&str]) -> std::process::Output {
    Command::new(market_ipni::testing::go_peer("lassie"))
        .arg("fetch")
        .args(["--protocols", "http", "--global-timeout", "60s"])
        .args(args)
        .output()
        .unwrap()
}
