//! A scriptable HTTP source for tests (feature `testing`): serves bytes from memory, records
//! the ranges asked for, and can break or hang a response part-way, like a server that is
//! killed or a network that stalls.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;

use crate::{AddressPolicy, RetryPolicy, TransferConfig, parse_range};

/// Transfer settings for tests: loopback allowed, retries in milliseconds, several
/// connections from 1 MiB, checkpoints every 256 KiB, stalls detected after 30 s.
pub fn config(staging_dir: impl Into<std::path::PathBuf>) -> TransferConfig {
    let mut c = TransferConfig::new(staging_dir);
    c.policy = AddressPolicy {
        allow_private: true,
    };
    c.retry = RetryPolicy {
        min_backoff: std::time::Duration::from_millis(20),
        max_backoff: std::time::Duration::from_millis(200),
        factor: 2.0,
        max_attempts: 5,
    };
    c.multi_connection_threshold = 1 << 20;
    c.checkpoint_bytes = 256 << 10;
    c.stall_timeout = std::time::Duration::from_secs(30);
    c
}

/// The first byte a `Range: bytes=a-…` header asks for.
pub fn range_start(header: &str) -> Option<u64> {
    parse_range(header, u64::MAX).map(|(start, _)| start)
}

/// What the next responses do.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Break the connection after sending this many bytes of a response (once).
    pub cut_after: Option<u64>,
    /// Stop sending (but keep the connection open) after this many bytes, until cleared.
    pub hang_after: Option<u64>,
    /// Answer every request with this status instead.
    pub status: Option<u16>,
    /// Ignore `Range` and always send the whole body with 200 (as Boost's libp2p server).
    pub ignore_range: bool,
}

#[derive(Debug, Default)]
struct ServerState {
    data: Vec<u8>,
    script: Script,
    requests: Vec<Option<String>>,
}

/// A scriptable source. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ScriptedSource {
    state: Arc<Mutex<ServerState>>,
}

impl ScriptedSource {
    /// Serves `data`.
    pub fn new(data: Vec<u8>) -> Self {
        let s = Self::default();
        s.lock().data = data;
        s
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces the script.
    pub fn set(&self, script: Script) {
        self.lock().script = script;
    }

    /// The `Range` header of every request so far (`None`: none sent).
    pub fn requests(&self) -> Vec<Option<String>> {
        self.lock().requests.clone()
    }

    /// The router.
    pub fn router(&self) -> Router {
        Router::new().fallback(serve).with_state(self.clone())
    }

    /// Serves on an ephemeral loopback port; returns the URL.
    pub async fn serve(&self) -> std::io::Result<String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let router = self.router();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(format!("http://{addr}/data.car"))
    }
}

async fn serve(State(src): State<ScriptedSource>, headers: HeaderMap) -> Response {
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (data, script) = {
        let mut s = src.lock();
        s.requests.push(range.clone());
        let script = s.script.clone();
        s.script.cut_after = None;
        (Bytes::from(s.data.clone()), script)
    };
    if let Some(code) = script.status {
        return StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response();
    }
    let len = data.len() as u64;
    let (code, start, end) = match range.filter(|_| !script.ignore_range) {
        None => (StatusCode::OK, 0, len),
        Some(r) => match parse_range(&r, len) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
            None => {
                return Response::builder()
                    .status(StatusCode::RANGE_NOT_SATISFIABLE)
                    .header(header::CONTENT_RANGE, format!("bytes */{len}"))
                    .body(Body::empty())
                    .unwrap_or_default();
            }
        },
    };
    let body = data.slice(start as usize..end as usize);
    let limit = script
        .cut_after
        .or(script.hang_after)
        .map_or(body.len(), |n| (n as usize).min(body.len()));
    let head = futures::stream::iter(
        body.slice(..limit)
            .chunks(64 << 10)
            .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
            .collect::<Vec<_>>(),
    );
    let tail: futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>> =
        if script.cut_after.is_some() && limit < body.len() {
            // Give the client time to read what was sent before the connection resets.
            futures::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                Err(std::io::Error::other("server killed"))
            })
            .boxed()
        } else if script.hang_after.is_some() && limit < body.len() {
            // Hold the connection open without sending: a stall.
            futures::stream::pending().boxed()
        } else {
            futures::stream::empty().boxed()
        };
    let mut builder = Response::builder()
        .status(code)
        .header(header::CONTENT_LENGTH, end - start);
    if code == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!("bytes {start}-{}/{len}", end - 1),
        );
    }
    builder
        .body(Body::from_stream(head.chain(tail)))
        .unwrap_or_default()
}
