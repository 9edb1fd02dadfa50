//! Deal persistence in SQLite.
//!
//! One connection behind a mutex, used from `spawn_blocking`. The database runs in WAL mode
//! with `synchronous = FULL`, so a write has reached the disk when the call returns, and the
//! provider only acknowledges a deal after that. Migrations are plain SQL applied in order
//! and recorded in `PRAGMA user_version`.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use market_core::db::{Db, DbTaskError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::Cid;
use crate::cbor;
use crate::deal::ClientDealProposal;
use crate::message::{DealParams, SignedStorageAsk, Transfer};
use crate::placement::{PieceStatus, Placement, PlacementChange};
use crate::protocol::Protocol;
use crate::state::StorageDealStatus;
use crate::types::{Address, DealId, DealUuid, SectorNumber};

/// Schema migrations, applied in order. Append only; never edit a released entry.
const MIGRATIONS: &[&str] = &[
    // 1: provider deals, asks, client deals.
    "CREATE TABLE provider_deals (
        proposal_cid    TEXT PRIMARY KEY,
        deal_uuid       TEXT NOT NULL UNIQUE,
        miner           TEXT NOT NULL,
        protocol        TEXT NOT NULL,
        proposal        BLOB NOT NULL,
        onchain_cid     TEXT NOT NULL,
        payload_root    TEXT,
        is_offline      INTEGER NOT NULL,
        transfer        BLOB NOT NULL,
        fast_retrieval  INTEGER NOT NULL,
        remove_unsealed INTEGER NOT NULL,
        skip_ipni       INTEGER NOT NULL,
        state           INTEGER NOT NULL,
        message         TEXT NOT NULL DEFAULT '',
        add_funds_cid   TEXT,
        publish_cid     TEXT,
        publish_index   INTEGER,
        deal_id         INTEGER,
        sector          INTEGER,
        sector_offset   INTEGER,
        piece_path      TEXT,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE INDEX provider_deals_state ON provider_deals(state);
    CREATE TABLE asks (
        miner TEXT PRIMARY KEY,
        ask   BLOB NOT NULL
    );
    CREATE TABLE client_deals (
        proposal_cid   TEXT PRIMARY KEY,
        deal_uuid      TEXT NOT NULL UNIQUE,
        provider_peer  TEXT NOT NULL,
        protocol       TEXT NOT NULL,
        proposal       BLOB NOT NULL,
        payload_root   TEXT,
        is_offline     INTEGER NOT NULL,
        state          INTEGER NOT NULL,
        checkpoint     TEXT NOT NULL DEFAULT '',
        message        TEXT NOT NULL DEFAULT '',
        deal_id        INTEGER,
        publish_cid    TEXT,
        created_at     INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL
    );",
    // 2: publish messages, recorded before they are pushed (see `publish.rs`).
    "CREATE TABLE publish_messages (
        uuid       TEXT PRIMARY KEY,
        miner      TEXT NOT NULL,
        message    BLOB NOT NULL,
        cid        TEXT,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE publish_message_deals (
        proposal_cid TEXT NOT NULL,
        uuid         TEXT NOT NULL REFERENCES publish_messages(uuid) ON DELETE CASCADE,
        idx          INTEGER NOT NULL,
        PRIMARY KEY (proposal_cid, uuid)
    );",
    // 3: placements of deals in sectors, written by sealers (see `placement.rs`).
    "CREATE TABLE deal_placements (
        proposal_cid  TEXT PRIMARY KEY REFERENCES provider_deals(proposal_cid),
        miner         TEXT NOT NULL,
        deal_id       INTEGER NOT NULL,
        piece_status  TEXT NOT NULL,
        sector        INTEGER,
        sector_offset INTEGER,
        updated_at    INTEGER NOT NULL
    );
    CREATE UNIQUE INDEX deal_placements_deal ON deal_placements(miner, deal_id);
    CREATE INDEX provider_deals_deal_id ON provider_deals(miner, deal_id);",
    // 4: every state or message a provider deal took, with when (its timeline).
    "CREATE TABLE deal_events (
        seq          INTEGER PRIMARY KEY AUTOINCREMENT,
        proposal_cid TEXT NOT NULL,
        at_ms        INTEGER NOT NULL,
        state        INTEGER NOT NULL,
        message      TEXT NOT NULL
    );
    CREATE INDEX deal_events_by_deal ON deal_events(proposal_cid, seq);",
    // 5: which instance drives a deal when several share the database (see `lease.rs`).
    "CREATE TABLE deal_leases (
        proposal_cid TEXT PRIMARY KEY,
        holder       TEXT NOT NULL,
        expires_ms   INTEGER NOT NULL
    );
    CREATE INDEX deal_leases_holder ON deal_leases(holder);",
];

/// One entry of a deal's timeline: the state it entered or the note it got, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealStateChange {
    /// Unix milliseconds.
    pub at_ms: i64,
    /// The state from then on.
    pub state: StorageDealStatus,
    /// The deal's message from then on (an error, a sealer's word).
    pub message: String,
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn record_event(
    c: &Connection,
    proposal_cid: &str,
    state: StorageDealStatus,
    message: &str,
) -> rusqlite::Result<()> {
    c.execute(
        "INSERT INTO deal_events (proposal_cid, at_ms, state, message) VALUES (?1, ?2, ?3, ?4)",
        params![proposal_cid, unix_now_ms(), state.code() as i64, message],
    )?;
    Ok(())
}

