//! The push model: hand each piece to lotus-miner with `SectorAddPieceToAny`, as Boost does.
//!
//! The piece travels as go-jsonrpc's HTTP ReaderStream (`{"Type":"http","Info":<url>}`):
//! lotus-miner GETs the URL and must receive exactly the unpadded piece size, so the URL
//! serves the stored payload followed by zeros. Each URL is a one-off ticket (a random
//! UUID in the path) that works only while its call runs. "too many sectors sealing" means
//! the miner's pipeline is full: ask again every [`LotusMinerConfig::retry_interval`] for
//! up to [`LotusMinerConfig::retry_for`] (Boost: 5 minutes, 6 hours), then fail the deal.
//!
//! The sector is followed with `SectorsStatus` (its state shows in the deal's message); the
//! deal's activation itself is read from the chain.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use lotus_api::json::DealProposalJson;
use lotus_api::rpc::{RpcClient, RpcError};
use market_core::types::{Address, SectorNumber};
use storage_market::sealer::{
    Handoff, PieceHandle, PieceLocation, Sealer, SealerError, SealingDeal,
};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream as BodyStream;
use url::Url;

use crate::json::{DealSchedule, PieceDealInfo, ReaderStream, SectorOffset, SectorStatus};

/// The error text lotus-miner answers while its sealing pipeline is full.
pub const TOO_MANY_SECTORS: &str = "too many sectors sealing";

/// Sector states of sectors still taking or packing pieces: where a piece handed over
/// before a crash may already sit.
const PACKING_STATES: &[&str] = &["WaitDeals", "AddPiece", "Packing", "AddPieceFailed"];

/// Push sealer settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LotusMinerConfig {
    /// Pause before asking again when the pipeline is full.
    pub retry_interval: Duration,
    /// Give up (fail the deal) after asking for this long.
    pub retry_for: Duration,
}

impl Default for LotusMinerConfig {
    fn default() -> Self {
        Self {
            retry_interval: Duration::from_secs(300),
            retry_for: Duration::from_secs(6 * 3600),
        }
    }
}

impl LotusMinerConfig {
    /// Sets [`retry_interval`](Self::retry_interval).
    pub fn with_retry_interval(mut self, d: Duration) -> Self {
        self.retry_interval = d;
        self
    }

    /// Sets [`retry_for`](Self::retry_for).
    pub fn with_retry_for(mut self, d: Duration) -> Self {
        self.retry_for = d;
        self
    }
}

type Tickets = Arc<Mutex<HashMap<uuid::Uuid, (PieceHandle, u64)>>>;

/// Hands pieces to lotus-miner (or Curio's lotus-miner-compatible API).
#[derive(Clone)]
pub struct LotusMinerSealer {
    rpc: RpcClient,
    base: Url,
    config: LotusMinerConfig,
    tickets: Tickets,
}

impl LotusMinerSealer {
    /// A sealer calling lotus-miner through `rpc` (namespace `Filecoin`, an admin token),
    /// serving pieces under `base` (this node's HTTP URL as the miner reaches it).
    pub fn new(rpc: RpcClient, base: Url, config: LotusMinerConfig) -> Self {
        Self {
            rpc,
            base,
            config,
            tickets: Arc::default(),
        }
    }

