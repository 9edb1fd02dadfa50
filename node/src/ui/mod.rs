//! The operator's web UI at `/ui/`: server-rendered pages ([`pages`]), a little JavaScript
//! for live updates over server-sent events, assets compiled into the binary.
//!
//! Logging in takes an API token (the repo's `token` or `token.read`); it is kept in an
//! `HttpOnly`, `SameSite=Strict` cookie scoped to `/ui`, and checked on every request like the
//! JSON-RPC API checks it. A read token sees everything and changes nothing; every form that
//! changes something also carries a per-token form key, and the pages forbid inline script
//! and framing (CSP), so neither another site nor injected markup can act for the operator.

pub mod pages;

use std::collections::HashMap;
use std::convert::Infallible;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use hmac::{Hmac, KeyInit, Mac};
use piecestore::PieceStore;
use serde_json::json;
use storage_market::provider::{AskParams, DealRef, Provider};
use storage_market::state::StorageDealStatus as S;
use storage_market::store::ProviderDeal;
use storage_market::types::{Address, DealUuid, TokenAmount};

use market_core::jwt;
use pages::Viewer;

/// The session cookie's name.
const COOKIE: &str = "fmr_ui";
/// Deals per page of the deal list.
const PER_PAGE: usize = 100;
/// States of the sealing pipeline on the dashboard.
const SEALING: &[S] = &[
    S::Publishing,
    S::Staged,
    S::AwaitingPreCommit,
    S::Sealing,
    S::Finalizing,
];

const CSS: &str = include_str!("assets/ui.css");
const JS: &str = include_str!("assets/ui.js");

/// What the UI reads and acts on.
#[derive(Clone)]
pub struct UiState {
    /// The JWT secret tokens are checked against.
    pub secret: Vec<u8>,
    /// The provider.
    pub provider: Provider,
    /// Its piece store.
    pub pieces: Arc<dyn PieceStore>,
    /// What the piece store is called on the dashboard (its directory, its bucket).
    pub store_name: String,
    /// The miners served.
    pub miners: Vec<Address>,
    /// The IPNI provider (its ad store holds every identity's ads).
    pub ipni: market_ipni::IpniProvider,
    /// Whether `[ipni]` is on.
    pub ipni_enabled: bool,
    /// Whether the node is reached over HTTPS (the cookie is then `Secure`).
    pub https: bool,
}

struct Ui {
    state: UiState,
    /// Deal updates seen so far: pages carry it, events carry it, the script reloads a
    /// page's content when the two differ.
    version: AtomicU64,
}

/// The `/ui` routes, and the task that follows deal updates for live pages.
pub fn router(state: UiState) -> (axum::Router, tokio::task::JoinHandle<()>) {
    let ui = Arc::new(Ui {
        state,
        version: AtomicU64::new(0),
    });
    let watch = {
        let ui = ui.clone();
        let mut rx = ui.state.provider.subscribe();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        ui.version.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    };
    use axum::routing::{get, post};
    let router = axum::Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(dashboard))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/deals", get(deal_list))
        .route("/ui/deals/{id}", get(deal_page))
        .route("/ui/deals/{id}/{action}", post(deal_action))
        .route("/ui/pieces", get(pieces))
        .route("/ui/asks", get(asks))
        .route("/ui/asks/{miner}", post(set_ask))
        .route("/ui/events", get(events))
        .route(
            "/ui/assets/ui.css",
            get(|| async { asset("text/css", CSS) }),
        )
        .route(
            "/ui/assets/ui.js",
            get(|| async { asset("text/javascript", JS) }),
        )
        .with_state(ui);
    (router, watch)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// A page with the UI's security headers.
fn html(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    r
}

fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// The form key of `token`: an HMAC under the node's secret, so a page from elsewhere
/// cannot know it.
fn csrf_of(secret: &[u8], token: &str) -> String {
    let Ok(mut mac) = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(b"fil-market ui form\0");
    mac.update(token.as_bytes());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// Who sent the request, or the login page to send them to.
fn viewer(ui: &Ui, headers: &HeaderMap) -> Result<Viewer, Box<Response>> {
    let to_login = || Box::new(Redirect::to("/ui/login").into_response());
    let token = cookie_token(headers).ok_or_else(to_login)?;
    let perms = jwt::verify(&ui.state.secret, token).map_err(|_| to_login())?;
    if !jwt::allows(&perms, jwt::READ) {
        return Err(to_login());
    }
    Ok(Viewer {
        admin: jwt::allows(&perms, jwt::ADMIN),
        csrf: csrf_of(&ui.state.secret, token),
    })
}

/// An admin, with the right form key, or the page saying why not.
fn admin(ui: &Ui, headers: &HeaderMap, csrf: &str) -> Result<Viewer, Box<Response>> {
    let v = viewer(ui, headers)?;
    if !v.admin {
        return Err(Box::new(html(
            StatusCode::FORBIDDEN,
            pages::problem(
                Some(&v),
                "Read-only",
                "This token may look but not change anything: log in with the admin token.",
            ),
        )));
    }
    if v.csrf.is_empty() || csrf != v.csrf {
        return Err(Box::new(html(
            StatusCode::FORBIDDEN,
            pages::problem(Some(&v), "Form expired", "Reload the page and try again."),
        )));
    }
    Ok(v)
}

fn session_cookie(value: &str, https: bool, clear: bool) -> HeaderValue {
    let mut c = format!("{COOKIE}={value}; Path=/ui; HttpOnly; SameSite=Strict");
    if https {
        c.push_str("; Secure");
    }
    if clear {
        c.push_str("; Max-Age=0");
    }
    HeaderValue::from_str(&c)
        .unwrap_or_else(|_| HeaderValue::from_static("fmr_ui=; Path=/ui; Max-Age=0"))
}

fn with_version(ui: &Ui, page: String) -> String {
    // The frame's body tag carries the version the page was rendered at.
    page.replacen(
        "<body data-live=",
        &format!(
            "<body data-version=\"{}\" data-live=",
            ui.version.load(Ordering::Relaxed)
        ),
        1,
    )
}

fn failure(v: &Viewer, what: &str, e: impl std::error::Error + 'static) -> Response {
    tracing::warn!(error = %market_core::report(&e), "ui: {what}");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        pages::problem(Some(v), what, &market_core::report(&e)),
    )
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

async fn login_page(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    if viewer(&ui, &headers).is_ok() {
        return Redirect::to("/ui/").into_response();
    }
    html(StatusCode::OK, pages::login(None))
}

#[derive(serde::Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(State(ui): State<Arc<Ui>>, Form(f): Form<LoginForm>) -> Response {
    let token = f.token.trim();
    let why = match jwt::verify(&ui.state.secret, token) {
        Ok(perms) if jwt::allows(&perms, jwt::READ) => None,
        Ok(_) => Some("This token has no read permission.".to_string()),
        Err(e) => Some(format!("Not a token of this node: {e}.")),
    };
    if let Some(why) = why {
        return html(StatusCode::UNAUTHORIZED, pages::login(Some(&why)));
    }
    let mut r = Redirect::to("/ui/").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        session_cookie(token, ui.state.https, false),
    );
    r
}

#[derive(serde::Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Form(f): Form<CsrfForm>,
) -> Response {
    // A read-only viewer may log out too; only the form key is required.
    if let Ok(v) = viewer(&ui, &headers)
        && v.csrf != f.csrf
    {
        return html(
            StatusCode::FORBIDDEN,
            pages::problem(Some(&v), "Form expired", "Reload the page and try again."),
        );
    }
    let mut r = Redirect::to("/ui/login").into_response();
    r.headers_mut()
        .insert(header::SET_COOKIE, session_cookie("", ui.state.https, true));
    r
}

