//! The node's JSON-RPC 2.0 admin API at `/rpc/v0`, guarded by the JWTs written at init
//! (`Authorization: Bearer <token>`), with Lotus's permission names.
//!
//! | method | permission | params | result |
//! |---|---|---|---|
//! | `Market.Info` | read | | peer id, addresses, miners, HTTP URL |
//! | `Market.GetAsk` | read | `[miner]` | the signed ask |
//! | `Market.SetAsk` | admin | `[miner, price, verifiedPrice, minPieceSize, maxPieceSize]` | the signed ask |
//! | `Market.ListDeals` | read | | every deal |
//! | `Market.ImportData` | admin | `[proposal CID or deal UUID, path]` | `null` |
//! | `Market.ListPieces` | read | | every stored piece |
//! | `Market.PieceIpni` | read | `[piece CID]` | the piece's IPNI ads |
//! | `Market.DealEvents` | read | `[proposal CID or deal UUID]` | the deal's timeline |
//! | `Market.CancelDeal` | admin | `[proposal CID or deal UUID]` | `null` (before its data is verified) |
//! | `Market.ActorSetPeerInfo` | admin | `[miner, [multiaddr…]?]` | sends ChangePeerID and ChangeMultiaddrs with this node's, and the other instances' addresses given |
//! | `Market.ListTransfers` | read | | online deals receiving their data, with progress |
//! | `Market.ListSectors` | read | | sectors holding deals, with their deals |
//! | `Market.RetryDeal` | admin | `[proposal CID or deal UUID]` | its new state (failed before publishing) |
//!
//! The same endpoint (and `/rpc/v1`) answers droplet's sealer methods, `VENUS_MARKET.*`
//! (see the `sealing` crate), so damocles and venus-sealer connect to this node as they do to
//! droplet. Tokens come in `Authorization: Bearer` or `?token=`.

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use piecestore::PieceStore;
use serde_json::{Value, json};
use storage_market::network::PeerAddr;
use storage_market::provider::{AskParams, DealRef, Provider};
use storage_market::types::{Address, DealUuid, TokenAmount};
use url::Url;

use market_core::jsonrpc::{self, Call, Fault};
use market_core::jwt;
use sealing::ApiVersion;

/// What the admin API serves.
#[derive(Clone)]
pub struct AdminState {
    /// The JWT secret.
    pub secret: Vec<u8>,
    /// The provider.
    pub provider: Provider,
    /// Its piece store.
    pub pieces: Arc<dyn PieceStore>,
    /// Its libp2p address.
    pub peer: PeerAddr,
    /// Its HTTP base URL.
    pub http_url: Url,
    /// Its miners.
    pub miners: Vec<Address>,
    /// The sealer API, when sealers pull deals from this node.
    pub sealer: Option<sealing::SealerApi>,
    /// The IPNI provider.
    pub ipni: market_ipni::IpniProvider,
    /// The chain, for messages the operator asks the node to send.
    pub chain: Arc<dyn market_core::chain::ChainNode>,
}

/// The `/rpc/v0` route.
pub fn router(state: AdminState) -> axum::Router {
    axum::Router::new()
        .route("/rpc/v0", axum::routing::post(handle_v0))
        .route("/rpc/v1", axum::routing::post(handle_v1))
        .with_state(Arc::new(state))
}

/// Every `Market.*` method and the permission it needs.
pub const METHODS: &[(&str, &str)] = &[
    ("Market.Info", jwt::READ),
    ("Market.GetAsk", jwt::READ),
    ("Market.ListDeals", jwt::READ),
    ("Market.ListPieces", jwt::READ),
    ("Market.PieceIpni", jwt::READ),
    ("Market.DealEvents", jwt::READ),
    ("Market.CancelDeal", jwt::ADMIN),
    ("Market.RetryDeal", jwt::ADMIN),
    ("Market.ActorSetPeerInfo", jwt::ADMIN),
    ("Market.ListTransfers", jwt::READ),
    ("Market.ListSectors", jwt::READ),
    ("Market.SetAsk", jwt::ADMIN),
    ("Market.ImportData", jwt::ADMIN),
];

