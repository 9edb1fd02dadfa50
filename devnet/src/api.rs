//! The dev chain served as a Lotus full node: JSON-RPC v1 at `/rpc/v1` (and `/rpc/v0`), over
//! HTTP POST and WebSocket (`ChainNotify`), with Lotus's method names, JSON, JWT tokens and
//! per-method permissions, so the market reaches it through the same adapter as a real node.
//!
//! As on Lotus, a request without a token may call `read` methods; a token that does not
//! verify gets HTTP 401. `MpoolPushMessage` and `WalletSign` (`sign`) use only keys in the
//! devnet's own wallet; `MpoolPush` takes messages signed elsewhere and checks the signature.
//! Dev-only methods live in the `Dev` namespace: a capped faucet (`write`), and miner set-up
//! and the dev sealer's sector intake (`admin`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use commp::PaddedPieceSize;
use futures::{SinkExt, StreamExt};
use lotus_api::json::*;
use market_core::chain::{ChainError, ChainNode, Message, SectorStage};
use market_core::jsonrpc::{self, Call, Fault};
use market_core::jwt;
use market_core::message::{SignedMessage, UnsignedMessage};
use market_core::types::{ChainEpoch, DealId, SectorNumber, TokenAmount};
use market_core::wallet::{KeyStore, Wallet};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{Mutex, mpsc};

use crate::DevChain;

/// What the API serves.
#[derive(Clone)]
pub struct ApiState {
    chain: DevChain,
    wallet: KeyStore,
    secret: Arc<Vec<u8>>,
    faucet_cap: TokenAmount,
    block_delay_secs: u64,
    /// One `MpoolPushMessage` at a time: nonce assignment, signing and pushing are one step.
    pushing: Arc<Mutex<()>>,
}

impl ApiState {
    /// Serves `chain`, signing with `wallet`, verifying tokens with `secret`; the faucet pays
    /// each address at most `faucet_cap` in all.
    pub fn new(
        chain: DevChain,
        wallet: KeyStore,
        secret: Vec<u8>,
        faucet_cap: TokenAmount,
        block_delay_secs: u64,
    ) -> Self {
        Self {
            chain,
            wallet,
            secret: Arc::new(secret),
            faucet_cap,
            block_delay_secs,
            pushing: Arc::default(),
        }
    }
}

/// The routes `/rpc/v0` and `/rpc/v1` (POST for calls, GET to open a WebSocket).
pub fn router(state: ApiState) -> axum::Router {
    let route = axum::routing::post(http_call).get(ws_upgrade);
    axum::Router::new()
        .route("/rpc/v1", route.clone())
        .route("/rpc/v0", route)
        .with_state(state)
}

/// Every method served and the permission it needs (Lotus's `//perm:` tags).
pub const METHODS: &[(&str, &str)] = &[
    ("Filecoin.Version", jwt::READ),
    ("Filecoin.ChainHead", jwt::READ),
    ("Filecoin.ChainNotify", jwt::READ),
    ("Filecoin.ChainGetMessage", jwt::READ),
    ("Filecoin.StateMinerInfo", jwt::READ),
    ("Filecoin.StateMarketBalance", jwt::READ),
    ("Filecoin.StateDealProviderCollateralBounds", jwt::READ),
    ("Filecoin.StateVerifiedClientStatus", jwt::READ),
    ("Filecoin.StateAccountKey", jwt::READ),
    ("Filecoin.StateLookupID", jwt::READ),
    ("Filecoin.StateCall", jwt::READ),
    ("Filecoin.StateWaitMsg", jwt::READ),
    ("Filecoin.StateSearchMsg", jwt::READ),
    ("Filecoin.StateMarketStorageDeal", jwt::READ),
    ("Filecoin.StateSectorPreCommitInfo", jwt::READ),
    ("Filecoin.StateSectorGetInfo", jwt::READ),
    ("Filecoin.StateNetworkVersion", jwt::READ),
    ("Filecoin.StateNetworkName", jwt::READ),
    ("Filecoin.WalletBalance", jwt::READ),
    ("Filecoin.GasEstimateMessageGas", jwt::READ),
    ("Filecoin.MpoolGetNonce", jwt::READ),
    ("Filecoin.AuthVerify", jwt::READ),
    ("Filecoin.MpoolPush", jwt::WRITE),
    ("Filecoin.WalletHas", jwt::WRITE),
    ("Dev.Fund", jwt::WRITE),
    ("Message.PushMessageWithId", jwt::WRITE),
    ("Message.GetMessageByUid", jwt::READ),
    ("Filecoin.MpoolPushMessage", jwt::SIGN),
    ("Filecoin.WalletSign", jwt::SIGN),
    ("Filecoin.AuthNew", jwt::ADMIN),
    ("Dev.CreateMiner", jwt::ADMIN),
    ("Dev.AddVerifiedClient", jwt::ADMIN),
    ("Dev.SlashDeal", jwt::ADMIN),
    ("Dev.SectorAddPiece", jwt::ADMIN),
    ("Dev.SectorsPreCommit", jwt::ADMIN),
    ("Dev.SectorsProve", jwt::ADMIN),
];

