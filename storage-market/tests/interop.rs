//! Interop breaks found by an independent client, pinned: Lotus inline payload roots,
//! malformed requests, and the deal protocol version a deal is recorded under.

mod harness;

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use harness::Env;
use market_core::cbor;
use market_core::cid::Multihash;
use market_core::rpc::{self, RpcLimits};
use storage_market::Cid;
use storage_market::client::DealProtocol;
use storage_market::message::{AskRequest, DealParams, DealResponse};
use storage_market::network::{DealCodec, MarketNetwork, NetworkLimits};
use storage_market::protocol::Protocol;
use storage_market::provider::DealRef;

/// The root `lotus client import` gives a file of (1 MiB, 2 MiB]: a DAG-PB node of two
/// links, 126 bytes or less, inlined in an identity CID of 128 bytes and more.
fn inline_root() -> Cid {
    Cid::new_v1(
        0x70,
        Multihash::wrap(0x00, &[0x12; 126]).expect("126 bytes fit"),
    )
}

fn client_network() -> MarketNetwork {
    MarketNetwork::start(
        libp2p::identity::Keypair::generate_ed25519(),
        NetworkLimits::default(),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_payload_roots_are_accepted_on_both_deal_protocols() {
    let env = Env::start(|_| {}, true).await;
    let (_, piece_cid, size) = env.data_file("inline.car", 3000, 9);
    for protocol in [DealProtocol::V12, DealProtocol::V111] {
        let mut spec = env.offline_spec(piece_cid, size, protocol).await;
        spec.payload_root = inline_root();
        let deal = env
            .client
            .propose_deal(&env.peer, &spec)
            .await
            .unwrap_or_else(|e| panic!("{protocol:?}: {e}"));
        let got = env
            .provider
            .deal(DealRef::ProposalCid(deal.proposal_cid))
            .await
            .unwrap()
            .expect("the provider recorded the deal");
        assert_eq!(got.payload_root, Some(inline_root()), "{protocol:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_an_answer_or_a_clean_close() {
    let env = Env::start(|_| {}, true).await;
    let net = client_network();
    let garbage = [0xa1, 0x61, b'x', 0x01];

    // mk/1.2.1 answers with a rejection that names the problem.
    let mut s = net
        .host()
        .open(&env.peer, Protocol::DealV121.stream_protocol())
        .await
        .unwrap();
    s.write_all(&garbage).await.unwrap();
    s.flush().await.unwrap();
    let bytes = cbor::read_item(&mut s, 1 << 16).await.unwrap();
    let r: DealResponse = cbor::from_slice(&bytes, 1 << 16).unwrap();
    assert!(!r.accepted);
    assert!(
        r.message.contains("malformed deal proposal"),
        "{}",
        r.message
    );

    // mk/1.1.1 has no unsigned refusal: the provider closes the stream after a warning.
    let mut s = net
        .host()
        .open(&env.peer, Protocol::DealV111.stream_protocol())
        .await
        .unwrap();
    s.write_all(&garbage).await.unwrap();
    s.flush().await.unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut rest))
        .await
        .expect("the provider closes the stream");
    assert!(read.is_ok() && rest.is_empty(), "{read:?} {rest:?}");

    // And keeps serving.
    let ask = net
        .ask(&env.peer, AskRequest { miner: env.miner })
        .await
        .unwrap();
    assert!(ask.ask.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_made_on_1_2_0_is_recorded_as_1_2_0() {
    let env = Env::start(|_| {}, true).await;
    let (_, piece_cid, size) = env.data_file("v120.car", 3000, 3);
    let spec = env.offline_spec(piece_cid, size, DealProtocol::V12).await;
    let cdp = env.client.sign_proposal(&spec).await.unwrap();
    let net = client_network();
    let (version, response) = rpc::request::<DealCodec>(
        net.host(),
        &env.peer,
        &[Protocol::DealV120],
        &RpcLimits::default(),
        |_| DealParams::offline(cdp.clone(), piece_cid),
    )
    .await
    .unwrap();
    assert_eq!(version, Protocol::DealV120);
    assert!(response.accepted, "{}", response.message);
    let got = env
        .provider
        .deal(DealRef::ProposalCid(cdp.cid()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.protocol, Protocol::DealV120);
}

/// Many requests at once on one connection: every one is answered (none is dropped at the
/// host's inbound queue).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_on_one_connection_are_all_answered() {
    let env = Env::start(|_| {}, true).await;
    let net = client_network();
    net.connect(&env.peer).await.unwrap();
    let asks = (0..1000).map(|_| {
        let (net, peer, miner) = (net.clone(), env.peer.clone(), env.miner);
        tokio::spawn(async move { net.ask(&peer, AskRequest { miner }).await })
    });
    let mut failed = Vec::new();
    for a in asks {
        if let Err(e) = a.await.unwrap() {
            failed.push(market_core::report(&e));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of 1000 failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
}
