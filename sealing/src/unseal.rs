//! Getting a piece's bytes back from a sealed sector when the piece store has no copy (deals
//! made with `RemoveUnsealedCopy`).
//!
//! [`LotusMinerUnsealer`] asks lotus-miner to unseal the piece (`SectorsUnsealPiece`, which
//! returns once the unsealed copy exists) and reads it from the miner's storage endpoint,
//! `GET /remote/unsealed/s-t0<miner>-<sector>` with a `Range` (what Boost's piece reader
//! does). An unsealed sector file holds fr32-padded data, so the padded range covering the
//! wanted bytes is fetched and unpadded on the fly, 128 bytes into 127.

use std::pin::Pin;
use std::str::FromStr;

use bytes::Bytes;
use commp::fr32::{PADDED_BLOCK, UNPADDED_BLOCK, unpad_block};
use futures::{Stream, StreamExt};
use lotus_api::rpc::RpcClient;
use market_core::Cid;
use market_core::types::Address;
use piecestore::{ByteRange, DealRecord, PieceReader};
use retrieval_market::{UnsealError, Unsealer};
use url::Url;

use crate::json::{SectorId, SectorRef};

/// Unseals through lotus-miner's API and reads through its `/remote` storage endpoint.
#[derive(Clone)]
pub struct LotusMinerUnsealer {
    rpc: RpcClient,
    remote: Url,
    token: Option<String>,
    http: reqwest::Client,
}

fn unavailable(e: impl std::fmt::Display) -> UnsealError {
    UnsealError::Unavailable(e.to_string().into())
}

impl LotusMinerUnsealer {
    /// An unsealer for the miner at `rpc` (an admin token: both the API and `/remote` need
    /// it); `/remote` is on the same host and port.
    pub fn new(rpc: RpcClient, token: Option<String>) -> Self {
        let mut remote = rpc.url().clone();
        remote.set_path("/remote/");
        remote.set_query(None);
        Self {
            rpc,
            remote,
            token,
            http: reqwest::Client::new(),
        }
    }

    /// Asks the miner to unseal `deal`'s piece; returns once the unsealed copy exists.
    async fn unseal(&self, miner: u64, deal: &DealRecord) -> Result<(), UnsealError> {
        let status: serde_json::Value = self
            .rpc
            .call("SectorsStatus", (deal.sector, false))
            .await
            .map_err(unavailable)?;
        let proof_type = status["SealProof"].as_i64().ok_or_else(|| {
            unavailable(format!(
                "sector {}: no SealProof in SectorsStatus",
                deal.sector
            ))
        })?;
        let ticket = status["Ticket"]["Value"].clone();
        let sector = SectorRef {
            id: SectorId {
                miner,
                number: deal.sector,
            },
            proof_type,
        };
        let offset = deal.offset / PADDED_BLOCK as u64 * UNPADDED_BLOCK as u64;
        let size = deal.length / PADDED_BLOCK as u64 * UNPADDED_BLOCK as u64;
        let _: Option<serde_json::Value> = self
            .rpc
            .call_long(
                "SectorsUnsealPiece",
                (
                    sector,
                    offset,
                    size,
                    ticket,
                    Option::<serde_json::Value>::None,
                ),
            )
            .await
            .map_err(unavailable)?;
        Ok(())
    }
}

/// Unpads a stream of fr32 bytes starting at a 128-byte boundary into the unpadded bytes
/// `skip..skip+take` of what it encodes.
fn unpadded(
    body: impl Stream<Item = reqwest::Result<Bytes>> + Send + 'static,
    skip: u64,
    take: u64,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    struct S<B> {
        body: Pin<Box<B>>,
        pending: Vec<u8>,
        skip: u64,
        left: u64,
    }
    let state = S {
        body: Box::pin(body),
        pending: Vec::new(),
        skip,
        left: take,
    };
    futures::stream::unfold(state, |mut s| async move {
        loop {
            if s.left == 0 {
                return None;
            }
            if s.pending.len() >= PADDED_BLOCK {
                let whole = s.pending.len() / PADDED_BLOCK * PADDED_BLOCK;
                let mut out = Vec::with_capacity(whole / PADDED_BLOCK * UNPADDED_BLOCK);
                for chunk in s.pending[..whole].chunks_exact(PADDED_BLOCK) {
                    let mut block = [0u8; UNPADDED_BLOCK];
                    let input: &[u8; PADDED_BLOCK] = chunk.try_into().expect("exact chunk");
                    unpad_block(input, &mut block);
                    out.extend_from_slice(&block);
                }
                s.pending.drain(..whole);
                let skip = (s.skip as usize).min(out.len());
                s.skip -= skip as u64;
                let end = (skip as u64 + s.left).min(out.len() as u64) as usize;
                let piece = Bytes::copy_from_slice(&out[skip..end]);
                s.left -= piece.len() as u64;
                if !piece.is_empty() {
                    return Some((Ok(piece), s));
                }
                continue;
            }
            match s.body.next().await {
                Some(Ok(chunk)) => s.pending.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    s.left = 0;
                    return Some((Err(std::io::Error::other(e)), s));
                }
                None => {
                    let short = std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        format!("unsealed sector ended {} bytes early", s.left),
                    );
                    s.left = 0;
                    return Some((Err(short), s));
                }
            }
        }
    })
}