/// The permission `method` needs; `None` for unknown methods.
pub fn permission(method: &str) -> Option<&'static str> {
    METHODS.iter().find(|(m, _)| *m == method).map(|(_, p)| *p)
}

/// A JSON-RPC error as go-jsonrpc sends it.
#[derive(Debug)]
struct RpcErr {
    code: i64,
    message: String,
}

impl RpcErr {
    fn node(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: message.into(),
        }
    }
    fn params(message: impl Into<String>) -> Self {
        Self {
            code: -32602,
            message: message.into(),
        }
    }
}

impl From<ChainError> for RpcErr {
    fn from(e: ChainError) -> Self {
        match e {
            ChainError::ActorNotFound(a) => {
                Self::node(format!("resolution lookup failed ({a}): actor not found"))
            }
            ChainError::MessageNotFound(c) => Self::node(format!("message {c} not found")),
            e => Self::node(e.to_string()),
        }
    }
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The permissions of the caller, or 401 for a token that does not verify.
fn perms(
    state: &ApiState,
    headers: &HeaderMap,
    query: &TokenQuery,
) -> Result<Vec<String>, &'static str> {
    let header = headers
        .get("Authorization")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let token = match (header, &query.token) {
        (Some(h), _) => match h.strip_prefix("Bearer ") {
            Some(t) => Some(t.trim().to_string()),
            None => return Err("malformed Authorization header"),
        },
        (None, Some(t)) => Some(t.clone()),
        (None, None) => None,
    };
    match token {
        None => Ok(vec![jwt::READ.to_string()]),
        Some(t) => jwt::verify(&state.secret, &t).map_err(|_| "invalid token"),
    }
}

/// Largest request body accepted.
const MAX_REQUEST_BYTES: usize = 8 << 20;

