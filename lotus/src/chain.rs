//! [`LotusChain`]: the market's [`ChainNode`] over a Lotus or Venus full node.
//!
//! Messages go out one of two ways, chosen in [`Sending`]:
//! - **the node signs** (`MpoolPushMessage` with `MaxFee` and `MsgUuid`): the node holds the
//!   sender's key, assigns the nonce and estimates gas; the uuid makes a repeated push after a
//!   crash return the first message.
//! - **we sign** (`GasEstimateMessageGas`, `MpoolGetNonce`, sign, `MpoolPush`): the key stays
//!   with the market (local keystore or a remote wallet), as droplet's solo mode and any client
//!   behind a public gateway do. Each signed message is written to a journal, keyed by its
//!   uuid, before it is pushed, so a push repeated after a crash sends the same bytes again
//!   instead of a second message with a new nonce.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use commp::PaddedPieceSize;
use market_core::Cid;
use market_core::chain::*;
use market_core::db::{Db, DbTaskError};
use market_core::message::{SignedMessage, UnsignedMessage};
use market_core::types::{
    Address, AddressKind, ChainEpoch, DealId, NetworkVersion, SectorNumber, TokenAmount,
};
use market_core::wallet::{SignPurpose, Wallet};
use tokio::sync::{Mutex, mpsc};

use crate::json::*;
use crate::rpc::{RpcClient, RpcError};

/// Which implementation serves the API, where they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Flavor {
    /// Lotus (and Forest, and the devnet): `WalletSign(addr, bytes)`.
    #[default]
    Lotus,
    /// The venus daemon: `WalletSign(addr, bytes, MsgMeta)`.
    Venus,
}

/// How messages are signed and sent.
#[derive(Clone)]
#[non_exhaustive]
pub enum Sending {
    /// `MpoolPushMessage`: the node signs with its own wallet.
    Node,
    /// sophon-messager (`Message.PushMessageWithId` on `/rpc/v0`): the messager assigns the
    /// nonce, estimates gas and has sophon-gateway sign; the message's uuid is its id there,
    /// so a repeated push is the same message.
    Messager(RpcClient),
    /// Estimate, nonce, sign with `wallet`, `MpoolPush`; signed messages journaled in `journal`.
    Local {
        /// Holds the senders' keys.
        wallet: Arc<dyn Wallet>,
        /// Where signed messages are kept until the chain has them.
        journal: Journal,
    },
}

impl std::fmt::Debug for Sending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Node => f.write_str("Node"),
            Self::Messager(rpc) => write!(f, "Messager({})", rpc.url()),
            Self::Local { .. } => f.write_str("Local"),
        }
    }
}

/// Signed messages by uuid, persisted before they are pushed.
#[derive(Clone, Debug)]
pub struct Journal {
    db: Db,
}

const JOURNAL_MIGRATIONS: &[&str] = &["CREATE TABLE sent (
        uuid TEXT PRIMARY KEY,
        signed BLOB NOT NULL,
        cid TEXT NOT NULL,
        sent_at INTEGER NOT NULL DEFAULT (unixepoch())
    )"];

impl Journal {
    /// Opens (creating) the journal at `path`.
    pub fn open(path: &Path) -> rusqlite::Result<Self> {
        Ok(Self {
            db: Db::named(
                "journal",
                market_core::db::open_migrated(path, JOURNAL_MIGRATIONS)?,
            ),
        })
    }

    /// A journal that does not outlive the process (tests, one-shot CLIs).
    pub fn in_memory() -> rusqlite::Result<Self> {
        Ok(Self {
            db: Db::named(
                "journal",
                market_core::db::open_in_memory_migrated(JOURNAL_MIGRATIONS)?,
            ),
        })
    }

