use std::time::Duration;

/// Why a transfer could not be admitted, or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransferError {
    /// The URL is not `http(s)://…` or `libp2p:///…/p2p/<peer>`.
    #[error("invalid transfer URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The URL points at an address the policy forbids (loopback, private, link-local…).
    #[error("transfer address {0} is not allowed (private or local network)")]
    ForbiddenAddress(String),
    /// Admitting the transfer would exceed the staging space.
    #[error("staging area full: {needed} bytes needed, {available} of {limit} available")]
    StagingFull {
        /// Bytes the transfer needs.
        needed: u64,
        /// Bytes still free.
        available: u64,
        /// The configured limit.
        limit: u64,
    },
    /// Admitting the transfer would exceed what one host may stage.
    #[error("staging limit for host {host} reached: {needed} bytes needed, {available} available")]
    HostStagingFull {
        /// The host.
        host: String,
        /// Bytes the transfer needs.
        needed: u64,
        /// Bytes that host may still stage.
        available: u64,
    },
    /// The server refused the request (4xx); retrying will not help.
    #[error("server answered {status}")]
    Refused {
        /// HTTP status.
        status: u16,
    },
    /// The server has fewer bytes than the deal says.
    #[error("transfer truncated: expected {expected} bytes, the source has {available}")]
    Truncated {
        /// Bytes the deal says.
        expected: u64,
        /// Bytes the source offers.
        available: u64,
    },
    /// The server sent more bytes than asked for.
    #[error("transfer oversized: the source sent more than the {expected} bytes expected")]
    Oversized {
        /// Bytes the deal says.
        expected: u64,
    },
    /// Every retry failed.
    #[error("transfer failed after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// The transfer ran past its time limit.
    #[error("transfer exceeded its time limit of {0:?}")]
    TimedOut(Duration),
    /// The transfer was cancelled.
    #[error("transfer cancelled")]
    Cancelled,
    /// No transfer with this id.
    #[error("no transfer {0}")]
    NotFound(String),
    /// A transfer with this id already exists with other parameters.
    #[error("transfer {0} already exists")]
    Duplicate(String),
    /// Writing or reading the staging file failed (disk full, permissions).
    #[error("staging i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The transfer database failed.
    #[error("transfer database: {0}")]
    Db(#[from] rusqlite::Error),
    /// A stored record could not be read back.
    #[error("corrupt transfer record: {0}")]
    Corrupt(String),
    /// libp2p failed (dial, stream, listen), or no host was configured.
    #[error("libp2p transfer")]
    Libp2p(#[source] market_core::host::HostError),
    /// A `libp2p://` source but no libp2p host to dial it from.
    #[error("no libp2p host is configured for libp2p transfers")]
    NoLibp2pHost,
    /// Hashing the received bytes failed, or the payload cannot be a piece of the given size.
    #[error("piece: {0}")]
    Piece(#[from] piecestore::PieceStoreError),
    /// A background task panicked or was cancelled.
    #[error("transfer task failed: {0}")]
    Task(String),
    /// The HTTP client could not be built (TLS set-up).
    #[error("cannot build the HTTP client")]
    HttpClient(#[source] reqwest::Error),
    /// A blocking task (file I/O, hashing) panicked or was cancelled.
    #[error("blocking task failed")]
    Join(#[from] tokio::task::JoinError),
    /// A database query's blocking task panicked or was cancelled.
    #[error(transparent)]
    DbTask(#[from] market_core::db::DbTaskError),
}

impl TransferError {
    /// Whether the staging disk (or the database beside it) is full: worth waiting for
    /// space rather than failing the transfer.
    pub fn is_disk_full(&self) -> bool {
        match self {
            TransferError::Io(e) => e.kind() == std::io::ErrorKind::StorageFull,
            TransferError::Piece(piecestore::PieceStoreError::Io(e)) => {
                e.kind() == std::io::ErrorKind::StorageFull
            }
            TransferError::Db(rusqlite::Error::SqliteFailure(e, _)) => {
                e.code == rusqlite::ErrorCode::DiskFull
            }
            _ => false,
        }
    }
}
