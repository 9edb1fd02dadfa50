//! Several piece stores as one (droplet's `[PieceStorage]` with several `Fs` and `S3`
//! entries): a write goes to the store [`choose_store`] picks, a read to whichever store holds
//! the piece.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use market_core::Cid;

use crate::PieceStoreError;
use crate::store::{ByteRange, ExpectedPiece, PieceMeta, PieceReader, PieceStore, StagedPiece};

/// One store of a [`MultiPieceStore`].
#[derive(Clone)]
pub struct StoreEntry {
    /// For operators and logs (`local`, `oss`).
    pub name: String,
    /// The store.
    pub store: Arc<dyn PieceStore>,
    /// Higher is written first.
    pub priority: i32,
    /// Read from, never written to nor deleted from (a store another system fills).
    pub read_only: bool,
}

impl std::fmt::Debug for StoreEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreEntry")
            .field("name", &self.name)
            .field("priority", &self.priority)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

/// What the write rule knows of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Higher is preferred.
    pub priority: i32,
    /// Never written.
    pub read_only: bool,
    /// Bytes free, if the store knows (`None`: unbounded, like a bucket).
    pub free: Option<u64>,
}

/// The store a payload of up to `need` bytes is written to: among the writable stores with
/// room for it, the highest priority, then the most free space (unbounded counts as most),
/// then the first listed. `None` when no store fits.
pub fn choose_store(candidates: &[Candidate], need: u64) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.read_only && c.free.is_none_or(|f| f >= need))
        .max_by_key(|(i, c)| {
            (
                c.priority,
                c.free.unwrap_or(u64::MAX),
                std::cmp::Reverse(*i),
            )
        })
        .map(|(i, _)| i)
}

/// Several piece stores behind one [`PieceStore`].
#[derive(Debug)]
pub struct MultiPieceStore {
    entries: Vec<StoreEntry>,
    /// Where pieces were last found or written: a read goes there first.
    located: Mutex<HashMap<Cid, usize>>,
}

impl MultiPieceStore {
    /// The stores, searched in priority order (then as listed) on reads.
    pub fn new(mut entries: Vec<StoreEntry>) -> Result<Self, PieceStoreError> {
        if entries.is_empty() {
            return Err(PieceStoreError::Config("no piece store configured".into()));
        }
        // Stable: equal priorities keep the order they were listed in.
        entries.sort_by_key(|e| std::cmp::Reverse(e.priority));
        Ok(Self {
            entries,
            located: Mutex::default(),
        })
    }

    /// The stores, highest priority first.
    pub fn entries(&self) -> &[StoreEntry] {
        &self.entries
    }

    fn located(&self) -> std::sync::MutexGuard<'_, HashMap<Cid, usize>> {
        self.located.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The store a write of up to `need` bytes goes to.
    pub async fn writer(&self, need: u64) -> Result<&StoreEntry, PieceStoreError> {
        let mut candidates = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let free = if e.read_only {
                None
            } else {
                e.store.free_space().await?
            };
            candidates.push(Candidate {
                priority: e.priority,
                read_only: e.read_only,
                free,
            });
        }
        let i = choose_store(&candidates, need).ok_or(PieceStoreError::NoStoreFits(need))?;
        Ok(&self.entries[i])
    }

    fn remember(&self, piece: Cid, entry: &StoreEntry) {
        if let Some(i) = self.entries.iter().position(|e| std::ptr::eq(e, entry)) {
            let mut located = self.located();
            if located.len() >= 1 << 16 {
                located.clear();
            }
            located.insert(piece, i);
        }
    }

    /// The store holding `piece` and what it holds: the remembered one first, then every store
    /// in order.
    async fn locate(&self, piece: &Cid) -> Result<Option<(usize, PieceMeta)>, PieceStoreError> {
        let hint = self.located().get(piece).copied();
        if let Some(i) = hint {
            if let Some(m) = self.entries[i].store.stat(piece).await? {
                return Ok(Some((i, m)));
            }
            self.located().remove(piece);
        }
        for (i, e) in self.entries.iter().enumerate() {
            if Some(i) == hint {
                continue;
            }
            if let Some(m) = e.store.stat(piece).await? {
                self.located().insert(*piece, i);
                return Ok(Some((i, m)));
            }
        }
        Ok(None)
    }

    /// The name of the store holding `piece`, if any.
    pub async fn holder(&self, piece: &Cid) -> Result<Option<&str>, PieceStoreError> {
        Ok(self
            .locate(piece)
            .await?
            .map(|(i, _)| self.entries[i].name.as_str()))
    }
}

