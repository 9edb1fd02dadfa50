//! The storage-market libp2p protocols, mounted on a node's [`Host`], as Lotus, Boost and
//! Curio peers speak them.
//!
//! Each protocol carries one CBOR value per direction with no length prefix
//! ([`market_core::rpc`]). Protocols served:
//!
//! | protocol | request → response |
//! |---|---|
//! | `/fil/storage/ask/1.1.0`, `1.0.1` | [`AskRequest`] → [`AskResponse`] (map / tuple) |
//! | `/fil/storage/mk/1.2.1`, `1.2.0` | [`DealParams`] → [`DealResponse`] |
//! | `/fil/storage/mk/1.1.1` | [`Proposal`] → [`SignedResponse`] |
//! | `/fil/storage/status/1.2.0` | [`DealStatusRequestV12`] → [`DealStatusResponseV12`] |
//! | `/fil/storage/status/1.1.0` | [`DealStatusRequest`] → [`DealStatusResponse`] |
//!
//! `/fil/storage/mk/1.0.1` and `/fil/storage/status/1.0.1` are not served: go-fil-markets
//! dropped them in v1.20 (Lotus 1.13, 2021) and no maintained client offers them; a Lotus
//! client of that age cannot sign deals valid on the current network either.
//!
//! A request that cannot be decoded gets the protocol's refusal where it has one (a
//! rejected [`DealResponse`], a [`DealStatusResponseV12`] error); the other protocols log a
//! warning and close the stream.

use std::time::Duration;

use libp2p::{Multiaddr, PeerId, StreamProtocol, identity};
pub use market_core::host::{Host, HostConfig, HostError, PeerAddr};
pub use market_core::rpc::RpcError as NetworkError;
use market_core::rpc::{self, Codec, RpcLimits, Service};

use crate::cbor::{self, DecodeError};
use crate::message::*;
use crate::protocol::Protocol;
use crate::provider::Provider;

/// Limits at the network edge.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NetworkLimits {
    /// Largest message accepted in either direction. A 1.2.1 proposal with a 256-byte label
    /// and a URL with headers is under 4 KiB; 256 KiB leaves room for long header sets while
    /// bounding what a peer can make us buffer.
    pub max_message_size: usize,
    /// Time allowed for a whole request/response exchange. Boost's provider allows 10 s per
    /// read and write; its client waits 60 s for a response (validation may query the chain).
    pub request_timeout: Duration,
    /// Inbound exchanges handled at once across peers, per protocol family (ask, deal,
    /// status); further streams wait for a slot.
    pub max_concurrent_streams: usize,
    /// How long an idle connection stays open.
    pub idle_connection_timeout: Duration,
}

impl Default for NetworkLimits {
    fn default() -> Self {
        Self {
            max_message_size: 256 * 1024,
            request_timeout: Duration::from_secs(60),
            max_concurrent_streams: 100,
            idle_connection_timeout: Duration::from_secs(60),
        }
    }
}

impl NetworkLimits {
    /// Refuses messages over `bytes`.
    pub fn with_max_message_size(mut self, bytes: usize) -> Self {
        self.max_message_size = bytes;
        self
    }

    /// Gives up on an exchange after `timeout`.
    pub fn with_request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Handles at most `n` inbound exchanges at once.
    pub fn with_max_concurrent_streams(mut self, n: usize) -> Self {
        self.max_concurrent_streams = n;
        self
    }

    /// The host settings these limits imply.
    pub fn host_config(&self) -> HostConfig {
        HostConfig::default().with_idle_connection_timeout(self.idle_connection_timeout)
    }

    fn rpc(&self) -> RpcLimits {
        RpcLimits::default()
            .with_max_message_size(self.max_message_size)
            .with_timeout(self.request_timeout)
            .with_max_concurrent(self.max_concurrent_streams)
    }
}

/// Re-sends of a proposal whose stream broke before the answer.
const PROPOSE_RETRIES: u32 = 3;

/// `/fil/storage/mk/1.1.1`.
#[derive(Debug)]
pub struct DealV111Codec;

impl Codec for DealV111Codec {
    type Protocol = Protocol;
    type Request = Proposal;
    type Response = SignedResponse;
    fn protocol_id(version: Protocol) -> StreamProtocol {
        version.stream_protocol()
    }
}

