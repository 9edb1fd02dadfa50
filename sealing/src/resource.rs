//! `GET /resource?resource-id=<pieceCid>`: piece bytes for an authorised sealer, as droplet
//! serves them to damocles.
//!
//! The body is the deal payload as stored (unpadded, `PayloadSize` bytes); the sealer pads
//! it to the piece size itself. A `Range` header gets that range (`206`). The token comes
//! in `Authorization: Bearer` or `?token=` (sophon-auth's two forms); without a valid one
//! the answer is `401` with an empty body. Errors are droplet's: `400 resource is empty`,
//! `404 resource <id> not found`, `405` for other methods.
//!
//! `PUT /resource?resource-id=<pieceCid>` (a `write` token) is where a sealer uploads a piece
//! it unsealed for the market (the `Dest` of a `SectorsUnsealPiece` event): the body is
//! stored only if it hashes to the piece CID at the deal's piece size (`&size=<padded>`, or
//! the size the piece index knows).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use market_core::jwt;
use piecestore::{ByteRange, PieceStore};
use retrieval_market::range::parse_ranges;
use tokio_util::io::ReaderStream;

/// What `/resource` serves.
#[derive(Clone)]
pub struct ResourceState {
    /// The JWT secret tokens are checked against.
    pub secret: Vec<u8>,
    /// Where pieces are read from (and unsealed pieces stored).
    pub pieces: Arc<dyn PieceStore>,
    /// The piece index, for the size of a piece being uploaded.
    pub index: Arc<dyn piecestore::PieceIndex>,
}

/// The `/resource` route.
pub fn router(state: ResourceState) -> axum::Router {
    axum::Router::new()
        .route("/resource", axum::routing::any(resource))
        .with_state(Arc::new(state))
}

/// The bearer token of a request: the `Authorization` header, else `?token=`.
pub fn request_token<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<&'a str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .or(query)
}

#[derive(serde::Deserialize)]
struct ResourceQuery {
    #[serde(rename = "resource-id")]
    resource_id: Option<String>,
    token: Option<String>,
    size: Option<u64>,
}

fn text(status: StatusCode, body: String) -> Response {
    (status, body).into_response()
}

async fn resource(
    State(state): State<Arc<ResourceState>>,
    method: Method,
    headers: HeaderMap,
    Query(q): Query<ResourceQuery>,
    body: Body,
) -> Response {
    let token = request_token(&headers, q.token.as_deref());
    let Some(perms) = token.and_then(|t| jwt::verify(&state.secret, t).ok()) else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    if !jwt::allows(&perms, jwt::READ) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if method == Method::PUT {
        if !jwt::allows(&perms, jwt::WRITE) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        return upload(&state, &q, body).await;
    }
    if method != Method::GET && method != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("method {method} is not supported\n"),
        );
    }
    let id = match q.resource_id.as_deref().map(str::trim) {
        None | Some("") => return text(StatusCode::BAD_REQUEST, "resource is empty".into()),
        Some(id) => id.to_owned(),
    };
    let not_found = || {
        text(
            StatusCode::NOT_FOUND,
            format!("resource {} not found", market_core::clip(&id)),
        )
    };
    let Ok(piece) = commp::parse_cid(&id).map(|c| market_core::cid::widen(&c)) else {
        return not_found();
    };
    let meta = match state.pieces.stat(&piece).await {
        Ok(Some(m)) => m,
        Ok(None) => return not_found(),
        Err(e) => {
            tracing::warn!(%piece, error = %market_core::report(&e), "resource: piece store");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "piece store failed".into(),
            );
        }
    };
    let len = meta.payload_size;
    let (status, range) = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => (StatusCode::OK, ByteRange::new(0, len)),
        Some(h) => match parse_ranges(h, len).as_deref() {
            Ok([one]) => (StatusCode::PARTIAL_CONTENT, *one),
            Ok(_) | Err(_) => {
                return (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{len}"))],
                    "one satisfiable range at a time\n",
                )
                    .into_response();
            }
        },
    };
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, range.len());
    if status == StatusCode::PARTIAL_CONTENT {
        builder = builder.header(
            header::CONTENT_RANGE,
            format!(
                "bytes {}-{}/{len}",
                range.start,
                range.end.saturating_sub(1)
            ),
        );
    }
    if method == Method::HEAD {
        return builder
            .body(Body::empty())
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    }
    let whole = range.start == 0 && range.end == len;
    let reader = match state.pieces.get(&piece, (!whole).then_some(range)).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(%piece, error = %market_core::report(&e), "resource: reading piece");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "reading the piece failed".into(),
            );
        }
    };
    tracing::debug!(%piece, start = range.start, end = range.end, "resource: serving piece to a sealer");
    builder
        .body(Body::from_stream(ReaderStream::with_capacity(
            reader,
            1 << 20,
        )))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Stores an uploaded (unsealed) piece after checking its commP.
async fn upload(state: &ResourceState, q: &ResourceQuery, body: Body) -> Response {
    use futures::TryStreamExt;
    let Some(id) = q
        .resource_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    else {
        return text(StatusCode::BAD_REQUEST, "resource is empty".into());
    };
    let not_found = || {
        text(
            StatusCode::NOT_FOUND,
            format!("resource {} not found", market_core::clip(id)),
        )
    };
    let Ok(piece) = commp::parse_cid(id).map(|c| market_core::cid::widen(&c)) else {
        return not_found();
    };
    let size = match q.size {
        Some(n) => n,
        None => match state.index.piece(&piece).await {
            Ok(Some(r)) => r.meta.padded_size.get(),
            Ok(None) => return not_found(),
            Err(e) => {
                tracing::warn!(%piece, error = %market_core::report(&e), "resource: piece index");
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "piece index failed".into(),
                );
            }
        },
    };
    let Ok(padded_size) = commp::PaddedPieceSize::new(size) else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("size {size} is not a piece size"),
        );
    };
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    let expect = piecestore::ExpectedPiece {
        piece_cid: piece,
        padded_size,
    };
    match state.pieces.put(Box::pin(reader), Some(expect)).await {
        Ok(meta) => {
            tracing::info!(%piece, bytes = meta.payload_size, "resource: piece uploaded by a sealer");
            StatusCode::OK.into_response()
        }
        Err(e) => {
            tracing::warn!(%piece, error = %market_core::report(&e), "resource: upload refused");
            text(StatusCode::BAD_REQUEST, market_core::report(&e))
        }
    }
}
