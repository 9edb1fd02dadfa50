//! A sealer's side of the pull API: the `VENUS_MARKET` calls damocles makes, and piece
//! downloads from `/resource`.

use futures::StreamExt;
use lotus_api::api_info::ApiInfo;
use lotus_api::json::AddressJson;
use lotus_api::rpc::{RpcClient, RpcConfig, RpcError};
use market_core::Cid;
use market_core::types::Address;
use url::Url;

use crate::api::NAMESPACE;
use crate::json::{DealInfo, DealInfoIncludePath, GetDealSpec, PieceInfoJson, SectorId};

/// Why a market call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The JSON-RPC call failed (the market's message is kept).
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// Downloading a piece failed.
    #[error("fetching piece {piece}: {reason}")]
    Fetch {
        /// The piece.
        piece: Box<Cid>,
        /// What went wrong.
        reason: String,
    },
}

/// A connection to a market's sealer API.
#[derive(Clone)]
pub struct MarketClient {
    rpc: RpcClient,
    resource: Url,
    token: Option<String>,
    http: reqwest::Client,
}

impl MarketClient {
    /// A client of the market at `info` (its `/rpc/v1` URL and a token with `write`).
    pub fn new(info: &ApiInfo) -> Self {
        let mut resource = info.url.clone();
        resource.set_path("/resource");
        resource.set_query(None);
        Self {
            rpc: RpcClient::new(
                info.url.clone(),
                info.token.clone(),
                NAMESPACE,
                RpcConfig::default(),
            ),
            resource,
            token: info.token.clone(),
            http: reqwest::Client::new(),
        }
    }

    /// `AssignUnPackedDeals`: deals (and zero fillers) for sector `sid`, in layout order.
    pub async fn assign_unpacked_deals(
        &self,
        sid: SectorId,
        sector_size: u64,
        spec: Option<&GetDealSpec>,
    ) -> Result<Vec<DealInfoIncludePath>, ClientError> {
        let deals: Option<Vec<DealInfoIncludePath>> = self
            .rpc
            .call("AssignUnPackedDeals", (sid, sector_size, spec))
            .await?;
        Ok(deals.unwrap_or_default())
    }

    /// `ReleaseDeals`: gives the deals of an aborted sector back.
    pub async fn release_deals(&self, miner: &Address, deals: &[u64]) -> Result<(), ClientError> {
        let _: Option<serde_json::Value> = self
            .rpc
            .call("ReleaseDeals", (AddressJson(*miner), deals))
            .await?;
        Ok(())
    }

    /// `UpdateDealStatus` (v1): sets a deal's piece status.
    pub async fn update_deal_status(
        &self,
        miner: &Address,
        deal: u64,
        piece_status: &str,
        deal_status: u64,
    ) -> Result<(), ClientError> {
        let _: Option<serde_json::Value> = self
            .rpc
            .call(
                "UpdateDealStatus",
                (AddressJson(*miner), deal, piece_status, deal_status),
            )
            .await?;
        Ok(())
    }

    /// `GetDealInfo`: one deal by id.
    pub async fn deal_info(&self, miner: &Address, deal: u64) -> Result<DealInfo, ClientError> {
        Ok(self
            .rpc
            .call("GetDealInfo", (AddressJson(*miner), deal))
            .await?)
    }

    /// `PiecesGetPieceInfo`: where a piece's deals are.
    pub async fn piece_info(&self, piece: &Cid) -> Result<PieceInfoJson, ClientError> {
        Ok(self
            .rpc
            .call("PiecesGetPieceInfo", (lotus_api::json::CidJson(*piece),))
            .await?)
    }

    /// `ActorSectorSize`.
    pub async fn sector_size(&self, miner: &Address) -> Result<u64, ClientError> {
        Ok(self
            .rpc
            .call("ActorSectorSize", (AddressJson(*miner),))
            .await?)
    }

    /// `ListenMarketEvent` over a WebSocket: the market's requests for `miner`, starting with
    /// `InitConnect`. The receiver closes when the connection drops (listen again then).
    pub async fn listen_events(
        &self,
        miner: &Address,
    ) -> Result<tokio::sync::mpsc::Receiver<crate::events::RequestEvent>, ClientError> {
        let mut raw = self
            .rpc
            .subscribe(
                "ListenMarketEvent",
                (serde_json::json!({"Miner": miner.to_string()}),),
            )
            .await?;
        let (tx, rx) = tokio::sync::mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(v) = raw.recv().await {
                match serde_json::from_value(v) {
                    Ok(e) => {
                        if tx.send(e).await.is_err() {
                            return;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "a market event that does not decode"),
                }
            }
        });
        Ok(rx)
    }

    /// `ResponseMarketEvent`: the answer to an event.
    pub async fn respond_event(
        &self,
        response: &crate::events::ResponseEvent,
    ) -> Result<(), ClientError> {
        let _: Option<serde_json::Value> =
            self.rpc.call("ResponseMarketEvent", (response,)).await?;
        Ok(())
    }

    /// `PUT`s `len` bytes read from `body` to `dest` (an unseal request's `Dest`, a
    /// `/resource` URL carrying its own token), streaming.
    pub async fn upload(
        &self,
        dest: &str,
        body: impl tokio::io::AsyncRead + Send + 'static,
        len: u64,
    ) -> Result<(), String> {
        let stream = tokio_util::io::ReaderStream::with_capacity(body, 1 << 20);
        let resp = self
            .http
            .put(dest)
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(reqwest::Body::wrap_stream(stream))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if resp.status().is_success() {
            Ok(())
        } else {
            let status = resp.status();
            Err(format!(
                "{status}: {}",
                resp.text().await.unwrap_or_default().trim()
            ))
        }
    }

    /// Streams a piece's payload from `/resource`, calling `sink` with each chunk; returns
    /// the byte count. At most `limit` bytes are accepted.
    pub async fn fetch_piece(
        &self,
        piece: &Cid,
        limit: u64,
        mut sink: impl FnMut(&[u8]),
    ) -> Result<u64, ClientError> {
        let fail = |reason: String| ClientError::Fetch {
            piece: Box::new(*piece),
            reason,
        };
        let mut url = self.resource.clone();
        url.query_pairs_mut()
            .append_pair("resource-id", &piece.to_string());
        let mut req = self.http.get(url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(fail(format!("{status}: {}", body.trim())));
        }
        let mut got = 0u64;
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| fail(format!("after {got} bytes: {e}")))?;
            got += chunk.len() as u64;
            if got > limit {
                return Err(fail(format!("more than the {limit} bytes the piece holds")));
            }
            sink(&chunk);
        }
        Ok(got)
    }
}
