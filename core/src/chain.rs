//! What the market needs from a Filecoin node, as one small trait.
//!
//! The methods map one to one onto Lotus/Venus JSON-RPC calls (`ChainHead`,
//! `StateMinerInfo`, `StateMarketBalance`, `StateDealProviderCollateralBounds`,
//! `StateVerifiedClientStatus`, `StateAccountKey`, `StateLookupID`, `MpoolPushMessage`,
//! `StateWaitMsg`, `StateMarketStorageDeal`, `StateSectorPreCommitInfo`, `WalletBalance`,
//! `StateCall`, `StateNetworkVersion`), so a JSON-RPC adapter is a thin translation (the
//! `lotus-api` crate). The `devnet` crate's `DevChain`
//! implements it in process for tests and demos.

use commp::PaddedPieceSize;

use crate::cid::Cid;
use crate::deal::{DealProposal, DealState};
use crate::types::{Address, ChainEpoch, DealId, NetworkVersion, SectorNumber, TokenAmount};

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
    /// The node could not be reached, timed out or failed in transport: worth trying again.
    #[error("node unavailable: {0}")]
    Node(String),
    /// The node answered the call with an error (Lotus's JSON-RPC code and message).
    #[error("{method}: {message} (code {code})")]
    Rpc {
        /// The method called.
        method: String,
        /// The JSON-RPC error code (1 for an ordinary Lotus error).
        code: i64,
        /// The node's message.
        message: String,
    },
    /// The node's answer could not be decoded.
    #[error("{method}: malformed answer: {reason}")]
    Decode {
        /// The method called.
        method: String,
        /// What was wrong.
        reason: String,
    },
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
    /// Idempotency key (Lotus's `MsgUuid`): pushing a message with a uuid already pushed
    /// returns the first message's CID instead of sending a second one, so a sender that
    /// records the uuid before pushing can push again after a crash without sending twice.
    pub uuid: Option<uuid::Uuid>,
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

    /// `SYS_SENDER_STATE_INVALID`: the sender cannot pay for the message.
    pub const SENDER_STATE_INVALID: Self = Self(2);
    /// `USR_NOT_FOUND`.
    pub const NOT_FOUND: Self = Self(17);
    /// `USR_ILLEGAL_STATE`.
    pub const ILLEGAL_STATE: Self = Self(20);

    /// Whether this is success.
    pub fn is_ok(self) -> bool {
        self == Self::OK
    }

    /// The exit code's name in the FVM's table.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "Ok",
            1 => "SysErrSenderInvalid",
            2 => "SysErrSenderStateInvalid",
            4 => "SysErrIllegalInstruction",
            5 => "SysErrInvalidReceiver",
            6 => "SysErrInsufficientFunds",
            7 => "SysErrOutOfGas",
            16 => "ErrIllegalArgument",
            17 => "ErrNotFound",
            18 => "ErrForbidden",
            19 => "ErrInsufficientFunds",
            20 => "ErrIllegalState",
            21 => "ErrSerialization",
            22 => "ErrUnhandledMessage",
            23 => "ErrUnspecified",
            24 => "ErrAssertionFailed",
            25 => "ErrReadOnly",
            _ => "unknown exit code",
        }
    }
}

impl std::fmt::Display for ExitCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.0, self.name())
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
    /// The sector that activated it (the market actor records it from nv22; `None` before
    /// activation or on older networks). A snap deal's sector is known only from here.
    #[serde(default)]
    pub sector: Option<SectorNumber>,
}

/// How far a sector has come on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum SectorStage {
    /// Pre-committed, waiting for its prove-commit.
    PreCommitted,
    /// Proven: the sector is live (it may hold activated deals).
    Proven,
}

/// A sector as the miner actor holds it (`StateSectorPreCommitInfo`, `StateSectorGetInfo`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SectorOnChain {
    /// Pre-committed or proven.
    pub stage: SectorStage,
    /// The builtin-market deals named at pre-commit (empty for sectors whose pieces are only
    /// named at prove-commit, as with direct data onboarding).
    pub deal_ids: Vec<DealId>,
    /// The unsealed sector CID (commD) declared at pre-commit, when known.
    pub unsealed_cid: Option<Cid>,
    /// The epoch the sector expires.
    pub expiration: ChainEpoch,
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
    /// A miner's sector: pre-committed, proven, or `None` when the actor has neither.
    async fn sector(
        &self,
        miner: &Address,
        sector: SectorNumber,
    ) -> Result<Option<SectorOnChain>, ChainError>;
    /// An address's wallet balance.
    async fn wallet_balance(&self, addr: &Address) -> Result<TokenAmount, ChainError>;
    /// The network version at the head (`StateNetworkVersion`): which rules deals follow.
    async fn network_version(&self) -> Result<NetworkVersion, ChainError>;
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