async fn http_call(
    State(state): State<ApiState>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let held = match perms(&state, &headers, &query) {
        Ok(p) => p,
        Err(why) => return (StatusCode::UNAUTHORIZED, why).into_response(),
    };
    if body.len() > MAX_REQUEST_BYTES {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request too large").into_response();
    }
    match call(&state, &held, &body).await {
        Some(answer) => axum::Json(answer).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

/// Answers one JSON-RPC request body (a call or a batch) from a caller holding `held`
/// permissions, as the HTTP route does (`None` when only notifications came). Malformed
/// input gets a JSON-RPC error, never a panic; the fuzz target in `devnet/fuzz` drives this.
pub async fn call(state: &ApiState, held: &[String], body: &[u8]) -> Option<Value> {
    let limits = jsonrpc::Limits::default();
    jsonrpc::answer(body, &limits, |c: Call| async move {
        run(state, held, &c, None)
            .await
            .unwrap_or(Ok(Value::Null))
            .map_err(Fault::from)
    })
    .await
}

impl From<RpcErr> for Fault {
    fn from(e: RpcErr) -> Self {
        Fault::new(e.code, e.message)
    }
}

/// Runs one call; `None` when the call answered itself (a channel method, whose answer must
/// reach the client before its first value). `out` is the WebSocket's outgoing queue.
async fn run(
    state: &ApiState,
    held: &[String],
    call: &Call,
    out: Option<(&mpsc::Sender<String>, &AtomicU64)>,
) -> Option<Result<Value, RpcErr>> {
    let method = call.method.as_str();
    if method == "xrpc.cancel" {
        return Some(Ok(Value::Null));
    }
    Some(match permission(method) {
        None => Err(Fault::not_found(method).into()),
        Some(need) if !jwt::allows(held, need) => Err(RpcErr::node(format!(
            "missing permission to invoke '{}' (need '{need}')",
            method.trim_start_matches("Filecoin.")
        ))),
        Some(_) if method == "Filecoin.ChainNotify" => match out {
            Some((tx, next)) => {
                let ch = next.fetch_add(1, Ordering::SeqCst) + 1;
                let id = call.id.clone().unwrap_or(Value::Null);
                let answer = jsonrpc::reply(id, Ok(ch.into()));
                if tx.send(answer.to_string()).await.is_ok() {
                    notify(state, tx.clone(), ch);
                }
                return None;
            }
            None => Err(RpcErr {
                code: jsonrpc::METHOD_NOT_FOUND,
                message: "not supported in this mode (no out channel support)".into(),
            }),
        },
        Some(_) => dispatch(state, method, &call.params).await,
    })
}

impl From<Fault> for RpcErr {
    fn from(f: Fault) -> Self {
        Self {
            code: f.code,
            message: f.message,
        }
    }
}

struct Params<'a> {
    method: &'a str,
    values: &'a [Value],
}

impl Params<'_> {
    fn count(&self, n: usize) -> Result<(), RpcErr> {
        if self.values.len() != n {
            return Err(RpcErr::params(format!(
                "wrong param count (method '{}'): {} != {n}",
                self.method,
                self.values.len()
            )));
        }
        Ok(())
    }

    fn get<T: DeserializeOwned>(&self, i: usize) -> Result<T, RpcErr> {
        let v = self.values.get(i).cloned().unwrap_or(Value::Null);
        serde_json::from_value(v).map_err(|e| {
            RpcErr::params(format!(
                "unmarshaling params for '{}' (param: {i}): {e}",
                self.method
            ))
        })
    }
}

fn to<T: Serialize>(v: T) -> Result<Value, RpcErr> {
    serde_json::to_value(v).map_err(|e| RpcErr::node(e.to_string()))
}

fn tipset(epoch: ChainEpoch) -> TipSetJson {
    TipSetJson {
        cids: vec![DevChain::tipset_key(epoch)],
        blocks: Vec::new(),
        height: epoch.get(),
    }
}

fn lookup_json(cid: market_core::Cid, l: &market_core::chain::MessageLookup) -> MsgLookupJson {
    MsgLookupJson {
        message: cid,
        receipt: ReceiptJson {
            exit_code: l.receipt.exit_code.0,
            return_data: l.receipt.return_data.clone(),
            gas_used: crate::chain::GAS_LIMIT / 2,
            events_root: None,
        },
        return_dec: Value::Null,
        tipset: vec![DevChain::tipset_key(l.epoch)],
        height: l.epoch.get(),
    }
}

