//! [`AdStore`] on Postgres: the IPNI chains of a provider whose instances share one database.
//! Every instance can then advertise the deals it drives under the provider's one identity
//! (the peer id on chain), serve the whole chain to indexers, and take over announcing when
//! another dies; a chain kept per instance would fork under one provider id.
//!
//! A chain stays a line because an append locks its provider's head row (`SELECT … FOR
//! UPDATE`) before reading the head, and each ad records its height with a unique
//! (provider, height): two appends that somehow read the same head cannot both commit.
//! Heights, not a sequence, order a chain, since YugabyteDB caches sequence values per node
//! and they need not follow commit order there.

use cid::Cid;
use libp2p::identity::Keypair;
use market_ipni::IpniError;
use market_ipni::schema::Block;
use market_ipni::store::{
    AdDraft, AdStatus, AdStore, AdSummary, DueAnnounce, DueCheck, announce_is_due, changes_context,
    next_ad, parse_stored_cid,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

use crate::db::{Migration, PgDb, PgError};

const COMPONENT: &str = "ipni";

// Prefixed: `blocks` is the piece index's table.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "CREATE TABLE ipni_blocks (
            cid   TEXT PRIMARY KEY,
            data  BYTEA NOT NULL
        );
        CREATE TABLE ipni_heads (
            provider    TEXT PRIMARY KEY,
            head        TEXT,
            height      BIGINT NOT NULL,
            updated_at  BIGINT NOT NULL
        );
        CREATE TABLE ipni_ads (
            cid             TEXT PRIMARY KEY,
            provider        TEXT NOT NULL,
            height          BIGINT NOT NULL,
            context_id      BYTEA NOT NULL,
            piece_cid       TEXT,
            is_rm           BOOLEAN NOT NULL,
            entries         BIGINT NOT NULL,
            sample          BYTEA,
            created_at      BIGINT NOT NULL,
            announced_at    BIGINT,
            indexed_at      BIGINT,
            check_attempts  INTEGER NOT NULL DEFAULT 0,
            next_check_at   BIGINT,
            check_error     TEXT,
            warned          BOOLEAN NOT NULL DEFAULT FALSE,
            UNIQUE (provider, height)
        );
        CREATE INDEX ipni_ads_by_piece ON ipni_ads(piece_cid);
        CREATE INDEX ipni_ads_unconfirmed ON ipni_ads(provider, next_check_at)
            WHERE indexed_at IS NULL;
        CREATE TABLE ipni_contexts (
            provider    TEXT NOT NULL,
            context_id  BYTEA NOT NULL,
            live        BOOLEAN NOT NULL,
            ad          TEXT NOT NULL,
            PRIMARY KEY (provider, context_id)
        );
        CREATE TABLE ipni_announces (
            provider    TEXT NOT NULL,
            indexer     TEXT NOT NULL,
            head        TEXT,
            attempts    INTEGER NOT NULL DEFAULT 0,
            next_at     BIGINT NOT NULL DEFAULT 0,
            error       TEXT,
            PRIMARY KEY (provider, indexer)
        );",
}];

/// How often an append that lost a serialization race (YSQL's snapshot isolation, or a
/// deadlock) starts over before the error is returned.
const APPEND_ATTEMPTS: usize = 5;

const STATUS_COLS: &str = "cid, provider, piece_cid, is_rm, entries, created_at, announced_at,
    indexed_at, check_error, height";

fn db(e: impl Into<PgError>) -> IpniError {
    IpniError::Database(Box::new(e.into()))
}

fn to_i64(v: u64) -> Result<i64, IpniError> {
    i64::try_from(v).map_err(|_| IpniError::Invalid(format!("{v} does not fit a BIGINT")))
}

fn to_u32(v: i32) -> Result<u32, IpniError> {
    u32::try_from(v).map_err(|_| IpniError::Decode(format!("stored count {v} is negative")))
}

