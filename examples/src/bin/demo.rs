//! One command from nothing to stored and retrieved data:
//!
//! ```text
//! cargo build --release -p examples && target/release/demo
//! ```
//!
//! Starts a dev chain and a provider node, the `sealer` binary as a separate process, and a
//! client that talks to the provider only over libp2p and HTTP on 127.0.0.1: it imports two
//! generated files into UnixFS CARs, makes one online deal (the provider pulls the CAR over
//! HTTP) and one offline deal (imported through the admin API). The sealer takes the
//! published deals through the provider's sealer API (droplet's pull model), downloads and
//! verifies each piece, computes commD and pre-commits and proves on the devnet. Once both
//! deals are active on chain, the client retrieves each as a piece (commP-verified) and as a
//! CAR (every block verified) and checks the bytes.

use market_core::cid::PieceCidExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use data_transfer::CarServer;
use market_node::admin;
use market_node::client::{self, ClientNode, DealTerms, Prepared};
use market_node::config::{NodeConfig, PieceStoreSection, S3StoreSection};
use market_node::node::{self, MarketNode};
use piecestore::unixfs::ImportProfile;
use retrieval_market::gateway::DagScope;
use retrieval_market::types::QueryStatus;
use storage_market::chain::ChainNode;
use storage_market::network::PeerAddr;
use storage_market::store::ClientDeal;
use storage_market::types::TokenAmount;

#[derive(Parser)]
#[command(about = "End-to-end demo: dev chain, provider, client, two deals, retrieval")]
struct Args {
    #[command(flatten)]
    log: examples::cli::LogArgs,
    /// Work directory (a temporary one, removed at the end, if not given).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Size of the online deal's file in bytes.
    #[arg(long, default_value_t = 6 * 1024 * 1024 + 123)]
    online_size: u64,
    /// Size of the offline deal's file in bytes.
    #[arg(long, default_value_t = 3 * 1024 * 1024 + 7)]
    offline_size: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// The sealer binary (default: `sealer` next to this one).
    #[arg(long)]
    sealer: Option<PathBuf>,
    /// Keep the provider (and its web UI) up this many seconds after the demo completes.
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
    /// Propose the deals only once this file exists (so a browser can watch from the start).
    #[arg(long)]
    wait_for: Option<PathBuf>,
    /// Keep the provider's pieces in this S3 service (`http://127.0.0.1:9000`) instead of
    /// its repo; keys from `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
    #[arg(long, requires = "s3_bucket")]
    s3_endpoint: Option<String>,
    /// The bucket for `--s3-endpoint`.
    #[arg(long)]
    s3_bucket: Option<String>,
    /// Keep the provider's deals in this Postgres database (`postgres://…`) instead of
    /// its repo's SQLite file.
    #[arg(long)]
    postgres: Option<String>,
}

/// The sealer process, killed when the demo ends.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Prints each step with the time since the start.
struct Report {
    start: Instant,
}

impl Report {
    fn step(&mut self, what: impl Into<String>) {
        let at = self.start.elapsed().as_secs_f64();
        println!("[{at:>6.2}s] {}", what.into());
    }
}

fn main() -> ExitCode {
    examples::cli::run(async_main())
}

