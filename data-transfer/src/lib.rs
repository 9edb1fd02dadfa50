//! Moving deal data from client to provider.
//!
//! The provider pulls, as Boost does: an HTTP(S) GET of the URL the client put in the deal,
//! with the client's headers, or the same HTTP request over a libp2p stream on
//! `/fil/storage/transfer/1.0.0` for `libp2p:///…/p2p/<peer>` URLs.
//!
//! - [`TransferManager`]: admission ([`AddressPolicy`] against SSRF, staging space overall and
//!   per host), a concurrency limit, several connections for large files, retries with
//!   backoff, a stall timeout, no retry on 4xx, progress events, cancel, and resume after a
//!   restart from the last fsynced offset. The piece commitment is computed while the bytes
//!   arrive.
//! - [`CarServer`]: the client side, serving CAR files by token with range support, as an
//!   axum router and over libp2p.
//! - [`p2p`]: HTTP over libp2p streams on the node's `market_core::host::Host`.

mod error;
mod fetch;
mod manager;
pub mod p2p;
mod policy;
mod serve;
mod source;
mod store;
#[cfg(feature = "testing")]
pub mod testing;
mod transfer;

pub use error::TransferError;
pub use manager::{
    Completed, MAX_INDEXED_BLOCKS, RetryPolicy, TransferConfig, TransferManager, staging_file,
};
pub use p2p::{P2pListener, TRANSFER_PROTOCOL, transfer_url};
pub use policy::{AddressPolicy, is_public};
pub use serve::{CAR_CONTENT_TYPE, CarServer, parse_range};
pub use source::Source;
pub use transfer::{
    Chunk, TransferEvent, TransferId, TransferRecord, TransferRequest, TransferState,
};
