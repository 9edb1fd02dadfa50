//! Hashing one piece on several cores.
//!
//! The padded tree is cut into subtrees of [`CHUNK_HEIGHT`] (2 MiB of leaves, the fr32 image
//! of [`CHUNK_PAYLOAD`] payload bytes). Each full subtree is hashed by a worker thread from
//! its own copy of the payload, and the roots join the hasher's stack in stream order, so the
//! commitment is bit-identical to one thread's. Whatever does not fill a subtree is hashed
//! inline at finish. At most one subtree per worker plus one more is in flight, so memory is
//! bounded by the thread count, never by the piece size. Workers are spawned on the first
//! full subtree (small payloads never start a thread) and stop when the hasher is dropped.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;

use crate::CommP;
use crate::hasher::subtree_payload;
use crate::sha256::Backend;

/// Height of the subtree one job hashes: 2^16 leaves, 2 MiB padded.
pub(crate) const CHUNK_HEIGHT: usize = 16;
/// Payload bytes of one job: 2^16 leaves are 2^14 fr32 blocks of 127 bytes.
pub(crate) const CHUNK_PAYLOAD: usize = subtree_payload(CHUNK_HEIGHT) as usize;

/// The number of cores this process may use (the default thread count).
pub(crate) fn available_threads() -> usize {
    static THREADS: OnceLock<usize> = OnceLock::new();
    *THREADS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// A subtree to hash: its position in the stream and its payload.
struct Job {
    seq: u64,
    payload: Arc<Vec<u8>>,
}

/// A hashed subtree (`None` if the worker panicked); the payload buffer comes back for reuse.
struct Done {
    seq: u64,
    payload: Arc<Vec<u8>>,
    root: Option<[u8; 32]>,
}

/// Worker threads and the subtrees they are hashing.
pub(crate) struct Pipeline {
    threads: usize,
    backend: Backend,
    /// Started on the first full subtree.
    workers: Option<Workers>,
    /// The subtree being filled from `update`.
    filling: Vec<u8>,
    /// Buffers returned by workers.
    free: Vec<Vec<u8>>,
    next_seq: u64,
    /// Sequence number of the next root the stack expects.
    next_root: u64,
    /// Roots that arrived before an earlier one.
    early: BTreeMap<u64, [u8; 32]>,
    /// Subtrees handed to workers and not back yet, by sequence number.
    in_flight: BTreeMap<u64, Arc<Vec<u8>>>,
}

struct Workers {
    jobs: Option<Sender<Job>>,
    done: Receiver<Done>,
    handles: Vec<JoinHandle<()>>,
    /// Set when no worker could be spawned: jobs are hashed on the caller's thread.
    inline: Option<CommP>,
}

impl Pipeline {
    pub(crate) fn new(threads: usize, backend: Backend) -> Self {
        Self {
            threads,
            backend,
            workers: None,
            filling: Vec::new(),
            free: Vec::new(),
            next_seq: 0,
            next_root: 0,
            early: BTreeMap::new(),
            in_flight: BTreeMap::new(),
        }
    }

    /// Payload bytes waiting in the partial subtree.
    pub(crate) fn partial(&self) -> &[u8] {
        &self.filling
    }

    /// Takes payload bytes; `root` receives every finished subtree root in stream order.
    pub(crate) fn update(&mut self, mut data: &[u8], root: &mut dyn FnMut([u8; 32])) {
        while !data.is_empty() {
            if self.filling.capacity() < CHUNK_PAYLOAD {
                self.filling = self
                    .free
                    .pop()
                    .unwrap_or_else(|| Vec::with_capacity(CHUNK_PAYLOAD));
            }
            let take = (CHUNK_PAYLOAD - self.filling.len()).min(data.len());
            self.filling.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.filling.len() == CHUNK_PAYLOAD {
                let payload = Arc::new(std::mem::take(&mut self.filling));
                let seq = self.next_seq;
                self.next_seq += 1;
                self.submit(seq, payload, root);
            }
        }
    }

    /// Waits for every subtree in flight; returns the partial subtree's bytes.
    pub(crate) fn drain(&mut self, root: &mut dyn FnMut([u8; 32])) -> Vec<u8> {
        while !self.in_flight.is_empty() {
            self.receive_one(root);
        }
        std::mem::take(&mut self.filling)
    }

    /// A copy of this state for a cloned hasher: subtrees in flight here are hashed again
    /// there (their payloads are shared, not copied), by workers of its own.
    pub(crate) fn fork(&self, root: &mut dyn FnMut([u8; 32])) -> Self {
        let mut copy = Self {
            threads: self.threads,
            backend: self.backend,
            workers: None,
            filling: self.filling.clone(),
            free: Vec::new(),
            next_seq: self.next_seq,
            next_root: self.next_root,
            early: self.early.clone(),
            in_flight: BTreeMap::new(),
        };
        for (&seq, payload) in &self.in_flight {
            copy.submit(seq, Arc::clone(payload), root);
        }
        copy
    }

    fn submit(&mut self, seq: u64, payload: Arc<Vec<u8>>, root: &mut dyn FnMut([u8; 32])) {
        let (threads, backend) = (self.threads, self.backend);
        let workers = self
            .workers
            .get_or_insert_with(|| Workers::spawn(threads, backend));
        if let Some(hasher) = workers.inline.as_mut() {
            let r = hasher.subtree_root(&payload);
            self.recycle(payload);
            self.accept(seq, r, root);
            return;
        }
        let sender = workers.jobs.as_ref().expect("jobs open until drop");
        let job = Job {
            seq,
            payload: Arc::clone(&payload),
        };
        if sender.send(job).is_err() {
            // Only a panicking worker closes the queue; hashing is infallible.
            panic!("commP worker threads stopped");
        }
        let running = workers.handles.len();
        self.in_flight.insert(seq, payload);
        // One job per worker plus one queued keeps every core busy.
        while self.in_flight.len() > running {
            self.receive_one(root);
        }
    }

    /// Keeps a payload buffer for the next subtree unless a cloned hasher still shares it.
    fn recycle(&mut self, payload: Arc<Vec<u8>>) {
        if let Ok(mut buf) = Arc::try_unwrap(payload) {
            buf.clear();
            self.free.push(buf);
        }
    }

    fn receive_one(&mut self, root: &mut dyn FnMut([u8; 32])) {
        let workers = self.workers.as_ref().expect("in flight implies workers");
        let Ok(done) = workers.done.recv() else {
            panic!("commP worker threads stopped");
        };
        // A bug, not bad input: hashing cannot fail. Reported here rather than as a hang.
        let Some(r) = done.root else {
            panic!("a commP worker thread panicked");
        };
        drop(done.payload);
        if let Some(payload) = self.in_flight.remove(&done.seq) {
            self.recycle(payload);
        }
        self.accept(done.seq, r, root);
    }

    /// Passes roots on in stream order.
    fn accept(&mut self, seq: u64, r: [u8; 32], root: &mut dyn FnMut([u8; 32])) {
        self.early.insert(seq, r);
        while let Some(r) = self.early.remove(&self.next_root) {
            self.next_root += 1;
            root(r);
        }
    }
}

impl Workers {
    fn spawn(threads: usize, backend: Backend) -> Self {
        let (jobs, queue) = channel::<Job>();
        let (done_tx, done) = channel::<Done>();
        let queue = Arc::new(Mutex::new(queue));
        let mut handles = Vec::with_capacity(threads);
        for i in 0..threads {
            let queue = Arc::clone(&queue);
            let done_tx = done_tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("commp-{i}"))
                .spawn(move || {
                    let mut hasher = CommP::serial(backend);
                    loop {
                        // The lock is held only while waiting for the next job.
                        let job = match queue.lock() {
                            Ok(q) => q.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = job else { return };
                        let root = std::panic::catch_unwind(AssertUnwindSafe(|| {
                            hasher.subtree_root(&job.payload)
                        }))
                        .ok();
                        if root.is_none() {
                            hasher = CommP::serial(backend);
                        }
                        let reply = Done {
                            seq: job.seq,
                            payload: job.payload,
                            root,
                        };
                        if done_tx.send(reply).is_err() {
                            return;
                        }
                    }
                });
            match spawned {
                Ok(h) => handles.push(h),
                // Out of threads: work with the ones we have (or inline, below).
                Err(_) => break,
            }
        }
        let inline = handles.is_empty().then(|| CommP::serial(backend));
        Self {
            jobs: Some(jobs),
            done,
            handles,
            inline,
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        drop(self.jobs.take());
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}
