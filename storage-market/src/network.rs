//! The storage-market libp2p protocols over TCP, noise and yamux, as Lotus, Boost and Curio
//! peers use them.
//!
//! Each protocol carries one CBOR value per direction with no length prefix; [`MarketCodec`]
//! reads exactly one item (bounded by [`NetworkLimits::max_message_size`]) and never waits
//! for the peer to half-close. Protocols served:
//!
//! | protocol | request → response |
//! |---|---|
//! | `/fil/storage/ask/1.1.0`, `1.0.1` | [`AskRequest`] → [`AskResponse`] (map / tuple) |
//! | `/fil/storage/mk/1.2.1`, `1.2.0` | [`DealParams`] → [`DealResponse`] |
//! | `/fil/storage/mk/1.1.1` | [`Proposal`] → [`SignedResponse`] |
//! | `/fil/storage/status/1.2.0` | [`DealStatusRequestV12`] → [`DealStatusResponseV12`] |
//! | `/fil/storage/status/1.1.0` | [`DealStatusRequest`] → [`DealStatusResponse`] |
//!
//! The swarm lives in one task; [`ProviderNode`] and [`MarketNetwork`] talk to it over bounded
//! channels, and every request is correlated by its libp2p request id.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::request_response::{self as rr, OutboundRequestId, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, PeerId, StreamProtocol, identify, identity, noise, ping, tcp, yamux};
use tokio::sync::{mpsc, oneshot};

use crate::cbor::{self, DecodeError};
use crate::message::*;
use crate::provider::Provider;

/// `/fil/storage/ask/1.1.0`.
pub const ASK_V110: &str = "/fil/storage/ask/1.1.0";
/// `/fil/storage/ask/1.0.1` (tuple encoding).
pub const ASK_V101: &str = "/fil/storage/ask/1.0.1";
/// `/fil/storage/mk/1.2.1` (Boost).
pub const DEAL_V121: &str = "/fil/storage/mk/1.2.1";
/// `/fil/storage/mk/1.2.0` (Boost).
pub const DEAL_V120: &str = "/fil/storage/mk/1.2.0";
/// `/fil/storage/mk/1.1.1` (go-fil-markets).
pub const DEAL_V111: &str = "/fil/storage/mk/1.1.1";
/// `/fil/storage/status/1.2.0` (Boost).
pub const STATUS_V120: &str = "/fil/storage/status/1.2.0";
/// `/fil/storage/status/1.1.0` (go-fil-markets).
pub const STATUS_V110: &str = "/fil/storage/status/1.1.0";

/// Limits at the network edge.
#[derive(Debug, Clone)]
pub struct NetworkLimits {
    /// Largest message accepted in either direction. A 1.2.1 proposal with a 256-byte label
    /// and a URL with headers is under 4 KiB; 256 KiB leaves room for long header sets while
    /// bounding what a peer can make us buffer.
    pub max_message_size: usize,
    /// Time allowed for a whole request/response exchange. Boost's provider allows 10 s per
    /// read and write; its client waits 60 s for a response (validation may query the chain).
    pub request_timeout: Duration,
    /// Concurrent inbound plus outbound streams per connection and protocol.
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

/// Network errors.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum NetworkError {
    /// The peer does not speak any of the protocols offered.
    #[error("peer does not support {0}")]
    UnsupportedProtocol(String),
    /// Dialing failed.
    #[error("cannot reach peer: {0}")]
    Dial(String),
    /// No response in time. The peer may still have processed the request.
    #[error("request timed out (the provider may still have processed it)")]
    Timeout,
    /// The exchange failed (connection closed, malformed or oversize message).
    #[error("request failed: {0}")]
    Failed(String),
    /// Setting up the transport or listener failed.
    #[error("transport: {0}")]
    Transport(String),
    /// The network task stopped.
    #[error("network task stopped")]
    Stopped,
}

/// A message with per-protocol encodings.
pub trait Wire: Sized + Send + 'static {
    /// Encodes for `protocol`.
    fn encode(&self, protocol: &str) -> Vec<u8>;
    /// Decodes for `protocol`.
    fn decode(bytes: &[u8], protocol: &str, limit: usize) -> Result<Self, DecodeError>;
}

