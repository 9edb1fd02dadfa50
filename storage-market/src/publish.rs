//! Batching deals into `PublishStorageDeals` messages, per miner.
//!
//! A miner's batch is sent when it reaches `max_deals_per_message`, or `publish_period` after
//! its first deal arrived (at once if the period is zero), as Lotus/Boost's DealPublisher does.
//! Just before sending, each deal is checked again: it must still start at least
//! `start_epoch_sealing_buffer` epochs after the head, and a dry run of a single-deal publish
//! must succeed. A deal failing either check is failed alone with its reason; the rest go out.
//!
//! Each caller gets back the message CID and its deal's index in the message's params; the
//! deal id is later read from the receipt's valid-deals bitfield at that index.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::Cid;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::cbor;
use crate::chain::{ChainNode, Message};
use crate::deal::{self, ClientDealProposal, PublishStorageDealsParams};
use crate::types::{Address, TokenAmount};

/// Publishing policy.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct PublishConfig {
    /// How long a batch waits for more deals (Boost default 1 h).
    pub publish_period: Duration,
    /// Largest batch (Boost default 8).
    pub max_deals_per_message: usize,
    /// Fee cap of a publish message (Boost default 0.05 FIL).
    pub max_publish_fee: TokenAmount,
    /// A deal must start at least this many epochs after the head when published (480).
    pub start_epoch_sealing_buffer: i64,
}

impl Default for PublishConfig {
    fn default() -> Self {
        Self {
            publish_period: Duration::from_secs(3600),
            max_deals_per_message: 8,
            max_publish_fee: TokenAmount::from_nano(50_000_000),
            start_epoch_sealing_buffer: 480,
        }
    }
}

impl PublishConfig {
    /// Sets [`publish_period`](Self::publish_period).
    pub fn with_publish_period(mut self, publish_period: Duration) -> Self {
        self.publish_period = publish_period;
        self
    }

    /// Sets [`max_deals_per_message`](Self::max_deals_per_message).
    pub fn with_max_deals_per_message(mut self, max_deals_per_message: usize) -> Self {
        self.max_deals_per_message = max_deals_per_message;
        self
    }

    /// Sets [`max_publish_fee`](Self::max_publish_fee).
    pub fn with_max_publish_fee(mut self, max_publish_fee: TokenAmount) -> Self {
        self.max_publish_fee = max_publish_fee;
        self
    }

    /// Sets [`start_epoch_sealing_buffer`](Self::start_epoch_sealing_buffer).
    pub fn with_start_epoch_sealing_buffer(mut self, start_epoch_sealing_buffer: i64) -> Self {
        self.start_epoch_sealing_buffer = start_epoch_sealing_buffer;
        self
    }
}

/// Where a deal was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishTicket {
    /// The PublishStorageDeals message.
    pub message: Cid,
    /// The deal's index in the message's params.
    pub index: u64,
}

/// Why a deal was not published.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The publisher task is gone (the provider is shutting down). The deal is not at fault and
    /// must stay where it is, to be published after a restart.
    #[error("publisher stopped")]
    Stopped,
    /// The deal failed re-validation or the message could not be sent.
    #[error("{0}")]
    Failed(String),
}

struct Request {
    sender: Address,
    deal: ClientDealProposal,
    reply: oneshot::Sender<Result<PublishTicket, PublishError>>,
}

struct Batch {
    requests: Vec<Request>,
    deadline: Instant,
}

/// Handle to the publisher task. Cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    tx: mpsc::Sender<(Address, Request)>,
}

impl Publisher {
    /// Starts the publisher on the current runtime.
    pub fn spawn(
        chain: Arc<dyn ChainNode>,
        config: PublishConfig,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(run(chain, config, rx));
        (Self { tx }, task)
    }

    /// Queues `deal` for `miner`, sent from `sender`; resolves once the message carrying it was
    /// pushed (or the deal failed re-validation). Cancel-safe: dropping the future drops the
    /// deal from the batch's replies but not from the message.
    pub async fn publish(
        &self,
        miner: Address,
        sender: Address,
        deal: ClientDealProposal,
    ) -> Result<PublishTicket, PublishError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send((
                miner,
                Request {
                    sender,
                    deal,
                    reply,
                },
            ))
            .await
            .map_err(|_| PublishError::Stopped)?;
        rx.await.map_err(|_| PublishError::Stopped)?
    }
}

