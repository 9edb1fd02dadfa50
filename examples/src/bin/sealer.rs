//! An external sealer for the pull model: connects to a market's sealer API with a token,
//! as damocles does, packs the deals it is assigned into sectors, downloads each piece from
//! `/resource`, checks its commP, computes the sector's commD, and pre-commits and proves on
//! the chain through the Lotus API. Proofs are placeholders, so this seals on the devnet only.
//!
//! ```text
//! sealer --market-api "$(cat ~/.market/sealer-api-info)" \
//!        --chain-api "$FULLNODE_API_INFO" --miner f01000 \
//!        --wallet ~/.market/keys --sender f1… --state ~/.sealer
//! ```
//!
//! `--market-api` takes droplet's form, `TOKEN:/ip4/127.0.0.1/tcp/7777/http` (or a URL);
//! the token needs `write`. The sector counter and the sector in progress are kept under
//! `--state`, so a killed sealer resumes (or aborts and releases) the sector it was on.

use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use examples::cli::expand_home;
use lotus_api::chain::{Journal, LotusChain, LotusChainConfig, Sending};
use lotus_api::rpc::{RpcClient, RpcConfig};
use market_core::types::Address;
use market_core::wallet::KeyStore;
use sealing::client::MarketClient;
use sealing::json::GetDealSpec;
use sealing::worker::{SealWorker, WorkerConfig};

#[derive(Parser)]
#[command(about = "fil-market-rs sealer: takes deals from a market's sealer API and seals them")]
struct Args {
    #[command(flatten)]
    log: examples::cli::LogArgs,
    /// The market's sealer API: `TOKEN:/ip4/…/tcp/PORT/http` or a URL.
    #[arg(long, env = "MARKET_API_INFO")]
    market_api: String,
    /// The chain node's API (`FULLNODE_API_INFO` form).
    #[arg(long, env = "FULLNODE_API_INFO")]
    chain_api: String,
    /// The miner to seal for.
    #[arg(long)]
    miner: String,
    /// A key directory holding the sender's key.
    #[arg(long)]
    wallet: String,
    /// The address sending pre-commits and prove-commits (default: the miner's worker).
    #[arg(long)]
    sender: Option<String>,
    /// Where the sealer keeps its sector counter, sector in progress and message journal.
    #[arg(long, default_value = "~/.fil-sealer")]
    state: String,
    /// At most this many deals per sector (0: no cap).
    #[arg(long, default_value_t = 10)]
    max_deals: i64,
    /// Confirmations to wait for each message.
    #[arg(long, default_value_t = 1)]
    confidence: u64,
    /// Seconds between asks when the market has nothing.
    #[arg(long, default_value_t = 1.0)]
    idle_secs: f64,
    /// Seal one sector (if the market has deals) and exit.
    #[arg(long)]
    once: bool,
}

fn main() -> ExitCode {
    examples::cli::run(async_main())
}

async fn async_main() -> ExitCode {
    let args = Args::parse();
    examples::cli::init_tracing("info", args.log.log_format);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sealer: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let market_info = lotus_api::ApiInfo::parse(&args.market_api, "v1")
        .map_err(|e| format!("--market-api: {e}"))?;
    let chain_info = lotus_api::ApiInfo::parse(&args.chain_api, "v1")
        .map_err(|e| format!("--chain-api: {e}"))?;
    let miner = Address::from_str(&args.miner).map_err(|e| format!("--miner: {e}"))?;
    let state_dir = expand_home(&args.state);
    std::fs::create_dir_all(&state_dir).map_err(|e| format!("{}: {e}", state_dir.display()))?;
    let wallet = KeyStore::open(expand_home(&args.wallet)).map_err(|e| format!("--wallet: {e}"))?;
    let journal = Journal::open(&state_dir.join("messages.db"))
        .map_err(|e| format!("message journal: {e}"))?;
    let chain = LotusChain::new(
        RpcClient::new(
            chain_info.url,
            chain_info.token,
            "Filecoin",
            RpcConfig::default(),
        ),
        Sending::Local {
            wallet: Arc::new(wallet),
            journal,
        },
        LotusChainConfig::default(),
    );
    let chain: Arc<dyn market_core::chain::ChainNode> = Arc::new(chain);
    let sender = match &args.sender {
        Some(s) => Address::from_str(s).map_err(|e| format!("--sender: {e}"))?,
        None => {
            chain
                .miner_info(&miner)
                .await
                .map_err(|e| format!("miner {miner}: {e}"))?
                .worker
        }
    };
    let config = WorkerConfig::new(miner, sender, state_dir)
        .with_spec(GetDealSpec {
            max_piece: args.max_deals,
            ..GetDealSpec::default()
        })
        .with_confidence(args.confidence);
    let worker = SealWorker::new(MarketClient::new(&market_info), chain, config)
        .await
        .map_err(|e| market_core::report(&e))?;
    println!(
        "sealer for {miner} sending from {sender}; market {}",
        market_info.url
    );
    if args.once {
        worker
            .recover()
            .await
            .map_err(|e| market_core::report(&e))?;
        match worker
            .seal_one()
            .await
            .map_err(|e| market_core::report(&e))?
        {
            Some(s) => println!(
                "sector {} sealed with deals {:?} (commD {})",
                s.sector, s.deals, s.commd
            ),
            None => println!("no deals to seal"),
        }
        return Ok(());
    }
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    worker
        .run(Duration::from_secs_f64(args.idle_secs.max(0.05)), stop)
        .await;
    Ok(())
}
