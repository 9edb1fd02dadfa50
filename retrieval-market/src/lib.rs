//! The Filecoin retrieval market: what a provider answers about its data and how the data
//! leaves it, and a client that trusts nothing it receives.
//!
//! Layout, one concept per file:
//! - [`types`]: the wire messages of `/fil/retrieval/qry/1.0.0` and
//!   `/fil/retrieval/transports/1.0.0`, byte-compatible with go-fil-markets and Boost.
//! - [`network`]: serving and asking those protocols over libp2p streams on the storage
//!   market's host, so one peer id answers both markets.
//! - [`provider`]: [`RetrievalProvider`], deciding query answers and reading piece bytes
//!   and blocks from the piece store, or through an [`Unsealer`] when no unsealed copy is kept.
//! - [`unseal`]: the [`Unsealer`] trait a sealer implements.
//! - [`http`]: the axum router: `/piece/{cid}` as booster-http serves it and `/ipfs/{cid}`
//!   as an IPFS trustless gateway (CAR and raw blocks); [`range`]: HTTP byte ranges;
//!   [`gateway`]: trustless-gateway request parameters and the DAG walk behind a CAR.
//! - [`client`]: [`RetrievalClient`]: query, then fetch a piece verifying its commP while it
//!   streams, or a DAG as a CAR verifying every block and its completeness.

pub mod client;
pub mod denylist;
mod error;
pub mod gateway;
pub mod http;
pub mod network;
pub mod provider;
pub mod range;
pub mod types;
pub mod unseal;

pub use client::RetrievalClient;
pub use error::{ProviderFailure, RetrievalError};
pub use provider::{ReadShare, RetrievalAsk, RetrievalProvider};
pub use unseal::{UnsealError, Unsealer};
