//! Protocols that carry one CBOR item each way on a fresh stream: the storage ask, deal and
//! status protocols and the retrieval query and transports.
//!
//! There is no length prefix and Go peers do not half-close before reading the reply, so
//! each side reads exactly one bounded item ([`crate::cbor::read_item`]). A [`Codec`] says how
//! each version of a protocol family encodes its messages; [`serve`] mounts a handler for
//! it on a [`Host`], [`request`] sends one request. A request that cannot be decoded is
//! handed to the handler as an error, so that it can answer with the protocol's own
//! refusal; the stream is then closed, never silently reset.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use libp2p::{PeerId, StreamProtocol};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::cbor::{self, DecodeError};
use crate::host::{Host, HostError, PeerAddr};

/// How one protocol family puts its messages on the wire. By default both messages are
/// plain DAG-CBOR in every version; a family whose versions differ (tuple encodings, fields
/// added in a later version) overrides the methods concerned.
pub trait Codec: Send + Sync + 'static {
    /// The versions of the family (an enum).
    type Protocol: Copy + Eq + std::fmt::Debug + Send + Sync + 'static;
    /// What the dialer sends.
    type Request: Serialize + DeserializeOwned + Send + 'static;
    /// What the listener answers.
    type Response: Serialize + DeserializeOwned + Send + 'static;

    /// The stream protocol id of `version`.
    fn protocol_id(version: Self::Protocol) -> StreamProtocol;
    /// Whether the dialer sends a request item at all (the transports protocol does not).
    fn has_request(_version: Self::Protocol) -> bool {
        true
    }
    /// Encodes a request for `version`.
    fn encode_request(_version: Self::Protocol, request: &Self::Request) -> Vec<u8> {
        cbor::to_vec(request)
    }
    /// Decodes a request of `version`.
    fn decode_request(
        _version: Self::Protocol,
        bytes: &[u8],
        limit: usize,
    ) -> Result<Self::Request, DecodeError> {
        cbor::from_slice(bytes, limit)
    }
    /// Encodes a response for `version`.
    fn encode_response(_version: Self::Protocol, response: &Self::Response) -> Vec<u8> {
        cbor::to_vec(response)
    }
    /// Decodes a response of `version`.
    fn decode_response(
        _version: Self::Protocol,
        bytes: &[u8],
        limit: usize,
    ) -> Result<Self::Response, DecodeError> {
        cbor::from_slice(bytes, limit)
    }
}

/// Limits of one served or requested protocol family.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct RpcLimits {
    /// Largest message accepted in either direction.
    pub max_message_size: usize,
    /// Time allowed for a whole exchange.
    pub timeout: Duration,
    /// Time a peer has to send its whole request once the stream is open. A stream that
    /// takes longer is closed; until then it holds a reading slot, not a handler's.
    pub request_timeout: Duration,
    /// Inbound exchanges handled at once across peers; further requests wait for a slot.
    pub max_concurrent: usize,
    /// Inbound requests being read at once across peers; further streams wait.
    pub max_reading: usize,
}

impl Default for RpcLimits {
    fn default() -> Self {
        Self {
            max_message_size: 256 * 1024,
            timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            max_concurrent: 100,
            max_reading: 1024,
        }
    }
}

impl RpcLimits {
    /// Refuses messages over `bytes`.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Gives up on an exchange after `timeout`.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Handles at most `n` inbound exchanges at once.
    pub fn with_max_concurrent(mut self, n: usize) -> Self {
        self.max_concurrent = n;
        self
    }

