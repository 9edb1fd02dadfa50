//! Hashing a file while it is being written.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use bytes::Bytes;
use commp::{CommP, PaddedPieceSize, PieceInfo};
use tokio::sync::oneshot;

use market_core::Cid;

use crate::PieceStoreError;
use crate::car::{BlockEntry, CarIndexer};

/// How much of the file the hasher reads at a time.
const READ_CHUNK: usize = 1 << 20;
/// In-order buffers queued for the hasher at most; beyond that the hasher reads the bytes back
/// from the file, so memory stays bounded when the network outruns hashing.
const QUEUE: usize = 8;

/// A wake-up, possibly with the frames just written at an offset.
type Chunk = Option<(u64, Vec<Bytes>)>;

/// Computes the commP of a file that writers fill, possibly out of order, by following its
/// contiguous written prefix on a dedicated thread.
///
/// Writers report the length of the prefix that is fully written with
/// [`advance`](Self::advance), or hand over the bytes they just wrote at the end of that
/// prefix with [`feed`](Self::feed), which the hasher then uses without reading them back.
/// Anything else the hasher reads from the file (the page cache). So receiving and hashing run
/// on two cores, memory stays at a few buffers, and a resumed transfer simply starts with the
/// prefix that is already on disk.
#[derive(Debug)]
pub struct CommPFollower {
    tx: Option<mpsc::SyncSender<Chunk>>,
    frontier: Arc<AtomicU64>,
    done: Option<oneshot::Receiver<Result<Followed, std::io::Error>>>,
}

/// What the follower thread hands back.
type Followed = (CommP, u64, Option<BlockTap>);

/// The CAR blocks of a payload, found while it was hashed (see
/// [`CommPFollower::start_indexing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarBlocks {
    /// Roots of the CAR header.
    pub roots: Vec<Cid>,
    /// Every block, in payload order.
    pub entries: Vec<BlockEntry>,
    /// Why the payload is not a CARv1, if it is not (then `entries` is empty).
    pub error: Option<String>,
}

/// Parses the hashed bytes as a CAR, keeping at most `max` block entries in memory.
#[derive(Debug)]
struct BlockTap {
    parser: CarIndexer,
    entries: Vec<BlockEntry>,
    max: usize,
    error: Option<String>,
    overflowed: bool,
}

impl BlockTap {
    fn bytes(&mut self, data: &[u8]) {
        if self.error.is_some() || self.overflowed {
            return;
        }
        let (entries, max) = (&mut self.entries, self.max);
        let mut over = false;
        if let Err(e) = self.parser.update(data, &mut |b| {
            if entries.len() < max {
                entries.push(b);
            } else {
                over = true;
            }
        }) {
            self.error = Some(e.to_string());
            self.entries = Vec::new();
        }
        if over {
            self.overflowed = true;
            self.entries = Vec::new();
        }
    }

    fn finish(self) -> Option<CarBlocks> {
        if self.overflowed {
            return None;
        }
        let (roots, error) = match self.error {
            Some(e) => (Vec::new(), Some(e)),
            None => match self.parser.finish() {
                Ok(roots) => (roots, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            },
        };
        let entries = if error.is_some() {
            Vec::new()
        } else {
            self.entries
        };
        Some(CarBlocks {
            roots,
            entries,
            error,
        })
    }
}

impl CommPFollower {
    /// Starts hashing `file` from its first byte; `ready` bytes are already written.
    pub fn start(file: File, ready: u64) -> std::io::Result<Self> {
        Self::spawn(file, ready, None)
    }

    /// [`start`](Self::start), and also finds the payload's CAR blocks in the same pass,
    /// so the piece can be indexed without being read again. Past `max_blocks` blocks the
    /// entries are dropped (memory stays bounded) and [`finish_indexed`](Self::finish_indexed)
    /// returns no blocks.
    pub fn start_indexing(file: File, ready: u64, max_blocks: usize) -> std::io::Result<Self> {
        let tap = BlockTap {
            parser: CarIndexer::new(),
            entries: Vec::new(),
            max: max_blocks,
            error: None,
            overflowed: false,
        };
        Self::spawn(file, ready, Some(tap))
    }

    fn spawn(file: File, ready: u64, tap: Option<BlockTap>) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel::<Chunk>(QUEUE);
        let (done_tx, done) = oneshot::channel();
        let frontier = Arc::new(AtomicU64::new(ready));
        let f = frontier.clone();
        std::thread::Builder::new()
            .name("commp-follower".into())
            .spawn(move || {
                let _ = done_tx.send(follow(&file, &rx, &f, tap));
            })?;
        let _ = tx.try_send(None);
        Ok(Self {
            tx: Some(tx),
            frontier,
            done: Some(done),
        })
    }

    /// The first `written` bytes of the file are written and may be hashed.
    pub fn advance(&self, written: u64) {
        if self.frontier.fetch_max(written, Ordering::AcqRel) < written
            && let Some(tx) = &self.tx
        {
            // A full queue means the hasher is busy and will look at the frontier next.
            let _ = tx.try_send(None);
        }
    }