fn permission(method: &str) -> Option<&'static str> {
    METHODS.iter().find(|(m, _)| *m == method).map(|(_, p)| *p)
}

/// `?token=`, for clients that cannot set a header.
#[derive(serde::Deserialize)]
pub(crate) struct TokenQuery {
    pub(crate) token: Option<String>,
}

async fn handle_v0(
    State(state): State<Arc<AdminState>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    handle(&state, ApiVersion::V0, q, headers, body).await
}

async fn handle_v1(
    State(state): State<Arc<AdminState>>,
    Query(q): Query<TokenQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    handle(&state, ApiVersion::V1, q, headers, body).await
}

/// Largest JSON-RPC request body.
pub const MAX_REQUEST_BYTES: usize = 2 << 20;

async fn handle(
    state: &AdminState,
    version: ApiVersion,
    q: TokenQuery,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let token = sealing::resource::request_token(&headers, q.token.as_deref());
    let perms = match token.map(|t| jwt::verify(&state.secret, t)) {
        Some(Ok(perms)) => perms,
        Some(Err(e)) => return (StatusCode::UNAUTHORIZED, format!("{e}\n")).into_response(),
        None => return (StatusCode::UNAUTHORIZED, "no token\n").into_response(),
    };
    // Refused from its header, before a byte of it is read.
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        let why = format!("request body over {MAX_REQUEST_BYTES} bytes, or broken off\n");
        (StatusCode::PAYLOAD_TOO_LARGE, why).into_response()
    };
    if declared.is_some_and(|n| n > MAX_REQUEST_BYTES as u64) {
        return too_large();
    }
    let Ok(body) = axum::body::to_bytes(body, MAX_REQUEST_BYTES).await else {
        return too_large();
    };
    let limits = jsonrpc::Limits::default();
    let dispatch = |c: Call| dispatch(state, &perms, version, c);
    match jsonrpc::answer(&body, &limits, dispatch).await {
        Some(answer) => axum::Json(answer).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// One call: the sealer API's namespace first, then the market's own methods.
async fn dispatch(
    state: &AdminState,
    perms: &[String],
    version: ApiVersion,
    call: Call,
) -> Result<Value, Fault> {
    let method = call.method.as_str();
    if let Some(api) = &state.sealer
        && let Some(result) =
            sealing::api::dispatch(api, perms, method, &call.params, version).await
    {
        return result;
    }
    match permission(method) {
        None => Err(Fault::not_found(method)),
        Some(p) if !jwt::allows(perms, p) => Err(Fault::server(format!(
            "missing permission to invoke '{method}' (need '{p}')"
        ))),
        Some(_) => call_method(state, method, &call.params)
            .await
            .map_err(Fault::server),
    }
}

fn param(params: &[Value], i: usize) -> Result<&str, String> {
    params
        .get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("parameter {i} must be a string"))
}

/// The miner named by param 0 (the first miner when it is null), which must be one of ours.
fn miner(state: &AdminState, params: &[Value]) -> Result<Address, String> {
    let m = match params.first().and_then(Value::as_str) {
        Some(s) => Address::from_str(s)
            .map_err(|e| format!("{}: {}", jsonrpc::clip(s), market_core::report(&e)))?,
        None => return state.miners.first().copied().ok_or("no miner".into()),
    };
    if !state.miners.contains(&m) {
        return Err(format!("miner {m} is not served by this node"));
    }
    Ok(m)
}

/// The miner actor refuses `ChangeMultiaddrs` whose addresses add up to more bytes than this
/// (builtin-actors' `max_multiaddr_data`).
const MAX_MULTIADDR_BYTES: usize = 1024;

