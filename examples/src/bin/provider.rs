//! The provider market node daemon and its admin commands.
//!
//! ```text
//! provider --repo ~/.fil-market init          # keys, libp2p identity, JWTs, config.toml
//! provider --repo ~/.fil-market run           # serve until Ctrl-C; writes <repo>/api
//! provider --repo ~/.fil-market get-ask
//! provider --repo ~/.fil-market set-ask --price 50000000 --verified-price 5000000
//! provider --repo ~/.fil-market deals list [--state Active] [--json]
//! provider --repo ~/.fil-market deals show <deal uuid or proposal cid>
//! provider --repo ~/.fil-market deals cancel|retry <deal uuid or proposal cid>
//! provider --repo ~/.fil-market import-data <deal uuid or proposal cid> <car path>
//! provider --repo ~/.fil-market pieces list
//! provider --repo ~/.fil-market transfers list | sectors list     # --json
//! provider --repo ~/.fil-market miners list | add --address f0… --owner … --worker … | remove f0…
//! provider --repo ~/.fil-market actor set-peer-info [--addr <other instance>…]   # MinerInfo.PeerId and Multiaddrs
//! provider config reference > docs/config.md         # every config key, generated
//! provider completions bash > /etc/bash_completion.d/provider
//! ```
//!
//! The admin commands call the running node's JSON-RPC API (`<repo>/api`) with the admin
//! token written at init (`<repo>/token`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use clap::{Parser, Subcommand};
use examples::cli::expand_home;
use market_node::admin;
use market_node::node::{self, MarketNode, Repo};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(about = "fil-market-rs provider node")]
struct Args {
    /// Repo directory.
    #[arg(long, default_value = "~/.fil-market")]
    repo: String,
    #[command(flatten)]
    log: examples::cli::LogArgs,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Prints a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Creates the repo: miner keys, libp2p identity, JWT secret and tokens, config.toml.
    Init,
    /// Runs the node until interrupted.
    Run,
    /// Shows a miner's ask.
    GetAsk {
        /// The miner (the first one if omitted).
        #[arg(long)]
        miner: Option<String>,
    },
    /// Sets a miner's ask.
    SetAsk {
        /// The miner (the first one if omitted).
        #[arg(long)]
        miner: Option<String>,
        /// attoFIL per GiB per epoch, unverified deals.
        #[arg(long)]
        price: String,
        /// attoFIL per GiB per epoch, verified deals.
        #[arg(long)]
        verified_price: String,
        /// Smallest padded piece.
        #[arg(long, default_value_t = 256)]
        min_piece_size: u64,
        /// Largest padded piece.
        #[arg(long, default_value_t = 32 << 30)]
        max_piece_size: u64,
    },
    /// Deals.
    Deals {
        #[command(subcommand)]
        cmd: DealsCmd,
    },
    /// Pieces in the piece store.
    Pieces {
        #[command(subcommand)]
        cmd: PiecesCmd,
    },
    /// Supplies the data of an offline deal.
    ImportData {
        /// Deal UUID or proposal CID.
        deal: String,
        /// The CAR file.
        path: PathBuf,
    },
    /// Node identity and addresses.
    Info,
    /// Online deals receiving their data.
    Transfers {
        #[command(subcommand)]
        cmd: ListCmd,
    },
    /// Sectors holding deals.
    Sectors {
        #[command(subcommand)]
        cmd: ListCmd,
    },
    /// The miners this node serves (`[[miners]]` in config.toml; a change takes effect at
    /// the next `provider run`).
    Miners {
        #[command(subcommand)]
        cmd: MinersCmd,
    },
    /// The config file's reference and schema, generated from the config types.
    Config {
        #[command(subcommand)]
        cmd: ConfigCmd,
    },
    /// The miner actor's view of this node.
    Actor {
        #[command(subcommand)]
        cmd: ActorCmd,
    },
}

