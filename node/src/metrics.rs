//! Prometheus at `/metrics`: the process's recorder (what the crates count, see
//! [`market_core::metrics`]), HTTP request accounting for every route of the node's
//! listener, and gauges read from the node's stores at each scrape.
//!
//! The recorder is process-wide (the `metrics` facade has one); an embedder that installed
//! its own keeps it, and `/metrics` then carries the scrape-time gauges only.

use std::fmt::Write as _;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body::{Frame, SizeHint};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use piecestore::PieceStore;
use storage_market::provider::Provider;

use crate::admin::TokenQuery;
use market_core::jwt;
use market_core::metrics as names;

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use; `None` when another
/// recorder was installed first.
pub fn recorder() -> Option<&'static PrometheusHandle> {
    RECORDER
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".into()),
                    names::LATENCY_BUCKETS,
                )
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => {
                    names::describe();
                    Some(handle)
                }
                Err(_) => {
                    tracing::warn!(
                        "a metrics recorder was installed before the node's: /metrics carries the node's gauges only"
                    );
                    None
                }
            }
        })
        .as_ref()
}

/// What a scrape reads.
#[derive(Clone)]
pub struct MetricsState {
    /// The JWT secret, when `/metrics` needs a token.
    pub secret: Option<Vec<u8>>,
    /// Deals by state.
    pub provider: Provider,
    /// Pieces stored.
    pub pieces: Arc<dyn PieceStore>,
    /// IPNI ads.
    pub ipni: market_ipni::IpniProvider,
}

/// The `/metrics` route.
pub fn router(state: MetricsState) -> axum::Router {
    // Installed now, so the crates' counters start before the first scrape.
    let _ = recorder();
    axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .with_state(Arc::new(state))
}

async fn scrape(
    State(state): State<Arc<MetricsState>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
) -> Response {
    if let Some(secret) = &state.secret {
        let token = sealing::resource::request_token(&headers, q.token.as_deref());
        match token.map(|t| jwt::verify(secret, t)) {
            Some(Ok(perms)) if perms.iter().any(|p| p == jwt::READ) => {}
            Some(Ok(_)) => return (StatusCode::FORBIDDEN, "needs read\n").into_response(),
            Some(Err(e)) => return (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response(),
            None => return (StatusCode::UNAUTHORIZED, "no token\n").into_response(),
        }
    }
    let mut out = match recorder() {
        Some(h) => {
            h.run_upkeep();
            h.render()
        }
        None => String::new(),
    };
    match gauges(&state).await {
        Ok(text) => out.push_str(&text),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: reading the stores failed");
            out.push_str("# the node's stores could not be read: gauges left out\n");
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

fn gauge(out: &mut String, name: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, v) in samples {
        let _ = writeln!(out, "{name}{labels} {v}");
    }
}

/// The gauges that describe stored state, read now.
async fn gauges(s: &MetricsState) -> Result<String, Box<dyn std::error::Error + Send + Sync>> {
    let mut out = String::new();
    let deals: Vec<(String, f64)> = s
        .provider
        .deal_counts()
        .await?
        .into_iter()
        .map(|(state, n)| (format!("{{state=\"{}\"}}", state.name()), n as f64))
        .collect();
    gauge(
        &mut out,
        "fil_market_deals",
        "Provider deals by state",
        &deals,
    );
    let pieces = s.pieces.list().await?;
    let bytes: u64 = pieces.iter().map(|p| p.payload_size).sum();
    gauge(
        &mut out,
        "fil_market_pieces",
        "Pieces stored",
        &[(String::new(), pieces.len() as f64)],
    );
    gauge(
        &mut out,
        "fil_market_piece_payload_bytes",
        "Payload bytes of the pieces stored",
        &[(String::new(), bytes as f64)],
    );
    let ads = s.ipni.store().summary().await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let lag = ads
        .oldest_unindexed_announced_at
        .map_or(0.0, |at| (now_ms - at).max(0) as f64 / 1000.0);
    gauge(
        &mut out,
        "fil_market_ipni_ads",
        "IPNI ads published",
        &[(String::new(), ads.ads as f64)],
    );
    gauge(
        &mut out,
        "fil_market_ipni_ads_unannounced",
        "IPNI ads no indexer was told of yet",
        &[(String::new(), ads.unannounced as f64)],
    );
    gauge(
        &mut out,
        "fil_market_ipni_ads_unindexed",
        "Announced IPNI ads no indexer confirmed yet",
        &[(String::new(), ads.unindexed as f64)],
    );
    gauge(
        &mut out,
        "fil_market_ipni_lag_seconds",
        "Age of the oldest announced ad not confirmed by an indexer (0 when none)",
        &[(String::new(), lag)],
    );
    gauge(
        &mut out,
        "fil_market_ipni_failing_announces",
        "Indexers whose last announcement failed",
        &[(String::new(), ads.failing_announces as f64)],
    );
    Ok(out)
}

/// The `route` label of a request path.
pub fn route_of(path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "piece" => "piece",
        "ipfs" | "ipns" => "ipfs",
        "ipni" | "ipni-provider" => "ipni",
        "rpc" => "rpc",
        "ui" => "ui",
        "metrics" => "metrics",
        "resource" | "sealing" | "info" => "sealer",
        _ => "other",
    }
}

/// Middleware counting every request by route and status, and the bytes of every body.
pub async fn track(req: Request, next: Next) -> Response {
    let route = route_of(req.uri().path());
    let started = Instant::now();
    let res = next.run(req).await;
    names::http_request(route, res.status().as_u16(), started.elapsed());
    let (parts, body) = res.into_parts();
    let counted = Counted {
        inner: body,
        counter: names::http_bytes(route),
    };
    Response::from_parts(parts, Body::new(counted))
}

/// A body that counts its data frames' bytes as they go out. Its size hint is the inner
/// body's, so `Content-Length` and HEAD framing are unchanged.
struct Counted {
    inner: Body,
    counter: metrics::Counter,
}

impl http_body::Body for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            self.counter.increment(data.len() as u64);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_few_and_named() {
        assert_eq!(route_of("/piece/baga6ea4seaq"), "piece");
        assert_eq!(route_of("/ipfs/bafy/a/b"), "ipfs");
        assert_eq!(route_of("/ipni-provider/12D3/ipni/v1/ad/head"), "ipni");
        assert_eq!(route_of("/rpc/v0"), "rpc");
        assert_eq!(route_of("/ui/deals"), "ui");
        assert_eq!(route_of("/"), "other");
        assert_eq!(route_of("/../../etc/passwd"), "other");
    }
}
