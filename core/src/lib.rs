//! The shared basics of fil-market-rs: what the storage market, the retrieval market, data
//! transfer and the node all speak.
//!
//! One concept per file:
//! - [`types`]: addresses, amounts, epochs, ids, signatures, labels, deal UUIDs.
//! - [`cid`]: the one [`Cid`] type (room for Lotus's 126-byte inline CIDs);
//!   [`multicodec`]: the codes in use.
//! - [`deal`]: the market actor's on-chain deal types and the two proposal CIDs.
//! - [`cbor`]: DAG-CBOR with the size and depth limits peer input needs.
//! - [`chain`]: the [`ChainNode`](chain::ChainNode) trait, what a market needs of a node;
//!   [`message`]: the chain's signed messages and their CIDs.
//! - [`jwt`]: Lotus-style HS256 API tokens and their permissions; [`jsonrpc`]: the
//!   JSON-RPC 2.0 envelope the API servers read and answer.
//! - [`wallet`] (feature `wallet`): the [`Wallet`](wallet::Wallet) trait and a local keystore.
//! - [`db`] (feature `sqlite`): opening and migrating SQLite databases.
//! - [`metrics`]: the names, labels and units of every metric the crates record (the node
//!   serves them to Prometheus).
//! - [`process`]: process-wide settings for long-running binaries (malloc arenas).
//! - [`report`]: an error and its sources as one line, for people.
//! - [`http`] (feature `http`): serving HTTP with header and body timeouts and a
//!   connection limit.
//! - [`host`] and [`rpc`] (feature `host`): one libp2p host per node, and the
//!   one-CBOR-item-each-way protocol shape on it.

pub mod cbor;
pub mod chain;
pub mod cid;
#[cfg(feature = "sqlite")]
pub mod db;
pub mod deal;
#[cfg(feature = "host")]
pub mod host;
#[cfg(feature = "http")]
pub mod http;
pub mod jsonrpc;
pub mod jwt;
pub mod message;
pub mod metrics;
pub mod miner;
pub mod multicodec;
pub mod process;
pub mod report;
#[cfg(feature = "host")]
pub mod rpc;
#[cfg(feature = "testing")]
pub mod testing;
pub mod types;
#[cfg(feature = "wallet")]
pub mod wallet;

pub use crate::cid::Cid;
pub use crate::report::{clip, report};
#[cfg(feature = "host")]
pub use libp2p;
