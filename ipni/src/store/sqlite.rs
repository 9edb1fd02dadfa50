//! [`AdStore`] in one SQLite file: writes go through the file's single writer, so an append's
//! read of the head and write of the new one cannot interleave with another's.

use std::path::Path;

use cid::Cid;
use libp2p::identity::Keypair;
use market_core::db::{Db, open_in_memory_migrated, open_migrated};
use rusqlite::{Connection, OptionalExtension, params};

use super::{
    AdDraft, AdStatus, AdStore, AdSummary, DueAnnounce, DueCheck, announce_is_due, changes_context,
    next_ad, parse_stored_cid,
};
use crate::IpniError;
use crate::schema::Block;

const MIGRATIONS: &[&str] = &["
    CREATE TABLE blocks (
        cid   TEXT PRIMARY KEY,
        data  BLOB NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE heads (
        provider    TEXT PRIMARY KEY,
        head        TEXT NOT NULL,
        updated_at  INTEGER NOT NULL
    );
    CREATE TABLE ads (
        seq             INTEGER PRIMARY KEY AUTOINCREMENT,
        cid             TEXT NOT NULL UNIQUE,
        provider        TEXT NOT NULL,
        context_id      BLOB NOT NULL,
        piece_cid       TEXT,
        is_rm           INTEGER NOT NULL,
        entries         INTEGER NOT NULL,
        sample          BLOB,
        created_at      INTEGER NOT NULL,
        announced_at    INTEGER,
        indexed_at      INTEGER,
        check_attempts  INTEGER NOT NULL DEFAULT 0,
        next_check_at   INTEGER,
        check_error     TEXT,
        warned          INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX ads_by_piece ON ads(piece_cid);
    CREATE INDEX ads_unconfirmed ON ads(next_check_at) WHERE indexed_at IS NULL;
    CREATE TABLE contexts (
        provider    TEXT NOT NULL,
        context_id  BLOB NOT NULL,
        live        INTEGER NOT NULL,
        ad          TEXT NOT NULL,
        PRIMARY KEY (provider, context_id)
    );
    CREATE TABLE announces (
        provider    TEXT NOT NULL,
        indexer     TEXT NOT NULL,
        head        TEXT,
        attempts    INTEGER NOT NULL DEFAULT 0,
        next_at     INTEGER NOT NULL DEFAULT 0,
        error       TEXT,
        PRIMARY KEY (provider, indexer)
    );
"];

/// The SQLite ad store (one file, shared by every identity of the node).
#[derive(Clone, Debug)]
pub struct SqliteAdStore {
    db: Db,
}

impl SqliteAdStore {
    /// Opens (creating or migrating) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, IpniError> {
        Ok(Self {
            db: Db::named("ipni", open_migrated(path, MIGRATIONS)?),
        })
    }

    /// A store in memory (tests).
    pub fn open_in_memory() -> Result<Self, IpniError> {
        Ok(Self {
            db: Db::named("ipni", open_in_memory_migrated(MIGRATIONS)?),
        })
    }
}

#[async_trait::async_trait]
impl AdStore for SqliteAdStore {
    /// Appends `draft` to the chain of `key`'s provider, unless it changes nothing (the
    /// context is already live for a put, or not live for a removal). Returns the new ad.
    async fn append(
        &self,
        key: &Keypair,
        draft: AdDraft,
        now_ms: i64,
    ) -> Result<Option<Block>, IpniError> {
        let key = key.clone();
        self.db.write(move |c| append(c, &key, draft, now_ms)).await
    }

    /// A stored block (ad or entry chunk).
    async fn block(&self, cid: Cid) -> Result<Option<Vec<u8>>, IpniError> {
        self.db
            .call(move |c| {
                c.query_row(
                    "SELECT data FROM blocks WHERE cid = ?1",
                    [cid.to_string()],
                    |r| r.get(0),
                )
                .optional()
                .map_err(IpniError::from)
            })
            .await
    }

    /// The newest ad of `provider`.
    async fn head(&self, provider: &str) -> Result<Option<Cid>, IpniError> {
        let provider = provider.to_string();
        self.db.call(move |c| head(c, &provider)).await
    }

    /// Whether `context_id` of `provider` is live (announced and not removed).
    async fn is_live(&self, provider: &str, context_id: &[u8]) -> Result<bool, IpniError> {
        let (provider, ctx) = (provider.to_string(), context_id.to_vec());
        self.db
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT live FROM contexts WHERE provider = ?1 AND context_id = ?2",
                    params![provider, ctx],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                    == Some(1))
            })
            .await
    }

    /// The context ids of `provider` that are live.
    async fn live_contexts(&self, provider: &str) -> Result<Vec<Vec<u8>>, IpniError> {
        let provider = provider.to_string();
        self.db
            .call(move |c| {
                let mut q = c.prepare(
                    "SELECT context_id FROM contexts WHERE provider = ?1 AND live = 1
                     ORDER BY context_id",
                )?;
                let rows = q
                    .query_map([provider], |r| r.get(0))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }

    /// Announcements due at `now_ms`: providers whose head each indexer has not taken yet.
    async fn due_announces(
        &self,
        provider: &str,
        indexers: Vec<String>,
        now_ms: i64,
    ) -> Result<Vec<DueAnnounce>, IpniError> {
        let provider = provider.to_string();
        self.db
            .call(move |c| {
                let mut out = Vec::new();
                if let Some(head) = head(c, &provider)? {
                    for indexer in &indexers {
                        let row: Option<(Option<String>, u32, i64)> = c
                            .query_row(
                                "SELECT head, attempts, next_at FROM announces
                                 WHERE provider = ?1 AND indexer = ?2",
                                params![provider, indexer],
                                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                            )
                            .optional()?;
                        let (taken, attempts, next_at) = row.unwrap_or((None, 0, 0));
                        let taken = taken.as_deref().map(parse_stored_cid).transpose()?;
                        if announce_is_due(taken.as_ref(), &head, next_at, now_ms) {
                            out.push(DueAnnounce {
                                provider: provider.clone(),
                                indexer: indexer.clone(),
                                head,
                                attempts,
                            });
                        }
                    }
                }
                Ok(out)
            })
            .await
    }

    /// Records the outcome of announcing `due`: on success the indexer has the head and
    /// every ad of the chain up to it counts as announced (first ingest check at
    /// `first_check_at_ms`); on failure the next attempt waits until `retry_at_ms`.
    async fn record_announce(
        &self,
        due: DueAnnounce,
        result: Result<(), String>,
        now_ms: i64,
        retry_at_ms: i64,
        first_check_at_ms: i64,
    ) -> Result<(), IpniError> {
        self.db
            .write(move |c| {
                let head = due.head.to_string();
                match result {
                    Ok(()) => {
                        c.execute(
                            "INSERT INTO announces (provider, indexer, head, attempts, next_at, error)
                             VALUES (?1, ?2, ?3, 0, 0, NULL)
                             ON CONFLICT (provider, indexer) DO UPDATE
                             SET head = ?3, attempts = 0, next_at = 0, error = NULL",
                            params![due.provider, due.indexer, head],
                        )?;
                        c.execute(
                            "UPDATE ads SET announced_at = ?3, next_check_at = ?4
                             WHERE provider = ?1 AND announced_at IS NULL
                               AND seq <= (SELECT seq FROM ads WHERE cid = ?2)",
                            params![due.provider, head, now_ms, first_check_at_ms],
                        )?;
                    }
                    Err(e) => {
                        c.execute(
                            "INSERT INTO announces (provider, indexer, head, attempts, next_at, error)
                             VALUES (?1, ?2, NULL, 1, ?3, ?4)
                             ON CONFLICT (provider, indexer) DO UPDATE
                             SET attempts = attempts + 1, next_at = ?3, error = ?4",
                            params![due.provider, due.indexer, retry_at_ms, e],
                        )?;
                    }
                }
                Ok(())
            })
            .await
    }

    /// Announced ads not yet confirmed whose next check is due, oldest first.
    async fn forget_announced(&self, provider: &str) -> Result<(), IpniError> {
        let provider = provider.to_string();
        self.db
            .write(move |c| {
                c.execute(
                    "UPDATE announces SET head = NULL WHERE provider = ?1",
                    [provider],
                )?;
                Ok(())
            })
            .await
    }

    async fn due_checks(
        &self,
        provider: &str,
        now_ms: i64,
        limit: usize,
    ) -> Result<Vec<DueCheck>, IpniError> {
        let provider = provider.to_string();
        self.db
            .call(move |c| {
                let mut q = c.prepare(
                    "SELECT cid, provider, sample, is_rm, check_attempts, announced_at FROM ads
                     WHERE provider = ?3 AND indexed_at IS NULL AND announced_at IS NOT NULL
                       AND next_check_at <= ?1
                     ORDER BY seq LIMIT ?2",
                )?;
                let rows = q
                    .query_map(params![now_ms, limit as i64, provider], |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, Option<Vec<u8>>>(2)?,
                            r.get::<_, bool>(3)?,
                            r.get::<_, u32>(4)?,
                            r.get::<_, i64>(5)?,
                        ))
                    })?
                    .collect::<Result<Vec<_>, _>>()?;
                rows.into_iter()
                    .map(|(ad, provider, sample, is_rm, attempts, announced_at)| {
                        Ok(DueCheck {
                            ad: parse_stored_cid(&ad)?,
                            provider,
                            sample,
                            is_rm,
                            attempts,
                            announced_at,
                        })
                    })
                    .collect()
            })
            .await
    }

    /// Records an ingest check: confirmed, or not yet (next check at `next_at_ms`, with the
    /// error if the indexer could not answer).
    async fn record_check(
        &self,
        ad: Cid,
        indexed: bool,
        error: Option<String>,
        now_ms: i64,
        next_at_ms: i64,
    ) -> Result<(), IpniError> {
        self.db
            .write(move |c| {
                if indexed {
                    c.execute(
                        "UPDATE ads SET indexed_at = ?2, check_error = NULL,
                         check_attempts = check_attempts + 1 WHERE cid = ?1",
                        params![ad.to_string(), now_ms],
                    )?;
                } else {
                    c.execute(
                        "UPDATE ads SET check_attempts = check_attempts + 1, next_check_at = ?2,
                         check_error = ?3 WHERE cid = ?1",
                        params![ad.to_string(), next_at_ms, error],
                    )?;
                }
                Ok(())
            })
            .await
    }

    /// Whether `provider` should let another identity's ingestion finish before announcing:
    /// another identity has ads announced since `since_ms` that no indexer has confirmed yet,
    /// and `provider`'s oldest unannounced ad was created after `since_ms` too (so however
    /// busy the others are, an identity waits at most that long).
    async fn other_identity_ingesting(
        &self,
        provider: &str,
        since_ms: i64,
    ) -> Result<bool, IpniError> {
        let provider = provider.to_string();
        self.db
            .call(move |c| {
                Ok(c.query_row(
                    "SELECT EXISTS(SELECT 1 FROM ads WHERE indexed_at IS NULL
                         AND announced_at > ?2 AND provider != ?1)
                     AND NOT EXISTS(SELECT 1 FROM ads WHERE provider = ?1
                         AND announced_at IS NULL AND created_at <= ?2)",
                    params![provider, since_ms],
                    |r| r.get(0),
                )?)
            })
            .await
    }

    /// Announced ads still unconfirmed since before `before_ms` that were not warned about
    /// yet; they are marked warned.
    async fn take_overdue(
        &self,
        provider: &str,
        before_ms: i64,
    ) -> Result<Vec<AdStatus>, IpniError> {
        let provider = provider.to_string();
        self.db
            .write(move |c| {
                let out = statuses(
                    c,
                    "WHERE provider = ?2 AND indexed_at IS NULL AND announced_at IS NOT NULL
                     AND announced_at < ?1 AND warned = 0",
                    params![before_ms, provider],
                )?;
                c.execute(
                    "UPDATE ads SET warned = 1 WHERE provider = ?2 AND indexed_at IS NULL
                     AND announced_at IS NOT NULL AND announced_at < ?1",
                    params![before_ms, provider],
                )?;
                Ok(out)
            })
            .await
    }

    /// The ads about `piece`, oldest first.
    async fn piece_ads(&self, piece: &str) -> Result<Vec<AdStatus>, IpniError> {
        let piece = piece.to_string();
        self.db
            .call(move |c| statuses(c, "WHERE piece_cid = ?1", params![piece]))
            .await
    }

    /// Counts over the whole ad store, for dashboards and metrics.
    async fn summary(&self) -> Result<AdSummary, IpniError> {
        self.db
            .call(|c| {
                let (ads, unannounced, unindexed, oldest): (i64, i64, i64, Option<i64>) = c
                    .query_row(
                        "SELECT COUNT(*),
                            COALESCE(SUM(announced_at IS NULL), 0),
                            COALESCE(SUM(announced_at IS NOT NULL AND indexed_at IS NULL), 0),
                            MIN(CASE WHEN indexed_at IS NULL THEN announced_at END)
                         FROM ads",
                        [],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                    )?;
                let failing: i64 = c.query_row(
                    "SELECT COUNT(*) FROM announces WHERE error IS NOT NULL",
                    [],
                    |r| r.get(0),
                )?;
                Ok(AdSummary {
                    ads: ads as u64,
                    unannounced: unannounced as u64,
                    unindexed: unindexed as u64,
                    oldest_unindexed_announced_at: oldest,
                    failing_announces: failing as u64,
                })
            })
            .await
    }

    /// The last announce error per (provider, indexer), for status pages.
    async fn announce_errors(&self) -> Result<Vec<(String, String, String)>, IpniError> {
        self.db
            .call(|c| {
                let mut q = c.prepare(
                    "SELECT provider, indexer, error FROM announces WHERE error IS NOT NULL
                     ORDER BY provider, indexer",
                )?;
                let rows = q
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(rows)
            })
            .await
    }
}

