//! An in-process development chain that enforces the market actor's rules.
//!
//! It keeps wallets, market escrow with locked funds, miners, verified clients and deals, and
//! runs `AddBalance`, `WithdrawBalance` and `PublishStorageDeals` with the actor's per-deal
//! validation and the valid-deals bitfield (builtin-actors `actors/market/src/lib.rs`).
//! Sector pre-commit and prove-commit activate deals; each epoch settles payments from client
//! to provider escrow; deals expire at their end epoch, and deals not activated by their start
//! epoch time out with the provider collateral burnt.
//!
//! Messages wait in a pool and execute when the next epoch is mined, so a paused clock holds
//! them, which is how tests stop the market at "publishing". The clock runs at any speed
//! ([`DevChain::start_clock`]) or by hand ([`DevChain::advance`]).
//!
//! Messages from outside arrive signed ([`DevChain::push_signed`]): the signature must verify
//! against the sender's key and the nonce must be the sender's next one, as on the real chain.
//! The in-process [`ChainNode`] implementation is the one shortcut: it trusts its caller like
//! `MpoolPushMessage` trusts the node's own wallet, and only in-process tests use it.
//!
//! The state (accounts, nonces, escrow, miners, deals, sectors, the pool, receipts, the epoch)
//! is written to SQLite after every change when the chain is [opened](DevChain::open) on a
//! file, so a restarted devnet continues where it stopped: no epoch reset, deal ids continue.
//!
//! The network version follows a schedule ([`DevChainConfig::upgrades`]); from nv29
//! (Solstice, FIP-0118) verified deals are invalid and DataCap is frozen.
//!
//! Non-goals: gas accounting (a flat fee per message), reorgs, power and proofs.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use commp::PaddedPieceSize;
use tokio::sync::watch;

use market_core::Cid;
use market_core::cbor;
use market_core::chain::*;
use market_core::deal::{
    self, ClientDealProposal, DealState, PublishStorageDealsParams, PublishStorageDealsReturn,
};
use market_core::message::{SignedMessage, UnsignedMessage};
use market_core::types::{
    Address, AddressKind, ChainEpoch, DealId, NetworkVersion, SectorNumber, TokenAmount,
};
use market_core::wallet;

mod sectors;

pub use sectors::SectorRecord;

/// Dev chain parameters.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct DevChainConfig {
    /// Deal term rules.
    pub policy: DealPolicy,
    /// Flat fee charged per message.
    pub message_fee: TokenAmount,
    /// Circulating supply used in the collateral formula.
    pub circulating_supply: TokenAmount,
    /// Network raw power in bytes, used in the collateral formula.
    pub network_raw_power: u128,
    /// First epoch.
    pub genesis_epoch: ChainEpoch,
    /// The network version at genesis.
    pub network_version: NetworkVersion,
    /// Upgrades: from each epoch on, the chain runs that version.
    pub upgrades: Vec<(ChainEpoch, NetworkVersion)>,
    /// The network name (`StateNetworkName`).
    pub network_name: String,
}

impl Default for DevChainConfig {
    fn default() -> Self {
        Self {
            policy: DealPolicy::MAINNET,
            message_fee: TokenAmount::from_nano(100_000),
            circulating_supply: TokenAmount::from_whole(500_000_000),
            network_raw_power: 20 << 60,
            genesis_epoch: ChainEpoch::new(1000),
            network_version: NetworkVersion(28),
            upgrades: Vec::new(),
            network_name: "devnet".into(),
        }
    }
}

impl DevChainConfig {
    /// Sets [`policy`](Self::policy).
    pub fn with_policy(mut self, policy: DealPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets [`message_fee`](Self::message_fee).
    pub fn with_message_fee(mut self, message_fee: TokenAmount) -> Self {
        self.message_fee = message_fee;
        self
    }

    /// Sets [`circulating_supply`](Self::circulating_supply).
    pub fn with_circulating_supply(mut self, circulating_supply: TokenAmount) -> Self {
        self.circulating_supply = circulating_supply;
        self
    }

    /// Sets [`network_raw_power`](Self::network_raw_power).
    pub fn with_network_raw_power(mut self, network_raw_power: u128) -> Self {
        self.network_raw_power = network_raw_power;
        self
    }

    /// Sets [`genesis_epoch`](Self::genesis_epoch).
    pub fn with_genesis_epoch(mut self, genesis_epoch: ChainEpoch) -> Self {
        self.genesis_epoch = genesis_epoch;
        self
    }

    /// Sets [`network_version`](Self::network_version).
    pub fn with_network_version(mut self, version: NetworkVersion) -> Self {
        self.network_version = version;
        self
    }

    /// Adds an upgrade to `version` at `epoch`.
    pub fn with_upgrade(mut self, epoch: ChainEpoch, version: NetworkVersion) -> Self {
        self.upgrades.push((epoch, version));
        self.upgrades.sort();
        self
    }

    /// The network version at `epoch`.
    pub fn version_at(&self, epoch: ChainEpoch) -> NetworkVersion {
        self.upgrades
            .iter()
            .filter(|(at, _)| *at <= epoch)
            .map(|(_, v)| *v)
            .next_back()
            .unwrap_or(self.network_version)
    }
}

/// Flat gas terms: every message is estimated at this limit.
pub const GAS_LIMIT: i64 = 1_000_000;

/// Maps with non-text keys, stored as sequences of pairs (DAG-CBOR map keys must be text).
mod pairs {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub(crate) fn serialize<'a, S, K, V, M>(m: &'a M, s: S) -> Result<S::Ok, S::Error>
    where
        S: Serializer,
        K: Serialize + 'a,
        V: Serialize + 'a,
        &'a M: IntoIterator<Item = (&'a K, &'a V)>,
    {
        s.collect_seq(m)
    }

    pub(crate) fn deserialize<'de, D, K, V, M>(d: D) -> Result<M, D::Error>
    where
        D: Deserializer<'de>,
        K: Deserialize<'de>,
        V: Deserialize<'de>,
        M: FromIterator<(K, V)>,
    {
        Ok(Vec::<(K, V)>::deserialize(d)?.into_iter().collect())
    }
}

/// Sectors the dev sealer is working on, kept in the chain state so that they survive a
/// restart along with the deals they hold.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Sealing {
    next_sector: u64,
    #[serde(with = "pairs")]
    placed: HashMap<DealId, (Address, SectorNumber)>,
    open: Vec<(Address, SectorNumber, Vec<DealId>)>,
    precommitted: Vec<(Address, SectorNumber, Vec<DealId>)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ActiveDeal {
    proposal: deal::DealProposal,
    state: DealState,
    /// Resolved id addresses of client and provider.
    client: u64,
    provider: u64,
    /// The sector that activated it.
    #[serde(default)]
    sector: Option<SectorNumber>,
}