    async fn get(&self, uuid: uuid::Uuid) -> Result<Option<SignedMessage>, ChainError> {
        let found: Option<Vec<u8>> = self
            .db
            .call(move |c| {
                use rusqlite::OptionalExtension;
                c.query_row(
                    "SELECT signed FROM sent WHERE uuid = ?1",
                    [uuid.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(journal_err)
            })
            .await
            .map_err(|e: JournalError| e.0)?;
        found
            .map(|b| {
                decode_signed(&b).map_err(|reason| ChainError::Decode {
                    method: "journal".into(),
                    reason,
                })
            })
            .transpose()
    }

    async fn put(&self, uuid: uuid::Uuid, m: &SignedMessage) -> Result<(), ChainError> {
        let bytes = encode_signed(m);
        let cid = m.cid().to_string();
        self.db
            .call(move |c| {
                c.execute(
                    "INSERT OR IGNORE INTO sent (uuid, signed, cid) VALUES (?1, ?2, ?3)",
                    rusqlite::params![uuid.to_string(), bytes, cid],
                )
                .map(|_| ())
                .map_err(journal_err)
            })
            .await
            .map_err(|e: JournalError| e.0)
    }
}

fn journal_err(e: rusqlite::Error) -> JournalError {
    JournalError(ChainError::Node(format!("message journal: {e}")))
}

/// A journal failure, convertible from the database task's.
struct JournalError(ChainError);

impl From<DbTaskError> for JournalError {
    fn from(e: DbTaskError) -> Self {
        Self(ChainError::Node(market_core::report(&e)))
    }
}

fn encode_signed(m: &SignedMessage) -> Vec<u8> {
    serde_json::to_vec(&SignedMessageJson::from(m)).expect("signed messages encode")
}

fn decode_signed(b: &[u8]) -> Result<SignedMessage, String> {
    let j: SignedMessageJson = serde_json::from_slice(b).map_err(|e| e.to_string())?;
    j.try_into()
}

/// Adapter settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LotusChainConfig {
    /// Which node implementation.
    pub flavor: Flavor,
    /// `StateWaitMsg` lookback (`-1`: unlimited).
    pub lookback: i64,
}

impl Default for LotusChainConfig {
    fn default() -> Self {
        Self {
            flavor: Flavor::Lotus,
            lookback: -1,
        }
    }
}

impl LotusChainConfig {
    /// Sets [`flavor`](Self::flavor).
    pub fn with_flavor(mut self, flavor: Flavor) -> Self {
        self.flavor = flavor;
        self
    }
}

/// A Lotus or Venus full node as the market's chain.
#[derive(Clone)]
pub struct LotusChain {
    rpc: RpcClient,
    sending: Sending,
    config: LotusChainConfig,
    /// One push at a time per sender: `MpoolGetNonce` is not atomic.
    senders: Arc<Mutex<HashMap<Address, Arc<Mutex<()>>>>>,
}

impl std::fmt::Debug for LotusChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LotusChain")
            .field("rpc", &self.rpc)
            .field("sending", &self.sending)
            .finish()
    }
}

fn not_found(e: &RpcError) -> bool {
    e.node_message().is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("not found") || m.contains("actor not found") || m.contains("failed to load")
    })
}

/// Maps a node's "not found" answer about `addr` to [`ChainError::ActorNotFound`].
fn actor_not_found(addr: &Address) -> impl FnOnce(RpcError) -> ChainError + '_ {
    move |e| {
        if not_found(&e) {
            ChainError::ActorNotFound(*addr)
        } else {
            e.into()
        }
    }
}

/// Maps a node's "not found" answer about message `cid` to [`ChainError::MessageNotFound`].
fn message_not_found(cid: &Cid) -> impl FnOnce(RpcError) -> ChainError + '_ {
    move |e| {
        if not_found(&e) {
            ChainError::MessageNotFound(Box::new(*cid))
        } else {
            e.into()
        }
    }
}

/// A message as sent for the node (or messager) to fill in: nonce and gas zero.
fn unfilled(msg: &Message) -> MessageJson {
    MessageJson {
        version: 0,
        to: msg.to,
        from: msg.from,
        nonce: 0,
        value: msg.value,
        gas_limit: 0,
        gas_fee_cap: TokenAmount::ZERO,
        gas_premium: TokenAmount::ZERO,
        method: msg.method,
        params: msg.params.clone(),
        cid: None,
    }
}

fn decode(method: &str, reason: impl std::fmt::Display) -> ChainError {
    ChainError::Decode {
        method: method.to_string(),
        reason: reason.to_string(),
    }
}