/// `/fil/storage/status/1.2.0`.
#[derive(Debug)]
pub struct StatusCodec;

impl Codec for StatusCodec {
    type Protocol = Protocol;
    type Request = DealStatusRequestV12;
    type Response = DealStatusResponseV12;
    fn protocol_id(version: Protocol) -> StreamProtocol {
        version.stream_protocol()
    }
}

/// `/fil/storage/status/1.1.0`.
#[derive(Debug)]
pub struct StatusV110Codec;

impl Codec for StatusV110Codec {
    type Protocol = Protocol;
    type Request = DealStatusRequest;
    type Response = DealStatusResponse;
    fn protocol_id(version: Protocol) -> StreamProtocol {
        version.stream_protocol()
    }
}

/// `/fil/storage/ask/1.1.0` (maps) and `1.0.1` (tuples).
#[derive(Debug)]
pub struct AskCodec;

impl Codec for AskCodec {
    type Protocol = Protocol;
    type Request = AskRequest;
    type Response = AskResponse;
    fn protocol_id(version: Protocol) -> StreamProtocol {
        version.stream_protocol()
    }
    fn encode_request(version: Protocol, request: &AskRequest) -> Vec<u8> {
        encode_ask_request(request, version == Protocol::AskV101)
    }
    fn decode_request(
        version: Protocol,
        bytes: &[u8],
        limit: usize,
    ) -> Result<AskRequest, DecodeError> {
        decode_ask_request(bytes, version == Protocol::AskV101, limit)
    }
    fn encode_response(version: Protocol, response: &AskResponse) -> Vec<u8> {
        encode_ask_response(response, version == Protocol::AskV101)
    }
    fn decode_response(
        version: Protocol,
        bytes: &[u8],
        limit: usize,
    ) -> Result<AskResponse, DecodeError> {
        decode_ask_response(bytes, version == Protocol::AskV101, limit)
    }
}

/// `/fil/storage/mk/1.2.1` and `1.2.0`; 1.2.0 leaves out the two fields 1.2.1 added.
#[derive(Debug)]
pub struct DealCodec;

impl Codec for DealCodec {
    type Protocol = Protocol;
    type Request = DealParams;
    type Response = DealResponse;
    fn protocol_id(version: Protocol) -> StreamProtocol {
        version.stream_protocol()
    }
    fn encode_request(version: Protocol, request: &DealParams) -> Vec<u8> {
        if version == Protocol::DealV120 {
            request.to_cbor_v120()
        } else {
            cbor::to_vec(request)
        }
    }
    fn decode_request(_: Protocol, bytes: &[u8], limit: usize) -> Result<DealParams, DecodeError> {
        cbor::from_slice(bytes, limit)
    }
    fn encode_response(_: Protocol, response: &DealResponse) -> Vec<u8> {
        cbor::to_vec(response)
    }
    fn decode_response(
        _: Protocol,
        bytes: &[u8],
        limit: usize,
    ) -> Result<DealResponse, DecodeError> {
        cbor::from_slice(bytes, limit)
    }
}

/// Decodes `data` as every message a peer can send this crate, dropping the results. It is
/// the fuzz target's body (`fuzz/`), and a stable proptest runs it too; none may panic.
pub fn decode_any(data: &[u8], limit: usize) {
    use crate::deal::{ClientDealProposal, PublishStorageDealsReturn};
    let _ = cbor::item_len(data);
    let _ = cbor::from_slice::<AskRequest>(data, limit);
    let _ = cbor::from_slice::<AskResponse>(data, limit);
    let _ = cbor::from_slice::<Proposal>(data, limit);
    let _ = cbor::from_slice::<SignedResponse>(data, limit);
    let _ = cbor::from_slice::<DealParams>(data, limit);
    let _ = cbor::from_slice::<DealResponse>(data, limit);
    let _ = cbor::from_slice::<DealStatusRequest>(data, limit);
    let _ = cbor::from_slice::<DealStatusResponse>(data, limit);
    let _ = cbor::from_slice::<DealStatusRequestV12>(data, limit);
    let _ = cbor::from_slice::<DealStatusResponseV12>(data, limit);
    let _ = cbor::from_slice::<ClientDealProposal>(data, limit);
    let _ = cbor::from_slice::<PublishStorageDealsReturn>(data, limit);
    // The legacy tuple forms of /fil/storage/ask/1.0.1.
    let _ = AskCodec::decode_request(Protocol::AskV101, data, limit);
    let _ = AskCodec::decode_response(Protocol::AskV101, data, limit);
}

