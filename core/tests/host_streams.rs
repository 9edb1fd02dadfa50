//! The host's stream behaviour over real libp2p on loopback: bursts of inbound streams are
//! queued (libp2p-stream kept one and reset the rest), the queue bound holds, one negotiation
//! picks the first protocol the peer serves, and a dropped handler stops serving.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{StreamProtocol, identity::Keypair};
use market_core::host::{Host, HostConfig, HostError, IncomingStreams};

const ECHO: StreamProtocol = StreamProtocol::new("/fil-market-rs/test/echo/1");
const OLD: StreamProtocol = StreamProtocol::new("/fil-market-rs/test/echo/0");

async fn listener(queue: usize) -> Host {
    let mut config = HostConfig::default().with_listen(["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    config.inbound_queue = queue;
    Host::start(Keypair::generate_ed25519(), config)
        .await
        .unwrap()
}

fn dialer() -> Host {
    Host::dialer(Keypair::generate_ed25519(), HostConfig::default()).unwrap()
}

/// Writes `n`, reads the echo.
async fn ping(client: &Host, server: &Host, n: u8) -> std::io::Result<u8> {
    let mut s = client
        .open(&server.addr(), ECHO)
        .await
        .map_err(std::io::Error::other)?;
    s.write_all(&[n]).await?;
    s.flush().await?;
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await?;
    Ok(b[0])
}

/// Echoes one byte per stream, spawning per stream.
fn serve_echo(server: &Host, protocol: StreamProtocol) -> tokio::task::JoinHandle<()> {
    echo_all(server.accept(protocol).unwrap())
}

/// Echoes one byte on every stream of `incoming`.
fn echo_all(mut incoming: IncomingStreams) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some((_, mut s)) = incoming.next().await {
            tokio::spawn(async move {
                let mut b = [0u8; 1];
                if s.read_exact(&mut b).await.is_ok() {
                    let _ = s.write_all(&b).await;
                    let _ = s.close().await;
                }
            });
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_many_peers_is_queued_not_reset() {
    let server = listener(1024).await;
    // The handler starts taking streams only after the whole burst has arrived.
    let clients: Vec<Host> = (0..32).map(|_| dialer()).collect();
    for c in &clients {
        c.connect(&server.addr()).await.unwrap();
    }
    let incoming = server.accept(ECHO).unwrap();
    let burst: Vec<_> = (0..128u8)
        .map(|n| {
            let (c, server) = (clients[n as usize % clients.len()].clone(), server.clone());
            tokio::spawn(async move { ping(&c, &server, n).await.map(|got| (n, got)) })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let echo = echo_all(incoming);
    for t in burst {
        let (sent, got) = t.await.unwrap().expect("no stream of the burst is reset");
        assert_eq!(sent, got);
    }
    echo.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_queue_bound_are_reset() {
    let server = listener(2).await;
    let client = dialer();
    // Served but never taken: two streams wait in the queue, the rest are reset.
    let _incoming = server.accept(ECHO).unwrap();
    let tries: Vec<_> = (0..6u8)
        .map(|n| {
            let (c, s) = (client.clone(), server.clone());
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(2), ping(&c, &s, n)).await
            })
        })
        .collect();
    let mut reset = 0;
    let mut waiting = 0;
    for t in tries {
        match t.await.unwrap() {
            Ok(Err(e)) => {
                eprintln!("reset: {e}");
                reset += 1
            }
            Err(_) => waiting += 1,
            Ok(Ok(_)) => panic!("nobody answers on this protocol"),
        }
    }
    assert_eq!(waiting, 2, "the queue holds exactly its bound");
    assert_eq!(reset, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_negotiation_picks_the_first_protocol_served() {
    let server = listener(16).await;
    let client = dialer();
    let _old = serve_echo(&server, OLD);
    let (picked, mut s) = client.open_any(&server.addr(), &[ECHO, OLD]).await.unwrap();
    assert_eq!(picked, OLD);
    s.write_all(&[9]).await.unwrap();
    let mut b = [0u8; 1];
    s.read_exact(&mut b).await.unwrap();
    assert_eq!(b, [9]);

    let err = client.open(&server.addr(), ECHO).await.unwrap_err();
    assert!(
        matches!(err, HostError::UnsupportedProtocol { .. }),
        "{err}"
    );
    assert!(matches!(
        server.accept(OLD),
        Err(HostError::AlreadyServed(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_handler_stops_serving_and_frees_the_protocol() {
    let server = listener(16).await;
    let client = dialer();
    let incoming = server.accept(ECHO).unwrap();
    drop(incoming);
    let err = client.open(&server.addr(), ECHO).await.unwrap_err();
    assert!(
        matches!(err, HostError::UnsupportedProtocol { .. }),
        "{err}"
    );
    let _echo = serve_echo(&server, ECHO);
    assert_eq!(ping(&client, &server, 5).await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_connection_is_dialled_again() {
    let server = listener(16).await;
    let _echo = serve_echo(&server, ECHO);
    let client = dialer();
    assert_eq!(ping(&client, &server, 1).await.unwrap(), 1);
    // The server restarts on the same address with the same identity: the client's
    // connection is gone, and the next request dials again.
    let key = Keypair::generate_ed25519();
    let first = Host::start(
        key.clone(),
        HostConfig::default().with_listen(["/ip4/127.0.0.1/tcp/0".parse().unwrap()]),
    )
    .await
    .unwrap();
    let addr = first.listen_addrs()[0].clone();
    let echo = serve_echo(&first, ECHO);
    assert_eq!(ping(&client, &first, 2).await.unwrap(), 2);
    echo.abort();
    first.stop();
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let second = Host::start(key, HostConfig::default().with_listen([addr]))
        .await
        .unwrap();
    let _echo2 = serve_echo(&second, ECHO);
    assert_eq!(ping(&client, &second, 3).await.unwrap(), 3);
}
