//! The provider side: query answers, and reading piece bytes and blocks.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use market_core::Cid;

use futures::StreamExt;
use futures::stream::BoxStream;
use market_core::types::{Address, TokenAmount};
use piecestore::unixfs::IDENTITY;
use piecestore::{
    ByteRange, PaddedPieceSize, PieceIndex, PieceReader, PieceStore, PieceStoreError,
};
use tokio::io::AsyncReadExt;
use tokio_util::io::ReaderStream;

use crate::RetrievalError;
use crate::types::{
    Query, QueryItemStatus, QueryResponse, QueryStatus, TransportProtocol, TransportsResponse,
};
use crate::unseal::Unsealer;

/// `start..end` cut into ranges of at most `chunk` bytes.
fn chunk_ranges(start: u64, end: u64, chunk: u64) -> impl Iterator<Item = ByteRange> {
    (start..end)
        .step_by(chunk as usize)
        .map(move |s| ByteRange::new(s, end.min(s + chunk)))
}

/// Retrieval terms (go-fil-markets defaults: free, 1 MiB payment interval and increase).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrievalAsk {
    /// Price per byte.
    pub price_per_byte: TokenAmount,
    /// Price to unseal.
    pub unseal_price: TokenAmount,
    /// Bytes sent before the first payment.
    pub payment_interval: u64,
    /// Growth of the interval after each payment.
    pub payment_interval_increase: u64,
}

impl Default for RetrievalAsk {
    fn default() -> Self {
        Self {
            price_per_byte: TokenAmount::ZERO,
            unseal_price: TokenAmount::ZERO,
            payment_interval: 1 << 20,
            payment_interval_increase: 1 << 20,
        }
    }
}

/// Sizes of a piece a provider can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServablePiece {
    /// The v1 piece CID.
    pub piece_cid: Cid,
    /// The deal's padded piece size.
    pub padded_size: PaddedPieceSize,
    /// Payload bytes before zero padding.
    pub payload_size: u64,
    /// Whether the piece store holds an unsealed copy (otherwise the unsealer is asked).
    pub local: bool,
}

impl ServablePiece {
    /// Bytes served for the piece: the payload and zeros up to the unpadded piece size.
    pub fn unpadded_size(&self) -> u64 {
        self.padded_size.unpadded().get()
    }
}

struct Inner {
    pieces: Arc<dyn PieceStore>,
    index: Arc<dyn PieceIndex>,
    unsealer: Option<Arc<dyn Unsealer>>,
    payment_address: Address,
    ask: RwLock<RetrievalAsk>,
    transports: RwLock<Vec<TransportProtocol>>,
    /// `/piece` streams and gateway walks reading, to share [`Inner::read_budget`] among.
    active: Arc<AtomicUsize>,
    read_budget: u64,
}

/// Bytes of piece data all `/piece` retrievals together aim to hold in memory (read, not
/// yet sent). Each stream reads chunks of `budget / (3 × streams)` (two read ahead, one being
/// sent), between [`MIN_CHUNK`] and the chunk size asked for: one client gets 4 MiB reads, a
/// hundred get 0.85 MiB ones, and nobody waits for memory another (perhaps slow) client holds.
pub const DEFAULT_READ_BUDGET: u64 = 256 << 20;

/// Smallest read of a `/piece` stream under load.
pub const MIN_CHUNK: u64 = 256 << 10;

/// Counts a `/piece` stream or gateway walk as active for as long as it lives.
struct ActiveStream(Arc<AtomicUsize>);

impl ActiveStream {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(count.clone())
    }

    /// The next read's size: this stream's share of `budget`, within `[MIN_CHUNK, max]`.
    fn chunk(&self, budget: u64, max: u64) -> u64 {
        let streams = self.0.load(Ordering::Relaxed).max(1) as u64;
        (budget / (3 * streams)).clamp(MIN_CHUNK.min(max), max)
    }
}

impl Drop for ActiveStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One retrieval's share of the provider's read budget, held while it reads: a gateway walk
/// sizes its look-ahead from it as `/piece` streams size their chunks, so that many walks at
/// once hold no more than the budget (beyond one block each).
pub struct ReadShare {
    active: ActiveStream,
    budget: u64,
}

