//! [`DealStore`] on Postgres: the same tables as the SQLite store, in Postgres types.

use std::str::FromStr;
use std::time::Duration;

use market_core::Cid;
use market_core::cbor;
use storage_market::message::SignedStorageAsk;
use storage_market::placement::{PieceStatus, Placement, PlacementChange};
use storage_market::state::StorageDealStatus;
use storage_market::store::{
    ClientDeal, DealStateChange, DealStore, ProviderDeal, PublishRecord, StoreError,
};
use storage_market::types::{Address, DealId, DealUuid, SectorNumber};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use crate::db::{Migration, PgDb, PgError, unix_now};

const COMPONENT: &str = "deals";

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        sql: "CREATE TABLE provider_deals (
            seq             BIGSERIAL UNIQUE,
            proposal_cid    TEXT PRIMARY KEY,
            deal_uuid       TEXT NOT NULL UNIQUE,
            miner           TEXT NOT NULL,
            protocol        TEXT NOT NULL,
            proposal        BYTEA NOT NULL,
            onchain_cid     TEXT NOT NULL,
            payload_root    TEXT,
            is_offline      BOOLEAN NOT NULL,
            transfer        BYTEA NOT NULL,
            fast_retrieval  BOOLEAN NOT NULL,
            remove_unsealed BOOLEAN NOT NULL,
            skip_ipni       BOOLEAN NOT NULL,
            state           BIGINT NOT NULL,
            message         TEXT NOT NULL DEFAULT '',
            add_funds_cid   TEXT,
            publish_cid     TEXT,
            publish_index   BIGINT,
            deal_id         BIGINT,
            sector          BIGINT,
            sector_offset   BIGINT,
            piece_path      TEXT,
            created_at      BIGINT NOT NULL,
            updated_at      BIGINT NOT NULL
        );
        CREATE INDEX provider_deals_state ON provider_deals(state);
        CREATE INDEX provider_deals_deal_id ON provider_deals(miner, deal_id);
        CREATE TABLE asks (
            miner TEXT PRIMARY KEY,
            ask   BYTEA NOT NULL
        );
        CREATE TABLE client_deals (
            seq            BIGSERIAL UNIQUE,
            proposal_cid   TEXT PRIMARY KEY,
            deal_uuid      TEXT NOT NULL UNIQUE,
            provider_peer  TEXT NOT NULL,
            protocol       TEXT NOT NULL,
            proposal       BYTEA NOT NULL,
            payload_root   TEXT,
            is_offline     BOOLEAN NOT NULL,
            state          BIGINT NOT NULL,
            checkpoint     TEXT NOT NULL DEFAULT '',
            message        TEXT NOT NULL DEFAULT '',
            deal_id        BIGINT,
            publish_cid    TEXT,
            created_at     BIGINT NOT NULL,
            updated_at     BIGINT NOT NULL
        );
        CREATE TABLE publish_messages (
            seq        BIGSERIAL UNIQUE,
            uuid       TEXT PRIMARY KEY,
            miner      TEXT NOT NULL,
            message    BYTEA NOT NULL,
            cid        TEXT,
            created_at BIGINT NOT NULL
        );
        CREATE TABLE publish_message_deals (
            proposal_cid TEXT NOT NULL,
            uuid         TEXT NOT NULL REFERENCES publish_messages(uuid) ON DELETE CASCADE,
            idx          BIGINT NOT NULL,
            PRIMARY KEY (proposal_cid, uuid)
        );
        CREATE TABLE deal_placements (
            proposal_cid  TEXT PRIMARY KEY REFERENCES provider_deals(proposal_cid),
            miner         TEXT NOT NULL,
            deal_id       BIGINT NOT NULL,
            piece_status  TEXT NOT NULL,
            sector        BIGINT,
            sector_offset BIGINT,
            updated_at    BIGINT NOT NULL
        );
        CREATE UNIQUE INDEX deal_placements_deal ON deal_placements(miner, deal_id);
        CREATE TABLE deal_events (
            seq          BIGSERIAL PRIMARY KEY,
            proposal_cid TEXT NOT NULL,
            at_ms        BIGINT NOT NULL,
            state        BIGINT NOT NULL,
            message      TEXT NOT NULL
        );
        CREATE INDEX deal_events_by_deal ON deal_events(proposal_cid, seq);",
    },
    // Which instance drives a deal (storage_market::lease); expiry on the server's clock,
    // so the instances' clocks need not agree.
    Migration {
        version: 2,
        sql: "CREATE TABLE deal_leases (
            proposal_cid TEXT PRIMARY KEY,
            holder       TEXT NOT NULL,
            expires_at   TIMESTAMPTZ NOT NULL
        );
        CREATE INDEX deal_leases_holder ON deal_leases(holder);",
    },
];

