use market_core::rpc::RpcError;
use piecestore::PieceStoreError;
use piecestore::unixfs::UnixFsError;

/// Why a retrieval operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RetrievalError {
    /// The libp2p exchange failed.
    #[error("libp2p exchange")]
    Network(#[from] RpcError),
    /// A libp2p query but the client has no libp2p host.
    #[error("no libp2p host is configured for queries")]
    NoLibp2pHost,
    /// The HTTP server answered with an error status.
    #[error("HTTP {status}: {body}")]
    Http {
        /// Status code.
        status: u16,
        /// What the server said (truncated).
        body: String,
    },
    /// The HTTP request could not be made or its body broke off.
    #[error("HTTP transport")]
    Transport(#[from] reqwest::Error),
    /// The body ended before the length the server announced.
    #[error("body ended after {got} of {announced} bytes")]
    ShortBody {
        /// Bytes received.
        got: u64,
        /// `Content-Length`.
        announced: u64,
    },
    /// The piece received cannot have a piece CID (too short or too large).
    #[error("commP of the received piece")]
    CommP(#[from] commp::CommPError),
    /// The provider offers no HTTP retrieval.
    #[error("the provider advertises no HTTP retrieval endpoint")]
    NoHttp,
    /// A URL or multiaddr is unusable.
    #[error("invalid address: {0}")]
    Address(String),
    /// The bytes received hash to another piece.
    #[error("commP mismatch: asked for {expected}, received {actual}")]
    CommPMismatch {
        /// The piece asked for.
        expected: Box<market_core::Cid>,
        /// The piece the bytes make.
        actual: Box<market_core::Cid>,
    },
    /// The response is larger than allowed.
    #[error("response exceeds {0} bytes")]
    TooLarge(u64),
    /// The CAR or DAG received is invalid, incomplete or corrupt.
    #[error("DAG: {0}")]
    Dag(#[from] UnixFsError),
    /// The piece store failed.
    #[error("piece store: {0}")]
    PieceStore(#[from] PieceStoreError),
    /// Neither the piece store nor any sealer holding one of its deals has the piece.
    #[error("no unsealed copy of {0}")]
    NoUnsealedCopy(Box<market_core::Cid>),
    /// No provider was given or found.
    #[error("no provider offers it over HTTP")]
    NoProviders,
    /// Every provider tried failed; why, in the order they were tried.
    #[error("all {} providers failed: {}", .0.len(), describe(.0))]
    AllProvidersFailed(Vec<ProviderFailure>),
    /// A provider answered a range request with another range.
    #[error("asked for bytes from {asked}, got {got:?}")]
    WrongRange {
        /// The offset asked for.
        asked: u64,
        /// The `Content-Range` received.
        got: String,
    },
    /// Local I/O failed (disk full, permissions).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// One provider's failure in a fetch that tried several.
#[derive(Debug)]
pub struct ProviderFailure {
    /// The provider (its peer id, or its URL when it has none).
    pub provider: String,
    /// What went wrong.
    pub error: RetrievalError,
}

fn describe(failures: &[ProviderFailure]) -> String {
    failures
        .iter()
        .map(|f| format!("{}: {}", f.provider, market_core::report(&f.error)))
        .collect::<Vec<_>>()
        .join("; ")
}