async fn dispatch(state: &ApiState, method: &str, values: &[Value]) -> Result<Value, RpcErr> {
    let p = Params { method, values };
    let chain = &state.chain;
    match method {
        "Filecoin.Version" => to(VersionJson {
            version: format!("{}+devnet", env!("CARGO_PKG_VERSION")),
            api_version: 131840,
            block_delay: state.block_delay_secs,
            agent: "fil-market-rs devnet".into(),
        }),
        "Filecoin.ChainHead" => to(tipset(chain.epoch())),
        "Filecoin.ChainGetMessage" => {
            p.count(1)?;
            let CidJson(c) = p.get(0)?;
            let m = chain
                .message(&c)
                .ok_or_else(|| RpcErr::node(format!("message {c} not found")))?;
            to(MessageJson::from(&m))
        }
        "Filecoin.StateMinerInfo" => {
            p.count(2)?;
            let AddressJson(a) = p.get(0)?;
            let info = chain.miner_info(&a).await?;
            let worker = chain.lookup_id(&info.worker).await?;
            let owner = chain.lookup_id(&info.owner).await?;
            let peer = chain.miner_peer_info(&a);
            use base64::Engine as _;
            to(MinerInfoJson {
                owner,
                worker,
                control_addresses: info.control_addresses,
                // Lotus prints the peer id in base58; its bytes are the multihash.
                peer_id: peer.peer_id.and_then(|b| libp2p_identity_text(&b)),
                multiaddrs: peer
                    .multiaddrs
                    .iter()
                    .map(|m| base64::engine::general_purpose::STANDARD.encode(m))
                    .collect(),
                sector_size: info.sector_size,
                window_po_st_proof_type: 13,
            })
        }
        "Filecoin.StateMarketBalance" => {
            p.count(2)?;
            let AddressJson(a) = p.get(0)?;
            to(MarketBalanceJson::from(chain.market_balance(&a).await?))
        }
        "Filecoin.StateDealProviderCollateralBounds" => {
            p.count(3)?;
            let size: u64 = p.get(0)?;
            let verified: bool = p.get(1)?;
            let size = PaddedPieceSize::new(size).map_err(|e| RpcErr::node(e.to_string()))?;
            let b = chain.collateral_bounds(size, verified).await?;
            to(CollateralBoundsJson {
                min: b.min,
                max: b.max,
            })
        }
        "Filecoin.StateVerifiedClientStatus" => {
            p.count(2)?;
            let AddressJson(a) = p.get(0)?;
            to(chain.datacap(&a).await?.map(|d| d.to_string()))
        }
        "Filecoin.StateAccountKey" => {
            p.count(2)?;
            let AddressJson(a) = p.get(0)?;
            to(AddressJson(chain.account_key(&a).await?))
        }
        "Filecoin.StateLookupID" => {
            p.count(2)?;
            let AddressJson(a) = p.get(0)?;
            to(AddressJson(chain.lookup_id(&a).await?))
        }
        "Filecoin.StateCall" => {
            p.count(2)?;
            let m: MessageJson = p.get(0)?;
            let msg = Message {
                from: m.from,
                to: m.to,
                method: m.method,
                params: m.params,
                value: m.value,
                max_fee: TokenAmount::ZERO,
                uuid: None,
            };
            let r = chain.call(&msg).await?;
            to(InvocResultJson {
                receipt: Some(ReceiptJson {
                    exit_code: r.exit_code.0,
                    return_data: r.return_data,
                    gas_used: crate::chain::GAS_LIMIT / 2,
                    events_root: None,
                }),
                error: if r.exit_code.is_ok() {
                    String::new()
                } else {
                    format!("message execution failed: exit {}", r.exit_code)
                },
            })
        }
        "Filecoin.StateWaitMsg" => {
            p.count(4)?;
            let CidJson(c) = p.get(0)?;
            let confidence: u64 = p.get(1)?;
            let found = chain.wait_message(&c, confidence).await?;
            to(lookup_json(c, &found))
        }
        "Filecoin.StateSearchMsg" => {
            p.count(4)?;
            let CidJson(c) = p.get(1)?;
            to(chain.lookup(&c).map(|l| lookup_json(c, &l)))
        }
        "Filecoin.StateMarketStorageDeal" => {
            p.count(2)?;
            let id: u64 = p.get(0)?;
            let d = chain
                .market_deal(DealId(id))
                .await?
                .ok_or_else(|| RpcErr::node(format!("deal {id} not found")))?;
            to(MarketDealJson {
                proposal: (&d.proposal).into(),
                state: DealStateJson {
                    sector_number: d.sector.map_or(0, |s| s.0),
                    sector_start_epoch: d.state.sector_start_epoch.get(),
                    last_updated_epoch: d.state.last_updated_epoch.get(),
                    slash_epoch: d.state.slash_epoch.get(),
                },
            })
        }
        "Filecoin.StateSectorPreCommitInfo" | "Filecoin.StateSectorGetInfo" => {
            p.count(3)?;
            let AddressJson(miner) = p.get(0)?;
            let n: u64 = p.get(1)?;
            let Some(record) = chain.sector_record(&miner, SectorNumber(n)) else {
                return Ok(Value::Null);
            };
            let info = &record.info;
            let deal_ids: Vec<u64> = info.deal_ids.iter().map(|d| d.0).collect();
            let proven = record.stage == SectorStage::Proven;
            Ok(if method.ends_with("PreCommitInfo") {
                if proven {
                    return Ok(Value::Null);
                }
                to(SectorPreCommitOnChainJson {
                    info: SectorPreCommitInfoJson {
                        seal_proof: info.seal_proof,
                        sector_number: n,
                        sealed_cid: info.sealed_cid,
                        seal_rand_epoch: info.seal_rand_epoch.get(),
                        deal_ids,
                        expiration: info.expiration.get(),
                        unsealed_cid: info.unsealed_cid,
                    },
                    pre_commit_deposit: TokenAmount::ZERO,
                    pre_commit_epoch: record.precommit_epoch,
                })?
            } else if proven {
                to(SectorOnChainJson {
                    sector_number: n,
                    seal_proof: info.seal_proof,
                    sealed_cid: info.sealed_cid,
                    deal_ids,
                    activation: record.activation,
                    expiration: info.expiration.get(),
                })?
            } else {
                Value::Null
            })
        }
        "Filecoin.StateNetworkVersion" => {
            p.count(1)?;
            to(chain.version().0)
        }
        "Filecoin.StateNetworkName" => to(&chain.config().network_name),
        "Filecoin.WalletBalance" => {
            p.count(1)?;
            let AddressJson(a) = p.get(0)?;
            to(AmountJson(chain.wallet_balance(&a).await?))
        }
        "Filecoin.WalletHas" => {
            p.count(1)?;
            let AddressJson(a) = p.get(0)?;
            let key = chain.account_key(&a).await.unwrap_or(a);
            to(state.wallet.has(&key).await)
        }
        "Filecoin.WalletSign" => {
            p.count(2)?;
            let AddressJson(a) = p.get(0)?;
            let data: String = p.get(1)?;
            let data = B64
                .decode(data.as_bytes())
                .map_err(|e| RpcErr::params(e.to_string()))?;
            let key = chain.account_key(&a).await?;
            let sig = state
                .wallet
                .sign(&key, &data)
                .await
                .map_err(|e| RpcErr::node(format!("failed to sign: {e}")))?;
            to(SignatureJson::from(&sig))
        }
        "Filecoin.GasEstimateMessageGas" => {
            p.count(3)?;
            let m: MessageJson = p.get(0)?;
            let spec: Option<MessageSendSpec> = p.get(1)?;
            let max_fee = spec.map(|s| s.max_fee).unwrap_or(TokenAmount::ZERO);
            to(MessageJson::from(&chain.estimate_gas(&m.into(), max_fee)))
        }
        "Filecoin.MpoolGetNonce" => {
            p.count(1)?;
            let AddressJson(a) = p.get(0)?;
            to(chain.next_nonce(&a))
        }
        "Filecoin.MpoolPush" => {
            p.count(1)?;
            let m: SignedMessageJson = p.get(0)?;
            let signed: SignedMessage = m.try_into().map_err(RpcErr::params)?;
            to(CidJson(chain.push_signed(&signed)?))
        }
        "Filecoin.MpoolPushMessage" => {
            p.count(2)?;
            let m: MessageJson = p.get(0)?;
            let spec: Option<MessageSendSpec> = p.get(1)?;
            push_message(state, m.into(), spec).await
        }
        "Filecoin.AuthVerify" => {
            p.count(1)?;
            let t: String = p.get(0)?;
            let perms = jwt::verify(&state.secret, &t)
                .map_err(|e| RpcErr::node(format!("JWT Verification failed: {e}")))?;
            to(perms)
        }
        "Filecoin.AuthNew" => {
            p.count(1)?;
            let perms: Vec<String> = p.get(0)?;
            let perms: Vec<&str> = perms.iter().map(String::as_str).collect();
            to(B64
                .encode(jwt::sign(&state.secret, &perms).map_err(|e| RpcErr::node(e.to_string()))?))
        }
        // sophon-messager's pair, signing with the devnet's wallet as the messager would have
        // sophon-gateway sign.
        "Message.PushMessageWithId" => {
            p.count(3)?;
            let id: String = p.get(0)?;
            let m: MessageJson = p.get(1)?;
            let spec: Value = p.get(2)?;
            let uuid = messager_uuid(&id);
            if chain.message_for_uuid(&uuid).is_some() {
                return Err(RpcErr::node(format!("message with id {id} already exists")));
            }
            let max_fee = spec
                .get("maxFee")
                .and_then(Value::as_str)
                .and_then(|s| s.parse::<u128>().ok())
                .map(TokenAmount::from_atto)
                .unwrap_or(TokenAmount::ZERO);
            let spec = MessageSendSpec {
                max_fee,
                msg_uuid: Some(uuid),
                maximize_fee_cap: false,
            };
            push_message(state, m.into(), Some(spec)).await?;
            to(id)
        }
        "Message.GetMessageByUid" => {
            p.count(1)?;
            let id: String = p.get(0)?;
            let cid = chain
                .message_for_uuid(&messager_uuid(&id))
                .ok_or_else(|| RpcErr::node(format!("message {id} not found")))?;
            let landed = chain.lookup(&cid);
            Ok(json!({
                "ID": id,
                "SignedCid": {"/": cid.to_string()},
                "State": if landed.is_some() { 3 } else { 2 },
                "Height": landed.as_ref().map(|l| l.epoch.get()).unwrap_or(0),
                "Receipt": landed.map(|l| ReceiptJson {
                    exit_code: l.receipt.exit_code.0,
                    return_data: l.receipt.return_data,
                    gas_used: crate::chain::GAS_LIMIT / 2,
                    events_root: None,
                }),
                "ErrorMsg": "",
            }))
        }
        "Dev.Fund" => {
            p.count(2)?;
            let AddressJson(a) = p.get(0)?;
            let AmountJson(amount) = p.get(1)?;
            to(AddressJson(chain.faucet(&a, amount, state.faucet_cap)?))
        }
        "Dev.CreateMiner" => {
            p.count(3)?;
            let AddressJson(owner) = p.get(0)?;
            let AddressJson(worker) = p.get(1)?;
            let size: u64 = p.get(2)?;
            let miner = match chain.find_miner(&owner, &worker) {
                Some(m) => m,
                None => chain.create_miner(&owner, &worker, size),
            };
            to(AddressJson(miner))
        }
        "Dev.AddVerifiedClient" => {
            p.count(2)?;
            let AddressJson(a) = p.get(0)?;
            let bytes: String = p.get(1)?;
            let bytes: u128 = bytes.parse().map_err(|e| RpcErr::params(format!("{e}")))?;
            chain.add_verified_client(&a, bytes);
            Ok(Value::Null)
        }
        "Dev.SlashDeal" => {
            p.count(1)?;
            let id: u64 = p.get(0)?;
            chain.slash_deal(DealId(id))?;
            Ok(Value::Null)
        }
        "Dev.SectorAddPiece" => {
            p.count(2)?;
            let AddressJson(miner) = p.get(0)?;
            let deal: u64 = p.get(1)?;
            to(chain.seal_add_piece(&miner, DealId(deal)).0)
        }
        "Dev.SectorsPreCommit" => to(chain.seal_precommit_all()),
        "Dev.SectorsProve" => to(chain.seal_prove_all()),
        other => Err(Fault::not_found(other).into()),
    }
}