#[derive(Default, Clone, Serialize, Deserialize)]
struct State {
    epoch: i64,
    next_id: u64,
    /// Key address → actor id.
    #[serde(with = "pairs")]
    ids: HashMap<Address, u64>,
    /// Actor id → key address (accounts only).
    #[serde(with = "pairs")]
    keys: HashMap<u64, Address>,
    #[serde(with = "pairs")]
    balances: HashMap<u64, TokenAmount>,
    #[serde(with = "pairs")]
    escrow: HashMap<u64, MarketBalance>,
    #[serde(with = "pairs")]
    miners: HashMap<u64, MinerInfo>,
    #[serde(with = "pairs")]
    datacap: HashMap<u64, u128>,
    #[serde(with = "pairs")]
    deals: BTreeMap<u64, ActiveDeal>,
    next_deal_id: u64,
    pending_proposals: HashSet<Cid>,
    pool: Vec<(Cid, Message)>,
    #[serde(with = "pairs")]
    receipts: HashMap<Cid, MessageLookup>,
    /// Every message pushed, by CID (`ChainGetMessage`).
    #[serde(with = "pairs")]
    messages: HashMap<Cid, UnsignedMessage>,
    /// Next nonce per actor.
    #[serde(with = "pairs")]
    nonces: HashMap<u64, u64>,
    /// `MsgUuid` → the message pushed for it.
    #[serde(with = "pairs")]
    by_uuid: HashMap<uuid::Uuid, Cid>,
    /// Sectors by (miner id, sector number): pre-committed or proven.
    #[serde(default, with = "pairs")]
    sectors: BTreeMap<(u64, u64), SectorRecord>,
    burnt: TokenAmount,
    /// Deals that ended, with the reason, for tests and operators to inspect.
    #[serde(with = "pairs")]
    ended: HashMap<u64, DealEnd>,
    /// Faucet payouts per actor.
    #[serde(with = "pairs")]
    faucet: HashMap<u64, TokenAmount>,
    sealing: Sealing,
    /// Peer id and multiaddrs (binary) set by `ChangePeerID` / `ChangeMultiaddrs`.
    #[serde(default, with = "pairs")]
    peer_info: HashMap<u64, MinerPeerInfo>,
}

/// What a miner says about its market node on chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinerPeerInfo {
    /// The libp2p peer id's bytes, if set.
    pub peer_id: Option<Vec<u8>>,
    /// Binary multiaddrs.
    pub multiaddrs: Vec<Vec<u8>>,
}

/// How a deal left the market actor's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum DealEnd {
    /// Reached its end epoch after activation.
    Expired,
    /// Not activated by its start epoch; provider collateral burnt.
    TimedOut,
    /// Terminated early; provider collateral burnt.
    Slashed,
}

/// Why the dev chain's state could not be loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevChainError {
    /// The database failed.
    #[error("dev chain database")]
    Db(#[from] rusqlite::Error),
    /// The saved state does not decode.
    #[error("dev chain state is corrupt: {0}")]
    Corrupt(String),
}

const MIGRATIONS: &[&str] = &[
    "CREATE TABLE state (id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL, snapshot BLOB NOT NULL)",
];

/// The dev chain. Cheap to clone; all clones share state.
#[derive(Clone)]
pub struct DevChain {
    config: Arc<DevChainConfig>,
    state: Arc<Mutex<State>>,
    head: watch::Sender<ChainEpoch>,
    clock: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
    db: Option<Arc<Mutex<rusqlite::Connection>>>,
}

/// The guard over the state: changes made through it are saved when it drops.
struct Guard<'a> {
    state: std::sync::MutexGuard<'a, State>,
    chain: &'a DevChain,
}

impl std::ops::Deref for Guard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.state
    }
}

impl std::ops::DerefMut for Guard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.state
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.chain.save(&self.state) {
            // The state in memory stays right; the next change tries again.
            tracing::error!(error = %market_core::report(&e), "dev chain: saving state failed");
        }
    }
}

impl DevChain {
    /// A new chain at `config.genesis_epoch`, in memory only.
    pub fn new(config: DevChainConfig) -> Self {
        let state = State {
            epoch: config.genesis_epoch.get(),
            next_id: 1000,
            next_deal_id: 1,
            sealing: Sealing {
                next_sector: 1,
                ..Sealing::default()
            },
            ..State::default()
        };
        let (head, _) = watch::channel(config.genesis_epoch);
        Self {
            config: Arc::new(config),
            state: Arc::new(Mutex::new(state)),
            head,
            clock: Arc::new(Mutex::new(None)),
            db: None,
        }
    }

    /// The chain saved at `path` (SQLite), or a new one saved there. Every change is on disk
    /// before the call that made it returns.
    pub fn open(path: &Path, config: DevChainConfig) -> Result<Self, DevChainError> {
        use rusqlite::OptionalExtension;
        let conn = market_core::db::open_migrated(path, MIGRATIONS)?;
        let saved: Option<Vec<u8>> = conn
            .query_row("SELECT snapshot FROM state WHERE id = 1", [], |r| r.get(0))
            .optional()?;
        let mut chain = Self::new(config);
        if let Some(bytes) = saved {
            let state: State = serde_ipld_dagcbor::from_slice(&bytes)
                .map_err(|e| DevChainError::Corrupt(e.to_string()))?;
            chain.head.send_replace(ChainEpoch::new(state.epoch));
            *chain.state.lock().unwrap_or_else(|p| p.into_inner()) = state;
        }
        chain.db = Some(Arc::new(Mutex::new(conn)));
        chain.save(&chain.state.lock().unwrap_or_else(|p| p.into_inner()))?;
        Ok(chain)
    }

    fn save(&self, state: &State) -> Result<(), DevChainError> {
        let Some(db) = &self.db else { return Ok(()) };
        let bytes =
            serde_ipld_dagcbor::to_vec(state).map_err(|e| DevChainError::Corrupt(e.to_string()))?;
        db.lock().unwrap_or_else(|p| p.into_inner()).execute(
            "INSERT INTO state (id, epoch, snapshot) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET epoch = excluded.epoch, snapshot = excluded.snapshot",
            rusqlite::params![state.epoch, bytes],
        )?;
        Ok(())
    }

    /// Read access (nothing is saved).
    /// What `miner` set with `ChangePeerID` / `ChangeMultiaddrs` (empty if nothing).
    pub fn miner_peer_info(&self, miner: &Address) -> MinerPeerInfo {
        let s = self.lock();
        s.resolve(miner)
            .and_then(|id| s.peer_info.get(&id).cloned())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write access: the state is saved when the guard drops.
    fn write(&self) -> Guard<'_> {
        Guard {
            state: self.lock(),
            chain: self,
        }
    }

