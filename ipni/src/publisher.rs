//! The HTTP publisher indexers sync from (IPNI HTTP provider spec): `GET /ipni/v1/ad/head`
//! serves the signed head, `GET /ipni/v1/ad/{cid}` an ad or an entry chunk, as stored (the
//! indexer hashes what it gets against the CID). The same routes answer under
//! `/ipni-provider/{peer}/` (Curio's layout) for this provider.

use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cid::Cid;

use crate::provider::Inner;

/// The publisher routes of `inner`'s provider.
pub(crate) fn router(inner: Arc<Inner>) -> Router {
    Router::new()
        .route("/ipni/v1/ad/head", get(head))
        .route("/ipni/v1/ad/{cid}", get(block))
        .route("/ipni-provider/{peer}/ipni/v1/ad/head", get(peer_head))
        .route("/ipni-provider/{peer}/ipni/v1/ad/{cid}", get(peer_block))
        .with_state(inner)
}

async fn head(State(inner): State<Arc<Inner>>) -> Response {
    let provider = inner.peer.to_string();
    let head = match inner.store.head(&provider).await {
        Ok(Some(h)) => h,
        Ok(None) => return StatusCode::NO_CONTENT.into_response(),
        Err(e) => return internal(e),
    };
    match crate::sign::SignedHead::sign(head, Some(inner.config.topic.clone()), &inner.key)
        .and_then(|h| h.encode())
    {
        Ok(body) => json(body),
        Err(e) => internal(e),
    }
}

async fn block(State(inner): State<Arc<Inner>>, Path(cid): Path<String>) -> Response {
    let Ok(cid) = Cid::from_str(&cid) else {
        return (StatusCode::BAD_REQUEST, "invalid request: not a cid").into_response();
    };
    match inner.store.block(cid).await {
        Ok(Some(data)) => json(data),
        Ok(None) => (StatusCode::NOT_FOUND, "cid not found").into_response(),
        Err(e) => internal(e),
    }
}

async fn peer_head(State(inner): State<Arc<Inner>>, Path(peer): Path<String>) -> Response {
    if peer != inner.peer.to_string() {
        return (StatusCode::NOT_FOUND, "unknown provider").into_response();
    }
    head(State(inner)).await
}

async fn peer_block(
    State(inner): State<Arc<Inner>>,
    Path((peer, cid)): Path<(String, String)>,
) -> Response {
    if peer != inner.peer.to_string() {
        return (StatusCode::NOT_FOUND, "unknown provider").into_response();
    }
    block(State(inner), Path(cid)).await
}

fn json(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn internal(e: crate::IpniError) -> Response {
    tracing::warn!(error = %e, "serving an IPNI request");
    (StatusCode::INTERNAL_SERVER_ERROR, "ad store unavailable").into_response()
}