    /// `data` was just written at `offset`, and the first `written` bytes of the file are now
    /// complete. When the hasher is keeping up, it hashes `data` as is.
    pub fn feed(&self, offset: u64, data: Bytes, written: u64) {
        self.feed_frames(offset, vec![data], written);
    }

    /// [`feed`](Self::feed) for bytes written as several frames back to back (as they came
    /// off the network), so they need not be copied into one buffer first.
    pub fn feed_frames(&self, offset: u64, frames: Vec<Bytes>, written: u64) {
        self.frontier.fetch_max(written, Ordering::AcqRel);
        if let Some(tx) = &self.tx {
            let _ = tx.try_send(Some((offset, frames)));
        }
    }

    /// Waits until all `total` payload bytes are hashed and returns the piece, zero-padded to
    /// `padded` (or to the minimal size).
    pub async fn finish(
        self,
        total: u64,
        padded: Option<PaddedPieceSize>,
    ) -> Result<PieceInfo, PieceStoreError> {
        Ok(self.finish_indexed(total, padded).await?.0)
    }

    /// [`finish`](Self::finish), with the CAR blocks found on the way if the follower was
    /// started with [`start_indexing`](Self::start_indexing) and stayed under its cap.
    pub async fn finish_indexed(
        mut self,
        total: u64,
        padded: Option<PaddedPieceSize>,
    ) -> Result<(PieceInfo, Option<CarBlocks>), PieceStoreError> {
        self.frontier.fetch_max(total, Ordering::AcqRel);
        drop(self.tx.take());
        let done = self.done.take().expect("finish consumes the follower");
        let (hasher, hashed, tap) = done
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
        let info = info.map_err(|e| PieceStoreError::InvalidSize(e.to_string()))?;
        Ok((info, tap.and_then(BlockTap::finish)))
    }
}

fn follow(
    file: &File,
    rx: &mpsc::Receiver<Chunk>,
    frontier: &AtomicU64,
    mut tap: Option<BlockTap>,
) -> Result<Followed, std::io::Error> {
    // Payloads under 65 bytes (the CAR of an empty file) are zero-padded as FRC-0069 and
    // Lotus's client define them, so such deals can be served.
    let mut hasher = CommP::new().with_short_payload(commp::ShortPayload::ZeroPad);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut pos = 0u64;
    // Hashing time only, not the wait for writers: what the commP metric reports.
    let hashing = std::cell::Cell::new(std::time::Duration::ZERO);
    let mut read_up_to = |hasher: &mut CommP,
                          tap: &mut Option<BlockTap>,
                          pos: &mut u64,
                          end: u64|
     -> std::io::Result<()> {
        while *pos < end {
            let n = (end - *pos).min(READ_CHUNK as u64) as usize;
            file.read_exact_at(&mut buf[..n], *pos)?;
            let t0 = std::time::Instant::now();
            hasher.update(&buf[..n]);
            hashing.set(hashing.get() + t0.elapsed());
            if let Some(t) = tap.as_mut() {
                t.bytes(&buf[..n]);
            }
            *pos += n as u64;
        }
        Ok(())
    };
    // Each message is a wake-up, possibly with bytes. Queued bytes are hashed as they are;
    // only when the queue is empty does the hasher read the rest of the complete prefix back
    // from the file. A closed channel means the writers are done and the frontier is final.
    loop {
        let msg = match rx.try_recv() {
            Ok(m) => m,
            Err(mpsc::TryRecvError::Empty) => {
                read_up_to(
                    &mut hasher,
                    &mut tap,
                    &mut pos,
                    frontier.load(Ordering::Acquire),
                )?;
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            }
            Err(mpsc::TryRecvError::Disconnected) => break,
        };
        if let Some((offset, frames)) = msg {
            let end = offset + frames.iter().map(|f| f.len() as u64).sum::<u64>();
            if end > pos {
                // Bytes before `offset` are complete (fed data extends the prefix).
                read_up_to(&mut hasher, &mut tap, &mut pos, offset)?;
                let mut at = offset;
                for frame in &frames {
                    let frame_end = at + frame.len() as u64;
                    if frame_end > pos {
                        let fresh = &frame[(pos - at) as usize..];
                        let t0 = std::time::Instant::now();
                        hasher.update(fresh);
                        hashing.set(hashing.get() + t0.elapsed());
                        if let Some(t) = tap.as_mut() {
                            t.bytes(fresh);
                        }
                        pos = frame_end;
                    }
                    at = frame_end;
                }
            }
        }
    }
    let f = frontier.load(Ordering::Acquire);
    read_up_to(&mut hasher, &mut tap, &mut pos, f)?;
    market_core::metrics::commp(pos, hashing.get());
    Ok((hasher, pos, tap))
}