// ------------------------------------------------------------------------------ provider

/// Serves every storage protocol for `provider` on `host`. Dropping the service stops
/// serving.
pub fn serve(
    host: &Host,
    provider: Provider,
    limits: &NetworkLimits,
) -> Result<Service, HostError> {
    let l = limits.rpc();
    let p = provider.clone();
    let ask = rpc::serve::<AskCodec, _, _>(
        host,
        &[Protocol::AskV110, Protocol::AskV101],
        l.clone(),
        move |_, version, req| {
            let p = p.clone();
            // 1.0.1 gets the tuple form, signed over the tuple bytes.
            async move { Some(p.handle_ask(req.ok()?, version == Protocol::AskV101).await) }
        },
    )?;
    let p = provider.clone();
    let deal = rpc::serve::<DealCodec, _, _>(
        host,
        &[Protocol::DealV121, Protocol::DealV120],
        l.clone(),
        move |_, version, req| {
            let p = p.clone();
            async move {
                Some(match req {
                    Ok(params) => p.propose(params, version).await,
                    Err(e) => DealResponse {
                        accepted: false,
                        message: format!("malformed deal proposal: {e}"),
                    },
                })
            }
        },
    )?;
    let p = provider.clone();
    let deal11 = rpc::serve::<DealV111Codec, _, _>(
        host,
        &[Protocol::DealV111],
        l.clone(),
        move |_, version, req| {
            let p = p.clone();
            async move { Some(p.propose_v11(req.ok()?, version).await) }
        },
    )?;
    let p = provider.clone();
    let status = rpc::serve::<StatusCodec, _, _>(
        host,
        &[Protocol::StatusV120],
        l.clone(),
        move |_, _, req| {
            let p = p.clone();
            async move {
                Some(match req {
                    Ok(req) => p.status_v12(req).await,
                    Err(e) => DealStatusResponseV12 {
                        deal_uuid: Default::default(),
                        error: format!("malformed status request: {e}"),
                        is_offline: false,
                        deal_status: None,
                        transfer_size: 0,
                        n_bytes_received: 0,
                    },
                })
            }
        },
    )?;
    let p = provider;
    let status11 =
        rpc::serve::<StatusV110Codec, _, _>(host, &[Protocol::StatusV110], l, move |_, _, req| {
            let p = p.clone();
            async move { Some(p.status_v11(req.ok()?).await) }
        })?;
    Ok(Service::merge([ask, deal, deal11, status, status11]))
}

/// A provider endpoint on a host of its own: [`serve`] on a fresh [`Host`]. A node that
/// serves more (retrieval, transfers) starts its [`Host`] itself and mounts each part.
pub struct ProviderNode {
    host: Host,
    _service: Service,
}

impl ProviderNode {
    /// Serves `provider` on `listen` (for example `/ip4/127.0.0.1/tcp/0`). Returns once every
    /// listener has an address.
    pub async fn start(
        provider: Provider,
        keypair: identity::Keypair,
        listen: &[Multiaddr],
        limits: NetworkLimits,
    ) -> Result<Self, HostError> {
        let host = Host::start(
            keypair,
            limits.host_config().with_listen(listen.iter().cloned()),
        )
        .await?;
        Self::on(host, provider, &limits)
    }

    /// Serves `provider` on a running `host` (which may carry other protocols too).
    pub fn on(host: Host, provider: Provider, limits: &NetworkLimits) -> Result<Self, HostError> {
        let service = serve(&host, provider, limits)?;
        Ok(Self {
            host,
            _service: service,
        })
    }

    /// The host, for mounting further protocols under the same peer id.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.host.peer_id()
    }

    /// The addresses it listens on.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        self.host.listen_addrs()
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.host.stop();
    }
}

// ------------------------------------------------------------------------------ client

/// The client side of the storage protocols. Cheap to clone.
#[derive(Clone, Debug)]
pub struct MarketNetwork {
    host: Host,
    limits: RpcLimits,
}

impl MarketNetwork {
    /// Speaks the storage protocols from `host`.
    pub fn new(host: Host, limits: &NetworkLimits) -> Self {
        Self {
            host,
            limits: limits.rpc(),
        }
    }

