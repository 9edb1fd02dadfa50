//! [`PieceIndex`] on Postgres: the SQLite index's tables in Postgres types, so every instance
//! sharing the database finds every piece's deals, payload roots and blocks, and serves CAR
//! retrieval of pieces another instance received.

use std::collections::HashMap;
use std::str::FromStr;

use market_core::Cid;
use piecestore::{
    BlockEntry, DealRecord, IndexReport, PaddedPieceSize, PieceIndex, PieceMeta, PieceRecord,
    PieceStoreError, check_piece_cid,
};

use crate::db::{Migration, PgDb, PgError, unix_now};

const COMPONENT: &str = "piece_index";

// `offset` is a reserved word in Postgres, hence `data_offset` and `sector_offset`.
const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    sql: "CREATE TABLE pieces (
            piece_cid     TEXT PRIMARY KEY,
            payload_size  BIGINT NOT NULL,
            padded_size   BIGINT NOT NULL,
            indexed       BOOLEAN NOT NULL DEFAULT FALSE,
            index_error   TEXT,
            block_count   BIGINT NOT NULL DEFAULT 0,
            created_at    BIGINT NOT NULL
        );
        CREATE TABLE piece_deals (
            piece_cid     TEXT NOT NULL,
            miner         TEXT NOT NULL,
            deal_id       BIGINT NOT NULL,
            sector        BIGINT NOT NULL,
            sector_offset BIGINT NOT NULL,
            piece_length  BIGINT NOT NULL,
            PRIMARY KEY (piece_cid, miner, deal_id)
        );
        CREATE TABLE payload_roots (
            root_cid   TEXT NOT NULL,
            piece_cid  TEXT NOT NULL,
            PRIMARY KEY (root_cid, piece_cid)
        );
        CREATE INDEX payload_roots_by_piece ON payload_roots(piece_cid);
        CREATE TABLE blocks (
            multihash    BYTEA NOT NULL,
            piece_cid    TEXT NOT NULL,
            data_offset  BIGINT NOT NULL,
            data_size    BIGINT NOT NULL,
            PRIMARY KEY (multihash, piece_cid)
        );
        CREATE INDEX blocks_by_piece ON blocks(piece_cid);",
}];

fn db(e: impl Into<PgError>) -> PieceStoreError {
    PieceStoreError::Database(Box::new(e.into()))
}

fn corrupt(e: impl std::fmt::Display) -> PieceStoreError {
    PieceStoreError::Corrupt(e.to_string())
}

fn parse_cid(s: &str) -> Result<Cid, PieceStoreError> {
    Cid::from_str(s).map_err(corrupt)
}

fn to_u64(v: i64) -> Result<u64, PieceStoreError> {
    u64::try_from(v).map_err(|_| corrupt(format!("negative size or offset {v}")))
}

/// The piece index in Postgres. Cheap to clone; several provider instances may share one.
#[derive(Debug, Clone)]
pub struct PgPieceIndex {
    db: PgDb,
}

impl PgPieceIndex {
    /// Migrates `db` (once, whoever starts first) and returns the index.
    pub async fn open(db: PgDb) -> Result<Self, PgError> {
        db.migrate(COMPONENT, MIGRATIONS).await?;
        Ok(Self { db })
    }
}