    /// The route lotus-miner fetches pieces from: mount it on the node's HTTP server.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/sealing/pieces/{ticket}", axum::routing::get(serve_piece))
            .with_state(self.tickets.clone())
    }

    /// Where lotus-miner already put `deal`, if a sector still packing holds it (the call
    /// that placed it may have been cut off by a crash).
    async fn find_placed(&self, deal: &SealingDeal) -> Result<Option<PieceLocation>, RpcError> {
        let sectors: Option<Vec<u64>> = self
            .rpc
            .call("SectorsListInStates", (PACKING_STATES,))
            .await?;
        for n in sectors.unwrap_or_default() {
            let status: serde_json::Value = self.rpc.call("SectorsStatus", (n, false)).await?;
            let mut offset = 0u64;
            for piece in status["Pieces"].as_array().into_iter().flatten() {
                let size = piece["Piece"]["Size"].as_u64().unwrap_or(0);
                let id = piece["DealInfo"]["DealID"].as_u64();
                if id == Some(deal.deal_id.0) {
                    return Ok(Some(PieceLocation {
                        sector: SectorNumber(n),
                        offset,
                    }));
                }
                offset += size;
            }
        }
        Ok(None)
    }

    async fn add(&self, deal: &SealingDeal, piece: &PieceHandle) -> Result<Handoff, SealerError> {
        let unavailable = |e: RpcError| SealerError::Unavailable(format!("lotus-miner: {e}"));
        if let Some(at) = self.find_placed(deal).await.map_err(unavailable)? {
            return Ok(Handoff::Placed(at));
        }
        let meta = piece.meta();
        let unpadded = meta.padded_size.unpadded().get();
        let ticket = uuid::Uuid::new_v4();
        let url = self
            .base
            .join(&format!("sealing/pieces/{ticket}"))
            .map_err(|e| SealerError::Rejected(format!("piece URL: {e}")))?;
        let p = &deal.proposal;
        let info = PieceDealInfo {
            publish_cid: Some(deal.publish_cid),
            deal_id: deal.deal_id.0,
            deal_proposal: Some(DealProposalJson::from(p)),
            deal_schedule: DealSchedule {
                start_epoch: p.start_epoch.get(),
                end_epoch: p.end_epoch.get(),
            },
            piece_activation_manifest: None,
            keep_unsealed: deal.keep_unsealed,
        };
        let stream = ReaderStream {
            kind: "http".into(),
            info: url.to_string(),
        };
        let deadline = Instant::now() + self.config.retry_for;
        self.lock().insert(ticket, (piece.clone(), unpadded));
        let result = loop {
            let call = self
                .rpc
                .call_long::<_, SectorOffset>("SectorAddPieceToAny", (unpadded, &stream, &info))
                .await;
            match call {
                Ok(at) => {
                    break Ok(Handoff::Placed(PieceLocation {
                        sector: SectorNumber(at.sector),
                        offset: at.offset,
                    }));
                }
                Err(e)
                    if e.node_message()
                        .is_some_and(|m| m.contains(TOO_MANY_SECTORS)) =>
                {
                    if Instant::now() + self.config.retry_interval > deadline {
                        break Err(SealerError::Rejected(format!(
                            "lotus-miner stayed full for {:?}: {e}",
                            self.config.retry_for
                        )));
                    }
                    tracing::info!(deal = %deal.deal_id, retry_in = ?self.config.retry_interval, "lotus-miner: too many sectors sealing");
                    tokio::time::sleep(self.config.retry_interval).await;
                }
                Err(e) if e.is_transient() => break Err(unavailable(e)),
                Err(e) => break Err(SealerError::Rejected(format!("lotus-miner: {e}"))),
            }
        };
        self.lock().remove(&ticket);
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<uuid::Uuid, (PieceHandle, u64)>> {
        self.tickets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait::async_trait]
impl Sealer for LotusMinerSealer {
    async fn add_piece(
        &self,
        deal: &SealingDeal,
        piece: &PieceHandle,
    ) -> Result<Handoff, SealerError> {
        self.add(deal, piece).await
    }

    async fn sector_state(&self, _miner: &Address, sector: SectorNumber) -> Option<String> {
        match self
            .rpc
            .call::<_, SectorStatus>("SectorsStatus", (sector.0, false))
            .await
        {
            Ok(s) if s.last_err.is_empty() => Some(s.state),
            Ok(s) => Some(format!("{} ({})", s.state, s.last_err)),
            Err(e) => {
                tracing::debug!(%sector, error = %e, "lotus-miner: SectorsStatus");
                None
            }
        }
    }
}

/// `GET /sealing/pieces/<ticket>`: the payload, then zeros up to the unpadded piece size.
async fn serve_piece(State(tickets): State<Tickets>, Path(ticket): Path<String>) -> Response {
    let found = uuid::Uuid::parse_str(&ticket).ok().and_then(|t| {
        tickets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&t)
            .cloned()
    });
    let Some((piece, unpadded)) = found else {
        return (StatusCode::NOT_FOUND, "no such piece ticket\n").into_response();
    };
    let payload = piece.meta().payload_size;
    let reader = match piece.open().await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %market_core::report(&e), "serving a piece to lotus-miner");
            return (
                StatusCode::INTERNAL_SERVER_ERROR,
                "reading the piece failed\n",
            )
                .into_response();
        }
    };
    let body = reader
        .take(payload)
        .chain(tokio::io::repeat(0).take(unpadded.saturating_sub(payload)));
    Response::builder()
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, unpadded)
        .body(Body::from_stream(BodyStream::with_capacity(body, 1 << 20)))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
