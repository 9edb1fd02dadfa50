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
//!
//! No deal is published twice across a crash: each message gets a fresh uuid (Lotus's
//! `MsgUuid`) and is recorded in the deal store, with the proposals it carries, before it is
//! pushed. A deal that restarts in Publish looks for its record first
//! ([`DealStore::publish_for`]) and pushes the recorded message again under the same uuid,
//! which the node (or the adapter's journal) answers with the message it already has.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::Cid;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::cbor;
use crate::chain::{ChainNode, Message};
use crate::deal::{self, ClientDealProposal, PublishStorageDealsParams};
use crate::store::{DealStore, PublishRecord};
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
    /// A local part or the node failed before the message was known to be sent; nothing is
    /// lost and the deal should try again.
    #[error("{0}")]
    Retry(String),
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
        store: Arc<dyn DealStore>,
        config: PublishConfig,
    ) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(1024);
        let task = tokio::spawn(run(chain, store, config, rx));
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
    store: Arc<dyn DealStore>,
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
                        flush(&*chain, &*store, &config, miner, b.requests).await;
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
            flush(&*chain, &*store, &config, miner, b.requests).await;
        }
    }
}

fn publish_message(
    sender: Address,
    deals: Vec<ClientDealProposal>,
    max_fee: TokenAmount,
    uuid: Option<uuid::Uuid>,
) -> Message {
    Message {
        from: sender,
        to: deal::STORAGE_MARKET_ACTOR,
        method: deal::method::PUBLISH_STORAGE_DEALS,
        params: cbor::to_vec(&PublishStorageDealsParams { deals }),
        value: TokenAmount::ZERO,
        max_fee,
        uuid,
    }
}

/// Pushes a recorded publish message (again) under its uuid and records its CID.
pub async fn push_recorded(
    chain: &dyn ChainNode,
    store: &dyn DealStore,
    record: &PublishRecord,
) -> Result<Cid, PublishError> {
    match chain.push_message(record.message.clone()).await {
        Ok(cid) => {
            let max_fee = u64::try_from(record.message.max_fee.atto()).unwrap_or(u64::MAX);
            let deals = record.proposals.len() as u64;
            market_core::metrics::publish(record.miner.to_string(), deals, max_fee);
            if let Err(e) = store.publish_sent(record.uuid, cid).await {
                // The deal records the CID with its ticket; a repeat push finds it again.
                tracing::warn!(uuid = %record.uuid, error = %e, "recording a publish CID failed");
            }
            Ok(cid)
        }
        // Not reached or no answer: the message may have gone out, so keep the record and
        // push the same message again later.
        Err(e @ crate::chain::ChainError::Node(_)) => {
            Err(PublishError::Retry(format!("publish failed: {e}")))
        }
        Err(e) => {
            if let Err(fe) = store.forget_publish(record.uuid).await {
                tracing::warn!(uuid = %record.uuid, error = %fe, "forgetting a refused publish failed");
            }
            Err(PublishError::Failed(format!("publish failed: {e}")))
        }
    }
}

async fn flush(
    chain: &dyn ChainNode,
    store: &dyn DealStore,
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
        let dry = publish_message(r.sender, vec![r.deal.clone()], config.max_publish_fee, None);
        match chain.call(&dry).await {
            Ok(rcpt) if rcpt.exit_code.is_ok() => ready.push(r),
            Ok(rcpt) => {
                let why = explain_rejection(chain, &r.deal, &r.sender, config).await;
                let _ = r.reply.send(Err(PublishError::Failed(format!(
                    "publish validation failed: simulated PublishStorageDeals exited with code {}{why}",
                    rcpt.exit_code
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
    let deals: Vec<ClientDealProposal> = ready.iter().map(|r| r.deal.clone()).collect();
    let uuid = uuid::Uuid::new_v4();
    let record = PublishRecord {
        uuid,
        miner,
        proposals: deals.iter().map(ClientDealProposal::cid).collect(),
        message: publish_message(sender, deals, config.max_publish_fee, Some(uuid)),
        cid: None,
    };
    if let Err(e) = store.record_publish(&record).await {
        for r in ready {
            let _ = r.reply.send(Err(PublishError::Retry(format!(
                "recording the publish message: {e}"
            ))));
        }
        return;
    }
    match push_recorded(chain, store, &record).await {
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
                let _ = r.reply.send(Err(e.clone()));
            }
        }
    }
}

/// Why a dry run of publishing `deal` failed, from the facts the chain gives: client escrow,
/// provider escrow, network version. Empty when nothing explains it.
async fn explain_rejection(
    chain: &dyn ChainNode,
    deal: &ClientDealProposal,
    sender: &Address,
    config: &PublishConfig,
) -> String {
    let p = &deal.proposal;
    if p.verified_deal
        && let Ok(v) = chain.network_version().await
        && !v.allows_verified_deals()
    {
        return format!(
            ": verified deals cannot be published from network version {} (FIP-0118 Solstice ended FIL+); the chain is at {v}",
            crate::types::NetworkVersion::SOLSTICE.0
        );
    }
    if let Ok(b) = chain.market_balance(&p.client).await {
        let need = p.client_balance_requirement();
        if b.available() < need {
            return format!(
                ": client escrow too small: needs {} attoFIL, has {} attoFIL available",
                need.atto(),
                b.available().atto()
            );
        }
    }
    if let Ok(b) = chain.market_balance(&p.provider).await
        && b.available() < p.provider_collateral
    {
        return format!(
            ": provider escrow too small: needs {} attoFIL collateral, has {} attoFIL available",
            p.provider_collateral.atto(),
            b.available().atto()
        );
    }
    if let Ok(balance) = chain.wallet_balance(sender).await
        && balance < config.max_publish_fee
    {
        return format!(
            ": the publishing address {sender} holds {} attoFIL, less than the max publish fee {} attoFIL",
            balance.atto(),
            config.max_publish_fee.atto()
        );
    }
    String::new()
}
