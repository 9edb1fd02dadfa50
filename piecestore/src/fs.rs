//! Pieces as files on a local filesystem.

use std::io::{ErrorKind, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use commp::PaddedPieceSize;
use market_core::Cid;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use crate::store::{
    ByteRange, ExpectedPiece, PieceMeta, PieceReader, PieceStore, StagedPiece, check_piece_cid,
    check_read_at,
};
use crate::{CommPFollower, PieceStoreError};

const PARTIAL: &str = "partial";
const META: &str = "meta.json";
const WRITE_CHUNK: usize = 1 << 20;
/// Open payload files kept for [`PieceStore::read_at`]: a CAR retrieval reads hundreds of
/// blocks of one piece, and an open per block cost more than the read.
const OPEN_HANDLES: usize = 32;

/// Recently read payload files with their lengths, most recent last.
#[derive(Debug, Default)]
struct Handles {
    open: Vec<(Cid, Arc<std::fs::File>, u64)>,
    /// Bumped by every [`forget`](Self::forget), so that a file opened before a delete or a
    /// replacement is not cached after it.
    generation: u64,
}

impl Handles {
    fn get(&mut self, piece: &Cid) -> Option<(Arc<std::fs::File>, u64)> {
        let i = self.open.iter().position(|(c, _, _)| c == piece)?;
        let entry = self.open.remove(i);
        let found = (entry.1.clone(), entry.2);
        self.open.push(entry);
        Some(found)
    }

    /// Caches a file opened while [`generation`](Self::generation) was `seen`.
    fn insert(&mut self, seen: u64, piece: Cid, file: Arc<std::fs::File>, len: u64) {
        if seen != self.generation {
            return;
        }
        self.open.retain(|(c, _, _)| *c != piece);
        if self.open.len() >= OPEN_HANDLES {
            self.open.remove(0);
        }
        self.open.push((piece, file, len));
    }

    fn forget(&mut self, piece: &Cid) {
        self.generation += 1;
        self.open.retain(|(c, _, _)| c != piece);
    }
}

/// A `.partial` file being written, removed when dropped: on an error, and also when the
/// write is cancelled (a client that goes away mid-import). Once committed it has been
/// renamed and there is nothing left to remove.
#[derive(Debug)]
struct Partial(PathBuf);

impl Drop for Partial {
    fn drop(&mut self) {
        match std::fs::remove_file(&self.0) {
            Ok(()) => tracing::debug!(path = %self.0.display(), "removed partial piece file"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %self.0.display(), error = %e, "cannot remove partial piece file")
            }
        }
    }
}

impl std::ops::Deref for Partial {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Partial {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

/// One file per piece in a directory: `<piece-cid>` holds the payload and
/// `<piece-cid>.meta.json` its sizes.
///
/// Writes go to `<uuid>.partial` in the same directory, are fsynced, and renamed into place
/// (metadata first, payload last), so a piece is either whole or absent. Partial files that a
/// crash left behind are removed by [`open`](Self::open). File names come only from validated
/// piece CIDs, whose text form is lower-case base32: nothing a peer sends can name another
/// file.
#[derive(Debug, Clone)]
pub struct FsPieceStore {
    dir: PathBuf,
    handles: Arc<Mutex<Handles>>,
}

impl FsPieceStore {
    /// Uses (and creates) `dir`, removing what an interrupted write left there.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, PieceStoreError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let orphan_meta = name
                .strip_suffix(&format!(".{META}"))
                .is_some_and(|cid| !dir.join(cid).exists());
            if name.ends_with(&format!(".{PARTIAL}")) || orphan_meta {
                tracing::info!(path = %path.display(), "removing partial piece file");
                std::fs::remove_file(&path)?;
            }
        }
        Ok(Self {
            dir,
            handles: Arc::default(),
        })
    }