#[derive(Subcommand)]
enum ListCmd {
    /// Lists them.
    List {
        /// One JSON array (what the admin API returns) instead of a line each.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum MinersCmd {
    /// The miners in config.toml.
    List,
    /// Adds a miner whose worker key is in `<repo>/keys` (or signed for by the node's
    /// wallet or gateway, per `[chain] signing`).
    Add {
        /// The miner actor (`f0…`).
        #[arg(long)]
        address: String,
        /// Its owner address.
        #[arg(long)]
        owner: String,
        /// Its worker address.
        #[arg(long)]
        worker: String,
        /// Its sector size in bytes.
        #[arg(long, default_value_t = 32 << 30)]
        sector_size: u64,
    },
    /// Removes a miner (its deals stay in the database).
    Remove {
        /// The miner actor.
        address: String,
    },
}

#[derive(Subcommand)]
enum ConfigCmd {
    /// Every key, its type, default and meaning, as Markdown (docs/config.md).
    Reference,
    /// The JSON Schema of config.toml, for editors.
    Schema,
}

#[derive(Subcommand)]
enum ActorCmd {
    /// Puts this node's peer id and libp2p addresses in MinerInfo (ChangePeerID and
    /// ChangeMultiaddrs from the worker), so clients and retrieval checkers find it.
    SetPeerInfo {
        /// The miner (the first one if omitted).
        #[arg(long)]
        miner: Option<String>,
        /// Another address to list after this node's (repeat it): the other instances of a
        /// cluster, which share this node's peer id.
        #[arg(long = "addr", value_name = "MULTIADDR")]
        addrs: Vec<String>,
    },
}

#[derive(Subcommand)]
enum DealsCmd {
    /// Lists them.
    List {
        /// Only those whose state contains this (for example `Active`, `Transferring`).
        #[arg(long)]
        state: Option<String>,
        /// One JSON array (what the admin API returns) instead of a line each.
        #[arg(long)]
        json: bool,
    },
    /// One deal with its timeline.
    Show {
        /// Deal UUID or proposal CID.
        deal: String,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Cancels a deal whose data has not been verified yet.
    Cancel {
        /// Deal UUID or proposal CID.
        deal: String,
    },
    /// Retries a deal that failed before it was published.
    Retry {
        /// Deal UUID or proposal CID.
        deal: String,
    },
}

#[derive(Subcommand)]
enum PiecesCmd {
    /// Lists them.
    List {
        /// One JSON array (what the admin API returns) instead of a line each.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    examples::cli::run(async_main())
}

async fn async_main() -> ExitCode {
    let args = Args::parse();
    examples::cli::init_tracing("info", args.log.log_format);
    let repo = expand_home(&args.repo);
    match run(&repo, args.cmd).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("provider: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn rpc(repo: &Path, method: &str, params: Value) -> Result<Value, String> {
    let api = std::fs::read_to_string(repo.join("api"))
        .map_err(|e| format!("{}/api: {e} (is the node running?)", repo.display()))?;
    let token = std::fs::read_to_string(Repo(repo.into()).admin_token())
        .map_err(|e| format!("admin token: {e}"))?;
    let url = url::Url::parse(api.trim()).map_err(|e| market_core::report(&e))?;
    admin::call_remote(&url, &token, method, params).await
}

fn print(v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

async fn run(repo: &Path, cmd: Cmd) -> Result<(), String> {
    match cmd {
        Cmd::Completions { shell } => {
            examples::cli::print_completions::<Args>(shell, "provider");
            Ok(())
        }
        Cmd::Init => {
            let cfg = node::init(repo, None).map_err(|e| market_core::report(&e))?;
            println!("initialised {}", repo.display());
            for m in &cfg.miners {
                println!("  miner owner {} worker {}", m.owner, m.worker);
            }
            println!(
                "  admin token: {}",
                Repo(repo.into()).admin_token().display()
            );
            println!(
                "  edit {} and start with `provider run`",
                Repo(repo.into()).config().display()
            );
            Ok(())
        }
        Cmd::Run => {
            let node = MarketNode::start(repo)
                .await
                .map_err(|e| market_core::report(&e))?;
            std::fs::write(repo.join("api"), node.http_url.as_str())
                .map_err(|e| market_core::report(&e))?;
            println!("peer id   {}", node.peer.peer_id);
            for a in &node.peer.addrs {
                println!("libp2p    {a}/p2p/{}", node.peer.peer_id);
            }
            println!("http      {} (retrieval, /rpc/v0 admin)", node.http_url);
            if let Some(d) = &node.devnet {
                println!(
                    "devnet    {} (Lotus API; client: --chain-api \"$(cat {dir}/token):$(cat {dir}/api)\")",
                    d.url,
                    dir = repo.join("devnet").display()
                );
            }
            for m in &node.miners {
                println!("miner     {m}");
            }
            tokio::signal::ctrl_c()
                .await
                .map_err(|e| market_core::report(&e))?;
            println!("stopping");
            node.stop();
            let _ = std::fs::remove_file(repo.join("api"));
            Ok(())
        }
        Cmd::GetAsk { miner } => {
            print(&rpc(repo, "Market.GetAsk", json!([miner])).await?);
            Ok(())
        }
        Cmd::SetAsk {
            miner,
            price,
            verified_price,
            min_piece_size,
            max_piece_size,
        } => {
            let params = json!([miner, price, verified_price, min_piece_size, max_piece_size]);
            print(&rpc(repo, "Market.SetAsk", params).await?);
            Ok(())
        }
        Cmd::Deals {
            cmd: DealsCmd::List { state, json },
        } => {
            let deals = rpc(repo, "Market.ListDeals", json!([])).await?;
            let deals: Vec<&Value> = deals
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| {
                    state
                        .as_deref()
                        .is_none_or(|s| d["State"].as_str().unwrap_or_default().contains(s))
                })
                .collect();
            if json {
                print(&json!(deals));
                return Ok(());
            }
            for d in deals {
                println!(
                    "{}  {:<22} {:>10} B  deal {:<6} ipni {:<9} {}",
                    d["DealUuid"].as_str().unwrap_or_default(),
                    d["State"].as_str().unwrap_or_default(),
                    d["PieceSize"],
                    d["DealId"],
                    ipni_state(d),
                    d["Message"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        Cmd::Deals {
            cmd: DealsCmd::Show { deal, json },
        } => {
            let deals = rpc(repo, "Market.ListDeals", json!([])).await?;
            let found = deals
                .as_array()
                .into_iter()
                .flatten()
                .find(|d| d["DealUuid"] == deal.as_str() || d["ProposalCid"] == deal.as_str())
                .cloned()
                .ok_or_else(|| format!("deal {deal} not found"))?;
            let mut found = found;
            found["Timeline"] = rpc(repo, "Market.DealEvents", json!([deal])).await?;
            if json {
                print(&found);
                return Ok(());
            }
            for key in [
                "DealUuid",
                "ProposalCid",
                "State",
                "Message",
                "PieceCid",
                "PieceSize",
                "Client",
                "Offline",
                "DealId",
                "Sector",
                "Offset",
            ] {
                println!("{key:<12} {}", plain(&found[key]));
            }
            println!("{:<12} {}", "Ipni", ipni_state(&found));
            println!("timeline");
            for e in found["Timeline"].as_array().into_iter().flatten() {
                println!(
                    "  {}  {:<28} {}",
                    e["At"],
                    e["State"].as_str().unwrap_or_default(),
                    e["Message"].as_str().unwrap_or_default()
                );
            }
            Ok(())
        }
        Cmd::Deals {
            cmd: DealsCmd::Cancel { deal },
        } => {
            rpc(repo, "Market.CancelDeal", json!([deal])).await?;
            println!("cancelling {deal}");
            Ok(())
        }
        Cmd::Deals {
            cmd: DealsCmd::Retry { deal },
        } => {
            let r = rpc(repo, "Market.RetryDeal", json!([deal])).await?;
            println!("retried {deal}: {}", plain(&r["State"]));
            Ok(())
        }
        Cmd::Pieces {
            cmd: PiecesCmd::List { json },
        } => {
            let pieces = rpc(repo, "Market.ListPieces", json!([])).await?;
            if json {
                print(&pieces);
                return Ok(());
            }
            for p in pieces.as_array().into_iter().flatten() {
                println!(
                    "{}  payload {:>12} B  piece {:>12} B  ipni {}",
                    p["PieceCid"].as_str().unwrap_or_default(),
                    p["PayloadSize"],
                    p["PieceSize"],
                    ipni_state(p)
                );
            }
            Ok(())
        }
        Cmd::ImportData { deal, path } => {
            let path =
                std::fs::canonicalize(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            rpc(
                repo,
                "Market.ImportData",
                json!([deal, path.to_string_lossy()]),
            )
            .await?;
            println!("imported {} for {deal}", path.display());
            Ok(())
        }
        Cmd::Transfers {
            cmd: ListCmd::List { json },
        } => {
            let list = rpc(repo, "Market.ListTransfers", json!([])).await?;
            if json {
                print(&list);
                return Ok(());
            }
            for t in list.as_array().into_iter().flatten() {
                let (got, size) = (
                    t["Received"].as_u64().unwrap_or(0),
                    t["Size"].as_u64().unwrap_or(0),
                );
                let pct = if size == 0 {
                    100.0
                } else {
                    got as f64 * 100.0 / size as f64
                };
                println!(
                    "{}  {:<26} {:>5.1}%  {} of {} B  {} {}  {}",
                    plain(&t["DealUuid"]),
                    plain(&t["State"]),
                    pct,
                    got,
                    size,
                    plain(&t["Type"]),
                    plain(&t["Host"]),
                    plain(&t["Message"])
                );
            }
            Ok(())
        }
        Cmd::Sectors {
            cmd: ListCmd::List { json },
        } => {
            let list = rpc(repo, "Market.ListSectors", json!([])).await?;
            if json {
                print(&list);
                return Ok(());
            }
            for s in list.as_array().into_iter().flatten() {
                println!(
                    "{} sector {:<6} {} deals, {} B",
                    plain(&s["Miner"]),
                    plain(&s["Sector"]),
                    s["Deals"].as_array().map_or(0, Vec::len),
                    plain(&s["DealBytes"])
                );
                for d in s["Deals"].as_array().into_iter().flatten() {
                    println!(
                        "    deal {:<6} {}  {:<22} offset {}",
                        plain(&d["DealId"]),
                        plain(&d["DealUuid"]),
                        plain(&d["State"]),
                        plain(&d["Offset"])
                    );
                }
            }
            Ok(())
        }
        Cmd::Miners { cmd } => miners(repo, cmd),
        Cmd::Config {
            cmd: ConfigCmd::Reference,
        } => {
            print!("{}", market_node::config::reference());
            Ok(())
        }
        Cmd::Config {
            cmd: ConfigCmd::Schema,
        } => {
            print(&market_node::config::schema());
            Ok(())
        }
        Cmd::Actor {
            cmd: ActorCmd::SetPeerInfo { miner, addrs },
        } => {
            let r = rpc(repo, "Market.ActorSetPeerInfo", json!([miner, addrs])).await?;
            println!("peer id    {}", plain(&r["PeerId"]));
            for a in r["Multiaddrs"].as_array().into_iter().flatten() {
                println!("multiaddr  {}", plain(a));
            }
            for m in r["Messages"].as_array().into_iter().flatten() {
                println!("message    {} (landed)", plain(m));
            }
            Ok(())
        }
        Cmd::Info => {
            print(&rpc(repo, "Market.Info", json!([])).await?);
            Ok(())
        }
    }
}

/// `miners list|add|remove`: edits `[[miners]]` in config.toml.
fn miners(repo: &Path, cmd: MinersCmd) -> Result<(), String> {
    use market_node::config::{MinerSection, NodeConfig};
    let path = Repo(repo.into()).config();
    let mut cfg = NodeConfig::load(&path).map_err(|e| market_core::report(&e))?;
    let parse = |a: &str| {
        storage_market::types::Address::from_str(a).map_err(|e| format!("address {a}: {e}"))
    };
    match cmd {
        MinersCmd::List => {
            for m in &cfg.miners {
                println!(
                    "{}  owner {}  worker {}  sectors {} B",
                    m.address.as_deref().unwrap_or("(devnet: created at start)"),
                    m.owner,
                    m.worker,
                    m.sector_size
                );
            }
            return Ok(());
        }
        MinersCmd::Add {
            address,
            owner,
            worker,
            sector_size,
        } => {
            let a = parse(&address)?;
            parse(&owner)?;
            parse(&worker)?;
            commp::PaddedPieceSize::new(sector_size).map_err(|e| format!("--sector-size: {e}"))?;
            if cfg
                .miners
                .iter()
                .any(|m| m.address.as_deref().and_then(|x| parse(x).ok()) == Some(a))
            {
                return Err(format!("{a} is already served"));
            }
            cfg.miners.push(MinerSection {
                address: Some(a.to_string()),
                owner,
                worker,
                sector_size,
            });
            println!("added {a}: restart the node (`provider run`) to serve it");
        }
        MinersCmd::Remove { address } => {
            let a = parse(&address)?;
            let before = cfg.miners.len();
            cfg.miners
                .retain(|m| m.address.as_deref().and_then(|x| parse(x).ok()) != Some(a));
            if cfg.miners.len() == before {
                return Err(format!("{a} is not in {}", path.display()));
            }
            if cfg.miners.is_empty() {
                return Err("a node serves at least one miner".into());
            }
            println!("removed {a}: restart the node (`provider run`) to stop serving it");
        }
    }
    cfg.save(&path).map_err(|e| market_core::report(&e))
}

/// A JSON value as a person reads it: strings without quotes, null as `-`.
fn plain(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// One word for where a deal's or piece's newest IPNI ad stands (its `Ipni` field).
fn ipni_state(v: &Value) -> &'static str {
    let ad = &v["Ipni"];
    if ad.is_null() {
        return if v["SkipIpni"] == true {
            "skipped"
        } else {
            "-"
        };
    }
    match (
        ad["Removal"] == true,
        !ad["IndexedAt"].is_null(),
        !ad["AnnouncedAt"].is_null(),
    ) {
        (true, true, _) => "removed",
        (true, false, _) => "removing",
        (false, true, _) => "indexed",
        (false, false, true) => "announced",
        (false, false, false) => "published",
    }
}
