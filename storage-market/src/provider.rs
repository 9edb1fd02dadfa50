//! The storage provider: asks, deal acceptance, and the persisted deal pipeline.
//!
//! One [`Provider`] serves one or many miner actors (droplet's chain-service mode), each with
//! its own ask signed by that miner's worker key. Protocol handlers call
//! [`Provider::propose`] / [`Provider::propose_v11`]; both validate
//! ([`crate::validation`]), apply the filters ([`crate::filter`]), and persist the deal
//! before answering. A per-deal task then walks the state machine ([`crate::state`]),
//! persisting each state before acting on it; [`Provider::start`] resumes every unfinished
//! deal from the database.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Cid;
use commp::PaddedPieceSize;
use data_transfer::{TransferError, TransferId, TransferManager, TransferRequest};
use piecestore::{
    DealRecord, ExpectedPiece, PieceIndex, PieceIndexer, PieceStore, PieceStoreError, index_blocks,
    index_payload,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::broadcast;

use crate::chain::{ChainError, ChainNode, CollateralBounds, DealPolicy, Message};
use crate::deal::{self, DealProposal, PublishStorageDealsReturn};
use crate::filter::{BasicFilter, ExternalFilter, FilterContext};
use crate::lease::LeaseConfig;
use crate::lifecycle::{self, ActiveDecision, ActiveFacts, SealingDecision, SealingFacts};
use crate::message::*;
use crate::placement::{PieceStatus, Placement, PlacementChange};
use crate::protocol::Protocol;
use crate::publish::{PublishConfig, PublishError, Publisher};
use crate::sealer::{Handoff, PieceHandle, PieceLocation, Sealer, SealerError, SealingDeal};
use crate::state::{DealEvent, StorageDealStatus};
use crate::store::{DealStore, ProviderDeal, StoreError};
use crate::types::{Address, DealUuid, TokenAmount};
use crate::validation::{Rejection, ValidationFacts, validate};
use crate::wallet::{self, SignPurpose, Wallet};

/// Provider configuration.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ProviderConfig {
    /// Miners served.
    pub miners: Vec<Address>,
    /// Basic deal filter.
    pub filter: BasicFilter,
    /// Optional external filter command.
    pub external_filter: Option<ExternalFilter>,
    /// Publishing policy.
    pub publish: PublishConfig,
    /// Max provider collateral = chain minimum × this (Boost default 2).
    pub max_provider_collateral_multiplier: u64,
    /// Deal term rules.
    pub policy: DealPolicy,
    /// Fee cap of AddBalance messages for provider collateral.
    pub max_market_balance_add_fee: TokenAmount,
    /// Confirmations to wait for publish and AddBalance messages.
    pub message_confidence: u64,
    /// How often to poll the chain while waiting for sealing and activation.
    pub poll_interval: Duration,
    /// Default ask for a miner that has none saved.
    pub default_ask: AskParams,
    /// Several instances on one database: each drives only the deals it leased (see
    /// [`lease`](crate::lease)). `None`: this instance drives every unfinished deal.
    pub lease: Option<LeaseConfig>,
}

impl Default for ProviderConfig {
    fn default() -> Self {
        Self {
            miners: Vec::new(),
            filter: BasicFilter::default(),
            external_filter: None,
            publish: PublishConfig::default(),
            max_provider_collateral_multiplier: 2,
            policy: DealPolicy::MAINNET,
            max_market_balance_add_fee: TokenAmount::from_nano(7_000_000),
            message_confidence: 5,
            poll_interval: Duration::from_secs(30),
            default_ask: AskParams::default(),
            lease: None,
        }
    }
}

impl ProviderConfig {
    /// Sets [`miners`](Self::miners).
    pub fn with_miners(mut self, miners: Vec<Address>) -> Self {
        self.miners = miners;
        self
    }

    /// Sets [`filter`](Self::filter).
    pub fn with_filter(mut self, filter: BasicFilter) -> Self {
        self.filter = filter;
        self
    }

    /// Sets [`external_filter`](Self::external_filter).
    pub fn with_external_filter(mut self, external_filter: Option<ExternalFilter>) -> Self {
        self.external_filter = external_filter;
        self
    }

    /// Sets [`publish`](Self::publish).
    pub fn with_publish(mut self, publish: PublishConfig) -> Self {
        self.publish = publish;
        self
    }

    /// Sets [`max_provider_collateral_multiplier`](Self::max_provider_collateral_multiplier).
    pub fn with_max_provider_collateral_multiplier(
        mut self,
        max_provider_collateral_multiplier: u64,
    ) -> Self {
        self.max_provider_collateral_multiplier = max_provider_collateral_multiplier;
        self
    }

    /// Sets [`policy`](Self::policy).
    pub fn with_policy(mut self, policy: DealPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets [`max_market_balance_add_fee`](Self::max_market_balance_add_fee).
    pub fn with_max_market_balance_add_fee(
        mut self,
        max_market_balance_add_fee: TokenAmount,
    ) -> Self {
        self.max_market_balance_add_fee = max_market_balance_add_fee;
        self
    }

    /// Sets [`message_confidence`](Self::message_confidence).
    pub fn with_message_confidence(mut self, message_confidence: u64) -> Self {
        self.message_confidence = message_confidence;
        self
    }

    /// Sets [`poll_interval`](Self::poll_interval).
    pub fn with_poll_interval(mut self, poll_interval: Duration) -> Self {
        self.poll_interval = poll_interval;
        self
    }

    /// Sets [`lease`](Self::lease).
    pub fn with_lease(mut self, lease: Option<LeaseConfig>) -> Self {
        self.lease = lease;
        self
    }

    /// Sets [`default_ask`](Self::default_ask).
    pub fn with_default_ask(mut self, default_ask: AskParams) -> Self {
        self.default_ask = default_ask;
        self
    }
}

/// The settable part of an ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AskParams {
    /// attoFIL per GiB per epoch, unverified.
    pub price: TokenAmount,
    /// attoFIL per GiB per epoch, verified.
    pub verified_price: TokenAmount,
    /// Smallest padded piece.
    pub min_piece_size: PaddedPieceSize,
    /// Largest padded piece.
    pub max_piece_size: PaddedPieceSize,
    /// Epochs the ask stays valid.
    pub duration: i64,
}

impl AskParams {
    /// Whether a miner with sectors of `sector_size` bytes can offer these terms: the bounds
    /// in order, no piece larger than a sector (as `lotus-miner storage-deals set-ask`
    /// checks), a positive validity.
    pub fn check(&self, sector_size: u64) -> Result<(), String> {
        if self.min_piece_size > self.max_piece_size {
            return Err(format!(
                "min piece size {} above max piece size {}",
                self.min_piece_size.get(),
                self.max_piece_size.get()
            ));
        }
        if self.max_piece_size.get() > sector_size {
            return Err(format!(
                "max piece size {} exceeds the miner's sector size {sector_size}",
                self.max_piece_size.get()
            ));
        }
        if self.duration <= 0 {
            return Err("duration must be positive".into());
        }
        Ok(())
    }

    /// These terms with the piece sizes capped at a sector of `sector_size` bytes: the
    /// default ask means "up to a sector", whatever the sector size.
    pub fn within_sector(mut self, sector_size: u64) -> Self {
        if let Ok(sector) = PaddedPieceSize::new(sector_size) {
            self.max_piece_size = self.max_piece_size.min(sector);
            self.min_piece_size = self.min_piece_size.min(self.max_piece_size);
        }
        self
    }
}

impl Default for AskParams {
    /// Boost's defaults: 50 000 000 / 5 000 000 attoFIL per GiB per epoch, 256 B to 32 GiB,
    /// valid 1 000 000 epochs.
    fn default() -> Self {
        Self {
            price: TokenAmount::from_atto(50_000_000),
            verified_price: TokenAmount::from_atto(5_000_000),
            min_piece_size: PaddedPieceSize::new(256).expect("power of two"),
            max_piece_size: PaddedPieceSize::new(32 << 30).expect("power of two"),
            duration: 1_000_000,
        }
    }
}

/// Everything the provider plugs into.
#[derive(Clone)]
pub struct ProviderDeps {
    /// The chain node.
    pub chain: Arc<dyn ChainNode>,
    /// Holds the miners' worker keys.
    pub wallet: Arc<dyn Wallet>,
    /// Deal database.
    pub store: Arc<dyn DealStore>,
    /// Piece storage.
    pub pieces: Arc<dyn PieceStore>,
    /// The piece index (deals, payload roots, CAR blocks).
    pub index: Arc<dyn PieceIndex>,
    /// Pulls online deals' data; `None` accepts offline deals only.
    pub transfers: Option<TransferManager>,
    /// The sealer.
    pub sealer: Arc<dyn Sealer>,
}

