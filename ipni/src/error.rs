//! What can go wrong publishing to IPNI.

use market_core::db::DbTaskError;

/// IPNI errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IpniError {
    /// A value breaks a limit of the schema (sizes, counts) or a block is not what its CID says.
    #[error("invalid: {0}")]
    Invalid(String),
    /// A block could not be encoded.
    #[error("encoding: {0}")]
    Encode(String),
    /// A block or an answer could not be decoded.
    #[error("decoding: {0}")]
    Decode(String),
    /// Signing failed.
    #[error("signing: {0}")]
    Sign(String),
    /// A signature does not verify.
    #[error("bad signature: {0}")]
    BadSignature(String),
    /// The ad database failed.
    #[error("ad store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A shared ad store's database (Postgres) failed or could not be reached.
    #[error("ad store database: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    /// The database task panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] DbTaskError),
    /// An indexer could not be reached or refused a request.
    #[error("indexer {url}: {message}")]
    Indexer {
        /// Which indexer.
        url: String,
        /// What it said, or why it could not be asked.
        message: String,
    },
}
