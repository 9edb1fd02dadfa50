//! A storage and retrieval client CLI in the spirit of venus-market's market-client.
//!
//! ```text
//! client data generate-car <file> <out.car> [--profile lotus|kubo]
//! client data import <file>                      # CAR + commP into <repo>/data
//! client data commp <car>
//! client storage asks query --peer <multiaddr/p2p/id> --miner f01002
//! client storage deals init --peer … --miner … --car <car> --url http://…/x.car
//! client storage deals init --peer … --miner … --piece-cid baga… --piece-size 8388608 --root bafy…
//! client storage deals list
//! client retrieve (--peer … | --provider http://… | --indexer https://cid.contact) \
//!     (--root bafy… [--car] | --piece baga…|bafkzcib…) --out file
//! client actor-funds add 10
//! ```
//!
//! Chain access goes to `--chain-api`: a Lotus node's API info (`TOKEN:/ip4/…/tcp/1234/http`,
//! as in `FULLNODE_API_INFO`, which is read when the flag is absent) or URL; `--chain-token`
//! overrides the token. Messages are signed with the repo's keys, so a `write` token (or a
//! public gateway) is enough; the faucet exists only on a devnet.

use market_core::cid::PieceCidExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use clap::{Parser, Subcommand, ValueEnum};
use examples::cli::expand_home;
use examples::progress;
use market_ipni::metadata;
use market_node::client::{self, ClientNode, DealTerms};
use piecestore::unixfs::ImportProfile;
use retrieval_market::client::HttpProvider;
use retrieval_market::gateway::DagScope;
use retrieval_market::types::QueryStatus;
use storage_market::Cid;
use storage_market::chain::ChainNode;
use storage_market::types::{Address, TokenAmount};

#[derive(Parser)]
#[command(about = "fil-market-rs client")]
struct Args {
    #[command(flatten)]
    log: examples::cli::LogArgs,
    /// Repo directory (wallet and deal database).
    #[arg(long, default_value = "~/.fil-market-client")]
    repo: String,
    /// The chain node's API info or URL.
    #[arg(
        long,
        env = "FULLNODE_API_INFO",
        default_value = "/ip4/127.0.0.1/tcp/1234/http"
    )]
    chain_api: String,
    /// The chain node's token (overrides one in `--chain-api`).
    #[arg(long, env = "FULLNODE_API_TOKEN")]
    chain_token: Option<String>,
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
    /// Preparing data.
    Data {
        #[command(subcommand)]
        cmd: DataCmd,
    },
    /// Storage deals and asks.
    Storage {
        #[command(subcommand)]
        cmd: StorageCmd,
    },
    /// Retrieves a piece or a DAG over HTTP, verified, from the first provider that delivers
    /// it: the --peer (asked over libp2p), then each --provider, then those an IPNI
    /// --indexer names. A piece broken off mid-way continues at the next one.
    Retrieve {
        /// Provider multiaddr ending in /p2p/<peer id>, asked over libp2p for its HTTP URL.
        #[arg(long)]
        peer: Option<String>,
        /// A provider's HTTP retrieval URL (repeatable).
        #[arg(long = "provider")]
        providers: Vec<url::Url>,
        /// An IPNI indexer's find API (`https://cid.contact`), asked for providers.
        #[arg(long)]
        indexer: Option<url::Url>,
        /// Payload root CID (needed unless --piece is given).
        #[arg(long)]
        root: Option<Cid>,
        /// Fetch this piece (v1 or v2 CID; commP-verified) instead of the DAG.
        #[arg(long)]
        piece: Option<Cid>,
        /// Keep the CAR at --out instead of exporting the file.
        #[arg(long)]
        car: bool,
        /// Output path.
        #[arg(long)]
        out: PathBuf,
    },
    /// Market escrow.
    ActorFunds {
        #[command(subcommand)]
        cmd: FundsCmd,
    },
    /// The client's keys (`<repo>/keys`, Lotus's export format).
    Wallet {
        #[command(subcommand)]
        cmd: WalletCmd,
    },
}