    /// The chain's parameters.
    pub fn config(&self) -> &DevChainConfig {
        &self.config
    }

    /// The network version at the head.
    pub fn version(&self) -> NetworkVersion {
        self.config.version_at(self.epoch())
    }

    /// A receiver of head changes.
    pub fn subscribe(&self) -> watch::Receiver<ChainEpoch> {
        self.head.subscribe()
    }

    /// The tipset key of `epoch`: one made-up block CID per epoch.
    pub fn tipset_key(epoch: ChainEpoch) -> Cid {
        deal::chain_cid(format!("devnet tipset {}", epoch.get()).as_bytes())
    }

    /// Pays out of the faucet: at most `cap` per actor over the chain's life.
    pub fn faucet(
        &self,
        addr: &Address,
        amount: TokenAmount,
        cap: TokenAmount,
    ) -> Result<Address, ChainError> {
        if matches!(addr.kind(), AddressKind::Id | AddressKind::Actor) {
            return Err(ChainError::MessageRejected(
                "the faucet pays key (f1/f3) addresses only".into(),
            ));
        }
        let mut s = self.write();
        let id = s.ensure_account(*addr);
        let paid = s.faucet.get(&id).copied().unwrap_or_default();
        let total = paid
            .checked_add(amount)
            .filter(|t| *t <= cap)
            .ok_or_else(|| {
                ChainError::MessageRejected(format!(
                    "faucet cap: {addr} already received {paid} of at most {cap}"
                ))
            })?;
        s.faucet.insert(id, total);
        let b = s.balances.entry(id).or_default();
        *b = b.checked_add(amount).unwrap_or(*b);
        Ok(Address::new_id(id))
    }

    /// The sender's next nonce, counting messages waiting in the pool.
    pub fn next_nonce(&self, addr: &Address) -> u64 {
        let s = self.lock();
        s.resolve(addr)
            .map(|id| s.nonces.get(&id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Gas terms for `msg` (flat: [`GAS_LIMIT`] and the fee cap that pays the message fee),
    /// with the fee cap lowered to `max_fee / GAS_LIMIT` when that is less (Lotus's
    /// `capGasFee`), so a message whose max fee is too low is refused at push.
    pub fn estimate_gas(&self, msg: &UnsignedMessage, max_fee: TokenAmount) -> UnsignedMessage {
        let mut m = msg.clone();
        m.gas_limit = GAS_LIMIT;
        let per_gas = self.config.message_fee.atto().div_ceil(GAS_LIMIT as u128);
        m.gas_fee_cap = TokenAmount::from_atto(per_gas);
        m.gas_premium = TokenAmount::from_atto(per_gas / 10);
        if !max_fee.is_zero() && m.max_fee() > max_fee {
            m.gas_fee_cap = TokenAmount::from_atto(max_fee.atto() / GAS_LIMIT as u128);
            m.gas_premium = m.gas_premium.min(m.gas_fee_cap);
        }
        m
    }

    /// Takes a signed message into the pool, checking it as the chain would: a known sender
    /// whose key made the signature, the sender's next nonce, a fee cap that pays the
    /// message fee and a balance that covers value and fee. Pushing a message already taken
    /// returns its CID again.
    pub fn push_signed(&self, signed: &SignedMessage) -> Result<Cid, ChainError> {
        let cid = signed.cid();
        let m = &signed.message;
        let mut s = self.write();
        if s.messages.contains_key(&cid) {
            return Ok(cid);
        }
        let from = s
            .resolve(&m.from)
            .ok_or(ChainError::ActorNotFound(m.from))?;
        let key = s.keys.get(&from).copied().ok_or_else(|| {
            ChainError::MessageRejected(format!("{} is not an account that can sign", m.from))
        })?;
        signed.verify(&key).map_err(|e| {
            ChainError::MessageRejected(format!("signature of {} does not verify: {e}", m.from))
        })?;
        let expected = s.nonces.get(&from).copied().unwrap_or(0);
        if m.nonce != expected {
            return Err(ChainError::MessageRejected(format!(
                "nonce {} of {} is not its next nonce {expected}",
                m.nonce, m.from
            )));
        }
        let fee = self.config.message_fee;
        if m.max_fee() < fee {
            return Err(ChainError::MessageRejected(format!(
                "fee cap too low: the message may pay at most {} attoFIL and the base fee needs {} attoFIL (raise the max fee)",
                m.max_fee().atto(),
                fee.atto()
            )));
        }
        let balance = s.balances.get(&from).copied().unwrap_or_default();
        if balance
            .checked_sub(m.value)
            .and_then(|b| b.checked_sub(fee))
            .is_none()
        {
            return Err(ChainError::MessageRejected(format!(
                "{} cannot cover value {} and fee {fee} (balance {balance})",
                m.from, m.value
            )));
        }
        s.nonces.insert(from, expected + 1);
        s.messages.insert(cid, m.clone());
        s.pool.push((
            cid,
            Message {
                from: m.from,
                to: m.to,
                method: m.method,
                params: m.params.clone(),
                value: m.value,
                max_fee: m.max_fee(),
                uuid: None,
            },
        ));
        Ok(cid)
    }

    /// The message pushed for `uuid`, if any (`MpoolPushMessage`'s `MsgUuid`).
    pub fn message_for_uuid(&self, uuid: &uuid::Uuid) -> Option<Cid> {
        self.lock().by_uuid.get(uuid).copied()
    }

    /// Records that `uuid` was pushed as `cid`.
    pub fn remember_uuid(&self, uuid: uuid::Uuid, cid: Cid) {
        self.write().by_uuid.insert(uuid, cid);
    }

    /// A pushed message.
    pub fn message(&self, cid: &Cid) -> Option<UnsignedMessage> {
        self.lock().messages.get(cid).cloned()
    }

    /// Where a message landed, if it has: the receipt and epoch.
    pub fn lookup(&self, cid: &Cid) -> Option<MessageLookup> {
        self.lock().receipts.get(cid).cloned()
    }

    /// Whether a sector is on chain (proven).
    pub fn sector_proven(&self, miner: &Address, sector: SectorNumber) -> bool {
        let s = self.lock();
        s.resolve(miner)
            .and_then(|mid| s.sector(mid, sector))
            .is_some_and(|r| r.stage == SectorStage::Proven)
    }

    /// A miner's sector, pre-committed or proven, as the miner actor keeps it.
    pub fn sector_record(&self, miner: &Address, sector: SectorNumber) -> Option<SectorRecord> {
        let s = self.lock();
        s.resolve(miner)
            .and_then(|mid| s.sector(mid, sector))
            .cloned()
    }

    /// A miner whose owner and worker are these, if one exists.
    pub fn find_miner(&self, owner: &Address, worker: &Address) -> Option<Address> {
        let s = self.lock();
        let mut ids: Vec<_> = s
            .miners
            .iter()
            .filter(|(_, m)| m.owner == *owner && m.worker == *worker)
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids.first().map(|id| Address::new_id(*id))
    }

    /// The dev sealer's intake: places the deal's piece in a new sector (or returns where it
    /// already is).
    pub fn seal_add_piece(&self, miner: &Address, deal: DealId) -> SectorNumber {
        let mut s = self.write();
        if let Some((_, sector)) = s.sealing.placed.get(&deal) {
            return *sector;
        }
        let sector = SectorNumber(s.sealing.next_sector.max(1));
        s.sealing.next_sector = sector.0 + 1;
        s.sealing.placed.insert(deal, (*miner, sector));
        s.sealing.open.push((*miner, sector, vec![deal]));
        sector
    }

    /// Pre-commits every sector the dev sealer holds pieces for. Returns how many.
    pub fn seal_precommit_all(&self) -> usize {
        let open = std::mem::take(&mut self.write().sealing.open);
        let mut done = 0;
        for (miner, sector, deals) in open {
            match self.precommit_sector(&miner, sector, &deals) {
                Ok(()) => {
                    done += 1;
                    self.write()
                        .sealing
                        .precommitted
                        .push((miner, sector, deals));
                }
                Err(e) => tracing::warn!(%sector, error = %e, "dev sealer: pre-commit failed"),
            }
        }
        done
    }

    /// Proves every pre-committed sector, activating its deals. Returns how many.
    pub fn seal_prove_all(&self) -> usize {
        let pre = std::mem::take(&mut self.write().sealing.precommitted);
        let mut done = 0;
        for (miner, sector, _deals) in pre {
            match self.prove_commit_sector(&miner, sector) {
                Ok(()) => done += 1,
                Err(e) => tracing::warn!(%sector, error = %e, "dev sealer: prove-commit failed"),
            }
        }
        done
    }

    /// Creates (or tops up) the account of a key address with `balance`; returns its id address.
    pub fn fund(&self, addr: &Address, balance: TokenAmount) -> Address {
        let mut s = self.write();
        let id = s.ensure_account(*addr);
        let b = s.balances.entry(id).or_default();
        *b = b.checked_add(balance).expect("dev chain balance overflow");
        Address::new_id(id)
    }

    /// Creates a miner actor owned by `owner` with `worker` as worker key; returns its address.
    pub fn create_miner(&self, owner: &Address, worker: &Address, sector_size: u64) -> Address {
        let mut s = self.write();
        s.ensure_account(*owner);
        s.ensure_account(*worker);
        let id = s.next_id;
        s.next_id += 1;
        s.miners.insert(
            id,
            MinerInfo {
                owner: *owner,
                worker: *worker,
                control_addresses: vec![],
                sector_size,
            },
        );
        Address::new_id(id)
    }

    /// Grants DataCap to a client.
    pub fn add_verified_client(&self, client: &Address, bytes: u128) {
        let mut s = self.write();
        let id = s.ensure_account(*client);
        *s.datacap.entry(id).or_default() += bytes;
    }

    /// The current epoch.
    pub fn epoch(&self) -> ChainEpoch {
        ChainEpoch::new(self.lock().epoch)
    }

    /// Mines `n` epochs now: includes pooled messages, settles payments, expires deals.
    pub fn advance(&self, n: u64) {
        for _ in 0..n {
            let epoch = {
                let mut s = self.write();
                s.epoch += 1;
                let epoch = s.epoch;
                let version = self.config.version_at(ChainEpoch::new(epoch));
                let pool = std::mem::take(&mut s.pool);
                for (cid, msg) in pool {
                    let receipt = s.execute(&self.config, version, &msg);
                    s.receipts.insert(
                        cid,
                        MessageLookup {
                            receipt,
                            epoch: ChainEpoch::new(epoch),
                        },
                    );
                }
                s.cron(epoch);
                epoch
            };
            self.head.send_replace(ChainEpoch::new(epoch));
        }
    }

    /// Starts mining one epoch every `period` on the current tokio runtime (replacing any
    /// running clock).
    pub fn start_clock(&self, period: Duration) {
        self.stop_clock();
        let me = self.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                me.advance(1);
            }
        });
        *self.clock.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
    }