async fn dashboard(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    let v = match viewer(&ui, &headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let p = &ui.state.provider;
    let counts = match p.deal_counts().await {
        Ok(c) => c,
        Err(e) => return failure(&v, "Reading deals failed", e),
    };
    let mut transfers = Vec::new();
    match p.deals_in(&[S::Transferring]).await {
        Ok(deals) => {
            for deal in deals {
                let received = p.received_of(&deal).await;
                transfers.push(pages::TransferRow { deal, received });
            }
        }
        Err(e) => return failure(&v, "Reading deals failed", e),
    }
    let sealing = match p.deals_in(SEALING).await {
        Ok(d) => d,
        Err(e) => return failure(&v, "Reading deals failed", e),
    };
    let stores = match ui.state.pieces.list().await {
        Ok(list) => vec![(
            ui.state.store_name.clone(),
            list.len() as u64,
            list.iter().map(|m| m.payload_size).sum(),
        )],
        Err(e) => return failure(&v, "Reading the piece store failed", e),
    };
    let ipni = ui.state.ipni.store().summary().await.ok();
    let d = pages::Dashboard {
        counts,
        transfers,
        sealing,
        stores,
        ipni,
        ipni_enabled: ui.state.ipni_enabled,
        now_ms: now_ms(),
    };
    html(StatusCode::OK, with_version(&ui, pages::dashboard(&v, &d)))
}

#[derive(serde::Deserialize)]
struct ListQuery {
    state: Option<String>,
    q: Option<String>,
    page: Option<usize>,
}

/// Whether `d` matches the search text (any identifier it carries, case-insensitively).
fn matches(d: &ProviderDeal, needle: &str) -> bool {
    let p = &d.proposal.proposal;
    let hay = [
        d.deal_uuid.to_string(),
        d.proposal_cid.to_string(),
        p.piece_cid.to_string(),
        p.client.to_string(),
        d.miner.to_string(),
        d.payload_root.map(|c| c.to_string()).unwrap_or_default(),
        d.deal_id.map(|i| i.0.to_string()).unwrap_or_default(),
        d.message.clone(),
    ];
    let needle = needle.to_lowercase();
    hay.iter().any(|h| h.to_lowercase().contains(&needle))
}

async fn deal_list(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let v = match viewer(&ui, &headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let state = q.state.filter(|s| !s.is_empty());
    let search = q.q.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
    let mut deals = match ui.state.provider.deals().await {
        Ok(d) => d,
        Err(e) => return failure(&v, "Reading deals failed", e),
    };
    deals.retain(|d| {
        state
            .as_deref()
            .is_none_or(|s| pages::state_name(d.state) == s)
            && search.as_deref().is_none_or(|n| matches(d, n))
    });
    deals.reverse();
    let matching = deals.len();
    let page = q
        .page
        .unwrap_or(0)
        .min(matching.saturating_sub(1) / PER_PAGE);
    let deals = deals
        .into_iter()
        .skip(page * PER_PAGE)
        .take(PER_PAGE)
        .collect();
    let l = pages::DealList {
        deals,
        matching,
        state,
        search,
        page,
        per_page: PER_PAGE,
    };
    html(StatusCode::OK, with_version(&ui, pages::deal_list(&v, &l)))
}

fn deal_ref(id: &str) -> Option<DealRef> {
    if let Ok(u) = DealUuid::from_str(id) {
        return Some(DealRef::Uuid(u));
    }
    storage_market::Cid::from_str(id)
        .ok()
        .map(DealRef::ProposalCid)
}

#[derive(serde::Deserialize)]
struct DoneQuery {
    done: Option<String>,
}

async fn render_deal(
    ui: &Ui,
    v: &Viewer,
    id: &str,
    notice: Option<String>,
    status: StatusCode,
) -> Response {
    let p = &ui.state.provider;
    let Some(r) = deal_ref(id) else {
        return html(
            StatusCode::NOT_FOUND,
            pages::problem(Some(v), "No such deal", "Not a deal UUID or proposal CID."),
        );
    };
    let deal = match p.deal(r).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::problem(Some(v), "No such deal", id),
            );
        }
        Err(e) => return failure(v, "Reading the deal failed", e),
    };
    let events = match p.deal_events(r).await {
        Ok(e) => e,
        Err(e) => return failure(v, "Reading the deal's timeline failed", e),
    };
    let received = (deal.state == S::Transferring).then_some(p.received_of(&deal).await);
    let ipni = match market_core::cid::narrow(&deal.proposal.proposal.piece_cid) {
        Some(piece) => ui
            .state
            .ipni
            .piece_ads(&piece)
            .await
            .ok()
            .and_then(|mut a| a.pop()),
        None => None,
    };
    let page = pages::DealPage {
        deal,
        events,
        received,
        ipni,
        notice,
    };
    html(status, with_version(ui, pages::deal_page(v, &page)))
}

