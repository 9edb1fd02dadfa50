use market_core::Cid;

/// Why a piece-store or index operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PieceStoreError {
    /// No piece with this CID is stored.
    #[error("piece {0} not found")]
    NotFound(Box<Cid>),
    /// The CID is not a v1 piece CID (fil-commitment-unsealed, sha2-256-trunc254-padded).
    #[error("not a piece CID: {0}")]
    InvalidPieceCid(String),
    /// The bytes do not hash to the piece CID they were promised to be.
    #[error("commP mismatch: expected {expected}, computed {actual}")]
    CommPMismatch {
        /// The piece CID the deal promised.
        expected: Box<Cid>,
        /// The piece CID of the bytes received.
        actual: Box<Cid>,
    },
    /// The payload does not fit the promised piece size, or is too short to be a piece.
    #[error("invalid piece size: {0}")]
    InvalidSize(String),
    /// The requested range lies outside the payload.
    #[error("range {start}..{end} is outside the payload of {len} bytes")]
    RangeNotSatisfiable {
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// Payload length.
        len: u64,
    },
    /// I/O failed: disk full, permissions, a reader that broke off.
    #[error("piece store i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The index database failed.
    #[error("piece index: {0}")]
    Index(#[from] rusqlite::Error),
    /// A shared index database (Postgres) failed or could not be reached.
    #[error("piece index database: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    /// A stored record could not be read back.
    #[error("corrupt piece record: {0}")]
    Corrupt(String),
    /// A background task panicked or was cancelled.
    #[error("piece store task failed: {0}")]
    Task(String),
    /// The object store (S3) refused or failed a request: credentials, bucket, network.
    #[error("piece store backend: {0}")]
    Backend(#[from] object_store::Error),
    /// The store's configuration is unusable (an endpoint that is no URL, a part size S3
    /// refuses).
    #[error("piece store config: {0}")]
    Config(String),
    /// No store can take a piece: every one is read-only or lacks the space.
    #[error("no piece store can take {0} bytes (every store is read-only or full)")]
    NoStoreFits(u64),
    /// A blocking task (file I/O, hashing) panicked or was cancelled.
    #[error("blocking task failed")]
    Join(#[from] tokio::task::JoinError),
    /// A database query's blocking task panicked or was cancelled.
    #[error(transparent)]
    DbTask(#[from] market_core::db::DbTaskError),
}