#[derive(Subcommand)]
enum WalletCmd {
    /// Generates a key.
    New {
        /// `bls` (the client's default, as Lotus clients use) or `secp256k1`.
        #[arg(long, default_value = "bls")]
        key_type: String,
    },
    /// Lists the addresses held, with their balances.
    List {
        /// One JSON array instead of a line each.
        #[arg(long)]
        json: bool,
    },
    /// The wallet balance of an address (the default one if omitted).
    Balance {
        /// The address.
        address: Option<String>,
    },
    /// Prints a key in Lotus's `wallet export` form (keep it secret).
    Export {
        /// The address.
        address: String,
    },
    /// Imports a key in Lotus's `wallet export` form from a file (`-` for stdin).
    Import {
        /// The file.
        file: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Profile {
    /// Lotus: blake2b-256, 1 MiB chunks, 1024 links, inline ≤126 B.
    Lotus,
    /// Kubo: sha2-256, 256 KiB chunks, 174 links.
    Kubo,
}

#[derive(clap::Args)]
struct ImportOpts {
    /// DAG profile.
    #[arg(long, value_enum, default_value = "lotus")]
    profile: Profile,
    /// Override the chunk size.
    #[arg(long)]
    chunk_size: Option<usize>,
    /// Override the links per node.
    #[arg(long)]
    max_links: Option<usize>,
    /// Shard a directory whose links' names and CIDs exceed this many bytes (Kubo's
    /// 262144 by default; 0 never shards).
    #[arg(long)]
    shard_above: Option<usize>,
}

impl ImportOpts {
    fn profile(&self) -> ImportProfile {
        let mut p = match self.profile {
            Profile::Lotus => ImportProfile::LOTUS,
            Profile::Kubo => ImportProfile::KUBO,
        };
        if let Some(c) = self.chunk_size {
            p.chunk_size = c;
        }
        if let Some(l) = self.max_links {
            p.max_links = l;
        }
        if let Some(s) = self.shard_above {
            p.shard_above = s;
        }
        p
    }
}

#[derive(Subcommand)]
enum DataCmd {
    /// Imports a file or a directory tree into <repo>/data as a UnixFS CAR and computes its
    /// piece.
    Import {
        /// The file or directory.
        file: PathBuf,
        #[command(flatten)]
        opts: ImportOpts,
    },
    /// Writes the UnixFS DAG of a file or a directory tree (HAMT-sharded past
    /// --shard-above, as Kubo shards) as a CAR.
    GenerateCar {
        /// The file or directory.
        file: PathBuf,
        /// The CAR to write.
        out: PathBuf,
        #[command(flatten)]
        opts: ImportOpts,
    },
    /// Piece CID and size of a file (usually a CAR).
    Commp {
        /// The file.
        file: PathBuf,
    },
}

// Parsed once per run; boxing the big variant buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum StorageCmd {
    /// Asks.
    Asks {
        #[command(subcommand)]
        cmd: AsksCmd,
    },
    /// Deals.
    Deals {
        #[command(subcommand)]
        cmd: DealsCmd,
    },
}

#[derive(Subcommand)]
enum AsksCmd {
    /// Queries and verifies a miner's signed ask.
    Query {
        /// Provider multiaddr ending in /p2p/<peer id>.
        #[arg(long)]
        peer: String,
        /// The miner.
        #[arg(long)]
        miner: Address,
    },
}

#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum DealsCmd {
    /// Proposes a deal: online with --url, offline otherwise.
    Init {
        /// Provider multiaddr ending in /p2p/<peer id>.
        #[arg(long)]
        peer: String,
        /// The miner.
        #[arg(long)]
        miner: Address,
        /// The CAR (piece CID, size and root are computed from it).
        #[arg(long)]
        car: Option<PathBuf>,
        /// URL the provider downloads the CAR from (online deal).
        #[arg(long)]
        url: Option<String>,
        /// Extra request header for the download, `Name: value`.
        #[arg(long)]
        header: Vec<String>,
        /// Piece CID (offline deal without --car).
        #[arg(long)]
        piece_cid: Option<Cid>,
        /// Padded piece size (offline deal without --car).
        #[arg(long)]
        piece_size: Option<u64>,
        /// Payload root.
        #[arg(long)]
        root: Option<Cid>,
        /// Epochs until the deal starts.
        #[arg(long, default_value_t = 200)]
        start_in: i64,
        /// Deal length in epochs.
        #[arg(long, default_value_t = 1000)]
        duration: i64,
        /// Verified deal.
        #[arg(long)]
        verified: bool,
    },
    /// Lists this client's deals.
    List {
        /// Ask each provider for the current status of unfinished deals first (over the
        /// status protocol of the deal's generation), reaching it at its on-chain address.
        #[arg(long)]
        refresh: bool,
        /// Reach every provider here instead of at its on-chain address, for --refresh.
        #[arg(long)]
        peer: Option<String>,
        /// One JSON array instead of a line each.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum FundsCmd {
    /// Adds FIL to the client's market escrow.
    Add {
        /// Amount in FIL.
        amount: String,
        /// Take the FIL from the devnet's faucet first.
        #[arg(long)]
        faucet: bool,
    },
    /// Takes FIL back from the client's market escrow (what no deal locks).
    Withdraw {
        /// Amount in FIL.
        amount: String,
    },
    /// The client's escrow: total, locked, available.
    Balance,
}

fn main() -> ExitCode {
    examples::cli::run(async_main())
}

async fn async_main() -> ExitCode {
    let args = Args::parse();
    examples::cli::init_tracing("warn", args.log.log_format);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("client: {e}");
            ExitCode::FAILURE
        }
    }
}

