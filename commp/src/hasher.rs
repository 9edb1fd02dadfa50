//! The streaming commP hasher.
//!
//! Input is fr32-padded straight from the caller's slices into a fixed batch of leaves; a
//! full batch is reduced to one subtree root (every level hashed as a run of independent
//! pairs, which is what the interleaved kernels need) and pushed onto a stack that merges
//! equal-height roots like a binary counter. `finish` closes the last partial batch and the
//! stack with the zero-subtree table. Memory is the batch plus one root per tree level,
//! whatever the input size.

use std::io;

use crate::parallel::{CHUNK_HEIGHT, CHUNK_PAYLOAD, Pipeline, available_threads};
use crate::sha256::{Backend, node_of};
use crate::zero::{MAX_LEVEL, ZERO_LEVELS};
use crate::{Commitment, PaddedPieceSize, PieceInfo, SizeError, fr32};

/// Smallest payload accepted by default: the smallest that fills more than half of the
/// smallest piece, the rule go-fil-commp-hashhash (Boost, Curio) enforces.
pub const MIN_PAYLOAD: u64 = 65;

/// fr32 blocks per batch: 2048 blocks = 8192 leaves = 256 KiB of leaves, a subtree of
/// height 13 that stays in L2 cache while its levels are hashed.
const BATCH_BLOCKS: usize = 2048;
const BATCH_LEAVES: usize = BATCH_BLOCKS * 4;
const BATCH_HEIGHT: usize = BATCH_LEAVES.trailing_zeros() as usize;
/// Stack slot of a worker's subtree root.
const CHUNK_SLOT: usize = CHUNK_HEIGHT - BATCH_HEIGHT;
const _: () = assert!(CHUNK_PAYLOAD.is_multiple_of(BATCH_BLOCKS * fr32::UNPADDED_BLOCK));

/// Payload bytes whose fr32 image is a subtree of height `h` (at least two levels).
pub(crate) const fn subtree_payload(h: usize) -> u64 {
    (1u64 << h) / 4 * fr32::UNPADDED_BLOCK as u64
}

/// Merges the root of a full subtree of height `BATCH_HEIGHT + slot` into `stack`, like a
/// binary counter: every slot below `slot` is empty when such a subtree can end here.
fn push_root(stack: &mut [Option<[u8; 32]>], slot: usize, mut node: [u8; 32]) {
    for entry in &mut stack[slot..] {
        match entry.take() {
            Some(left) => node = node_of(&left, &node),
            None => {
                *entry = Some(node);
                return;
            }
        }
    }
    unreachable!("more than 2^63 bytes of leaves");
}

/// What to do with payloads shorter than [`MIN_PAYLOAD`] bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum ShortPayload {
    /// Refuse with [`CommPError::PayloadTooSmall`], as go-fil-commp-hashhash does. Piece CID
    /// v2 parsers such as go-fil-commcid also refuse these payloads, so this is the default.
    #[default]
    Reject,
    /// Zero-pad to the smallest piece, as FRC-0069 and rust-fil-proofs define it (down to a
    /// zero-byte payload).
    ZeroPad,
}