    /// Stops the clock; pooled messages wait until it runs again.
    pub fn stop_clock(&self) {
        if let Some(t) = self.clock.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
    }

    /// Pre-commits `sector` of `miner` with `deals`, declaring the commD an honest sealer
    /// computes from their pieces, under the same checks as a `PreCommitSectorBatch2`
    /// message from the miner's worker (the dev sealer's path).
    pub fn precommit_sector(
        &self,
        miner: &Address,
        sector: SectorNumber,
        deals: &[DealId],
    ) -> Result<(), ChainError> {
        let mut s = self.write();
        let (mid, worker, m) = s.miner_and_worker(miner)?;
        let pieces: Vec<(Cid, u64)> = deals
            .iter()
            .filter_map(|d| s.deals.get(&d.0))
            .map(|d| (d.proposal.piece_cid, d.proposal.piece_size))
            .collect();
        let end = deals
            .iter()
            .filter_map(|d| s.deals.get(&d.0))
            .map(|d| d.proposal.end_epoch.get())
            .max()
            .unwrap_or(s.epoch + 1);
        let unsealed_cid = if pieces.is_empty() {
            None
        } else {
            Some(sectors::commd_of(m.sector_size, &pieces).map_err(ChainError::MessageRejected)?)
        };
        let info = market_core::miner::SectorPreCommitInfo {
            seal_proof: market_core::miner::seal_proof_for(m.sector_size).unwrap_or(-1),
            sector_number: sector,
            sealed_cid: unsealed_cid.unwrap_or_default(),
            seal_rand_epoch: ChainEpoch::new(s.epoch),
            deal_ids: deals.to_vec(),
            expiration: ChainEpoch::new(end + ChainEpoch::PER_DAY),
            unsealed_cid,
        };
        s.precommit_batch(mid, worker, vec![info])
            .map_err(|r| ChainError::MessageRejected(r.reason))
    }

    /// Proves a pre-committed sector, activating its deals (the market actor's
    /// `ActivateDeals`), under the same checks as a `ProveCommitSectors3` message from the
    /// miner's worker. Deals past their start epoch cannot be activated.
    pub fn prove_commit_sector(
        &self,
        miner: &Address,
        sector: SectorNumber,
    ) -> Result<(), ChainError> {
        let mut s = self.write();
        let (mid, worker, _) = s.miner_and_worker(miner)?;
        let params = market_core::miner::ProveCommitSectors3Params {
            sector_activations: vec![market_core::miner::SectorActivationManifest {
                sector_number: sector,
                pieces: vec![],
            }],
            sector_proofs: vec![market_core::miner::Proof(vec![1])],
            aggregate_proof: vec![],
            aggregate_proof_type: None,
            require_activation_success: true,
            require_notification_success: true,
        };
        s.prove_commit(mid, worker, &params)
            .map(|_| ())
            .map_err(|r| ChainError::MessageRejected(r.reason))
    }

