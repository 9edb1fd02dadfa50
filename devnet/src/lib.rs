//! A Filecoin development network: the market actor's rules, persisted, served as a Lotus
//! full node, for tests, demos and the node's default chain.
//!
//! - [`chain`]: [`DevChain`], the market actor's rules (escrow and locked funds,
//!   PublishStorageDeals with the valid-deals bitfield, activation by sector commit,
//!   per-epoch payments, expiry, time-outs and slashing), signed messages with nonces,
//!   network versions with upgrades, and its state saved to SQLite after every change.
//! - [`api`]: the chain as Lotus JSON-RPC v1 (`/rpc/v1`, HTTP and WebSocket, JWT), with a
//!   `Dev` namespace for the faucet and set-up.
//! - [`repo`]: a devnet on disk, run alone (`devnet --repo DIR run`) or embedded in a node.
//! - [`client`]: [`DevApi`], the `Dev` namespace from another process.
//! - [`sealer`]: [`DevSealer`], a sealer that pre-commits and proves sectors on the devnet.
//!
//! Nothing in the product depends on this crate except the node's embedded devnet and the
//! demo; a test over `cargo metadata` keeps it so. The market reaches the devnet only through
//! `lotus-api`, like any Lotus node.

pub mod api;
pub mod chain;
pub mod client;
pub mod repo;
pub mod sealer;

pub use chain::{DevChain, DevChainConfig};
pub use client::DevApi;
pub use repo::{Devnet, DevnetConfig};
pub use sealer::DevSealer;
