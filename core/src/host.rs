//! One libp2p host per node: one identity, one swarm (TCP, noise, yamux, identify, ping,
//! connection limits and a handshake timeout), on which every protocol mounts its stream
//! handlers.
//!
//! The storage deal protocols, the retrieval query and the HTTP-over-libp2p transfers all
//! run on the same [`Host`], so a provider answers everything under one peer id. Protocols
//! take raw streams ([`Host::accept`], [`Host::open`]); those that exchange one CBOR item
//! each way use [`crate::rpc`] on top.

mod streams;

pub use streams::{IncomingStreams, OpenError};

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, Stream, StreamProtocol, identify, identity, noise, ping, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};

/// Where to reach a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddr {
    /// Its peer id.
    pub peer_id: PeerId,
    /// Its addresses (may be empty when already connected).
    pub addrs: Vec<Multiaddr>,
}

impl PeerAddr {
    /// `peer_id` at `addrs`.
    pub fn new(peer_id: PeerId, addrs: Vec<Multiaddr>) -> Self {
        Self { peer_id, addrs }
    }
}

/// Host settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostConfig {
    /// Addresses to listen on; empty for a dial-only host (a client).
    pub listen: Vec<Multiaddr>,
    /// How long an idle connection stays open.
    pub idle_connection_timeout: Duration,
    /// The identify agent version.
    pub agent_version: String,
    /// Inbound streams queued per protocol before its handler takes them; past that a new
    /// stream is reset (with a warning).
    pub inbound_queue: usize,
    /// Time a connection has to finish its handshake (TCP to noise to yamux); a peer that
    /// connects and stalls is dropped after it.
    pub handshake_timeout: Duration,
    /// Inbound connections still in their handshake at once; past that new ones are closed
    /// at once. High, so that a slowloris flood does not lock out real peers before the
    /// handshake timeout frees its slots, but bounded.
    pub max_pending_incoming: u32,
    /// Established inbound connections at once.
    pub max_established_incoming: u32,
    /// Established connections with one peer (a peer id cannot take every slot).
    pub max_established_per_peer: u32,
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            listen: Vec::new(),
            idle_connection_timeout: Duration::from_secs(60),
            agent_version: concat!("fil-market-rs/", env!("CARGO_PKG_VERSION")).to_string(),
            inbound_queue: 1024,
            handshake_timeout: Duration::from_secs(10),
            max_pending_incoming: 2048,
            max_established_incoming: 4096,
            max_established_per_peer: 16,
        }
    }
}

impl HostConfig {
    /// Listens on `addrs`.
    pub fn with_listen(mut self, addrs: impl IntoIterator<Item = Multiaddr>) -> Self {
        self.listen = addrs.into_iter().collect();
        self
    }

    /// Closes connections idle for `timeout`.
    pub fn with_idle_connection_timeout(mut self, timeout: Duration) -> Self {
        self.idle_connection_timeout = timeout;
        self
    }
}

