//! The host's streams: inbound streams of our protocols queued per protocol, outbound
//! streams negotiated concurrently on one connection.
//!
//! This replaces libp2p-stream, whose per-protocol queue has a single slot: when a burst of
//! streams arrives on a busy provider (64 clients proposing at once) it drops, that is resets,
//! every stream past the first not yet taken, and it negotiates one outbound stream at a time
//! per connection. Here each protocol has a bounded queue ([`crate::host::HostConfig`]'s
//! `inbound_queue`); a stream is dropped only when that queue is full, with a warning, and
//! outbound streams offer every acceptable protocol in one negotiation.

use std::collections::HashMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::{Endpoint, UpgradeInfo};
use libp2p::swarm::handler::{
    ConnectionEvent, DialUpgradeError, FullyNegotiatedInbound, FullyNegotiatedOutbound,
};
use libp2p::swarm::{
    ConnectionDenied, ConnectionHandler, ConnectionHandlerEvent, ConnectionId, FromSwarm,
    NetworkBehaviour, StreamUpgradeError, SubstreamProtocol, THandlerInEvent, THandlerOutEvent,
    ToSwarm,
};
use libp2p::{InboundUpgrade, Multiaddr, OutboundUpgrade, PeerId, Stream, StreamProtocol};
use tokio::sync::{mpsc, oneshot};

/// Why an outbound stream could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The peer speaks none of the protocols offered.
    #[error("the peer supports none of the protocols offered")]
    UnsupportedProtocol,
    /// No connection to the peer (it closed, or was never made).
    #[error("not connected")]
    NotConnected,
    /// Negotiation failed or timed out.
    #[error("stream negotiation failed")]
    Io(#[source] std::io::Error),
}

/// Inbound streams of one protocol, in arrival order; dropping it stops serving it.
#[derive(Debug)]
pub struct IncomingStreams {
    protocol: StreamProtocol,
    rx: mpsc::Receiver<(PeerId, Stream)>,
    shared: Arc<Shared>,
}

impl futures::Stream for IncomingStreams {
    type Item = (PeerId, Stream);

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl Drop for IncomingStreams {
    fn drop(&mut self) {
        self.shared.unregister(&self.protocol);
    }
}

struct OpenRequest {
    protocols: Arc<[StreamProtocol]>,
    reply: oneshot::Sender<Result<(StreamProtocol, Stream), OpenError>>,
}

#[derive(Debug, Default)]
struct Inbound {
    queues: HashMap<StreamProtocol, mpsc::Sender<(PeerId, Stream)>>,
    /// The keys of `queues`, rebuilt on change: every connection reads it on every poll.
    offered: Arc<[StreamProtocol]>,
}

/// One connection of a peer, by the queue of its handler's outbound requests.
type Connection = (ConnectionId, mpsc::UnboundedSender<OpenRequest>);

/// State shared by the behaviour, its connection handlers and the host's handles.
#[derive(Debug)]
pub(crate) struct Shared {
    inbound: RwLock<Inbound>,
    connections: Mutex<HashMap<PeerId, Vec<Connection>>>,
    queue: usize,
}

impl std::fmt::Debug for OpenRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenRequest")
            .field("protocols", &self.protocols)
            .finish_non_exhaustive()
    }
}

impl Shared {
    fn offered(&self) -> Arc<[StreamProtocol]> {
        self.inbound
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .offered
            .clone()
    }

    /// Starts queueing inbound streams of `protocol`; `None` when it is already served.
    pub(crate) fn accept(self: &Arc<Self>, protocol: StreamProtocol) -> Option<IncomingStreams> {
        let mut inbound = self.inbound.write().unwrap_or_else(|p| p.into_inner());
        if inbound.queues.contains_key(&protocol) {
            return None;
        }
        let (tx, rx) = mpsc::channel(self.queue.max(1));
        inbound.queues.insert(protocol.clone(), tx);
        inbound.offered = inbound.queues.keys().cloned().collect();
        Some(IncomingStreams {
            protocol,
            rx,
            shared: self.clone(),
        })
    }

