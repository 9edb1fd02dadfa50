//! The IPNI side of a storage provider: what lets retrieval clients and checkers (lassie,
//! Spark, cid.contact) find the content we store.
//!
//! - [`schema`]: advertisements and entry chunks as DAG-JSON blocks;
//! - [`sign`]: the ad signature envelope and the signed head;
//! - [`metadata`], [`context`]: the transports we serve and the FRC's piece context id;
//! - [`store`]: the persisted chains, heads and per-ad announce and ingest state;
//! - [`publisher`]: the HTTP routes indexers sync from;
//! - [`announce`], [`ingest`]: telling indexers about a new head, and confirming they took it;
//! - [`provider`]: [`IpniProvider`], the handle a node uses (announce a piece, remove it, ask
//!   where it stands) and the background loop that announces and confirms.

pub mod announce;
pub mod context;
mod error;
pub mod find;
pub mod ingest;
pub mod metadata;
pub mod provider;
pub mod publisher;
pub mod schema;
pub mod sign;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use error::IpniError;
pub use provider::{IpniConfig, IpniProvider};