#[async_trait::async_trait]
impl PieceStore for MultiPieceStore {
    async fn put(
        &self,
        data: PieceReader,
        expect: Option<ExpectedPiece>,
    ) -> Result<PieceMeta, PieceStoreError> {
        let need = expect.map_or(0, |e| u64::from(e.padded_size.unpadded()));
        let entry = self.writer(need).await?;
        let meta = entry.store.put(data, expect).await?;
        self.remember(meta.piece_cid, entry);
        Ok(meta)
    }

    async fn put_verified(
        &self,
        data: PieceReader,
        meta: PieceMeta,
    ) -> Result<(), PieceStoreError> {
        let entry = self.writer(meta.payload_size).await?;
        entry.store.put_verified(data, meta).await?;
        self.remember(meta.piece_cid, entry);
        Ok(())
    }

    async fn put_staged(&self, staged: StagedPiece) -> Result<(), PieceStoreError> {
        let meta = staged.meta();
        let entry = self.writer(meta.payload_size).await?;
        entry.store.put_staged(staged).await?;
        self.remember(meta.piece_cid, entry);
        Ok(())
    }

    async fn get(
        &self,
        piece: &Cid,
        range: Option<ByteRange>,
    ) -> Result<PieceReader, PieceStoreError> {
        let (i, _) = self
            .locate(piece)
            .await?
            .ok_or_else(|| PieceStoreError::NotFound(Box::new(*piece)))?;
        self.entries[i].store.get(piece, range).await
    }

    async fn read_at(&self, piece: &Cid, range: ByteRange) -> Result<Bytes, PieceStoreError> {
        // A CAR retrieval reads many blocks of one piece: go straight to the remembered store.
        let hint = self.located().get(piece).copied();
        if let Some(i) = hint {
            match self.entries[i].store.read_at(piece, range).await {
                Err(PieceStoreError::NotFound(_)) => {
                    self.located().remove(piece);
                }
                other => return other,
            }
        }
        let (i, _) = self
            .locate(piece)
            .await?
            .ok_or_else(|| PieceStoreError::NotFound(Box::new(*piece)))?;
        self.entries[i].store.read_at(piece, range).await
    }

    async fn stat(&self, piece: &Cid) -> Result<Option<PieceMeta>, PieceStoreError> {
        Ok(self.locate(piece).await?.map(|(_, m)| m))
    }

    async fn delete(&self, piece: &Cid) -> Result<bool, PieceStoreError> {
        let mut existed = false;
        for e in self.entries.iter().filter(|e| !e.read_only) {
            existed |= e.store.delete(piece).await?;
        }
        self.located().remove(piece);
        Ok(existed)
    }

    async fn list(&self) -> Result<Vec<PieceMeta>, PieceStoreError> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for e in &self.entries {
            for m in e.store.list().await? {
                if seen.insert(m.piece_cid) {
                    out.push(m);
                }
            }
        }
        out.sort_by_key(|m| m.piece_cid.to_string());
        Ok(out)
    }

    async fn free_space(&self) -> Result<Option<u64>, PieceStoreError> {
        let mut total = 0u64;
        for e in self.entries.iter().filter(|e| !e.read_only) {
            match e.store.free_space().await? {
                Some(f) => total = total.saturating_add(f),
                None => return Ok(None),
            }
        }
        Ok(Some(total))
    }

    fn locator(&self, piece: &Cid) -> String {
        let i = self.located().get(piece).copied().unwrap_or(0);
        let e = &self.entries[i];
        format!("{}: {}", e.name, e.store.locator(piece))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(priority: i32, read_only: bool, free: Option<u64>) -> Candidate {
        Candidate {
            priority,
            read_only,
            free,
        }
    }

    #[test]
    fn the_write_rule_takes_priority_then_space_and_skips_full_or_read_only_stores() {
        // Priority wins over space.
        assert_eq!(
            choose_store(&[c(0, false, None), c(5, false, Some(100))], 10),
            Some(1)
        );
        // A store without room is passed over.
        assert_eq!(
            choose_store(&[c(0, false, Some(1000)), c(5, false, Some(5))], 10),
            Some(0)
        );
        // Same priority: the most free space, unbounded counting as most.
        assert_eq!(
            choose_store(&[c(1, false, Some(50)), c(1, false, Some(500))], 10),
            Some(1)
        );
        assert_eq!(
            choose_store(&[c(1, false, Some(500)), c(1, false, None)], 10),
            Some(1)
        );
        // Full tie: the first listed.
        assert_eq!(
            choose_store(&[c(1, false, Some(50)), c(1, false, Some(50))], 10),
            Some(0)
        );
        // Read-only stores are never written.
        assert_eq!(
            choose_store(&[c(9, true, None), c(0, false, Some(20))], 10),
            Some(1)
        );
        assert_eq!(
            choose_store(&[c(9, true, None), c(0, false, Some(5))], 10),
            None
        );
        assert_eq!(choose_store(&[], 0), None);
    }
}
