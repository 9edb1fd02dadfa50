//! What the market needs from a Filecoin node, as one small trait.
//!
//! The methods map one to one onto Lotus/Venus JSON-RPC calls (`ChainHead`,
//! `StateMinerInfo`, `StateMarketBalance`, `StateDealProviderCollateralBounds`,
//! `StateVerifiedClientStatus`, `StateAccountKey`, `StateLookupID`, `MpoolPushMessage`,
//! `StateWaitMsg`, `StateMarketStorageDeal`, `StateSectorPreCommitInfo`, `WalletBalance`,
//! `StateCall`), so a JSON-RPC adapter is a thin translation. The `devnet` crate's `DevChain`
//! implements it in process for tests and demos.

use commp::PaddedPieceSize;

use crate::cid::Cid;
use crate::deal::{DealProposal, DealState};
use crate::types::{Address, ChainEpoch, DealId, SectorNumber, TokenAmount};

/// Errors from the chain node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The actor or address is unknown to the chain.
    #[error("actor not found: {0}")]
    ActorNotFound(Address),
    /// The message was refused before inclusion (bad nonce, balance or fee cap).
    #[error("message rejected: {0}")]
    MessageRejected(String),
    /// No message with this CID is known.
    #[error("message {0} not found")]
    MessageNotFound(Box<Cid>),
    /// The node could not be reached or answered with an error.
    #[error("node error: {0}")]
    Node(String),
}

/// A miner actor's owner, worker and control addresses.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MinerInfo {
    /// The owner (receives rewards).
    pub owner: Address,
    /// The worker key address (signs asks and responses). A key (`f1`/`f3`) address.
    pub worker: Address,
    /// Control addresses allowed to publish deals.
    pub control_addresses: Vec<Address>,
    /// Sector size in bytes.
    pub sector_size: u64,
}

/// A market escrow account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct MarketBalance {
    /// Total escrow.
    pub escrow: TokenAmount,
    /// The part locked by published deals.
    pub locked: TokenAmount,
}

impl MarketBalance {
    /// Escrow not locked by deals.
    pub fn available(&self) -> TokenAmount {
        self.escrow.saturating_sub(self.locked)
    }
}

/// The chain's bounds on a deal's provider collateral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CollateralBounds {
    /// The minimum the market actor accepts.
    pub min: TokenAmount,
    /// The maximum the market actor accepts (the total supply on-chain).
    pub max: TokenAmount,
}

/// A message for the node to sign with its wallet and push (`MpoolPushMessage`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    /// Sender; the node must hold its key.
    pub from: Address,
    /// Recipient actor.
    pub to: Address,
    /// Method number (0 = plain send).
    pub method: u64,
    /// CBOR parameters.
    pub params: Vec<u8>,
    /// Value sent.
    pub value: TokenAmount,
    /// Upper bound on the fee paid for this message.
    pub max_fee: TokenAmount,
}

/// An exit code; 0 is success.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExitCode(pub u32);

impl ExitCode {
    /// Success.
    pub const OK: Self = Self(0);
    /// `USR_ILLEGAL_ARGUMENT`: invalid parameters (for example, every deal was invalid).
    pub const ILLEGAL_ARGUMENT: Self = Self(16);
    /// `USR_FORBIDDEN`: the caller may not call this method.
    pub const FORBIDDEN: Self = Self(18);
    /// `USR_INSUFFICIENT_FUNDS`.
    pub const INSUFFICIENT_FUNDS: Self = Self(19);

    /// Whether this is success.
    pub fn is_ok(self) -> bool {
        self == Self::OK
    }
}

/// The outcome of an executed message.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    /// Exit code.
    pub exit_code: ExitCode,
    /// CBOR return value.
    pub return_data: Vec<u8>,
    /// Fee charged.
    pub fee: TokenAmount,
}

/// Where and how a message landed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageLookup {
    /// The receipt.
    pub receipt: Receipt,
    /// The epoch of the tipset that included it.
    pub epoch: ChainEpoch,
}

/// A published deal as the market actor holds it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MarketDeal {
    /// The proposal.
    pub proposal: DealProposal,
    /// Its activation and payment state.
    pub state: DealState,
}

/// The node API a storage market needs.
#[async_trait::async_trait]
pub trait ChainNode: Send + Sync {
    /// The current head epoch.
    async fn head(&self) -> Result<ChainEpoch, ChainError>;
    /// A miner's owner, worker and control addresses.
    async fn miner_info(&self, miner: &Address) -> Result<MinerInfo, ChainError>;
    /// An address's market escrow (zero if it has none).
    async fn market_balance(&self, addr: &Address) -> Result<MarketBalance, ChainError>;
    /// Provider collateral bounds for a piece.
    async fn collateral_bounds(
        &self,
        size: PaddedPieceSize,
        verified: bool,
    ) -> Result<CollateralBounds, ChainError>;
    /// A verified client's remaining DataCap in bytes, `None` if not a verified client.
    async fn datacap(&self, client: &Address) -> Result<Option<u128>, ChainError>;
    /// The key address (`f1`/`f3`) behind an account, for signature checks.
    async fn account_key(&self, addr: &Address) -> Result<Address, ChainError>;
    /// The id address (`f0`) of an actor.
    async fn lookup_id(&self, addr: &Address) -> Result<Address, ChainError>;
    /// Signs with the node wallet and pushes to the message pool; returns the message CID.
    async fn push_message(&self, msg: Message) -> Result<Cid, ChainError>;
    /// Runs a message against the current state without sending it (`StateCall`).
    async fn call(&self, msg: &Message) -> Result<Receipt, ChainError>;
    /// Waits until the message is included and `confidence` epochs deep.
    async fn wait_message(&self, cid: &Cid, confidence: u64) -> Result<MessageLookup, ChainError>;
    /// A published deal, `None` once it has expired, timed out or been removed.
    async fn market_deal(&self, id: DealId) -> Result<Option<MarketDeal>, ChainError>;
    /// Whether a sector has been pre-committed (or already proven).
    async fn sector_precommitted(
        &self,
        miner: &Address,
        sector: SectorNumber,
    ) -> Result<bool, ChainError>;
    /// An address's wallet balance.
    async fn wallet_balance(&self, addr: &Address) -> Result<TokenAmount, ChainError>;
}

/// Network rules for deal terms (market actor policy), passed in rather than hard-coded so
/// that test networks and the dev chain can shorten them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealPolicy {
    /// Shortest allowed deal, in epochs.
    pub min_duration: i64,
    /// Longest allowed deal, in epochs.
    pub max_duration: i64,
    /// The end epoch may be at most this far beyond the current epoch.
    pub max_end_offset: i64,
}

impl DealPolicy {
    /// Market actor v12+ (Boost, droplet, Curio): 180 to 1278 days.
    pub const MAINNET: Self = Self {
        min_duration: 180 * ChainEpoch::PER_DAY,
        max_duration: 1278 * ChainEpoch::PER_DAY,
        max_end_offset: 1278 * ChainEpoch::PER_DAY,
    };
}

impl Default for DealPolicy {
    fn default() -> Self {
        Self::MAINNET
    }
}