    fn unregister(&self, protocol: &StreamProtocol) {
        let mut inbound = self.inbound.write().unwrap_or_else(|p| p.into_inner());
        inbound.queues.remove(protocol);
        inbound.offered = inbound.queues.keys().cloned().collect();
    }

    fn deliver(&self, peer: PeerId, protocol: StreamProtocol, stream: Stream) {
        let inbound = self.inbound.read().unwrap_or_else(|p| p.into_inner());
        let Some(queue) = inbound.queues.get(&protocol) else {
            tracing::debug!(%peer, %protocol, "no longer served, closing inbound stream");
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = queue.try_send((peer, stream)) {
            tracing::warn!(
                %peer,
                %protocol,
                queue = self.queue,
                "inbound stream queue full, resetting the stream"
            );
        }
    }

    /// Opens a stream to `peer` on the first of `protocols` it supports, on one of its
    /// connections.
    pub(crate) async fn open(
        &self,
        peer: PeerId,
        protocols: Arc<[StreamProtocol]>,
    ) -> Result<(StreamProtocol, Stream), OpenError> {
        let (reply, answer) = oneshot::channel();
        let mut request = OpenRequest { protocols, reply };
        {
            let mut connections = self.connections.lock().unwrap_or_else(|p| p.into_inner());
            let list = connections.get_mut(&peer).ok_or(OpenError::NotConnected)?;
            // A handler that is gone hands the request back; try the next connection.
            loop {
                let Some((_, tx)) = list.first() else {
                    return Err(OpenError::NotConnected);
                };
                match tx.send(request) {
                    Ok(()) => break,
                    Err(mpsc::error::SendError(back)) => {
                        request = back;
                        list.remove(0);
                    }
                }
            }
        }
        // A handler dropped with the request pending: its connection closed.
        answer.await.map_err(|_| OpenError::NotConnected)?
    }
}

/// The network behaviour of the host's streams.
pub(crate) struct Behaviour {
    shared: Arc<Shared>,
}

impl Behaviour {
    /// Inbound queues hold `queue` streams per protocol.
    pub(crate) fn new(queue: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                inbound: RwLock::new(Inbound::default()),
                connections: Mutex::new(HashMap::new()),
                queue,
            }),
        }
    }

    pub(crate) fn shared(&self) -> Arc<Shared> {
        self.shared.clone()
    }

    fn handler(&self, peer: PeerId, connection: ConnectionId) -> Handler {
        let (tx, requests) = mpsc::unbounded_channel();
        self.shared
            .connections
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(peer)
            .or_default()
            .push((connection, tx));
        Handler {
            peer,
            shared: self.shared.clone(),
            requests,
            pending: HashMap::new(),
            next: 0,
        }
    }
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = Handler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<Handler, ConnectionDenied> {
        Ok(self.handler(peer, connection_id))
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<Handler, ConnectionDenied> {
        Ok(self.handler(peer, connection_id))
    }

    fn on_swarm_event(&mut self, event: FromSwarm<'_>) {
        if let FromSwarm::ConnectionClosed(closed) = event {
            let mut connections = self
                .shared
                .connections
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if let Some(list) = connections.get_mut(&closed.peer_id) {
                list.retain(|(id, _)| *id != closed.connection_id);
                if list.is_empty() {
                    connections.remove(&closed.peer_id);
                }
            }
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Infallible, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

/// Negotiates one of a list of protocols; the stream is used as is.
#[derive(Debug, Clone)]
pub(crate) struct Upgrade(Arc<[StreamProtocol]>);

impl UpgradeInfo for Upgrade {
    type Info = StreamProtocol;
    type InfoIter = Protocols;

    fn protocol_info(&self) -> Protocols {
        Protocols(self.0.clone(), 0)
    }
}

/// The protocols of an [`Upgrade`], without copying the list (connections ask on every poll).
#[derive(Debug, Clone)]
pub(crate) struct Protocols(Arc<[StreamProtocol]>, usize);

impl Iterator for Protocols {
    type Item = StreamProtocol;

    fn next(&mut self) -> Option<StreamProtocol> {
        let p = self.0.get(self.1)?.clone();
        self.1 += 1;
        Some(p)
    }
}

impl InboundUpgrade<Stream> for Upgrade {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Output, Infallible>>;

    fn upgrade_inbound(self, stream: Stream, protocol: StreamProtocol) -> Self::Future {
        std::future::ready(Ok((stream, protocol)))
    }
}

impl OutboundUpgrade<Stream> for Upgrade {
    type Output = (Stream, StreamProtocol);
    type Error = Infallible;
    type Future = std::future::Ready<Result<Self::Output, Infallible>>;

    fn upgrade_outbound(self, stream: Stream, protocol: StreamProtocol) -> Self::Future {
        std::future::ready(Ok((stream, protocol)))
    }
}

type Reply = oneshot::Sender<Result<(StreamProtocol, Stream), OpenError>>;

/// One connection's side: hands inbound streams to their queues and negotiates the outbound
/// ones asked for, all at once.
pub(crate) struct Handler {
    peer: PeerId,
    shared: Arc<Shared>,
    requests: mpsc::UnboundedReceiver<OpenRequest>,
    pending: HashMap<u64, Reply>,
    next: u64,
}

impl ConnectionHandler for Handler {
    type FromBehaviour = Infallible;
    type ToBehaviour = Infallible;
    type InboundProtocol = Upgrade;
    type OutboundProtocol = Upgrade;
    type InboundOpenInfo = ();
    type OutboundOpenInfo = u64;

    fn listen_protocol(&self) -> SubstreamProtocol<Upgrade, ()> {
        SubstreamProtocol::new(Upgrade(self.shared.offered()), ())
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ConnectionHandlerEvent<Upgrade, u64, Infallible>> {
        while let Poll::Ready(Some(request)) = self.requests.poll_recv(cx) {
            if request.reply.is_closed() {
                continue;
            }
            let id = self.next;
            self.next += 1;
            self.pending.insert(id, request.reply);
            return Poll::Ready(ConnectionHandlerEvent::OutboundSubstreamRequest {
                protocol: SubstreamProtocol::new(Upgrade(request.protocols), id),
            });
        }
        Poll::Pending
    }

    fn on_behaviour_event(&mut self, event: Infallible) {
        match event {}
    }

    fn on_connection_event(&mut self, event: ConnectionEvent<'_, Upgrade, Upgrade, (), u64>) {
        match event {
            ConnectionEvent::FullyNegotiatedInbound(FullyNegotiatedInbound {
                protocol: (stream, protocol),
                ..
            }) => self.shared.deliver(self.peer, protocol, stream),
            ConnectionEvent::FullyNegotiatedOutbound(FullyNegotiatedOutbound {
                protocol: (stream, protocol),
                info,
            }) => {
                if let Some(reply) = self.pending.remove(&info) {
                    let _ = reply.send(Ok((protocol, stream)));
                }
            }
            ConnectionEvent::DialUpgradeError(DialUpgradeError { info, error }) => {
                let error = match error {
                    StreamUpgradeError::NegotiationFailed => OpenError::UnsupportedProtocol,
                    StreamUpgradeError::Timeout => {
                        OpenError::Io(std::io::ErrorKind::TimedOut.into())
                    }
                    StreamUpgradeError::Io(e) => OpenError::Io(e),
                    StreamUpgradeError::Apply(never) => match never {},
                };
                if let Some(reply) = self.pending.remove(&info) {
                    let _ = reply.send(Err(error));
                }
            }
            _ => {}
        }
    }
}