/// The idempotency key of a messager id: the id itself when it is a uuid.
fn messager_uuid(id: &str) -> uuid::Uuid {
    uuid::Uuid::parse_str(id).unwrap_or_else(|_| {
        let h = market_core::deal::blake2b_256(id.as_bytes());
        let mut b = [0u8; 16];
        b.copy_from_slice(&h[..16]);
        uuid::Builder::from_custom_bytes(b).into_uuid()
    })
}

/// `MpoolPushMessage`: nonce, gas within `MaxFee`, signature by the devnet's wallet, push. A
/// repeated `MsgUuid` returns the message first pushed for it.
async fn push_message(
    state: &ApiState,
    msg: UnsignedMessage,
    spec: Option<MessageSendSpec>,
) -> Result<Value, RpcErr> {
    let chain = &state.chain;
    let _one = state.pushing.lock().await;
    let uuid = spec.as_ref().and_then(|s| s.msg_uuid);
    let key = chain.account_key(&msg.from).await?;
    if !state.wallet.has(&key).await {
        return Err(RpcErr::node(format!(
            "key not found for {}: MpoolPushMessage signs with the node's wallet only",
            msg.from
        )));
    }
    let sign = |m: UnsignedMessage| async {
        let signature = state
            .wallet
            .sign(&key, &m.cid().to_bytes())
            .await
            .map_err(|e| RpcErr::node(format!("failed to sign: {e}")))?;
        Ok::<_, RpcErr>(SignedMessage {
            message: m,
            signature,
        })
    };
    if let Some(cid) = uuid.and_then(|u| chain.message_for_uuid(&u))
        && let Some(first) = chain.message(&cid)
    {
        // Signatures are deterministic (RFC 6979), so this is the message first signed.
        return to(SignedMessageJson::from(&sign(first).await?));
    }
    let max_fee = spec.map(|s| s.max_fee).unwrap_or(TokenAmount::ZERO);
    let mut m = UnsignedMessage { from: key, ..msg };
    m.nonce = chain.next_nonce(&key);
    let m = chain.estimate_gas(&m, max_fee);
    let signed = sign(m).await?;
    let cid = chain.push_signed(&signed)?;
    if let Some(u) = uuid {
        chain.remember_uuid(u, cid);
    }
    to(SignedMessageJson::from(&signed))
}