/// The addresses MinerInfo should list: this node's, then `extra` (the other instances of a
/// cluster, which share its peer id), each once. An address naming another peer id, one
/// that does not parse, or a list the miner actor would refuse is an error.
fn peer_multiaddrs(
    own: &[libp2p::Multiaddr],
    peer: &libp2p::PeerId,
    extra: &[String],
) -> Result<Vec<libp2p::Multiaddr>, String> {
    use libp2p::multiaddr::Protocol;
    let mut out: Vec<libp2p::Multiaddr> = Vec::new();
    let mut add = |a: libp2p::Multiaddr| {
        if !out.contains(&a) {
            out.push(a);
        }
    };
    own.iter().cloned().for_each(&mut add);
    for s in extra {
        let a = libp2p::Multiaddr::from_str(s).map_err(|e| format!("{}: {e}", jsonrpc::clip(s)))?;
        let mut bare = libp2p::Multiaddr::empty();
        for p in a.iter() {
            match p {
                Protocol::P2p(id) if id != *peer => {
                    return Err(format!(
                        "{}: names peer {id}, not this node's {peer} (instances share one)",
                        jsonrpc::clip(s)
                    ));
                }
                // MinerInfo holds the peer id apart; addresses go without it, as ours do.
                Protocol::P2p(_) => {}
                p => bare.push(p),
            }
        }
        if bare.is_empty() {
            return Err(format!("{}: no transport address", jsonrpc::clip(s)));
        }
        add(bare);
    }
    let bytes: usize = out.iter().map(|a| a.to_vec().len()).sum();
    if bytes > MAX_MULTIADDR_BYTES {
        return Err(format!(
            "{} addresses take {bytes} bytes; the miner actor takes at most {MAX_MULTIADDR_BYTES}",
            out.len()
        ));
    }
    Ok(out)
}

/// Sends `ChangePeerID` and `ChangeMultiaddrs` from `miner`'s worker with this node's peer
/// id and `addrs`: what `lotus-miner actor set-peer-id` and `set-addrs` do.
async fn set_peer_info(
    state: &AdminState,
    miner: &Address,
    addrs: &[libp2p::Multiaddr],
) -> Result<Vec<storage_market::Cid>, market_core::chain::ChainError> {
    use market_core::miner::{ChangeMultiaddrsParams, ChangePeerIdParams, method};
    let worker = state.chain.miner_info(miner).await?.worker;
    let message = |method: u64, params: Vec<u8>| market_core::chain::Message {
        from: worker,
        to: *miner,
        method,
        params,
        value: TokenAmount::ZERO,
        max_fee: TokenAmount::from_nano(100_000_000),
        uuid: None,
    };
    let peer = ChangePeerIdParams {
        new_id: state.peer.peer_id.to_bytes(),
    };
    let addrs = ChangeMultiaddrsParams {
        new_multiaddrs: addrs
            .iter()
            .map(|a| serde_bytes::ByteBuf::from(a.to_vec()))
            .collect(),
    };
    let a = state
        .chain
        .push_message(message(
            method::CHANGE_PEER_ID,
            market_core::cbor::to_vec(&peer),
        ))
        .await?;
    let b = state
        .chain
        .push_message(message(
            method::CHANGE_MULTIADDRS,
            market_core::cbor::to_vec(&addrs),
        ))
        .await?;
    Ok(vec![a, b])
}

/// The deal named by param 0: a proposal CID or a deal UUID.
fn deal_ref(params: &[Value]) -> Result<DealRef, String> {
    let r = param(params, 0)?;
    Ok(match storage_market::Cid::from_str(r) {
        Ok(c) => DealRef::ProposalCid(c),
        Err(_) => {
            DealRef::Uuid(DealUuid::from_str(r).map_err(|e| format!("{}: {e}", jsonrpc::clip(r)))?)
        }
    })
}

