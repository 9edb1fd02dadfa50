//! droplet's market events: how a market asks a pull sealer for something it holds, such as
//! the unsealed bytes of a piece.
//!
//! A sealer subscribes with `VENUS_MARKET.ListenMarketEvent({"Miner": "f0…"})` over a
//! WebSocket (a go-jsonrpc channel: each event arrives as an `xrpc.ch.val` frame), first
//! receiving an `InitConnect` event. The market sends `RequestEvent {Id, Method, Payload}`
//! (`Payload` is base64 JSON); the sealer does the work and answers with
//! `ResponseMarketEvent({Id, Payload, Error})`. For `SectorsUnsealPiece` the payload is an
//! [`UnsealRequest`]: the sealer unseals and `PUT`s the piece to `Dest` (this market's
//! `/resource`, which checks its commP before storing it), then answers with the JSON string
//! `"finished"` (or an error).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use lotus_api::json::{address, cid};
use market_core::Cid;
use market_core::types::Address;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// An event the market sends to a listening sealer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestEvent {
    /// Answer with this id.
    pub id: uuid::Uuid,
    /// `InitConnect`, `SectorsUnsealPiece`.
    pub method: String,
    /// Base64 of the JSON payload.
    pub payload: String,
}

/// A sealer's answer to a [`RequestEvent`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ResponseEvent {
    /// The request's id.
    pub id: uuid::Uuid,
    /// Base64 of the JSON result.
    #[serde(default)]
    pub payload: String,
    /// Empty on success.
    #[serde(default)]
    pub error: String,
}

/// `SectorsUnsealPiece`'s payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UnsealRequest {
    /// The piece.
    #[serde(with = "cid")]
    pub piece_cid: Cid,
    /// The miner.
    #[serde(with = "address")]
    pub miner: Address,
    /// The sector number.
    pub sid: u64,
    /// Unpadded byte index of the piece in the sector.
    pub offset: u64,
    /// Unpadded piece size.
    pub size: u64,
    /// Where to `PUT` the unsealed piece.
    pub dest: String,
}

/// Why an event got no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// No sealer of the miner is listening.
    #[error("no sealer of {0} is listening for market events")]
    NoListener(Address),
    /// The sealer did not answer in time.
    #[error("the sealer did not answer {method} within {timeout:?}")]
    Timeout {
        /// The event.
        method: String,
        /// How long we waited.
        timeout: Duration,
    },
    /// The sealer answered with an error.
    #[error("the sealer failed {method}: {error}")]
    Failed {
        /// The event.
        method: String,
        /// Its error text.
        error: String,
    },
}

#[derive(Default)]
struct Hub {
    listeners: HashMap<Address, Vec<mpsc::Sender<RequestEvent>>>,
    waiting: HashMap<uuid::Uuid, oneshot::Sender<ResponseEvent>>,
    next: usize,
}

/// The market's side of market events: listeners by miner and the requests waiting.
#[derive(Clone, Default)]
pub struct MarketEvents {
    hub: Arc<Mutex<Hub>>,
}

impl MarketEvents {
    fn lock(&self) -> std::sync::MutexGuard<'_, Hub> {
        self.hub.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A sealer of `miner` starts listening; events arrive on the receiver, the first being
    /// `InitConnect`.
    pub fn listen(&self, miner: Address) -> mpsc::Receiver<RequestEvent> {
        let (tx, rx) = mpsc::channel(16);
        let init = RequestEvent {
            id: uuid::Uuid::new_v4(),
            method: "InitConnect".into(),
            payload: B64.encode(serde_json::json!({"ChannelId": uuid::Uuid::new_v4()}).to_string()),
        };
        let _ = tx.try_send(init);
        self.lock().listeners.entry(miner).or_default().push(tx);
        tracing::info!(%miner, "a sealer listens for market events");
        rx
    }

    /// A sealer's answer. Unknown ids (late or repeated answers) are ignored.
    pub fn respond(&self, response: ResponseEvent) {
        if let Some(tx) = self.lock().waiting.remove(&response.id) {
            let _ = tx.send(response);
        }
    }

    /// Sends `method` with `payload` to a listening sealer of `miner` (round robin over the
    /// live ones) and waits up to `timeout` for its answer's payload.
    pub async fn request(
        &self,
        miner: Address,
        method: &str,
        payload: &serde_json::Value,
        timeout: Duration,
    ) -> Result<serde_json::Value, EventError> {
        let id = uuid::Uuid::new_v4();
        let (tx, rx) = oneshot::channel();
        let event = RequestEvent {
            id,
            method: method.into(),
            payload: B64.encode(payload.to_string()),
        };
        let sender = {
            let mut hub = self.lock();
            let next = hub.next;
            let live = hub.listeners.entry(miner).or_default();
            live.retain(|l| !l.is_closed());
            if live.is_empty() {
                return Err(EventError::NoListener(miner));
            }
            let pick = live[next % live.len()].clone();
            hub.next = hub.next.wrapping_add(1);
            hub.waiting.insert(id, tx);
            pick
        };
        if sender.send(event).await.is_err() {
            self.lock().waiting.remove(&id);
            return Err(EventError::NoListener(miner));
        }
        let Ok(Ok(answer)) = tokio::time::timeout(timeout, rx).await else {
            self.lock().waiting.remove(&id);
            return Err(EventError::Timeout {
                method: method.into(),
                timeout,
            });
        };
        if !answer.error.is_empty() {
            return Err(EventError::Failed {
                method: method.into(),
                error: answer.error,
            });
        }
        let bytes = B64.decode(answer.payload.as_bytes()).unwrap_or_default();
        Ok(serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
    }
}
