//! HTTP/1.1 over libp2p streams on `/fil/storage/transfer/1.0.0`, as Boost's
//! `libp2p:///…/p2p/<peer>` URLs expect, on the node's one [`Host`].
//!
//! A client serves its CAR files through [`P2pListener`] (see
//! [`crate::CarServer::serve_libp2p`]); a provider dials clients with [`open`].

use futures::StreamExt;
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};
use market_core::host::{Host, PeerAddr};
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt};

use crate::TransferError;

/// The protocol Boost's HTTP-over-libp2p transfers use.
pub const TRANSFER_PROTOCOL: StreamProtocol = StreamProtocol::new("/fil/storage/transfer/1.0.0");

/// The `libp2p:///…/p2p/<peer>` URL of `host`'s first listen address.
pub fn transfer_url(host: &Host) -> Option<String> {
    let addr = host.listen_addrs().first()?;
    Some(format!("libp2p://{addr}/p2p/{}", host.peer_id()))
}

/// Dials `peer` at `addr` (if not connected) and opens a transfer stream to it.
pub async fn open(
    host: &Host,
    peer: PeerId,
    addr: Multiaddr,
) -> Result<Compat<Stream>, TransferError> {
    let stream = host
        .open(&PeerAddr::new(peer, vec![addr]), TRANSFER_PROTOCOL)
        .await
        .map_err(TransferError::Libp2p)?;
    Ok(stream.compat())
}

/// Incoming transfer streams of a [`Host`], as an [`axum::serve::Listener`].
pub struct P2pListener {
    incoming: market_core::host::IncomingStreams,
    peer_id: PeerId,
}

impl P2pListener {
    /// Takes `host`'s transfer streams; one listener per host.
    pub fn new(host: &Host) -> Result<Self, TransferError> {
        Ok(Self {
            incoming: host
                .accept(TRANSFER_PROTOCOL)
                .map_err(TransferError::Libp2p)?,
            peer_id: host.peer_id(),
        })
    }
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