fn ask_json(ask: &storage_market::message::SignedStorageAsk) -> Value {
    let Some(a) = &ask.ask else {
        return Value::Null;
    };
    json!({
        "Miner": a.miner.to_string(),
        "Price": a.price.atto().to_string(),
        "VerifiedPrice": a.verified_price.atto().to_string(),
        "MinPieceSize": a.min_piece_size,
        "MaxPieceSize": a.max_piece_size,
        "Expiry": a.expiry.get(),
        "SeqNo": a.seq_no,
    })
}

/// One ad's record as the API shows it.
fn ad_json(a: &market_ipni::store::AdStatus) -> Value {
    json!({
        "Ad": a.ad.to_string(),
        "Provider": a.provider,
        "Removal": a.is_rm,
        "Entries": a.entries,
        "CreatedAt": a.created_at,
        "AnnouncedAt": a.announced_at,
        "IndexedAt": a.indexed_at,
        "CheckError": a.check_error,
    })
}

/// The newest ad of a piece (`null` when it was never advertised).
async fn ipni_summary(
    ipni: &market_ipni::IpniProvider,
    piece: &storage_market::Cid,
) -> Result<Value, String> {
    let Some(narrow) = market_core::cid::narrow(piece) else {
        return Ok(Value::Null);
    };
    let ads = ipni
        .piece_ads(&narrow)
        .await
        .map_err(|e| market_core::report(&e))?;
    Ok(ads.last().map_or(Value::Null, ad_json))
}