/// Provider-side errors outside the wire protocols.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The deal is unknown.
    #[error("deal {0} not found")]
    DealNotFound(String),
    /// The miner is not served by this provider.
    #[error("miner {0} is not served by this provider")]
    UnknownMiner(Address),
    /// The deal is not waiting for data.
    #[error("deal is in state {0}, not waiting for data")]
    NotWaitingForData(StorageDealStatus),
    /// The imported data's commP differs from the proposal.
    #[error("commP mismatch: proposal has {expected}, data gives {actual}")]
    CommPMismatch {
        /// The proposal's piece CID.
        expected: Box<Cid>,
        /// The data's piece CID.
        actual: Box<Cid>,
    },
    /// The data is larger than the proposal's piece.
    #[error("data does not fit the proposal's piece: {0}")]
    DataTooLarge(String),
    /// An ask parameter is invalid.
    #[error("invalid ask: {0}")]
    InvalidAsk(String),
    /// Database failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Chain failure.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Wallet failure.
    #[error(transparent)]
    Wallet(#[from] wallet::WalletError),
    /// The piece store or the piece index failed.
    #[error(transparent)]
    PieceStore(#[from] PieceStoreError),
    /// A file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An event the deal's state does not allow (a bug or a corrupt record).
    #[error(transparent)]
    Transition(#[from] crate::state::InvalidTransition),
    /// The import source is not a regular file (a pipe, a device, a directory): its size
    /// cannot be known before reading and reading it may never end.
    #[error("{0} is not a regular file")]
    NotAFile(std::path::PathBuf),
    /// Another import of the same deal is running.
    #[error("an import of deal {0} is already running")]
    ImportRunning(Box<Cid>),
    /// Another provider instance sharing the database drives the deal now; ask that one.
    #[error("deal {0} is driven by another provider instance")]
    LeasedElsewhere(Box<Cid>),
    /// An operator action the deal's state does not allow.
    #[error("cannot {action} a deal in state {state}: {why}")]
    NotAllowed {
        /// `cancel`, `retry`.
        action: &'static str,
        /// The deal's state.
        state: StorageDealStatus,
        /// What would allow it.
        why: &'static str,
    },
    /// A background task panicked.
    #[error("import task failed: {0}")]
    Task(String),
}

/// Why a pipeline step did not complete.
#[derive(Debug, thiserror::Error)]
enum StepError {
    /// The deal cannot go on; the text is its reason, as the client sees it.
    #[error("{0}")]
    Deal(String),
    /// The chain node failed; a `Node` error is retried, others fail the deal.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// A local part failed (deal store, piece store, wallet).
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

impl From<PieceStoreError> for StepError {
    fn from(e: PieceStoreError) -> Self {
        Self::Provider(e.into())
    }
}

impl From<StoreError> for StepError {
    fn from(e: StoreError) -> Self {
        Self::Provider(e.into())
    }
}

impl From<&str> for StepError {
    fn from(reason: &str) -> Self {
        Self::Deal(reason.to_owned())
    }
}

impl From<String> for StepError {
    fn from(reason: String) -> Self {
        Self::Deal(reason)
    }
}

/// A deal changed state.
#[derive(Debug, Clone)]
pub struct DealUpdate {
    /// The signed proposal's CID.
    pub proposal_cid: Cid,
    /// New state.
    pub state: StorageDealStatus,
    /// Message attached to the state (error text for failures).
    pub message: String,
}

/// How to refer to a deal: by proposal CID (1.1) or UUID (1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DealRef {
    /// Signed proposal CID.
    ProposalCid(Cid),
    /// Boost deal UUID.
    Uuid(DealUuid),
}

struct Inner {
    config: ProviderConfig,
    deps: ProviderDeps,
    miners: HashSet<Address>,
    publisher: Publisher,
    /// Serialises provider-collateral reservation, so two deals cannot both count the same
    /// escrow as theirs.
    funds_lock: tokio::sync::Mutex<()>,
    /// Deals with a running driver task, with the task once spawned (to stop it when its
    /// lease is lost).
    running: Mutex<HashMap<Cid, Option<tokio::task::AbortHandle>>>,
    /// With leases: the deals whose lease a driver of ours holds (what is renewed).
    leased: Mutex<HashSet<Cid>>,
    /// Deals an operator cancelled whose driver has yet to fail them.
    cancelling: Mutex<HashSet<Cid>>,
    /// Deals with an import running.
    importing: Mutex<HashSet<Cid>>,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
    updates: broadcast::Sender<DealUpdate>,
}

/// Why an import source was refused before reading it.
enum SourceRefusal {
    NotAFile,
    TooLarge { len: u64, room: u64 },
}

impl SourceRefusal {
    fn at(self, path: &Path) -> ProviderError {
        match self {
            SourceRefusal::NotAFile => ProviderError::NotAFile(path.to_path_buf()),
            SourceRefusal::TooLarge { len, room } => ProviderError::DataTooLarge(format!(
                "{} holds {len} bytes, more than the {room} the piece can carry",
                path.display()
            )),
        }
    }
}

/// Whether a file of `meta` can be the payload of a piece of `size`.
fn check_import_source(
    meta: &std::fs::Metadata,
    size: PaddedPieceSize,
) -> Result<(), SourceRefusal> {
    if !meta.is_file() {
        return Err(SourceRefusal::NotAFile);
    }
    let room = u64::from(size.unpadded());
    if meta.len() > room {
        return Err(SourceRefusal::TooLarge {
            len: meta.len(),
            room,
        });
    }
    Ok(())
}

/// Marks a deal as being imported for as long as it lives.
struct ImportGuard<'a> {
    set: &'a Mutex<HashSet<Cid>>,
    deal: Cid,
}

impl<'a> ImportGuard<'a> {
    fn take(set: &'a Mutex<HashSet<Cid>>, deal: Cid) -> Result<Self, ProviderError> {
        if !set.lock().unwrap_or_else(|p| p.into_inner()).insert(deal) {
            return Err(ProviderError::ImportRunning(Box::new(deal)));
        }
        Ok(Self { set, deal })
    }
}

impl Drop for ImportGuard<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.deal);
    }
}

/// The message of a deal an operator cancelled.
const CANCELLED: &str = "cancelled by the operator";

/// The storage provider. Cheap to clone.
#[derive(Clone)]
pub struct Provider {
    inner: Arc<Inner>,
}

impl Provider {
    /// Starts the provider: makes sure each miner has an ask and resumes every unfinished
    /// deal from the database.
    pub async fn start(config: ProviderConfig, deps: ProviderDeps) -> Result<Self, ProviderError> {
        let (publisher, publish_task) = Publisher::spawn(
            deps.chain.clone(),
            deps.store.clone(),
            config.publish.clone(),
        );
        let (updates, _) = broadcast::channel(1024);
        let inner = Inner {
            miners: config.miners.iter().copied().collect(),
            config,
            deps,
            publisher,
            funds_lock: tokio::sync::Mutex::new(()),
            running: Mutex::new(HashMap::new()),
            leased: Mutex::new(HashSet::new()),
            cancelling: Mutex::new(HashSet::new()),
            importing: Mutex::new(HashSet::new()),
            tasks: Mutex::new(vec![publish_task.abort_handle()]),
            updates,
        };
        let me = Self {
            inner: Arc::new(inner),
        };
        for miner in me.inner.config.miners.clone() {
            if me.inner.deps.store.ask(&miner).await?.is_none() {
                let sector_size = me.chain().miner_info(&miner).await?.sector_size;
                let ask = me.inner.config.default_ask.within_sector(sector_size);
                me.set_ask(&miner, ask).await?;
            }
        }
        // With leases, a driver starts only if its lease is free, expired or still ours.
        for deal in me.inner.deps.store.unfinished_provider_deals().await? {
            tracing::info!(proposal = %deal.proposal_cid, state = %deal.state, "resuming deal");
            me.spawn_driver(deal.proposal_cid);
        }
        if let Some(lease) = me.inner.config.lease.clone() {
            let keeper = tokio::spawn(me.clone().keep_leases(lease));
            me.inner
                .tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(keeper.abort_handle());
        }
        Ok(me)
    }