const HEAD: TipSetKey = TipSetKey::HEAD;

impl LotusChain {
    /// An adapter over `rpc` (namespace `Filecoin`).
    pub fn new(rpc: RpcClient, sending: Sending, config: LotusChainConfig) -> Self {
        Self {
            rpc,
            sending,
            config,
            senders: Arc::default(),
        }
    }

    /// The JSON-RPC client.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// `Version`: the node's version string and block delay.
    pub async fn version(&self) -> Result<VersionJson, ChainError> {
        Ok(self.rpc.call("Version", ()).await?)
    }

    /// `StateNetworkName` (`mainnet`, `calibrationnet`, a devnet's name).
    pub async fn network_name(&self) -> Result<String, ChainError> {
        Ok(self.rpc.call("StateNetworkName", ()).await?)
    }

    /// `ChainHead` as the node sends it.
    pub async fn chain_head(&self) -> Result<TipSetJson, ChainError> {
        Ok(self.rpc.call("ChainHead", ()).await?)
    }

    /// `StateMinerInfo` as the node sends it (peer id and multiaddrs included).
    pub async fn state_miner_info(&self, miner: &Address) -> Result<MinerInfoJson, ChainError> {
        self.rpc
            .call("StateMinerInfo", (AddressJson(*miner), HEAD))
            .await
            .map_err(actor_not_found(miner))
    }

    /// `ChainGetMessage`.
    pub async fn get_message(&self, cid: &Cid) -> Result<UnsignedMessage, ChainError> {
        let m: MessageJson = self
            .rpc
            .call("ChainGetMessage", (CidJson(*cid),))
            .await
            .map_err(message_not_found(cid))?;
        Ok(m.into())
    }

    /// `StateSearchMsg`: where a message landed, without waiting.
    pub async fn search_message(&self, cid: &Cid) -> Result<Option<MsgLookupJson>, ChainError> {
        Ok(self
            .rpc
            .call(
                "StateSearchMsg",
                (HEAD, CidJson(*cid), self.config.lookback, true),
            )
            .await?)
    }