async fn call_method(state: &AdminState, method: &str, params: &[Value]) -> Result<Value, String> {
    let p = &state.provider;
    match method {
        "Market.Info" => Ok(json!({
            "PeerId": state.peer.peer_id.to_string(),
            "Addrs": state.peer.addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
            "Miners": state.miners.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            "HttpUrl": state.http_url.to_string(),
        })),
        "Market.GetAsk" => {
            let m = miner(state, params)?;
            let ask = p.ask(&m).await.map_err(|e| market_core::report(&e))?;
            Ok(ask.map_or(Value::Null, |a| ask_json(&a)))
        }
        "Market.SetAsk" => {
            let m = miner(state, params)?;
            let amount = |i| TokenAmount::from_str(param(params, i)?).map_err(|e| e.to_string());
            let size = |i: usize| {
                params
                    .get(i)
                    .and_then(Value::as_u64)
                    .ok_or(format!("parameter {i} must be a number"))
                    .and_then(|n| {
                        commp::PaddedPieceSize::new(n).map_err(|e| market_core::report(&e))
                    })
            };
            let ask = p
                .set_ask(
                    &m,
                    AskParams {
                        price: amount(1)?,
                        verified_price: amount(2)?,
                        min_piece_size: size(3)?,
                        max_piece_size: size(4)?,
                        ..AskParams::default()
                    },
                )
                .await
                .map_err(|e| market_core::report(&e))?;
            Ok(ask_json(&ask))
        }
        "Market.ListDeals" => {
            let deals = p.deals().await.map_err(|e| market_core::report(&e))?;
            let mut items: Vec<Value> = deals
                .iter()
                .map(|d| {
                    json!({
                        "ProposalCid": d.proposal_cid.to_string(),
                        "DealUuid": d.deal_uuid.to_string(),
                        "State": d.state.to_string(),
                        "Message": d.message,
                        "PieceCid": d.proposal.proposal.piece_cid.to_string(),
                        "PieceSize": d.proposal.proposal.piece_size,
                        "Client": d.proposal.proposal.client.to_string(),
                        "Offline": d.is_offline,
                        "DealId": d.deal_id.map(|i| i.0),
                        "Sector": d.sector.map(|s| s.0),
                        "Offset": d.sector_offset,
                        "SkipIpni": d.skip_ipni,
                    })
                })
                .collect();
            for (item, d) in items.iter_mut().zip(&deals) {
                item["Ipni"] = ipni_summary(&state.ipni, &d.proposal.proposal.piece_cid).await?;
            }
            Ok(Value::Array(items))
        }
        "Market.PieceIpni" => {
            let piece = storage_market::Cid::from_str(param(params, 0)?)
                .map_err(|e| format!("piece cid: {e}"))?;
            let Some(narrow) = market_core::cid::narrow(&piece) else {
                return Ok(Value::Array(Vec::new()));
            };
            let ads = state
                .ipni
                .piece_ads(&narrow)
                .await
                .map_err(|e| market_core::report(&e))?;
            Ok(Value::Array(ads.iter().map(ad_json).collect()))
        }
        "Market.DealEvents" => {
            let events = p
                .deal_events(deal_ref(params)?)
                .await
                .map_err(|e| market_core::report(&e))?;
            Ok(Value::Array(
                events
                    .iter()
                    .map(|e| json!({"At": e.at_ms, "State": e.state.to_string(), "Message": e.message}))
                    .collect(),
            ))
        }
        "Market.CancelDeal" => {
            p.cancel(deal_ref(params)?)
                .await
                .map_err(|e| market_core::report(&e))?;
            Ok(Value::Null)
        }
        "Market.RetryDeal" => {
            let d = p
                .retry(deal_ref(params)?)
                .await
                .map_err(|e| market_core::report(&e))?;
            Ok(json!({"State": d.state.to_string()}))
        }
        "Market.ListTransfers" => {
            use storage_market::state::StorageDealStatus as S;
            let deals = p
                .deals_in(&[
                    S::Transferring,
                    S::TransferQueued,
                    S::ProviderTransferAwaitRestart,
                    S::VerifyData,
                ])
                .await
                .map_err(|e| market_core::report(&e))?;
            let mut items = Vec::with_capacity(deals.len());
            for d in deals.iter().filter(|d| !d.is_offline) {
                // The host only: the URL may carry the client's token.
                let host = serde_json::from_slice::<storage_market::message::HttpRequest>(
                    &d.transfer.params,
                )
                .ok()
                .and_then(|r| Url::parse(&r.url).ok())
                .and_then(|u| u.host_str().map(str::to_string));
                items.push(json!({
                    "DealUuid": d.deal_uuid.to_string(),
                    "State": d.state.to_string(),
                    "Type": d.transfer.kind,
                    "Host": host,
                    "Received": p.received_of(d).await,
                    "Size": d.transfer.size,
                    "Message": d.message,
                }));
            }
            Ok(Value::Array(items))
        }
        "Market.ListSectors" => {
            let deals = p.deals().await.map_err(|e| market_core::report(&e))?;
            let mut sectors: std::collections::BTreeMap<
                (String, u64),
                Vec<&storage_market::store::ProviderDeal>,
            > = Default::default();
            for d in &deals {
                if let Some(s) = d.sector {
                    sectors
                        .entry((d.miner.to_string(), s.0))
                        .or_default()
                        .push(d);
                }
            }
            Ok(Value::Array(
                sectors
                    .into_iter()
                    .map(|((miner, sector), ds)| {
                        json!({
                            "Miner": miner,
                            "Sector": sector,
                            "Deals": ds.iter().map(|d| json!({
                                "DealUuid": d.deal_uuid.to_string(),
                                "DealId": d.deal_id.map(|i| i.0),
                                "State": d.state.to_string(),
                                "PieceSize": d.proposal.proposal.piece_size,
                                "Offset": d.sector_offset,
                            })).collect::<Vec<_>>(),
                            "DealBytes": ds.iter().map(|d| d.proposal.proposal.piece_size).sum::<u64>(),
                        })
                    })
                    .collect(),
            ))
        }
        "Market.ActorSetPeerInfo" => {
            let m = miner(state, params)?;
            let extra: Vec<String> = match params.get(1) {
                None | Some(Value::Null) => Vec::new(),
                Some(v) => serde_json::from_value(v.clone())
                    .map_err(|_| "parameter 1 must be a list of multiaddrs".to_string())?,
            };
            let addrs = peer_multiaddrs(&state.peer.addrs, &state.peer.peer_id, &extra)?;
            let cids = set_peer_info(state, &m, &addrs)
                .await
                .map_err(|e| market_core::report(&e))?;
            // Landed before answering, so the next look at MinerInfo sees them.
            for c in &cids {
                state
                    .chain
                    .wait_message(c, 1)
                    .await
                    .map_err(|e| market_core::report(&e))?;
            }
            Ok(json!({
                "PeerId": state.peer.peer_id.to_string(),
                "Multiaddrs": addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                "Messages": cids.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
            }))
        }
        "Market.ImportData" => {
            let deal = deal_ref(params)?;
            let path = std::path::PathBuf::from(param(params, 1)?);
            p.import_data(deal, &path)
                .await
                .map_err(|e| market_core::report(&e))?;
            Ok(Value::Null)
        }
        "Market.ListPieces" => {
            let pieces = state
                .pieces
                .list()
                .await
                .map_err(|e| market_core::report(&e))?;
            let mut items = Vec::with_capacity(pieces.len());
            for m in &pieces {
                items.push(json!({
                    "PieceCid": m.piece_cid.to_string(),
                    "PayloadSize": m.payload_size,
                    "PieceSize": m.padded_size.get(),
                    "Ipni": ipni_summary(&state.ipni, &m.piece_cid).await?,
                }));
            }
            Ok(Value::Array(items))
        }
        _ => Err(format!("method '{}' not found", jsonrpc::clip(method))),
    }
}

