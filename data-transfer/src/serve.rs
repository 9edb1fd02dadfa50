//! The client side: serving deal CARs to providers over HTTP and over libp2p.
//!
//! Each file is registered under a random token; a provider presents it in
//! `Authorization: Basic base64(user:token)` (the user part is ignored), as Boost's client
//! server expects. Single byte ranges are honoured so a provider can resume.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use futures::{Stream, StreamExt};

use market_core::host::Host;

use crate::{P2pListener, TransferError};

/// Bytes per read of a served file; one more read is in flight while a chunk is sent (1 MiB
/// reads were no faster in the transfer bench and hold four times the memory per connection).
const READ_CHUNK: u64 = 256 << 10;

/// Content type of a CAR.
pub const CAR_CONTENT_TYPE: &str = "application/vnd.ipld.car";

/// Files served to providers, by token. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct CarServer {
    files: Arc<RwLock<HashMap<String, PathBuf>>>,
}

impl CarServer {
    /// An empty server.
    pub fn new() -> Self {
        Self::default()
    }

    /// Serves `path` to whoever presents `token`.
    pub fn add(&self, token: impl Into<String>, path: impl Into<PathBuf>) {
        self.files
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.into(), path.into());
    }

    /// Stops serving the file of `token`.
    pub fn remove(&self, token: &str) {
        self.files
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    /// The `Authorization` header value that unlocks `token`.
    pub fn auth_header(token: &str) -> String {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("fil-market:{token}"));
        format!("Basic {b}")
    }

    /// An axum router answering `GET` and `HEAD` on any path; mount it where you like.
    pub fn router(&self) -> Router {
        Router::new().fallback(serve).with_state(self.clone())
    }

    /// Serves the router on `host`'s transfer protocol until the host stops.
    pub fn serve_libp2p(&self, host: &Host) -> Result<tokio::task::JoinHandle<()>, TransferError> {
        let listener = P2pListener::new(host)?;
        let router = self.router();
        let limits = market_core::http::ServerLimits::default();
        Ok(tokio::spawn(market_core::http::serve(
            listener, router, limits,
        )))
    }

    fn lookup(&self, headers: &HeaderMap) -> Option<PathBuf> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let encoded = value.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let token = text.split_once(':').map_or(text.as_str(), |(_, t)| t);
        self.files
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }
}

/// Parses a single `bytes=a-b`, `bytes=a-` or `bytes=-n` range against `len`.
pub fn parse_range(value: &str, len: u64) -> Option<(u64, u64)> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            (len.saturating_sub(n), len)
        }
        (a, "") => (a.parse().ok()?, len),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.saturating_add(1).min(len),
        ),
    };
    (start < end && end <= len).then_some((start, end))
}

fn status(code: StatusCode) -> Response {
    code.into_response()
}

async fn serve(State(server): State<CarServer>, method: Method, headers: HeaderMap) -> Response {
    if method != Method::GET && method != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let Some(path) = server.lookup(&headers) else {
        return status(StatusCode::UNAUTHORIZED);
    };
    let Ok(Ok(file)) = tokio::task::spawn_blocking(move || std::fs::File::open(path)).await else {
        return status(StatusCode::NOT_FOUND);
    };
    let Ok(meta) = file.metadata() else {
        return status(StatusCode::INTERNAL_SERVER_ERROR);
    };
    let len = meta.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|v| parse_range(v, len));
    let (code, start, end) = match range {
        None => (StatusCode::OK, 0, len),
        Some(Some((s, e))) => (StatusCode::PARTIAL_CONTENT, s, e),
        Some(None) => {
            let mut r = status(StatusCode::RANGE_NOT_SATISFIABLE);
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let body = if method == Method::HEAD {
        Body::empty()
    } else {
        Body::from_stream(file_chunks(file, start, end))
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = code;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CAR_CONTENT_TYPE),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if code == StatusCode::PARTIAL_CONTENT
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    resp
}

/// Bytes `start..end` of `file` as chunks of positional reads, the next read running while
/// the last chunk is sent, each read's buffer sent as it is (no copy through a reader).
fn file_chunks(
    file: std::fs::File,
    start: u64,
    end: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let file = Arc::new(file);
    let ranges = (start..end)
        .step_by(READ_CHUNK as usize)
        .map(move |at| (at, (end - at).min(READ_CHUNK) as usize));
    futures::stream::iter(ranges)
        .map(move |(at, len)| {
            let file = file.clone();
            async move {
                tokio::task::spawn_blocking(move || piecestore::read_bytes_at(&file, at, len))
                    .await
                    .map_err(std::io::Error::other)?
            }
        })
        .buffered(2)
}
