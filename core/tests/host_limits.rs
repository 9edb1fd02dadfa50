//! The libp2p listener against slow and greedy connections, over real TCP: a thousand
//! connections that stall in their handshake (silent, or stopped after the multistream
//! header) do not keep a real peer from being served and are closed once the handshake
//! timeout is up; past the pending-connection limit new connections are closed at once.

use std::time::Duration;

use libp2p::Multiaddr;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use market_core::host::{Host, HostConfig};
use market_core::rpc::{self, RpcLimits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

mod common;
use common::{Double, HANG, V1};

async fn server(config: HostConfig) -> (Host, rpc::Service, std::net::SocketAddr) {
    let config = config.with_listen(["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    let host = Host::start(Keypair::generate_ed25519(), config)
        .await
        .unwrap();
    let service =
        rpc::serve::<Double, _, _>(&host, &[V1], RpcLimits::default(), |_, _, req| async move {
            req.ok().map(|n| n * 2)
        })
        .unwrap();
    let addr = socket_addr(&host.listen_addrs()[0]);
    (host, service, addr)
}

fn socket_addr(m: &Multiaddr) -> std::net::SocketAddr {
    let mut ip = None;
    let mut port = None;
    for p in m.iter() {
        match p {
            Protocol::Ip4(a) => ip = Some(std::net::IpAddr::V4(a)),
            Protocol::Tcp(t) => port = Some(t),
            _ => {}
        }
    }
    (ip.unwrap(), port.unwrap()).into()
}

/// Reads until the server closes the connection.
async fn until_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// One real exchange with the server from a fresh peer.
async fn real_peer_is_served(host: &Host) {
    let peer = Host::dialer(Keypair::generate_ed25519(), HostConfig::default()).unwrap();
    let answer = tokio::time::timeout(
        HANG,
        rpc::request::<Double>(&peer, &host.addr(), &[V1], &RpcLimits::default(), |_| 21),
    )
    .await
    .expect("a real peer waited behind the stalled connections")
    .unwrap();
    assert_eq!(answer.1, 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_handshakes_do_not_block_and_are_closed() {
    let mut config = HostConfig::default();
    config.handshake_timeout = Duration::from_secs(2);
    let (host, _service, addr) = server(config).await;
    let mut slow = Vec::new();
    for i in 0..1000 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        if i % 2 == 1 {
            // The multistream-select header, then nothing (noise is never offered).
            s.write_all(b"\x13/multistream/1.0.0\n").await.unwrap();
        }
        slow.push(s);
    }
    real_peer_is_served(&host).await;
    for s in &mut slow {
        tokio::time::timeout(HANG, until_closed(s))
            .await
            .expect("a stalled handshake was never closed");
    }
    // And the listener still serves after the flood.
    real_peer_is_served(&host).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_pending_limit_connections_are_closed_at_once() {
    let mut config = HostConfig::default();
    config.max_pending_incoming = 20;
    // Long enough that only the limit can close a connection during the test.
    config.handshake_timeout = Duration::from_secs(300);
    let (_host, _service, addr) = server(config).await;
    let mut conns = Vec::new();
    for _ in 0..50 {
        conns.push(TcpStream::connect(addr).await.unwrap());
        // Let the listener account each connection before the next.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Poll every connection until 30 have been closed (a hang bound only), then once more
    // to see that no other one is.
    let mut open: Vec<bool> = vec![true; conns.len()];
    let deadline = tokio::time::Instant::now() + HANG;
    let mut closed = 0;
    for round in 0.. {
        for (s, o) in conns.iter_mut().zip(open.iter_mut()).filter(|(_, o)| **o) {
            if tokio::time::timeout(Duration::from_millis(20), until_closed(s))
                .await
                .is_ok()
            {
                *o = false;
                closed += 1;
            }
        }
        if closed >= 30 && round > 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {closed} closed"
        );
        if closed >= 30 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert_eq!(closed, 30, "50 connections against a pending limit of 20");
}