    fn lock_handles(&self) -> std::sync::MutexGuard<'_, Handles> {
        self.handles.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The open payload file of `piece` and its length (blocking).
    fn handle(&self, piece: &Cid) -> Result<(Arc<std::fs::File>, u64), PieceStoreError> {
        let seen = {
            let mut handles = self.lock_handles();
            if let Some(found) = handles.get(piece) {
                return Ok(found);
            }
            handles.generation
        };
        let file = match std::fs::File::open(self.data_path(piece)) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(PieceStoreError::NotFound(Box::new(*piece)));
            }
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata()?.len();
        let file = Arc::new(file);
        self.lock_handles().insert(seen, *piece, file.clone(), len);
        Ok((file, len))
    }

    /// The directory pieces live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding `piece`'s payload, if it is stored (for tools and benchmarks that
    /// read it directly).
    pub fn path_of(&self, piece: &Cid) -> Option<PathBuf> {
        check_piece_cid(piece).ok()?;
        let path = self.data_path(piece);
        path.exists().then_some(path)
    }

    fn data_path(&self, piece: &Cid) -> PathBuf {
        self.dir.join(piece.to_string())
    }

    fn meta_path(&self, piece: &Cid) -> PathBuf {
        self.dir.join(format!("{piece}.{META}"))
    }

    fn temp_path(&self) -> Partial {
        Partial(self.dir.join(format!("{}.{PARTIAL}", uuid::Uuid::new_v4())))
    }

    /// Writes the metadata, then moves `tmp` (already fsynced) into place.
    fn commit(&self, tmp: &Path, meta: &PieceMeta) -> Result<(), PieceStoreError> {
        let body = serde_json::json!({
            "piece_cid": meta.piece_cid.to_string(),
            "payload_size": meta.payload_size,
            "padded_size": meta.padded_size.get(),
        });
        let meta_tmp = self.temp_path();
        std::fs::write(&meta_tmp, body.to_string())?;
        std::fs::File::open(&meta_tmp)?.sync_all()?;
        std::fs::rename(&meta_tmp, self.meta_path(&meta.piece_cid))?;
        std::fs::rename(tmp, self.data_path(&meta.piece_cid))?;
        self.lock_handles().forget(&meta.piece_cid);
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }

    fn read_meta(&self, piece: &Cid) -> Result<Option<PieceMeta>, PieceStoreError> {
        let text = match std::fs::read_to_string(self.meta_path(piece)) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if !self.data_path(piece).exists() {
            return Ok(None);
        }
        let v: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| PieceStoreError::Corrupt(format!("{piece}: {e}")))?;
        let field = |k: &str| {
            v[k].as_u64()
                .ok_or_else(|| PieceStoreError::Corrupt(format!("{piece}: no {k}")))
        };
        let padded_size = PaddedPieceSize::new(field("padded_size")?)
            .map_err(|e| PieceStoreError::Corrupt(format!("{piece}: {e}")))?;
        Ok(Some(PieceMeta {
            piece_cid: *piece,
            payload_size: field("payload_size")?,
            padded_size,
        }))
    }
}

#[async_trait::async_trait]
impl PieceStore for FsPieceStore {
    async fn put(
        &self,
        mut data: PieceReader,
        expect: Option<ExpectedPiece>,
    ) -> Result<PieceMeta, PieceStoreError> {
        if let Some(e) = &expect {
            check_piece_cid(&e.piece_cid)?;
        }
        let tmp = self.temp_path();
        let result = async {
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            let follower = CommPFollower::start(file.try_clone()?, 0)?;
            let file = std::sync::Arc::new(file);
            let mut total = 0u64;
            loop {
                // Fill a buffer (or reach the end) before handing it to the blocking pool.
                let mut buf = bytes::BytesMut::with_capacity(WRITE_CHUNK);
                while buf.len() < WRITE_CHUNK && data.read_buf(&mut buf).await? > 0 {}
                let n = buf.len();
                if n == 0 {
                    break;
                }
                // Refuse as soon as the bytes cannot fit: a huge or endless source must not
                // be copied in full before the refusal.
                if let Some(e) = &expect {
                    let room = u64::from(e.padded_size.unpadded());
                    if total + n as u64 > room {
                        return Err(PieceStoreError::InvalidSize(format!(
                            "more than {room} bytes, the payload limit of a {}-byte piece",
                            e.padded_size.get()
                        )));
                    }
                }
                let chunk = buf.freeze();
                let (f, c) = (file.clone(), chunk.clone());
                let at = total;
                tokio::task::spawn_blocking(move || {
                    f.write_all_at(&c, at)?;
                    // The fsync before the rename then finds these bytes on their way.
                    crate::file_io::start_writeback(&f, at, c.len() as u64);
                    Ok::<_, std::io::Error>(())
                })
                .await??;
                total += n as u64;
                follower.feed(at, chunk, total);
            }
            let f = file.clone();
            tokio::task::spawn_blocking(move || f.sync_all()).await??;
            let info = follower
                .finish(total, expect.map(|e| e.padded_size))
                .await?;
            let meta = PieceMeta {
                piece_cid: market_core::cid::widen(&info.cid_v1()),
                payload_size: total,
                padded_size: info.padded_size,
            };
            if let Some(e) = expect
                && e.piece_cid != meta.piece_cid
            {
                return Err(PieceStoreError::CommPMismatch {
                    expected: Box::new(e.piece_cid),
                    actual: Box::new(meta.piece_cid),
                });
            }
            let this = self.clone();
            let tmp2 = tmp.to_path_buf();
            tokio::task::spawn_blocking(move || this.commit(&tmp2, &meta)).await??;
            Ok(meta)
        }
        .await;
        drop(tmp);
        result
    }

