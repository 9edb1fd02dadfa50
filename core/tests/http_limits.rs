//! The listener limits of `market_core::http::serve` against real sockets: a thousand
//! slowloris connections do not keep another client from being served and are closed once
//! their header time is up; a stalled request body is cut; over the connection limit,
//! clients wait instead of being served beside the limit.

use std::time::Duration;

use axum::routing::{get, post};
use market_core::http::{ServerLimits, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Generous bound on anything that should happen "now": only a hang trips it.
const HANG: Duration = Duration::from_secs(30);

async fn start(limits: ServerLimits) -> std::net::SocketAddr {
    let app = axum::Router::new()
        .route("/", get(|| async { "hello" }))
        .route("/echo", post(|body: String| async move { body }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app, limits));
    addr
}

/// One plain request on a fresh connection; the whole response.
async fn plain_get(addr: std::net::SocketAddr) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

/// Reads until the server closes; what came.
async fn until_closed(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => return out,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slowloris_connections_do_not_block_and_are_closed() {
    let limits = ServerLimits::default().with_header_read_timeout(Duration::from_secs(2));
    let addr = start(limits).await;
    let mut slow = Vec::new();
    for _ in 0..1000 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(s);
    }
    // Everyone else is still served while the thousand hold their connections.
    let answer = tokio::time::timeout(HANG, plain_get(addr)).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("hello"));
    // And each slow one is closed by the server once its header time is up.
    for s in &mut slow {
        let got = tokio::time::timeout(HANG, until_closed(s)).await.unwrap();
        let text = String::from_utf8_lossy(&got);
        assert!(got.is_empty() || text.starts_with("HTTP/1.1 408"), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_and_a_whole_one_is_read() {
    let limits = ServerLimits::default().with_body_idle_timeout(Duration::from_secs(1));
    let addr = start(limits).await;
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nten bytes.")
        .await
        .unwrap();
    let got = tokio::time::timeout(HANG, until_closed(&mut s))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(
        b"POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await
    .unwrap();
    let got = tokio::time::timeout(HANG, until_closed(&mut s))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.starts_with("HTTP/1.1 200") && text.ends_with("hello"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_connection_limit_clients_wait_for_a_slot() {
    let limits = ServerLimits::default().with_max_connections(2);
    let addr = start(limits).await;
    // Two idle keep-alive connections fill the slots.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = s.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(s);
    }
    // A third is not served while they stay...
    let third = tokio::spawn(plain_get(addr));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!third.is_finished(), "served beyond the connection limit");
    // ...and is as soon as one leaves.
    drop(held.pop());
    let answer = tokio::time::timeout(HANG, third).await.unwrap().unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}
