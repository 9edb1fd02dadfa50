//! Transfer records in SQLite: what to fetch, and how far each chunk has durably got.

use std::path::Path;
use std::str::FromStr;

use commp::PaddedPieceSize;
use market_core::Cid;
use market_core::db::Db;
use rusqlite::{Connection, OptionalExtension, params};

use crate::TransferError;
use crate::transfer::{Chunk, TransferId, TransferRecord, TransferRequest, TransferState};

const MIGRATIONS: &[&str] = &["
    CREATE TABLE transfers (
        id           TEXT PRIMARY KEY,
        url          TEXT NOT NULL,
        headers      TEXT NOT NULL,
        size         INTEGER NOT NULL,
        padded_size  INTEGER,
        host         TEXT NOT NULL,
        chunks       TEXT NOT NULL,
        state        TEXT NOT NULL,
        error        TEXT NOT NULL DEFAULT '',
        piece_cid    TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
    );
    CREATE INDEX transfers_state ON transfers(state);
"];

/// SQLite-backed transfer records. Cheap to clone.
#[derive(Clone)]
pub(crate) struct TransferStore {
    db: Db,
}

fn corrupt(e: impl std::fmt::Display) -> TransferError {
    TransferError::Corrupt(e.to_string())
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl TransferStore {
    pub(crate) fn open(path: &Path) -> Result<Self, TransferError> {
        Ok(Self {
            db: Db::named(
                "transfers",
                market_core::db::open_migrated(path, MIGRATIONS)?,
            ),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, TransferError> + Send + 'static,
    ) -> Result<T, TransferError> {
        self.db.call(move |c| f(c)).await
    }

    pub(crate) async fn insert(
        &self,
        req: &TransferRequest,
        host: &str,
        chunks: &[Chunk],
    ) -> Result<(), TransferError> {
        let (req, host) = (req.clone(), host.to_owned());
        let chunks = serde_json::to_string(chunks).map_err(corrupt)?;
        self.with(move |c| {
            let headers = serde_json::to_string(&req.headers).map_err(corrupt)?;
            c.execute(
                "INSERT INTO transfers (id, url, headers, size, padded_size, host, chunks, state,
                     created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
                params![
                    req.id.as_str(),
                    req.url,
                    headers,
                    req.size as i64,
                    req.padded_size.map(|p| p.get() as i64),
                    host,
                    chunks,
                    TransferState::Queued.as_str(),
                    now()
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn set_chunks(
        &self,
        id: &TransferId,
        chunks: &[Chunk],
    ) -> Result<(), TransferError> {
        let id = id.clone();
        let chunks = serde_json::to_string(chunks).map_err(corrupt)?;
        self.with(move |c| {
            c.execute(
                "UPDATE transfers SET chunks = ?2, updated_at = ?3 WHERE id = ?1",
                params![id.as_str(), chunks, now()],
            )?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn set_state(
        &self,
        id: &TransferId,
        state: TransferState,
        error: &str,
        piece: Option<Cid>,
    ) -> Result<(), TransferError> {
        let (id, error) = (id.clone(), error.to_owned());
        self.with(move |c| {
            c.execute(
                "UPDATE transfers SET state = ?2, error = ?3, piece_cid = COALESCE(?4, piece_cid),
                     updated_at = ?5 WHERE id = ?1",
                params![
                    id.as_str(),
                    state.as_str(),
                    error,
                    piece.map(|p| p.to_string()),
                    now()
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Bytes held in staging overall and by `host`: every transfer not failed, cancelled or
    /// removed.
    pub(crate) async fn staged_bytes(&self, host: &str) -> Result<(u64, u64), TransferError> {
        let host = host.to_owned();
        self.with(move |c| {
            let (total, per_host): (i64, i64) = c.query_row(
                "SELECT COALESCE(SUM(size), 0),
                        COALESCE(SUM(CASE WHEN host = ?1 THEN size ELSE 0 END), 0)
                 FROM transfers WHERE state NOT IN (?2, ?3)",
                params![
                    host,
                    TransferState::Failed.as_str(),
                    TransferState::Cancelled.as_str()
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok((total as u64, per_host as u64))
        })
        .await
    }

    pub(crate) async fn delete(&self, id: &TransferId) -> Result<(), TransferError> {
        let id = id.clone();
        self.with(move |c| {
            c.execute("DELETE FROM transfers WHERE id = ?1", [id.as_str()])?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn get(
        &self,
        id: &TransferId,
    ) -> Result<Option<TransferRecord>, TransferError> {
        let id = id.clone();
        self.with(move |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM transfers WHERE id = ?1"),
                [id.as_str()],
                row,
            )
            .optional()?
            .map(decode)
            .transpose()
        })
        .await
    }

    pub(crate) async fn list(&self) -> Result<Vec<TransferRecord>, TransferError> {
        self.with(|c| {
            let mut st = c.prepare(&format!(
                "SELECT {COLUMNS} FROM transfers ORDER BY created_at, id"
            ))?;
            let rows = st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
            rows.into_iter().map(decode).collect()
        })
        .await
    }
}

const COLUMNS: &str = "id, url, headers, size, padded_size, host, chunks, state, error, piece_cid";

type Row = (
    String,
    String,
    String,
    i64,
    Option<i64>,
    String,
    String,
    String,
    String,
    Option<String>,
);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
    ))
}

fn decode(r: Row) -> Result<TransferRecord, TransferError> {
    let (id, url, headers, size, padded, host, chunks, state, error, piece) = r;
    Ok(TransferRecord {
        request: TransferRequest {
            id: TransferId::new(id).map_err(corrupt)?,
            url,
            headers: serde_json::from_str(&headers).map_err(corrupt)?,
            size: size as u64,
            padded_size: padded
                .map(|p| PaddedPieceSize::new(p as u64))
                .transpose()
                .map_err(corrupt)?,
        },
        host,
        chunks: serde_json::from_str(&chunks).map_err(corrupt)?,
        state: TransferState::from_str(&state).map_err(corrupt)?,
        error,
        piece_cid: piece
            .map(|p| Cid::from_str(&p))
            .transpose()
            .map_err(corrupt)?,
    })
}
