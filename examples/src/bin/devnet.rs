//! A devnet run on its own, like a lotus daemon: the market actor's rules, persisted, served
//! as Lotus JSON-RPC v1.
//!
//! ```text
//! devnet --repo ~/.devnet init --block-time-ms 1000 --short-deal-terms --upgrade 2000:29
//! devnet --repo ~/.devnet run --listen 127.0.0.1:1234
//! export FULLNODE_API_INFO=$(cat ~/.devnet/api-info)    # admin token : listen multiaddr
//! ```
//!
//! `run` writes `<repo>/api` (the listen multiaddr) and `<repo>/api-info` (admin token and
//! multiaddr in `FULLNODE_API_INFO` form). The chain state is in `<repo>/chain.db`; kill the
//! process at any moment and `run` continues from the last change.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use devnet::repo::{self, Upgrade};
use devnet::{Devnet, DevnetConfig};
use examples::cli::expand_home;

#[derive(Parser)]
#[command(about = "fil-market-rs devnet: a Filecoin development chain with the Lotus API")]
struct Args {
    #[command(flatten)]
    log: examples::cli::LogArgs,
    /// Repo directory.
    #[arg(long, default_value = "~/.devnet")]
    repo: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Creates the repo: config, wallet, JWT secret and admin token.
    Init {
        /// Listen address written to the config.
        #[arg(long, default_value = "127.0.0.1:1234")]
        listen: String,
        /// Epoch duration, ms.
        #[arg(long, default_value_t = 1000)]
        block_time_ms: u64,
        /// How often the dev sealer pre-commits and proves, ms.
        #[arg(long, default_value_t = 2000)]
        sealing_period_ms: u64,
        /// Deal terms of 100 to 10 000 epochs instead of mainnet's.
        #[arg(long)]
        short_deal_terms: bool,
        /// Network version at genesis.
        #[arg(long, default_value_t = 28)]
        network_version: u32,
        /// Upgrades, `EPOCH:VERSION` (for example `2000:29` for Solstice at epoch 2000).
        #[arg(long)]
        upgrade: Vec<String>,
        /// Most the faucet pays one address, FIL.
        #[arg(long, default_value_t = 10_000)]
        faucet_cap: u64,
    },
    /// Serves the devnet until interrupted.
    Run {
        /// Listen address (overrides the config).
        #[arg(long)]
        listen: Option<String>,
    },
}

fn main() -> ExitCode {
    examples::cli::run(async_main())
}

async fn async_main() -> ExitCode {
    let args = Args::parse();
    examples::cli::init_tracing("info", args.log.log_format);
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("devnet: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<(), String> {
    let dir = expand_home(&args.repo);
    match &args.cmd {
        Cmd::Init {
            listen,
            block_time_ms,
            sealing_period_ms,
            short_deal_terms,
            network_version,
            upgrade,
            faucet_cap,
        } => {
            let mut c = DevnetConfig::default();
            c.listen = listen.clone();
            c.block_time_ms = *block_time_ms;
            c.sealing_period_ms = *sealing_period_ms;
            c.short_deal_terms = *short_deal_terms;
            c.network_version = *network_version;
            c.faucet_cap_fil = *faucet_cap;
            for u in upgrade {
                let (epoch, version) = u
                    .split_once(':')
                    .ok_or_else(|| format!("--upgrade {u}: use EPOCH:VERSION"))?;
                c.upgrades.push(Upgrade {
                    epoch: epoch.parse().map_err(|e| format!("--upgrade {u}: {e}"))?,
                    version: version.parse().map_err(|e| format!("--upgrade {u}: {e}"))?,
                });
            }
            repo::init(&dir, &c).map_err(|e| market_core::report(&e))?;
            println!("devnet repo at {}", dir.display());
            Ok(())
        }
        Cmd::Run { listen } => {
            let d = Devnet::start(&dir, listen.as_deref())
                .await
                .map_err(|e| market_core::report(&e))?;
            let info = d.api_info();
            write_private(&dir.join("api-info"), info.as_bytes())?;
            println!(
                "devnet    {} (epoch {}, {})",
                d.url,
                d.chain.epoch(),
                d.chain.version()
            );
            println!("api info  {}/api-info", dir.display());
            tokio::signal::ctrl_c()
                .await
                .map_err(|e| market_core::report(&e))?;
            d.stop();
            Ok(())
        }
    }
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}