/// Database errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed (disk full, corruption, locked).
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Another database (a shared Postgres) failed: connection lost, pool exhausted, a
    /// statement refused.
    #[error("database: {0}")]
    Database(Box<dyn std::error::Error + Send + Sync>),
    /// A stored row could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A compare-and-set found another state (someone else changed the row first).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A deal with this proposal CID or UUID already exists.
    #[error("duplicate deal: {0}")]
    Duplicate(String),
    /// The database task panicked or was cancelled.
    #[error(transparent)]
    Task(#[from] DbTaskError),
}

/// A deal as the provider tracks it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderDeal {
    /// The signed proposal's CID (sha2-256), the primary key.
    pub proposal_cid: Cid,
    /// Boost deal UUID (random for 1.1 deals, which have none on the wire).
    pub deal_uuid: DealUuid,
    /// The miner the deal is for.
    pub miner: Address,
    /// The protocol the deal arrived on.
    pub protocol: Protocol,
    /// The signed proposal.
    pub proposal: ClientDealProposal,
    /// The payload root CID, when known.
    pub payload_root: Option<Cid>,
    /// Whether the data is imported by hand.
    pub is_offline: bool,
    /// Transfer parameters of online deals.
    pub transfer: Transfer,
    /// Keep an unsealed copy.
    pub fast_retrieval: bool,
    /// Client asked not to keep an unsealed copy.
    pub remove_unsealed: bool,
    /// Client asked not to announce to IPNI.
    pub skip_ipni: bool,
    /// Current state.
    pub state: StorageDealStatus,
    /// Last error or note.
    pub message: String,
    /// AddBalance message sent for this deal.
    pub add_funds_cid: Option<Cid>,
    /// PublishStorageDeals message carrying the deal.
    pub publish_cid: Option<Cid>,
    /// The deal's index inside the publish message's params.
    pub publish_index: Option<u64>,
    /// On-chain deal id.
    pub deal_id: Option<DealId>,
    /// Sector the sealer put the piece in.
    pub sector: Option<SectorNumber>,
    /// Padded offset of the piece in its sector.
    pub sector_offset: Option<u64>,
    /// Where the piece bytes are stored.
    pub piece_path: Option<String>,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of the last update.
    pub updated_at: i64,
}

impl ProviderDeal {
    /// A newly accepted deal in `state`, before any pipeline step has run.
    pub fn new(params: &DealParams, protocol: Protocol, state: StorageDealStatus) -> Self {
        let cdp = &params.client_deal_proposal;
        Self {
            proposal_cid: cdp.cid(),
            deal_uuid: params.deal_uuid,
            miner: cdp.proposal.provider,
            protocol,
            proposal: cdp.clone(),
            payload_root: Some(params.deal_data_root),
            is_offline: params.is_offline,
            transfer: params.transfer.clone(),
            fast_retrieval: !params.remove_unsealed_copy,
            remove_unsealed: params.remove_unsealed_copy,
            skip_ipni: params.skip_ipni_announce,
            state,
            message: String::new(),
            add_funds_cid: None,
            publish_cid: None,
            publish_index: None,
            deal_id: None,
            sector: None,
            sector_offset: None,
            piece_path: None,
            created_at: 0,
            updated_at: 0,
        }
    }
}

/// A deal as the client tracks it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientDeal {
    /// The signed proposal's CID.
    pub proposal_cid: Cid,
    /// Boost UUID (random for 1.1 deals).
    pub deal_uuid: DealUuid,
    /// The provider's libp2p peer id.
    pub provider_peer: String,
    /// The protocol the deal was made on.
    pub protocol: Protocol,
    /// The signed proposal.
    pub proposal: ClientDealProposal,
    /// The payload root.
    pub payload_root: Option<Cid>,
    /// Whether the deal is offline.
    pub is_offline: bool,
    /// Last known provider state.
    pub state: StorageDealStatus,
    /// Last known Boost checkpoint name.
    pub checkpoint: String,
    /// Last message from the provider.
    pub message: String,
    /// On-chain deal id once published.
    pub deal_id: Option<DealId>,
    /// Publish message once known.
    pub publish_cid: Option<Cid>,
    /// Unix seconds of creation.
    pub created_at: i64,
    /// Unix seconds of the last update.
    pub updated_at: i64,
}

/// The SQLite deal store. Cheap to clone.
#[derive(Clone)]
pub struct SqliteDealStore {
    db: Db,
}

/// Unix seconds, for created/updated timestamps.
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn parse_cid(s: Option<String>) -> Result<Option<Cid>, StoreError> {
    s.map(|s| Cid::from_str(&s).map_err(|e| StoreError::Corrupt(format!("cid {s}: {e}"))))
        .transpose()
}

