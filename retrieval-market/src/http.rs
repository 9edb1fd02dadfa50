//! The HTTP retrieval server: an axum [`Router`] an application mounts where it likes.
//!
//! - `GET|HEAD /piece/{pieceCid}` (v1 or v2 piece CIDs): the unpadded piece, i.e. the payload
//!   followed by zeros up to the piece's unpadded size, with single and multiple byte ranges
//!   and the headers booster-http sends (`application/piece`, quoted-CID ETag, immutable
//!   caching, constant Last-Modified), gzip-encoded when asked and no range is.
//! - `GET|HEAD /ipfs/{cid}[/path]`: an IPFS trustless gateway answering CARs and raw blocks
//!   from the piece index ([`crate::gateway`]).
//! - `GET /info`: `{"Version": …}`.
//!
//! Errors are short `text/plain` bodies: 400 for malformed requests (a gateway request that
//! names no format either way among them), 404 for unknown data, 412 for an unknown root
//! asked `only-if-cached`, 501 for `/ipns/`,
//! 416 for ranges outside the piece, 429 (with `Retry-After`) when
//! [`HttpConfig::max_concurrent`] requests are already being served (their bodies count
//! until they finish), and with a [`Denylist`] 451 for listed pieces, roots and path targets
//! (503 until the list is loaded); a listed block below the target breaks a CAR off.

use std::collections::VecDeque;
use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use commp::PieceCidV2;
use futures::StreamExt;
use futures::stream::BoxStream;
use market_core::Cid;
use piecestore::ByteRange;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower_http::CompressionLevel;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};

use crate::RetrievalError;
use crate::denylist::{Denylist, Verdict};
use crate::gateway::{self, CarSink, Format, GatewayError};
use crate::provider::{RetrievalProvider, ServablePiece};
use crate::range::parse_ranges;

/// `Cache-Control` for content-addressed answers.
pub const IMMUTABLE: &str = "public, max-age=29030400, immutable";
/// booster-http's constant `Last-Modified`.
const EPOCH_DATE: &str = "Thu, 01 Jan 1970 00:00:00 GMT";
/// Read size when streaming pieces, with one more read in flight while a chunk is sent
/// ([`RetrievalProvider::piece_chunks`]): 8 MiB of buffers per request. In the retrieval bench
/// `/piece` of 1 GiB took 780 ms with 1 MiB sequential reads, 609-673 ms with tokio's 2 MiB
/// ones, 584-614 ms with 4 MiB positional reads overlapping the sends (8 MiB and three in
/// flight were no faster).
const CHUNK: usize = 4 << 20;

/// HTTP server settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    /// Serve `/piece/`.
    pub serve_pieces: bool,
    /// Serve `/ipfs/` (trustless gateway).
    pub serve_cars: bool,
    /// Requests served at once; more get 429.
    pub max_concurrent: usize,
    /// Content refused with 451 (none: nothing is refused).
    pub denylist: Option<Denylist>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            serve_pieces: true,
            serve_cars: true,
            max_concurrent: 64,
            denylist: None,
        }
    }
}

impl HttpConfig {
    /// Serves `/piece/` or not.
    pub fn with_serve_pieces(mut self, on: bool) -> Self {
        self.serve_pieces = on;
        self
    }

    /// Serves `/ipfs/` (the trustless gateway) or not.
    pub fn with_serve_cars(mut self, on: bool) -> Self {
        self.serve_cars = on;
        self
    }

    /// Refuses what `list` names with 451 (503 until it is loaded).
    pub fn with_denylist(mut self, list: Option<Denylist>) -> Self {
        self.denylist = list;
        self
    }

    /// Serves at most `n` retrievals at once (429 beyond).
    pub fn with_max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n;
        self
    }
}

struct AppState {
    provider: RetrievalProvider,
    config: HttpConfig,
    permits: Arc<Semaphore>,
}

type Shared = State<Arc<AppState>>;

/// The retrieval routes over `provider`.
pub fn router(provider: RetrievalProvider, config: HttpConfig) -> Router {
    let permits = Arc::new(Semaphore::new(config.max_concurrent.max(1)));
    let state = Arc::new(AppState {
        provider,
        config,
        permits,
    });
    // gzip for clients that ask (booster-http does), fastest level: the padding of a piece
    // compresses to nothing at any level, and the payload is mostly compressed already.
    // Ranges are never compressed (tower-http skips responses with Content-Range; multipart
    // ones are excluded here), and a compressed body gets its own ETag.
    let gzip = CompressionLayer::new()
        .gzip(true)
        .quality(CompressionLevel::Fastest)
        .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("multipart/")));
    let pieces = Router::new()
        .route("/piece/{cid}", get(piece))
        .route_layer(gzip)
        .route_layer(axum::middleware::map_response(gzip_etag));
    Router::new()
        .merge(pieces)
        .route("/ipfs/{*rest}", get(ipfs))
        .route("/ipns/{*rest}", get(ipns))
        .route("/info", get(info))
        .with_state(state)
}

