//! Where accepted pieces are kept until the sealer takes them.
//!
//! A deliberately small trait: the piecestore crate grows it into indexed, ranged storage.
//! [`FsPieceStorage`] writes to a temporary file in the same directory, fsyncs, and renames it
//! into place, so a piece either exists whole under its CID or not at all.

use std::path::{Path, PathBuf};

use cid::Cid;

/// Piece storage errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PieceStorageError {
    /// The piece is not stored.
    #[error("piece {0} not found")]
    NotFound(Cid),
    /// I/O failed (disk full, permissions).
    #[error("piece storage i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Stores piece payloads (the CAR bytes, unpadded) by piece CID.
#[async_trait::async_trait]
pub trait PieceStorage: Send + Sync {
    /// Copies `src` in as the payload of `piece`; returns where it now lives.
    async fn put_file(&self, piece: &Cid, src: &Path) -> Result<PathBuf, PieceStorageError>;
    /// Where a stored piece lives.
    async fn path(&self, piece: &Cid) -> Result<PathBuf, PieceStorageError>;
    /// Removes a piece (no error if absent).
    async fn delete(&self, piece: &Cid) -> Result<(), PieceStorageError>;
}

/// Pieces as files named by piece CID in one directory.
#[derive(Debug, Clone)]
pub struct FsPieceStorage {
    dir: PathBuf,
}

impl FsPieceStorage {
    /// Uses (and creates) `dir`; removes temporary files a crash left behind.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, PieceStorageError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "partial") {
                std::fs::remove_file(path)?;
            }
        }
        Ok(Self { dir })
    }

    fn file(&self, piece: &Cid) -> PathBuf {
        // A CID's string form is base32 lower-case: no separators, so no path traversal.
        self.dir.join(piece.to_string())
    }
}

#[async_trait::async_trait]
impl PieceStorage for FsPieceStorage {
    async fn put_file(&self, piece: &Cid, src: &Path) -> Result<PathBuf, PieceStorageError> {
        let dst = self.file(piece);
        let tmp = self
            .dir
            .join(format!("{piece}.{}.partial", uuid::Uuid::new_v4()));
        let src = src.to_path_buf();
        let (tmp2, dst2) = (tmp.clone(), dst.clone());
        let res = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::copy(&src, &tmp2)?;
            std::fs::File::open(&tmp2)?.sync_all()?;
            std::fs::rename(&tmp2, &dst2)?;
            if let Some(parent) = dst2.parent() {
                std::fs::File::open(parent)?.sync_all()?;
            }
            Ok(())
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(e.into());
        }
        Ok(dst)
    }

    async fn path(&self, piece: &Cid) -> Result<PathBuf, PieceStorageError> {
        let p = self.file(piece);
        if tokio::fs::try_exists(&p).await? {
            Ok(p)
        } else {
            Err(PieceStorageError::NotFound(*piece))
        }
    }

    async fn delete(&self, piece: &Cid) -> Result<(), PieceStorageError> {
        match tokio::fs::remove_file(self.file(piece)).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