    /// Stops every task at once, as a crash would: nothing is flushed or cleaned up beyond
    /// what is already in the database.
    pub fn stop(&self) {
        if let Some(t) = &self.inner.deps.transfers {
            t.stop();
        }
        for t in self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            t.abort();
        }
    }

    /// Subscribes to deal state changes.
    pub fn subscribe(&self) -> broadcast::Receiver<DealUpdate> {
        self.inner.updates.subscribe()
    }

    /// The miners served.
    pub fn miners(&self) -> Vec<Address> {
        self.inner.config.miners.clone()
    }

    fn chain(&self) -> &dyn ChainNode {
        &*self.inner.deps.chain
    }

    async fn worker(&self, miner: &Address) -> Result<Address, ProviderError> {
        let info = self.chain().miner_info(miner).await?;
        Ok(self.chain().account_key(&info.worker).await?)
    }

    // ---------------------------------------------------------------- asks

    /// Sets a miner's ask (bumping its sequence number) and signs it with the worker key.
    pub async fn set_ask(
        &self,
        miner: &Address,
        params: AskParams,
    ) -> Result<SignedStorageAsk, ProviderError> {
        if !self.inner.miners.contains(miner) {
            return Err(ProviderError::UnknownMiner(*miner));
        }
        let sector_size = self.chain().miner_info(miner).await?.sector_size;
        params
            .check(sector_size)
            .map_err(ProviderError::InvalidAsk)?;
        let head = self.chain().head().await?;
        let seq_no = self
            .inner
            .deps
            .store
            .ask(miner)
            .await?
            .and_then(|a| a.ask)
            .map_or(0, |a| a.seq_no + 1);
        let ask = StorageAsk {
            miner: *miner,
            price: params.price,
            seq_no,
            expiry: head.plus(params.duration),
            timestamp: head,
            max_piece_size: params.max_piece_size.get(),
            min_piece_size: params.min_piece_size.get(),
            verified_price: params.verified_price,
        };
        let worker = self.worker(miner).await?;
        let signature = self
            .inner
            .deps
            .wallet
            .sign_for(&worker, &ask.to_cbor(), SignPurpose::StorageAsk)
            .await?;
        let signed = SignedStorageAsk {
            ask: Some(ask),
            signature: Some(signature),
        };
        self.inner.deps.store.save_ask(&signed).await?;
        Ok(signed)
    }

    /// A miner's current ask, `None` if the miner is not served.
    pub async fn ask(&self, miner: &Address) -> Result<Option<SignedStorageAsk>, ProviderError> {
        if !self.inner.miners.contains(miner) {
            return Ok(None);
        }
        Ok(self.inner.deps.store.ask(miner).await?)
    }

    /// Answers `/fil/storage/ask/1.1.0` (map form) or `1.0.1` (`legacy = true`: tuple form,
    /// re-signed over the tuple bytes as go-fil-markets does).
    pub async fn handle_ask(&self, req: AskRequest, legacy: bool) -> AskResponse {
        let ask = match self.ask(&req.miner).await {
            Ok(Some(a)) => a,
            Ok(None) => return AskResponse { ask: None },
            Err(e) => {
                tracing::warn!(miner = %req.miner, error = %e, "ask lookup failed");
                return AskResponse { ask: None };
            }
        };
        if !legacy {
            return AskResponse { ask: Some(ask) };
        }
        let Some(inner) = ask.ask else {
            return AskResponse { ask: None };
        };
        let sig = match self.worker(&req.miner).await {
            Ok(w) => self
                .inner
                .deps
                .wallet
                .sign_for(&w, &inner.to_cbor_v0(), SignPurpose::StorageAsk)
                .await
                .ok(),
            Err(_) => None,
        };
        AskResponse {
            ask: Some(SignedStorageAsk {
                ask: Some(inner),
                signature: sig,
            }),
        }
    }

    // ---------------------------------------------------------------- proposals

    /// Handles a Boost 1.2.x proposal. The deal is in the database before this returns
    /// `accepted: true`.
    pub async fn propose(&self, params: DealParams, protocol: Protocol) -> DealResponse {
        let (uuid, pcid) = (params.deal_uuid, params.client_deal_proposal.cid());
        let result = self.accept(params, protocol).await;
        let code = result.as_ref().err().map_or("none", Rejection::code);
        let response = match result {
            Ok(_) => DealResponse {
                accepted: true,
                message: String::new(),
            },
            // The same deal sent again (a client retrying after a broken stream) is accepted
            // again, not made twice: re-sending is safe whatever happened to the first try.
            Err(Rejection::DuplicateProposal(_))
                if self
                    .inner
                    .deps
                    .store
                    .provider_deal(&pcid)
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|d| d.deal_uuid == uuid) =>
            {
                DealResponse {
                    accepted: true,
                    message: String::new(),
                }
            }
            Err(
                r @ (Rejection::DuplicateProposal(_)
                | Rejection::DuplicateUuid(_)
                | Rejection::Internal(_)),
            ) => DealResponse {
                accepted: false,
                message: r.to_string(),
            },
            Err(r) => DealResponse {
                accepted: false,
                message: format!("failed validation: {r}"),
            },
        };
        market_core::metrics::proposal(response.accepted, code);
        response
    }

    /// Handles a go-fil-markets 1.1.x proposal; the response is signed by the worker key.
    pub async fn propose_v11(&self, proposal: Proposal, protocol: Protocol) -> SignedResponse {
        let Some(cdp) = proposal.deal_proposal else {
            return self
                .signed_response(
                    None,
                    Response {
                        state: StorageDealStatus::Failing.code(),
                        message: "proposal has no deal proposal".into(),
                        proposal: Cid::default(),
                        publish_message: None,
                    },
                )
                .await;
        };
        let pcid = cdp.cid();
        let miner = cdp.proposal.provider;
        // A re-sent proposal gets the current state instead of a second deal.
        if let Ok(Some(existing)) = self.inner.deps.store.provider_deal(&pcid).await {
            let response = Response {
                state: existing.state.code(),
                message: existing.message,
                proposal: pcid,
                publish_message: existing.publish_cid,
            };
            return self.signed_response(Some(miner), response).await;
        }
        let result = match &proposal.piece {
            None => Err(Rejection::InvalidTransfer(
                "proposal has no data reference".into(),
            )),
            Some(r) if r.transfer_type != TRANSFER_TYPE_MANUAL => {
                Err(Rejection::InvalidTransfer(format!(
                    "transfer type {:?} is not supported on {protocol}; make an offline (manual) deal or use /fil/storage/mk/1.2.1",
                    r.transfer_type
                )))
            }
            Some(r) => {
                let params = DealParams {
                    remove_unsealed_copy: !proposal.fast_retrieval,
                    ..DealParams::offline(cdp, r.root)
                };
                self.accept(params, protocol).await
            }
        };
        market_core::metrics::proposal(
            result.is_ok(),
            result.as_ref().err().map_or("none", Rejection::code),
        );
        let response = match result {
            Ok(deal) => Response {
                state: deal.state.code(),
                message: String::new(),
                proposal: pcid,
                publish_message: None,
            },
            Err(r) => Response {
                state: StorageDealStatus::Failing.code(),
                message: r.to_string(),
                proposal: pcid,
                publish_message: None,
            },
        };
        self.signed_response(Some(miner), response).await
    }

    /// Signs `bytes` with `miner`'s worker key; `None` if the miner is not served or the key
    /// is unavailable (the response then goes out unsigned rather than not at all).
    async fn sign_as_worker(
        &self,
        miner: Option<Address>,
        bytes: &[u8],
        purpose: SignPurpose<'_>,
    ) -> Option<crate::types::Signature> {
        let m = miner.filter(|m| self.inner.miners.contains(m))?;
        let w = self.worker(&m).await.ok()?;
        self.inner
            .deps
            .wallet
            .sign_for(&w, bytes, purpose)
            .await
            .ok()
    }

    async fn signed_response(&self, miner: Option<Address>, response: Response) -> SignedResponse {
        let signature = self
            .sign_as_worker(
                miner,
                &crate::cbor::to_vec(&response),
                SignPurpose::DealResponse,
            )
            .await;
        SignedResponse {
            response,
            signature,
        }
    }

    async fn facts(&self, deal: &deal::ClientDealProposal) -> Result<ValidationFacts, Rejection> {
        let p = &deal.proposal;
        let internal = |e: ChainError| Rejection::Internal(e.to_string());
        let chain = self.chain();
        let head = chain.head().await.map_err(internal)?;
        let client_key = chain
            .account_key(&p.client)
            .await
            .map_err(|e| e.to_string());
        let serves_provider = self.inner.miners.contains(&p.provider);
        let ask = if serves_provider {
            self.inner
                .deps
                .store
                .ask(&p.provider)
                .await
                .map_err(|e| Rejection::Internal(e.to_string()))?
                .and_then(|a| a.ask)
        } else {
            None
        };
        let collateral = match p.padded_piece_size() {
            Ok(size) => chain
                .collateral_bounds(size, p.verified_deal)
                .await
                .map_err(internal)?,
            Err(_) => CollateralBounds {
                min: TokenAmount::ZERO,
                max: TokenAmount::ZERO,
            },
        };
        let client_balance = chain.market_balance(&p.client).await.map_err(internal)?;
        let network_version = chain.network_version().await.map_err(internal)?;
        // From Solstice DataCap is frozen and verified deals are refused before this matters.
        let datacap = if p.verified_deal && network_version.allows_verified_deals() {
            chain.datacap(&p.client).await.map_err(internal)?
        } else {
            None
        };
        Ok(ValidationFacts {
            head,
            serves_provider,
            client_key,
            ask,
            collateral,
            max_collateral_multiplier: self.inner.config.max_provider_collateral_multiplier,
            client_balance,
            datacap,
            network_version,
            policy: self.inner.config.policy.clone(),
        })
    }

    async fn accept(
        &self,
        params: DealParams,
        protocol: Protocol,
    ) -> Result<ProviderDeal, Rejection> {
        let cdp = &params.client_deal_proposal;
        let facts = self.facts(cdp).await?;
        validate(cdp, &facts)?;
        if !params.is_offline {
            self.check_transfer(&params).await?;
        }
        self.inner
            .config
            .filter
            .check(&params, facts.head)
            .map_err(Rejection::Filtered)?;
        if let Some(ext) = &self.inner.config.external_filter {
            let escrow = self
                .chain()
                .market_balance(&cdp.proposal.provider)
                .await
                .unwrap_or_default();
            let ctx = FilterContext {
                escrow_available: escrow.available().atto().to_string(),
                escrow_locked: escrow.locked.atto().to_string(),
                storage_free: 0,
            };
            ext.check(&params, &ctx)
                .await
                .map_err(Rejection::Filtered)?;
        }
        let state = StorageDealStatus::Validating
            .on(DealEvent::Accepted {
                offline: params.is_offline,
            })
            .map_err(|e| Rejection::Internal(e.to_string()))?;
        let deal = ProviderDeal::new(&params, protocol, state);
        // The store's insert is atomic, so concurrent proposals need no lock here.
        match self
            .inner
            .deps
            .store
            .insert_provider_deal(deal.clone())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Duplicate(existing)) => {
                return Err(if existing == deal.proposal_cid.to_string() {
                    Rejection::DuplicateProposal(existing)
                } else {
                    Rejection::DuplicateUuid(params.deal_uuid.to_string())
                });
            }
            Err(e) => return Err(Rejection::Internal(e.to_string())),
        }
        tracing::info!(proposal = %deal.proposal_cid, uuid = %deal.deal_uuid, miner = %deal.miner, %protocol, "deal accepted");
        self.notify(&deal);
        if !deal.is_offline {
            // Persisted first: the transfer starts only for a deal a restart will find.
            self.spawn_driver(deal.proposal_cid);
        }
        Ok(deal)
    }

    /// An online deal's transfer must be usable now: a known type, a parsable URL at an
    /// allowed address, and room in staging (Boost checks the same at acceptance).
    async fn check_transfer(&self, params: &DealParams) -> Result<(), Rejection> {
        let Some(transfers) = &self.inner.deps.transfers else {
            return Err(Rejection::InvalidTransfer(
                "this provider does not run a data-transfer service; propose an offline deal"
                    .into(),
            ));
        };
        let req = transfer_request(
            params.deal_uuid,
            &params.transfer,
            &params.client_deal_proposal.proposal,
        )
        .map_err(Rejection::InvalidTransfer)?;
        match transfers.check(&req.url, req.size).await {
            Ok(_) => Ok(()),
            Err(
                e @ (TransferError::StagingFull { .. } | TransferError::HostStagingFull { .. }),
            ) => Err(Rejection::StagingSpace(e.to_string())),
            Err(e) => Err(Rejection::InvalidTransfer(e.to_string())),
        }
    }

    // ---------------------------------------------------------------- status

    /// Answers `/fil/storage/status/1.2.0`: the client must sign the raw UUID bytes.
    pub async fn status_v12(&self, req: DealStatusRequestV12) -> DealStatusResponseV12 {
        let error = |msg: String| DealStatusResponseV12 {
            deal_uuid: req.deal_uuid,
            error: msg,
            is_offline: false,
            deal_status: None,
            transfer_size: 0,
            n_bytes_received: 0,
        };
        let deal = match self
            .inner
            .deps
            .store
            .provider_deal_by_uuid(&req.deal_uuid)
            .await
        {
            Ok(Some(d)) => d,
            Ok(None) => {
                return error(format!(
                    "no storage deal found with deal UUID {}",
                    req.deal_uuid
                ));
            }
            Err(e) => return error(format!("getting deal {}: {e}", req.deal_uuid)),
        };
        if let Err(e) = self
            .check_client_signature(&deal, &req.signature, req.deal_uuid.as_bytes())
            .await
        {
            return error(e);
        }
        DealStatusResponseV12 {
            deal_uuid: req.deal_uuid,
            error: String::new(),
            is_offline: deal.is_offline,
            deal_status: Some(DealStatus {
                error: if deal.state == StorageDealStatus::Error {
                    deal.message.clone()
                } else {
                    String::new()
                },
                status: deal.state.checkpoint().name().to_owned(),
                proposal: deal.proposal.proposal.clone(),
                publish_cid: deal.publish_cid,
                chain_deal_id: deal.deal_id.unwrap_or_default(),
                sealing_status: sealing_status(deal.state).to_owned(),
                signed_proposal_cid: deal.proposal_cid,
            }),
            transfer_size: deal.transfer.size,
            n_bytes_received: self.received_of(&deal).await,
        }
    }

    /// Bytes of a deal's data received so far, counted as they arrive (all of it once the
    /// piece is stored); what `NBytesReceived` reports.
    pub async fn bytes_received(&self, r: DealRef) -> Result<u64, ProviderError> {
        let deal = self
            .deal(r)
            .await?
            .ok_or_else(|| ProviderError::DealNotFound(format!("{r:?}")))?;
        Ok(self.received_of(&deal).await)
    }

    /// The stored record of an online deal's transfer: its durable progress, the offsets a
    /// restart resumes from. `None` for offline deals and once the piece is stored.
    pub async fn transfer_record(
        &self,
        r: DealRef,
    ) -> Result<Option<data_transfer::TransferRecord>, ProviderError> {
        let deal = self
            .deal(r)
            .await?
            .ok_or_else(|| ProviderError::DealNotFound(format!("{r:?}")))?;
        let (Some(transfers), Ok(id)) = (&self.inner.deps.transfers, transfer_id(deal.deal_uuid))
        else {
            return Ok(None);
        };
        Ok(transfers.status(&id).await.ok().flatten())
    }

    /// Bytes of `deal`'s data received so far ([`bytes_received`](Self::bytes_received)
    /// for a deal already read).
    pub async fn received_of(&self, deal: &ProviderDeal) -> u64 {
        if deal.piece_path.is_some() {
            return deal.transfer.size;
        }
        let Some(transfers) = &self.inner.deps.transfers else {
            return 0;
        };
        let Ok(id) = transfer_id(deal.deal_uuid) else {
            return 0;
        };
        // Counted as bytes arrive; the durable offset stays checkpoint-based.
        transfers.received(&id).await.ok().flatten().unwrap_or(0)
    }

    /// Answers `/fil/storage/status/1.1.0`: the client must sign the CBOR of the proposal CID;
    /// the response is signed by the worker key.
    pub async fn status_v11(&self, req: DealStatusRequest) -> DealStatusResponse {
        let found = self.inner.deps.store.provider_deal(&req.proposal).await;
        let (state, miner) = match found {
            Ok(Some(deal)) => {
                let payload = status_request_payload(&req.proposal);
                match self
                    .check_client_signature(&deal, &req.signature, &payload)
                    .await
                {
                    Ok(()) => (
                        ProviderDealState {
                            state: deal.state.code(),
                            deal_id: deal.deal_id.unwrap_or_default(),
                            message: deal.message.clone(),
                            proposal: Some(deal.proposal.proposal.clone()),
                            publish_cid: deal.publish_cid,
                            add_funds_cid: deal.add_funds_cid,
                            proposal_cid: Some(deal.proposal_cid),
                            fast_retrieval: deal.fast_retrieval,
                        },
                        Some(deal.miner),
                    ),
                    Err(e) => (error_state(req.proposal, e), Some(deal.miner)),
                }
            }
            Ok(None) => (
                error_state(req.proposal, format!("deal {} not found", req.proposal)),
                None,
            ),
            Err(e) => (error_state(req.proposal, e.to_string()), None),
        };
        let miner = miner.or_else(|| self.inner.config.miners.first().copied());
        let signature = self
            .sign_as_worker(miner, &crate::cbor::to_vec(&state), SignPurpose::DealStatus)
            .await;
        DealStatusResponse {
            deal_state: state,
            // go-fil-markets always sends a signature; an empty BLS one marks "could not sign".
            signature: signature.unwrap_or_else(|| {
                crate::types::Signature::new(crate::types::SignatureType::Bls, vec![])
            }),
        }
    }

    async fn check_client_signature(
        &self,
        deal: &ProviderDeal,
        sig: &crate::types::Signature,
        payload: &[u8],
    ) -> Result<(), String> {
        let key = self
            .chain()
            .account_key(&deal.proposal.proposal.client)
            .await
            .map_err(|e| format!("resolving client: {e}"))?;
        wallet::verify(sig, &key, payload)
            .map_err(|e| format!("invalid deal status request signature: {e}"))
    }

    /// A deal by proposal CID or UUID.
    pub async fn deal(&self, r: DealRef) -> Result<Option<ProviderDeal>, ProviderError> {
        Ok(match r {
            DealRef::ProposalCid(c) => self.inner.deps.store.provider_deal(&c).await?,
            DealRef::Uuid(u) => self.inner.deps.store.provider_deal_by_uuid(&u).await?,
        })
    }

    /// All deals, oldest first.
    pub async fn deals(&self) -> Result<Vec<ProviderDeal>, ProviderError> {
        Ok(self.inner.deps.store.provider_deals().await?)
    }

    /// A deal's timeline (every state and message it had, with when), oldest first; empty
    /// for an unknown deal.
    pub async fn deal_events(
        &self,
        r: DealRef,
    ) -> Result<Vec<crate::store::DealStateChange>, ProviderError> {
        match self.deal(r).await? {
            Some(d) => Ok(self.inner.deps.store.deal_events(&d.proposal_cid).await?),
            None => Ok(Vec::new()),
        }
    }

    /// Cancels a deal whose data has not been verified yet (waiting for an import, or
    /// transferring): it fails with "cancelled by the operator" and its staging space is
    /// given back. Later deals have spent funds or are on chain, and are refused.
    pub async fn cancel(&self, r: DealRef) -> Result<(), ProviderError> {
        let mut deal = self
            .deal(r)
            .await?
            .ok_or_else(|| ProviderError::DealNotFound(format!("{r:?}")))?;
        let cancellable = |deal: &ProviderDeal| {
            if deal.state.is_cancellable() {
                Ok(())
            } else {
                Err(ProviderError::NotAllowed {
                    action: "cancel",
                    state: deal.state,
                    why: "only deals whose data is not yet verified can be cancelled",
                })
            }
        };
        cancellable(&deal)?;
        // An import holds the deal until it has stored its result; never race it.
        let _import = ImportGuard::take(&self.inner.importing, deal.proposal_cid)?;
        let driven_here = self
            .inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(&deal.proposal_cid);
        // With leases, only the instance driving a transfer can end it; a deal nobody
        // drives is ours to fail once we hold it (read again: it may have moved on).
        let held_here = self.inner.config.lease.is_some() && !driven_here;
        if held_here {
            self.hold_for_action(&deal.proposal_cid).await?;
            if let Some(fresh) = self
                .inner
                .deps
                .store
                .provider_deal(&deal.proposal_cid)
                .await?
            {
                deal = fresh;
            }
            if let Err(e) = cancellable(&deal) {
                self.give_back_lease(&deal.proposal_cid).await;
                return Err(e);
            }
        }
        if held_here || deal.state == StorageDealStatus::WaitingForData || deal.is_offline {
            // No driver of ours runs for it (it waits on an import): fail it here.
            self.transition(&mut deal, DealEvent::Failed, CANCELLED)
                .await?;
            self.spawn_driver(deal.proposal_cid);
            return Ok(());
        }
        // The driver is waiting on the transfer: end the transfer and let it fail the deal.
        self.inner
            .cancelling
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(deal.proposal_cid);
        if let Some(transfers) = &self.inner.deps.transfers
            && let Ok(id) = transfer_id(deal.deal_uuid)
        {
            let _ = transfers.cancel(&id).await;
        }
        Ok(())
    }

    /// Retries a deal that failed before it was published (a transfer that gave up, an
    /// import that never came), if its start epoch is still ahead: it waits for its data
    /// again, transferring it anew for an online deal.
    pub async fn retry(&self, r: DealRef) -> Result<ProviderDeal, ProviderError> {
        let mut deal = self
            .deal(r)
            .await?
            .ok_or_else(|| ProviderError::DealNotFound(format!("{r:?}")))?;
        let not = |why| ProviderError::NotAllowed {
            action: "retry",
            state: deal.state,
            why,
        };
        if deal.state != StorageDealStatus::Error {
            return Err(not("only failed deals can be retried"));
        }
        if deal.publish_cid.is_some() || deal.deal_id.is_some() {
            return Err(not("the deal was published; it cannot be made again"));
        }
        let head = self.chain().head().await?;
        if head >= deal.proposal.proposal.start_epoch {
            return Err(not("its start epoch has passed"));
        }
        let offline = deal.is_offline;
        self.transition(
            &mut deal,
            DealEvent::Retried { offline },
            "retried by the operator",
        )
        .await?;
        if !offline {
            self.spawn_driver(deal.proposal_cid);
        }
        Ok(deal)
    }

    /// The deals in any of `states`, oldest first.
    pub async fn deals_in(
        &self,
        states: &[StorageDealStatus],
    ) -> Result<Vec<ProviderDeal>, ProviderError> {
        Ok(self.inner.deps.store.provider_deals_in(states).await?)
    }

    /// How many deals are in each state.
    pub async fn deal_counts(&self) -> Result<Vec<(StorageDealStatus, u64)>, ProviderError> {
        Ok(self.inner.deps.store.provider_deal_counts().await?)
    }

    // ---------------------------------------------------------------- offline data

    /// Imports the data of an offline deal from a file: computes its commP (padded to the
    /// proposal's piece size, as Boost does), compares it with the proposal, stores the piece,
    /// and lets the deal continue. A mismatch leaves the deal waiting so the right file can
    /// still be imported.
    ///
    /// Only regular files are read, and one that cannot fit the piece is refused before a
    /// byte is read. Once started, the import runs to its end even when the caller goes away,
    /// so no half-written piece or index stays behind.
    pub async fn import_data(&self, r: DealRef, path: &Path) -> Result<(), ProviderError> {
        let (me, path) = (self.clone(), path.to_path_buf());
        tokio::spawn(async move { me.import_now(r, &path).await })
            .await
            .map_err(|e| ProviderError::Task(e.to_string()))?
    }

    async fn import_now(&self, r: DealRef, path: &Path) -> Result<(), ProviderError> {
        let deal = self
            .deal(r)
            .await?
            .ok_or_else(|| ProviderError::DealNotFound(format!("{r:?}")))?;
        if deal.state != StorageDealStatus::WaitingForData {
            return Err(ProviderError::NotWaitingForData(deal.state));
        }
        let _one = ImportGuard::take(&self.inner.importing, deal.proposal_cid)?;
        let cid = deal.proposal_cid;
        self.hold_for_action(&cid).await?;
        let imported = self.import_held(deal, path).await;
        if imported.is_err() {
            self.give_back_lease(&cid).await;
        }
        imported
    }

    /// An import of a deal this instance holds.
    async fn import_held(&self, mut deal: ProviderDeal, path: &Path) -> Result<(), ProviderError> {
        if self.inner.config.lease.is_some() {
            // Another instance may have imported it before we took the lease.
            deal = self
                .inner
                .deps
                .store
                .provider_deal(&deal.proposal_cid)
                .await?
                .ok_or_else(|| ProviderError::DealNotFound(deal.proposal_cid.to_string()))?;
            if deal.state != StorageDealStatus::WaitingForData {
                return Err(ProviderError::NotWaitingForData(deal.state));
            }
        }
        let p = &deal.proposal.proposal;
        let size = p
            .padded_piece_size()
            .map_err(|e| ProviderError::DataTooLarge(e.to_string()))?;
        let io = |source| ProviderError::Io {
            path: path.to_path_buf(),
            source,
        };
        // Look before opening: opening a named pipe blocks until someone writes to it.
        let meta = tokio::fs::metadata(path).await.map_err(io)?;
        check_import_source(&meta, size).map_err(|e| e.at(path))?;
        let mut file = tokio::fs::File::open(path).await.map_err(io)?;
        // The path may have been swapped since: what was opened is what counts.
        let opened = file.metadata().await.map_err(io)?;
        check_import_source(&opened, size).map_err(|e| e.at(path))?;
        let expected = ExpectedPiece {
            piece_cid: p.piece_cid,
            padded_size: size,
        };
        // One pass over the file: each chunk goes to the CAR indexer and, through a pipe,
        // to the piece store, which computes commP while it writes.
        let deps = &self.inner.deps;
        let (mut to_store, from_file) = tokio::io::duplex(1 << 20);
        let store = deps.pieces.put(Box::pin(from_file), Some(expected));
        let feed = async {
            let mut indexer = PieceIndexer::begin(&*deps.index, &p.piece_cid).await?;
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = file.read(&mut buf).await.map_err(io)?;
                if n == 0 {
                    break;
                }
                indexer.push(&buf[..n]).await?;
                if to_store.write_all(&buf[..n]).await.is_err() {
                    // The store stopped reading; its own error says why.
                    break;
                }
            }
            drop(to_store);
            Ok::<_, ProviderError>(indexer)
        };
        let (stored, fed) = tokio::join!(store, feed);
        let meta = match (stored, fed) {
            (Ok(meta), Ok(indexer)) => {
                let report = indexer.finish(meta).await?;
                if let Some(why) = &report.error {
                    tracing::info!(piece = %meta.piece_cid, %why, "payload is not an indexable CAR");
                }
                meta
            }
            (stored, fed) => {
                self.restore_index(&p.piece_cid).await;
                return Err(match (stored, fed) {
                    (Err(PieceStoreError::CommPMismatch { expected, actual }), _) => {
                        ProviderError::CommPMismatch { expected, actual }
                    }
                    (Err(e), _) => e.into(),
                    (_, Err(e)) => e,
                    (Ok(_), Ok(_)) => unreachable!("handled above"),
                });
            }
        };
        deal.piece_path = Some(deps.pieces.locator(&meta.piece_cid));
        self.transition(&mut deal, DealEvent::DataVerified, "")
            .await?;
        self.spawn_driver(deal.proposal_cid);
        Ok(())
    }

    // ---------------------------------------------------------------- pipeline

    fn notify(&self, deal: &ProviderDeal) {
        let _ = self.inner.updates.send(DealUpdate {
            proposal_cid: deal.proposal_cid,
            state: deal.state,
            message: deal.message.clone(),
        });
    }

    async fn transition(
        &self,
        deal: &mut ProviderDeal,
        event: DealEvent,
        message: &str,
    ) -> Result<(), ProviderError> {
        let next = deal.state.on(event)?;
        deal.state = next;
        if !message.is_empty() || next == StorageDealStatus::Failing {
            deal.message = message.to_owned();
        }
        self.inner.deps.store.update_provider_deal(deal).await?;
        market_core::metrics::deal_transition(next.name());
        tracing::debug!(proposal = %deal.proposal_cid, state = %deal.state, "deal state");
        self.notify(deal);
        Ok(())
    }

    fn spawn_driver(&self, proposal_cid: Cid) {
        {
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.contains_key(&proposal_cid) {
                return;
            }
            running.insert(proposal_cid, None);
        }
        let me = self.clone();
        // The task waits until its abort handle is recorded, so it can always be stopped.
        let (go, gate) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            if gate.await.is_err() {
                return;
            }
            let leased = match &me.inner.config.lease {
                None => false,
                Some(lease) => match me.take_lease(&proposal_cid, lease).await {
                    Ok(true) => true,
                    Ok(false) => {
                        tracing::debug!(proposal = %proposal_cid, "deal driven by another instance");
                        me.driver_done(&proposal_cid);
                        return;
                    }
                    // Not driven now; the takeover scan finds it unleased later.
                    Err(e) => {
                        tracing::warn!(proposal = %proposal_cid, error = %e, "taking a deal lease failed");
                        me.driver_done(&proposal_cid);
                        return;
                    }
                },
            };
            if let Err(e) = me.drive(proposal_cid).await {
                tracing::error!(proposal = %proposal_cid, error = %e, "deal driver stopped");
            }
            if leased {
                me.give_back_lease(&proposal_cid).await;
            }
            me.driver_done(&proposal_cid);
        });
        if let Some(slot) = self
            .inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(&proposal_cid)
        {
            *slot = Some(task.abort_handle());
        }
        let _ = go.send(());
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(task.abort_handle());
    }

    fn driver_done(&self, proposal_cid: &Cid) {
        self.inner
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(proposal_cid);
    }

    // ---------------------------------------------------------------- leases

    /// Takes `deal`'s lease and records it as held by a driver of ours.
    async fn take_lease(&self, deal: &Cid, lease: &LeaseConfig) -> Result<bool, StoreError> {
        let taken = self
            .inner
            .deps
            .store
            .take_lease(deal, &lease.holder, lease.ttl)
            .await;
        if matches!(taken, Ok(true)) {
            self.inner
                .leased
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(*deal);
        }
        taken
    }

    fn forget_lease(&self, deal: &Cid) {
        self.inner
            .leased
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(deal);
    }

    /// Ends our hold of `deal`: out of the renewals first, then released in the store (a
    /// failed release just lets the lease expire).
    async fn give_back_lease(&self, deal: &Cid) {
        let Some(lease) = &self.inner.config.lease else {
            return;
        };
        self.forget_lease(deal);
        if let Err(e) = self
            .inner
            .deps
            .store
            .release_lease(deal, &lease.holder)
            .await
        {
            tracing::warn!(proposal = %deal, error = %e, "releasing a deal lease failed");
        }
    }

    /// Stops the drivers of `deals` at once, as if this instance had died for them; their
    /// next holder resumes them from the store.
    fn stop_drivers(&self, deals: &[Cid]) {
        let mut leased = self.inner.leased.lock().unwrap_or_else(|p| p.into_inner());
        let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        for d in deals {
            leased.remove(d);
            if let Some(Some(task)) = running.remove(d) {
                task.abort();
            }
        }
    }

    /// Renews the leases of our drivers, stops those whose lease another instance took
    /// (or all of them when renewals have failed for too long), and drives deals left
    /// unleased by instances that went away.
    async fn keep_leases(self, lease: LeaseConfig) {
        let store = self.inner.deps.store.clone();
        let mut last_renewal = tokio::time::Instant::now();
        let mut next_scan = tokio::time::Instant::now();
        loop {
            tokio::time::sleep(lease.renew_every()).await;
            let held: HashSet<Cid> = self
                .inner
                .leased
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let asked: Vec<Cid> = held.iter().copied().collect();
            match store.renew_leases(&lease.holder, &asked, lease.ttl).await {
                Ok(renewed) => {
                    last_renewal = tokio::time::Instant::now();
                    let lost = crate::lease::lost(&held, &renewed);
                    if !lost.is_empty() {
                        tracing::warn!(
                            deals = lost.len(),
                            "deal leases taken over by another instance; stopping their drivers"
                        );
                        self.stop_drivers(&lost);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing deal leases failed");
                    if lease.must_fence(last_renewal.elapsed()) {
                        tracing::error!(
                            deals = asked.len(),
                            "deal leases could not be renewed in time; stopping every driver so no other instance drives a deal with us"
                        );
                        self.stop_drivers(&asked);
                    }
                }
            }
            if tokio::time::Instant::now() >= next_scan {
                next_scan = tokio::time::Instant::now() + lease.takeover_every();
                match store.claimable_deals(1024).await {
                    Ok(deals) => {
                        for d in deals {
                            tracing::info!(proposal = %d, "taking over an unleased deal");
                            self.spawn_driver(d);
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "looking for unleased deals failed"),
                }
            }
        }
    }

    /// With leases, holds `deal` for an operator action that changes it outside a driver
    /// (an import, a cancel): refused while another instance drives it.
    async fn hold_for_action(&self, deal: &Cid) -> Result<(), ProviderError> {
        let Some(lease) = &self.inner.config.lease else {
            return Ok(());
        };
        if self.take_lease(deal, lease).await? {
            Ok(())
        } else {
            Err(ProviderError::LeasedElsewhere(Box::new(*deal)))
        }
    }

    /// Walks a deal through the pipeline until it is finished or waits for outside input.
    async fn drive(&self, proposal_cid: Cid) -> Result<(), ProviderError> {
        let Some(mut deal) = self.inner.deps.store.provider_deal(&proposal_cid).await? else {
            return Ok(());
        };
        loop {
            let step = self.step(&mut deal).await;
            match step {
                Ok(Step::Continue) => {}
                Ok(Step::Wait) => return Ok(()),
                Ok(Step::Poll) => tokio::time::sleep(self.inner.config.poll_interval).await,
                // The node went away for a moment: the deal is fine, ask again later.
                Err(StepError::Chain(e @ ChainError::Node(_))) => {
                    tracing::warn!(proposal = %deal.proposal_cid, state = %deal.state, error = %e, "chain node unavailable; retrying");
                    tokio::time::sleep(self.inner.config.poll_interval).await;
                }
                // A local part failed (disk full, database locked): nothing is lost, so wait
                // and try the step again rather than fail a deal the client paid for.
                Err(StepError::Provider(e)) => {
                    tracing::error!(proposal = %deal.proposal_cid, state = %deal.state, error = %e, "deal step failed locally; retrying");
                    tokio::time::sleep(self.inner.config.poll_interval.max(Duration::from_secs(1)))
                        .await;
                    if let Some(fresh) = self.inner.deps.store.provider_deal(&proposal_cid).await? {
                        deal = fresh;
                    }
                }
                Err(reason) => {
                    let cancelled = self
                        .inner
                        .cancelling
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&proposal_cid);
                    let reason = if cancelled {
                        CANCELLED.to_string()
                    } else {
                        reason.to_string()
                    };
                    tracing::warn!(proposal = %deal.proposal_cid, state = %deal.state, %reason, "deal failed");
                    self.transition(&mut deal, DealEvent::Failed, &reason)
                        .await?;
                }
            }
        }
    }

    async fn step(&self, deal: &mut ProviderDeal) -> Result<Step, StepError> {
        use StorageDealStatus as S;
        let chain = self.chain();
        let p = deal.proposal.proposal.clone();
        match deal.state {
            S::WaitingForData => Ok(Step::Wait),
            S::Transferring if deal.is_offline => Ok(Step::Wait),
            S::Transferring => self.receive(deal).await,
            S::ReserveProviderFunds => {
                let _reserving = self.inner.funds_lock.lock().await;
                let held = self.hold_funds(&deal.miner).await?;
                let step = self.reserve_funds(deal).await;
                if let (Some(key), Some(lease)) = (held, &self.inner.config.lease) {
                    let store = &self.inner.deps.store;
                    if let Err(e) = store.release_lease(&key, &lease.holder).await {
                        tracing::warn!(error = %e, "releasing the funds reservation failed");
                    }
                }
                step
            }
            S::ProviderFunding => {
                let cid = deal.add_funds_cid.ok_or("no AddBalance message recorded")?;
                self.wait_ok(cid, "AddBalance").await?;
                self.transition(deal, DealEvent::Funded, "").await?;
                Ok(Step::Continue)
            }
            S::Publish => {
                let store = &self.inner.deps.store;
                // A message recorded for this deal before a crash is pushed again (same
                // uuid, so the node answers with the message it has) rather than a new one.
                let recorded = store
                    .publish_for(&deal.proposal_cid)
                    .await
                    .map_err(ProviderError::from)?;
                let ticket = match recorded {
                    Some((record, index)) => {
                        let message = match record.cid {
                            Some(c) => Ok(c),
                            None => crate::publish::push_recorded(chain, &**store, &record).await,
                        };
                        message.map(|message| crate::publish::PublishTicket { message, index })
                    }
                    None => {
                        let sender = self.worker(&deal.miner).await?;
                        self.inner
                            .publisher
                            .publish(deal.miner, sender, deal.proposal.clone())
                            .await
                    }
                };
                let ticket = match ticket {
                    Ok(t) => t,
                    // Shutting down: the deal stays in Publish and is queued again on start.
                    Err(PublishError::Stopped) => return Ok(Step::Wait),
                    Err(PublishError::Retry(e)) => {
                        return Err(StepError::Chain(ChainError::Node(e)));
                    }
                    Err(e) => return Err(StepError::Deal(e.to_string())),
                };
                deal.publish_cid = Some(ticket.message);
                deal.publish_index = Some(ticket.index);
                self.transition(deal, DealEvent::PublishSent, "").await?;
                Ok(Step::Continue)
            }
            S::Publishing => {
                let cid = deal.publish_cid.ok_or("no publish message recorded")?;
                let found = self.wait_ok(cid, "publish message").await?;
                let ret: PublishStorageDealsReturn =
                    crate::cbor::from_slice(&found.receipt.return_data, 1 << 20)
                        .map_err(|e| format!("decoding publish return: {e}"))?;
                let index = deal.publish_index.unwrap_or(0);
                let id = ret
                    .deal_id_for(index)
                    .ok_or_else(|| format!("deal was invalid at publication (message {cid})"))?;
                deal.deal_id = Some(id);
                self.transition(deal, DealEvent::Published, "").await?;
                tracing::info!(proposal = %deal.proposal_cid, deal_id = %id, "deal published");
                Ok(Step::Continue)
            }
            S::Staged => {
                let id = deal.deal_id.ok_or("published deal has no id")?;
                let meta = self
                    .inner
                    .deps
                    .pieces
                    .stat(&p.piece_cid)
                    .await
                    .map_err(|e| format!("reading the stored piece: {e}"))?
                    .ok_or("the piece is missing from the piece store")?;
                let piece = PieceHandle::new(meta, self.inner.deps.pieces.clone());
                let sd = SealingDeal {
                    miner: deal.miner,
                    deal_id: id,
                    publish_cid: deal.publish_cid.unwrap_or_default(),
                    proposal: p,
                    keep_unsealed: !deal.remove_unsealed,
                };
                let store = &self.inner.deps.store;
                let waiting = Placement::waiting(deal.proposal_cid, deal.miner, id);
                match self.inner.deps.sealer.add_piece(&sd, &piece).await {
                    Ok(Handoff::Placed(PieceLocation { sector, offset })) => {
                        let placed = waiting.clone().at(PieceStatus::Packing, sector, offset);
                        store.queue_for_sealing(&waiting).await?;
                        store
                            .update_placements(vec![PlacementChange {
                                expect: vec![],
                                new: placed.clone(),
                            }])
                            .await?;
                        self.adopt_placement(deal, &placed).await?;
                        self.transition(deal, DealEvent::HandedOff, "").await?;
                        Ok(Step::Continue)
                    }
                    Ok(Handoff::Queued) => {
                        store.queue_for_sealing(&waiting).await?;
                        self.transition(deal, DealEvent::HandedOff, "").await?;
                        Ok(Step::Continue)
                    }
                    Err(SealerError::Unavailable(why)) => {
                        tracing::debug!(proposal = %deal.proposal_cid, %why, "sealer busy; retrying");
                        Ok(Step::Poll)
                    }
                    Err(err) => Err(StepError::Deal(err.to_string())),
                }
            }
            S::AwaitingPreCommit | S::Sealing => {
                let id = deal.deal_id.ok_or("published deal has no id")?;
                let awaiting = deal.state == S::AwaitingPreCommit;
                // Follow the sealer: pull sealers assign and release deals on their own time.
                let placement = self.inner.deps.store.placement(&deal.proposal_cid).await?;
                if let Some(placement) = &placement {
                    self.adopt_placement(deal, placement).await?;
                    if !awaiting && placement.status == PieceStatus::Undefine {
                        self.transition(deal, DealEvent::Released, "released by the sealer")
                            .await?;
                        return Ok(Step::Continue);
                    }
                }
                if let Some(sector) = deal.sector
                    && let Some(said) = self
                        .inner
                        .deps
                        .sealer
                        .sector_state(&deal.miner, sector)
                        .await
                {
                    let note = format!("sector {sector}: {said}");
                    if deal.message != note {
                        deal.message = note;
                        self.inner.deps.store.update_provider_deal(deal).await?;
                    }
                }
                let market_deal = chain.market_deal(id).await?;
                let pending = market_deal
                    .as_ref()
                    .is_some_and(|md| md.state.sector_start_epoch.get() < 0);
                let sector_precommitted = match deal.sector {
                    Some(sector) if awaiting && pending => chain
                        .sector(&deal.miner, sector)
                        .await?
                        .is_some_and(|s| s.deal_ids.contains(&id)),
                    _ => false,
                };
                let facts = SealingFacts {
                    market_deal: market_deal.clone(),
                    sector_precommitted,
                };
                let (event, message) =
                    match lifecycle::while_sealing(id, p.start_epoch, awaiting, &facts) {
                        SealingDecision::Activated => (DealEvent::Activated, String::new()),
                        SealingDecision::PreCommitted => (DealEvent::PreCommitted, String::new()),
                        SealingDecision::Removed { message } => (DealEvent::Slashed, message),
                        _ => return Ok(Step::Poll),
                    };
                if event == DealEvent::Activated {
                    // The chain's word on the sector wins: a snap deal lands in a sector the
                    // market never heard of.
                    let on_chain = market_deal.and_then(|md| md.sector);
                    if let Some(sector) = on_chain.filter(|s| Some(*s) != deal.sector) {
                        deal.sector = Some(sector);
                        deal.sector_offset = None;
                    }
                    if let (Some(placement), Some(sector)) = (placement, deal.sector) {
                        let proving = placement.at(
                            PieceStatus::Proving,
                            sector,
                            deal.sector_offset.unwrap_or(0),
                        );
                        self.inner
                            .deps
                            .store
                            .update_placements(vec![PlacementChange {
                                expect: vec![],
                                new: proving,
                            }])
                            .await?;
                    }
                    self.index_deal(deal).await?;
                }
                self.transition(deal, event, &message).await?;
                Ok(Step::Continue)
            }
            S::Finalizing => {
                if deal.remove_unsealed && !self.piece_shared(deal).await {
                    let _ = self.inner.deps.pieces.delete(&p.piece_cid).await;
                }
                self.transition(deal, DealEvent::Finalized, "").await?;
                tracing::info!(proposal = %deal.proposal_cid, deal_id = ?deal.deal_id, "deal active");
                Ok(Step::Continue)
            }
            S::Active => {
                let id = deal.deal_id.ok_or("active deal has no id")?;
                // The deal first, then the head: a deal found gone was gone at an epoch no
                // later than the head read after it, so one that expired between the two
                // reads is never taken for one terminated early.
                let market_deal = chain.market_deal(id).await?;
                let facts = ActiveFacts {
                    head: chain.head().await?,
                    market_deal,
                };
                let (event, message) = match lifecycle::while_active(p.end_epoch, &facts) {
                    ActiveDecision::Expired => (DealEvent::Expired, String::new()),
                    ActiveDecision::Slashed { message } => (DealEvent::Slashed, message),
                    _ => return Ok(Step::Poll),
                };
                self.transition(deal, event, &message).await?;
                Ok(Step::Continue)
            }
            S::Failing => {
                if deal.sector.is_none() && !self.piece_shared(deal).await {
                    let _ = self.inner.deps.pieces.delete(&p.piece_cid).await;
                }
                let message = deal.message.clone();
                self.transition(deal, DealEvent::CleanedUp, &message)
                    .await?;
                Ok(Step::Continue)
            }
            s if s.is_terminal() => Ok(Step::Wait),
            other => Err(format!("no action defined for state {other}").into()),
        }
    }

    /// Runs (or, after a restart, resumes) an online deal's transfer, then verifies and stores
    /// the piece. The transfer is keyed by the deal UUID, so starting it again is a no-op.
    async fn receive(&self, deal: &mut ProviderDeal) -> Result<Step, StepError> {
        let transfers = self
            .inner
            .deps
            .transfers
            .clone()
            .ok_or("online deal but no data-transfer service is configured")?;
        let req = transfer_request(deal.deal_uuid, &deal.transfer, &deal.proposal.proposal)?;
        let id = req.id.clone();
        transfers
            .start(req)
            .await
            .map_err(|e| format!("starting data transfer: {e}"))?;
        let done = match transfers.wait(&id).await {
            Ok(d) => d,
            Err(e) => {
                let _ = transfers.remove(&id).await;
                return Err(format!("data transfer failed: {e}").into());
            }
        };
        let expected = deal.proposal.proposal.piece_cid;
        if done.piece.piece_cid != expected {
            let _ = transfers.remove(&id).await;
            return Err(format!(
                "commP mismatch: proposal has {expected}, the transferred data gives {}",
                done.piece.piece_cid
            )
            .into());
        }
        // A restart after the store took the staged file but before the deal moved on finds
        // the piece already stored and its staging file gone: that is done, not a failure.
        let pieces = &self.inner.deps.pieces;
        let stored_already = pieces
            .stat(&done.piece.piece_cid)
            .await
            .ok()
            .flatten()
            .is_some_and(|m| m == done.piece);
        if stored_already {
            let _ = done.staged().discard().await;
        } else {
            pieces
                .put_staged(done.staged())
                .await
                .map_err(|e| format!("storing the piece: {e}"))?;
        }
        // The blocks were found while the transfer hashed the payload; only a payload with
        // more blocks than a transfer keeps is read again.
        let stored = match done.blocks.clone() {
            Some(blocks) => {
                let report = index_blocks(&*self.inner.deps.index, done.piece, blocks).await?;
                if let Some(why) = &report.error {
                    tracing::info!(piece = %done.piece.piece_cid, %why, "payload is not an indexable CAR");
                }
                self.inner.deps.pieces.locator(&done.piece.piece_cid)
            }
            None => self.index_piece(done.piece).await?,
        };
        transfers
            .remove(&id)
            .await
            .map_err(|e| format!("clearing the transfer: {e}"))?;
        deal.piece_path = Some(stored);
        self.transition(deal, DealEvent::DataVerified, "").await?;
        Ok(Step::Continue)
    }

    /// Whether another deal still needs `deal`'s piece (two deals may carry the same data),
    /// so cleaning up one must not delete it. In doubt (the store fails), keep it.
    /// Takes the sector and offset a sealer recorded for `deal` (or their absence, after a
    /// release) into the deal and the piece index.
    async fn adopt_placement(
        &self,
        deal: &mut ProviderDeal,
        placement: &Placement,
    ) -> Result<(), ProviderError> {
        if (placement.sector, placement.offset) == (deal.sector, deal.sector_offset) {
            return Ok(());
        }
        tracing::info!(proposal = %deal.proposal_cid, sector = ?placement.sector, offset = ?placement.offset, status = %placement.status, "deal placement");
        deal.sector = placement.sector;
        deal.sector_offset = placement.offset;
        self.index_deal(deal).await?;
        self.inner.deps.store.update_provider_deal(deal).await?;
        Ok(())
    }

    /// Records in the piece index where `deal` lives, once it has a sector.
    async fn index_deal(&self, deal: &ProviderDeal) -> Result<(), ProviderError> {
        let (Some(id), Some(sector)) = (deal.deal_id, deal.sector) else {
            return Ok(());
        };
        let p = &deal.proposal.proposal;
        let record = DealRecord {
            miner: deal.miner.to_string(),
            deal_id: id.0,
            sector: sector.0,
            offset: deal.sector_offset.unwrap_or(0),
            length: p.piece_size,
        };
        self.inner.deps.index.add_deal(&p.piece_cid, record).await?;
        Ok(())
    }

    async fn piece_shared(&self, deal: &ProviderDeal) -> bool {
        let piece = deal.proposal.proposal.piece_cid;
        match self.inner.deps.store.provider_deals().await {
            Ok(deals) => deals.iter().any(|d| {
                d.proposal_cid != deal.proposal_cid
                    && d.proposal.proposal.piece_cid == piece
                    && !d.state.is_terminal()
            }),
            Err(_) => true,
        }
    }

    /// Adds a stored piece to the index (its CAR blocks and roots); returns where it is.
    async fn index_piece(&self, meta: piecestore::PieceMeta) -> Result<String, ProviderError> {
        let pieces = &self.inner.deps.pieces;
        let data = pieces.get(&meta.piece_cid, None).await?;
        let report = index_payload(&*self.inner.deps.index, meta, data).await?;
        if let Some(why) = &report.error {
            tracing::info!(piece = %meta.piece_cid, %why, "payload is not an indexable CAR");
        }
        Ok(pieces.locator(&meta.piece_cid))
    }

    /// After a failed import, puts the index of `piece` back as the store has it: another
    /// deal may hold the same piece, and the import began by clearing its blocks.
    async fn restore_index(&self, piece: &Cid) {
        let deps = &self.inner.deps;
        let result = match deps.pieces.stat(piece).await {
            Ok(Some(meta)) => self.index_piece(meta).await.map(|_| ()),
            Ok(None) => deps.index.remove_piece(piece).await.map_err(Into::into),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            tracing::warn!(%piece, error = %e, "restoring the piece index after a failed import");
        }
    }

    /// Collateral this miner still has to lock: this deal plus other deals queued for or in
    /// publication.
    /// Waits for `cid` at the configured confidence; a non-zero exit code is an error.
    async fn wait_ok(
        &self,
        cid: Cid,
        what: &str,
    ) -> Result<crate::chain::MessageLookup, StepError> {
        let found = self
            .inner
            .deps
            .chain
            .wait_message(&cid, self.inner.config.message_confidence)
            .await
            .map_err(|e| match e {
                // The node is unreachable: wait again, the message may still land.
                ChainError::Node(_) => StepError::Chain(e),
                e => StepError::Deal(format!("waiting for {what} {cid}: {e}")),
            })?;
        if !found.receipt.exit_code.is_ok() {
            return Err(StepError::Deal(format!(
                "{what} {cid} failed with exit code {}",
                found.receipt.exit_code
            )));
        }
        Ok(found)
    }

    /// Reserves provider collateral for `deal`: counted against the escrow with the deals
    /// already reserved, topped up with an AddBalance when short.
    async fn reserve_funds(&self, deal: &mut ProviderDeal) -> Result<Step, StepError> {
        let chain = self.chain();
        let need = self.collateral_in_flight(deal).await?;
        let balance = chain.market_balance(&deal.miner).await?;
        if balance.available() >= need {
            self.transition(deal, DealEvent::FundsReserved, "").await?;
            return Ok(Step::Continue);
        }
        let missing = need.saturating_sub(balance.available());
        let worker = self.worker(&deal.miner).await?;
        let msg = Message {
            from: worker,
            to: deal::STORAGE_MARKET_ACTOR,
            method: deal::method::ADD_BALANCE,
            params: crate::cbor::to_vec(&deal.miner),
            value: missing,
            max_fee: self.inner.config.max_market_balance_add_fee,
            // One top-up per deal, even if the push is repeated after a crash.
            uuid: Some(deal_scoped_uuid(&deal.proposal_cid, b"add-balance")),
        };
        let cid = chain
            .push_message(msg)
            .await
            .map_err(|e| format!("adding provider collateral: {e}"))?;
        deal.add_funds_cid = Some(cid);
        self.transition(deal, DealEvent::FundingInitiated, "")
            .await?;
        Ok(Step::Continue)
    }

    /// With leases, holds `miner`'s collateral reservation across instances (a lease on a
    /// key of its own), so two instances cannot count the same escrow for two deals.
    async fn hold_funds(&self, miner: &Address) -> Result<Option<Cid>, StepError> {
        let Some(lease) = &self.inner.config.lease else {
            return Ok(None);
        };
        let name = format!("provider-funds/{miner}");
        let key = cid::multihash::Multihash::<128>::wrap(0x00, name.as_bytes())
            .map(|mh| Cid::new_v1(0x55, mh))
            .map_err(|e| format!("funds lease key: {e}"))?;
        // Not renewed: a reservation takes far less than the lifetime, and a holder that
        // died or was stopped midway frees it when the lease expires.
        let store = &self.inner.deps.store;
        while !store.take_lease(&key, &lease.holder, lease.ttl).await? {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Some(key))
    }

    async fn collateral_in_flight(
        &self,
        deal: &ProviderDeal,
    ) -> Result<TokenAmount, ProviderError> {
        let mut need = deal.proposal.proposal.provider_collateral;
        for other in self.inner.deps.store.unfinished_provider_deals().await? {
            // Deals still waiting for their AddBalance count too: adding their collateral
            // twice over-funds the escrow, counting it as free would fail a publish.
            let queued = matches!(
                other.state,
                StorageDealStatus::ProviderFunding
                    | StorageDealStatus::Publish
                    | StorageDealStatus::Publishing
            );
            if queued && other.miner == deal.miner && other.proposal_cid != deal.proposal_cid {
                need = need
                    .checked_add(other.proposal.proposal.provider_collateral)
                    .unwrap_or(need);
            }
        }
        Ok(need)
    }
}

