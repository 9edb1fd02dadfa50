//! `/fil/retrieval/qry/1.0.0` and `/fil/retrieval/transports/1.0.0` over libp2p streams.
//!
//! Framing is the market's: one CBOR value per direction, no length prefix, read as one
//! bounded item; the responder closes. The transports client writes nothing and reads the
//! answer. Timeouts follow the reference implementations (query 5 s on the provider side,
//! transports 30 s on the client side).

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use libp2p::StreamProtocol;
use storage_market::cbor;
use storage_market::network::{MarketNetwork, PeerAddr};

use crate::RetrievalError;
use crate::provider::RetrievalProvider;
use crate::types::{Query, QueryResponse, TransportsResponse};

/// The retrieval query protocol.
pub const QUERY_PROTOCOL: StreamProtocol = StreamProtocol::new("/fil/retrieval/qry/1.0.0");
/// The transports advertisement protocol.
pub const TRANSPORTS_PROTOCOL: StreamProtocol =
    StreamProtocol::new("/fil/retrieval/transports/1.0.0");

/// Largest retrieval message read from a peer.
pub const MAX_MESSAGE: usize = 64 << 10;
/// Streams handled at once; further peers wait for a slot.
const MAX_CONCURRENT: usize = 64;
const SERVE_TIMEOUT: Duration = Duration::from_secs(5);
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// Serving tasks; dropping it stops serving.
pub struct RetrievalService {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for RetrievalService {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Serves both protocols for `provider` on the host behind `control` (the storage
/// provider's, from `ProviderNode::streams`).
pub fn serve(
    mut control: libp2p_stream::Control,
    provider: RetrievalProvider,
) -> Result<RetrievalService, RetrievalError> {
    let stream_err = |e: libp2p_stream::AlreadyRegistered| RetrievalError::Stream(e.to_string());
    let mut queries = control.accept(QUERY_PROTOCOL).map_err(stream_err)?;
    let mut transports = control.accept(TRANSPORTS_PROTOCOL).map_err(stream_err)?;
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONCURRENT));
    let (p, sem) = (provider.clone(), permits.clone());
    let q = tokio::spawn(async move {
        while let Some((peer, mut stream)) = queries.next().await {
            let (p, sem) = (p.clone(), sem.clone());
            tokio::spawn(async move {
                let Ok(_permit) = sem.acquire_owned().await else {
                    return;
                };
                let work = async {
                    let bytes = cbor::read_item(&mut stream, MAX_MESSAGE).await?;
                    let query: Query =
                        cbor::from_slice(&bytes, MAX_MESSAGE).map_err(cbor::invalid_data)?;
                    let answer = p.query(&query).await;
                    stream.write_all(&cbor::to_vec(&answer)).await?;
                    stream.close().await
                };
                match tokio::time::timeout(SERVE_TIMEOUT, work).await {
                    Ok(Ok(())) => tracing::debug!(%peer, "answered retrieval query"),
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "retrieval query failed"),
                    Err(_) => tracing::debug!(%peer, "retrieval query timed out"),
                }
            });
        }
    });
    let t = tokio::spawn(async move {
        while let Some((peer, mut stream)) = transports.next().await {
            let answer = cbor::to_vec(&provider.transports());
            tokio::spawn(async move {
                let work = async {
                    stream.write_all(&answer).await?;
                    stream.close().await
                };
                if let Ok(Err(e)) = tokio::time::timeout(SERVE_TIMEOUT, work).await {
                    tracing::debug!(%peer, error = %e, "transports answer failed");
                }
            });
        }
    });
    Ok(RetrievalService { tasks: vec![q, t] })
}

async fn exchange<T: serde::de::DeserializeOwned>(
    network: &MarketNetwork,
    peer: &PeerAddr,
    protocol: StreamProtocol,
    request: Option<Vec<u8>>,
) -> Result<T, RetrievalError> {
    network.connect(peer).await?;
    let work = async {
        let mut stream = network
            .streams()
            .open_stream(peer.peer_id, protocol)
            .await
            .map_err(|e| RetrievalError::Stream(e.to_string()))?;
        if let Some(req) = request {
            stream.write_all(&req).await?;
            stream.flush().await?;
        }
        let bytes = cbor::read_item(&mut stream, MAX_MESSAGE).await?;
        let _ = stream.close().await;
        cbor::from_slice(&bytes, MAX_MESSAGE).map_err(|e| RetrievalError::Decode(e.to_string()))
    };
    tokio::time::timeout(CLIENT_TIMEOUT, work)
        .await
        .map_err(|_| RetrievalError::Stream("timed out".into()))?
}

/// Asks `peer` about a payload.
pub async fn query(
    network: &MarketNetwork,
    peer: &PeerAddr,
    query: &Query,
) -> Result<QueryResponse, RetrievalError> {
    exchange(network, peer, QUERY_PROTOCOL, Some(cbor::to_vec(query))).await
}

/// Asks `peer` which retrieval transports it offers.
pub async fn transports(
    network: &MarketNetwork,
    peer: &PeerAddr,
) -> Result<TransportsResponse, RetrievalError> {
    exchange(network, peer, TRANSPORTS_PROTOCOL, None).await
}
