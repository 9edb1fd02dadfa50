//! The Filecoin storage market: the deal protocols Lotus, Boost, droplet and Curio speak,
//! a provider that validates, persists, publishes and hands off deals, and a client.
//!
//! Layout, one concept per file:
//! - [`types`]: addresses, amounts, epochs, ids, signatures, labels.
//! - [`deal`]: the market actor's on-chain types and the two proposal CIDs.
//! - [`message`]: the libp2p wire messages; [`cbor`]: bounded DAG-CBOR decoding.
//! - [`wallet`]: keys, signing and verification.

pub mod cbor;
pub mod deal;
pub mod message;
pub mod types;
pub mod wallet;

pub use cid::Cid;