async fn run(
    chain: Arc<dyn ChainNode>,
    config: PublishConfig,
    mut rx: mpsc::Receiver<(Address, Request)>,
) {
    let mut batches: HashMap<Address, Batch> = HashMap::new();
    loop {
        let next = batches
            .iter()
            .min_by_key(|(_, b)| b.deadline)
            .map(|(m, b)| (*m, b.deadline));
        let received = match next {
            Some((miner, deadline)) => tokio::select! {
                r = rx.recv() => r,
                _ = tokio::time::sleep_until(deadline) => {
                    if let Some(b) = batches.remove(&miner) {
                        flush(&*chain, &config, miner, b.requests).await;
                    }
                    continue;
                }
            },
            None => rx.recv().await,
        };
        let Some((miner, req)) = received else { break };
        let batch = batches.entry(miner).or_insert_with(|| Batch {
            requests: Vec::new(),
            deadline: Instant::now() + config.publish_period,
        });
        batch.requests.push(req);
        if (batch.requests.len() >= config.max_deals_per_message.max(1)
            || config.publish_period.is_zero())
            && let Some(b) = batches.remove(&miner)
        {
            flush(&*chain, &config, miner, b.requests).await;
        }
    }
}

fn publish_message(
    sender: Address,
    deals: Vec<ClientDealProposal>,
    max_fee: TokenAmount,
) -> Message {
    Message {
        from: sender,
        to: deal::STORAGE_MARKET_ACTOR,
        method: deal::method::PUBLISH_STORAGE_DEALS,
        params: cbor::to_vec(&PublishStorageDealsParams { deals }),
        value: TokenAmount::ZERO,
        max_fee,
    }
}

async fn flush(
    chain: &dyn ChainNode,
    config: &PublishConfig,
    miner: Address,
    requests: Vec<Request>,
) {
    let head = match chain.head().await {
        Ok(h) => h,
        Err(e) => {
            for r in requests {
                let _ = r
                    .reply
                    .send(Err(PublishError::Failed(format!("publish failed: {e}"))));
            }
            return;
        }
    };
    let mut ready = Vec::new();
    for r in requests {
        let p = &r.deal.proposal;
        if head.plus(config.start_epoch_sealing_buffer) > p.start_epoch {
            let _ = r.reply.send(Err(PublishError::Failed(format!(
                "publish validation failed: cannot publish deal with start epoch {} at epoch {head} with a sealing buffer of {} epochs",
                p.start_epoch, config.start_epoch_sealing_buffer
            ))));
            continue;
        }
        let dry = publish_message(r.sender, vec![r.deal.clone()], config.max_publish_fee);
        match chain.call(&dry).await {
            Ok(rcpt) if rcpt.exit_code.is_ok() => ready.push(r),
            Ok(rcpt) => {
                let _ = r.reply.send(Err(PublishError::Failed(format!(
                    "publish validation failed: simulated PublishStorageDeals exited with code {}",
                    rcpt.exit_code.0
                ))));
            }
            Err(e) => {
                let _ = r.reply.send(Err(PublishError::Failed(format!(
                    "publish validation failed: {e}"
                ))));
            }
        }
    }
    let Some(sender) = ready.first().map(|r| r.sender) else {
        return;
    };
    let deals = ready.iter().map(|r| r.deal.clone()).collect();
    match chain
        .push_message(publish_message(sender, deals, config.max_publish_fee))
        .await
    {
        Ok(message) => {
            tracing::info!(%miner, %message, deals = ready.len(), "sent PublishStorageDeals");
            for (i, r) in ready.into_iter().enumerate() {
                let _ = r.reply.send(Ok(PublishTicket {
                    message,
                    index: i as u64,
                }));
            }
        }
        Err(e) => {
            for r in ready {
                let _ = r
                    .reply
                    .send(Err(PublishError::Failed(format!("publish failed: {e}"))));
            }
        }
    }
}