fn prepare(file: &Path, car: &Path, profile: ImportProfile) -> Result<client::Prepared, String> {
    let meta = std::fs::metadata(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let size = if meta.is_dir() {
        piecestore::directory::tree_bytes(file).map_err(|e| market_core::report(&e))?
    } else {
        meta.len()
    };
    let bar = progress::bytes("importing", 2 * size);
    let p = client::prepare(file, car, profile, &mut |n| bar.set_position(n))?;
    bar.finish_and_clear();
    println!("root        {}", p.root);
    println!(
        "car         {} ({} B, {} blocks)",
        car.display(),
        p.import.car_size,
        p.import.blocks
    );
    println!("piece cid   {}", p.piece.piece_cid());
    println!("piece size  {}", p.piece.padded_size.get());
    Ok(p)
}

fn commp_file(file: &Path) -> Result<commp::PieceInfo, String> {
    let f = std::fs::File::open(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let len = f.metadata().map_err(|e| market_core::report(&e))?.len();
    let bar = progress::bytes("commP", len);
    let info = commp::commp_reader(bar.wrap_read(std::io::BufReader::with_capacity(1 << 20, f)))
        .map_err(|e| market_core::report(&e))?;
    bar.finish_and_clear();
    Ok(info)
}

async fn node(args: &Args) -> Result<ClientNode, String> {
    let mut api = lotus_api::ApiInfo::parse(&args.chain_api, "v1").map_err(|e| e.to_string())?;
    if let Some(t) = &args.chain_token {
        api.token = Some(t.clone());
    }
    client::open(&expand_home(&args.repo), &api).await
}

async fn run(args: Args) -> Result<(), String> {
    match &args.cmd {
        Cmd::Completions { shell } => {
            examples::cli::print_completions::<Args>(*shell, "client");
            Ok(())
        }
        Cmd::Data { cmd } => match cmd {
            DataCmd::Import { file, opts } => {
                let dir = expand_home(&args.repo).join("data");
                std::fs::create_dir_all(&dir).map_err(|e| market_core::report(&e))?;
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_else(|| "data".into());
                prepare(file, &dir.join(format!("{name}.car")), opts.profile()).map(drop)
            }
            DataCmd::GenerateCar { file, out, opts } => {
                prepare(file, out, opts.profile()).map(drop)
            }
            DataCmd::Commp { file } => {
                let info = commp_file(file)?;
                println!("piece cid   {}", info.piece_cid());
                println!("piece size  {}", info.padded_size.get());
                println!("payload     {}", info.payload_size);
                Ok(())
            }
        },
        Cmd::Storage {
            cmd:
                StorageCmd::Asks {
                    cmd: AsksCmd::Query { peer, miner },
                },
        } => {
            let c = node(&args).await?;
            let peer = client::parse_peer(peer)?;
            let ask = c
                .storage
                .query_ask(&peer, miner)
                .await
                .map_err(|e| market_core::report(&e))?;
            println!("miner           {}", ask.miner);
            println!("price           {} attoFIL/GiB/epoch", ask.price.atto());
            println!(
                "verified price  {} attoFIL/GiB/epoch",
                ask.verified_price.atto()
            );
            println!(
                "piece sizes     {} .. {}",
                ask.min_piece_size, ask.max_piece_size
            );
            println!("expiry epoch    {}", ask.expiry.get());
            Ok(())
        }
        Cmd::Storage {
            cmd:
                StorageCmd::Deals {
                    cmd:
                        DealsCmd::List {
                            json,
                            refresh,
                            peer,
                        },
                },
        } => {
            let c = node(&args).await?;
            let deals = if *refresh {
                let peer = peer.as_deref().map(client::parse_peer).transpose()?;
                let mut deals = Vec::new();
                for (d, why) in c.refresh_deals(peer.as_ref()).await? {
                    if let Some(why) = why {
                        eprintln!("{}: not refreshed: {why}", d.deal_uuid);
                    }
                    deals.push(d);
                }
                deals
            } else {
                c.storage
                    .deals()
                    .await
                    .map_err(|e| market_core::report(&e))?
            };
            if *json {
                let list: Vec<serde_json::Value> = deals
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "DealUuid": d.deal_uuid.to_string(),
                            "ProposalCid": d.proposal_cid.to_string(),
                            "Offline": d.is_offline,
                            "State": d.state.to_string(),
                            "Checkpoint": d.checkpoint,
                            "PieceCid": d.proposal.proposal.piece_cid.to_string(),
                            "PieceSize": d.proposal.proposal.piece_size,
                            "DealId": d.deal_id.map(|i| i.0),
                            "Message": d.message,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&list).unwrap_or_default()
                );
                return Ok(());
            }
            for d in deals {
                println!(
                    "{}  {}  {:<12} piece {}  deal {}  {}",
                    d.deal_uuid,
                    if d.is_offline { "offline" } else { "online " },
                    d.checkpoint,
                    d.proposal.proposal.piece_cid,
                    d.deal_id.map_or("-".into(), |i| i.0.to_string()),
                    d.message
                );
            }
            Ok(())
        }
        Cmd::Storage {
            cmd:
                StorageCmd::Deals {
                    cmd:
                        DealsCmd::Init {
                            peer,
                            miner,
                            car,
                            url,
                            header,
                            piece_cid,
                            piece_size,
                            root,
                            start_in,
                            duration,
                            verified,
                        },
                },
        } => {
            let c = node(&args).await?;
            let peer = client::parse_peer(peer)?;
            let (piece_cid, piece_size, root, car_size) = match car {
                Some(car) => {
                    let info = commp_file(car)?;
                    let f = std::fs::File::open(car).map_err(|e| market_core::report(&e))?;
                    let mut ix = piecestore::CarIndexer::new();
                    let mut r = std::io::BufReader::new(f);
                    let mut buf = vec![0u8; 64 << 10];
                    while ix.roots().is_empty() {
                        let n = std::io::Read::read(&mut r, &mut buf)
                            .map_err(|e| market_core::report(&e))?;
                        if n == 0 {
                            break;
                        }
                        ix.update(&buf[..n], &mut |_| {})
                            .map_err(|e| market_core::report(&e))?;
                    }
                    let car_root = ix.roots().first().copied().ok_or("the CAR names no root")?;
                    (
                        info.piece_cid(),
                        info.padded_size,
                        root.unwrap_or(car_root),
                        info.payload_size,
                    )
                }
                None => {
                    let piece = piece_cid.ok_or("--piece-cid (or --car) is required")?;
                    let size =
                        commp::PaddedPieceSize::new(piece_size.ok_or("--piece-size is required")?)
                            .map_err(|e| market_core::report(&e))?;
                    (piece, size, root.unwrap_or(piece), 0)
                }
            };
            let transfer = match url {
                Some(u) => {
                    if car_size == 0 {
                        return Err("an online deal needs --car to know the transfer size".into());
                    }
                    let headers = header
                        .iter()
                        .map(|h| {
                            h.split_once(':')
                                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                                .ok_or(format!("header {h:?} is not `Name: value`"))
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    Some(client::http_transfer(u, headers, car_size))
                }
                None => None,
            };
            let spec = c
                .spec(
                    &peer,
                    DealTerms {
                        miner: *miner,
                        piece_cid,
                        piece_size,
                        root,
                        start_in: *start_in,
                        duration: *duration,
                        verified: *verified,
                        transfer,
                    },
                )
                .await?;
            let deal = c
                .storage
                .propose_deal(&peer, &spec)
                .await
                .map_err(|e| market_core::report(&e))?;
            println!("deal uuid     {}", deal.deal_uuid);
            println!("proposal cid  {}", deal.proposal_cid);
            println!("protocol      {}", deal.protocol);
            if deal.is_offline {
                println!(
                    "offline: the provider imports it with `provider import-data {} <car>`",
                    deal.deal_uuid
                );
            }
            Ok(())
        }
        Cmd::Retrieve {
            peer,
            providers,
            indexer,
            root,
            piece,
            car,
            out,
        } => {
            if peer.is_none() && providers.is_empty() && indexer.is_none() {
                return Err("say where to retrieve from: --peer, --provider or --indexer".into());
            }
            let piece = piece
                .as_ref()
                .map(client::piece_lookup_multihashes)
                .transpose()?;
            if piece.is_none() && root.is_none() {
                return Err("--root is needed unless --piece is given".into());
            }
            let mut candidates = Vec::new();
            let mut size = None;
            let retrieval = match peer {
                Some(peer) => {
                    let c = node(&args).await?;
                    let peer = client::parse_peer(peer)?;
                    let payload = root.or(piece.as_ref().map(|p| p.0)).unwrap_or_default();
                    let answer = c
                        .retrieval
                        .query(&peer, payload, piece.as_ref().map(|p| p.0))
                        .await
                        .map_err(|e| market_core::report(&e))?;
                    if answer.status != QueryStatus::AVAILABLE {
                        return Err(format!("not available: {}", answer.message));
                    }
                    let url = c
                        .retrieval
                        .http_url(&peer)
                        .await
                        .map_err(|e| market_core::report(&e))?;
                    size = Some(answer.size);
                    candidates.push(HttpProvider::new(peer.peer_id.to_string(), url));
                    c.retrieval
                }
                None => retrieval_market::RetrievalClient::new(None)
                    .map_err(|e| market_core::report(&e))?,
            };
            candidates.extend(
                providers
                    .iter()
                    .map(|u| HttpProvider::new(u.as_str(), u.clone())),
            );
            if let Some(find) = indexer {
                let (mhs, transport) = match (&piece, root) {
                    (Some((_, mhs)), _) => (mhs.clone(), metadata::FILECOIN_PIECE_HTTP),
                    (None, Some(r)) => (vec![r.hash().to_bytes()], metadata::IPFS_GATEWAY_HTTP),
                    (None, None) => unreachable!("checked above"),
                };
                let found =
                    client::indexer_providers(&reqwest::Client::new(), find, &mhs, transport)
                        .await?;
                eprintln!("the indexer names {} HTTP provider(s)", found.len());
                candidates.extend(found);
            }
            let bar = progress::bytes("retrieving", size.unwrap_or(0));
            let mut on = |n: u64, total: Option<u64>| {
                if let Some(t) = total {
                    bar.set_length(t);
                }
                bar.set_position(n);
            };
            if let Some((p, _)) = &piece {
                let (got, used) = retrieval
                    .fetch_piece_from(&candidates, p, out, &mut on)
                    .await
                    .map_err(|e| market_core::report(&e))?;
                bar.finish_and_clear();
                println!(
                    "piece {} verified: {} B at {} (from {})",
                    got.piece.piece_cid(),
                    got.bytes,
                    out.display(),
                    candidates[used].id
                );
                return Ok(());
            }
            let root = root.unwrap_or_default();
            let car_path = if *car {
                out.clone()
            } else {
                out.with_extension("car.partial-dag")
            };
            let (got, used) = retrieval
                .fetch_car_from(&candidates, &root, DagScope::All, &car_path, &mut on)
                .await
                .map_err(|e| market_core::report(&e))?;
            bar.finish_and_clear();
            let from = &candidates[used].id;
            if *car {
                println!(
                    "CAR of {} verified blocks: {} B at {} (from {from})",
                    got.blocks,
                    got.bytes,
                    out.display()
                );
            } else {
                let r = retrieval_market::RetrievalClient::export(&car_path, &root, out)
                    .await
                    .map_err(|e| market_core::report(&e))?;
                let _ = std::fs::remove_file(&car_path);
                if r.directories == 0 {
                    println!(
                        "file of {} B at {} ({} blocks verified, from {from})",
                        r.bytes,
                        out.display(),
                        got.blocks
                    );
                } else {
                    println!(
                        "directory of {} files in {} directories, {} B, at {} ({} blocks verified, from {from})",
                        r.files,
                        r.directories,
                        r.bytes,
                        out.display(),
                        got.blocks
                    );
                }
            }
            Ok(())
        }
        Cmd::ActorFunds {
            cmd: FundsCmd::Withdraw { amount },
        } => {
            let c = node(&args).await?;
            let amount = parse_fil(amount)?;
            let (cid, paid) = c.withdraw_funds(amount).await?;
            println!(
                "withdrew {paid} from the market escrow of {} (message {cid})",
                c.address
            );
            Ok(())
        }
        Cmd::ActorFunds {
            cmd: FundsCmd::Balance,
        } => {
            let c = node(&args).await?;
            let b = c
                .chain
                .market_balance(&c.address)
                .await
                .map_err(|e| market_core::report(&e))?;
            println!("escrow     {}", b.escrow);
            println!("locked     {}", b.locked);
            println!("available  {}", b.available());
            Ok(())
        }
        Cmd::Wallet { cmd } => wallet(&args, cmd).await,
        Cmd::ActorFunds {
            cmd: FundsCmd::Add { amount, faucet },
        } => {
            let c = node(&args).await?;
            let amount = parse_fil(amount)?;
            if *faucet {
                c.dev
                    .fund(
                        &c.address,
                        amount
                            .checked_add(TokenAmount::from_whole(1))
                            .unwrap_or(amount),
                    )
                    .await
                    .map_err(|e| market_core::report(&e))?;
            }
            let cid = c.add_funds(amount).await?;
            println!(
                "added {amount} to the market escrow of {} (message {cid})",
                c.address
            );
            Ok(())
        }
    }
}

fn parse_fil(amount: &str) -> Result<TokenAmount, String> {
    TokenAmount::from_str(&format!("{amount} FIL"))
        .or_else(|_| TokenAmount::from_str(amount))
        .map_err(|e| format!("amount {amount}: {e}"))
}

async fn wallet(args: &Args, cmd: &WalletCmd) -> Result<(), String> {
    use storage_market::wallet::{KeyStore, KeyType, PrivateKey};
    let keys = KeyStore::open(expand_home(&args.repo).join("keys"))
        .map_err(|e| market_core::report(&e))?;
    let parse = |a: &str| {
        storage_market::types::Address::from_str(a).map_err(|e| format!("address {a}: {e}"))
    };
    match cmd {
        WalletCmd::New { key_type } => {
            let kind = match key_type.as_str() {
                "bls" => KeyType::Bls,
                "secp256k1" => KeyType::Secp256k1,
                other => return Err(format!("--key-type {other}: use bls or secp256k1")),
            };
            println!(
                "{}",
                keys.generate(kind).map_err(|e| market_core::report(&e))?
            );
            Ok(())
        }
        WalletCmd::List { json } => {
            let c = node(args).await?;
            let mut rows = Vec::new();
            for a in keys.addresses() {
                let balance = c
                    .chain
                    .wallet_balance(&a)
                    .await
                    .map_err(|e| market_core::report(&e))?;
                rows.push((a, balance));
            }
            if *json {
                let v: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|(a, b)| {
                        serde_json::json!({
                            "Address": a.to_string(),
                            "Balance": b.atto().to_string(),
                            "Default": *a == c.address,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
                return Ok(());
            }
            for (a, b) in rows {
                let mark = if a == c.address { "*" } else { " " };
                println!("{mark} {a}  {b}");
            }
            Ok(())
        }
        WalletCmd::Balance { address } => {
            let c = node(args).await?;
            let a = match address {
                Some(a) => parse(a)?,
                None => c.address,
            };
            let b = c
                .chain
                .wallet_balance(&a)
                .await
                .map_err(|e| market_core::report(&e))?;
            println!("{b}");
            Ok(())
        }
        WalletCmd::Export { address } => {
            println!(
                "{}",
                keys.export(&parse(address)?)
                    .map_err(|e| market_core::report(&e))?
            );
            Ok(())
        }
        WalletCmd::Import { file } => {
            let text = if file == "-" {
                std::io::read_to_string(std::io::stdin()).map_err(|e| market_core::report(&e))?
            } else {
                std::fs::read_to_string(file).map_err(|e| format!("{file}: {e}"))?
            };
            let key =
                PrivateKey::from_lotus_export(text.trim()).map_err(|e| market_core::report(&e))?;
            println!("{}", keys.import(key).map_err(|e| market_core::report(&e))?);
            Ok(())
        }
    }
}
