//! A whole market node from parts: what the example binaries run, for integrators to embed.
//!
//! - [`config`]: the node's TOML configuration (`config.toml` in its repo).
//! - [`node`]: [`MarketNode`](node::MarketNode) assembly: the chain (a Lotus or Venus node
//!   through `lotus-api`, or an embedded devnet reached the same way), sealer, piece store
//!   and index, transfers, the storage and retrieval protocols on one libp2p host, and HTTP
//!   (retrieval, the admin API).
//! - [`admin`]: the JSON-RPC admin API at `/rpc/v0`, guarded by [`jwt`] tokens with Lotus's
//!   permission names.
//! - IPNI: stored pieces are advertised to the indexers of `[ipni]` (`ipni.rs` decides which
//!   from the deals; the `market-ipni` crate publishes, announces and confirms).
//! - [`metrics`]: Prometheus at `/metrics` (the crates' counters, HTTP accounting, gauges
//!   read from the stores at each scrape).
//! - [`ui`]: the operator's web UI at `/ui/` (server-rendered, live over server-sent
//!   events, behind the same tokens).
//! - [`doctor`]: checks a provider from outside (chain, dial, ask, transports, `/piece`,
//!   `/ipfs`, IPNI identity and indexer, clocks, disk) and says how to fix what fails.
//! - [`client`]: the client side: a repo with a wallet and a deal database, data
//!   preparation, deal proposals and retrieval.

//!
//! A provider node in a few lines: a repo (keys, identity, tokens, `config.toml`), then the
//! node, which serves deals, asks, status, retrieval queries and transfers under one peer
//! id, and HTTP retrieval plus the admin API on one listener.
//!
//! ```
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use market_node::config::NodeConfig;
//! use market_node::node::{self, MarketNode};
//!
//! let repo = tempfile::tempdir()?;
//! node::init(repo.path(), Some(NodeConfig::local_dev()))?;
//! let node = MarketNode::start(repo.path()).await?;
//! println!("peer {:?}, HTTP {}, miners {:?}", node.peer, node.http_url, node.miners);
//! node.stop();
//! # Ok(())
//! # }
//! # tokio::runtime::Runtime::new()?.block_on(run()).map_err(|e| e.to_string())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod admin;
pub mod client;
pub mod config;
pub mod doctor;
mod ipni;
pub use market_core::jwt;
pub mod metrics;
pub mod node;
mod piece_stores;
mod quotes;
pub mod ui;