const PROVIDER_COLS: &str = "proposal_cid, deal_uuid, miner, protocol, proposal, payload_root,
    is_offline, transfer, fast_retrieval, remove_unsealed, skip_ipni, state, message,
    add_funds_cid, publish_cid, publish_index, deal_id, sector, sector_offset, piece_path,
    created_at, updated_at";

const PLACEMENT_COLS: &str = "proposal_cid, miner, deal_id, piece_status, sector, sector_offset";

fn db(e: impl Into<PgError>) -> StoreError {
    StoreError::Database(Box::new(e.into()))
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn parse_cid(s: Option<String>) -> Result<Option<Cid>, StoreError> {
    s.map(|s| Cid::from_str(&s).map_err(|e| corrupt("cid", e)))
        .transpose()
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The proposal CIDs in the first column of `rows`.
fn cid_column(rows: &[Row]) -> Result<Vec<Cid>, StoreError> {
    rows.iter()
        .map(|r| {
            let s: String = r.try_get(0).map_err(db)?;
            Cid::from_str(&s).map_err(|e| corrupt("proposal_cid", e))
        })
        .collect()
}

/// A lease's time to live in whole milliseconds, as SQL multiplies an interval by it.
fn millis(ttl: Duration) -> f64 {
    ttl.as_millis() as f64
}

fn state_of(code: i64) -> Result<StorageDealStatus, StoreError> {
    StorageDealStatus::from_code(code as u64).ok_or_else(|| corrupt("state", code))
}

fn provider_row(r: &Row) -> Result<ProviderDeal, StoreError> {
    let g = |i: usize| -> Result<String, StoreError> { r.try_get(i).map_err(db) };
    Ok(ProviderDeal {
        proposal_cid: Cid::from_str(&g(0)?).map_err(|e| corrupt("proposal_cid", e))?,
        deal_uuid: g(1)?
            .parse::<DealUuid>()
            .map_err(|e| corrupt("deal_uuid", e))?,
        miner: g(2)?.parse().map_err(|e| corrupt("miner", e))?,
        protocol: g(3)?.parse().map_err(|e| corrupt("protocol", e))?,
        proposal: cbor::from_slice(&r.try_get::<_, Vec<u8>>(4).map_err(db)?, 1 << 20)
            .map_err(|e| corrupt("proposal", e))?,
        payload_root: parse_cid(r.try_get(5).map_err(db)?)?,
        is_offline: r.try_get(6).map_err(db)?,
        transfer: cbor::from_slice(&r.try_get::<_, Vec<u8>>(7).map_err(db)?, 1 << 20)
            .map_err(|e| corrupt("transfer", e))?,
        fast_retrieval: r.try_get(8).map_err(db)?,
        remove_unsealed: r.try_get(9).map_err(db)?,
        skip_ipni: r.try_get(10).map_err(db)?,
        state: state_of(r.try_get(11).map_err(db)?)?,
        message: r.try_get(12).map_err(db)?,
        add_funds_cid: parse_cid(r.try_get(13).map_err(db)?)?,
        publish_cid: parse_cid(r.try_get(14).map_err(db)?)?,
        publish_index: r
            .try_get::<_, Option<i64>>(15)
            .map_err(db)?
            .map(|i| i as u64),
        deal_id: r
            .try_get::<_, Option<i64>>(16)
            .map_err(db)?
            .map(|i| DealId(i as u64)),
        sector: r
            .try_get::<_, Option<i64>>(17)
            .map_err(db)?
            .map(|i| SectorNumber(i as u64)),
        sector_offset: r
            .try_get::<_, Option<i64>>(18)
            .map_err(db)?
            .map(|i| i as u64),
        piece_path: r.try_get(19).map_err(db)?,
        created_at: r.try_get(20).map_err(db)?,
        updated_at: r.try_get(21).map_err(db)?,
    })
}

fn placement_row(r: &Row) -> Result<Placement, StoreError> {
    let pcid: String = r.try_get(0).map_err(db)?;
    let miner: String = r.try_get(1).map_err(db)?;
    let status: String = r.try_get(3).map_err(db)?;
    Ok(Placement {
        proposal_cid: Cid::from_str(&pcid).map_err(|e| corrupt("proposal_cid", e))?,
        miner: miner.parse().map_err(|e| corrupt("miner", e))?,
        deal_id: DealId(r.try_get::<_, i64>(2).map_err(db)? as u64),
        status: status.parse().map_err(|e| corrupt("piece_status", e))?,
        sector: r
            .try_get::<_, Option<i64>>(4)
            .map_err(db)?
            .map(|s| SectorNumber(s as u64)),
        offset: r
            .try_get::<_, Option<i64>>(5)
            .map_err(db)?
            .map(|o| o as u64),
    })
}

/// Appends a timeline entry in the caller's transaction.
async fn record_event(
    tx: &deadpool_postgres::Transaction<'_>,
    proposal_cid: &str,
    state: StorageDealStatus,
    message: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO deal_events (proposal_cid, at_ms, state, message) VALUES ($1, $2, $3, $4)",
        &[
            &proposal_cid,
            &unix_now_ms(),
            &(state.code() as i64),
            &message,
        ],
    )
    .await
    .map_err(db)?;
    Ok(())
}

/// Deals, asks, client deals, publish records and placements in Postgres. Cheap to clone;
/// several provider instances may share one.
#[derive(Debug, Clone)]
pub struct PgDealStore {
    db: PgDb,
}

impl PgDealStore {
    /// Migrates `db` (once, whoever starts first) and returns the store.
    pub async fn open(db: PgDb) -> Result<Self, PgError> {
        db.migrate(COMPONENT, MIGRATIONS).await?;
        Ok(Self { db })
    }

    async fn query_provider(
        &self,
        filter: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<ProviderDeal>, StoreError> {
        let sql = format!("SELECT {PROVIDER_COLS} FROM provider_deals {filter} ORDER BY seq");
        let c = self.db.conn().await.map_err(db)?;
        // Prepared once per connection: later calls are one round trip.
        let stmt = c.prepare_cached(&sql).await.map_err(db)?;
        c.query(&stmt, params)
            .await
            .map_err(db)?
            .iter()
            .map(provider_row)
            .collect()
    }
}

#[async_trait::async_trait]
impl DealStore for PgDealStore {
    async fn insert_provider_deal(&self, deal: ProviderDeal) -> Result<(), StoreError> {
        let mut c = self.db.conn().await.map_err(db)?;
        let tx = c.transaction().await.map_err(db)?;
        let key = deal.proposal_cid.to_string();
        let now = unix_now();
        // Either unique key (proposal CID, UUID) taken: no row, a duplicate. Of two concurrent
        // inserts the second waits on the first's uncommitted row, then inserts nothing.
        let insert = tx
            .prepare_cached(
                "INSERT INTO provider_deals (proposal_cid, deal_uuid, miner, protocol, proposal,
                    onchain_cid, payload_root, is_offline, transfer, fast_retrieval,
                    remove_unsealed, skip_ipni, state, message, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15)
                 ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(db)?;
        let inserted = tx
            .execute(
                &insert,
                &[
                    &key,
                    &deal.deal_uuid.to_string(),
                    &deal.miner.to_string(),
                    &deal.protocol.id(),
                    &cbor::to_vec(&deal.proposal),
                    &deal.proposal.proposal.cid().to_string(),
                    &deal.payload_root.map(|c| c.to_string()),
                    &deal.is_offline,
                    &cbor::to_vec(&deal.transfer),
                    &deal.fast_retrieval,
                    &deal.remove_unsealed,
                    &deal.skip_ipni,
                    &(deal.state.code() as i64),
                    &deal.message,
                    &now,
                ],
            )
            .await
            .map_err(db)?;
        if inserted == 0 {
            return Err(StoreError::Duplicate(key));
        }
        record_event(&tx, &key, deal.state, &deal.message).await?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn update_provider_deal(&self, d: &ProviderDeal) -> Result<(), StoreError> {
        let mut c = self.db.conn().await.map_err(db)?;
        let tx = c.transaction().await.map_err(db)?;
        let key = d.proposal_cid.to_string();
        let select = tx
            .prepare_cached(
                "SELECT state, message FROM provider_deals WHERE proposal_cid = $1 FOR UPDATE",
            )
            .await
            .map_err(db)?;
        let before = tx.query_opt(&select, &[&key]).await.map_err(db)?;
        let changed = match &before {
            Some(row) => {
                let state: i64 = row.try_get(0).map_err(db)?;
                let message: String = row.try_get(1).map_err(db)?;
                state != d.state.code() as i64 || message != d.message
            }
            None => false,
        };
        if changed {
            record_event(&tx, &key, d.state, &d.message).await?;
        }
        let update = tx
            .prepare_cached(
                "UPDATE provider_deals SET state = $2, message = $3, add_funds_cid = $4,
                    publish_cid = $5, publish_index = $6, deal_id = $7, sector = $8,
                    sector_offset = $9, piece_path = $10, updated_at = $11
                 WHERE proposal_cid = $1",
            )
            .await
            .map_err(db)?;
        tx.execute(
            &update,
            &[
                &key,
                &(d.state.code() as i64),
                &d.message,
                &d.add_funds_cid.map(|c| c.to_string()),
                &d.publish_cid.map(|c| c.to_string()),
                &d.publish_index.map(|i| i as i64),
                &d.deal_id.map(|i| i.0 as i64),
                &d.sector.map(|s| s.0 as i64),
                &d.sector_offset.map(|o| o as i64),
                &d.piece_path,
                &unix_now(),
            ],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn provider_deal(&self, proposal_cid: &Cid) -> Result<Option<ProviderDeal>, StoreError> {
        Ok(self
            .query_provider("WHERE proposal_cid = $1", &[&proposal_cid.to_string()])
            .await?
            .pop())
    }

    async fn provider_deal_by_uuid(
        &self,
        uuid: &DealUuid,
    ) -> Result<Option<ProviderDeal>, StoreError> {
        Ok(self
            .query_provider("WHERE deal_uuid = $1", &[&uuid.to_string()])
            .await?
            .pop())
    }

    async fn provider_deals(&self) -> Result<Vec<ProviderDeal>, StoreError> {
        self.query_provider("", &[]).await
    }

    async fn unfinished_provider_deals(&self) -> Result<Vec<ProviderDeal>, StoreError> {
        let terminal: Vec<i64> = (0..=u64::from(u8::MAX))
            .map_while(StorageDealStatus::from_code)
            .filter(|s| s.is_terminal())
            .map(|s| s.code() as i64)
            .collect();
        self.query_provider("WHERE NOT (state = ANY($1))", &[&terminal])
            .await
    }

    async fn save_ask(&self, ask: &SignedStorageAsk) -> Result<(), StoreError> {
        let miner = ask
            .ask
            .as_ref()
            .map(|a| a.miner.to_string())
            .unwrap_or_default();
        let c = self.db.conn().await.map_err(db)?;
        c.execute(
            "INSERT INTO asks (miner, ask) VALUES ($1, $2)
             ON CONFLICT (miner) DO UPDATE SET ask = EXCLUDED.ask",
            &[&miner, &cbor::to_vec(ask)],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn ask(&self, miner: &Address) -> Result<Option<SignedStorageAsk>, StoreError> {
        let c = self.db.conn().await.map_err(db)?;
        let row = c
            .query_opt(
                "SELECT ask FROM asks WHERE miner = $1",
                &[&miner.to_string()],
            )
            .await
            .map_err(db)?;
        row.map(|r| {
            let b: Vec<u8> = r.try_get(0).map_err(db)?;
            cbor::from_slice(&b, 1 << 16).map_err(|e| corrupt("ask", e))
        })
        .transpose()
    }

    async fn put_client_deal(&self, d: ClientDeal) -> Result<(), StoreError> {
        let c = self.db.conn().await.map_err(db)?;
        c.execute(
            "INSERT INTO client_deals (proposal_cid, deal_uuid, provider_peer, protocol, proposal,
                payload_root, is_offline, state, checkpoint, message, deal_id, publish_cid,
                created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (proposal_cid) DO UPDATE SET state = EXCLUDED.state,
                checkpoint = EXCLUDED.checkpoint, message = EXCLUDED.message,
                deal_id = EXCLUDED.deal_id, publish_cid = EXCLUDED.publish_cid,
                updated_at = EXCLUDED.updated_at",
            &[
                &d.proposal_cid.to_string(),
                &d.deal_uuid.to_string(),
                &d.provider_peer,
                &d.protocol.id(),
                &cbor::to_vec(&d.proposal),
                &d.payload_root.map(|c| c.to_string()),
                &d.is_offline,
                &(d.state.code() as i64),
                &d.checkpoint,
                &d.message,
                &d.deal_id.map(|i| i.0 as i64),
                &d.publish_cid.map(|c| c.to_string()),
                &d.created_at,
                &unix_now(),
            ],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn client_deals(&self) -> Result<Vec<ClientDeal>, StoreError> {
        let c = self.db.conn().await.map_err(db)?;
        let rows = c
            .query(
                "SELECT proposal_cid, deal_uuid, provider_peer, protocol, proposal, payload_root,
                    is_offline, state, checkpoint, message, deal_id, publish_cid, created_at,
                    updated_at
                 FROM client_deals ORDER BY seq",
                &[],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                let g = |i: usize| -> Result<String, StoreError> { r.try_get(i).map_err(db) };
                Ok(ClientDeal {
                    proposal_cid: Cid::from_str(&g(0)?).map_err(|e| corrupt("proposal_cid", e))?,
                    deal_uuid: g(1)?.parse().map_err(|e| corrupt("deal_uuid", e))?,
                    provider_peer: g(2)?,
                    protocol: g(3)?.parse().map_err(|e| corrupt("protocol", e))?,
                    proposal: cbor::from_slice(&r.try_get::<_, Vec<u8>>(4).map_err(db)?, 1 << 20)
                        .map_err(|e| corrupt("proposal", e))?,
                    payload_root: parse_cid(r.try_get(5).map_err(db)?)?,
                    is_offline: r.try_get(6).map_err(db)?,
                    state: state_of(r.try_get(7).map_err(db)?)?,
                    checkpoint: g(8)?,
                    message: g(9)?,
                    deal_id: r
                        .try_get::<_, Option<i64>>(10)
                        .map_err(db)?
                        .map(|i| DealId(i as u64)),
                    publish_cid: parse_cid(r.try_get(11).map_err(db)?)?,
                    created_at: r.try_get(12).map_err(db)?,
                    updated_at: r.try_get(13).map_err(db)?,
                })
            })
            .collect()
    }

    async fn record_publish(&self, p: &PublishRecord) -> Result<(), StoreError> {
        let mut c = self.db.conn().await.map_err(db)?;
        let tx = c.transaction().await.map_err(db)?;
        let uuid = p.uuid.to_string();
        tx.execute(
            "INSERT INTO publish_messages (uuid, miner, message, cid, created_at)
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &uuid,
                &p.miner.to_string(),
                &cbor::to_vec(&p.message),
                &p.cid.map(|c| c.to_string()),
                &unix_now(),
            ],
        )
        .await
        .map_err(db)?;
        for (i, proposal) in p.proposals.iter().enumerate() {
            tx.execute(
                "INSERT INTO publish_message_deals (proposal_cid, uuid, idx) VALUES ($1, $2, $3)",
                &[&proposal.to_string(), &uuid, &(i as i64)],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn publish_sent(&self, uuid: uuid::Uuid, cid: Cid) -> Result<(), StoreError> {
        let c = self.db.conn().await.map_err(db)?;
        c.execute(
            "UPDATE publish_messages SET cid = $2 WHERE uuid = $1",
            &[&uuid.to_string(), &cid.to_string()],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn forget_publish(&self, uuid: uuid::Uuid) -> Result<(), StoreError> {
        let c = self.db.conn().await.map_err(db)?;
        c.execute(
            "DELETE FROM publish_messages WHERE uuid = $1",
            &[&uuid.to_string()],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn publish_for(
        &self,
        proposal_cid: &Cid,
    ) -> Result<Option<(PublishRecord, u64)>, StoreError> {
        let c = self.db.conn().await.map_err(db)?;
        let Some(row) = c
            .query_opt(
                "SELECT m.uuid, m.miner, m.message, m.cid, d.idx FROM publish_message_deals d
                 JOIN publish_messages m ON m.uuid = d.uuid
                 WHERE d.proposal_cid = $1 ORDER BY m.created_at DESC, m.seq DESC LIMIT 1",
                &[&proposal_cid.to_string()],
            )
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let uuid: String = row.try_get(0).map_err(db)?;
        let proposals = c
            .query(
                "SELECT proposal_cid FROM publish_message_deals WHERE uuid = $1 ORDER BY idx",
                &[&uuid],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                let p: String = r.try_get(0).map_err(db)?;
                Cid::from_str(&p).map_err(|e| corrupt("publish record", e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let miner: String = row.try_get(1).map_err(db)?;
        let message: Vec<u8> = row.try_get(2).map_err(db)?;
        let idx: i64 = row.try_get(4).map_err(db)?;
        let record = PublishRecord {
            uuid: uuid.parse().map_err(|e| corrupt("publish record", e))?,
            miner: miner.parse().map_err(|e| corrupt("publish record", e))?,
            message: cbor::from_slice(&message, 1 << 20)
                .map_err(|e| corrupt("publish record", e))?,
            proposals,
            cid: parse_cid(row.try_get(3).map_err(db)?)?,
        };
        Ok(Some((record, idx.max(0) as u64)))
    }

    async fn provider_deal_by_deal_id(
        &self,
        miner: &Address,
        id: DealId,
    ) -> Result<Option<ProviderDeal>, StoreError> {
        Ok(self
            .query_provider(
                "WHERE miner = $1 AND deal_id = $2",
                &[&miner.to_string(), &(id.0 as i64)],
            )
            .await?
            .pop())
    }

    async fn queue_for_sealing(&self, p: &Placement) -> Result<(), StoreError> {
        let c = self.db.conn().await.map_err(db)?;
        c.execute(
            "INSERT INTO deal_placements (proposal_cid, miner, deal_id, piece_status, sector,
                sector_offset, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &p.proposal_cid.to_string(),
                &p.miner.to_string(),
                &(p.deal_id.0 as i64),
                &p.status.as_str(),
                &p.sector.map(|s| s.0 as i64),
                &p.offset.map(|o| o as i64),
                &unix_now(),
            ],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn placement(&self, proposal_cid: &Cid) -> Result<Option<Placement>, StoreError> {
        let c = self.db.conn().await.map_err(db)?;
        c.query_opt(
            &format!("SELECT {PLACEMENT_COLS} FROM deal_placements WHERE proposal_cid = $1"),
            &[&proposal_cid.to_string()],
        )
        .await
        .map_err(db)?
        .map(|r| placement_row(&r))
        .transpose()
    }

    async fn take_lease(
        &self,
        deal: &Cid,
        holder: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let c = self.db.conn().await.map_err(db)?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO deal_leases (proposal_cid, holder, expires_at)
                 VALUES ($1, $2, now() + $3 * interval '1 millisecond')
                 ON CONFLICT (proposal_cid) DO UPDATE SET holder = EXCLUDED.holder,
                    expires_at = EXCLUDED.expires_at
                 WHERE deal_leases.holder = EXCLUDED.holder OR deal_leases.expires_at < now()",
            )
            .await
            .map_err(db)?;
        let taken = c
            .execute(&stmt, &[&deal.to_string(), &holder, &millis(ttl)])
            .await
            .map_err(db)?;
        Ok(taken == 1)
    }

    async fn renew_leases(
        &self,
        holder: &str,
        deals: &[Cid],
        ttl: Duration,
    ) -> Result<Vec<Cid>, StoreError> {
        if deals.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = deals.iter().map(Cid::to_string).collect();
        let c = self.db.conn().await.map_err(db)?;
        let stmt = c
            .prepare_cached(
                "UPDATE deal_leases SET expires_at = now() + $3 * interval '1 millisecond'
                 WHERE holder = $1 AND proposal_cid = ANY($2) RETURNING proposal_cid",
            )
            .await
            .map_err(db)?;
        let rows = c
            .query(&stmt, &[&holder, &keys, &millis(ttl)])
            .await
            .map_err(db)?;
        cid_column(&rows)
    }

    async fn release_lease(&self, deal: &Cid, holder: &str) -> Result<(), StoreError> {
        let c = self.db.conn().await.map_err(db)?;
        c.execute(
            "DELETE FROM deal_leases WHERE proposal_cid = $1 AND holder = $2",
            &[&deal.to_string(), &holder],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn claimable_deals(&self, limit: usize) -> Result<Vec<Cid>, StoreError> {
        let idle: Vec<i64> = storage_market::lease::idle_states()
            .iter()
            .map(|s| s.code() as i64)
            .collect();
        let c = self.db.conn().await.map_err(db)?;
        let stmt = c
            .prepare_cached(
                "SELECT d.proposal_cid FROM provider_deals d
                 LEFT JOIN deal_leases l ON l.proposal_cid = d.proposal_cid
                 WHERE d.state <> ALL($1) AND NOT (d.is_offline AND d.state = $2)
                   AND (l.proposal_cid IS NULL OR l.expires_at < now())
                 ORDER BY d.seq LIMIT $3",
            )
            .await
            .map_err(db)?;
        let transferring = StorageDealStatus::Transferring.code() as i64;
        let rows = c
            .query(&stmt, &[&idle, &transferring, &(limit as i64)])
            .await
            .map_err(db)?;
        cid_column(&rows)
    }

    async fn sealable_deals(&self, miner: &Address) -> Result<Vec<ProviderDeal>, StoreError> {
        self.query_provider(
            "WHERE miner = $1 AND state = $2 AND proposal_cid IN
                (SELECT proposal_cid FROM deal_placements WHERE piece_status = 'Undefine')",
            &[
                &miner.to_string(),
                &(StorageDealStatus::AwaitingPreCommit.code() as i64),
            ],
        )
        .await
    }

    async fn update_placements(&self, changes: Vec<PlacementChange>) -> Result<(), StoreError> {
        let mut c = self.db.conn().await.map_err(db)?;
        let tx = c.transaction().await.map_err(db)?;
        for change in &changes {
            let key = change.new.proposal_cid.to_string();
            let current = tx
                .query_opt(
                    "SELECT piece_status FROM deal_placements WHERE proposal_cid = $1 FOR UPDATE",
                    &[&key],
                )
                .await
                .map_err(db)?;
            let current: Option<PieceStatus> = current
                .map(|r| {
                    r.try_get::<_, String>(0)
                        .map_err(db)?
                        .parse()
                        .map_err(|e| corrupt("piece_status", e))
                })
                .transpose()?;
            change.check(current).map_err(StoreError::Conflict)?;
            let p = &change.new;
            let written = tx
                .execute(
                    "UPDATE deal_placements SET miner = $2, deal_id = $3, piece_status = $4,
                        sector = $5, sector_offset = $6, updated_at = $7
                     WHERE proposal_cid = $1",
                    &[
                        &key,
                        &p.miner.to_string(),
                        &(p.deal_id.0 as i64),
                        &p.status.as_str(),
                        &p.sector.map(|s| s.0 as i64),
                        &p.offset.map(|o| o as i64),
                        &unix_now(),
                    ],
                )
                .await;
            match written {
                Ok(_) => {}
                Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                    return Err(StoreError::Conflict(format!(
                        "deal {} of {} is placed already",
                        p.deal_id, p.miner
                    )));
                }
                Err(e) => return Err(db(e)),
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    async fn deal_events(&self, proposal_cid: &Cid) -> Result<Vec<DealStateChange>, StoreError> {
        let c = self.db.conn().await.map_err(db)?;
        c.query(
            "SELECT at_ms, state, message FROM deal_events WHERE proposal_cid = $1 ORDER BY seq",
            &[&proposal_cid.to_string()],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok(DealStateChange {
                at_ms: r.try_get(0).map_err(db)?,
                state: state_of(r.try_get(1).map_err(db)?)?,
                message: r.try_get(2).map_err(db)?,
            })
        })
        .collect()
    }

    async fn provider_deals_in(
        &self,
        states: &[StorageDealStatus],
    ) -> Result<Vec<ProviderDeal>, StoreError> {
        if states.is_empty() {
            return Ok(Vec::new());
        }
        let codes: Vec<i64> = states.iter().map(|s| s.code() as i64).collect();
        self.query_provider("WHERE state = ANY($1)", &[&codes])
            .await
    }

    async fn provider_deal_counts(&self) -> Result<Vec<(StorageDealStatus, u64)>, StoreError> {
        let c = self.db.conn().await.map_err(db)?;
        c.query(
            "SELECT state, COUNT(*) FROM provider_deals GROUP BY state",
            &[],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok((
                state_of(r.try_get(0).map_err(db)?)?,
                r.try_get::<_, i64>(1).map_err(db)? as u64,
            ))
        })
        .collect()
    }
}