/// Feeds `ChainNotify` channel `ch` on a WebSocket: first the current head, then one `apply`
/// per new epoch.
fn notify(state: &ApiState, tx: mpsc::Sender<String>, ch: u64) {
    let mut heads = state.chain.subscribe();
    let first = *heads.borrow_and_update();
    tokio::spawn(async move {
        let frame = |kind: &str, epoch: ChainEpoch| {
            json!({"jsonrpc": "2.0", "method": "xrpc.ch.val",
                   "params": [ch, [HeadChangeJson { kind: kind.into(), val: tipset(epoch) }]]})
            .to_string()
        };
        if tx.send(frame("current", first)).await.is_err() {
            return;
        }
        let mut last = first;
        while heads.changed().await.is_ok() {
            let now = *heads.borrow_and_update();
            for e in last.get() + 1..=now.get() {
                if tx.send(frame("apply", ChainEpoch::new(e))).await.is_err() {
                    return;
                }
            }
            last = now;
        }
        let close = json!({"jsonrpc": "2.0", "method": "xrpc.ch.close", "params": [ch]});
        let _ = tx.send(close.to_string()).await;
    });
}

async fn ws_upgrade(
    State(state): State<ApiState>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let held = match perms(&state, &headers, &query) {
        Ok(p) => p,
        Err(why) => return (StatusCode::UNAUTHORIZED, why).into_response(),
    };
    ws.max_message_size(MAX_REQUEST_BYTES)
        .on_upgrade(move |socket| serve_socket(state, held, socket))
}