/// Why a commitment could not be produced.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommPError {
    /// The payload is shorter than [`MIN_PAYLOAD`] under [`ShortPayload::Reject`].
    #[error("payload of {len} bytes is below the {min}-byte minimum")]
    PayloadTooSmall {
        /// Payload bytes hashed.
        len: u64,
        /// The minimum.
        min: u64,
    },
    /// A piece size was requested that cannot hold the payload.
    #[error(
        "payload of {payload} bytes needs a piece of at least {required}, {requested} was requested"
    )]
    PieceTooSmall {
        /// Payload bytes hashed.
        payload: u64,
        /// The size asked for.
        requested: PaddedPieceSize,
        /// The smallest size that fits.
        required: PaddedPieceSize,
    },
    /// The payload does not fit in any piece.
    #[error(transparent)]
    Size(#[from] SizeError),
    /// The chosen backend does not run on this CPU.
    #[error("backend {0:?} is not supported by this CPU")]
    UnsupportedBackend(Backend),
    /// Reading the input failed.
    #[error("reading the payload: {0}")]
    Io(#[from] io::Error),
}

/// A streaming commP hasher.
///
/// ```
/// use commp::{CommP, ShortPayload};
///
/// let mut hasher = CommP::new();
/// hasher.update(b"hello ");
/// hasher.update(&[7u8; 1000]);
/// let piece = hasher.finish()?;
/// assert_eq!(piece.padded_size.get(), 1024); // 1006 bytes fit 1016
/// assert!(piece.cid_v1().to_string().starts_with("baga6ea4seaq"));
///
/// // Short payloads need an explicit policy.
/// let mut short = CommP::new().with_short_payload(ShortPayload::ZeroPad);
/// short.update(b"tiny");
/// assert_eq!(short.finish()?.padded_size.get(), 128);
/// # Ok::<(), commp::CommPError>(())
/// ```
///
/// A hasher uses every core by default ([`with_threads`](Self::with_threads)): payloads
/// longer than one 2 MiB subtree are cut into subtrees hashed on worker threads, with the
/// same commitment as one thread.
pub struct CommP {
    backend: Backend,
    short_payload: ShortPayload,
    /// Threads to hash on; above one, `update` feeds `parallel` instead of the batch.
    threads: usize,
    parallel: Option<Box<Pipeline>>,
    /// Leaves of the current batch; `blocks · 4` of them are filled.
    leaves: Box<[[u8; 32]]>,
    /// Destination of every other level while a batch is reduced.
    scratch: Box<[[u8; 32]]>,
    blocks: usize,
    /// Payload bytes that do not make a whole fr32 block yet.
    tail: [u8; fr32::UNPADDED_BLOCK],
    tail_len: usize,
    /// Payload bytes taken so far.
    total: u64,
    /// `stack[i]`: root of a full subtree at level `BATCH_HEIGHT + i` still waiting for
    /// its right sibling.
    stack: [Option<[u8; 32]>; MAX_LEVEL - BATCH_HEIGHT + 1],
}

impl Clone for CommP {
    /// An independent hasher at the same point of the stream. Subtrees still in flight are
    /// hashed again by the copy's own workers.
    fn clone(&self) -> Self {
        let mut copy = Self {
            backend: self.backend,
            short_payload: self.short_payload,
            threads: self.threads,
            parallel: None,
            leaves: self.leaves.clone(),
            scratch: self.scratch.clone(),
            blocks: self.blocks,
            tail: self.tail,
            tail_len: self.tail_len,
            total: self.total,
            stack: self.stack,
        };
        if let Some(p) = &self.parallel {
            let forked = p.fork(&mut |root| push_root(&mut copy.stack, CHUNK_SLOT, root));
            copy.parallel = Some(Box::new(forked));
        }
        copy
    }
}

impl Default for CommP {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for CommP {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommP")
            .field("backend", &self.backend)
            .field("short_payload", &self.short_payload)
            .field("threads", &self.threads)
            .field("payload_bytes", &self.total)
            .finish_non_exhaustive()
    }
}

impl CommP {
    /// A hasher with the fastest backend of this CPU, [`ShortPayload::Reject`] and every
    /// core this process may use.
    pub fn new() -> Self {
        Self::serial(Backend::detect()).with_threads(0)
    }

    /// A one-thread hasher on `backend` (which the caller has checked).
    pub(crate) fn serial(backend: Backend) -> Self {
        Self {
            backend,
            short_payload: ShortPayload::default(),
            threads: 1,
            parallel: None,
            leaves: vec![[0u8; 32]; BATCH_LEAVES].into_boxed_slice(),
            scratch: vec![[0u8; 32]; BATCH_LEAVES / 2].into_boxed_slice(),
            blocks: 0,
            tail: [0u8; fr32::UNPADDED_BLOCK],
            tail_len: 0,
            total: 0,
            stack: [None; MAX_LEVEL - BATCH_HEIGHT + 1],
        }
    }

    /// Sets the policy for payloads shorter than [`MIN_PAYLOAD`].
    pub fn with_short_payload(mut self, policy: ShortPayload) -> Self {
        self.short_payload = policy;
        self
    }

    /// Uses a specific backend (all give identical results); fails if this CPU lacks it.
    pub fn with_backend(mut self, backend: Backend) -> Result<Self, CommPError> {
        if !backend.is_supported() {
            return Err(CommPError::UnsupportedBackend(backend));
        }
        self.backend = backend;
        Ok(self)
    }

    /// Hashes on `threads` threads (0: every core this process may use; 1: the caller's
    /// thread only). The commitment does not depend on it; it is ignored once hashing has
    /// begun. Worker threads start only once a payload exceeds one subtree, each holding one
    /// 2 MiB subtree at a time.
    pub fn with_threads(mut self, threads: usize) -> Self {
        if self.total == 0 && self.parallel.is_none() {
            self.threads = match threads {
                0 => available_threads(),
                n => n,
            };
        }
        self
    }

    /// The thread count in use.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Payload bytes taken so far.
    pub fn payload_len(&self) -> u64 {
        self.total
    }

    /// Adds payload bytes. Any chunking of the same bytes gives the same commitment.
    pub fn update(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        if self.threads > 1 {
            let mut pipeline = self
                .parallel
                .take()
                .unwrap_or_else(|| Box::new(Pipeline::new(self.threads, self.backend)));
            pipeline.update(data, &mut |root| self.push_root_at(CHUNK_SLOT, root));
            self.parallel = Some(pipeline);
        } else {
            self.absorb(data);
        }
    }

    /// Adds `len` zero bytes of payload without hashing the whole subtrees they fill: their
    /// roots come from the zero-subtree table, so a sparse piece of any size costs the
    /// hashing of its data. Fails, adding nothing, past the largest piece (2^63 bytes).
    pub fn update_zeros(&mut self, len: u64) -> Result<(), SizeError> {
        let total = self
            .total
            .checked_add(len)
            .filter(|&t| t <= PaddedPieceSize::MAX.unpadded().get())
            .ok_or(SizeError::PayloadTooLarge(self.total.saturating_add(len)))?;
        let zeros = [0u8; 1 << 16];
        let mut left = len;
        // Whole subtrees are pushed only at this height and above, where the stack alone
        // holds the state (in parallel mode, the pipeline keeps the levels below).
        let min_height = if self.threads > 1 {
            CHUNK_HEIGHT
        } else {
            BATCH_HEIGHT
        };
        while left > 0 {
            if self.zero_aligned() {
                let leaves = self.total / fr32::UNPADDED_BLOCK as u64 * 4;
                let height = (min_height..=MAX_LEVEL)
                    .rev()
                    .find(|&h| leaves.is_multiple_of(1 << h) && subtree_payload(h) <= left);
                if let Some(h) = height {
                    if let Some(p) = self.parallel.as_mut() {
                        let rest = p.drain(&mut |root| {
                            push_root(&mut self.stack, CHUNK_SLOT, root);
                        });
                        debug_assert!(rest.is_empty());
                    }
                    self.push_root_at(h - BATCH_HEIGHT, ZERO_LEVELS[h]);
                    self.total += subtree_payload(h);
                    left -= subtree_payload(h);
                    continue;
                }
            }
            // Up to the next aligned subtree (or the end), the zeros are hashed.
            let boundary = subtree_payload(min_height);
            let to_next = boundary - self.total % boundary;
            let n = left.min(to_next).min(zeros.len() as u64) as usize;
            self.update(&zeros[..n]);
            left -= n as u64;
        }
        debug_assert_eq!(self.total, total);
        Ok(())
    }

    /// True when the payload so far ends exactly on a subtree the stack can take a root
    /// after: no partial batch, block or (in parallel mode) partial subtree. Subtrees still
    /// in flight are drained before a root is pushed.
    fn zero_aligned(&self) -> bool {
        self.blocks == 0
            && self.tail_len == 0
            && self
                .parallel
                .as_ref()
                .is_none_or(|p| p.partial().is_empty())
    }

    /// Root of the subtree hashed from exactly [`CHUNK_PAYLOAD`] bytes (a worker's job); the
    /// hasher is empty again afterwards.
    pub(crate) fn subtree_root(&mut self, payload: &[u8]) -> [u8; 32] {
        debug_assert_eq!(payload.len(), CHUNK_PAYLOAD);
        self.absorb(payload);
        self.total = 0;
        self.stack[CHUNK_SLOT]
            .take()
            .expect("a full subtree leaves exactly its root")
    }

    /// Takes payload bytes into the batch (the one-thread path).
    fn absorb(&mut self, mut data: &[u8]) {
        if self.tail_len > 0 {
            let take = (fr32::UNPADDED_BLOCK - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
            self.tail_len += take;
            data = &data[take..];
            if self.tail_len < fr32::UNPADDED_BLOCK {
                return;
            }
            let block = self.tail;
            self.push_blocks(&block);
            self.tail_len = 0;
        }
        let whole = data.len() - data.len() % fr32::UNPADDED_BLOCK;
        self.push_blocks(&data[..whole]);
        let rest = &data[whole..];
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    /// Pads whole blocks straight into the batch, reducing each batch as it fills.
    fn push_blocks(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = (BATCH_BLOCKS - self.blocks).min(data.len() / fr32::UNPADDED_BLOCK);
            let (src, rest) = data.split_at(n * fr32::UNPADDED_BLOCK);
            let dst = self.leaves[self.blocks * 4..(self.blocks + n) * 4].as_flattened_mut();
            fr32::pad(src, dst).expect("whole blocks into a matching buffer");
            self.blocks += n;
            data = rest;
            if self.blocks == BATCH_BLOCKS {
                let root = self.reduce_batch(BATCH_HEIGHT);
                self.push_root_at(0, root);
                self.blocks = 0;
            }
        }
    }

    /// Merges the root of a full subtree of height `BATCH_HEIGHT + slot` into the stack.
    fn push_root_at(&mut self, slot: usize, node: [u8; 32]) {
        push_root(&mut self.stack, slot, node);
    }

    /// Reduces the filled leaves of the batch to the root of the subtree of height `height`
    /// that starts at the batch's first leaf; missing leaves count as zeros.
    fn reduce_batch(&mut self, height: usize) -> [u8; 32] {
        let mut count = self.blocks * 4;
        if count == 0 {
            return ZERO_LEVELS[height];
        }
        let (mut src, mut dst) = (&mut self.leaves[..], &mut self.scratch[..]);
        for zero in &ZERO_LEVELS[..height] {
            if count % 2 == 1 {
                src[count] = *zero;
                count += 1;
            }
            let pairs = count / 2;
            let (input, _) = src[..count].as_flattened().as_chunks::<64>();
            self.backend.hash_pairs(input, &mut dst[..pairs]);
            count = pairs;
            std::mem::swap(&mut src, &mut dst);
        }
        src[0]
    }

    /// Finishes into the smallest piece that holds the payload.
    pub fn finish(self) -> Result<PieceInfo, CommPError> {
        self.finish_inner(None)
    }

    /// Finishes into a piece of `size`, zero-padding beyond the smallest fit (as Boost does
    /// when a proposal names a larger piece than the data needs).
    pub fn finish_padded_to(self, size: PaddedPieceSize) -> Result<PieceInfo, CommPError> {
        self.finish_inner(Some(size))
    }

    fn finish_inner(mut self, target: Option<PaddedPieceSize>) -> Result<PieceInfo, CommPError> {
        let payload = self.total;
        if payload < MIN_PAYLOAD && self.short_payload == ShortPayload::Reject {
            return Err(CommPError::PayloadTooSmall {
                len: payload,
                min: MIN_PAYLOAD,
            });
        }
        let required = PaddedPieceSize::for_payload(payload)?;
        let size = match target {
            Some(requested) if requested < required => {
                return Err(CommPError::PieceTooSmall {
                    payload,
                    requested,
                    required,
                });
            }
            Some(requested) => requested,
            None => required,
        };
        if let Some(mut pipeline) = self.parallel.take() {
            let rest = pipeline.drain(&mut |root| self.push_root_at(CHUNK_SLOT, root));
            self.absorb(&rest);
        }
        if self.tail_len > 0 {
            let mut block = [0u8; fr32::UNPADDED_BLOCK];
            block[..self.tail_len].copy_from_slice(&self.tail[..self.tail_len]);
            self.push_blocks(&block);
        }
        let height = size.tree_height() as usize;
        let root = if self.stack.iter().all(Option::is_none) && height <= BATCH_HEIGHT {
            // No batch was ever full: the whole piece lies inside this batch.
            self.reduce_batch(height)
        } else {
            // The data spans at least one full batch, so `height >= BATCH_HEIGHT`.
            let mut carry = (self.blocks > 0).then(|| self.reduce_batch(BATCH_HEIGHT));
            for (slot, zero) in self
                .stack
                .iter_mut()
                .zip(&ZERO_LEVELS[BATCH_HEIGHT..height])
            {
                carry = match (slot.take(), carry) {
                    (Some(left), Some(right)) => Some(node_of(&left, &right)),
                    (Some(left), None) | (None, Some(left)) => Some(node_of(&left, zero)),
                    (None, None) => None,
                };
            }
            // Data that exactly fills the piece has already merged into one stack root.
            carry
                .or(self.stack[height - BATCH_HEIGHT])
                .unwrap_or(ZERO_LEVELS[height])
        };
        Ok(PieceInfo {
            commitment: Commitment::from_bytes(root),
            padded_size: size,
            payload_size: payload,
        })
    }
}

impl io::Write for CommP {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// commP of an in-memory payload (default policy and backend).
pub fn commp(payload: &[u8]) -> Result<PieceInfo, CommPError> {
    let mut h = CommP::new();
    h.update(payload);
    h.finish()
}

/// commP of everything `reader` yields, read in 1 MiB chunks.
pub fn commp_reader<R: io::Read>(mut reader: R) -> Result<PieceInfo, CommPError> {
    let mut h = CommP::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => h.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
    }
    h.finish()
}