    /// Commits an empty (committed-capacity) sector `sector` for `miner`, pre-committed and
    /// proven at once from its worker, so that deals can be snapped into it.
    pub fn commit_cc_sector(
        &self,
        miner: &Address,
        sector: SectorNumber,
    ) -> Result<(), ChainError> {
        self.precommit_sector(miner, sector, &[])?;
        self.prove_commit_sector(miner, sector)
    }

    /// Snaps `deals` into the proven empty `sector` of `miner` (`ProveReplicaUpdates3` from
    /// its worker, each piece notifying the market actor of its deal).
    pub fn snap_deals(
        &self,
        miner: &Address,
        sector: SectorNumber,
        deals: &[DealId],
    ) -> Result<(), ChainError> {
        use market_core::miner::*;
        let mut s = self.write();
        let (mid, worker, _) = s.miner_and_worker(miner)?;
        let mut pieces = Vec::new();
        for id in deals {
            let d = s
                .deals
                .get(&id.0)
                .ok_or_else(|| ChainError::MessageRejected(format!("deal {id} not found")))?;
            pieces.push(PieceActivationManifest {
                cid: d.proposal.piece_cid,
                size: d.proposal.piece_size,
                verified_allocation_key: None,
                notify: vec![DataActivationNotification {
                    address: deal::STORAGE_MARKET_ACTOR,
                    payload: cbor::to_vec(id),
                }],
            });
        }
        // Largest first, so every piece sits aligned.
        pieces.sort_by_key(|p| std::cmp::Reverse(p.size));
        let params = ProveReplicaUpdates3Params {
            sector_updates: vec![SectorUpdateManifest {
                sector,
                deadline: 0,
                partition: 0,
                new_sealed_cid: Cid::default(),
                pieces,
            }],
            sector_proofs: vec![Proof(vec![1])],
            aggregate_proof: vec![],
            update_proofs_type: 3,
            aggregate_proof_type: None,
            require_activation_success: true,
            require_notification_success: true,
        };
        s.prove_replica_updates(mid, worker, &params)
            .map(|_| ())
            .map_err(|r| ChainError::MessageRejected(r.reason))
    }

    /// Terminates a deal early (a sector fault), burning the provider's collateral.
    pub fn slash_deal(&self, id: DealId) -> Result<(), ChainError> {
        let mut s = self.write();
        let epoch = s.epoch;
        let deal = s
            .deals
            .get_mut(&id.0)
            .ok_or_else(|| ChainError::MessageRejected(format!("deal {id} not found")))?;
        deal.state.slash_epoch = ChainEpoch::new(epoch);
        Ok(())
    }

    /// How a removed deal ended, if it has.
    pub fn deal_end(&self, id: DealId) -> Option<DealEnd> {
        self.lock().ended.get(&id.0).copied()
    }

    /// Total burnt funds (fees and slashed collateral).
    pub fn burnt(&self) -> TokenAmount {
        self.lock().burnt
    }
}

impl State {
    /// A miner's id, its worker's id and its info, for the dev sealer's own messages.
    fn miner_and_worker(&self, miner: &Address) -> Result<(u64, u64, MinerInfo), ChainError> {
        let mid = self
            .resolve(miner)
            .ok_or(ChainError::ActorNotFound(*miner))?;
        let m = self
            .miners
            .get(&mid)
            .cloned()
            .ok_or(ChainError::ActorNotFound(*miner))?;
        let worker = self
            .resolve(&m.worker)
            .ok_or(ChainError::ActorNotFound(m.worker))?;
        Ok((mid, worker, m))
    }

    fn ensure_account(&mut self, addr: Address) -> u64 {
        if let Some(id) = addr.id() {
            return id;
        }
        if let Some(&id) = self.ids.get(&addr) {
            return id;
        }
        let id = self.next_id;
        self.next_id += 1;
        self.ids.insert(addr, id);
        self.keys.insert(id, addr);
        id
    }

    fn resolve(&self, addr: &Address) -> Option<u64> {
        match addr.id() {
            Some(id) if self.keys.contains_key(&id) || self.miners.contains_key(&id) => Some(id),
            Some(_) => None,
            None => self.ids.get(addr).copied(),
        }
    }

    fn escrow_mut(&mut self, id: u64) -> &mut MarketBalance {
        self.escrow.entry(id).or_default()
    }

    fn execute(
        &mut self,
        config: &DevChainConfig,
        version: NetworkVersion,
        msg: &Message,
    ) -> Receipt {
        let fail = |code: ExitCode, fee| Receipt {
            exit_code: code,
            return_data: vec![],
            fee,
        };
        let fee = config.message_fee;
        let Some(from) = self.resolve(&msg.from) else {
            return fail(ExitCode::FORBIDDEN, TokenAmount::ZERO);
        };
        let balance = self.balances.get(&from).copied().unwrap_or_default();
        let Some(after) = balance
            .checked_sub(fee)
            .and_then(|b| b.checked_sub(msg.value))
        else {
            return fail(ExitCode::INSUFFICIENT_FUNDS, TokenAmount::ZERO);
        };
        self.balances.insert(from, after);
        self.burnt = self.burnt.checked_add(fee).unwrap_or(self.burnt);
        let refund = |s: &mut State| {
            let b = s.balances.entry(from).or_default();
            *b = b.checked_add(msg.value).unwrap_or(*b);
        };
        let miner = self
            .resolve(&msg.to)
            .filter(|id| self.miners.contains_key(id));
        if let (Some(mid), true) = (miner, msg.method != 0) {
            return match self.miner_method(mid, from, msg) {
                Ok(return_data) => Receipt {
                    exit_code: ExitCode::OK,
                    return_data,
                    fee,
                },
                Err(refusal) => {
                    tracing::warn!(miner = %msg.to, method = msg.method, reason = %refusal.reason, "devnet: miner message refused");
                    refund(self);
                    fail(refusal.code, fee)
                }
            };
        }
        if msg.to != deal::STORAGE_MARKET_ACTOR {
            if msg.method != 0 {
                refund(self);
                return fail(ExitCode::FORBIDDEN, fee);
            }
            let to = self.ensure_account(msg.to);
            let b = self.balances.entry(to).or_default();
            *b = b.checked_add(msg.value).unwrap_or(*b);
            return Receipt {
                exit_code: ExitCode::OK,
                return_data: vec![],
                fee,
            };
        }
        let result = match msg.method {
            deal::method::ADD_BALANCE => self.add_balance(msg),
            deal::method::WITHDRAW_BALANCE => self.withdraw_balance(from, msg),
            deal::method::PUBLISH_STORAGE_DEALS => self.publish(config, version, from, msg),
            _ => Err(ExitCode::FORBIDDEN),
        };
        match result {
            Ok(return_data) => Receipt {
                exit_code: ExitCode::OK,
                return_data,
                fee,
            },
            Err(code) => {
                refund(self);
                fail(code, fee)
            }
        }
    }