    /// Closes inbound streams whose request has not fully arrived after `timeout`.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }
}

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RpcError {
    /// The peer could not be reached or speaks none of the versions.
    #[error(transparent)]
    Host(#[from] HostError),
    /// The stream broke.
    #[error("stream i/o with {peer}")]
    Io {
        /// The peer.
        peer: PeerId,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The answer was not a valid message.
    #[error("malformed answer from {peer}")]
    Decode {
        /// The peer.
        peer: PeerId,
        /// Why.
        #[source]
        source: DecodeError,
    },
    /// No complete answer in time. The peer may still have processed the request.
    #[error("no answer from {peer} in {timeout:?} (it may still have processed the request)")]
    Timeout {
        /// The peer.
        peer: PeerId,
        /// The limit in force.
        timeout: Duration,
    },
}

/// A request as the handler receives it: decoded, or the reason it could not be.
pub type Inbound<C> = Result<<C as Codec>::Request, DecodeError>;

/// Serving tasks of one protocol family; dropping it stops serving.
#[must_use = "dropping the service stops serving"]
pub struct Service {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Service {
    /// Serving tasks of several families as one.
    pub fn merge(services: impl IntoIterator<Item = Service>) -> Service {
        let mut tasks = Vec::new();
        for mut s in services {
            tasks.append(&mut s.tasks);
        }
        Service { tasks }
    }
}

/// Serves `versions` of the family `C` on `host`. `handler` gets each request, or the
/// reason it could not be decoded, and returns the answer; `None` closes the stream after
/// a logged warning.
pub fn serve<C, H, F>(
    host: &Host,
    versions: &[C::Protocol],
    limits: RpcLimits,
    handler: H,
) -> Result<Service, HostError>
where
    C: Codec,
    H: Fn(PeerId, C::Protocol, Inbound<C>) -> F + Send + Sync + 'static,
    F: Future<Output = Option<C::Response>> + Send + 'static,
{
    let handler = Arc::new(handler);
    let slots = Arc::new(Slots {
        reading: tokio::sync::Semaphore::new(limits.max_reading.max(1)),
        handling: tokio::sync::Semaphore::new(limits.max_concurrent.max(1)),
    });
    let mut tasks = Vec::new();
    for &version in versions {
        let mut incoming = host.accept(C::protocol_id(version))?;
        let (handler, slots, limits) = (handler.clone(), slots.clone(), limits.clone());
        tasks.push(tokio::spawn(async move {
            // Only spawn here: a slow accept loop fills the host's inbound queue.
            while let Some((peer, stream)) = incoming.next().await {
                let (handler, slots, limits) = (handler.clone(), slots.clone(), limits.clone());
                tokio::spawn(async move {
                    let timeout = limits.timeout;
                    let work = answer::<C, H, F>(peer, version, stream, &limits, &slots, &*handler);
                    match tokio::time::timeout(timeout, work).await {
                        Ok(Ok(())) => tracing::debug!(%peer, ?version, "answered"),
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, ?version, error = %e, "exchange failed")
                        }
                        Err(_) => tracing::debug!(%peer, ?version, "exchange timed out"),
                    }
                });
            }
        }));
    }
    Ok(Service { tasks })
}

/// The two stages of an inbound exchange and how many streams may be in each: a peer that
/// trickles its request holds a reading slot only, so slow peers cannot starve handlers.
struct Slots {
    reading: tokio::sync::Semaphore,
    handling: tokio::sync::Semaphore,
}

async fn answer<C, H, F>(
    peer: PeerId,
    version: C::Protocol,
    mut stream: libp2p::Stream,
    limits: &RpcLimits,
    slots: &Slots,
    handler: &H,
) -> std::io::Result<()>
where
    C: Codec,
    H: Fn(PeerId, C::Protocol, Inbound<C>) -> F,
    F: Future<Output = Option<C::Response>>,
{
    let limit = limits.max_message_size;
    let request = if C::has_request(version) {
        let Ok(_reading) = slots.reading.acquire().await else {
            return Ok(());
        };
        let read = cbor::read_item(&mut stream, limit);
        let Ok(read) = tokio::time::timeout(limits.request_timeout, read).await else {
            tracing::debug!(%peer, ?version, "request did not arrive in time");
            // Closed, not reset: the peer sees the stream end.
            return stream.close().await;
        };
        match read {
            Ok(bytes) => C::decode_request(version, &bytes, limit),
            Err(e) => match e.downcast::<DecodeError>() {
                Ok(decode) => Err(decode),
                // The stream broke before a whole item came: nobody to answer.
                Err(io) => return Err(io),
            },
        }
    } else {
        C::decode_request(version, &[], limit)
    };
    let Ok(_handling) = slots.handling.acquire().await else {
        return Ok(());
    };
    if let Err(e) = &request {
        tracing::warn!(%peer, ?version, error = %e, "malformed request");
    }
    match handler(peer, version, request).await {
        Some(response) => {
            stream
                .write_all(&C::encode_response(version, &response))
                .await?;
            stream.flush().await?;
        }
        None => tracing::warn!(%peer, ?version, "request left unanswered"),
    }
    stream.close().await
}

/// Sends `request` to `peer` on the first of `versions` it speaks and reads the answer.
/// `request` builds the message for the version negotiated.
pub async fn request<C: Codec>(
    host: &Host,
    peer: &PeerAddr,
    versions: &[C::Protocol],
    limits: &RpcLimits,
    request: impl FnOnce(C::Protocol) -> C::Request,
) -> Result<(C::Protocol, C::Response), RpcError> {
    let ids: Vec<StreamProtocol> = versions.iter().map(|v| C::protocol_id(*v)).collect();
    let peer_id = peer.peer_id;
    let io = |source| RpcError::Io {
        peer: peer_id,
        source,
    };
    let work = async {
        let (id, mut stream) = host.open_any(peer, &ids).await?;
        let version = versions[ids.iter().position(|p| *p == id).unwrap_or(0)];
        if C::has_request(version) {
            let bytes = C::encode_request(version, &request(version));
            stream.write_all(&bytes).await.map_err(io)?;
            stream.flush().await.map_err(io)?;
        }
        let bytes = cbor::read_item(&mut stream, limits.max_message_size)
            .await
            .map_err(|e| match e.downcast::<DecodeError>() {
                Ok(source) => RpcError::Decode {
                    peer: peer_id,
                    source,
                },
                Err(e) => io(e),
            })?;
        let _ = stream.close().await;
        let response =
            C::decode_response(version, &bytes, limits.max_message_size).map_err(|source| {
                RpcError::Decode {
                    peer: peer_id,
                    source,
                }
            })?;
        Ok((version, response))
    };
    tokio::time::timeout(limits.timeout, work)
        .await
        .map_err(|_| RpcError::Timeout {
            peer: peer_id,
            timeout: limits.timeout,
        })?
}