async fn serve_socket(state: ApiState, held: Vec<String>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::channel::<String>(256);
    let writer = tokio::spawn(async move {
        while let Some(text) = rx.recv().await {
            if sink.send(WsMessage::Text(text.into())).await.is_err() {
                break;
            }
        }
    });
    let channels = Arc::new(AtomicU64::new(0));
    let held = Arc::new(held);
    while let Some(Ok(frame)) = stream.next().await {
        let text = match frame {
            WsMessage::Text(t) => t.to_string(),
            WsMessage::Close(_) => break,
            _ => continue,
        };
        let (state, held, tx, channels) =
            (state.clone(), held.clone(), tx.clone(), channels.clone());
        tokio::spawn(async move {
            let call = match serde_json::from_str::<Value>(&text) {
                Ok(req) => jsonrpc::call_of(req),
                Err(e) => Err((
                    Value::Null,
                    Fault::new(jsonrpc::PARSE_ERROR, format!("parse error: {e}")),
                )),
            };
            let answer = match call {
                Err((id, fault)) => Some(jsonrpc::reply(id, Err(fault))),
                Ok(call) => match run(&state, &held, &call, Some((&tx, &channels))).await {
                    Some(result) => call
                        .id
                        .map(|id| jsonrpc::reply(id, result.map_err(Fault::from))),
                    None => None,
                },
            };
            if let Some(a) = answer {
                let _ = tx.send(a.to_string()).await;
            }
        });
    }
    drop(tx);
    writer.abort();
}

/// A peer id's bytes as Lotus prints them (base58), or `None` if they are not a peer id.
fn libp2p_identity_text(bytes: &[u8]) -> Option<String> {
    market_core::libp2p::PeerId::from_bytes(bytes)
        .ok()
        .map(|p| p.to_string())
}