/// Where deals and asks are kept, provider and client side. [`SqliteDealStore`] keeps them
/// in one SQLite file; a shared database for several provider instances implements the same
/// trait. Every write is durable when the call returns, so state can be acknowledged.
#[async_trait::async_trait]
pub trait DealStore: Send + Sync {
    /// Inserts a new provider deal; fails with [`StoreError::Duplicate`] if its proposal CID
    /// or UUID is already known. The check and the insert are atomic: of two concurrent
    /// inserts of one deal, exactly one succeeds.
    async fn insert_provider_deal(&self, deal: ProviderDeal) -> Result<(), StoreError>;
    /// Writes every mutable field of `deal` (state, message, message CIDs, deal id, sector,
    /// piece path).
    async fn update_provider_deal(&self, deal: &ProviderDeal) -> Result<(), StoreError>;
    /// A provider deal by signed proposal CID.
    async fn provider_deal(&self, proposal_cid: &Cid) -> Result<Option<ProviderDeal>, StoreError>;
    /// A provider deal by UUID.
    async fn provider_deal_by_uuid(
        &self,
        uuid: &DealUuid,
    ) -> Result<Option<ProviderDeal>, StoreError>;
    /// All provider deals, oldest first.
    async fn provider_deals(&self) -> Result<Vec<ProviderDeal>, StoreError>;
    /// Provider deals in non-terminal states, oldest first (what a restart resumes).
    async fn unfinished_provider_deals(&self) -> Result<Vec<ProviderDeal>, StoreError>;
    /// Saves a miner's signed ask.
    async fn save_ask(&self, ask: &SignedStorageAsk) -> Result<(), StoreError>;
    /// A miner's saved ask.
    async fn ask(&self, miner: &Address) -> Result<Option<SignedStorageAsk>, StoreError>;
    /// Inserts or replaces a client deal.
    async fn put_client_deal(&self, d: ClientDeal) -> Result<(), StoreError>;
    /// All client deals, oldest first.
    async fn client_deals(&self) -> Result<Vec<ClientDeal>, StoreError>;
    /// Records a publish message before it is pushed, with the proposals it carries in order.
    async fn record_publish(&self, publish: &PublishRecord) -> Result<(), StoreError>;
    /// Records the CID a recorded publish message was pushed as.
    async fn publish_sent(&self, uuid: uuid::Uuid, cid: Cid) -> Result<(), StoreError>;
    /// Forgets a publish message the node refused (it was never sent).
    async fn forget_publish(&self, uuid: uuid::Uuid) -> Result<(), StoreError>;
    /// The newest recorded publish message carrying `proposal_cid`, with its index there.
    async fn publish_for(
        &self,
        proposal_cid: &Cid,
    ) -> Result<Option<(PublishRecord, u64)>, StoreError>;
    /// A provider deal by miner and on-chain deal id.
    async fn provider_deal_by_deal_id(
        &self,
        miner: &Address,
        id: DealId,
    ) -> Result<Option<ProviderDeal>, StoreError>;
    /// Offers a deal to sealers: records `placement` unless the deal already has one (a
    /// restart must not take a deal back from the sealer holding it).
    async fn queue_for_sealing(&self, placement: &Placement) -> Result<(), StoreError>;
    /// A deal's placement.
    async fn placement(&self, proposal_cid: &Cid) -> Result<Option<Placement>, StoreError>;
    /// Deals of `miner` waiting for a sealer: state `AwaitingPreCommit`, status `Undefine`,
    /// oldest first.
    async fn sealable_deals(&self, miner: &Address) -> Result<Vec<ProviderDeal>, StoreError>;
    /// Applies every change or none: each placement must exist in one of its expected
    /// statuses, else [`StoreError::Conflict`] and nothing is written.
    async fn update_placements(&self, changes: Vec<PlacementChange>) -> Result<(), StoreError>;
    /// A provider deal's timeline, oldest first: every state it entered and every message
    /// it got, each recorded in the same write as the deal row.
    async fn deal_events(&self, proposal_cid: &Cid) -> Result<Vec<DealStateChange>, StoreError>;
    /// Takes the lease of `deal` for `holder` for `ttl` when the lease is free, expired or
    /// already `holder`'s; false when another holder's lease is live. Atomic: of two
    /// instances taking one lease at once, one gets it.
    async fn take_lease(&self, deal: &Cid, holder: &str, ttl: Duration)
    -> Result<bool, StoreError>;
    /// Extends `holder`'s leases of `deals` by `ttl` from now; returns the deals whose
    /// lease `holder` still had (the others were taken over).
    async fn renew_leases(
        &self,
        holder: &str,
        deals: &[Cid],
        ttl: Duration,
    ) -> Result<Vec<Cid>, StoreError>;
    /// Gives `holder`'s lease of `deal` back (nothing when another holder has it).
    async fn release_lease(&self, deal: &Cid, holder: &str) -> Result<(), StoreError>;
    /// Up to `limit` provider deals with work for a driver
    /// ([`lease::needs_driver`](crate::lease::needs_driver)) whose lease is missing or
    /// expired, oldest first: what a takeover scan drives. (A restarted instance resumes
    /// the deals of its own live leases from [`Self::unfinished_provider_deals`].)
    async fn claimable_deals(&self, limit: usize) -> Result<Vec<Cid>, StoreError>;
    /// Provider deals in any of `states`, oldest first.
    async fn provider_deals_in(
        &self,
        states: &[StorageDealStatus],
    ) -> Result<Vec<ProviderDeal>, StoreError> {
        let mut all = self.provider_deals().await?;
        all.retain(|d| states.contains(&d.state));
        Ok(all)
    }
    /// How many provider deals are in each state (states with none left out).
    async fn provider_deal_counts(&self) -> Result<Vec<(StorageDealStatus, u64)>, StoreError> {
        let mut counts = std::collections::BTreeMap::new();
        for d in self.provider_deals().await? {
            *counts.entry(d.state).or_insert(0u64) += 1;
        }
        Ok(counts.into_iter().collect())
    }
}

