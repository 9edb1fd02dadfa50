//! The Filecoin storage market: the deal protocols Lotus, Boost, droplet and Curio speak,
//! a provider that validates, persists, publishes and hands off deals, and a client.
//!
//! Layout, one concept per file:
//! - [`message`]: the libp2p wire messages, [`protocol`]: the protocol ids and versions.
//! - The shared basics come from `market-core` and are re-exported: [`types`], [`deal`],
//!   [`cbor`], [`wallet`] and [`chain`] (the node API the market needs; the `devnet` crate
//!   runs one in process).
//! - [`state`]: the deal state machine; [`store`]: SQLite persistence; [`lease`]: which
//!   instance drives a deal when several share a database.
//! - [`validation`] and [`filter`]: what a provider accepts; [`lifecycle`]: what becomes of
//!   a deal on chain after hand-off (activation, slashing, expiry), decided without I/O.
//! - [`publish`]: batching PublishStorageDeals; [`sealer`]: where data goes (pieces live in
//!   the `piecestore` crate).
//! - [`provider`]: the provider; [`client`]: the client; [`network`]: libp2p protocols.

pub mod client;
pub mod filter;
pub mod lease;
pub mod lifecycle;
pub mod message;
pub mod network;
pub mod placement;
pub mod protocol;
pub mod provider;
pub mod publish;
pub mod sealer;
pub mod state;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod validation;

pub use market_core::{Cid, cbor, chain, deal, types, wallet};
