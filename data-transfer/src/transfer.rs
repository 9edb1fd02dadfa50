//! What a transfer is: its id, request, state and progress.

use std::fmt;
use std::str::FromStr;

use commp::PaddedPieceSize;
use market_core::Cid;
use serde::{Deserialize, Serialize};

use crate::TransferError;

/// A transfer's id: letters, digits, `-` and `_`, at most 64 (a deal UUID fits). It names the
/// staging file, so nothing else is allowed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TransferId(String);

impl TransferId {
    /// Checks and wraps `id`.
    pub fn new(id: impl Into<String>) -> Result<Self, TransferError> {
        let id = id.into();
        if id.is_empty()
            || id.len() > 64
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(TransferError::InvalidUrl {
                url: id.chars().take(80).collect(),
                reason: "a transfer id is 1 to 64 letters, digits, '-' or '_'".into(),
            });
        }
        Ok(Self(id))
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRequest {
    /// The transfer's id (providers use the deal UUID).
    pub id: TransferId,
    /// `http(s)://…` or `libp2p:///…/p2p/<peer>`.
    pub url: String,
    /// Headers to send (Boost's `HttpRequest.Headers`, typically `Authorization`).
    pub headers: Vec<(String, String)>,
    /// Exact payload size in bytes (Boost's `Transfer.Size`).
    pub size: u64,
    /// Padded piece size the commP is computed for (the proposal's piece size); minimal if
    /// `None`.
    pub padded_size: Option<PaddedPieceSize>,
}

/// Where a transfer is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransferState {
    /// Waiting for a concurrency slot.
    Queued,
    /// Receiving bytes.
    Running,
    /// All bytes received, fsynced and hashed.
    Completed,
    /// Gave up; see the error.
    Failed,
    /// Cancelled by the caller.
    Cancelled,
}

impl TransferState {
    /// Whether the transfer will not change any more.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }
}

impl FromStr for TransferState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "queued" => Self::Queued,
            "running" => Self::Running,
            "completed" => Self::Completed,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            other => return Err(format!("unknown transfer state {other:?}")),
        })
    }
}

impl fmt::Display for TransferState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One connection's share of the file: bytes `start..end`, of which `done` are durably
/// written (fsynced before this was recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Bytes from `start` durably on disk.
    pub done: u64,
}

impl Chunk {
    /// Splits `size` bytes into `n` nearly equal chunks.
    pub(crate) fn split(size: u64, n: usize) -> Vec<Self> {
        let n = (n.max(1) as u64).min(size.max(1));
        let step = size.div_ceil(n);
        (0..n)
            .map(|i| Self {
                start: i * step,
                end: ((i + 1) * step).min(size),
                done: 0,
            })
            .filter(|c| c.end > c.start)
            .collect()
    }

    /// Whether every byte is in.
    pub fn is_complete(&self) -> bool {
        self.start + self.done >= self.end
    }
}

/// A transfer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferRecord {
    /// What was asked.
    pub request: TransferRequest,
    /// The source host (per-host staging limits).
    pub host: String,
    /// Durable progress per connection.
    pub chunks: Vec<Chunk>,
    /// Current state.
    pub state: TransferState,
    /// Why it failed, if it did.
    pub error: String,
    /// The piece CID of the received bytes, once completed.
    pub piece_cid: Option<Cid>,
}

impl TransferRecord {
    /// Bytes durably received.
    pub fn received(&self) -> u64 {
        self.chunks.iter().map(|c| c.done).sum()
    }
}

/// A progress or state change, broadcast to subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferEvent {
    /// Which transfer.
    pub id: TransferId,
    /// Its state.
    pub state: TransferState,
    /// Bytes received so far (written, not necessarily fsynced yet).
    pub received: u64,
    /// Bytes expected.
    pub total: u64,
    /// The failure, when `state` is `Failed`; what it waits for (disk space), when `Running`.
    pub error: String,
}
