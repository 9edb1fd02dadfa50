//! A small libp2p host for transfers: HTTP/1.1 over streams on
//! `/fil/storage/transfer/1.0.0`, as Boost's `libp2p:///…/p2p/<peer>` URLs expect.
//!
//! A client serves its CAR files on it (see [`crate::CarServer::serve_libp2p`]); a provider
//! dials clients from it. It is its own swarm with its own identity, so it can run next to a
//! market node without touching that node's protocols.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol, Swarm, identity, noise, tcp, yamux};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

use crate::TransferError;

/// The protocol Boost's HTTP-over-libp2p transfers use.
pub const TRANSFER_PROTOCOL: StreamProtocol = StreamProtocol::new("/fil/storage/transfer/1.0.0");

enum Cmd {
    Connect {
        peer: PeerId,
        addr: Multiaddr,
        reply: oneshot::Sender<Result<(), String>>,
    },
}

/// A running transfer host. Cheap to clone; the swarm stops when [`stop`](Self::stop) is
/// called or the last clone is dropped (keep one while serving).
#[derive(Clone)]
pub struct P2pHost {
    peer_id: PeerId,
    listen_addrs: Vec<Multiaddr>,
    control: libp2p_stream::Control,
    cmds: mpsc::Sender<Cmd>,
    task: std::sync::Arc<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for P2pHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("P2pHost")
            .field("peer_id", &self.peer_id)
            .field("listen_addrs", &self.listen_addrs)
            .finish_non_exhaustive()
    }
}

impl P2pHost {
    /// Starts a host with `keypair`, listening on `listen` (may be empty for a dial-only host).
    pub async fn start(
        keypair: identity::Keypair,
        listen: &[Multiaddr],
    ) -> Result<Self, TransferError> {
        let t = |e: &dyn std::fmt::Display| TransferError::Libp2p(e.to_string());
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| t(&e))?
            .with_behaviour(|_| libp2p_stream::Behaviour::new())
            .map_err(|e| t(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();
        let peer_id = *swarm.local_peer_id();
        for addr in listen {
            swarm.listen_on(addr.clone()).map_err(|e| t(&e))?;
        }
        let mut listen_addrs = Vec::new();
        while listen_addrs.len() < listen.len() {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => listen_addrs.push(address),
                SwarmEvent::ListenerError { error, .. } => return Err(t(&error)),
                _ => {}
            }
        }
        let control = swarm.behaviour().new_control();
        let (cmds, rx) = mpsc::channel(64);
        let task = tokio::spawn(run(swarm, rx));
        Ok(Self {
            peer_id,
            listen_addrs,
            control,
            cmds,
            task: std::sync::Arc::new(task),
        })
    }

    /// This host's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The addresses it listens on.
    pub fn listen_addrs(&self) -> &[Multiaddr] {
        &self.listen_addrs
    }

    /// The `libp2p:///…/p2p/<peer>` URL of this host's first listen address.
    pub fn url(&self) -> Option<String> {
        let addr = self.listen_addrs.first()?;
        Some(format!("libp2p://{addr}/p2p/{}", self.peer_id))
    }

    /// Dials `peer` at `addr` (if not connected) and opens a transfer stream to it.
    pub async fn open(
        &self,
        peer: PeerId,
        addr: Multiaddr,
    ) -> Result<Compat<Stream>, TransferError> {
        let (reply, rx) = oneshot::channel();
        self.cmds
            .send(Cmd::Connect { peer, addr, reply })
            .await
            .map_err(|_| TransferError::Libp2p("transfer host stopped".into()))?;
        rx.await
            .map_err(|_| TransferError::Libp2p("transfer host stopped".into()))?
            .map_err(TransferError::Libp2p)?;
        let stream = self
            .control
            .clone()
            .open_stream(peer, TRANSFER_PROTOCOL)
            .await
            .map_err(|e| TransferError::Libp2p(e.to_string()))?;
        Ok(stream.compat())
    }

    /// Incoming transfer streams, as an [`axum::serve::Listener`]. Only one listener can be
    /// taken per host.
    pub fn listener(&self) -> Result<P2pListener, TransferError> {
        let incoming = self
            .control
            .clone()
            .accept(TRANSFER_PROTOCOL)
            .map_err(|e| TransferError::Libp2p(e.to_string()))?;
        Ok(P2pListener {
            incoming,
            peer_id: self.peer_id,
        })
    }

    /// Stops the swarm; open streams break.
    pub fn stop(&self) {
        self.task.abort();
    }
}

async fn run(mut swarm: Swarm<libp2p_stream::Behaviour>, mut cmds: mpsc::Receiver<Cmd>) {
    let mut pending: HashMap<PeerId, Vec<oneshot::Sender<Result<(), String>>>> = HashMap::new();
    loop {
        tokio::select! {
            cmd = cmds.recv() => {
                let Some(Cmd::Connect { peer, addr, reply }) = cmd else { break };
                if swarm.is_connected(&peer) {
                    let _ = reply.send(Ok(()));
                    continue;
                }
                let opts = DialOpts::peer_id(peer).addresses(vec![addr]).build();
                match swarm.dial(opts) {
                    Ok(()) => pending.entry(peer).or_default().push(reply),
                    Err(e) => { let _ = reply.send(Err(e.to_string())); }
                }
            }
            event = swarm.select_next_some() => match event {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    for r in pending.remove(&peer_id).unwrap_or_default() {
                        let _ = r.send(Ok(()));
                    }
                }
                SwarmEvent::OutgoingConnectionError { peer_id: Some(peer), error, .. } => {
                    for r in pending.remove(&peer).unwrap_or_default() {
                        let _ = r.send(Err(error.to_string()));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Incoming transfer streams of a [`P2pHost`], for `axum::serve`.
pub struct P2pListener {
    incoming: libp2p_stream::IncomingStreams,
    peer_id: PeerId,
}

impl axum::serve::Listener for P2pListener {
    type Io = Compat<Stream>;
    type Addr = PeerId;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.incoming.next().await {
            Some((peer, stream)) => (stream.compat(), peer),
            // The host stopped: no more connections will come.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.peer_id)
    }
}
