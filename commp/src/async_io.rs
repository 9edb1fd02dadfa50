//! Async entry points: hash a `tokio::io::AsyncRead` or a `Stream` of byte buffers.
//!
//! Hashing is CPU work done inline on the calling task, one chunk at a time (a 1 MiB chunk
//! costs about a millisecond on a core with SHA extensions), so other tasks keep running
//! between chunks. Stream items are hashed straight from the caller's buffers: the only copy
//! is fr32 padding into the hasher's batch, which has to happen anyway.

use std::future::poll_fn;
use std::pin::pin;

use futures_core::Stream;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::{CommP, CommPError, PieceInfo};

/// Read size for [`CommP::update_async_read`].
const READ_CHUNK: usize = 1 << 20;

impl CommP {
    /// Hashes everything `reader` yields until end of file; returns the bytes read.
    pub async fn update_async_read<R: AsyncRead>(&mut self, reader: R) -> std::io::Result<u64> {
        let mut reader = pin!(reader);
        let mut buf = vec![0u8; READ_CHUNK];
        let mut read = 0u64;
        loop {
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return Ok(read);
            }
            self.update(&buf[..n]);
            read += n as u64;
        }
    }

    /// Hashes every buffer of `stream` until it ends; returns the bytes hashed, or the
    /// stream's first error.
    pub async fn update_stream<S, B, E>(&mut self, stream: S) -> Result<u64, E>
    where
        S: Stream<Item = Result<B, E>>,
        B: AsRef<[u8]>,
    {
        let mut stream = pin!(stream);
        let mut read = 0u64;
        while let Some(item) = poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
            let chunk = item?;
            self.update(chunk.as_ref());
            read += chunk.as_ref().len() as u64;
        }
        Ok(read)
    }
}

/// commP of everything an async reader yields (default policy and backend).
pub async fn commp_async_read<R: AsyncRead>(reader: R) -> Result<PieceInfo, CommPError> {
    let mut h = CommP::new();
    h.update_async_read(reader).await?;
    h.finish()
}

/// commP of a stream of byte buffers such as `bytes::Bytes` (default policy and backend).
pub async fn commp_stream<S, B, E>(stream: S) -> Result<PieceInfo, CommPError>
where
    S: Stream<Item = Result<B, E>>,
    B: AsRef<[u8]>,
    E: Into<std::io::Error>,
{
    let mut h = CommP::new();
    h.update_stream(stream)
        .await
        .map_err(|e| CommPError::Io(e.into()))?;
    h.finish()
}