/// The ETag of a gzip-encoded piece: another representation, so another tag.
async fn gzip_etag(mut r: Response) -> Response {
    let gz = r
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| v == "gzip");
    if let Some(tag) = r.headers().get(header::ETAG).and_then(|v| v.to_str().ok())
        && gz
    {
        let tagged = header_value(&format!("{}.gz\"", tag.trim_end_matches('"')));
        r.headers_mut().insert(header::ETAG, tagged);
    }
    r
}

fn plain(status: StatusCode, msg: impl std::fmt::Display) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{msg}\n"),
    )
        .into_response()
}

fn permit(state: &AppState) -> Option<OwnedSemaphorePermit> {
    state.permits.clone().try_acquire_owned().ok()
}

/// Seconds a refused client is asked to wait: retrievals of a few MiB finish in well under
/// one, so a client that honours it gets in on its next try.
const RETRY_AFTER_SECS: &str = "1";

fn busy() -> Response {
    let mut r = plain(
        StatusCode::TOO_MANY_REQUESTS,
        "too many retrievals in progress; retry later",
    );
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from_static(RETRY_AFTER_SECS),
    );
    r
}

async fn info() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "Version": env!("CARGO_PKG_VERSION") }).to_string(),
    )
        .into_response()
}

/// The denylist's answer for `cids`, as a response when it refuses them.
fn denied(state: &AppState, cids: &[&Cid]) -> Option<Response> {
    let list = state.config.denylist.as_ref()?;
    match list.check(cids) {
        Verdict::Allowed => None,
        Verdict::Denied => Some(plain(
            StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
            "this content is denylisted",
        )),
        _ => {
            let mut r = plain(StatusCode::SERVICE_UNAVAILABLE, "the denylist is loading");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("30"));
            Some(r)
        }
    }
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

/// A v1 piece CID, or the v1 CID of a v2 piece CID.
fn piece_cid(s: &str) -> Result<Cid, String> {
    let cid = Cid::from_str(s)
        .map_err(|e| format!("invalid piece CID {:?}: {e}", market_core::clip(s)))?;
    if piecestore::check_piece_cid(&cid).is_ok() {
        return Ok(cid);
    }
    PieceCidV2::from_cid(&cid)
        .map(|v2| market_core::cid::widen(&v2.to_v1()))
        .map_err(|_| {
            format!(
                "{} is not a piece CID (v1 baga… or v2 bafkzcib…)",
                market_core::clip(s)
            )
        })
}

fn etag_matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let gz = format!("{}.gz\"", etag.trim_end_matches('"'));
            v.split(',')
                .map(str::trim)
                .any(|t| t == etag || t == gz || t == "*")
        })
}

/// What a piece body is made of.
enum Part {
    Bytes(Bytes),
    Range(ByteRange),
}

/// Streams `parts`, opening each range's reader only when it is reached.
fn piece_body(
    provider: RetrievalProvider,
    piece: ServablePiece,
    parts: Vec<Part>,
    permit: OwnedSemaphorePermit,
) -> Body {
    struct St {
        provider: RetrievalProvider,
        piece: ServablePiece,
        parts: VecDeque<Part>,
        current: Option<BoxStream<'static, Result<Bytes, RetrievalError>>>,
        _permit: OwnedSemaphorePermit,
    }
    let st = St {
        provider,
        piece,
        parts: parts.into(),
        current: None,
        _permit: permit,
    };
    let stream = futures::stream::unfold(st, |mut st| async move {
        loop {
            if let Some(cur) = &mut st.current {
                match cur.next().await {
                    Some(Ok(b)) => return Some((Ok(b), st)),
                    Some(Err(e)) => {
                        tracing::warn!(piece = %st.piece.piece_cid, error = %e, "piece read failed mid-response");
                        st.parts.clear();
                        st.current = None;
                        return Some((Err(std::io::Error::other(e.to_string())), st));
                    }
                    None => st.current = None,
                }
            }
            match st.parts.pop_front()? {
                Part::Bytes(b) => return Some((Ok(b), st)),
                Part::Range(r) => match st.provider.piece_chunks(&st.piece, r, CHUNK).await {
                    Ok(chunks) => st.current = Some(chunks),
                    Err(e) => {
                        tracing::warn!(piece = %st.piece.piece_cid, error = %e, "piece read failed mid-response");
                        st.parts.clear();
                        return Some((Err(std::io::Error::other(e.to_string())), st));
                    }
                },
            }
        }
    });
    // Fused: a body may be polled again after its end (the gzip encoder does).
    Body::from_stream(stream.fuse())
}