    /// A message to miner actor `mid`: the sector methods a sealer sends.
    fn miner_method(
        &mut self,
        mid: u64,
        from: u64,
        msg: &Message,
    ) -> Result<Vec<u8>, sectors::Refusal> {
        use market_core::miner::{self, method};
        let bad_params = |e: cbor::DecodeError| sectors::Refusal {
            code: ExitCode::ILLEGAL_ARGUMENT,
            reason: format!("params: {e}"),
        };
        match msg.method {
            method::PRE_COMMIT_SECTOR_BATCH2 => {
                let p: miner::PreCommitSectorBatchParams2 =
                    cbor::from_slice(&msg.params, 1 << 20).map_err(bad_params)?;
                self.precommit_batch(mid, from, p.sectors)?;
                Ok(vec![])
            }
            method::PROVE_COMMIT_SECTORS3 => {
                let p: miner::ProveCommitSectors3Params =
                    cbor::from_slice(&msg.params, 4 << 20).map_err(bad_params)?;
                Ok(cbor::to_vec(&self.prove_commit(mid, from, &p)?))
            }
            method::PROVE_REPLICA_UPDATES3 => {
                let p: miner::ProveReplicaUpdates3Params =
                    cbor::from_slice(&msg.params, 4 << 20).map_err(bad_params)?;
                Ok(cbor::to_vec(&self.prove_replica_updates(mid, from, &p)?))
            }
            method::CHANGE_PEER_ID | method::CHANGE_MULTIADDRS => {
                // Owner, worker and control addresses may change them, as on chain.
                let info = &self.miners[&mid];
                let allowed = std::iter::once(&info.owner)
                    .chain(std::iter::once(&info.worker))
                    .chain(info.control_addresses.iter())
                    .any(|a| self.resolve(a) == Some(from));
                if !allowed {
                    return Err(sectors::Refusal {
                        code: ExitCode::FORBIDDEN,
                        reason: "only the owner, worker or a control address may change peer info"
                            .into(),
                    });
                }
                let entry = self.peer_info.entry(mid).or_default();
                if msg.method == method::CHANGE_PEER_ID {
                    let p: miner::ChangePeerIdParams =
                        cbor::from_slice(&msg.params, 1024).map_err(bad_params)?;
                    if p.new_id.len() > 128 {
                        return Err(sectors::Refusal {
                            code: ExitCode::ILLEGAL_ARGUMENT,
                            reason: "peer id over 128 bytes".into(),
                        });
                    }
                    entry.peer_id = Some(p.new_id);
                } else {
                    let p: miner::ChangeMultiaddrsParams =
                        cbor::from_slice(&msg.params, 64 << 10).map_err(bad_params)?;
                    entry.multiaddrs = p.new_multiaddrs.into_iter().map(|b| b.into_vec()).collect();
                }
                Ok(vec![])
            }
            other => Err(sectors::Refusal {
                code: ExitCode(22), // USR_UNHANDLED_MESSAGE
                reason: format!("miner method {other} is not simulated"),
            }),
        }
    }

    fn add_balance(&mut self, msg: &Message) -> Result<Vec<u8>, ExitCode> {
        let addr: Address =
            cbor::from_slice(&msg.params, 1024).map_err(|_| ExitCode::ILLEGAL_ARGUMENT)?;
        let id = match self.resolve(&addr) {
            Some(id) => id,
            None if addr.kind() != AddressKind::Id => self.ensure_account(addr),
            None => return Err(ExitCode::ILLEGAL_ARGUMENT),
        };
        let e = self.escrow_mut(id);
        e.escrow = e
            .escrow
            .checked_add(msg.value)
            .ok_or(ExitCode::ILLEGAL_ARGUMENT)?;
        Ok(vec![])
    }

    fn withdraw_balance(&mut self, from: u64, msg: &Message) -> Result<Vec<u8>, ExitCode> {
        #[derive(serde::Deserialize)]
        struct Params(Address, TokenAmount);
        let Params(addr, amount) =
            cbor::from_slice(&msg.params, 1024).map_err(|_| ExitCode::ILLEGAL_ARGUMENT)?;
        let id = self.resolve(&addr).ok_or(ExitCode::ILLEGAL_ARGUMENT)?;
        let owner_ok = id == from
            || self
                .miners
                .get(&id)
                .is_some_and(|m| self.resolve(&m.owner) == Some(from));
        if !owner_ok {
            return Err(ExitCode::FORBIDDEN);
        }
        let e = self.escrow_mut(id);
        let take = amount.min(e.available());
        e.escrow = e.escrow.saturating_sub(take);
        let b = self.balances.entry(from).or_default();
        *b = b.checked_add(take).unwrap_or(*b);
        Ok(cbor::to_vec(&take))
    }