    async fn put_verified(
        &self,
        mut data: PieceReader,
        meta: PieceMeta,
    ) -> Result<(), PieceStoreError> {
        check_piece_cid(&meta.piece_cid)?;
        let tmp = self.temp_path();
        let result = async {
            let mut file = tokio::fs::File::create_new(&tmp).await?;
            let n = tokio::io::copy(&mut data, &mut file).await?;
            if n != meta.payload_size {
                return Err(PieceStoreError::InvalidSize(format!(
                    "the stream held {n} bytes, expected {}",
                    meta.payload_size
                )));
            }
            file.sync_all().await?;
            let (this, tmp2) = (self.clone(), tmp.to_path_buf());
            tokio::task::spawn_blocking(move || this.commit(&tmp2, &meta)).await?
        }
        .await;
        drop(tmp);
        result
    }

    async fn put_staged(&self, staged: StagedPiece) -> Result<(), PieceStoreError> {
        let meta = staged.meta();
        check_piece_cid(&meta.piece_cid)?;
        let this = self.clone();
        tokio::task::spawn_blocking(move || -> Result<(), PieceStoreError> {
            let src = staged.path();
            let len = std::fs::metadata(src)?.len();
            if len != meta.payload_size {
                return Err(PieceStoreError::InvalidSize(format!(
                    "{} holds {len} bytes, expected {}",
                    src.display(),
                    meta.payload_size
                )));
            }
            std::fs::File::open(src)?.sync_all()?;
            let tmp = this.temp_path();
            // A rename keeps it one pass over the bytes; across filesystems, copy.
            if std::fs::rename(src, &tmp).is_err() {
                std::fs::copy(src, &tmp)?;
                std::fs::File::open(&tmp)?.sync_all()?;
                std::fs::remove_file(src)?;
            }
            this.commit(&tmp, &meta)
        })
        .await?
    }

    async fn get(
        &self,
        piece: &Cid,
        range: Option<ByteRange>,
    ) -> Result<PieceReader, PieceStoreError> {
        check_piece_cid(piece)?;
        let mut file = match tokio::fs::File::open(self.data_path(piece)).await {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return Err(PieceStoreError::NotFound(Box::new(*piece)));
            }
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata().await?.len();
        let Some(r) = range else {
            return Ok(Box::pin(file));
        };
        if r.start > r.end || r.end > len {
            return Err(PieceStoreError::RangeNotSatisfiable {
                start: r.start,
                end: r.end,
                len,
            });
        }
        file.seek(SeekFrom::Start(r.start)).await?;
        Ok(Box::pin(file.take(r.len())))
    }

    async fn stat(&self, piece: &Cid) -> Result<Option<PieceMeta>, PieceStoreError> {
        check_piece_cid(piece)?;
        let this = self.clone();
        let piece = *piece;
        tokio::task::spawn_blocking(move || this.read_meta(&piece)).await?
    }

    async fn read_at(&self, piece: &Cid, range: ByteRange) -> Result<Bytes, PieceStoreError> {
        check_piece_cid(piece)?;
        check_read_at(range)?;
        let (this, piece) = (self.clone(), *piece);
        tokio::task::spawn_blocking(move || {
            let (file, len) = this.handle(&piece)?;
            if range.end > len {
                return Err(PieceStoreError::RangeNotSatisfiable {
                    start: range.start,
                    end: range.end,
                    len,
                });
            }
            Ok(crate::file_io::read_bytes_at(
                &file,
                range.start,
                range.len() as usize,
            )?)
        })
        .await?
    }

    async fn delete(&self, piece: &Cid) -> Result<bool, PieceStoreError> {
        check_piece_cid(piece)?;
        let existed = match tokio::fs::remove_file(self.data_path(piece)).await {
            Ok(()) => true,
            Err(e) if e.kind() == ErrorKind::NotFound => false,
            Err(e) => return Err(e.into()),
        };
        self.lock_handles().forget(piece);
        match tokio::fs::remove_file(self.meta_path(piece)).await {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        Ok(existed)
    }

    async fn list(&self) -> Result<Vec<PieceMeta>, PieceStoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            for entry in std::fs::read_dir(&this.dir)? {
                let name = entry?.file_name();
                let Some(cid) = name
                    .to_str()
                    .and_then(|n| n.strip_suffix(&format!(".{META}")))
                    .and_then(|c| c.parse::<Cid>().ok())
                else {
                    continue;
                };
                if let Some(meta) = this.read_meta(&cid)? {
                    out.push(meta);
                }
            }
            out.sort_by_key(|m| m.piece_cid.to_string());
            Ok(out)
        })
        .await?
    }

    async fn free_space(&self) -> Result<Option<u64>, PieceStoreError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || {
            let st = rustix::fs::statvfs(&dir).map_err(std::io::Error::from)?;
            Ok(Some(st.f_bavail.saturating_mul(st.f_frsize)))
        })
        .await?
    }

    fn locator(&self, piece: &Cid) -> String {
        self.data_path(piece).display().to_string()
    }
}