async fn piece(
    State(state): Shared,
    method: Method,
    Path(cid_str): Path<String>,
    headers: HeaderMap,
) -> Response {
    if !state.config.serve_pieces {
        return plain(StatusCode::NOT_FOUND, "piece retrieval is disabled");
    }
    let Some(permit) = permit(&state) else {
        return busy();
    };
    let cid = match piece_cid(&cid_str) {
        Ok(c) => c,
        Err(e) => return plain(StatusCode::BAD_REQUEST, e),
    };
    // Listed under either spelling of the piece CID.
    let asked = Cid::from_str(&cid_str).unwrap_or(cid);
    if let Some(r) = denied(&state, &[&cid, &asked]) {
        return r;
    }
    let piece = match state.provider.piece(&cid).await {
        Ok(Some(p)) => p,
        Ok(None) => return plain(StatusCode::NOT_FOUND, format!("piece {cid_str} not found")),
        Err(e) => return plain(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let total = piece.unpadded_size();
    let etag = format!("\"{cid_str}\"");
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/piece"),
    );
    h.insert(header::ETAG, header_value(&etag));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    h.insert(header::LAST_MODIFIED, HeaderValue::from_static(EPOCH_DATE));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    if etag_matches(&headers, &etag) {
        return (StatusCode::NOT_MODIFIED, h).into_response();
    }
    let ranges = match headers.get(header::RANGE).map(|v| v.to_str()) {
        None => None,
        Some(Err(_)) => return plain(StatusCode::BAD_REQUEST, "Range header is not ASCII"),
        Some(Ok(v)) => match parse_ranges(v, total) {
            // Like Go, serve everything when the ranges add up to more than the content.
            Ok(rs) if rs.iter().map(|r| r.len()).sum::<u64>() > total => None,
            Ok(rs) => Some(rs),
            Err(e) => {
                let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, e);
                r.headers_mut().insert(
                    header::CONTENT_RANGE,
                    header_value(&format!("bytes */{total}")),
                );
                return r;
            }
        },
    };
    let (status, parts, len) = match ranges.as_deref() {
        None => (
            StatusCode::OK,
            vec![Part::Range(ByteRange::new(0, total))],
            total,
        ),
        Some([r]) => {
            h.insert(
                header::CONTENT_RANGE,
                header_value(&format!("bytes {}-{}/{total}", r.start, r.end - 1)),
            );
            (StatusCode::PARTIAL_CONTENT, vec![Part::Range(*r)], r.len())
        }
        Some(rs) => {
            let boundary = hex::encode(rand::random::<[u8; 16]>());
            h.insert(
                header::CONTENT_TYPE,
                header_value(&format!("multipart/byteranges; boundary={boundary}")),
            );
            let mut parts = Vec::new();
            let mut len = 0;
            for (i, r) in rs.iter().enumerate() {
                let head = format!(
                    "{}--{boundary}\r\nContent-Type: application/piece\r\nContent-Range: bytes {}-{}/{total}\r\n\r\n",
                    if i == 0 { "" } else { "\r\n" },
                    r.start,
                    r.end - 1
                );
                len += head.len() as u64 + r.len();
                parts.push(Part::Bytes(Bytes::from(head)));
                parts.push(Part::Range(*r));
            }
            let tail = format!("\r\n--{boundary}--\r\n");
            len += tail.len() as u64;
            parts.push(Part::Bytes(Bytes::from(tail)));
            (StatusCode::PARTIAL_CONTENT, parts, len)
        }
    };
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if method == Method::HEAD {
        return (status, h).into_response();
    }
    let body = piece_body(state.provider.clone(), piece, parts, permit);
    (status, h, body).into_response()
}