#[async_trait::async_trait]
impl Unsealer for LotusMinerUnsealer {
    async fn unsealed(
        &self,
        piece: &Cid,
        deal: &DealRecord,
        range: ByteRange,
    ) -> Result<Option<PieceReader>, UnsealError> {
        let miner = Address::from_str(&deal.miner)
            .ok()
            .and_then(|a| a.id())
            .ok_or_else(|| unavailable(format!("miner {:?} is not an id address", deal.miner)))?;
        self.unseal(miner, deal).await?;
        let unpadded_len = deal.length / PADDED_BLOCK as u64 * UNPADDED_BLOCK as u64;
        if range.start > range.end || range.end > unpadded_len {
            return Err(unavailable(format!(
                "range {}..{} outside the {unpadded_len}-byte piece",
                range.start, range.end
            )));
        }
        let first = range.start / UNPADDED_BLOCK as u64;
        let last = range.end.div_ceil(UNPADDED_BLOCK as u64);
        let from = deal.offset + first * PADDED_BLOCK as u64;
        let to = deal.offset + last * PADDED_BLOCK as u64;
        let url = self
            .remote
            .join(&format!("unsealed/s-t0{miner}-{}", deal.sector))
            .map_err(unavailable)?;
        let mut req = self
            .http
            .get(url)
            .header("Range", format!("bytes={from}-{}", to.saturating_sub(1)));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(unavailable)?;
        match resp.status().as_u16() {
            206 => {}
            404 => return Ok(None),
            s => {
                return Err(unavailable(format!(
                    "/remote answered {s} for piece {piece}"
                )));
            }
        }
        let skip = range.start - first * UNPADDED_BLOCK as u64;
        let stream = unpadded(resp.bytes_stream(), skip, range.end - range.start);
        Ok(Some(Box::pin(tokio_util::io::StreamReader::new(stream))))
    }
}

/// Unseals through a pull sealer: a `SectorsUnsealPiece` market event asks a listening
/// sealer of the miner (damocles, the `sealer` example) to upload the piece to this market's
/// `PUT /resource`, which stores it once its commP checks out; the range is then read from
/// the piece store.
#[derive(Clone)]
pub struct PullUnsealer {
    events: crate::events::MarketEvents,
    pieces: std::sync::Arc<dyn piecestore::PieceStore>,
    resource: Url,
    secret: Vec<u8>,
    timeout: std::time::Duration,
}

impl PullUnsealer {
    /// Asks sealers listening on `events`; they upload to `base`'s `/resource` with a
    /// write token signed with `secret`; waits up to `timeout` for each unseal.
    pub fn new(
        events: crate::events::MarketEvents,
        pieces: std::sync::Arc<dyn piecestore::PieceStore>,
        base: &Url,
        secret: Vec<u8>,
        timeout: std::time::Duration,
    ) -> Self {
        let mut resource = base.clone();
        resource.set_path("/resource");
        resource.set_query(None);
        Self {
            events,
            pieces,
            resource,
            secret,
            timeout,
        }
    }
}

#[async_trait::async_trait]
impl Unsealer for PullUnsealer {
    async fn unsealed(
        &self,
        piece: &Cid,
        deal: &DealRecord,
        range: ByteRange,
    ) -> Result<Option<PieceReader>, UnsealError> {
        if self
            .pieces
            .stat(piece)
            .await
            .map_err(unavailable)?
            .is_none()
        {
            let miner = Address::from_str(&deal.miner).map_err(unavailable)?;
            // The token rides in a URL the sealer may log: it lives as long as the wait.
            let token = market_core::jwt::sign_expiring(
                &self.secret,
                &[market_core::jwt::READ, market_core::jwt::WRITE],
                self.timeout + std::time::Duration::from_secs(60),
            )
            .map_err(unavailable)?;
            let mut dest = self.resource.clone();
            dest.query_pairs_mut()
                .append_pair("resource-id", &piece.to_string())
                .append_pair("size", &deal.length.to_string())
                .append_pair("token", &token);
            let request = crate::events::UnsealRequest {
                piece_cid: *piece,
                miner,
                sid: deal.sector,
                offset: deal.offset / PADDED_BLOCK as u64 * UNPADDED_BLOCK as u64,
                size: deal.length / PADDED_BLOCK as u64 * UNPADDED_BLOCK as u64,
                dest: dest.to_string(),
            };
            let payload = serde_json::to_value(&request).map_err(unavailable)?;
            let state = self
                .events
                .request(miner, "SectorsUnsealPiece", &payload, self.timeout)
                .await
                .map_err(unavailable)?;
            tracing::info!(%piece, sector = deal.sector, ?state, "a sealer unsealed a piece");
        }
        match self.pieces.get(piece, Some(range)).await {
            Ok(r) => Ok(Some(r)),
            Err(piecestore::PieceStoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(unavailable(market_core::report(&e))),
        }
    }
}
