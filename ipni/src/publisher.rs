//! The HTTP publisher indexers sync from (IPNI HTTP provider spec): `GET /ipni/v1/ad/head`
//! serves the signed head, `GET /ipni/v1/ad/{cid}` an ad or an entry chunk, as stored (the
//! indexer hashes what it gets against the CID). Every identity's chain also answers under
//! `/ipni-provider/{peer}/` (Curio's layout), which is how one server publishes the chains
//! of several identities (one per miner); the root routes serve the first.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cid::Cid;

use crate::IpniProvider;
use crate::provider::Inner;

struct Publishers {
    first: Option<Arc<Inner>>,
    by_peer: HashMap<String, Arc<Inner>>,
}

type Shared = State<Arc<Publishers>>;

/// The publisher routes of `providers` (sharing one ad store or not): the first at the root,
/// each under `/ipni-provider/{peer}/`.
pub fn routes(providers: &[IpniProvider]) -> Router {
    let state = Publishers {
        first: providers.first().map(|p| p.inner().clone()),
        by_peer: providers
            .iter()
            .map(|p| (p.peer_id().to_string(), p.inner().clone()))
            .collect(),
    };
    Router::new()
        .route("/ipni/v1/ad/head", get(head))
        .route("/ipni/v1/ad/{cid}", get(block))
        .route("/ipni-provider/{peer}/ipni/v1/ad/head", get(peer_head))
        .route("/ipni-provider/{peer}/ipni/v1/ad/{cid}", get(peer_block))
        .with_state(Arc::new(state))
}

fn unknown() -> Response {
    (StatusCode::NOT_FOUND, "unknown provider").into_response()
}

async fn head(State(p): Shared) -> Response {
    match &p.first {
        Some(inner) => signed_head(inner).await,
        None => unknown(),
    }
}

async fn block(State(p): Shared, Path(cid): Path<String>) -> Response {
    match &p.first {
        Some(inner) => serve_block(inner, &cid).await,
        None => unknown(),
    }
}

async fn peer_head(State(p): Shared, Path(peer): Path<String>) -> Response {
    match p.by_peer.get(&peer) {
        Some(inner) => signed_head(inner).await,
        None => unknown(),
    }
}

async fn peer_block(State(p): Shared, Path((peer, cid)): Path<(String, String)>) -> Response {
    match p.by_peer.get(&peer) {
        Some(inner) => serve_block(inner, &cid).await,
        None => unknown(),
    }
}

async fn signed_head(inner: &Inner) -> Response {
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

async fn serve_block(inner: &Inner, cid: &str) -> Response {
    let Ok(cid) = Cid::from_str(cid) else {
        return (StatusCode::BAD_REQUEST, "invalid request: not a cid").into_response();
    };
    match inner.store.block(cid).await {
        Ok(Some(data)) => json(data),
        Ok(None) => (StatusCode::NOT_FOUND, "cid not found").into_response(),
        Err(e) => internal(e),
    }
}

fn json(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn internal(e: crate::IpniError) -> Response {
    tracing::warn!(error = %e, "serving an IPNI request");
    (StatusCode::INTERNAL_SERVER_ERROR, "ad store unavailable").into_response()
}