/// The ad chains in Postgres. Cheap to clone; the instances of one provider share one.
#[derive(Debug, Clone)]
pub struct PgAdStore {
    db: PgDb,
}

impl PgAdStore {
    /// Migrates `db` (once, whoever starts first) and returns the store.
    pub async fn open(db: PgDb) -> Result<Self, PgError> {
        db.migrate(COMPONENT, MIGRATIONS).await?;
        Ok(Self { db })
    }

    async fn try_append(
        &self,
        key: &Keypair,
        draft: &AdDraft,
        now_ms: i64,
    ) -> Result<Option<Block>, IpniError> {
        let provider = key.public().to_peer_id().to_string();
        let mut c = self.db.conn().await.map_err(db)?;
        let tx = c.transaction().await.map_err(db)?;
        // The head row exists before it is locked, so the first two appends of a provider
        // serialise on it like every later pair.
        tx.execute(
            "INSERT INTO ipni_heads (provider, head, height, updated_at) VALUES ($1, NULL, 0, $2)
             ON CONFLICT (provider) DO NOTHING",
            &[&provider, &now_ms],
        )
        .await
        .map_err(db)?;
        let row = tx
            .query_one(
                "SELECT head, height FROM ipni_heads WHERE provider = $1 FOR UPDATE",
                &[&provider],
            )
            .await
            .map_err(db)?;
        let (prev, height): (Option<String>, i64) = (row.get(0), row.get(1));
        let live: Option<bool> = tx
            .query_opt(
                "SELECT live FROM ipni_contexts WHERE provider = $1 AND context_id = $2",
                &[&provider, &draft.context_id],
            )
            .await
            .map_err(db)?
            .map(|r| r.get(0));
        if !changes_context(live == Some(true), draft.is_rm) {
            tx.rollback().await.map_err(db)?;
            return Ok(None);
        }
        let prev = prev.as_deref().map(parse_stored_cid).transpose()?;
        let block = next_ad(prev, key, draft)?;
        let height = height + 1;
        let mut cids = Vec::with_capacity(draft.chunks.len() + 1);
        let mut datas = Vec::with_capacity(draft.chunks.len() + 1);
        for b in draft.chunks.iter().chain(std::iter::once(&block)) {
            cids.push(b.cid.to_string());
            datas.push(b.data.as_slice());
        }
        // Entry chunks shared with another ad (the same piece under two identities) are
        // stored once.
        tx.execute(
            "INSERT INTO ipni_blocks (cid, data)
             SELECT c, d FROM UNNEST($1::TEXT[], $2::BYTEA[]) AS t(c, d)
             ON CONFLICT (cid) DO NOTHING",
            &[&cids, &datas],
        )
        .await
        .map_err(db)?;
        let cid = block.cid.to_string();
        tx.execute(
            "INSERT INTO ipni_ads (cid, provider, height, context_id, piece_cid, is_rm, entries,
                 sample, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &cid,
                &provider,
                &height,
                &draft.context_id,
                &draft.piece,
                &draft.is_rm,
                &to_i64(draft.entry_count)?,
                &draft.sample,
                &now_ms,
            ],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "INSERT INTO ipni_contexts (provider, context_id, live, ad) VALUES ($1, $2, $3, $4)
             ON CONFLICT (provider, context_id) DO UPDATE SET live = $3, ad = $4",
            &[&provider, &draft.context_id, &!draft.is_rm, &cid],
        )
        .await
        .map_err(db)?;
        tx.execute(
            "UPDATE ipni_heads SET head = $2, height = $3, updated_at = $4 WHERE provider = $1",
            &[&provider, &cid, &height, &now_ms],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(Some(block))
    }

