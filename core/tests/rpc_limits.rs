//! The one-item-each-way protocols against slow peers over real libp2p: streams that never
//! send their request hold no handler slot, so a normal request is answered beside fifty of
//! them, and each is closed (not reset) once its request time is up.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::identity::Keypair;
use market_core::host::{Host, HostConfig};
use market_core::rpc::{self, Codec, RpcLimits};

mod common;
use common::{Double, HANG, V1};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_streams_do_not_starve_the_handlers() {
    let config = HostConfig::default().with_listen(["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    let server = Host::start(Keypair::generate_ed25519(), config)
        .await
        .unwrap();
    let limits = RpcLimits::default()
        .with_max_concurrent(2)
        .with_request_timeout(Duration::from_secs(1));
    let _service =
        rpc::serve::<Double, _, _>(&server, &[V1], limits.clone(), |_, _, req| async move {
            req.ok().map(|n| n * 2)
        })
        .unwrap();

    let slow_peer = Host::dialer(Keypair::generate_ed25519(), HostConfig::default()).unwrap();
    let mut silent = Vec::new();
    for _ in 0..50 {
        let s = slow_peer
            .open(&server.addr(), Double::protocol_id(V1))
            .await
            .unwrap();
        silent.push(s);
    }
    // Half a request on one of them: it is not whole when the time is up either.
    silent[0].write_all(&[0x1b]).await.unwrap();
    silent[0].flush().await.unwrap();

    let client = Host::dialer(Keypair::generate_ed25519(), HostConfig::default()).unwrap();
    let addr = server.addr();
    let ask = rpc::request::<Double>(&client, &addr, &[V1], &limits, |_| 21);
    let (_, answer) = tokio::time::timeout(HANG, ask).await.unwrap().unwrap();
    assert_eq!(answer, 42);

    for s in &mut silent {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(HANG, s.read_to_end(&mut rest)).await;
        // A clean end of stream, no answer: the server closed it.
        assert_eq!(read.unwrap().unwrap(), 0);
    }
}
