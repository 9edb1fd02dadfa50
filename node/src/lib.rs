//! A whole market node from parts: what the example binaries run, for integrators to embed.
//!
//! - [`config`]: the node's TOML configuration (`config.toml` in its repo).
//! - [`node`]: [`ProviderNode`](node::ProviderNode) assembly: chain, sealer, piece store and
//!   index, transfers, the storage and retrieval protocols on one libp2p host, and HTTP
//!   (retrieval, the admin API, the dev chain).
//! - [`admin`]: the JSON-RPC admin API at `/rpc/v0`, guarded by [`jwt`] tokens with Lotus's
//!   permission names.
//! - [`client`]: the client side: a repo with a wallet and a deal database, data
//!   preparation, deal proposals and retrieval.

pub mod admin;
pub mod client;
pub mod config;
pub mod jwt;
pub mod node;
