//! The dev chain over HTTP, so that a client CLI in another process can use the chain the
//! provider daemon runs.
//!
//! JSON-RPC 2.0 at `/chain/v0`; because the arguments and results are the chain's own CBOR
//! types, each travels as one base64 DAG-CBOR string (`params: ["<b64>"]`, `result: "<b64>"`).
//! Only served when the daemon runs the dev chain: there it stands in for a Lotus node, whose
//! `MpoolPushMessage` likewise signs with keys the node holds. `Dev.Fund` is a faucet.

use crate::DevChain;
use async_trait::async_trait;
use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use commp::PaddedPieceSize;
use market_core::Cid;
use market_core::chain::*;
use market_core::types::{Address, ChainEpoch, DealId, SectorNumber, TokenAmount};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn enc<T: Serialize>(v: &T) -> String {
    B64.encode(serde_ipld_dagcbor::to_vec(v).expect("chain types encode"))
}

fn dec<T: DeserializeOwned>(s: &str) -> Result<T, String> {
    let bytes = B64.decode(s).map_err(|e| e.to_string())?;
    serde_ipld_dagcbor::from_slice(&bytes).map_err(|e| e.to_string())
}

/// The `/chain/v0` route over `chain`.
pub fn router(chain: DevChain) -> axum::Router {
    axum::Router::new()
        .route("/chain/v0", axum::routing::post(handle))
        .with_state(chain)
}

async fn handle(State(chain): State<DevChain>, Json(req): Json<Value>) -> Json<Value> {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let method = req
        .get("method")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let arg = req
        .get("params")
        .and_then(|p| p.get(0))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let result = dispatch(&chain, method, &arg).await;
    Json(match result {
        Ok(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": {"code": 1, "message": e}}),
    })
}

async fn dispatch(chain: &DevChain, method: &str, arg: &str) -> Result<String, String> {
    let e = |e: ChainError| e.to_string();
    Ok(match method {
        "Chain.Head" => enc(&chain.head().await.map_err(e)?),
        "Chain.MinerInfo" => enc(&chain.miner_info(&dec(arg)?).await.map_err(e)?),
        "Chain.MarketBalance" => enc(&chain.market_balance(&dec(arg)?).await.map_err(e)?),
        "Chain.CollateralBounds" => {
            let (size, verified): (u64, bool) = dec(arg)?;
            let size = PaddedPieceSize::new(size).map_err(|e| e.to_string())?;
            enc(&chain.collateral_bounds(size, verified).await.map_err(e)?)
        }
        "Chain.Datacap" => enc(&chain.datacap(&dec(arg)?).await.map_err(e)?),
        "Chain.AccountKey" => enc(&chain.account_key(&dec(arg)?).await.map_err(e)?),
        "Chain.LookupId" => enc(&chain.lookup_id(&dec(arg)?).await.map_err(e)?),
        "Chain.PushMessage" => enc(&chain.push_message(dec(arg)?).await.map_err(e)?),
        "Chain.Call" => enc(&chain.call(&dec(arg)?).await.map_err(e)?),
        "Chain.WaitMessage" => {
            let (cid, confidence): (Cid, u64) = dec(arg)?;
            enc(&chain.wait_message(&cid, confidence).await.map_err(e)?)
        }
        "Chain.MarketDeal" => enc(&chain.market_deal(dec(arg)?).await.map_err(e)?),
        "Chain.SectorPrecommitted" => {
            let (miner, sector): (Address, SectorNumber) = dec(arg)?;
            enc(&chain.sector_precommitted(&miner, sector).await.map_err(e)?)
        }
        "Chain.WalletBalance" => enc(&chain.wallet_balance(&dec(arg)?).await.map_err(e)?),
        "Dev.Fund" => {
            let (addr, amount): (Address, TokenAmount) = dec(arg)?;
            enc(&chain.fund(&addr, amount))
        }
        other => return Err(format!("unknown method {other}")),
    })
}

/// A [`ChainNode`] reached over `/chain/v0`.
#[derive(Clone)]
pub struct RemoteChain {
    url: url::Url,
    http: reqwest::Client,
}

impl RemoteChain {
    /// The chain at `url` (`http://host:port/chain/v0`).
    pub fn new(url: url::Url) -> Self {
        Self {
            url,
            http: reqwest::Client::new(),
        }
    }

    async fn rpc<A: Serialize, R: DeserializeOwned>(
        &self,
        method: &str,
        arg: &A,
    ) -> Result<R, ChainError> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": [enc(arg)]});
        let resp = self
            .http
            .post(self.url.clone())
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| ChainError::Node(e.to_string()))?;
        let v: Value = serde_json::from_slice(
            &resp
                .bytes()
                .await
                .map_err(|e| ChainError::Node(e.to_string()))?,
        )
        .map_err(|e| ChainError::Node(e.to_string()))?;
        if let Some(err) = v.get("error") {
            return Err(ChainError::Node(
                err.get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("error")
                    .to_string(),
            ));
        }
        let r = v
            .get("result")
            .and_then(Value::as_str)
            .ok_or_else(|| ChainError::Node("no result".into()))?;
        dec(r).map_err(ChainError::Node)
    }

    /// Dev-chain faucet: credits `amount` to `addr`; returns its id address.
    pub async fn fund(&self, addr: &Address, amount: TokenAmount) -> Result<Address, ChainError> {
        self.rpc("Dev.Fund", &(addr, amount)).await
    }
}

#[async_trait]
impl ChainNode for RemoteChain {
    async fn head(&self) -> Result<ChainEpoch, ChainError> {
        self.rpc("Chain.Head", &()).await
    }
    async fn miner_info(&self, miner: &Address) -> Result<MinerInfo, ChainError> {
        self.rpc("Chain.MinerInfo", miner).await
    }
    async fn market_balance(&self, addr: &Address) -> Result<MarketBalance, ChainError> {
        self.rpc("Chain.MarketBalance", addr).await
    }
    async fn collateral_bounds(
        &self,
        size: PaddedPieceSize,
        verified: bool,
    ) -> Result<CollateralBounds, ChainError> {
        self.rpc("Chain.CollateralBounds", &(size.get(), verified))
            .await
    }
    async fn datacap(&self, client: &Address) -> Result<Option<u128>, ChainError> {
        self.rpc("Chain.Datacap", client).await
    }
    async fn account_key(&self, addr: &Address) -> Result<Address, ChainError> {
        self.rpc("Chain.AccountKey", addr).await
    }
    async fn lookup_id(&self, addr: &Address) -> Result<Address, ChainError> {
        self.rpc("Chain.LookupId", addr).await
    }
    async fn push_message(&self, msg: Message) -> Result<Cid, ChainError> {
        self.rpc("Chain.PushMessage", &msg).await
    }
    async fn call(&self, msg: &Message) -> Result<Receipt, ChainError> {
        self.rpc("Chain.Call", msg).await
    }
    async fn wait_message(&self, cid: &Cid, confidence: u64) -> Result<MessageLookup, ChainError> {
        self.rpc("Chain.WaitMessage", &(cid, confidence)).await
    }
    async fn market_deal(&self, id: DealId) -> Result<Option<MarketDeal>, ChainError> {
        self.rpc("Chain.MarketDeal", &id).await
    }
    async fn sector_precommitted(
        &self,
        miner: &Address,
        sector: SectorNumber,
    ) -> Result<bool, ChainError> {
        self.rpc("Chain.SectorPrecommitted", &(miner, sector)).await
    }
    async fn wallet_balance(&self, addr: &Address) -> Result<TokenAmount, ChainError> {
        self.rpc("Chain.WalletBalance", addr).await
    }
}