    async fn statuses(
        &self,
        filter: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<AdStatus>, IpniError> {
        let c = self.db.conn().await.map_err(db)?;
        let rows = c
            .query(
                &format!("SELECT {STATUS_COLS} FROM ipni_ads {filter}"),
                params,
            )
            .await
            .map_err(db)?;
        sorted_statuses(&rows)
    }
}

/// Whether `e` is a transaction that lost to a concurrent one and may simply start over.
fn lost_a_race(e: &IpniError) -> bool {
    let IpniError::Database(source) = e else {
        return false;
    };
    match source.downcast_ref::<PgError>() {
        Some(PgError::Db(e)) => matches!(
            e.code(),
            Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED
                || *c == SqlState::UNIQUE_VIOLATION
        ),
        _ => false,
    }
}

/// Rows of [`STATUS_COLS`], oldest first: by creation time, then provider and height, so
/// the order is the same on every backend and locale.
fn sorted_statuses(rows: &[Row]) -> Result<Vec<AdStatus>, IpniError> {
    let mut out = rows
        .iter()
        .map(|r| {
            let mut status = AdStatus::new(parse_stored_cid(r.get(0))?, r.get(1), r.get(5));
            status.piece = r.get(2);
            status.is_rm = r.get(3);
            status.entries = u64::try_from(r.get::<_, i64>(4))
                .map_err(|_| IpniError::Decode("negative entry count".into()))?;
            status.announced_at = r.get(6);
            status.indexed_at = r.get(7);
            status.check_error = r.get(8);
            Ok((r.get::<_, i64>(9), status))
        })
        .collect::<Result<Vec<_>, IpniError>>()?;
    out.sort_by(|(ha, a), (hb, b)| {
        (a.created_at, &a.provider, ha).cmp(&(b.created_at, &b.provider, hb))
    });
    Ok(out.into_iter().map(|(_, s)| s).collect())
}

#[async_trait::async_trait]
impl AdStore for PgAdStore {
    async fn append(
        &self,
        key: &Keypair,
        draft: AdDraft,
        now_ms: i64,
    ) -> Result<Option<Block>, IpniError> {
        let mut attempt = 1;
        loop {
            match self.try_append(key, &draft, now_ms).await {
                Err(e) if attempt < APPEND_ATTEMPTS && lost_a_race(&e) => {
                    tracing::debug!(error = %e, attempt, "IPNI append lost a race; again");
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    async fn block(&self, cid: Cid) -> Result<Option<Vec<u8>>, IpniError> {
        let c = self.db.conn().await.map_err(db)?;
        Ok(c.query_opt(
            "SELECT data FROM ipni_blocks WHERE cid = $1",
            &[&cid.to_string()],
        )
        .await
        .map_err(db)?
        .map(|r| r.get(0)))
    }

    async fn head(&self, provider: &str) -> Result<Option<Cid>, IpniError> {
        let c = self.db.conn().await.map_err(db)?;
        let head: Option<String> = c
            .query_opt(
                "SELECT head FROM ipni_heads WHERE provider = $1",
                &[&provider],
            )
            .await
            .map_err(db)?
            .and_then(|r| r.get(0));
        head.as_deref().map(parse_stored_cid).transpose()
    }

    async fn is_live(&self, provider: &str, context_id: &[u8]) -> Result<bool, IpniError> {
        let c = self.db.conn().await.map_err(db)?;
        Ok(c.query_opt(
            "SELECT live FROM ipni_contexts WHERE provider = $1 AND context_id = $2",
            &[&provider, &context_id],
        )
        .await
        .map_err(db)?
        .map(|r| r.get::<_, bool>(0))
            == Some(true))
    }

    async fn live_contexts(&self, provider: &str) -> Result<Vec<Vec<u8>>, IpniError> {
        let c = self.db.conn().await.map_err(db)?;
        let mut out: Vec<Vec<u8>> = c
            .query(
                "SELECT context_id FROM ipni_contexts WHERE provider = $1 AND live",
                &[&provider],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        out.sort();
        Ok(out)
    }

    async fn due_announces(
        &self,
        provider: &str,
        indexers: Vec<String>,
        now_ms: i64,
    ) -> Result<Vec<DueAnnounce>, IpniError> {
        let Some(head) = self.head(provider).await? else {
            return Ok(Vec::new());
        };
        let c = self.db.conn().await.map_err(db)?;
        let rows = c
            .query(
                "SELECT indexer, head, attempts, next_at FROM ipni_announces WHERE provider = $1",
                &[&provider],
            )
            .await
            .map_err(db)?;
        let mut out = Vec::new();
        for indexer in indexers {
            let row = rows.iter().find(|r| r.get::<_, &str>(0) == indexer);
            let (taken, attempts, next_at) = match row {
                Some(r) => (
                    r.get::<_, Option<&str>>(1)
                        .map(parse_stored_cid)
                        .transpose()?,
                    to_u32(r.get(2))?,
                    r.get::<_, i64>(3),
                ),
                None => (None, 0, 0),
            };
            if announce_is_due(taken.as_ref(), &head, next_at, now_ms) {
                out.push(DueAnnounce {
                    provider: provider.to_string(),
                    indexer,
                    head,
                    attempts,
                });
            }
        }
        Ok(out)
    }

    async fn record_announce(
        &self,
        due: DueAnnounce,
        result: Result<(), String>,
        now_ms: i64,
        retry_at_ms: i64,
        first_check_at_ms: i64,
    ) -> Result<(), IpniError> {
        let mut c = self.db.conn().await.map_err(db)?;
        let head = due.head.to_string();
        match result {
            Ok(()) => {
                let tx = c.transaction().await.map_err(db)?;
                tx.execute(
                    "INSERT INTO ipni_announces (provider, indexer, head, attempts, next_at, error)
                     VALUES ($1, $2, $3, 0, 0, NULL)
                     ON CONFLICT (provider, indexer) DO UPDATE
                     SET head = $3, attempts = 0, next_at = 0, error = NULL",
                    &[&due.provider, &due.indexer, &head],
                )
                .await
                .map_err(db)?;
                tx.execute(
                    "UPDATE ipni_ads SET announced_at = $3, next_check_at = $4
                     WHERE provider = $1 AND announced_at IS NULL
                       AND height <= (SELECT height FROM ipni_ads WHERE cid = $2)",
                    &[&due.provider, &head, &now_ms, &first_check_at_ms],
                )
                .await
                .map_err(db)?;
                tx.commit().await.map_err(db)?;
            }
            Err(e) => {
                c.execute(
                    "INSERT INTO ipni_announces (provider, indexer, head, attempts, next_at, error)
                     VALUES ($1, $2, NULL, 1, $3, $4)
                     ON CONFLICT (provider, indexer) DO UPDATE
                     SET attempts = ipni_announces.attempts + 1, next_at = $3, error = $4",
                    &[&due.provider, &due.indexer, &retry_at_ms, &e],
                )
                .await
                .map_err(db)?;
            }
        }
        Ok(())
    }

    async fn forget_announced(&self, provider: &str) -> Result<(), IpniError> {
        let c = self.db.conn().await.map_err(db)?;
        c.execute(
            "UPDATE ipni_announces SET head = NULL WHERE provider = $1",
            &[&provider],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn due_checks(
        &self,
        provider: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<DueCheck>, IpniError> {
        let c = self.db.conn().await.map_err(db)?;
        let rows = c
            .query(
                "SELECT cid, provider, sample, is_rm, check_attempts, announced_at FROM ipni_ads
                 WHERE provider = $1 AND indexed_at IS NULL AND announced_at IS NOT NULL
                   AND next_check_at <= $2
                 ORDER BY height LIMIT $3",
                &[&provider, &now_ms, &to_i64(limit as u64)?],
            )
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                Ok(DueCheck {
                    ad: parse_stored_cid(r.get(0))?,
                    provider: r.get(1),
                    sample: r.get(2),
                    is_rm: r.get(3),
                    attempts: to_u32(r.get(4))?,
                    announced_at: r.get(5),
                })
            })
            .collect()
    }

    async fn record_check(
        &self,
        ad: Cid,
        indexed: bool,
        error: Option<String>,
        now_ms: i64,
        next_at_ms: i64,
    ) -> Result<(), IpniError> {
        let c = self.db.conn().await.map_err(db)?;
        let ad = ad.to_string();
        if indexed {
            c.execute(
                "UPDATE ipni_ads SET indexed_at = $2, check_error = NULL,
                 check_attempts = check_attempts + 1 WHERE cid = $1",
                &[&ad, &now_ms],
            )
            .await
            .map_err(db)?;
        } else {
            c.execute(
                "UPDATE ipni_ads SET check_attempts = check_attempts + 1, next_check_at = $2,
                 check_error = $3 WHERE cid = $1",
                &[&ad, &next_at_ms, &error],
            )
            .await
            .map_err(db)?;
        }
        Ok(())
    }

    async fn other_identity_ingesting(
        &self,
        provider: &str,
        since_ms: i64,
    ) -> Result<bool, IpniError> {
        let c = self.db.conn().await.map_err(db)?;
        Ok(c.query_one(
            "SELECT EXISTS(SELECT 1 FROM ipni_ads WHERE indexed_at IS NULL
                 AND announced_at > $2 AND provider <> $1)
             AND NOT EXISTS(SELECT 1 FROM ipni_ads WHERE provider = $1
                 AND announced_at IS NULL AND created_at <= $2)",
            &[&provider, &since_ms],
        )
        .await
        .map_err(db)?
        .get(0))
    }

    /// One `UPDATE … RETURNING`: two instances warning at once each get a part, never the
    /// same ad.
    async fn take_overdue(
        &self,
        provider: &str,
        before_ms: i64,
    ) -> Result<Vec<AdStatus>, IpniError> {
        let c = self.db.conn().await.map_err(db)?;
        let rows = c
            .query(
                &format!(
                    "UPDATE ipni_ads SET warned = TRUE
                     WHERE provider = $1 AND indexed_at IS NULL AND announced_at IS NOT NULL
                       AND announced_at < $2 AND NOT warned
                     RETURNING {STATUS_COLS}"
                ),
                &[&provider, &before_ms],
            )
            .await
            .map_err(db)?;
        sorted_statuses(&rows)
    }

    async fn piece_ads(&self, piece: &str) -> Result<Vec<AdStatus>, IpniError> {
        self.statuses("WHERE piece_cid = $1", &[&piece]).await
    }

    async fn summary(&self) -> Result<AdSummary, IpniError> {
        let c = self.db.conn().await.map_err(db)?;
        let r = c
            .query_one(
                "SELECT COUNT(*),
                    COALESCE(SUM(CASE WHEN announced_at IS NULL THEN 1 ELSE 0 END), 0),
                    COALESCE(SUM(CASE WHEN announced_at IS NOT NULL AND indexed_at IS NULL
                        THEN 1 ELSE 0 END), 0),
                    MIN(CASE WHEN indexed_at IS NULL THEN announced_at END),
                    (SELECT COUNT(*) FROM ipni_announces WHERE error IS NOT NULL)
                 FROM ipni_ads",
                &[],
            )
            .await
            .map_err(db)?;
        let count = |i: usize| -> Result<u64, IpniError> {
            u64::try_from(r.get::<_, i64>(i))
                .map_err(|_| IpniError::Decode("negative count".into()))
        };
        let mut summary = AdSummary::default();
        summary.ads = count(0)?;
        summary.unannounced = count(1)?;
        summary.unindexed = count(2)?;
        summary.oldest_unindexed_announced_at = r.get(3);
        summary.failing_announces = count(4)?;
        Ok(summary)
    }

    async fn announce_errors(&self) -> Result<Vec<(String, String, String)>, IpniError> {
        let c = self.db.conn().await.map_err(db)?;
        let mut out: Vec<(String, String, String)> = c
            .query(
                "SELECT provider, indexer, error FROM ipni_announces WHERE error IS NOT NULL",
                &[],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        out.sort();
        Ok(out)
    }
}