/// Calls `method` on the admin API at `base` with `token`.
pub async fn call_remote(
    base: &Url,
    token: &str,
    method: &str,
    params: Value,
) -> Result<Value, String> {
    let url = base.join("rpc/v0").map_err(|e| market_core::report(&e))?;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let resp = reqwest::Client::new()
        .post(url)
        .header("Authorization", format!("Bearer {}", token.trim()))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| market_core::report(&e))?;
    let status = resp.status();
    let text = resp.text().await.map_err(|e| market_core::report(&e))?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", text.trim()));
    }
    let v: Value = serde_json::from_str(&text).map_err(|e| market_core::report(&e))?;
    if let Some(e) = v.get("error") {
        return Err(e
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("error")
            .to_string());
    }
    Ok(v.get("result").cloned().unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_multiaddrs_add_the_other_instances_once_and_refuse_what_the_actor_would() {
        let peer = libp2p::PeerId::random();
        let own: Vec<libp2p::Multiaddr> = vec!["/ip4/10.0.0.1/tcp/24001".parse().unwrap()];
        let extra = [
            "/ip4/10.0.0.2/tcp/24001".to_string(),
            format!("/ip4/10.0.0.3/tcp/24001/p2p/{peer}"),
            "/ip4/10.0.0.1/tcp/24001".to_string(),
        ];
        let got = peer_multiaddrs(&own, &peer, &extra).unwrap();
        let got: Vec<String> = got.iter().map(|a| a.to_string()).collect();
        assert_eq!(
            got,
            [
                "/ip4/10.0.0.1/tcp/24001",
                "/ip4/10.0.0.2/tcp/24001",
                "/ip4/10.0.0.3/tcp/24001"
            ]
        );
        assert_eq!(peer_multiaddrs(&own, &peer, &[]).unwrap(), own);

        let other = libp2p::PeerId::random();
        let named = peer_multiaddrs(&own, &peer, &[format!("/ip4/10.0.0.2/tcp/1/p2p/{other}")]);
        assert!(named.unwrap_err().contains("names peer"));
        assert!(peer_multiaddrs(&own, &peer, &["not an address".into()]).is_err());
        assert!(
            peer_multiaddrs(&own, &peer, &[format!("/p2p/{peer}")])
                .unwrap_err()
                .contains("no transport")
        );
        let many: Vec<String> = (0..200)
            .map(|i| format!("/dns4/instance-{i}.example.org/tcp/24001"))
            .collect();
        assert!(
            peer_multiaddrs(&own, &peer, &many)
                .unwrap_err()
                .contains("at most 1024")
        );
    }
}