    fn publish(
        &mut self,
        config: &DevChainConfig,
        version: NetworkVersion,
        from: u64,
        msg: &Message,
    ) -> Result<Vec<u8>, ExitCode> {
        let params: PublishStorageDealsParams =
            cbor::from_slice(&msg.params, 16 << 20).map_err(|_| ExitCode::ILLEGAL_ARGUMENT)?;
        let first = params.deals.first().ok_or(ExitCode::ILLEGAL_ARGUMENT)?;
        let provider = self
            .resolve(&first.proposal.provider)
            .ok_or(ExitCode::ILLEGAL_ARGUMENT)?;
        let info = self
            .miners
            .get(&provider)
            .ok_or(ExitCode::ILLEGAL_ARGUMENT)?;
        let allowed = std::iter::once(&info.worker)
            .chain(info.control_addresses.iter())
            .any(|a| self.resolve(a) == Some(from));
        if !allowed {
            return Err(ExitCode::FORBIDDEN);
        }
        let mut valid = fvm_ipld_bitfield::BitField::new();
        let mut accepted: Vec<(u64, ClientDealProposal, u64)> = Vec::new();
        let mut batch_cids = HashSet::new();
        let mut client_need: HashMap<u64, TokenAmount> = HashMap::new();
        let mut provider_need = TokenAmount::ZERO;
        let mut datacap_used: HashMap<u64, u128> = HashMap::new();
        for (i, d) in params.deals.iter().enumerate() {
            let Some(client) = self.check_deal(config, provider, d) else {
                continue;
            };
            // FIP-0118: from Solstice the verified registry's methods revert, so a verified
            // deal cannot get its allocation.
            if d.proposal.verified_deal && !version.allows_verified_deals() {
                continue;
            }
            let cid = d.proposal.cid();
            if self.pending_proposals.contains(&cid) || !batch_cids.insert(cid) {
                continue;
            }
            let p = &d.proposal;
            let need_c = client_need
                .get(&client)
                .copied()
                .unwrap_or_default()
                .checked_add(p.client_balance_requirement());
            let need_p = provider_need.checked_add(p.provider_collateral);
            let (Some(need_c), Some(need_p)) = (need_c, need_p) else {
                continue;
            };
            if self
                .escrow
                .get(&client)
                .copied()
                .unwrap_or_default()
                .available()
                < need_c
                || self
                    .escrow
                    .get(&provider)
                    .copied()
                    .unwrap_or_default()
                    .available()
                    < need_p
            {
                continue;
            }
            if p.verified_deal {
                let used =
                    datacap_used.get(&client).copied().unwrap_or(0) + u128::from(p.piece_size);
                if self.datacap.get(&client).copied().unwrap_or(0) < used {
                    continue;
                }
                datacap_used.insert(client, used);
            }
            client_need.insert(client, need_c);
            provider_need = need_p;
            valid.set(i as u64);
            accepted.push((client, d.clone(), i as u64));
        }
        if accepted.is_empty() {
            return Err(ExitCode::ILLEGAL_ARGUMENT);
        }
        let mut ids = Vec::with_capacity(accepted.len());
        for (client, d, _) in accepted {
            let p = d.proposal;
            let id = self.next_deal_id;
            self.next_deal_id += 1;
            let c = self.escrow_mut(client);
            c.locked = c
                .locked
                .checked_add(p.client_balance_requirement())
                .unwrap_or(c.locked);
            let pe = self.escrow_mut(provider);
            pe.locked = pe
                .locked
                .checked_add(p.provider_collateral)
                .unwrap_or(pe.locked);
            if p.verified_deal {
                let cap = self.datacap.entry(client).or_default();
                *cap = cap.saturating_sub(u128::from(p.piece_size));
            }
            self.pending_proposals.insert(p.cid());
            let unset = ChainEpoch::new(-1);
            let state = DealState {
                sector_start_epoch: unset,
                last_updated_epoch: unset,
                slash_epoch: unset,
                verified_claim: 0,
            };
            self.deals.insert(
                id,
                ActiveDeal {
                    proposal: p,
                    state,
                    client,
                    provider,
                    sector: None,
                },
            );
            ids.push(DealId(id));
        }
        Ok(cbor::to_vec(&PublishStorageDealsReturn {
            ids,
            valid_deals: valid,
        }))
    }

    /// The market actor's per-deal checks; returns the client's id when the deal is valid.
    fn check_deal(
        &self,
        config: &DevChainConfig,
        provider: u64,
        d: &ClientDealProposal,
    ) -> Option<u64> {
        let p = &d.proposal;
        let client = self.resolve(&p.client)?;
        let key = self.keys.get(&client)?;
        wallet::verify(&d.client_signature, key, &p.to_cbor()).ok()?;
        let size = p.padded_piece_size().ok()?;
        let policy = &config.policy;
        let ok = p.label.len() <= market_core::types::DealLabel::MAX_LEN
            && commp::Commitment::from_cid_v1(&p.piece_cid).is_ok()
            && p.end_epoch > p.start_epoch
            && self.epoch <= p.start_epoch.get()
            && (policy.min_duration..=policy.max_duration).contains(&p.duration())
            && p.end_epoch.get() <= self.epoch + policy.max_end_offset
            && p.storage_price_per_epoch <= TokenAmount::TOTAL_FILECOIN
            && p.client_collateral <= TokenAmount::TOTAL_FILECOIN
            && p.provider_collateral <= TokenAmount::TOTAL_FILECOIN
            && p.provider_collateral >= self.min_collateral(config, size)
            && self.resolve(&p.provider) == Some(provider);
        ok.then_some(client)
    }

    fn min_collateral(&self, config: &DevChainConfig, size: PaddedPieceSize) -> TokenAmount {
        // 1% of circulating supply, pro rata to the piece's share of network power.
        let power = config.network_raw_power.max(u128::from(size.get()));
        config
            .circulating_supply
            .mul_div(u128::from(size.get()), power)
            .mul_div(1, 100)
    }

    /// End-of-epoch market cron: settle payments, expire, time out and slash deals.
    fn cron(&mut self, epoch: i64) {
        let ids: Vec<u64> = self.deals.keys().copied().collect();
        for id in ids {
            let Some(d) = self.deals.get(&id).cloned() else {
                continue;
            };
            let p = &d.proposal;
            let activated = d.state.sector_start_epoch.get() >= 0;
            if !activated {
                if epoch > p.start_epoch.get() {
                    self.unlock_client(d.client, p.client_balance_requirement());
                    self.burn_provider(d.provider, p.provider_collateral);
                    self.remove_deal(id, DealEnd::TimedOut);
                }
                continue;
            }
            let from = d.state.last_updated_epoch.get().max(p.start_epoch.get());
            let to = epoch.min(p.end_epoch.get());
            if to > from {
                let pay = p
                    .storage_price_per_epoch
                    .checked_mul((to - from) as u128)
                    .unwrap_or_default();
                self.pay(d.client, d.provider, pay);
                if let Some(dm) = self.deals.get_mut(&id) {
                    dm.state.last_updated_epoch = ChainEpoch::new(to);
                }
            }
            if d.state.slash_epoch.get() >= 0 {
                let paid_until = to.max(from);
                let remaining = p
                    .storage_price_per_epoch
                    .checked_mul((p.end_epoch.get() - paid_until).max(0) as u128)
                    .unwrap_or_default();
                self.unlock_client(
                    d.client,
                    p.client_collateral
                        .checked_add(remaining)
                        .unwrap_or_default(),
                );
                self.burn_provider(d.provider, p.provider_collateral);
                self.remove_deal(id, DealEnd::Slashed);
            } else if epoch >= p.end_epoch.get() {
                self.unlock_client(d.client, p.client_collateral);
                let e = self.escrow_mut(d.provider);
                e.locked = e.locked.saturating_sub(p.provider_collateral);
                self.remove_deal(id, DealEnd::Expired);
            }
        }
    }

    fn remove_deal(&mut self, id: u64, end: DealEnd) {
        if let Some(d) = self.deals.remove(&id) {
            self.pending_proposals.remove(&d.proposal.cid());
        }
        self.ended.insert(id, end);
    }

