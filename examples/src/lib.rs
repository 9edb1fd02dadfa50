//! The pieces behind the example binaries (`src/bin/`): a provider node assembled from a TOML
//! config ([`node`]), its JSON-RPC admin API ([`admin`]) guarded by JWTs ([`jwt`]), the dev
//! chain over HTTP ([`chain_rpc`]), and the client side shared by the client CLI and the demo
//! ([`client`]), and what every binary's `main` does ([`cli`]).

pub mod admin;
pub mod chain_rpc;
pub mod cli;
pub mod client;
pub mod config;
pub mod jwt;
pub mod node;
pub mod progress;