#[async_trait::async_trait]
impl PieceIndex for PgPieceIndex {
    async fn begin_piece(&self, piece: &Cid) -> Result<(), PieceStoreError> {
        check_piece_cid(piece)?;
        let key = piece.to_string();
        let mut c = self.db.conn().await.map_err(db)?;
        let tx = c.transaction().await.map_err(db)?;
        for sql in [
            "DELETE FROM blocks WHERE piece_cid = $1",
            "DELETE FROM payload_roots WHERE piece_cid = $1",
            "UPDATE pieces SET indexed = FALSE, index_error = NULL, block_count = 0
             WHERE piece_cid = $1",
        ] {
            tx.execute(sql, &[&key]).await.map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }

    /// One statement per batch: the rows go as four arrays, so 8,192 blocks cost one round
    /// trip, not 8,192. A block twice in one CAR keeps its first place (either reads the
    /// same bytes).
    async fn add_blocks(&self, piece: &Cid, batch: Vec<BlockEntry>) -> Result<(), PieceStoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut hashes = Vec::with_capacity(batch.len());
        let mut offsets = Vec::with_capacity(batch.len());
        let mut sizes = Vec::with_capacity(batch.len());
        for b in &batch {
            hashes.push(b.cid.hash().to_bytes());
            offsets.push(i64::try_from(b.offset).map_err(corrupt)?);
            sizes.push(i64::try_from(b.size).map_err(corrupt)?);
        }
        let key = piece.to_string();
        let c = self.db.conn().await.map_err(db)?;
        let stmt = c
            .prepare_cached(
                "INSERT INTO blocks (multihash, piece_cid, data_offset, data_size)
                 SELECT m, $2, o, s FROM UNNEST($1::BYTEA[], $3::BIGINT[], $4::BIGINT[]) AS t(m, o, s)
                 ON CONFLICT DO NOTHING",
            )
            .await
            .map_err(db)?;
        c.execute(&stmt, &[&hashes, &key, &offsets, &sizes])
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn finish_piece(
        &self,
        meta: PieceMeta,
        report: &IndexReport,
    ) -> Result<(), PieceStoreError> {
        check_piece_cid(&meta.piece_cid)?;
        let key = meta.piece_cid.to_string();
        let mut c = self.db.conn().await.map_err(db)?;
        let tx = c.transaction().await.map_err(db)?;
        if report.error.is_some() {
            tx.execute("DELETE FROM blocks WHERE piece_cid = $1", &[&key])
                .await
                .map_err(db)?;
        }
        for r in &report.roots {
            tx.execute(
                "INSERT INTO payload_roots (root_cid, piece_cid) VALUES ($1, $2)
                 ON CONFLICT DO NOTHING",
                &[&r.to_string(), &key],
            )
            .await
            .map_err(db)?;
        }
        tx.execute(
            "INSERT INTO pieces (piece_cid, payload_size, padded_size, indexed, index_error,
                 block_count, created_at)
             VALUES ($1, $2, $3, TRUE, $4, $5, $6)
             ON CONFLICT (piece_cid) DO UPDATE SET payload_size = $2, padded_size = $3,
                 indexed = TRUE, index_error = $4, block_count = $5",
            &[
                &key,
                &i64::try_from(meta.payload_size).map_err(corrupt)?,
                &i64::try_from(meta.padded_size.get()).map_err(corrupt)?,
                &report.error,
                &i64::try_from(report.blocks).map_err(corrupt)?,
                &unix_now(),
            ],
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn add_deal(&self, piece: &Cid, deal: DealRecord) -> Result<(), PieceStoreError> {
        check_piece_cid(piece)?;
        let c = self.db.conn().await.map_err(db)?;
        let int = |v: u64| i64::try_from(v).map_err(corrupt);
        c.execute(
            "INSERT INTO piece_deals (piece_cid, miner, deal_id, sector, sector_offset,
                 piece_length)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (piece_cid, miner, deal_id) DO UPDATE SET sector = $4,
                 sector_offset = $5, piece_length = $6",
            &[
                &piece.to_string(),
                &deal.miner,
                &int(deal.deal_id)?,
                &int(deal.sector)?,
                &int(deal.offset)?,
                &int(deal.length)?,
            ],
        )
        .await
        .map_err(db)?;
        Ok(())
    }

    async fn piece(&self, piece: &Cid) -> Result<Option<PieceRecord>, PieceStoreError> {
        let key = piece.to_string();
        let c = self.db.conn().await.map_err(db)?;
        let Some(row) = c
            .query_opt(
                "SELECT payload_size, padded_size, indexed, index_error, block_count
                 FROM pieces WHERE piece_cid = $1",
                &[&key],
            )
            .await
            .map_err(db)?
        else {
            return Ok(None);
        };
        let padded: i64 = row.try_get(1).map_err(db)?;
        let padded_size = PaddedPieceSize::new(to_u64(padded)?).map_err(corrupt)?;
        // Sorted here rather than by the server's collation, so every backend (and locale)
        // answers in the same order.
        let mut roots = c
            .query(
                "SELECT root_cid FROM payload_roots WHERE piece_cid = $1",
                &[&key],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.try_get::<_, String>(0).map_err(db))
            .collect::<Result<Vec<_>, _>>()?;
        roots.sort();
        let roots = roots
            .iter()
            .map(|s| parse_cid(s))
            .collect::<Result<_, _>>()?;
        let deals = c
            .query(
                "SELECT miner, deal_id, sector, sector_offset, piece_length FROM piece_deals
                 WHERE piece_cid = $1 ORDER BY deal_id, miner COLLATE \"C\"",
                &[&key],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                let n = |i: usize| r.try_get::<_, i64>(i).map_err(db).and_then(to_u64);
                Ok(DealRecord {
                    miner: r.try_get(0).map_err(db)?,
                    deal_id: n(1)?,
                    sector: n(2)?,
                    offset: n(3)?,
                    length: n(4)?,
                })
            })
            .collect::<Result<_, PieceStoreError>>()?;
        Ok(Some(PieceRecord {
            meta: PieceMeta {
                piece_cid: *piece,
                payload_size: to_u64(row.try_get(0).map_err(db)?)?,
                padded_size,
            },
            indexed: row.try_get(2).map_err(db)?,
            index_error: row.try_get(3).map_err(db)?,
            block_count: to_u64(row.try_get(4).map_err(db)?)?,
            roots,
            deals,
        }))
    }

