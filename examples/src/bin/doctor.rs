//! Checks a storage provider from outside, as clients, retrieval checkers and indexers see
//! it, and prints a checklist with a fix for each failure.
//!
//! ```text
//! doctor --chain-api "$FULLNODE_API_INFO" --miner f01234 --indexer https://cid.contact
//! doctor --miner f01234 --repo ~/.fil-market     # on the provider's machine: disk space too
//! doctor --miner f01234 --piece baga… --root bafy…   # sample these instead of the newest ad
//! ```
//!
//! Exit status 0 when nothing failed (warnings allowed), 1 otherwise; `--json` prints the
//! checks as JSON.

use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::Parser;
use examples::cli::expand_home;
use lotus_api::{ApiInfo, LotusChain, LotusChainConfig, RpcClient, RpcConfig, Sending};
use market_node::doctor::{self, DoctorConfig, Status};
use storage_market::types::Address;

#[derive(Parser)]
#[command(about = "Checks a storage provider from outside and says how to fix what fails")]
struct Args {
    #[command(flatten)]
    log: examples::cli::LogArgs,
    /// The chain node's API info or URL.
    #[arg(
        long,
        env = "FULLNODE_API_INFO",
        default_value = "/ip4/127.0.0.1/tcp/1234/http"
    )]
    chain_api: String,
    /// The miner to check.
    #[arg(long)]
    miner: String,
    /// An IPNI indexer to look a sampled multihash up at.
    #[arg(long)]
    indexer: Option<url::Url>,
    /// A stored piece to fetch (default: from the provider's newest IPNI ad).
    #[arg(long)]
    piece: Option<String>,
    /// A payload root to fetch through `/ipfs` (default: a block of that ad).
    #[arg(long)]
    root: Option<String>,
    /// The provider's repo, for local checks (run on its machine).
    #[arg(long)]
    repo: Option<String>,
    /// Seconds each remote step may take.
    #[arg(long, default_value_t = 20)]
    timeout: u64,
    /// The checks as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    examples::cli::run(async_main())
}

async fn async_main() -> ExitCode {
    let args = Args::parse();
    examples::cli::init_tracing("warn", args.log.log_format);
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("doctor: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<bool, String> {
    let api = ApiInfo::parse(&args.chain_api, "v1").map_err(|e| e.to_string())?;
    let rpc = RpcClient::new(api.url, api.token, "Filecoin", RpcConfig::default());
    // Read-only: the doctor never sends a message.
    let chain = LotusChain::new(rpc, Sending::Node, LotusChainConfig::default());
    let miner = Address::from_str(&args.miner).map_err(|e| format!("--miner: {e}"))?;
    let cid = |s: &Option<String>, what: &str| {
        s.as_deref()
            .map(|s| cid::Cid::from_str(s).map_err(|e| format!("{what}: {e}")))
            .transpose()
    };
    let mut cfg = DoctorConfig::new(miner);
    cfg.indexer = args.indexer.clone();
    cfg.piece = cid(&args.piece, "--piece")?;
    cfg.root = cid(&args.root, "--root")?;
    cfg.repo = args.repo.as_deref().map(expand_home);
    cfg.timeout = Duration::from_secs(args.timeout.max(1));
    let facts = doctor::gather(&chain, &cfg).await;
    let checks = doctor::checklist(&facts);
    if args.json {
        let v: Vec<serde_json::Value> = checks
            .iter()
            .map(|c| {
                serde_json::json!({
                    "name": c.name,
                    "status": format!("{:?}", c.status),
                    "detail": c.detail,
                    "fix": c.fix,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
    } else {
        print!("{}", doctor::render(&checks));
    }
    Ok(!checks.iter().any(|c| c.status == Status::Fail))
}
