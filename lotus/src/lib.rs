//! The chain adapter: the market's [`ChainNode`](market_core::chain::ChainNode) over a Lotus
//! or Venus full node's JSON-RPC v1, which is also what the devnet serves.
//!
//! - [`rpc`]: the go-jsonrpc client (HTTP calls, WebSocket channels, bearer token,
//!   timeouts, retries on transport errors only, typed errors with the node's code).
//! - [`json`]: Lotus's JSON encodings of chain types.
//! - [`api_info`]: `FULLNODE_API_INFO`-style endpoints.
//! - [`chain`]: [`LotusChain`], the `ChainNode`, with node-signed or locally signed messages
//!   and a journal that makes a repeated push send the same message.
//! - [`wallet`]: signing with keys a node, venus-wallet or sophon-gateway holds.

pub mod api_info;
pub mod chain;
pub mod json;
pub mod rpc;
pub mod wallet;

pub use api_info::ApiInfo;
pub use chain::{Flavor, Journal, LotusChain, LotusChainConfig, Sending};
pub use rpc::{RpcClient, RpcConfig, RpcError};
pub use wallet::{GatewayWallet, NodeWallet};
