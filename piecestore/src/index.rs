//! The piece index: which deals hold a piece, which pieces hold a payload root, and where
//! each block of a piece is.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use commp::PaddedPieceSize;
use market_core::Cid;
use market_core::db::Db;
use rusqlite::{Connection, OptionalExtension, params};
use tokio::io::AsyncReadExt;

use crate::PieceStoreError;
use crate::car::{BlockEntry, CarIndexer};
use crate::store::{PieceMeta, PieceReader, check_piece_cid};

/// Schema migrations in order, recorded in `PRAGMA user_version`. Append only.
const MIGRATIONS: &[&str] = &["
    CREATE TABLE pieces (
        piece_cid     TEXT PRIMARY KEY,
        payload_size  INTEGER NOT NULL,
        padded_size   INTEGER NOT NULL,
        indexed       INTEGER NOT NULL DEFAULT 0,
        index_error   TEXT,
        block_count   INTEGER NOT NULL DEFAULT 0,
        created_at    INTEGER NOT NULL
    );
    CREATE TABLE piece_deals (
        piece_cid  TEXT NOT NULL,
        miner      TEXT NOT NULL,
        deal_id    INTEGER NOT NULL,
        sector     INTEGER NOT NULL,
        offset     INTEGER NOT NULL,
        length     INTEGER NOT NULL,
        PRIMARY KEY (piece_cid, miner, deal_id)
    );
    CREATE TABLE payload_roots (
        root_cid   TEXT NOT NULL,
        piece_cid  TEXT NOT NULL,
        PRIMARY KEY (root_cid, piece_cid)
    );
    CREATE TABLE blocks (
        multihash  BLOB NOT NULL,
        piece_cid  TEXT NOT NULL,
        offset     INTEGER NOT NULL,
        size       INTEGER NOT NULL,
        PRIMARY KEY (multihash, piece_cid)
    ) WITHOUT ROWID;
    CREATE INDEX blocks_by_piece ON blocks(piece_cid);
"];

/// Block rows written per transaction while indexing.
const BATCH: usize = 8192;

/// A deal that holds a piece, and where the piece sits in its sector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DealRecord {
    /// The miner (address text, e.g. `f01000`).
    pub miner: String,
    /// The on-chain deal id.
    pub deal_id: u64,
    /// The sector number.
    pub sector: u64,
    /// Padded offset of the piece in the sector.
    pub offset: u64,
    /// Padded length of the piece.
    pub length: u64,
}

/// What the index knows of a piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceRecord {
    /// Sizes and CID.
    pub meta: PieceMeta,
    /// Whether its block index is complete.
    pub indexed: bool,
    /// Why the payload could not be indexed (not a CARv1), if so.
    pub index_error: Option<String>,
    /// Blocks indexed.
    pub block_count: u64,
    /// Payload roots found in its CAR header.
    pub roots: Vec<Cid>,
    /// Deals holding it.
    pub deals: Vec<DealRecord>,
}

/// The outcome of indexing one piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexReport {
    /// Roots of the CAR header.
    pub roots: Vec<Cid>,
    /// Blocks indexed.
    pub blocks: u64,
    /// Why the payload is not a CARv1 (then no blocks are kept); the piece is still recorded.
    pub error: Option<String>,
}