macro_rules! map_wire {
    ($($t:ty),*) => {$(
        impl Wire for $t {
            fn encode(&self, _: &str) -> Vec<u8> {
                cbor::to_vec(self)
            }
            fn decode(bytes: &[u8], _: &str, limit: usize) -> Result<Self, DecodeError> {
                cbor::from_slice(bytes, limit)
            }
        }
    )*};
}

map_wire!(
    DealResponse,
    Proposal,
    SignedResponse,
    DealStatusRequest,
    DealStatusResponse,
    DealStatusRequestV12,
    DealStatusResponseV12
);

impl Wire for DealParams {
    fn encode(&self, protocol: &str) -> Vec<u8> {
        if protocol == DEAL_V120 {
            self.to_cbor_v120()
        } else {
            cbor::to_vec(self)
        }
    }
    fn decode(bytes: &[u8], _: &str, limit: usize) -> Result<Self, DecodeError> {
        cbor::from_slice(bytes, limit)
    }
}

impl Wire for AskRequest {
    fn encode(&self, protocol: &str) -> Vec<u8> {
        encode_ask_request(self, protocol == ASK_V101)
    }
    fn decode(bytes: &[u8], protocol: &str, limit: usize) -> Result<Self, DecodeError> {
        decode_ask_request(bytes, protocol == ASK_V101, limit)
    }
}

impl Wire for AskResponse {
    fn encode(&self, protocol: &str) -> Vec<u8> {
        encode_ask_response(self, protocol == ASK_V101)
    }
    fn decode(bytes: &[u8], protocol: &str, limit: usize) -> Result<Self, DecodeError> {
        decode_ask_response(bytes, protocol == ASK_V101, limit)
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
    let _ = <AskRequest as Wire>::decode(data, ASK_V101, limit);
    let _ = <AskResponse as Wire>::decode(data, ASK_V101, limit);
}

/// A request-response codec reading exactly one bounded CBOR item per direction.
pub struct MarketCodec<Rq, Rs> {
    limit: usize,
    _types: PhantomData<fn() -> (Rq, Rs)>,
}

impl<Rq, Rs> MarketCodec<Rq, Rs> {
    /// A codec refusing messages over `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            _types: PhantomData,
        }
    }
}

impl<Rq, Rs> Clone for MarketCodec<Rq, Rs> {
    fn clone(&self) -> Self {
        Self::new(self.limit)
    }
}

async fn write_all<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    bytes: Vec<u8>,
) -> std::io::Result<()> {
    io.write_all(&bytes).await?;
    io.flush().await
}

impl<Rq: Wire, Rs: Wire> rr::Codec for MarketCodec<Rq, Rs> {
    type Protocol = StreamProtocol;
    type Request = Rq;
    type Response = Rs;

    async fn read_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Rq>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let bytes = cbor::read_item(io, self.limit).await?;
        Rq::decode(&bytes, protocol.as_ref(), self.limit).map_err(cbor::invalid_data)
    }

    async fn read_response<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
    ) -> std::io::Result<Rs>
    where
        T: futures::AsyncRead + Unpin + Send,
    {
        let bytes = cbor::read_item(io, self.limit).await?;
        Rs::decode(&bytes, protocol.as_ref(), self.limit).map_err(cbor::invalid_data)
    }

    async fn write_request<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        req: Rq,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all(io, req.encode(protocol.as_ref())).await
    }

    async fn write_response<T>(
        &mut self,
        protocol: &StreamProtocol,
        io: &mut T,
        res: Rs,
    ) -> std::io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_all(io, res.encode(protocol.as_ref())).await
    }
}

type Rr<Rq, Rs> = rr::Behaviour<MarketCodec<Rq, Rs>>;

/// The combined behaviour of market nodes.
#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
pub(crate) struct MarketBehaviour {
    ask: Rr<AskRequest, AskResponse>,
    ask_legacy: Rr<AskRequest, AskResponse>,
    deal12: Rr<DealParams, DealResponse>,
    deal11: Rr<Proposal, SignedResponse>,
    status12: Rr<DealStatusRequestV12, DealStatusResponseV12>,
    status11: Rr<DealStatusRequest, DealStatusResponse>,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    /// Raw streams for protocols other crates serve on the same host (retrieval).
    streams: libp2p_stream::Behaviour,
}