    /// `ChainNotify` over a WebSocket: head changes as `[{Type, Val}]` batches, the first one
    /// exactly one `current`. The receiver closes when the socket drops; subscribe again.
    pub async fn chain_notify(&self) -> Result<mpsc::Receiver<Vec<HeadChangeJson>>, ChainError> {
        let mut raw = self.rpc.subscribe("ChainNotify", ()).await?;
        let (tx, rx) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Some(v) = raw.recv().await {
                match serde_json::from_value::<Vec<HeadChangeJson>>(v) {
                    Ok(changes) => {
                        if tx.send(changes).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "malformed ChainNotify value; dropping the subscription");
                        break;
                    }
                }
            }
        });
        Ok(rx)
    }

    async fn sender_lock(&self, from: &Address) -> Arc<Mutex<()>> {
        self.senders.lock().await.entry(*from).or_default().clone()
    }

    async fn push_by_node(&self, msg: Message) -> Result<Cid, ChainError> {
        let m = unfilled(&msg);
        let spec = MessageSendSpec {
            max_fee: msg.max_fee,
            msg_uuid: msg.uuid,
            maximize_fee_cap: false,
        };
        let signed: SignedMessageJson = self
            .rpc
            .call("MpoolPushMessage", (m, spec))
            .await
            .map_err(|e| match e {
                RpcError::Rpc { message, .. } => ChainError::MessageRejected(message),
                e => e.into(),
            })?;
        match signed.cid {
            Some(c) => Ok(c),
            None => {
                let s: SignedMessage = signed
                    .try_into()
                    .map_err(|e| decode("MpoolPushMessage", e))?;
                Ok(s.cid())
            }
        }
    }

    async fn push_signed(&self, signed: &SignedMessage) -> Result<Cid, ChainError> {
        let cid = signed.cid();
        let pushed: Result<CidJson, RpcError> = self
            .rpc
            .call("MpoolPush", (SignedMessageJson::from(signed),))
            .await;
        match pushed {
            Ok(c) => Ok(c.0),
            Err(RpcError::Rpc { message, .. }) => {
                // A repeat of a message the node already has, in the pool or on chain, is
                // the outcome a repeat wants.
                let m = message.to_ascii_lowercase();
                if m.contains("already in mpool")
                    || m.contains("already known")
                    || (m.contains("nonce") && self.search_message(&cid).await?.is_some())
                {
                    Ok(cid)
                } else {
                    Err(ChainError::MessageRejected(message))
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn push_local(
        &self,
        wallet: &Arc<dyn Wallet>,
        journal: &Journal,
        msg: Message,
    ) -> Result<Cid, ChainError> {
        if let Some(uuid) = msg.uuid
            && let Some(signed) = journal.get(uuid).await?
        {
            tracing::info!(%uuid, cid = %signed.cid(), "pushing a journaled message again");
            return self.push_signed(&signed).await;
        }
        // Sign with the key address; the chain resolves it to the same actor.
        let from = self.account_key(&msg.from).await?;
        let lock = self.sender_lock(&from).await;
        let _held = lock.lock().await;
        let draft_message = UnsignedMessage {
            version: 0,
            to: msg.to,
            from,
            nonce: 0,
            value: msg.value,
            gas_limit: 0,
            gas_fee_cap: TokenAmount::ZERO,
            gas_premium: TokenAmount::ZERO,
            method: msg.method,
            params: msg.params,
        };
        let mut draft = MessageJson::from(&draft_message);
        draft.cid = None;
        let spec = MessageSendSpec {
            max_fee: msg.max_fee,
            msg_uuid: None,
            maximize_fee_cap: false,
        };
        let estimated: MessageJson = self
            .rpc
            .call("GasEstimateMessageGas", (draft, spec, HEAD))
            .await
            .map_err(|e| match e {
                RpcError::Rpc { message, .. } => {
                    ChainError::MessageRejected(format!("gas estimation failed: {message}"))
                }
                e => e.into(),
            })?;
        // Only the gas terms come from the node: what is signed is what the caller asked for.
        let mut unsigned: UnsignedMessage = UnsignedMessage {
            gas_limit: estimated.gas_limit,
            gas_fee_cap: estimated.gas_fee_cap,
            gas_premium: estimated.gas_premium,
            ..draft_message
        };
        cap_fee(&mut unsigned, msg.max_fee);
        unsigned.nonce = self.rpc.call("MpoolGetNonce", (AddressJson(from),)).await?;
        let cbor = unsigned.to_cbor();
        let signature = wallet
            .sign_for(
                &from,
                &unsigned.cid().to_bytes(),
                SignPurpose::Message { cbor: &cbor },
            )
            .await
            .map_err(|e| ChainError::MessageRejected(format!("signing: {e}")))?;
        let signed = SignedMessage {
            message: unsigned,
            signature,
        };
        if let Some(uuid) = msg.uuid {
            journal.put(uuid, &signed).await?;
        }
        self.push_signed(&signed).await
    }
}

/// sophon-messager's view of a message (the fields a sender reads).
#[derive(Debug, serde::Deserialize)]
struct MessagerMessage {
    #[serde(rename = "SignedCid", default, with = "crate::json::opt_cid")]
    signed_cid: Option<Cid>,
    /// 0 unknown, 1 queued, 2 signed and in the mpool, 3 on chain, 4 failed, 5 nonce conflict.
    #[serde(rename = "State", default)]
    state: u8,
    #[serde(rename = "ErrorMsg", default)]
    error: String,
}

/// How long a messager may take to sign a queued message before the push is reported as
/// not (yet) sent; the same uuid is pushed again on the next try.
const MESSAGER_SIGN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

async fn push_by_messager(messager: &RpcClient, msg: Message) -> Result<Cid, ChainError> {
    let id = msg.uuid.unwrap_or_else(uuid::Uuid::new_v4).to_string();
    let m = unfilled(&msg);
    // sophon-messager's SendSpec is camelCase.
    let spec = serde_json::json!({"maxFee": msg.max_fee.atto().to_string()});
    match messager
        .call::<_, String>("PushMessageWithId", (&id, m, spec))
        .await
    {
        Ok(_) => {}
        // Pushed before (a repeat after a crash): follow the existing message.
        Err(RpcError::Rpc { message, .. }) if message.to_ascii_lowercase().contains("exist") => {}
        Err(RpcError::Rpc { message, .. }) => return Err(ChainError::MessageRejected(message)),
        Err(e) => return Err(e.into()),
    }
    let deadline = tokio::time::Instant::now() + MESSAGER_SIGN_TIMEOUT;
    loop {
        let m: MessagerMessage = messager.call("GetMessageByUid", (&id,)).await?;
        match (m.state, m.signed_cid) {
            (4, _) => {
                return Err(ChainError::MessageRejected(format!(
                    "messager failed message {id}: {}",
                    m.error
                )));
            }
            (2..=3 | 5, Some(cid)) => return Ok(cid),
            _ if tokio::time::Instant::now() > deadline => {
                return Err(ChainError::Node(format!(
                    "messager has not signed message {id} yet"
                )));
            }
            _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}

/// Keeps a message's fee within `max_fee` as Lotus's `capGasFee` does: the fee cap becomes
/// `max_fee / gas_limit` when the estimate would cost more, and the premium never exceeds it.
/// A zero `max_fee` means "no cap".
pub fn cap_fee(m: &mut UnsignedMessage, max_fee: TokenAmount) {
    if max_fee.is_zero() || m.gas_limit <= 0 || m.max_fee() <= max_fee {
        return;
    }
    m.gas_fee_cap = TokenAmount::from_atto(max_fee.atto() / m.gas_limit as u128);
    m.gas_premium = m.gas_premium.min(m.gas_fee_cap);
}

#[async_trait::async_trait]
impl ChainNode for LotusChain {
    async fn head(&self) -> Result<ChainEpoch, ChainError> {
        Ok(ChainEpoch::new(self.chain_head().await?.height))
    }

    async fn miner_info(&self, miner: &Address) -> Result<MinerInfo, ChainError> {
        let info = self.state_miner_info(miner).await?;
        // Lotus reports the worker as an id address; signatures are checked against its key.
        let worker = self.account_key(&info.worker).await?;
        Ok(MinerInfo {
            owner: info.owner,
            worker,
            control_addresses: info.control_addresses,
            sector_size: info.sector_size,
        })
    }

    async fn market_balance(&self, addr: &Address) -> Result<MarketBalance, ChainError> {
        match self
            .rpc
            .call::<_, MarketBalanceJson>("StateMarketBalance", (AddressJson(*addr), HEAD))
            .await
        {
            Ok(b) => Ok(b.into()),
            Err(e) if not_found(&e) => Ok(MarketBalance::default()),
            Err(e) => Err(e.into()),
        }
    }

    async fn collateral_bounds(
        &self,
        size: PaddedPieceSize,
        verified: bool,
    ) -> Result<CollateralBounds, ChainError> {
        let b: CollateralBoundsJson = self
            .rpc
            .call(
                "StateDealProviderCollateralBounds",
                (size.get(), verified, HEAD),
            )
            .await?;
        Ok(b.into())
    }

    async fn datacap(&self, client: &Address) -> Result<Option<u128>, ChainError> {
        #[derive(serde::Deserialize)]
        struct W(#[serde(with = "crate::json::opt_amount")] Option<TokenAmount>);
        match self
            .rpc
            .call::<_, W>("StateVerifiedClientStatus", (AddressJson(*client), HEAD))
            .await
        {
            Ok(W(v)) => Ok(v.map(TokenAmount::atto)),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn account_key(&self, addr: &Address) -> Result<Address, ChainError> {
        if matches!(addr.kind(), AddressKind::Secp256k1 | AddressKind::Bls) {
            return Ok(*addr);
        }
        let a: AddressJson = self
            .rpc
            .call("StateAccountKey", (AddressJson(*addr), HEAD))
            .await
            .map_err(actor_not_found(addr))?;
        Ok(a.0)
    }

    async fn lookup_id(&self, addr: &Address) -> Result<Address, ChainError> {
        if addr.kind() == AddressKind::Id {
            return Ok(*addr);
        }
        let a: AddressJson = self
            .rpc
            .call("StateLookupID", (AddressJson(*addr), HEAD))
            .await
            .map_err(actor_not_found(addr))?;
        Ok(a.0)
    }

    async fn push_message(&self, msg: Message) -> Result<Cid, ChainError> {
        match &self.sending {
            Sending::Node => self.push_by_node(msg).await,
            Sending::Messager(messager) => push_by_messager(messager, msg).await,
            Sending::Local { wallet, journal } => self.push_local(wallet, journal, msg).await,
        }
    }

    async fn call(&self, msg: &Message) -> Result<Receipt, ChainError> {
        let m = unfilled(msg);
        let r: InvocResultJson = self.rpc.call("StateCall", (m, HEAD)).await?;
        let receipt = r
            .receipt
            .ok_or_else(|| ChainError::MessageRejected(format!("StateCall: {}", r.error)))?;
        Ok(Receipt {
            exit_code: receipt.exit(),
            return_data: receipt.return_data,
            fee: TokenAmount::ZERO,
        })
    }

    async fn wait_message(&self, cid: &Cid, confidence: u64) -> Result<MessageLookup, ChainError> {
        let found: MsgLookupJson = self
            .rpc
            .call_long(
                "StateWaitMsg",
                (CidJson(*cid), confidence, self.config.lookback, true),
            )
            .await
            .map_err(message_not_found(cid))?;
        Ok(MessageLookup {
            receipt: Receipt {
                exit_code: found.receipt.exit(),
                return_data: found.receipt.return_data,
                fee: TokenAmount::ZERO,
            },
            epoch: ChainEpoch::new(found.height),
        })
    }

    async fn market_deal(&self, id: DealId) -> Result<Option<MarketDeal>, ChainError> {
        match self
            .rpc
            .call::<_, MarketDealJson>("StateMarketStorageDeal", (id.0, HEAD))
            .await
        {
            Ok(d) => Ok(Some(d.into())),
            Err(e) if not_found(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn sector(
        &self,
        miner: &Address,
        sector: SectorNumber,
    ) -> Result<Option<SectorOnChain>, ChainError> {
        let pre: Option<SectorPreCommitOnChainJson> = self
            .rpc
            .call(
                "StateSectorPreCommitInfo",
                (AddressJson(*miner), sector.0, HEAD),
            )
            .await?;
        if let Some(pre) = pre {
            return Ok(Some(SectorOnChain {
                stage: SectorStage::PreCommitted,
                deal_ids: pre.info.deal_ids.into_iter().map(DealId).collect(),
                unsealed_cid: pre.info.unsealed_cid,
                expiration: ChainEpoch::new(pre.info.expiration),
            }));
        }
        // Once proven, the pre-commit is gone and the sector is on chain.
        let info: Option<SectorOnChainJson> = self
            .rpc
            .call("StateSectorGetInfo", (AddressJson(*miner), sector.0, HEAD))
            .await?;
        Ok(info.map(|i| SectorOnChain {
            stage: SectorStage::Proven,
            deal_ids: i.deal_ids.into_iter().map(DealId).collect(),
            unsealed_cid: None,
            expiration: ChainEpoch::new(i.expiration),
        }))
    }

    async fn wallet_balance(&self, addr: &Address) -> Result<TokenAmount, ChainError> {
        match self
            .rpc
            .call::<_, AmountJson>("WalletBalance", (AddressJson(*addr),))
            .await
        {
            Ok(a) => Ok(a.0),
            Err(e) if not_found(&e) => Ok(TokenAmount::ZERO),
            Err(e) => Err(e.into()),
        }
    }

    async fn network_version(&self) -> Result<NetworkVersion, ChainError> {
        Ok(NetworkVersion(
            self.rpc.call("StateNetworkVersion", (HEAD,)).await?,
        ))
    }
}

/// The network a node is on, from its `StateNetworkName`, for the address prefix and the
/// sanity check that a mainnet config is not pointed at calibnet.
pub fn network_kind(name: &str) -> market_core::types::Network {
    if name == "mainnet" {
        market_core::types::Network::Mainnet
    } else {
        market_core::types::Network::Testnet
    }
}

/// Parses an address the node printed.
pub fn parse_address(s: &str) -> Result<Address, ChainError> {
    Address::from_str(s).map_err(|e| decode("address", e))
}