    async fn pieces_for_root(&self, root: &Cid) -> Result<Vec<Cid>, PieceStoreError> {
        let c = self.db.conn().await.map_err(db)?;
        let mut pieces = c
            .query(
                "SELECT piece_cid FROM payload_roots WHERE root_cid = $1",
                &[&root.to_string()],
            )
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.try_get::<_, String>(0).map_err(db))
            .collect::<Result<Vec<_>, _>>()?;
        pieces.sort();
        pieces.iter().map(|s| parse_cid(s)).collect()
    }

    /// One query for all of `cids` (`= ANY` of an array): a DAG node's children cost one
    /// round trip to the database, not one each.
    async fn find_blocks(
        &self,
        cids: &[Cid],
    ) -> Result<Vec<Vec<(Cid, u64, u64)>>, PieceStoreError> {
        if cids.is_empty() {
            return Ok(Vec::new());
        }
        let hashes: Vec<Vec<u8>> = cids.iter().map(|c| c.hash().to_bytes()).collect();
        let c = self.db.conn().await.map_err(db)?;
        let stmt = c
            .prepare_cached(
                "SELECT multihash, piece_cid, data_offset, data_size FROM blocks
                 WHERE multihash = ANY($1::BYTEA[])",
            )
            .await
            .map_err(db)?;
        let rows = c.query(&stmt, &[&hashes]).await.map_err(db)?;
        let mut pieces: HashMap<String, Cid> = HashMap::new();
        let mut found: HashMap<Vec<u8>, Vec<(String, Cid, u64, u64)>> = HashMap::new();
        for r in &rows {
            let text: String = r.try_get(1).map_err(db)?;
            let piece = match pieces.get(&text) {
                Some(p) => *p,
                None => {
                    let p = parse_cid(&text)?;
                    pieces.insert(text.clone(), p);
                    p
                }
            };
            let place = (
                text,
                piece,
                to_u64(r.try_get(2).map_err(db)?)?,
                to_u64(r.try_get(3).map_err(db)?)?,
            );
            found
                .entry(r.try_get(0).map_err(db)?)
                .or_default()
                .push(place);
        }
        Ok(hashes
            .iter()
            .map(|h| {
                let mut places = found.get(h).cloned().unwrap_or_default();
                places.sort_by(|a, b| a.0.cmp(&b.0));
                places.into_iter().map(|(_, p, o, s)| (p, o, s)).collect()
            })
            .collect())
    }

    async fn blocks(&self, piece: &Cid) -> Result<Vec<(Vec<u8>, u64, u64)>, PieceStoreError> {
        let c = self.db.conn().await.map_err(db)?;
        c.query(
            "SELECT multihash, data_offset, data_size FROM blocks WHERE piece_cid = $1
             ORDER BY data_offset",
            &[&piece.to_string()],
        )
        .await
        .map_err(db)?
        .iter()
        .map(|r| {
            Ok((
                r.try_get(0).map_err(db)?,
                to_u64(r.try_get(1).map_err(db)?)?,
                to_u64(r.try_get(2).map_err(db)?)?,
            ))
        })
        .collect()
    }

    async fn remove_piece(&self, piece: &Cid) -> Result<(), PieceStoreError> {
        let key = piece.to_string();
        let mut c = self.db.conn().await.map_err(db)?;
        let tx = c.transaction().await.map_err(db)?;
        for table in ["blocks", "payload_roots", "piece_deals", "pieces"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE piece_cid = $1"),
                &[&key],
            )
            .await
            .map_err(db)?;
        }
        tx.commit().await.map_err(db)
    }
}