fn head(c: &Connection, provider: &str) -> Result<Option<Cid>, IpniError> {
    let s: Option<String> = c
        .query_row(
            "SELECT head FROM heads WHERE provider = ?1",
            [provider],
            |r| r.get(0),
        )
        .optional()?;
    s.as_deref().map(parse_stored_cid).transpose()
}

fn append(
    c: &Connection,
    key: &Keypair,
    draft: AdDraft,
    now_ms: i64,
) -> Result<Option<Block>, IpniError> {
    let provider = key.public().to_peer_id().to_string();
    let live: Option<i64> = c
        .query_row(
            "SELECT live FROM contexts WHERE provider = ?1 AND context_id = ?2",
            params![provider, draft.context_id],
            |r| r.get(0),
        )
        .optional()?;
    if !changes_context(live == Some(1), draft.is_rm) {
        return Ok(None);
    }
    let block = next_ad(head(c, &provider)?, key, &draft)?;
    let mut put = c.prepare_cached("INSERT OR IGNORE INTO blocks (cid, data) VALUES (?1, ?2)")?;
    for chunk in &draft.chunks {
        put.execute(params![chunk.cid.to_string(), chunk.data])?;
    }
    put.execute(params![block.cid.to_string(), block.data])?;
    let cid = block.cid.to_string();
    c.execute(
        "INSERT INTO ads (cid, provider, context_id, piece_cid, is_rm, entries, sample, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            cid,
            provider,
            draft.context_id,
            draft.piece,
            draft.is_rm,
            draft.entry_count as i64,
            draft.sample,
            now_ms
        ],
    )?;
    c.execute(
        "INSERT INTO contexts (provider, context_id, live, ad) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (provider, context_id) DO UPDATE SET live = ?3, ad = ?4",
        params![provider, draft.context_id, !draft.is_rm, cid],
    )?;
    c.execute(
        "INSERT INTO heads (provider, head, updated_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (provider) DO UPDATE SET head = ?2, updated_at = ?3",
        params![provider, cid, now_ms],
    )?;
    Ok(Some(block))
}

