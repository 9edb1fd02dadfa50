//! A Filecoin development chain in process, for tests, demos and the node's default chain.
//!
//! - [`chain`]: [`DevChain`], the market actor's rules (escrow and locked funds,
//!   PublishStorageDeals with the valid-deals bitfield, activation by sector commit,
//!   per-epoch payments, expiry, time-outs and slashing) and a clock at any speed. It
//!   implements `market_core::chain::ChainNode`.
//! - [`sealer`]: [`DevSealer`], a sealer that pre-commits and proves sectors on the dev chain.
//! - [`rpc`]: the dev chain over HTTP (`/chain/v0`) and [`RemoteChain`], its client, so a
//!   client in another process uses the chain a provider runs.
//!
//! Nothing in the product depends on this crate except the node's default chain and the
//! demo; a test over `cargo metadata` keeps it so.

pub mod chain;
pub mod rpc;
pub mod sealer;

pub use chain::{DevChain, DevChainConfig};
pub use rpc::RemoteChain;
pub use sealer::DevSealer;