impl ReadShare {
    /// Bytes this retrieval may hold read ahead now: its share of the budget, within
    /// `[MIN_CHUNK, max]`.
    pub fn bytes(&self, max: u64) -> u64 {
        self.active.chunk(self.budget, max)
    }
}

/// A retrieval provider over a piece store and its index. Cheap to clone.
#[derive(Clone)]
pub struct RetrievalProvider {
    inner: Arc<Inner>,
}

impl RetrievalProvider {
    /// A provider serving what `pieces` and `index` hold; `payment_address` is the miner's
    /// worker, named in query answers.
    pub fn new(
        pieces: Arc<dyn PieceStore>,
        index: Arc<dyn PieceIndex>,
        unsealer: Option<Arc<dyn Unsealer>>,
        payment_address: Address,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                pieces,
                index,
                unsealer,
                payment_address,
                ask: RwLock::new(RetrievalAsk::default()),
                transports: RwLock::new(Vec::new()),
                active: Arc::default(),
                read_budget: DEFAULT_READ_BUDGET,
            }),
        }
    }

    /// This provider with `bytes` as the memory `/piece` reads share (default
    /// [`DEFAULT_READ_BUDGET`]). Call before cloning.
    pub fn with_read_budget(mut self, bytes: u64) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.read_budget = bytes;
        }
        self
    }

    /// Counts a retrieval among those sharing the read budget until the share is dropped.
    pub fn read_share(&self) -> ReadShare {
        ReadShare {
            active: ActiveStream::enter(&self.inner.active),
            budget: self.inner.read_budget,
        }
    }

    /// Current retrieval terms.
    pub fn ask(&self) -> RetrievalAsk {
        self.inner.ask.read().expect("ask lock").clone()
    }

    /// Replaces the retrieval terms.
    pub fn set_ask(&self, ask: RetrievalAsk) {
        *self.inner.ask.write().expect("ask lock") = ask;
    }

    /// Sets what `/fil/retrieval/transports/1.0.0` advertises.
    pub fn set_transports(&self, protocols: Vec<TransportProtocol>) {
        *self.inner.transports.write().expect("transports lock") = protocols;
    }

    /// The transports answer.
    pub fn transports(&self) -> TransportsResponse {
        TransportsResponse {
            protocols: self
                .inner
                .transports
                .read()
                .expect("transports lock")
                .clone(),
        }
    }

    /// The piece index.
    pub fn index(&self) -> &dyn PieceIndex {
        &*self.inner.index
    }

    /// What can be served of `piece`: `None` if neither the store nor a sealed deal has it.
    pub async fn piece(&self, piece: &Cid) -> Result<Option<ServablePiece>, RetrievalError> {
        if let Some(m) = self.inner.pieces.stat(piece).await? {
            return Ok(Some(ServablePiece {
                piece_cid: m.piece_cid,
                padded_size: m.padded_size,
                payload_size: m.payload_size,
                local: true,
            }));
        }
        if self.inner.unsealer.is_none() {
            return Ok(None);
        }
        Ok(self
            .inner
            .index
            .piece(piece)
            .await?
            .filter(|r| !r.deals.is_empty())
            .map(|r| ServablePiece {
                piece_cid: r.meta.piece_cid,
                padded_size: r.meta.padded_size,
                payload_size: r.meta.payload_size,
                local: false,
            }))
    }

    /// `range` of the unpadded piece: payload bytes from the store, then zeros; or the
    /// unsealer's bytes when the store has no copy.
    pub async fn read_piece(
        &self,
        piece: &ServablePiece,
        range: ByteRange,
    ) -> Result<PieceReader, RetrievalError> {
        if range.end > piece.unpadded_size() || range.start > range.end {
            return Err(PieceStoreError::RangeNotSatisfiable {
                start: range.start,
                end: range.end,
                len: piece.unpadded_size(),
            }
            .into());
        }
        if piece.local {
            let data_end = range.end.min(piece.payload_size);
            let zeros = range.end - data_end.max(range.start);
            let data: PieceReader = if range.start < data_end {
                self.inner
                    .pieces
                    .get(
                        &piece.piece_cid,
                        Some(ByteRange::new(range.start, data_end)),
                    )
                    .await?
            } else {
                Box::pin(tokio::io::empty())
            };
            return Ok(Box::pin(data.chain(tokio::io::repeat(0).take(zeros))));
        }
        let unsealer = self
            .inner
            .unsealer
            .as_ref()
            .ok_or(PieceStoreError::NotFound(Box::new(piece.piece_cid)))?;
        let record = self.inner.index.piece(&piece.piece_cid).await?;
        for deal in record.map(|r| r.deals).unwrap_or_default() {
            match unsealer.unsealed(&piece.piece_cid, &deal, range).await {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(piece = %piece.piece_cid, deal = deal.deal_id, error = %e, "unseal failed");
                }
            }
        }
        Err(RetrievalError::NoUnsealedCopy(Box::new(piece.piece_cid)))
    }

    /// `range` of the unpadded piece as a stream of chunks of at most `chunk` bytes. A stored
    /// piece is read with positional reads, the next chunk read while the last one is being
    /// sent, and its zero padding costs no reads; a piece the store lacks streams from the
    /// unsealer.
    pub async fn piece_chunks(
        &self,
        piece: &ServablePiece,
        range: ByteRange,
        chunk: usize,
    ) -> Result<BoxStream<'static, Result<Bytes, RetrievalError>>, RetrievalError> {
        let chunk = (chunk as u64).clamp(1, piecestore::MAX_READ_AT);
        if !piece.local || range.end > piece.unpadded_size() || range.start > range.end {
            let reader = self.read_piece(piece, range).await?;
            return Ok(ReaderStream::with_capacity(reader, chunk as usize)
                .map(|r| r.map_err(|e| RetrievalError::from(PieceStoreError::Io(e))))
                .boxed());
        }
        let data_end = range.end.min(piece.payload_size);
        // Chunk sizes are chosen read by read, as streams come and go.
        let active = ActiveStream::enter(&self.inner.active);
        let budget = self.inner.read_budget;
        let ranges = futures::stream::unfold((range.start, active), move |(pos, active)| {
            let next = (pos < data_end).then(|| {
                let end = data_end.min(pos + active.chunk(budget, chunk));
                (ByteRange::new(pos, end), (end, active))
            });
            std::future::ready(next)
        });
        let reads = ranges.map({
            let (store, cid) = (self.inner.pieces.clone(), piece.piece_cid);
            move |r| {
                let store = store.clone();
                async move { Ok(store.read_at(&cid, r).await?) }
            }
        });
        let zero = Bytes::from(vec![0u8; chunk as usize]);
        let zeros = chunk_ranges(data_end.max(range.start), range.end, chunk)
            .map(move |r| Ok(zero.slice(..r.len() as usize)));
        Ok(reads
            .buffered(2)
            .chain(futures::stream::iter(zeros))
            .boxed())
    }

    /// A block's bytes by CID (matched on the multihash), from any piece that holds it.
    /// Identity CIDs carry their bytes.
    pub async fn block(&self, cid: &Cid) -> Result<Option<Bytes>, RetrievalError> {
        Ok(self
            .blocks(std::slice::from_ref(cid), 0)
            .await?
            .pop()
            .flatten())
    }

    /// The bytes of a prefix of `cids`: one index lookup for all of them, then parallel
    /// reads of as many as fit in `budget` bytes (at least one), so a DAG walk reads ahead
    /// without a round trip per block and with bounded memory. `None` for a block no piece
    /// holds.
    pub async fn blocks(
        &self,
        cids: &[Cid],
        budget: u64,
    ) -> Result<Vec<Option<Bytes>>, RetrievalError> {
        let wanted: Vec<Cid> = cids
            .iter()
            .filter(|c| c.hash().code() != IDENTITY)
            .copied()
            .collect();
        let mut found = self.inner.index.find_blocks(&wanted).await?.into_iter();
        let mut spent = 0u64;
        let mut reads = Vec::new();
        for (i, cid) in cids.iter().enumerate() {
            if cid.hash().code() == IDENTITY {
                reads.push(futures::future::Either::Left(std::future::ready(Ok(Some(
                    Bytes::copy_from_slice(cid.hash().digest()),
                )))));
                continue;
            }
            let places = found.next().unwrap_or_default();
            let size = places.first().map_or(0, |p| p.2);
            if i > 0 && spent + size > budget {
                break;
            }
            spent += size;
            reads.push(futures::future::Either::Right(self.read_block(places)));
        }
        futures::future::try_join_all(reads).await
    }

    /// The first readable copy among `places` (piece, offset, size).
    async fn read_block(
        &self,
        places: Vec<(Cid, u64, u64)>,
    ) -> Result<Option<Bytes>, RetrievalError> {
        for (piece_cid, offset, size) in places {
            if size > piecestore::MAX_SECTION {
                continue;
            }
            let range = ByteRange::new(offset, offset + size);
            // Blocks lie inside the payload, so a stored piece is read directly; only a piece
            // the store lacks is sized and sent to the unsealer.
            let read = match self.inner.pieces.read_at(&piece_cid, range).await {
                Ok(data) => Ok(data),
                Err(PieceStoreError::NotFound(_)) => match self.piece(&piece_cid).await? {
                    Some(piece) => self.unsealed_block(&piece, range).await,
                    None => continue,
                },
                Err(e) => Err(e.into()),
            };
            match read {
                Ok(data) if data.len() as u64 == size => return Ok(Some(data)),
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(piece = %piece_cid, error = %e, "block unreadable from this piece");
                }
            }
        }
        Ok(None)
    }

    async fn unsealed_block(
        &self,
        piece: &ServablePiece,
        range: ByteRange,
    ) -> Result<Bytes, RetrievalError> {
        let reader = self.read_piece(piece, range).await?;
        Ok(piecestore::read_exactly(reader, range.len()).await?)
    }

    /// The answer to a query that could not be understood.
    pub fn refuse(&self, message: String) -> QueryResponse {
        self.answer(QueryStatus::ERROR, message)
    }

    fn answer(&self, status: QueryStatus, message: String) -> QueryResponse {
        let ask = self.ask();
        QueryResponse {
            size: 0,
            status,
            message,
            unseal_price: ask.unseal_price,
            piece_cid_found: QueryItemStatus::UNAVAILABLE,
            payment_address: self.inner.payment_address,
            min_price_per_byte: ask.price_per_byte,
            max_payment_interval: ask.payment_interval,
            max_payment_interval_increase: ask.payment_interval_increase,
        }
    }

    /// Answers a query: the first piece holding the payload (as a CAR root or any block)
    /// that can be served, restricted to the asked piece if any.
    pub async fn query(&self, q: &Query) -> QueryResponse {
        let mut answer = self.answer(QueryStatus::UNAVAILABLE, String::new());
        match self.find_payload(q).await {
            Ok(Some(piece)) => {
                answer.status = QueryStatus::AVAILABLE;
                answer.piece_cid_found = QueryItemStatus::AVAILABLE;
                answer.size = piece.unpadded_size();
            }
            Ok(None) => answer.message = format!("payload {} not found", q.payload_cid),
            Err(e) => {
                answer.status = QueryStatus::ERROR;
                answer.message = e.to_string();
            }
        }
        answer
    }

    async fn find_payload(&self, q: &Query) -> Result<Option<ServablePiece>, RetrievalError> {
        let index = &self.inner.index;
        let mut candidates = index.pieces_for_root(&q.payload_cid).await?;
        for (p, _, _) in index.find_block(&q.payload_cid).await? {
            if !candidates.contains(&p) {
                candidates.push(p);
            }
        }
        for c in candidates {
            if q.params.piece_cid.is_some_and(|p| p != c) {
                continue;
            }
            if let Some(piece) = self.piece(&c).await? {
                return Ok(Some(piece));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_share_the_read_budget() {
        let count = Arc::new(AtomicUsize::new(0));
        let max = 4 << 20;
        let first = ActiveStream::enter(&count);
        assert_eq!(
            first.chunk(DEFAULT_READ_BUDGET, max),
            max,
            "alone: full chunks"
        );
        let more: Vec<_> = (0..99).map(|_| ActiveStream::enter(&count)).collect();
        let shared = first.chunk(DEFAULT_READ_BUDGET, max);
        assert!(
            shared * 3 * 100 <= DEFAULT_READ_BUDGET && shared >= MIN_CHUNK,
            "{shared}"
        );
        let crowd: Vec<_> = (0..10_000).map(|_| ActiveStream::enter(&count)).collect();
        assert_eq!(
            first.chunk(DEFAULT_READ_BUDGET, max),
            MIN_CHUNK,
            "never below the floor"
        );
        drop((more, crowd));
        assert_eq!(count.load(Ordering::Relaxed), 1);
        assert_eq!(first.chunk(DEFAULT_READ_BUDGET, max), max);
    }
}