enum Step {
    /// State changed; take the next step now.
    Continue,
    /// Waiting for outside input (data import); the driver exits.
    Wait,
    /// Waiting for the chain or sealer; poll again later.
    Poll,
}

fn error_state(proposal: Cid, message: String) -> ProviderDealState {
    ProviderDealState {
        state: StorageDealStatus::Error.code(),
        deal_id: Default::default(),
        message,
        proposal: None,
        publish_cid: None,
        add_funds_cid: None,
        proposal_cid: Some(proposal),
        fast_retrieval: false,
    }
}

fn sealing_status(state: StorageDealStatus) -> &'static str {
    match state {
        StorageDealStatus::AwaitingPreCommit => "WaitDeals",
        StorageDealStatus::Sealing => "PreCommit2",
        StorageDealStatus::Finalizing | StorageDealStatus::Active => "Proving",
        _ => "",
    }
}

/// Lets tests and operators wait for a deal to reach a state.
pub async fn wait_for_state(
    provider: &Provider,
    r: DealRef,
    want: StorageDealStatus,
    timeout: Duration,
) -> Result<ProviderDeal, String> {
    let mut rx = provider.subscribe();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let deal = provider
            .deal(r)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("deal not found")?;
        if deal.state == want {
            return Ok(deal);
        }
        if deal.state.is_terminal() {
            return Err(format!(
                "deal ended in {} ({}) while waiting for {want}",
                deal.state, deal.message
            ));
        }
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Err(_) => {
                return Err(format!(
                    "timed out in state {} waiting for {want}",
                    deal.state
                ));
            }
            Ok(Err(broadcast::error::RecvError::Closed)) => return Err("provider stopped".into()),
            Ok(_) => {}
        }
    }
}