fn statuses(
    c: &Connection,
    filter: &str,
    p: impl rusqlite::Params,
) -> Result<Vec<AdStatus>, IpniError> {
    let mut q = c.prepare(&format!(
        "SELECT cid, provider, piece_cid, is_rm, entries, created_at, announced_at, indexed_at,
                check_error FROM ads {filter} ORDER BY seq"
    ))?;
    let rows = q
        .query_map(p, |r| {
            Ok((
                r.get::<_, String>(0)?,
                AdStatus {
                    ad: Cid::default(),
                    provider: r.get(1)?,
                    piece: r.get(2)?,
                    is_rm: r.get(3)?,
                    entries: r.get::<_, i64>(4)? as u64,
                    created_at: r.get(5)?,
                    announced_at: r.get(6)?,
                    indexed_at: r.get(7)?,
                    check_error: r.get(8)?,
                },
            ))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    rows.into_iter()
        .map(|(cid, mut s)| {
            s.ad = parse_stored_cid(&cid)?;
            Ok(s)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AdStore;

    fn draft(n: u8) -> AdDraft {
        let mh = cid::multihash::Multihash::<64>::wrap(0x12, &[n; 32]).unwrap();
        AdDraft {
            addresses: vec!["/ip4/127.0.0.1/tcp/1/http".into()],
            context_id: vec![n],
            metadata: vec![0x80, 0x80, 0x04],
            entries: Cid::new_v1(0x0129, mh),
            chunks: Vec::new(),
            entry_count: 1,
            sample: None,
            is_rm: false,
            piece: None,
        }
    }

    async fn announce(store: &SqliteAdStore, provider: &str, now: i64) {
        for due in store
            .due_announces(provider, vec!["http://indexer/announce".into()], now)
            .await
            .unwrap()
        {
            if due.provider == provider {
                store
                    .record_announce(due, Ok(()), now, now, now)
                    .await
                    .unwrap();
            }
        }
    }

    #[tokio::test]
    async fn identities_take_turns_and_none_waits_longer_than_the_turn() {
        let store = SqliteAdStore::open_in_memory().unwrap();
        let (a, b) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
        let (pa, pb) = (
            a.public().to_peer_id().to_string(),
            b.public().to_peer_id().to_string(),
        );
        let turn = 30_000;
        store.append(&a, draft(1), 1_000).await.unwrap();
        announce(&store, &pa, 1_000).await;
        store.append(&b, draft(2), 2_000).await.unwrap();
        // A's ad is announced and unconfirmed: B waits, A does not wait for itself.
        assert!(
            store
                .other_identity_ingesting(&pb, 5_000 - turn)
                .await
                .unwrap()
        );
        assert!(
            !store
                .other_identity_ingesting(&pa, 5_000 - turn)
                .await
                .unwrap()
        );
        // A keeps announcing new ads; B waits no longer than a turn after its ad was made.
        store.append(&a, draft(3), 31_000).await.unwrap();
        announce(&store, &pa, 31_000).await;
        assert!(
            store
                .other_identity_ingesting(&pb, 31_500 - turn)
                .await
                .unwrap()
        );
        assert!(
            !store
                .other_identity_ingesting(&pb, 32_500 - turn)
                .await
                .unwrap()
        );
    }
}