fn rr_behaviour<Rq: Wire, Rs: Wire>(
    protocols: &[&'static str],
    support: ProtocolSupport,
    limits: &NetworkLimits,
) -> Rr<Rq, Rs> {
    let cfg = rr::Config::default()
        .with_request_timeout(limits.request_timeout)
        .with_max_concurrent_streams(limits.max_concurrent_streams);
    rr::Behaviour::with_codec(
        MarketCodec::new(limits.max_message_size),
        protocols
            .iter()
            .map(|p| (StreamProtocol::new(p), support.clone())),
        cfg,
    )
}

fn build_swarm(
    keypair: identity::Keypair,
    support: ProtocolSupport,
    limits: &NetworkLimits,
) -> Result<libp2p::Swarm<MarketBehaviour>, NetworkError> {
    let t = |e: &dyn std::fmt::Display| NetworkError::Transport(e.to_string());
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| t(&e))?
        .with_dns()
        .map_err(|e| t(&e))?
        .with_behaviour(|key| MarketBehaviour {
            ask: rr_behaviour(&[ASK_V110], support.clone(), limits),
            ask_legacy: rr_behaviour(&[ASK_V101], support.clone(), limits),
            deal12: rr_behaviour(&[DEAL_V121, DEAL_V120], support.clone(), limits),
            deal11: rr_behaviour(&[DEAL_V111], support.clone(), limits),
            status12: rr_behaviour(&[STATUS_V120], support.clone(), limits),
            status11: rr_behaviour(&[STATUS_V110], support.clone(), limits),
            identify: identify::Behaviour::new(identify::Config::new(
                "/fil-market-rs/1.0.0".into(),
                key.public(),
            )),
            ping: ping::Behaviour::default(),
            streams: libp2p_stream::Behaviour::new(),
        })
        .map_err(|e| t(&e))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(limits.idle_connection_timeout))
        .build();
    Ok(swarm)
}

// ------------------------------------------------------------------------------ provider

enum Reply {
    Ask(rr::ResponseChannel<AskResponse>, AskResponse),
    AskLegacy(rr::ResponseChannel<AskResponse>, AskResponse),
    Deal12(rr::ResponseChannel<DealResponse>, DealResponse),
    Deal11(rr::ResponseChannel<SignedResponse>, SignedResponse),
    Status12(
        rr::ResponseChannel<DealStatusResponseV12>,
        DealStatusResponseV12,
    ),
    Status11(rr::ResponseChannel<DealStatusResponse>, DealStatusResponse),
}

/// A running provider endpoint.
pub struct ProviderNode {
    peer_id: PeerId,
    listen_addrs: Vec<Multiaddr>,
    streams: libp2p_stream::Control,
    task: AbortOnDrop,
}

impl ProviderNode {
    /// Serves `provider` on `listen` (for example `/ip4/127.0.0.1/tcp/0`). Returns once every
    /// listener has an address.
    pub async fn start(
        provider: Provider,
        keypair: identity::Keypair,
        listen: &[Multiaddr],
        limits: NetworkLimits,
    ) -> Result<Self, NetworkError> {
        let peer_id = keypair.public().to_peer_id();
        let mut swarm = build_swarm(keypair, ProtocolSupport::Inbound, &limits)?;
        for addr in listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetworkError::Transport(e.to_string()))?;
        }
        let mut listen_addrs = Vec::new();
        while listen_addrs.len() < listen.len() {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                listen_addrs.push(address);
            }
        }
        let streams = swarm.behaviour().streams.new_control();
        let task = tokio::spawn(provider_loop(swarm, provider, limits));
        Ok(Self {
            peer_id,
            listen_addrs,
            streams,
            task: AbortOnDrop(task),
        })
    }

    /// Accepts or opens raw streams on this host, so that other protocols (retrieval
    /// queries, transports) are served under the same peer id and addresses.
    pub fn streams(&self) -> libp2p_stream::Control {
        self.streams.clone()
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses it listens on.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen_addrs
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.task.0.abort();
    }
}

