//! `/fil/retrieval/qry/1.0.0` and `/fil/retrieval/transports/1.0.0` on the node's libp2p
//! [`Host`].
//!
//! Framing is the market's: one CBOR value per direction, no length prefix, read as one
//! bounded item ([`market_core::rpc`]); the responder closes. The transports client writes
//! nothing and reads the answer. Timeouts follow the reference implementations (query 5 s
//! on the provider side, transports 30 s on the client side). A query that does not decode
//! is answered with status `QueryResponseError` and the reason, not a reset.

use std::time::Duration;

use libp2p::StreamProtocol;
use market_core::cbor::{self, DecodeError};
use market_core::host::{Host, HostError, PeerAddr};
use market_core::rpc::{self, Codec, RpcLimits, Service};

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

/// The retrieval protocols (one version each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// `/fil/retrieval/qry/1.0.0`.
    Query,
    /// `/fil/retrieval/transports/1.0.0`.
    Transports,
}

/// `/fil/retrieval/qry/1.0.0`.
#[derive(Debug)]
pub struct QueryCodec;

impl Codec for QueryCodec {
    type Protocol = Protocol;
    type Request = Query;
    type Response = QueryResponse;
    fn protocol_id(_: Protocol) -> StreamProtocol {
        QUERY_PROTOCOL
    }
    fn encode_request(_: Protocol, request: &Query) -> Vec<u8> {
        cbor::to_vec(request)
    }
    fn decode_request(_: Protocol, bytes: &[u8], limit: usize) -> Result<Query, DecodeError> {
        cbor::from_slice(bytes, limit)
    }
    fn encode_response(_: Protocol, response: &QueryResponse) -> Vec<u8> {
        cbor::to_vec(response)
    }
    fn decode_response(
        _: Protocol,
        bytes: &[u8],
        limit: usize,
    ) -> Result<QueryResponse, DecodeError> {
        cbor::from_slice(bytes, limit)
    }
}

/// `/fil/retrieval/transports/1.0.0`: no request, one answer.
#[derive(Debug)]
pub struct TransportsCodec;

impl Codec for TransportsCodec {
    type Protocol = Protocol;
    type Request = ();
    type Response = TransportsResponse;
    fn protocol_id(_: Protocol) -> StreamProtocol {
        TRANSPORTS_PROTOCOL
    }
    fn has_request(_: Protocol) -> bool {
        false
    }
    fn decode_request(_: Protocol, _: &[u8], _: usize) -> Result<(), DecodeError> {
        Ok(())
    }
}

fn server_limits() -> RpcLimits {
    RpcLimits::default()
        .with_max_message_size(MAX_MESSAGE)
        .with_timeout(SERVE_TIMEOUT)
        .with_max_concurrent(MAX_CONCURRENT)
}

fn client_limits() -> RpcLimits {
    RpcLimits::default()
        .with_max_message_size(MAX_MESSAGE)
        .with_timeout(CLIENT_TIMEOUT)
}

/// Serves both protocols for `provider` on `host` (the storage provider's, so that one
/// peer id answers both markets). Dropping the service stops serving.
pub fn serve(host: &Host, provider: RetrievalProvider) -> Result<Service, HostError> {
    let p = provider.clone();
    let queries = rpc::serve::<QueryCodec, _, _>(
        host,
        &[Protocol::Query],
        server_limits(),
        move |_, _, query| {
            let p = p.clone();
            async move {
                Some(match query {
                    Ok(q) => p.query(&q).await,
                    Err(e) => p.refuse(format!("malformed query: {e}")),
                })
            }
        },
    )?;
    let transports = rpc::serve::<TransportsCodec, _, _>(
        host,
        &[Protocol::Transports],
        server_limits(),
        move |_, _, _| {
            let answer = provider.transports();
            async move { Some(answer) }
        },
    )?;
    Ok(Service::merge([queries, transports]))
}

/// Asks `peer` about a payload.
pub async fn query(
    host: &Host,
    peer: &PeerAddr,
    query: &Query,
) -> Result<QueryResponse, RetrievalError> {
    let (_, r) =
        rpc::request::<QueryCodec>(host, peer, &[Protocol::Query], &client_limits(), |_| {
            query.clone()
        })
        .await?;
    Ok(r)
}

/// Asks `peer` which retrieval transports it offers.
pub async fn transports(
    host: &Host,
    peer: &PeerAddr,
) -> Result<TransportsResponse, RetrievalError> {
    let (_, r) = rpc::request::<TransportsCodec>(
        host,
        peer,
        &[Protocol::Transports],
        &client_limits(),
        |_| (),
    )
    .await?;
    Ok(r)
}