async fn async_main() -> ExitCode {
    let args = Args::parse();
    examples::cli::init_tracing("warn", args.log.log_format);
    let tmp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            tmp = match tempfile::tempdir() {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("demo: cannot create a temporary directory: {e}");
                    return ExitCode::FAILURE;
                }
            };
            tmp.path().to_path_buf()
        }
    };
    match run(&args, &dir).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args, dir: &Path) -> Result<(), String> {
    let mut report = Report {
        start: Instant::now(),
    };
    let provider_dir = dir.join("provider");
    let mut cfg = NodeConfig::local_dev();
    cfg.sealing.mode = "pull".into();
    if let (Some(endpoint), Some(bucket)) = (&args.s3_endpoint, &args.s3_bucket) {
        let mut s3 = S3StoreSection::new("s3", bucket);
        s3.prefix = "demo/pieces".into();
        s3.endpoint = Some(endpoint.clone());
        s3.region = Some("us-east-1".into());
        cfg.storage.stores = vec![PieceStoreSection::S3(s3)];
    }
    if let Some(url) = &args.postgres {
        cfg.database.postgres = Some(url.clone());
    }
    let cfg = node::init(&provider_dir, Some(cfg)).map_err(|e| market_core::report(&e))?;
    let node = MarketNode::start(&provider_dir)
        .await
        .map_err(|e| market_core::report(&e))?;
    let miner = node.miners[0];
    let peer = node.peer.clone();
    report.step(format!(
        "provider {} up: miner {miner}, libp2p {}, http {}",
        peer.peer_id, peer.addrs[0], node.http_url
    ));
    report.step(format!(
        "web UI at {}ui/ (log in with {}/token, or token.read to look only)",
        node.http_url,
        provider_dir.display()
    ));

    // The client reaches the provider's embedded devnet as it would a Lotus node.
    let devnet = node
        .devnet
        .as_ref()
        .ok_or("the demo needs the provider's embedded devnet")?;
    let api: lotus_api::ApiInfo = devnet
        .api_info()
        .parse()
        .map_err(|e| market_core::report(&e))?;
    let sealer = start_sealer(args, dir, &provider_dir, &devnet.api_info(), &miner, &cfg)?;
    report.step(format!(
        "sealer process {} pulls deals from the provider's sealer API (VENUS_MARKET) and seals on the devnet",
        sealer.0.id()
    ));
    let c = client::open(&dir.join("client"), &api).await?;
    c.dev
        .fund(&c.address, TokenAmount::from_whole(100))
        .await
        .map_err(|e| market_core::report(&e))?;
    c.add_funds(TokenAmount::from_whole(10)).await?;
    report.step(format!(
        "client {} funded: 10 FIL in market escrow",
        c.address
    ));

    let data = dir.join("data");
    std::fs::create_dir_all(&data).map_err(|e| market_core::report(&e))?;
    let mut prepared = Vec::new();
    for (name, size, seed) in [
        ("online", args.online_size, 0x5eed_0001u64),
        ("offline", args.offline_size, 0x5eed_0002),
    ] {
        let file = data.join(format!("{name}.bin"));
        client::generate_file(&file, size, seed).map_err(|e| market_core::report(&e))?;
        let p = client::prepare(
            &file,
            &data.join(format!("{name}.car")),
            ImportProfile::LOTUS,
            &mut |_| {},
        )?;
        report.step(format!(
            "{name}: {size} B file -> CAR of {} blocks, {} B; root {}; piece {} ({} B padded)",
            p.import.blocks,
            p.import.car_size,
            p.root,
            p.piece.piece_cid(),
            p.piece.padded_size.get()
        ));
        prepared.push((name, file, p));
    }

    // The client serves the online deal's CAR over HTTP with a bearer token, Boost-style.
    let server = CarServer::new();
    let token = hex::encode(rand::random::<[u8; 16]>());
    server.add(token.clone(), prepared[0].2.car.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| market_core::report(&e))?;
    let car_url = format!(
        "http://{}/{token}.car",
        listener.local_addr().map_err(|e| market_core::report(&e))?
    );
    let router = server.router();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    if let Some(flag) = &args.wait_for {
        report.step(format!("waiting for {} before proposing", flag.display()));
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        while !flag.exists() {
            if Instant::now() > deadline {
                return Err(format!("{} never appeared", flag.display()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut deals = Vec::new();
    for (name, _, p) in &prepared {
        let online = *name == "online";
        let transfer = online.then(|| {
            client::http_transfer(
                &car_url,
                vec![("Authorization".into(), CarServer::auth_header(&token))],
                p.import.car_size,
            )
        });
        let spec = c
            .spec(
                &peer,
                DealTerms {
                    miner,
                    piece_cid: p.piece.piece_cid(),
                    piece_size: p.piece.padded_size,
                    root: p.root,
                    start_in: 200,
                    duration: 1000,
                    verified: false,
                    transfer,
                },
            )
            .await?;
        let deal = c
            .storage
            .propose_deal(&peer, &spec)
            .await
            .map_err(|e| format!("{name} deal: {e}"))?;
        report.step(format!(
            "{name} deal {} accepted over {}",
            deal.deal_uuid, deal.protocol
        ));
        if !online {
            let token = std::fs::read_to_string(node::Repo(provider_dir.clone()).admin_token())
                .map_err(|e| market_core::report(&e))?;
            admin::call_remote(
                &node.http_url,
                &token,
                "Market.ImportData",
                serde_json::json!([deal.deal_uuid.to_string(), p.car.to_string_lossy()]),
            )
            .await
            .map_err(|e| format!("import: {e}"))?;
            report.step("offline deal's CAR imported through the admin API (Market.ImportData)");
        }
        deals.push(deal);
    }

    let deadline = Instant::now() + Duration::from_secs(args.timeout);
    for (deal, (name, _, _)) in deals.iter().zip(&prepared) {
        let active = wait_active(&c, &peer, deal, deadline).await?;
        report.step(format!(
            "{name} deal active on chain: deal id {}, sector {}, sector start epoch {}",
            active.0,
            active.2.map_or_else(|| "?".into(), |s| s.to_string()),
            active.1
        ));
    }

    for (name, file, p) in &prepared {
        retrieve(
            &c,
            &peer,
            name,
            file,
            p,
            &dir.join("retrieved"),
            &mut report,
        )
        .await?;
    }

    println!();
    println!(
        "demo complete in {:.1}s:",
        report.start.elapsed().as_secs_f64()
    );
    println!(
        "  2 deals active (1 online over HTTP, 1 offline), 4 retrievals verified byte for byte"
    );
    if args.hold_secs > 0 {
        println!(
            "  provider still up for {} s: web UI {}ui/, metrics {}metrics",
            args.hold_secs, node.http_url, node.http_url
        );
        // Ctrl-C (SIGINT) ends the hold early and still stops the sealer process.
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(args.hold_secs)) => {}
            _ = tokio::signal::ctrl_c() => println!("  interrupted: stopping"),
        }
    }
    node.stop();
    drop(sealer);
    Ok(())
}

/// Runs the `sealer` binary against the provider's sealer API and the devnet's Lotus API,
/// sending from the miner's owner (the worker key publishes deals).
fn start_sealer(
    args: &Args,
    dir: &Path,
    provider_dir: &Path,
    chain_api: &str,
    miner: &storage_market::types::Address,
    cfg: &NodeConfig,
) -> Result<Child, String> {
    let bin = match &args.sealer {
        Some(b) => b.clone(),
        None => std::env::current_exe()
            .map_err(|e| market_core::report(&e))?
            .with_file_name("sealer"),
    };
    if !bin.exists() {
        return Err(format!(
            "{} not found: build every example first (cargo build --release -p examples)",
            bin.display()
        ));
    }
    let repo = node::Repo(provider_dir.to_path_buf());
    let market_api = std::fs::read_to_string(repo.sealer_api_info())
        .map_err(|e| format!("sealer API info: {e}"))?;
    let owner = cfg.miners.first().ok_or("no miner")?.owner.clone();
    let log = std::fs::File::create(dir.join("sealer.log")).map_err(|e| market_core::report(&e))?;
    let child = std::process::Command::new(&bin)
        .arg("--market-api")
        .arg(market_api.trim())
        .arg("--chain-api")
        .arg(chain_api)
        .arg("--miner")
        .arg(miner.to_string())
        .arg("--wallet")
        .arg(provider_dir.join("keys"))
        .arg("--sender")
        .arg(owner)
        .arg("--state")
        .arg(dir.join("sealer"))
        .arg("--idle-secs")
        .arg("0.2")
        .stdout(log.try_clone().map_err(|e| market_core::report(&e))?)
        .stderr(log)
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    Ok(Child(child))
}

async fn wait_active(
    c: &ClientNode,
    peer: &PeerAddr,
    deal: &ClientDeal,
    deadline: Instant,
) -> Result<(u64, i64, Option<u64>), String> {
    let mut last = String::new();
    loop {
        let d = c
            .storage
            .update_status(peer, deal)
            .await
            .map_err(|e| market_core::report(&e))?;
        if d.checkpoint != last {
            println!("          {} -> {}", d.deal_uuid, d.checkpoint);
            last = d.checkpoint.clone();
        }
        if !d.message.is_empty() && d.checkpoint == "Complete" {
            return Err(format!("deal {} failed: {}", d.deal_uuid, d.message));
        }
        if let Some(id) = d.deal_id
            && let Some(on_chain) = c
                .chain
                .market_deal(id)
                .await
                .map_err(|e| market_core::report(&e))?
            && on_chain.state.sector_start_epoch.get() >= 0
        {
            return Ok((
                id.0,
                on_chain.state.sector_start_epoch.get(),
                on_chain.sector.map(|s| s.0),
            ));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "deal {} not active in time (at {}: {})",
                d.deal_uuid, d.checkpoint, d.message
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn retrieve(
    c: &ClientNode,
    peer: &PeerAddr,
    name: &str,
    file: &Path,
    p: &Prepared,
    out: &Path,
    report: &mut Report,
) -> Result<(), String> {
    std::fs::create_dir_all(out).map_err(|e| market_core::report(&e))?;
    let answer = c
        .retrieval
        .query(peer, p.root, None)
        .await
        .map_err(|e| format!("query: {e}"))?;
    if answer.status != QueryStatus::AVAILABLE {
        return Err(format!(
            "{name}: provider says {:?}: {}",
            answer.status, answer.message
        ));
    }
    let url = c
        .retrieval
        .http_url(peer)
        .await
        .map_err(|e| market_core::report(&e))?;
    report.step(format!(
        "{name}: query over libp2p says available ({} B piece); transports point to {url}",
        answer.size
    ));

    let t = Instant::now();
    let piece = c
        .retrieval
        .fetch_piece(
            &url,
            &p.piece.piece_cid(),
            &out.join(format!("{name}.piece")),
            &mut |_, _| {},
        )
        .await
        .map_err(|e| format!("piece: {e}"))?;
    let car = std::fs::read(&p.car).map_err(|e| market_core::report(&e))?;
    let got = std::fs::read(&piece.path).map_err(|e| market_core::report(&e))?;
    if got[..car.len()] != car[..] || got[car.len()..].iter().any(|b| *b != 0) {
        return Err(format!("{name}: piece bytes differ from the CAR sent"));
    }
    report.step(format!(
        "{name}: /piece retrieved {} B in {:.0} ms, commP verified, bytes = CAR + zero padding",
        piece.bytes,
        t.elapsed().as_secs_f64() * 1e3
    ));

    let t = Instant::now();
    let car_path = out.join(format!("{name}.car"));
    let fetched = c
        .retrieval
        .fetch_car(&url, &p.root, DagScope::All, &car_path, &mut |_, _| {})
        .await
        .map_err(|e| format!("CAR: {e}"))?;
    let exported = out.join(format!("{name}.bin"));
    retrieval_market::RetrievalClient::export(&car_path, &p.root, &exported)
        .await
        .map_err(|e| format!("export: {e}"))?;
    let same = std::fs::read(&exported).map_err(|e| market_core::report(&e))?
        == std::fs::read(file).map_err(|e| market_core::report(&e))?;
    if !same {
        return Err(format!("{name}: exported file differs from the original"));
    }
    report.step(format!(
        "{name}: /ipfs/{} CAR retrieved ({} blocks verified) in {:.0} ms, exported file = original",
        p.root,
        fetched.blocks,
        t.elapsed().as_secs_f64() * 1e3
    ));
    Ok(())
}