/// A publish message as recorded before pushing: its idempotency key, what it says and, once
/// pushed, its CID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRecord {
    /// The message's `MsgUuid`.
    pub uuid: uuid::Uuid,
    /// The miner publishing.
    pub miner: Address,
    /// The message (its `uuid` is the record's).
    pub message: crate::chain::Message,
    /// The signed proposal CIDs in the order of the message's params.
    pub proposals: Vec<Cid>,
    /// The CID once pushed.
    pub cid: Option<Cid>,
}

fn placement_row(r: &rusqlite::Row<'_>) -> Result<Placement, StoreError> {
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{what}: {e}"));
    let pcid: String = r.get(0)?;
    let miner: String = r.get(1)?;
    let status: String = r.get(3)?;
    Ok(Placement {
        proposal_cid: Cid::from_str(&pcid).map_err(|e| corrupt("proposal_cid", &e))?,
        miner: miner.parse().map_err(|e| corrupt("miner", &e))?,
        deal_id: DealId(r.get::<_, i64>(2)? as u64),
        status: status.parse().map_err(|e| corrupt("piece_status", &e))?,
        sector: r.get::<_, Option<i64>>(4)?.map(|s| SectorNumber(s as u64)),
        offset: r.get::<_, Option<i64>>(5)?.map(|o| o as u64),
    })
}

const PLACEMENT_COLS: &str = "proposal_cid, miner, deal_id, piece_status, sector, sector_offset";

fn write_placement(c: &Connection, p: &Placement, insert: bool) -> Result<usize, StoreError> {
    let sql = if insert {
        "INSERT OR IGNORE INTO deal_placements (proposal_cid, miner, deal_id, piece_status, sector, sector_offset, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
    } else {
        "UPDATE deal_placements SET miner = ?2, deal_id = ?3, piece_status = ?4, sector = ?5,
            sector_offset = ?6, updated_at = ?7 WHERE proposal_cid = ?1"
    };
    Ok(c.execute(
        sql,
        params![
            p.proposal_cid.to_string(),
            p.miner.to_string(),
            p.deal_id.0 as i64,
            p.status.as_str(),
            p.sector.map(|s| s.0 as i64),
            p.offset.map(|o| o as i64),
            unix_now(),
        ],
    )?)
}

impl SqliteDealStore {
    const PROVIDER_COLS: &'static str = "proposal_cid, deal_uuid, miner, protocol, proposal, payload_root,
        is_offline, transfer, fast_retrieval, remove_unsealed, skip_ipni, state, message, add_funds_cid,
        publish_cid, publish_index, deal_id, sector, sector_offset, piece_path, created_at, updated_at";

    /// Opens (creating and migrating) the database at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::init(market_core::db::open_migrated(path.as_ref(), MIGRATIONS)?)
    }

    /// An in-memory database (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(market_core::db::open_in_memory_migrated(MIGRATIONS)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "foreign_keys", "ON")?;
        Ok(Self {
            db: Db::named("deals", conn),
        })
    }

    /// Runs `f` on the connection in a blocking task.
    async fn with<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.db.call(f).await
    }

    fn provider_row(r: &rusqlite::Row<'_>) -> Result<ProviderDeal, StoreError> {
        let corrupt =
            |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{what}: {e}"));
        let pcid: String = r.get(0)?;
        let uuid: String = r.get(1)?;
        let miner: String = r.get(2)?;
        let proposal: Vec<u8> = r.get(4)?;
        let transfer: Vec<u8> = r.get(7)?;
        let state: i64 = r.get(11)?;
        Ok(ProviderDeal {
            proposal_cid: Cid::from_str(&pcid).map_err(|e| corrupt("proposal_cid", &e))?,
            deal_uuid: uuid.parse().map_err(|e| corrupt("deal_uuid", &e))?,
            miner: miner.parse().map_err(|e| corrupt("miner", &e))?,
            protocol: r
                .get::<_, String>(3)?
                .parse()
                .map_err(|e| corrupt("protocol", &e))?,
            proposal: cbor::from_slice(&proposal, 1 << 20).map_err(|e| corrupt("proposal", &e))?,
            payload_root: parse_cid(r.get(5)?)?,
            is_offline: r.get(6)?,
            transfer: cbor::from_slice(&transfer, 1 << 20).map_err(|e| corrupt("transfer", &e))?,
            fast_retrieval: r.get(8)?,
            remove_unsealed: r.get(9)?,
            skip_ipni: r.get(10)?,
            state: StorageDealStatus::from_code(state as u64)
                .ok_or_else(|| corrupt("state", &state))?,
            message: r.get(12)?,
            add_funds_cid: parse_cid(r.get(13)?)?,
            publish_cid: parse_cid(r.get(14)?)?,
            publish_index: r.get::<_, Option<i64>>(15)?.map(|i| i as u64),
            deal_id: r.get::<_, Option<i64>>(16)?.map(|i| DealId(i as u64)),
            sector: r.get::<_, Option<i64>>(17)?.map(|i| SectorNumber(i as u64)),
            sector_offset: r.get::<_, Option<i64>>(18)?.map(|i| i as u64),
            piece_path: r.get(19)?,
            created_at: r.get(20)?,
            updated_at: r.get(21)?,
        })
    }

    fn query_provider(
        c: &Connection,
        filter: &str,
        p: impl rusqlite::Params,
    ) -> Result<Vec<ProviderDeal>, StoreError> {
        let sql = format!(
            "SELECT {} FROM provider_deals {filter} ORDER BY created_at, rowid",
            SqliteDealStore::PROVIDER_COLS
        );
        let mut stmt = c.prepare(&sql)?;
        let mut rows = stmt.query(p)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(Self::provider_row(r)?);
        }
        Ok(out)
    }
}