async fn provider_loop(
    mut swarm: libp2p::Swarm<MarketBehaviour>,
    provider: Provider,
    limits: NetworkLimits,
) {
    let (tx, mut rx) = mpsc::channel::<Reply>(256);
    // Bounds the handler tasks running at once across all peers and protocols.
    let permits = Arc::new(tokio::sync::Semaphore::new(
        limits.max_concurrent_streams.max(1),
    ));
    loop {
        tokio::select! {
            Some(reply) = rx.recv() => {
                let b = swarm.behaviour_mut();
                let sent = match reply {
                    Reply::Ask(ch, r) => b.ask.send_response(ch, r).is_ok(),
                    Reply::AskLegacy(ch, r) => b.ask_legacy.send_response(ch, r).is_ok(),
                    Reply::Deal12(ch, r) => b.deal12.send_response(ch, r).is_ok(),
                    Reply::Deal11(ch, r) => b.deal11.send_response(ch, r).is_ok(),
                    Reply::Status12(ch, r) => b.status12.send_response(ch, r).is_ok(),
                    Reply::Status11(ch, r) => b.status11.send_response(ch, r).is_ok(),
                };
                if !sent {
                    tracing::debug!("peer went away before the response was sent");
                }
            }
            event = swarm.select_next_some() => {
                let SwarmEvent::Behaviour(event) = event else { continue };
                let (p, tx, permits) = (provider.clone(), tx.clone(), permits.clone());
                macro_rules! handle {
                    ($ev:expr, $variant:ident, |$req:ident| $body:expr) => {
                        match $ev {
                            rr::Event::Message { message: rr::Message::Request { request: $req, channel, .. }, peer, .. } => {
                                tracing::debug!(%peer, "inbound request");
                                tokio::spawn(async move {
                                    let Ok(_permit) = permits.acquire_owned().await else { return };
                                    let response = $body;
                                    let _ = tx.send(Reply::$variant(channel, response)).await;
                                });
                            }
                            rr::Event::InboundFailure { peer, error, .. } => {
                                tracing::debug!(%peer, %error, "inbound request failed");
                            }
                            _ => {}
                        }
                    };
                }
                match event {
                    MarketBehaviourEvent::Ask(ev) => handle!(ev, Ask, |req| p.handle_ask(req, false).await),
                    // 1.0.1 gets the tuple form, signed over the tuple bytes.
                    MarketBehaviourEvent::AskLegacy(ev) => handle!(ev, AskLegacy, |req| p.handle_ask(req, true).await),
                    MarketBehaviourEvent::Deal12(ev) => handle!(ev, Deal12, |req| p.propose(req, DEAL_V121).await),
                    MarketBehaviourEvent::Deal11(ev) => handle!(ev, Deal11, |req| p.propose_v11(req, DEAL_V111).await),
                    MarketBehaviourEvent::Status12(ev) => handle!(ev, Status12, |req| p.status_v12(req).await),
                    MarketBehaviourEvent::Status11(ev) => handle!(ev, Status11, |req| p.status_v11(req).await),
                    _ => {}
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------ client

enum Command {
    Connect(
        PeerId,
        Vec<Multiaddr>,
        oneshot::Sender<Result<(), NetworkError>>,
    ),
    Ask(
        PeerId,
        Vec<Multiaddr>,
        AskRequest,
        oneshot::Sender<Result<AskResponse, NetworkError>>,
    ),
    AskLegacy(
        PeerId,
        Vec<Multiaddr>,
        AskRequest,
        oneshot::Sender<Result<AskResponse, NetworkError>>,
    ),
    Deal12(
        PeerId,
        Vec<Multiaddr>,
        DealParams,
        oneshot::Sender<Result<DealResponse, NetworkError>>,
    ),
    Deal11(
        PeerId,
        Vec<Multiaddr>,
        Proposal,
        oneshot::Sender<Result<SignedResponse, NetworkError>>,
    ),
    Status12(
        PeerId,
        Vec<Multiaddr>,
        DealStatusRequestV12,
        oneshot::Sender<Result<DealStatusResponseV12, NetworkError>>,
    ),
    Status11(
        PeerId,
        Vec<Multiaddr>,
        DealStatusRequest,
        oneshot::Sender<Result<DealStatusResponse, NetworkError>>,
    ),
}

/// The client side of the market protocols. Cheap to clone.
#[derive(Clone)]
pub struct MarketNetwork {
    tx: mpsc::Sender<Command>,
    peer_id: PeerId,
    streams: libp2p_stream::Control,
    _task: Arc<AbortOnDrop>,
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Where to reach a provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its addresses.
    pub addrs: Vec<Multiaddr>,
}

impl MarketNetwork {
    /// Starts a client endpoint with a fresh or given identity.
    pub fn start(keypair: identity::Keypair, limits: NetworkLimits) -> Result<Self, NetworkError> {
        let peer_id = keypair.public().to_peer_id();
        let swarm = build_swarm(keypair, ProtocolSupport::Outbound, &limits)?;
        let streams = swarm.behaviour().streams.new_control();
        let (tx, rx) = mpsc::channel(64);
        let task = tokio::spawn(client_loop(swarm, rx));
        Ok(Self {
            tx,
            peer_id,
            streams,
            _task: Arc::new(AbortOnDrop(task)),
        })
    }

    /// This endpoint's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Opens raw streams to peers (connect first with [`MarketNetwork::connect`]).
    pub fn streams(&self) -> libp2p_stream::Control {
        self.streams.clone()
    }

    /// Connects to `peer` unless already connected.
    pub async fn connect(&self, peer: &PeerAddr) -> Result<(), NetworkError> {
        self.run(|tx| Command::Connect(peer.peer_id, peer.addrs.clone(), tx))
            .await
    }

    async fn run<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, NetworkError>>) -> Command,
    ) -> Result<T, NetworkError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(make(tx))
            .await
            .map_err(|_| NetworkError::Stopped)?;
        rx.await.map_err(|_| NetworkError::Stopped)?
    }

    /// Queries a miner's ask (`/fil/storage/ask/1.1.0`).
    pub async fn ask(&self, peer: &PeerAddr, req: AskRequest) -> Result<AskResponse, NetworkError> {
        self.run(|tx| Command::Ask(peer.peer_id, peer.addrs.clone(), req, tx))
            .await
    }

    /// Queries a miner's ask on the legacy tuple protocol (`/fil/storage/ask/1.0.1`); the
    /// signature then covers the tuple encoding ([`StorageAsk::to_cbor_v0`]).
    pub async fn ask_legacy(
        &self,
        peer: &PeerAddr,
        req: AskRequest,
    ) -> Result<AskResponse, NetworkError> {
        self.run(|tx| Command::AskLegacy(peer.peer_id, peer.addrs.clone(), req, tx))
            .await
    }

    /// Proposes a Boost deal (`/fil/storage/mk/1.2.1`, falling back to `1.2.0`).
    pub async fn propose(
        &self,
        peer: &PeerAddr,
        params: DealParams,
    ) -> Result<DealResponse, NetworkError> {
        self.run(|tx| Command::Deal12(peer.peer_id, peer.addrs.clone(), params, tx))
            .await
    }

    /// Proposes a go-fil-markets deal (`/fil/storage/mk/1.1.1`).
    pub async fn propose_v11(
        &self,
        peer: &PeerAddr,
        proposal: Proposal,
    ) -> Result<SignedResponse, NetworkError> {
        self.run(|tx| Command::Deal11(peer.peer_id, peer.addrs.clone(), proposal, tx))
            .await
    }

    /// Asks a Boost deal's status (`/fil/storage/status/1.2.0`).
    pub async fn status(
        &self,
        peer: &PeerAddr,
        req: DealStatusRequestV12,
    ) -> Result<DealStatusResponseV12, NetworkError> {
        self.run(|tx| Command::Status12(peer.peer_id, peer.addrs.clone(), req, tx))
            .await
    }

    /// Asks a go-fil-markets deal's status (`/fil/storage/status/1.1.0`).
    pub async fn status_v11(
        &self,
        peer: &PeerAddr,
        req: DealStatusRequest,
    ) -> Result<DealStatusResponse, NetworkError> {
        self.run(|tx| Command::Status11(peer.peer_id, peer.addrs.clone(), req, tx))
            .await
    }
}

type Pending<T> = HashMap<OutboundRequestId, oneshot::Sender<Result<T, NetworkError>>>;

fn outbound_error(e: rr::OutboundFailure, protocol: &str) -> NetworkError {
    match e {
        rr::OutboundFailure::DialFailure => NetworkError::Dial("dial failed".into()),
        rr::OutboundFailure::Timeout => NetworkError::Timeout,
        rr::OutboundFailure::UnsupportedProtocols => {
            NetworkError::UnsupportedProtocol(protocol.into())
        }
        other => NetworkError::Failed(other.to_string()),
    }
}

fn on_client_event<Rq, Rs>(ev: rr::Event<Rq, Rs>, pending: &mut Pending<Rs>, protocol: &str) {
    match ev {
        rr::Event::Message {
            message:
                rr::Message::Response {
                    request_id,
                    response,
                },
            ..
        } => {
            if let Some(tx) = pending.remove(&request_id) {
                let _ = tx.send(Ok(response));
            }
        }
        rr::Event::OutboundFailure {
            request_id, error, ..
        } => {
            if let Some(tx) = pending.remove(&request_id) {
                let _ = tx.send(Err(outbound_error(error, protocol)));
            }
        }
        _ => {}
    }
}

async fn client_loop(mut swarm: libp2p::Swarm<MarketBehaviour>, mut rx: mpsc::Receiver<Command>) {
    let mut ask: Pending<AskResponse> = HashMap::new();
    let mut ask_legacy: Pending<AskResponse> = HashMap::new();
    let mut deal12: Pending<DealResponse> = HashMap::new();
    let mut deal11: Pending<SignedResponse> = HashMap::new();
    let mut status12: Pending<DealStatusResponseV12> = HashMap::new();
    let mut status11: Pending<DealStatusResponse> = HashMap::new();
    let mut connecting: HashMap<PeerId, Vec<oneshot::Sender<Result<(), NetworkError>>>> =
        HashMap::new();
    loop {
        tokio::select! {
            cmd = rx.recv() => {
                let Some(cmd) = cmd else { return };
                let b = swarm.behaviour_mut();
                match cmd {
                    Command::Connect(p, a, tx) => {
                        if swarm.is_connected(&p) {
                            let _ = tx.send(Ok(()));
                        } else {
                            let opts = libp2p::swarm::dial_opts::DialOpts::peer_id(p).addresses(a).build();
                            match swarm.dial(opts) {
                                Ok(()) => connecting.entry(p).or_default().push(tx),
                                Err(e) => { let _ = tx.send(Err(NetworkError::Dial(e.to_string()))); }
                            }
                        }
                    }
                    Command::Ask(p, a, r, tx) => { ask.insert(b.ask.send_request_with_addresses(&p, r, a), tx); }
                    Command::AskLegacy(p, a, r, tx) => { ask_legacy.insert(b.ask_legacy.send_request_with_addresses(&p, r, a), tx); }
                    Command::Deal12(p, a, r, tx) => { deal12.insert(b.deal12.send_request_with_addresses(&p, r, a), tx); }
                    Command::Deal11(p, a, r, tx) => { deal11.insert(b.deal11.send_request_with_addresses(&p, r, a), tx); }
                    Command::Status12(p, a, r, tx) => { status12.insert(b.status12.send_request_with_addresses(&p, r, a), tx); }
                    Command::Status11(p, a, r, tx) => { status11.insert(b.status11.send_request_with_addresses(&p, r, a), tx); }
                }
            }
            event = swarm.select_next_some() => {
                let event = match event {
                    SwarmEvent::Behaviour(event) => event,
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        for tx in connecting.remove(&peer_id).unwrap_or_default() {
                            let _ = tx.send(Ok(()));
                        }
                        continue;
                    }
                    SwarmEvent::OutgoingConnectionError { peer_id: Some(peer_id), error, .. } => {
                        for tx in connecting.remove(&peer_id).unwrap_or_default() {
                            let _ = tx.send(Err(NetworkError::Dial(error.to_string())));
                        }
                        continue;
                    }
                    _ => continue,
                };
                match event {
                    MarketBehaviourEvent::Ask(ev) => on_client_event(ev, &mut ask, ASK_V110),
                    MarketBehaviourEvent::AskLegacy(ev) => on_client_event(ev, &mut ask_legacy, ASK_V101),
                    MarketBehaviourEvent::Deal12(ev) => on_client_event(ev, &mut deal12, DEAL_V121),
                    MarketBehaviourEvent::Deal11(ev) => on_client_event(ev, &mut deal11, DEAL_V111),
                    MarketBehaviourEvent::Status12(ev) => on_client_event(ev, &mut status12, STATUS_V120),
                    MarketBehaviourEvent::Status11(ev) => on_client_event(ev, &mut status11, STATUS_V110),
                    _ => {}
                }
            }
        }
    }
}
