//! The Filecoin storage market: the deal protocols Lotus, Boost, droplet and Curio speak,
//! a provider that validates, persists, publishes and hands off deals, and a client.
//!
//! Layout, one concept per file:
//! - [`types`]: addresses, amounts, epochs, ids, signatures, labels.
//! - [`deal`]: the market actor's on-chain types and the two proposal CIDs.
//! - [`message`]: the libp2p wire messages; [`cbor`]: bounded DAG-CBOR decoding.
//! - [`wallet`]: keys, signing and verification.
//! - [`chain`]: the node API the market needs; [`devchain`]: an in-process dev chain.
//! - [`state`]: the deal state machine; [`store`]: SQLite persistence.
//! - [`validation`] and [`filter`]: what a provider accepts.
//! - [`publish`]: batching PublishStorageDeals; [`sealer`]: where data goes (pieces live in
//!   the `piecestore` crate).
//! - [`provider`]: the provider; [`client`]: the client; [`network`]: libp2p protocols.

pub mod cbor;
pub mod chain;
pub mod client;
pub mod deal;
pub mod devchain;
pub mod filter;
pub mod message;
pub mod network;
pub mod provider;
pub mod publish;
pub mod sealer;
pub mod state;
pub mod store;
pub mod types;
pub mod validation;
pub mod wallet;

pub use cid::Cid;