#[async_trait::async_trait]
impl DealStore for SqliteDealStore {
    async fn insert_provider_deal(&self, deal: ProviderDeal) -> Result<(), StoreError> {
        // Group commit: concurrent proposals share one transaction and one fsync; each is
        // on disk before its acceptance goes out.
        self.db.write(move |c| {
            let exists: Option<String> = c
                .query_row(
                    "SELECT proposal_cid FROM provider_deals WHERE proposal_cid = ?1 OR deal_uuid = ?2",
                    params![deal.proposal_cid.to_string(), deal.deal_uuid.to_string()],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(existing) = exists {
                return Err(StoreError::Duplicate(existing));
            }
            c.execute(
                "INSERT INTO provider_deals (proposal_cid, deal_uuid, miner, protocol, proposal, onchain_cid,
                    payload_root, is_offline, transfer, fast_retrieval, remove_unsealed, skip_ipni, state,
                    message, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15)",
                params![
                    deal.proposal_cid.to_string(),
                    deal.deal_uuid.to_string(),
                    deal.miner.to_string(),
                    deal.protocol.id(),
                    cbor::to_vec(&deal.proposal),
                    deal.proposal.proposal.cid().to_string(),
                    deal.payload_root.map(|c| c.to_string()),
                    deal.is_offline,
                    cbor::to_vec(&deal.transfer),
                    deal.fast_retrieval,
                    deal.remove_unsealed,
                    deal.skip_ipni,
                    deal.state.code() as i64,
                    deal.message,
                    unix_now(),
                ],
            )?;
            record_event(
                c,
                &deal.proposal_cid.to_string(),
                deal.state,
                &deal.message,
            )?;
            Ok(())
        })
        .await
    }