async fn deal_page(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Response {
    let v = match viewer(&ui, &headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let notice = match q.done.as_deref() {
        Some("cancelled") => {
            Some("Cancel requested: the deal fails once its transfer has stopped.".to_string())
        }
        Some("retried") => Some("Retried: the deal waits for its data again.".to_string()),
        _ => None,
    };
    render_deal(&ui, &v, &id, notice, StatusCode::OK).await
}

async fn deal_action(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Response {
    let v = match admin(&ui, &headers, &f.csrf) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let Some(r) = deal_ref(&id) else {
        return html(
            StatusCode::NOT_FOUND,
            pages::problem(Some(&v), "No such deal", "Not a deal UUID or proposal CID."),
        );
    };
    let p = &ui.state.provider;
    let (result, done) = match action.as_str() {
        "cancel" => (p.cancel(r).await, "cancelled"),
        "retry" => (p.retry(r).await.map(|_| ()), "retried"),
        _ => {
            return html(
                StatusCode::NOT_FOUND,
                pages::problem(Some(&v), "No such action", &action),
            );
        }
    };
    match result {
        Ok(()) => {
            Redirect::to(&format!("/ui/deals/{}?done={done}", pages::esc(&id))).into_response()
        }
        Err(e) => {
            render_deal(
                &ui,
                &v,
                &id,
                Some(market_core::report(&e)),
                StatusCode::CONFLICT,
            )
            .await
        }
    }
}

async fn pieces(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    let v = match viewer(&ui, &headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let list = match ui.state.pieces.list().await {
        Ok(l) => l,
        Err(e) => return failure(&v, "Reading the piece store failed", e),
    };
    let deals = match ui.state.provider.deals().await {
        Ok(d) => d,
        Err(e) => return failure(&v, "Reading deals failed", e),
    };
    let mut by_piece: HashMap<String, Vec<String>> = HashMap::new();
    for d in &deals {
        by_piece
            .entry(d.proposal.proposal.piece_cid.to_string())
            .or_default()
            .push(d.deal_uuid.to_string());
    }
    let mut rows = Vec::with_capacity(list.len());
    for m in list {
        let ipni = match market_core::cid::narrow(&m.piece_cid) {
            Some(piece) => match ui
                .state
                .ipni
                .piece_ads(&piece)
                .await
                .ok()
                .and_then(|mut a| a.pop())
            {
                Some(a) if a.is_rm => "removed".to_string(),
                Some(a) if a.indexed_at.is_some() => "indexed".to_string(),
                Some(a) if a.announced_at.is_some() => "announced".to_string(),
                Some(_) => "published".to_string(),
                None => "-".to_string(),
            },
            None => "-".to_string(),
        };
        let deals = by_piece
            .remove(&m.piece_cid.to_string())
            .unwrap_or_default();
        rows.push((m, ipni, deals));
    }
    html(StatusCode::OK, pages::pieces(&v, &rows))
}

async fn ask_rows(ui: &Ui) -> Result<Vec<pages::AskRow>, storage_market::provider::ProviderError> {
    let mut rows = Vec::new();
    for m in &ui.state.miners {
        if let Some(a) = ui.state.provider.ask(m).await?.and_then(|s| s.ask) {
            rows.push(pages::AskRow {
                miner: m.to_string(),
                price: a.price.atto().to_string(),
                verified_price: a.verified_price.atto().to_string(),
                min_piece_size: a.min_piece_size,
                max_piece_size: a.max_piece_size,
                seq_no: a.seq_no,
                expiry: a.expiry.get(),
            });
        }
    }
    Ok(rows)
}

async fn asks(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Query(q): Query<DoneQuery>,
) -> Response {
    let v = match viewer(&ui, &headers) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let notice = (q.done.as_deref() == Some("saved")).then_some("Ask saved and signed.");
    match ask_rows(&ui).await {
        Ok(rows) => html(StatusCode::OK, pages::asks(&v, &rows, notice)),
        Err(e) => failure(&v, "Reading asks failed", e),
    }
}

#[derive(serde::Deserialize)]
struct AskForm {
    #[serde(default)]
    csrf: String,
    price: String,
    verified_price: String,
    min_piece_size: String,
    max_piece_size: String,
}

async fn set_ask(
    State(ui): State<Arc<Ui>>,
    headers: HeaderMap,
    Path(miner): Path<String>,
    Form(f): Form<AskForm>,
) -> Response {
    let v = match admin(&ui, &headers, &f.csrf) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let parsed = (|| -> Result<(Address, AskParams), String> {
        let m = Address::from_str(&miner).map_err(|e| format!("miner {miner}: {e}"))?;
        if !ui.state.miners.contains(&m) {
            return Err(format!("miner {m} is not served by this node"));
        }
        let amount = |s: &str, what: &str| {
            TokenAmount::from_str(s.trim()).map_err(|e| format!("{what}: {e}"))
        };
        let size = |s: &str, what: &str| {
            s.trim()
                .parse::<u64>()
                .map_err(|e| format!("{what}: {e}"))
                .and_then(|n| commp::PaddedPieceSize::new(n).map_err(|e| format!("{what}: {e}")))
        };
        Ok((
            m,
            AskParams {
                price: amount(&f.price, "price")?,
                verified_price: amount(&f.verified_price, "verified price")?,
                min_piece_size: size(&f.min_piece_size, "min piece size")?,
                max_piece_size: size(&f.max_piece_size, "max piece size")?,
                ..AskParams::default()
            },
        ))
    })();
    let result = match parsed {
        Ok((m, params)) => ui
            .state
            .provider
            .set_ask(&m, params)
            .await
            .map_err(|e| market_core::report(&e)),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Redirect::to("/ui/asks?done=saved").into_response(),
        Err(why) => match ask_rows(&ui).await {
            Ok(rows) => html(StatusCode::BAD_REQUEST, pages::asks(&v, &rows, Some(&why))),
            Err(e) => failure(&v, "Reading asks failed", e),
        },
    }
}

/// Once a second (sooner after a deal update): deal counts, transfer progress and the
/// update version, as one `summary` event.
async fn events(State(ui): State<Arc<Ui>>, headers: HeaderMap) -> Response {
    if let Err(r) = viewer(&ui, &headers) {
        return *r;
    }
    let rx = ui.state.provider.subscribe();
    let stream = futures::stream::unfold((ui, rx, true), |(ui, mut rx, first)| async move {
        if !first {
            tokio::select! {
                _ = rx.recv() => {
                    // Let a burst of updates settle into one event.
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    while rx.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        let data = summary(&ui).await;
        let event = Event::default().event("summary").data(data.to_string());
        Some((Ok::<_, Infallible>(event), (ui, rx, false)))
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn summary(ui: &Ui) -> serde_json::Value {
    let p = &ui.state.provider;
    let mut counts = serde_json::Map::new();
    let mut total = 0;
    for (s, n) in p.deal_counts().await.unwrap_or_default() {
        counts.insert(s.name().to_string(), json!(n));
        total += n;
    }
    counts.insert("total".into(), json!(total));
    let mut transfers = serde_json::Map::new();
    for deal in p.deals_in(&[S::Transferring]).await.unwrap_or_default() {
        let received = p.received_of(&deal).await;
        transfers.insert(
            deal.deal_uuid.to_string(),
            json!([received, deal.transfer.size]),
        );
    }
    json!({
        "version": ui.version.load(Ordering::Relaxed),
        "counts": counts,
        "transfers": transfers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; fmr_ui=tok.en.x; b=2"),
        );
        assert_eq!(cookie_token(&h), Some("tok.en.x"));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("fmr_uix=no"));
        assert_eq!(cookie_token(&h), None);
    }

    #[test]
    fn form_keys_differ_per_token_and_secret() {
        let a = csrf_of(b"0123456789abcdef", "t1");
        assert_eq!(a.len(), 32);
        assert_eq!(a, csrf_of(b"0123456789abcdef", "t1"));
        assert_ne!(a, csrf_of(b"0123456789abcdef", "t2"));
        assert_ne!(a, csrf_of(b"fedcba9876543210", "t1"));
    }

    #[test]
    fn cookies_are_scoped_and_script_proof() {
        let c = session_cookie("x", true, false);
        let c = c.to_str().unwrap();
        assert!(
            c.contains("HttpOnly")
                && c.contains("SameSite=Strict")
                && c.contains("Path=/ui")
                && c.contains("Secure")
        );
        assert!(
            session_cookie("", false, true)
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
    }
}
