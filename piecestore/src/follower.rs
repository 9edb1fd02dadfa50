//! Hashing a file while it is being written.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::mpsc;

use commp::{CommP, PaddedPieceSize, PieceInfo};
use tokio::sync::oneshot;

use crate::PieceStoreError;

/// How much of the file the hasher reads at a time.
const READ_CHUNK: usize = 1 << 20;

/// Computes the commP of a file that writers fill, possibly out of order, by following its
/// contiguous written prefix on a dedicated thread.
///
/// Writers call [`advance`](Self::advance) with the length of the prefix that is now fully
/// written; the hasher reads those bytes back (from the page cache) and hashes them while the
/// writers go on. So receiving and hashing run on two cores, memory stays at one read buffer,
/// and a resumed transfer simply starts with the prefix that is already on disk.
#[derive(Debug)]
pub struct CommPFollower {
    tx: Option<mpsc::Sender<u64>>,
    done: Option<oneshot::Receiver<Result<(CommP, u64), std::io::Error>>>,
    sent: u64,
}

impl CommPFollower {
    /// Starts hashing `file` from its first byte; `ready` bytes are already written.
    pub fn start(file: File, ready: u64) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel::<u64>();
        let (done_tx, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("commp-follower".into())
            .spawn(move || {
                let _ = done_tx.send(follow(&file, &rx));
            })?;
        let _ = tx.send(ready);
        Ok(Self {
            tx: Some(tx),
            done: Some(done),
            sent: ready,
        })
    }

    /// The first `written` bytes of the file are written and may be hashed.
    pub fn advance(&mut self, written: u64) {
        if written > self.sent
            && let Some(tx) = &self.tx
        {
            self.sent = written;
            let _ = tx.send(written);
        }
    }

    /// Waits until all `total` payload bytes are hashed and returns the piece, zero-padded to
    /// `padded` (or to the minimal size).
    pub async fn finish(
        mut self,
        total: u64,
        padded: Option<PaddedPieceSize>,
    ) -> Result<PieceInfo, PieceStoreError> {
        self.advance(total);
        drop(self.tx.take());
        let done = self.done.take().expect("finish consumes the follower");
        let (hasher, hashed) = done
            .await
            .map_err(|_| PieceStoreError::Task("commP thread panicked".into()))??;
        if hashed != total {
            return Err(PieceStoreError::Task(format!(
                "commP thread hashed {hashed} of {total} bytes"
            )));
        }
        let info = match padded {
            Some(size) => hasher.finish_padded_to(size),
            None => hasher.finish(),
        };
        info.map_err(|e| PieceStoreError::InvalidSize(e.to_string()))
    }
}

fn follow(file: &File, rx: &mpsc::Receiver<u64>) -> Result<(CommP, u64), std::io::Error> {
    let mut hasher = CommP::new();
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pos = 0u64;
    // Each message is a new frontier; a closed channel means no more will come.
    while let Ok(mut frontier) = rx.recv() {
        while let Ok(f) = rx.try_recv() {
            frontier = frontier.max(f);
        }
        while pos < frontier {
            let n = (frontier - pos).min(READ_CHUNK as u64) as usize;
            file.read_exact_at(&mut buf[..n], pos)?;
            hasher.update(&buf[..n]);
            pos += n as u64;
        }
    }
    Ok((hasher, pos))
}