/// What is where: the deals holding each piece, the pieces holding each payload root, and
/// each block's place in its piece. [`SqlitePieceIndex`] keeps it in one SQLite file;
/// `market_postgres::PgPieceIndex` in a Postgres that several provider instances share. Both
/// run `testing::piece_index_conformance` (feature `testing`).
///
/// A piece is indexed in three steps so that blocks can be recorded while its bytes stream
/// past ([`PieceIndexer`]): [`begin_piece`](Self::begin_piece) forgets an earlier index,
/// [`add_blocks`](Self::add_blocks) adds batches, [`finish_piece`](Self::finish_piece)
/// records the piece, its roots and the outcome.
#[async_trait::async_trait]
pub trait PieceIndex: Send + Sync {
    /// Starts (or restarts) indexing `piece`: its earlier blocks and roots are forgotten.
    async fn begin_piece(&self, piece: &Cid) -> Result<(), PieceStoreError>;
    /// Adds blocks of a piece being indexed.
    async fn add_blocks(&self, piece: &Cid, blocks: Vec<BlockEntry>)
    -> Result<(), PieceStoreError>;
    /// Records the piece with its sizes and the outcome of indexing: roots and block count,
    /// or why the payload is not a CAR (then its blocks are dropped).
    async fn finish_piece(
        &self,
        meta: PieceMeta,
        report: &IndexReport,
    ) -> Result<(), PieceStoreError>;
    /// Records that `deal` holds `piece` (idempotent).
    async fn add_deal(&self, piece: &Cid, deal: DealRecord) -> Result<(), PieceStoreError>;
    /// What is known of `piece`.
    async fn piece(&self, piece: &Cid) -> Result<Option<PieceRecord>, PieceStoreError>;
    /// Pieces whose CAR header names `root`.
    async fn pieces_for_root(&self, root: &Cid) -> Result<Vec<Cid>, PieceStoreError>;
    /// Where a block is, in each piece that holds it: (piece, payload offset of its data,
    /// size), matched on the multihash alone, so a block is found whatever codec the
    /// asker's CID carries (as Boost's index does).
    async fn find_block(&self, cid: &Cid) -> Result<Vec<(Cid, u64, u64)>, PieceStoreError> {
        Ok(self
            .find_blocks(std::slice::from_ref(cid))
            .await?
            .pop()
            .unwrap_or_default())
    }
    /// [`find_block`](Self::find_block) for each of `cids`, in order, in one call: the
    /// children of a DAG node cost one trip to the database.
    async fn find_blocks(&self, cids: &[Cid])
    -> Result<Vec<Vec<(Cid, u64, u64)>>, PieceStoreError>;
    /// Every block of `piece`: (multihash bytes, data offset, size), in payload order.
    async fn blocks(&self, piece: &Cid) -> Result<Vec<(Vec<u8>, u64, u64)>, PieceStoreError>;
    /// Forgets `piece` and its blocks, roots and deals.
    async fn remove_piece(&self, piece: &Cid) -> Result<(), PieceStoreError>;
}

/// Indexes a whole payload read from `data`: for a piece already stored (re-indexing); new
/// pieces are indexed as they arrive, with [`PieceIndexer`].
pub async fn index_payload(
    index: &dyn PieceIndex,
    meta: PieceMeta,
    mut data: PieceReader,
) -> Result<IndexReport, PieceStoreError> {
    let mut indexer = PieceIndexer::begin(index, &meta.piece_cid).await?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = data.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        indexer.push(&buf[..n]).await?;
    }
    indexer.finish(meta).await
}

/// Records blocks found while the payload was hashed (a finished transfer's
/// [`CarBlocks`](crate::CarBlocks)), without reading the piece again.
pub async fn index_blocks(
    index: &dyn PieceIndex,
    meta: PieceMeta,
    blocks: crate::CarBlocks,
) -> Result<IndexReport, PieceStoreError> {
    index.begin_piece(&meta.piece_cid).await?;
    let count = blocks.entries.len() as u64;
    let mut entries = blocks.entries;
    while !entries.is_empty() {
        let rest = entries.split_off(entries.len().min(BATCH));
        index.add_blocks(&meta.piece_cid, entries).await?;
        entries = rest;
    }
    let report = IndexReport {
        roots: blocks.roots,
        blocks: if blocks.error.is_some() { 0 } else { count },
        error: blocks.error,
    };
    index.finish_piece(meta, &report).await?;
    Ok(report)
}

/// Builds a piece's block index from its payload as the bytes go past (into the piece
/// store, say), in constant memory: blocks reach the index in batches while data still
/// arrives. A payload that is not a CARv1 is still a piece; it is recorded with the reason
/// and no blocks.
pub struct PieceIndexer<'a> {
    index: &'a dyn PieceIndex,
    piece: Cid,
    parser: CarIndexer,
    batch: Vec<BlockEntry>,
    error: Option<String>,
}

impl<'a> PieceIndexer<'a> {
    /// Starts indexing `piece` in `index`.
    pub async fn begin(index: &'a dyn PieceIndex, piece: &Cid) -> Result<Self, PieceStoreError> {
        index.begin_piece(piece).await?;
        Ok(Self {
            index,
            piece: *piece,
            parser: CarIndexer::new(),
            batch: Vec::with_capacity(BATCH),
            error: None,
        })
    }

    /// The next bytes of the payload.
    pub async fn push(&mut self, chunk: &[u8]) -> Result<(), PieceStoreError> {
        if self.error.is_some() {
            return Ok(());
        }
        let batch = &mut self.batch;
        if let Err(e) = self.parser.update(chunk, &mut |b| batch.push(b)) {
            self.error = Some(e.to_string());
            self.batch.clear();
            return Ok(());
        }
        if self.batch.len() >= BATCH {
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH));
            self.index.add_blocks(&self.piece, full).await?;
        }
        Ok(())
    }

    /// Ends the payload; `meta` is what the piece store recorded for it.
    pub async fn finish(mut self, meta: PieceMeta) -> Result<IndexReport, PieceStoreError> {
        let blocks = self.parser.blocks();
        let roots = match self.error {
            Some(_) => Vec::new(),
            None => match self.parser.finish() {
                Ok(r) => r,
                Err(e) => {
                    self.error = Some(e.to_string());
                    Vec::new()
                }
            },
        };
        if self.error.is_none() {
            self.index
                .add_blocks(&self.piece, std::mem::take(&mut self.batch))
                .await?;
        }
        let report = IndexReport {
            roots,
            blocks: if self.error.is_some() { 0 } else { blocks },
            error: self.error,
        };
        self.index.finish_piece(meta, &report).await?;
        Ok(report)
    }
}