    async fn update_provider_deal(&self, deal: &ProviderDeal) -> Result<(), StoreError> {
        let d = deal.clone();
        // One transaction: the row and its timeline entry land together.
        self.db.write(move |c| {
            let key = d.proposal_cid.to_string();
            let before: Option<(i64, String)> = c
                .query_row(
                    "SELECT state, message FROM provider_deals WHERE proposal_cid = ?1",
                    [&key],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let changed = before
                .is_some_and(|(state, message)| state != d.state.code() as i64 || message != d.message);
            if changed {
                record_event(c, &key, d.state, &d.message)?;
            }
            c.execute(
                "UPDATE provider_deals SET state = ?2, message = ?3, add_funds_cid = ?4, publish_cid = ?5,
                    publish_index = ?6, deal_id = ?7, sector = ?8, sector_offset = ?9, piece_path = ?10,
                    updated_at = ?11
                 WHERE proposal_cid = ?1",
                params![
                    d.proposal_cid.to_string(),
                    d.state.code() as i64,
                    d.message,
                    d.add_funds_cid.map(|c| c.to_string()),
                    d.publish_cid.map(|c| c.to_string()),
                    d.publish_index.map(|i| i as i64),
                    d.deal_id.map(|i| i.0 as i64),
                    d.sector.map(|s| s.0 as i64),
                    d.sector_offset.map(|o| o as i64),
                    d.piece_path,
                    unix_now(),
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// A provider deal by signed proposal CID.
    async fn provider_deal(&self, proposal_cid: &Cid) -> Result<Option<ProviderDeal>, StoreError> {
        let key = proposal_cid.to_string();
        self.with(move |c| {
            Ok(SqliteDealStore::query_provider(c, "WHERE proposal_cid = ?1", [key])?.pop())
        })
        .await
    }

    /// A provider deal by UUID.
    async fn provider_deal_by_uuid(
        &self,
        uuid: &DealUuid,
    ) -> Result<Option<ProviderDeal>, StoreError> {
        let key = uuid.to_string();
        self.with(move |c| {
            Ok(SqliteDealStore::query_provider(c, "WHERE deal_uuid = ?1", [key])?.pop())
        })
        .await
    }

    /// All provider deals, oldest first.
    async fn provider_deals(&self) -> Result<Vec<ProviderDeal>, StoreError> {
        self.with(|c| SqliteDealStore::query_provider(c, "", []))
            .await
    }

    /// Provider deals in non-terminal states, oldest first (what a restart resumes).
    async fn unfinished_provider_deals(&self) -> Result<Vec<ProviderDeal>, StoreError> {
        // Every status code the state machine calls terminal.
        let terminal: Vec<String> = (0..=u64::from(u8::MAX))
            .map_while(StorageDealStatus::from_code)
            .filter(|s| s.is_terminal())
            .map(|s| s.code().to_string())
            .collect();
        let filter = format!("WHERE state NOT IN ({})", terminal.join(","));
        self.with(move |c| SqliteDealStore::query_provider(c, &filter, []))
            .await
    }

    /// Saves a miner's signed ask.
    async fn save_ask(&self, ask: &SignedStorageAsk) -> Result<(), StoreError> {
        let miner = ask
            .ask
            .as_ref()
            .map(|a| a.miner.to_string())
            .unwrap_or_default();
        let bytes = cbor::to_vec(ask);
        self.with(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO asks (miner, ask) VALUES (?1, ?2)",
                params![miner, bytes],
            )?;
            Ok(())
        })
        .await
    }

    async fn record_publish(&self, publish: &PublishRecord) -> Result<(), StoreError> {
        let p = publish.clone();
        let message = cbor::to_vec(&p.message);
        self.with(move |c| {
            let tx = c.transaction()?;
            tx.execute(
                "INSERT INTO publish_messages (uuid, miner, message, cid, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![p.uuid.to_string(), p.miner.to_string(), message, p.cid.map(|c| c.to_string()), unix_now()],
            )?;
            for (i, proposal) in p.proposals.iter().enumerate() {
                tx.execute(
                    "INSERT INTO publish_message_deals (proposal_cid, uuid, idx) VALUES (?1, ?2, ?3)",
                    params![proposal.to_string(), p.uuid.to_string(), i as i64],
                )?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn publish_sent(&self, uuid: uuid::Uuid, cid: Cid) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "UPDATE publish_messages SET cid = ?2 WHERE uuid = ?1",
                params![uuid.to_string(), cid.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    async fn forget_publish(&self, uuid: uuid::Uuid) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "DELETE FROM publish_messages WHERE uuid = ?1",
                params![uuid.to_string()],
            )?;
            Ok(())
        })
        .await
    }

    async fn publish_for(
        &self,
        proposal_cid: &Cid,
    ) -> Result<Option<(PublishRecord, u64)>, StoreError> {
        let pcid = proposal_cid.to_string();
        self.with(move |c| {
            use rusqlite::OptionalExtension;
            let corrupt =
                |e: &dyn std::fmt::Display| StoreError::Corrupt(format!("publish record: {e}"));
            let row = c
                .query_row(
                    "SELECT m.uuid, m.miner, m.message, m.cid, d.idx FROM publish_message_deals d
                     JOIN publish_messages m ON m.uuid = d.uuid
                     WHERE d.proposal_cid = ?1 ORDER BY m.created_at DESC, m.rowid DESC LIMIT 1",
                    [pcid],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Vec<u8>>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()?;
            let Some((uuid_s, miner, message, cid, idx)) = row else {
                return Ok(None);
            };
            let mut stmt = c.prepare(
                "SELECT proposal_cid FROM publish_message_deals WHERE uuid = ?1 ORDER BY idx",
            )?;
            let proposals = stmt
                .query_map([&uuid_s], |r| r.get::<_, String>(0))?
                .map(|p| {
                    p.map_err(StoreError::from)
                        .and_then(|p| Cid::from_str(&p).map_err(|e| corrupt(&e)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let record = PublishRecord {
                uuid: uuid_s.parse().map_err(|e| corrupt(&e))?,
                miner: miner.parse().map_err(|e| corrupt(&e))?,
                message: cbor::from_slice(&message, 1 << 20).map_err(|e| corrupt(&e))?,
                proposals,
                cid: parse_cid(cid)?,
            };
            Ok(Some((record, idx.max(0) as u64)))
        })
        .await
    }

    /// A miner's saved ask.
    async fn provider_deal_by_deal_id(
        &self,
        miner: &Address,
        id: DealId,
    ) -> Result<Option<ProviderDeal>, StoreError> {
        let miner = miner.to_string();
        self.with(move |c| {
            Ok(SqliteDealStore::query_provider(
                c,
                "WHERE miner = ?1 AND deal_id = ?2",
                params![miner, id.0 as i64],
            )?
            .pop())
        })
        .await
    }

    async fn queue_for_sealing(&self, placement: &Placement) -> Result<(), StoreError> {
        let p = placement.clone();
        self.with(move |c| write_placement(c, &p, true).map(|_| ()))
            .await
    }

    async fn placement(&self, proposal_cid: &Cid) -> Result<Option<Placement>, StoreError> {
        let key = proposal_cid.to_string();
        self.with(move |c| {
            let sql =
                format!("SELECT {PLACEMENT_COLS} FROM deal_placements WHERE proposal_cid = ?1");
            let mut stmt = c.prepare(&sql)?;
            let mut rows = stmt.query([key])?;
            rows.next()?.map(placement_row).transpose()
        })
        .await
    }

    async fn sealable_deals(&self, miner: &Address) -> Result<Vec<ProviderDeal>, StoreError> {
        let miner = miner.to_string();
        let waiting = StorageDealStatus::AwaitingPreCommit.code() as i64;
        self.with(move |c| {
            SqliteDealStore::query_provider(
                c,
                "WHERE miner = ?1 AND state = ?2 AND proposal_cid IN
                    (SELECT proposal_cid FROM deal_placements WHERE piece_status = 'Undefine')",
                params![miner, waiting],
            )
        })
        .await
    }

    async fn deal_events(&self, proposal_cid: &Cid) -> Result<Vec<DealStateChange>, StoreError> {
        let key = proposal_cid.to_string();
        self.with(move |c| {
            let mut q = c.prepare(
                "SELECT at_ms, state, message FROM deal_events WHERE proposal_cid = ?1 ORDER BY seq",
            )?;
            let rows = q
                .query_map([key], |r| {
                    Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, String>(2)?))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(at_ms, code, message)| {
                    let state = StorageDealStatus::from_code(code as u64)
                        .ok_or_else(|| StoreError::Corrupt(format!("deal event state {code}")))?;
                    Ok(DealStateChange {
                        at_ms,
                        state,
                        message,
                    })
                })
                .collect()
        })
        .await
    }

    async fn provider_deals_in(
        &self,
        states: &[StorageDealStatus],
    ) -> Result<Vec<ProviderDeal>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let codes: Vec<String> = states.iter().map(|s| s.code().to_string()).collect();
        let filter = format!("WHERE state IN ({})", codes.join(","));
        self.with(move |c| SqliteDealStore::query_provider(c, &filter, []))
            .await
    }

    async fn provider_deal_counts(&self) -> Result<Vec<(StorageDealStatus, u64)>, StoreError> {
        self.with(|c| {
            let mut q = c.prepare("SELECT state, COUNT(*) FROM provider_deals GROUP BY state")?;
            let rows = q
                .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(code, n)| {
                    let state = StorageDealStatus::from_code(code as u64)
                        .ok_or_else(|| StoreError::Corrupt(format!("deal state {code}")))?;
                    Ok((state, n as u64))
                })
                .collect()
        })
        .await
    }

    async fn update_placements(&self, changes: Vec<PlacementChange>) -> Result<(), StoreError> {
        self.with(move |c| {
            let tx = c.transaction()?;
            for change in &changes {
                let key = change.new.proposal_cid.to_string();
                let current: Option<String> = tx
                    .query_row(
                        "SELECT piece_status FROM deal_placements WHERE proposal_cid = ?1",
                        [&key],
                        |r| r.get(0),
                    )
                    .optional()?;
                let current: Option<PieceStatus> = current
                    .map(|c| {
                        c.parse()
                            .map_err(|e| StoreError::Corrupt(format!("piece_status: {e}")))
                    })
                    .transpose()?;
                change.check(current).map_err(StoreError::Conflict)?;
                write_placement(&tx, &change.new, false)?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn take_lease(
        &self,
        deal: &Cid,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let (key, holder) = (deal.to_string(), holder.to_string());
        self.with(move |c| {
            // SQLite is shared by processes of one machine only, so their clock is one.
            let now = unix_now_ms();
            let taken = c.execute(
                "INSERT INTO deal_leases (proposal_cid, holder, expires_ms) VALUES (?1, ?2, ?3)
                 ON CONFLICT(proposal_cid) DO UPDATE SET holder = excluded.holder,
                    expires_ms = excluded.expires_ms
                 WHERE deal_leases.holder = excluded.holder OR deal_leases.expires_ms < ?4",
                params![key, holder, now + ttl.as_millis() as i64, now],
            )?;
            Ok(taken == 1)
        })
        .await
    }

    async fn renew_leases(
        &self,
        holder: &str,
        deals: &[Cid],
        ttl: Duration,
    ) -> Result<Vec<Cid>, StoreError> {
        let (holder, deals) = (holder.to_string(), deals.to_vec());
        self.with(move |c| {
            let until = unix_now_ms() + ttl.as_millis() as i64;
            let tx = c.transaction()?;
            let mut held = Vec::new();
            {
                let mut q = tx.prepare_cached(
                    "UPDATE deal_leases SET expires_ms = ?3 WHERE proposal_cid = ?1 AND holder = ?2",
                )?;
                for d in deals {
                    if q.execute(params![d.to_string(), holder, until])? == 1 {
                        held.push(d);
                    }
                }
            }
            tx.commit()?;
            Ok(held)
        })
        .await
    }

    async fn release_lease(&self, deal: &Cid, holder: &str) -> Result<(), StoreError> {
        let (key, holder) = (deal.to_string(), holder.to_string());
        self.with(move |c| {
            c.execute(
                "DELETE FROM deal_leases WHERE proposal_cid = ?1 AND holder = ?2",
                params![key, holder],
            )?;
            Ok(())
        })
        .await
    }

    async fn claimable_deals(&self, limit: usize) -> Result<Vec<Cid>, StoreError> {
        let idle: Vec<String> = crate::lease::idle_states()
            .iter()
            .map(|s| s.code().to_string())
            .collect();
        let transferring = StorageDealStatus::Transferring.code() as i64;
        self.with(move |c| {
            let sql = format!(
                "SELECT d.proposal_cid FROM provider_deals d
                 LEFT JOIN deal_leases l ON l.proposal_cid = d.proposal_cid
                 WHERE d.state NOT IN ({}) AND NOT (d.is_offline AND d.state = ?1)
                   AND (l.proposal_cid IS NULL OR l.expires_ms < ?2)
                 ORDER BY d.created_at, d.rowid LIMIT ?3",
                idle.join(",")
            );
            let mut q = c.prepare(&sql)?;
            let rows = q
                .query_map(params![transferring, unix_now_ms(), limit as i64], |r| {
                    r.get::<_, String>(0)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|s| {
                    Cid::from_str(&s).map_err(|e| StoreError::Corrupt(format!("cid {s}: {e}")))
                })
                .collect()
        })
        .await
    }

    async fn ask(&self, miner: &Address) -> Result<Option<SignedStorageAsk>, StoreError> {
        let key = miner.to_string();
        self.with(move |c| {
            let b: Option<Vec<u8>> = c
                .query_row("SELECT ask FROM asks WHERE miner = ?1", [key], |r| r.get(0))
                .optional()?;
            b.map(|b| {
                cbor::from_slice(&b, 1 << 16).map_err(|e| StoreError::Corrupt(format!("ask: {e}")))
            })
            .transpose()
        })
        .await
    }

    /// Inserts or replaces a client deal.
    async fn put_client_deal(&self, d: ClientDeal) -> Result<(), StoreError> {
        self.with(move |c| {
            c.execute(
                "INSERT INTO client_deals (proposal_cid, deal_uuid, provider_peer, protocol, proposal, payload_root,
                    is_offline, state, checkpoint, message, deal_id, publish_cid, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
                 ON CONFLICT(proposal_cid) DO UPDATE SET state = ?8, checkpoint = ?9, message = ?10,
                    deal_id = ?11, publish_cid = ?12, updated_at = ?14",
                params![
                    d.proposal_cid.to_string(),
                    d.deal_uuid.to_string(),
                    d.provider_peer,
                    d.protocol.id(),
                    cbor::to_vec(&d.proposal),
                    d.payload_root.map(|c| c.to_string()),
                    d.is_offline,
                    d.state.code() as i64,
                    d.checkpoint,
                    d.message,
                    d.deal_id.map(|i| i.0 as i64),
                    d.publish_cid.map(|c| c.to_string()),
                    d.created_at,
                    unix_now(),
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// All client deals, oldest first.
    async fn client_deals(&self) -> Result<Vec<ClientDeal>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(
                "SELECT proposal_cid, deal_uuid, provider_peer, protocol, proposal, payload_root, is_offline,
                    state, checkpoint, message, deal_id, publish_cid, created_at, updated_at
                 FROM client_deals ORDER BY created_at, rowid",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let corrupt = |w: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("{w}: {e}"));
                let pcid: String = r.get(0)?;
                let uuid: String = r.get(1)?;
                let proposal: Vec<u8> = r.get(4)?;
                let state: i64 = r.get(7)?;
                out.push(ClientDeal {
                    proposal_cid: Cid::from_str(&pcid).map_err(|e| corrupt("proposal_cid", &e))?,
                    deal_uuid: uuid.parse().map_err(|e| corrupt("deal_uuid", &e))?,
                    provider_peer: r.get(2)?,
                    protocol: r.get::<_, String>(3)?.parse().map_err(|e| corrupt("protocol", &e))?,
                    proposal: cbor::from_slice(&proposal, 1 << 20).map_err(|e| corrupt("proposal", &e))?,
                    payload_root: parse_cid(r.get(5)?)?,
                    is_offline: r.get(6)?,
                    state: StorageDealStatus::from_code(state as u64).ok_or_else(|| corrupt("state", &state))?,
                    checkpoint: r.get(8)?,
                    message: r.get(9)?,
                    deal_id: r.get::<_, Option<i64>>(10)?.map(|i| DealId(i as u64)),
                    publish_cid: parse_cid(r.get(11)?)?,
                    created_at: r.get(12)?,
                    updated_at: r.get(13)?,
                });
            }
            Ok(out)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.db");
        drop(SqliteDealStore::open(&path).unwrap());
        drop(SqliteDealStore::open(&path).unwrap());
        let c = Connection::open(&path).unwrap();
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }
}
