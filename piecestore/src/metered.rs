//! A piece store that times every call of the store it wraps, for the
//! [`PIECE_STORE_SECONDS`](market_core::metrics::PIECE_STORE_SECONDS) metric. It forwards
//! every method, overridden defaults included, so the wrapped store's fast paths stay.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use market_core::Cid;
use market_core::metrics;

use crate::store::StagedPiece;
use crate::{ByteRange, ExpectedPiece, PieceMeta, PieceReader, PieceStore, PieceStoreError};

/// Times the calls of `inner`.
#[derive(Clone)]
pub struct MeteredPieceStore {
    inner: Arc<dyn PieceStore>,
}

impl MeteredPieceStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn PieceStore>) -> Self {
        Self { inner }
    }
}

async fn timed<T>(op: &'static str, f: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let out = f.await;
    metrics::piece_store(op, started.elapsed());
    out
}

#[async_trait::async_trait]
impl PieceStore for MeteredPieceStore {
    async fn put(
        &self,
        data: PieceReader,
        expect: Option<ExpectedPiece>,
    ) -> Result<PieceMeta, PieceStoreError> {
        timed("put", self.inner.put(data, expect)).await
    }

    async fn put_verified(
        &self,
        data: PieceReader,
        meta: PieceMeta,
    ) -> Result<(), PieceStoreError> {
        timed("put", self.inner.put_verified(data, meta)).await
    }

    async fn put_staged(&self, staged: StagedPiece) -> Result<(), PieceStoreError> {
        timed("put", self.inner.put_staged(staged)).await
    }

    async fn get(
        &self,
        piece: &Cid,
        range: Option<ByteRange>,
    ) -> Result<PieceReader, PieceStoreError> {
        timed("open", self.inner.get(piece, range)).await
    }

    async fn read_at(&self, piece: &Cid, range: ByteRange) -> Result<Bytes, PieceStoreError> {
        timed("read_at", self.inner.read_at(piece, range)).await
    }

    async fn stat(&self, piece: &Cid) -> Result<Option<PieceMeta>, PieceStoreError> {
        timed("stat", self.inner.stat(piece)).await
    }

    async fn has(&self, piece: &Cid) -> Result<bool, PieceStoreError> {
        timed("stat", self.inner.has(piece)).await
    }

    async fn delete(&self, piece: &Cid) -> Result<bool, PieceStoreError> {
        timed("delete", self.inner.delete(piece)).await
    }

    async fn list(&self) -> Result<Vec<PieceMeta>, PieceStoreError> {
        timed("list", self.inner.list()).await
    }

    async fn free_space(&self) -> Result<Option<u64>, PieceStoreError> {
        self.inner.free_space().await
    }

    fn locator(&self, piece: &Cid) -> String {
        self.inner.locator(piece)
    }
}