/// An online deal's transfer is keyed by its deal UUID, so it survives restarts.
fn transfer_id(deal_uuid: DealUuid) -> Result<TransferId, String> {
    TransferId::new(deal_uuid.to_string()).map_err(|e| e.to_string())
}

/// The transfer an online deal asks for: Boost's `Transfer` with `HttpRequest` JSON params,
/// keyed by the deal UUID.
fn transfer_request(
    deal_uuid: DealUuid,
    t: &Transfer,
    proposal: &DealProposal,
) -> Result<TransferRequest, String> {
    if t.kind != TRANSFER_TYPE_HTTP && t.kind != TRANSFER_TYPE_LIBP2P {
        return Err(format!(
            "transfer type {:?} is not supported (use {TRANSFER_TYPE_HTTP:?} or {TRANSFER_TYPE_LIBP2P:?})",
            t.kind
        ));
    }
    if t.params.len() > 64 << 10 {
        return Err(format!("transfer params are {} bytes", t.params.len()));
    }
    let http: HttpRequest = serde_json::from_slice(&t.params)
        .map_err(|e| format!("transfer params are not an HTTP request: {e}"))?;
    if t.size == 0 {
        return Err("transfer size is zero".into());
    }
    let padded = proposal.padded_piece_size().map_err(|e| e.to_string())?;
    if t.size > padded.unpadded().get() {
        return Err(format!(
            "transfer size {} exceeds the piece's {} payload bytes",
            t.size,
            padded.unpadded().get()
        ));
    }
    Ok(TransferRequest {
        id: transfer_id(deal_uuid)?,
        url: http.url,
        headers: http.headers.into_iter().collect(),
        size: t.size,
        padded_size: Some(padded),
    })
}