    /// Starts a dial-only client host with `keypair`.
    pub fn start(keypair: identity::Keypair, limits: NetworkLimits) -> Result<Self, HostError> {
        let host = Host::dialer(keypair, limits.host_config())?;
        Ok(Self::new(host, &limits))
    }

    /// The host requests go out from.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// This endpoint's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.host.peer_id()
    }

    /// Connects to `peer` unless already connected.
    pub async fn connect(&self, peer: &PeerAddr) -> Result<(), NetworkError> {
        Ok(self.host.connect(peer).await?)
    }

    /// Queries a miner's ask (`/fil/storage/ask/1.1.0`).
    pub async fn ask(&self, peer: &PeerAddr, req: AskRequest) -> Result<AskResponse, NetworkError> {
        let (_, r) =
            rpc::request::<AskCodec>(&self.host, peer, &[Protocol::AskV110], &self.limits, |_| {
                req
            })
            .await?;
        Ok(r)
    }

    /// Queries a miner's ask on the legacy tuple protocol (`/fil/storage/ask/1.0.1`); the
    /// signature then covers the tuple encoding ([`StorageAsk::to_cbor_v0`]).
    pub async fn ask_legacy(
        &self,
        peer: &PeerAddr,
        req: AskRequest,
    ) -> Result<AskResponse, NetworkError> {
        let (_, r) =
            rpc::request::<AskCodec>(&self.host, peer, &[Protocol::AskV101], &self.limits, |_| {
                req
            })
            .await?;
        Ok(r)
    }

    /// Proposes a Boost deal on `/fil/storage/mk/1.2.1`, falling back to `1.2.0`; returns
    /// the version the provider took it on.
    pub async fn propose(
        &self,
        peer: &PeerAddr,
        params: DealParams,
    ) -> Result<(Protocol, DealResponse), NetworkError> {
        // A stream that breaks before the answer is tried again: providers built on
        // libp2p-stream (and Go providers under load) reset inbound streams that arrive in a
        // burst, and re-sending the same signed deal is safe (ours accepts an identical
        // re-send; Boost answers that it already has it).
        let mut attempt = 0;
        loop {
            let result = rpc::request::<DealCodec>(
                &self.host,
                peer,
                &[Protocol::DealV121, Protocol::DealV120],
                &self.limits,
                |_| params.clone(),
            )
            .await;
            match result {
                // A dropped stream shows as a broken write or as an answer that ends
                // before its first complete item.
                Err(
                    NetworkError::Io { .. }
                    | NetworkError::Decode {
                        source: DecodeError::Truncated,
                        ..
                    },
                ) if attempt < PROPOSE_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(20 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// Proposes a go-fil-markets deal (`/fil/storage/mk/1.1.1`).
    pub async fn propose_v11(
        &self,
        peer: &PeerAddr,
        proposal: Proposal,
    ) -> Result<SignedResponse, NetworkError> {
        let (_, r) = rpc::request::<DealV111Codec>(
            &self.host,
            peer,
            &[Protocol::DealV111],
            &self.limits,
            |_| proposal,
        )
        .await?;
        Ok(r)
    }

    /// Asks a Boost deal's status (`/fil/storage/status/1.2.0`).
    pub async fn status(
        &self,
        peer: &PeerAddr,
        req: DealStatusRequestV12,
    ) -> Result<DealStatusResponseV12, NetworkError> {
        let (_, r) = rpc::request::<StatusCodec>(
            &self.host,
            peer,
            &[Protocol::StatusV120],
            &self.limits,
            |_| req,
        )
        .await?;
        Ok(r)
    }

    /// Asks a go-fil-markets deal's status (`/fil/storage/status/1.1.0`).
    pub async fn status_v11(
        &self,
        peer: &PeerAddr,
        req: DealStatusRequest,
    ) -> Result<DealStatusResponse, NetworkError> {
        let (_, r) = rpc::request::<StatusV110Codec>(
            &self.host,
            peer,
            &[Protocol::StatusV110],
            &self.limits,
            |_| req,
        )
        .await?;
        Ok(r)
    }
}

/// Whether `e` means the peer speaks none of the versions asked for.
pub fn is_unsupported(e: &NetworkError) -> bool {
    matches!(e, NetworkError::Host(HostError::UnsupportedProtocol { .. }))
}