    fn unlock_client(&mut self, client: u64, amount: TokenAmount) {
        let e = self.escrow_mut(client);
        e.locked = e.locked.saturating_sub(amount);
    }

    fn burn_provider(&mut self, provider: u64, amount: TokenAmount) {
        let e = self.escrow_mut(provider);
        e.locked = e.locked.saturating_sub(amount);
        e.escrow = e.escrow.saturating_sub(amount);
        self.burnt = self.burnt.checked_add(amount).unwrap_or(self.burnt);
    }

    fn pay(&mut self, client: u64, provider: u64, amount: TokenAmount) {
        let c = self.escrow_mut(client);
        c.locked = c.locked.saturating_sub(amount);
        c.escrow = c.escrow.saturating_sub(amount);
        let p = self.escrow_mut(provider);
        p.escrow = p.escrow.checked_add(amount).unwrap_or(p.escrow);
    }
}

#[async_trait::async_trait]
impl ChainNode for DevChain {
    async fn head(&self) -> Result<ChainEpoch, ChainError> {
        Ok(self.epoch())
    }

    async fn miner_info(&self, miner: &Address) -> Result<MinerInfo, ChainError> {
        let s = self.lock();
        s.resolve(miner)
            .and_then(|id| s.miners.get(&id).cloned())
            .ok_or(ChainError::ActorNotFound(*miner))
    }

    async fn market_balance(&self, addr: &Address) -> Result<MarketBalance, ChainError> {
        let s = self.lock();
        Ok(s.resolve(addr)
            .and_then(|id| s.escrow.get(&id).copied())
            .unwrap_or_default())
    }

    async fn collateral_bounds(
        &self,
        size: PaddedPieceSize,
        _verified: bool,
    ) -> Result<CollateralBounds, ChainError> {
        let min = self.lock().min_collateral(&self.config, size);
        Ok(CollateralBounds {
            min,
            max: TokenAmount::TOTAL_FILECOIN,
        })
    }

    async fn datacap(&self, client: &Address) -> Result<Option<u128>, ChainError> {
        let s = self.lock();
        Ok(s.resolve(client).and_then(|id| s.datacap.get(&id).copied()))
    }

    async fn account_key(&self, addr: &Address) -> Result<Address, ChainError> {
        if matches!(addr.kind(), AddressKind::Secp256k1 | AddressKind::Bls) {
            return Ok(*addr);
        }
        let s = self.lock();
        addr.id()
            .and_then(|id| s.keys.get(&id).copied())
            .ok_or(ChainError::ActorNotFound(*addr))
    }

    async fn lookup_id(&self, addr: &Address) -> Result<Address, ChainError> {
        self.lock()
            .resolve(addr)
            .map(Address::new_id)
            .ok_or(ChainError::ActorNotFound(*addr))
    }

    async fn push_message(&self, msg: Message) -> Result<Cid, ChainError> {
        if let Some(cid) = msg.uuid.and_then(|u| self.message_for_uuid(&u)) {
            return Ok(cid);
        }
        let mut s = self.write();
        let from = s
            .resolve(&msg.from)
            .ok_or(ChainError::ActorNotFound(msg.from))?;
        if msg.max_fee < self.config.message_fee {
            return Err(ChainError::MessageRejected(format!(
                "max fee {} below the message fee {}",
                msg.max_fee, self.config.message_fee
            )));
        }
        let balance = s.balances.get(&from).copied().unwrap_or_default();
        if balance
            .checked_sub(msg.value)
            .and_then(|b| b.checked_sub(self.config.message_fee))
            .is_none()
        {
            return Err(ChainError::MessageRejected(format!(
                "{} cannot cover value and fee (balance {balance})",
                msg.from
            )));
        }
        let nonce = s.nonces.get(&from).copied().unwrap_or(0);
        s.nonces.insert(from, nonce + 1);
        let unsigned = UnsignedMessage {
            version: 0,
            to: msg.to,
            from: msg.from,
            nonce,
            value: msg.value,
            gas_limit: GAS_LIMIT,
            gas_fee_cap: TokenAmount::from_atto(
                self.config.message_fee.atto().div_ceil(GAS_LIMIT as u128),
            ),
            gas_premium: TokenAmount::ZERO,
            method: msg.method,
            params: msg.params.clone(),
        };
        let cid = unsigned.cid();
        s.messages.insert(cid, unsigned);
        if let Some(u) = msg.uuid {
            s.by_uuid.insert(u, cid);
        }
        s.pool.push((cid, msg));
        Ok(cid)
    }

    async fn call(&self, msg: &Message) -> Result<Receipt, ChainError> {
        // Run on a scratch copy of the state so nothing changes.
        let mut scratch = self.lock().clone();
        let b = scratch
            .resolve(&msg.from)
            .map(|id| scratch.balances.entry(id).or_default());
        if let Some(b) = b {
            *b = b.checked_add(self.config.message_fee).unwrap_or(*b);
        }
        Ok(scratch.execute(&self.config, self.version(), msg))
    }

    async fn wait_message(&self, cid: &Cid, confidence: u64) -> Result<MessageLookup, ChainError> {
        let mut rx = self.head.subscribe();
        loop {
            {
                let s = self.lock();
                if let Some(found) = s.receipts.get(cid) {
                    if s.epoch >= found.epoch.get() + confidence as i64 {
                        return Ok(found.clone());
                    }
                } else if !s.pool.iter().any(|(c, _)| c == cid) {
                    return Err(ChainError::MessageNotFound(Box::new(*cid)));
                }
            }
            if rx.changed().await.is_err() {
                return Err(ChainError::Node("dev chain stopped".into()));
            }
        }
    }

    async fn market_deal(&self, id: DealId) -> Result<Option<MarketDeal>, ChainError> {
        let s = self.lock();
        Ok(s.deals.get(&id.0).map(|d| MarketDeal {
            proposal: d.proposal.clone(),
            state: d.state,
            sector: d.sector,
        }))
    }

    async fn sector(
        &self,
        miner: &Address,
        sector: SectorNumber,
    ) -> Result<Option<SectorOnChain>, ChainError> {
        let s = self.lock();
        let id = s.resolve(miner).ok_or(ChainError::ActorNotFound(*miner))?;
        Ok(s.sector(id, sector).map(|r| r.on_chain()))
    }

    async fn wallet_balance(&self, addr: &Address) -> Result<TokenAmount, ChainError> {
        let s = self.lock();
        Ok(s.resolve(addr)
            .and_then(|id| s.balances.get(&id).copied())
            .unwrap_or_default())
    }

    async fn network_version(&self) -> Result<NetworkVersion, ChainError> {
        Ok(self.version())
    }
}