/// Host errors.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// Building the transport failed.
    #[error("cannot build the libp2p transport")]
    Transport(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A listen address was refused.
    #[error("cannot listen on {addr}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The peer could not be reached.
    #[error("cannot reach peer {peer}")]
    Dial {
        /// The peer.
        peer: PeerId,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The peer speaks none of the protocols offered.
    #[error("peer {peer} does not support {protocols}")]
    UnsupportedProtocol {
        /// The peer.
        peer: PeerId,
        /// The protocols tried, comma-separated.
        protocols: String,
    },
    /// Opening a stream failed after the connection was up.
    #[error("cannot open a stream to {peer}")]
    Stream {
        /// The peer.
        peer: PeerId,
        /// Why.
        #[source]
        source: OpenError,
    },
    /// Another handler already serves this protocol on this host.
    #[error("{0} is already served on this host")]
    AlreadyServed(StreamProtocol),
    /// The host stopped.
    #[error("the libp2p host stopped")]
    Stopped,
}

#[derive(NetworkBehaviour)]
#[behaviour(prelude = "libp2p::swarm::derive_prelude")]
struct Behaviour {
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    streams: streams::Behaviour,
}

type ConnectReply = oneshot::Sender<Result<(), HostError>>;

enum Command {
    Connect(PeerAddr, ConnectReply),
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A running libp2p host. Cheap to clone; the swarm stops with [`Host::stop`] or when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Host {
    peer_id: PeerId,
    listen_addrs: Arc<[Multiaddr]>,
    /// Peers with at least one connection, kept by the swarm task, so that a request to a
    /// connected peer needs no round trip to it.
    connected: Arc<std::sync::RwLock<HashSet<PeerId>>>,
    streams: Arc<streams::Shared>,
    commands: mpsc::Sender<Command>,
    task: Arc<AbortOnDrop>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("peer_id", &self.peer_id)
            .field("listen_addrs", &self.listen_addrs)
            .finish_non_exhaustive()
    }
}

fn boxed(
    e: impl std::error::Error + Send + Sync + 'static,
) -> Box<dyn std::error::Error + Send + Sync> {
    Box::new(e)
}

fn build(
    keypair: identity::Keypair,
    config: &HostConfig,
) -> Result<libp2p::Swarm<Behaviour>, HostError> {
    let agent = config.agent_version.clone();
    Ok(libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| HostError::Transport(boxed(e)))?
        .with_dns()
        .map_err(|e| HostError::Transport(boxed(e)))?
        .with_behaviour(|key| Behaviour {
            limits: connection_limits::Behaviour::new(
                ConnectionLimits::default()
                    .with_max_pending_incoming(Some(config.max_pending_incoming))
                    .with_max_established_incoming(Some(config.max_established_incoming))
                    .with_max_established_per_peer(Some(config.max_established_per_peer)),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new("ipfs/0.1.0".into(), key.public()).with_agent_version(agent),
            ),
            ping: ping::Behaviour::default(),
            streams: streams::Behaviour::new(config.inbound_queue),
        })
        .map_err(|e| HostError::Transport(e.to_string().into()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_connection_timeout))
        .with_connection_timeout(config.handshake_timeout)
        .build())
}

impl Host {
    /// Starts a host with `keypair`. Returns once every listener has an address.
    pub async fn start(keypair: identity::Keypair, config: HostConfig) -> Result<Self, HostError> {
        let mut swarm = build(keypair, &config)?;
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| HostError::Listen {
                    addr: addr.clone(),
                    source: boxed(e),
                })?;
        }
        let mut listen_addrs = Vec::new();
        while listen_addrs.len() < config.listen.len() {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => listen_addrs.push(address),
                SwarmEvent::ListenerError { error, .. } => {
                    return Err(HostError::Listen {
                        addr: config.listen[listen_addrs.len()].clone(),
                        source: boxed(error),
                    });
                }
                _ => {}
            }
        }
        Ok(Self::spawn(swarm, listen_addrs))
    }

    /// Starts a dial-only host (a client); `config.listen` is ignored. Needs a Tokio
    /// runtime.
    pub fn dialer(keypair: identity::Keypair, config: HostConfig) -> Result<Self, HostError> {
        Ok(Self::spawn(build(keypair, &config)?, Vec::new()))
    }

    fn spawn(swarm: libp2p::Swarm<Behaviour>, listen_addrs: Vec<Multiaddr>) -> Self {
        let peer_id = *swarm.local_peer_id();
        let streams = swarm.behaviour().streams.shared();
        let (commands, rx) = mpsc::channel(64);
        let connected = Arc::new(std::sync::RwLock::new(HashSet::new()));
        let task = tokio::spawn(run(swarm, rx, connected.clone()));
        Self {
            peer_id,
            listen_addrs: listen_addrs.into(),
            connected,
            streams,
            commands,
            task: Arc::new(AbortOnDrop(task)),
        }
    }

    /// This host's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses it listens on.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen_addrs
    }

    /// Where other peers reach this host.
    pub fn addr(&self) -> PeerAddr {
        PeerAddr::new(self.peer_id, self.listen_addrs.to_vec())
    }

    /// Connects to `peer` unless already connected.
    pub async fn connect(&self, peer: &PeerAddr) -> Result<(), HostError> {
        if self
            .connected
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&peer.peer_id)
        {
            return Ok(());
        }
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Connect(peer.clone(), tx))
            .await
            .map_err(|_| HostError::Stopped)?;
        rx.await.map_err(|_| HostError::Stopped)?
    }

    /// Connects to `peer` and opens a stream on `protocol`.
    pub async fn open(
        &self,
        peer: &PeerAddr,
        protocol: StreamProtocol,
    ) -> Result<Stream, HostError> {
        self.open_any(peer, std::slice::from_ref(&protocol))
            .await
            .map(|(_, s)| s)
    }

    /// Connects to `peer` and opens a stream on the first of `protocols` it supports, all
    /// offered in one negotiation.
    pub async fn open_any(
        &self,
        peer: &PeerAddr,
        protocols: &[StreamProtocol],
    ) -> Result<(StreamProtocol, Stream), HostError> {
        let offered: Arc<[StreamProtocol]> = protocols.into();
        let mut reconnected = false;
        loop {
            self.connect(peer).await?;
            match self.streams.open(peer.peer_id, offered.clone()).await {
                Ok(open) => return Ok(open),
                // The connection closed since it was found up: dial again, once.
                Err(OpenError::NotConnected) if !reconnected => {
                    reconnected = true;
                    self.forget(&peer.peer_id);
                }
                Err(OpenError::UnsupportedProtocol) => {
                    return Err(HostError::UnsupportedProtocol {
                        peer: peer.peer_id,
                        protocols: protocols
                            .iter()
                            .map(|p| p.as_ref())
                            .collect::<Vec<_>>()
                            .join(", "),
                    });
                }
                Err(source) => {
                    return Err(HostError::Stream {
                        peer: peer.peer_id,
                        source,
                    });
                }
            }
        }
    }

    /// Drops `peer` from the connected set, so the next [`connect`](Self::connect) asks the
    /// swarm (which dials unless a connection is up).
    fn forget(&self, peer: &PeerId) {
        self.connected
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(peer);
    }

    /// Takes the inbound streams of `protocol`. One handler per protocol and host; dropping
    /// the returned streams stops serving it. Up to [`HostConfig::inbound_queue`] streams
    /// wait for the handler; a handler should still spawn per stream and do nothing else.
    pub fn accept(&self, protocol: StreamProtocol) -> Result<IncomingStreams, HostError> {
        self.streams
            .accept(protocol.clone())
            .ok_or(HostError::AlreadyServed(protocol))
    }

    /// Stops the swarm; open streams break.
    pub fn stop(&self) {
        self.task.0.abort();
    }
}