/// A uuid derived from a deal and a purpose, so that a message sent for that deal has the
/// same idempotency key however often the step runs.
fn deal_scoped_uuid(proposal_cid: &Cid, purpose: &[u8]) -> uuid::Uuid {
    let mut bytes = proposal_cid.to_bytes();
    bytes.extend_from_slice(purpose);
    let h = crate::deal::blake2b_256(&bytes);
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    uuid::Builder::from_custom_bytes(b).into_uuid()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(n: u64) -> PaddedPieceSize {
        PaddedPieceSize::new(n).unwrap()
    }

    #[test]
    fn asks_fit_the_sector() {
        let ask = AskParams::default();
        assert_eq!(ask.check(32 << 30), Ok(()));
        // What a probe sent: 2^62 bytes on a 32 GiB sector.
        let huge = AskParams {
            max_piece_size: size(1 << 62),
            ..ask
        };
        assert!(huge.check(32 << 30).unwrap_err().contains("sector size"));
        let inverted = AskParams {
            min_piece_size: size(1 << 20),
            max_piece_size: size(1 << 10),
            ..ask
        };
        assert!(inverted.check(32 << 30).unwrap_err().contains("above"));
        let expired = AskParams { duration: 0, ..ask };
        assert!(expired.check(32 << 30).is_err());
        let small = ask.within_sector(2048);
        assert_eq!(
            (small.min_piece_size, small.max_piece_size),
            (size(256), size(2048))
        );
        assert_eq!(small.check(2048), Ok(()));
        let tiny = ask.within_sector(128);
        assert_eq!(
            (tiny.min_piece_size, tiny.max_piece_size),
            (size(128), size(128))
        );
    }
}