fn gateway_error(e: GatewayError) -> Response {
    let status = match &e {
        GatewayError::BadRequest(_) => StatusCode::BAD_REQUEST,
        GatewayError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
        GatewayError::NotFound(_) => StatusCode::NOT_FOUND,
        GatewayError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
        GatewayError::Denied(_) => StatusCode::UNAVAILABLE_FOR_LEGAL_REASONS,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    plain(status, e)
}

/// Mutable names are not served: everything here is content-addressed.
async fn ipns() -> Response {
    gateway_error(GatewayError::Unsupported(
        "IPNS is not served: this trustless gateway answers /ipfs/ only".into(),
    ))
}

/// `Cache-Control: only-if-cached` in the request.
fn only_if_cached(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|d| d.trim().eq_ignore_ascii_case("only-if-cached"))
}

async fn ipfs(State(state): Shared, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    if !state.config.serve_cars {
        return plain(StatusCode::NOT_FOUND, "trustless gateway is disabled");
    }
    let Some(permit) = permit(&state) else {
        return busy();
    };
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    // The raw path, so that the gateway decodes percent-escapes once (axum's `Path` would
    // already have decoded them).
    let rest = uri.path().strip_prefix("/ipfs/").unwrap_or_default();
    let req = match gateway::parse_request(rest, uri.query(), accept) {
        Ok(r) => r,
        Err(e) => return gateway_error(e),
    };
    if let Some(r) = denied(&state, &[&req.root]) {
        return r;
    }
    // Everything served is local, so "only if cached" differs from a plain request only in
    // how an unknown root is answered.
    if only_if_cached(&headers) && matches!(state.provider.block(&req.root).await, Ok(None)) {
        return plain(
            StatusCode::PRECONDITION_FAILED,
            format!("{} is not here", req.root),
        );
    }
    let resolved = match gateway::resolve(&state.provider, &req.root, &req.path).await {
        Ok(r) => r,
        Err(e) => return gateway_error(e),
    };
    let on_path: Vec<&Cid> = resolved.path_blocks.iter().map(|(c, _)| c).collect();
    if let Some(r) = denied(&state, &[&[&resolved.target], &on_path[..]].concat()) {
        return r;
    }
    let mut h = HeaderMap::new();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert("X-Ipfs-Path", header_value(&format!("/ipfs/{rest}")));
    let target = resolved.target;
    if req.format == Format::Raw {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(gateway::RAW_MEDIA_TYPE),
        );
        h.insert(header::ETAG, header_value(&format!("\"{target}.raw\"")));
        let name = req.filename.unwrap_or_else(|| format!("{target}.bin"));
        h.insert(
            header::CONTENT_DISPOSITION,
            header_value(&format!("attachment; filename=\"{name}\"")),
        );
        h.insert(
            header::CONTENT_LENGTH,
            HeaderValue::from(resolved.block.len()),
        );
        if method == Method::HEAD {
            return (StatusCode::OK, h).into_response();
        }
        return (StatusCode::OK, h, resolved.block).into_response();
    }
    let dups = if req.dups { "y" } else { "n" };
    h.insert(
        header::CONTENT_TYPE,
        header_value(&format!(
            "{};version=1;order=dfs;dups={dups}",
            gateway::CAR_MEDIA_TYPE
        )),
    );
    let range = req
        .entity_bytes
        .map(|e| format!(".{}:{}", e.from, e.to.map_or("*".into(), |t| t.to_string())))
        .unwrap_or_default();
    h.insert(
        header::ETAG,
        header_value(&format!(
            "\"{target}.car.{}.{dups}{range}\"",
            req.scope.as_str()
        )),
    );
    let name = req
        .filename
        .clone()
        .unwrap_or_else(|| format!("{}.car", req.root));
    h.insert(
        header::CONTENT_DISPOSITION,
        header_value(&format!("attachment; filename=\"{name}\"")),
    );
    if method == Method::HEAD {
        // The same framing as the GET (a stream of unknown length, so no Content-Length),
        // not the `Content-Length: 0` an empty body would announce.
        let empty = futures::stream::empty::<Result<bytes::Bytes, std::io::Error>>();
        return (StatusCode::OK, h, Body::from_stream(empty)).into_response();
    }
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let provider = state.provider.clone();
    let deny = state.config.denylist.clone();
    tokio::spawn(async move {
        let _permit = permit;
        let Ok(sink) = CarSink::start(tx, &req.root, req.dups).await else {
            return;
        };
        // Blocks below the target are checked as they are reached: a listed one breaks
        // the response off.
        let mut sink = sink.with_denylist(deny);
        if let Err(e) =
            gateway::walk(&provider, resolved, req.scope, req.entity_bytes, &mut sink).await
        {
            tracing::info!(root = %req.root, error = %e, "CAR response cut short");
            sink.abort(&e).await;
        }
    });
    let stream = futures::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (StatusCode::OK, h, Body::from_stream(stream)).into_response()
}