async fn run(
    mut swarm: libp2p::Swarm<Behaviour>,
    mut commands: mpsc::Receiver<Command>,
    connected: Arc<std::sync::RwLock<HashSet<PeerId>>>,
) {
    let set = |f: &dyn Fn(&mut HashSet<PeerId>)| {
        f(&mut connected.write().unwrap_or_else(|p| p.into_inner()))
    };
    let mut connecting: HashMap<PeerId, Vec<ConnectReply>> = HashMap::new();
    loop {
        tokio::select! {
            cmd = commands.recv() => {
                let Some(Command::Connect(peer, reply)) = cmd else { return };
                if swarm.is_connected(&peer.peer_id) {
                    let _ = reply.send(Ok(()));
                    continue;
                }
                // Concurrent requests for a peer being dialled wait for that one dial (a
                // second dial would be refused by the swarm's peer condition).
                if let Some(waiting) = connecting.get_mut(&peer.peer_id) {
                    waiting.push(reply);
                    continue;
                }
                let opts = DialOpts::peer_id(peer.peer_id).addresses(peer.addrs).build();
                match swarm.dial(opts) {
                    Ok(()) => connecting.entry(peer.peer_id).or_default().push(reply),
                    Err(e) => {
                        let _ = reply.send(Err(HostError::Dial { peer: peer.peer_id, source: boxed(e) }));
                    }
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    set(&|c| { c.insert(peer_id); });
                    for reply in connecting.remove(&peer_id).unwrap_or_default() {
                        let _ = reply.send(Ok(()));
                    }
                }
                SwarmEvent::ConnectionClosed { peer_id, num_established: 0, .. } => {
                    set(&|c| { c.remove(&peer_id); });
                }
                SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                    let message = error.to_string();
                    for reply in connecting.remove(&peer).unwrap_or_default() {
                        let _ = reply.send(Err(HostError::Dial { peer, source: message.clone().into() }));
                    }
                }
                _ => {}
            }
        }
    }
}