/// SQLite-backed piece index. Cheap to clone.
#[derive(Clone)]
pub struct SqlitePieceIndex {
    db: Db,
}

impl std::fmt::Debug for SqlitePieceIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlitePieceIndex").finish_non_exhaustive()
    }
}

fn corrupt(e: impl std::fmt::Display) -> PieceStoreError {
    PieceStoreError::Corrupt(e.to_string())
}

fn parse_cid(s: &str) -> Result<Cid, PieceStoreError> {
    Cid::from_str(s).map_err(corrupt)
}

impl SqlitePieceIndex {
    /// Opens (creating and migrating) the index database at `path`.
    pub fn open(path: &Path) -> Result<Self, PieceStoreError> {
        Ok(Self {
            db: Db::named("index", market_core::db::open_migrated(path, MIGRATIONS)?),
        })
    }

    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, PieceStoreError> + Send + 'static,
    ) -> Result<T, PieceStoreError> {
        self.db.call(f).await
    }

    fn begin_blocking(c: &mut Connection, piece: &str) -> Result<(), PieceStoreError> {
        let tx = c.transaction()?;
        tx.execute("DELETE FROM blocks WHERE piece_cid = ?1", [piece])?;
        tx.execute("DELETE FROM payload_roots WHERE piece_cid = ?1", [piece])?;
        tx.execute(
            "UPDATE pieces SET indexed = 0, index_error = NULL, block_count = 0
             WHERE piece_cid = ?1",
            [piece],
        )?;
        tx.commit()?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl PieceIndex for SqlitePieceIndex {
    async fn begin_piece(&self, piece: &Cid) -> Result<(), PieceStoreError> {
        check_piece_cid(piece)?;
        let piece = piece.to_string();
        self.with(move |c| Self::begin_blocking(c, &piece)).await
    }

    async fn add_blocks(&self, piece: &Cid, batch: Vec<BlockEntry>) -> Result<(), PieceStoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let piece = piece.to_string();
        self.with(move |c| {
            let tx = c.transaction()?;
            {
                let mut st = tx.prepare_cached(
                    "INSERT OR REPLACE INTO blocks (multihash, piece_cid, offset, size)
                     VALUES (?1, ?2, ?3, ?4)",
                )?;
                for b in &batch {
                    st.execute(params![
                        b.cid.hash().to_bytes(),
                        piece,
                        b.offset as i64,
                        b.size as i64
                    ])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn finish_piece(
        &self,
        meta: PieceMeta,
        report: &IndexReport,
    ) -> Result<(), PieceStoreError> {
        check_piece_cid(&meta.piece_cid)?;
        let piece = meta.piece_cid.to_string();
        let report = report.clone();
        self.with(move |c| {
            let tx = c.transaction()?;
            if report.error.is_some() {
                tx.execute("DELETE FROM blocks WHERE piece_cid = ?1", [&piece])?;
            }
            for r in &report.roots {
                tx.execute(
                    "INSERT OR IGNORE INTO payload_roots (root_cid, piece_cid) VALUES (?1, ?2)",
                    params![r.to_string(), piece],
                )?;
            }
            tx.execute(
                "INSERT INTO pieces (piece_cid, payload_size, padded_size, indexed, index_error,
                     block_count, created_at)
                 VALUES (?1, ?2, ?3, 1, ?4, ?5, strftime('%s','now'))
                 ON CONFLICT(piece_cid) DO UPDATE SET payload_size = ?2, padded_size = ?3,
                     indexed = 1, index_error = ?4, block_count = ?5",
                params![
                    piece,
                    meta.payload_size as i64,
                    meta.padded_size.get() as i64,
                    report.error,
                    report.blocks as i64
                ],
            )?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    /// Records that `deal` holds `piece` (idempotent).
    async fn add_deal(&self, piece: &Cid, deal: DealRecord) -> Result<(), PieceStoreError> {
        check_piece_cid(piece)?;
        let piece = piece.to_string();
        self.with(move |c| {
            c.execute(
                "INSERT OR REPLACE INTO piece_deals (piece_cid, miner, deal_id, sector, offset, length)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    piece,
                    deal.miner,
                    deal.deal_id as i64,
                    deal.sector as i64,
                    deal.offset as i64,
                    deal.length as i64
                ],
            )?;
            Ok(())
        })
        .await
    }

    /// Everything known of `piece`.
    async fn piece(&self, piece: &Cid) -> Result<Option<PieceRecord>, PieceStoreError> {
        let cid = *piece;
        let key = piece.to_string();
        self.with(move |c| {
            let row = c
                .query_row(
                    "SELECT payload_size, padded_size, indexed, index_error, block_count
                     FROM pieces WHERE piece_cid = ?1",
                    [&key],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, bool>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, i64>(4)?,
                        ))
                    },
                )
                .optional()?;
            let Some((payload, padded, indexed, index_error, blocks)) = row else {
                return Ok(None);
            };
            let padded_size = PaddedPieceSize::new(padded as u64).map_err(corrupt)?;
            let mut st = c.prepare_cached(
                "SELECT root_cid FROM payload_roots WHERE piece_cid = ?1 ORDER BY root_cid",
            )?;
            let roots = st
                .query_map([&key], |r| r.get::<_, String>(0))?
                .map(|r| parse_cid(&r?))
                .collect::<Result<Vec<_>, _>>()?;
            let mut st = c.prepare_cached(
                "SELECT miner, deal_id, sector, offset, length FROM piece_deals
                 WHERE piece_cid = ?1 ORDER BY deal_id",
            )?;
            let deals = st
                .query_map([&key], |r| {
                    Ok(DealRecord {
                        miner: r.get(0)?,
                        deal_id: r.get::<_, i64>(1)? as u64,
                        sector: r.get::<_, i64>(2)? as u64,
                        offset: r.get::<_, i64>(3)? as u64,
                        length: r.get::<_, i64>(4)? as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(PieceRecord {
                meta: PieceMeta {
                    piece_cid: cid,
                    payload_size: payload as u64,
                    padded_size,
                },
                indexed,
                index_error,
                block_count: blocks as u64,
                roots,
                deals,
            }))
        })
        .await
    }

    /// Pieces whose CAR header names `root`.
    async fn pieces_for_root(&self, root: &Cid) -> Result<Vec<Cid>, PieceStoreError> {
        let key = root.to_string();
        self.with(move |c| {
            let mut st = c.prepare_cached(
                "SELECT piece_cid FROM payload_roots WHERE root_cid = ?1 ORDER BY piece_cid",
            )?;
            let rows = st.query_map([&key], |r| r.get::<_, String>(0))?;
            rows.map(|r| parse_cid(&r?)).collect()
        })
        .await
    }

    /// All lookups in one database call, each piece CID parsed once.
    async fn find_blocks(
        &self,
        cids: &[Cid],
    ) -> Result<Vec<Vec<(Cid, u64, u64)>>, PieceStoreError> {
        let hashes: Vec<Vec<u8>> = cids.iter().map(|c| c.hash().to_bytes()).collect();
        self.with(move |c| {
            let mut st = c.prepare_cached(
                "SELECT piece_cid, offset, size FROM blocks WHERE multihash = ?1 ORDER BY piece_cid",
            )?;
            let mut pieces: HashMap<String, Cid> = HashMap::new();
            let mut out = Vec::with_capacity(hashes.len());
            for mh in &hashes {
                let mut found = Vec::new();
                let mut rows = st.query([mh])?;
                while let Some(r) = rows.next()? {
                    let text: String = r.get(0)?;
                    let piece = match pieces.get(&text) {
                        Some(p) => *p,
                        None => {
                            let p = parse_cid(&text)?;
                            pieces.insert(text, p);
                            p
                        }
                    };
                    found.push((piece, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64));
                }
                out.push(found);
            }
            Ok(out)
        })
        .await
    }

    /// Every block of `piece` in payload order: `(multihash bytes, offset, size)`.
    async fn blocks(&self, piece: &Cid) -> Result<Vec<(Vec<u8>, u64, u64)>, PieceStoreError> {
        let key = piece.to_string();
        self.with(move |c| {
            let mut st = c.prepare_cached(
                "SELECT multihash, offset, size FROM blocks WHERE piece_cid = ?1 ORDER BY offset",
            )?;
            let rows = st.query_map([&key], |r| {
                Ok((
                    r.get(0)?,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    /// Forgets `piece`: its record, deals, roots and blocks.
    async fn remove_piece(&self, piece: &Cid) -> Result<(), PieceStoreError> {
        let key = piece.to_string();
        self.with(move |c| {
            let tx = c.transaction()?;
            for table in ["blocks", "payload_roots", "piece_deals", "pieces"] {
                tx.execute(&format!("DELETE FROM {table} WHERE piece_cid = ?1"), [&key])?;
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }
}
