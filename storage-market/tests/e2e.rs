//! Offline deals end to end over libp2p TCP on 127.0.0.1, with both protocol generations,
//! on SQLite and a directory and on Postgres with the pieces in S3.

#[macro_use]
mod harness;

use std::time::Duration;

use harness::{Backend, Env};
use storage_market::chain::ChainNode;
use storage_market::client::DealProtocol;
use storage_market::message::AskRequest;
use storage_market::protocol::Protocol;
use storage_market::provider::{DealRef, wait_for_state};
use storage_market::state::StorageDealStatus as S;
use storage_market::wallet::verify;

const T: Duration = Duration::from_secs(30);

async fn offline_deal_becomes_active(
    backend: Backend,
    protocol: DealProtocol,
    want_protocol: Protocol,
) {
    let env = Env::start_on_backend(backend, |_| {}, true).await;
    let sealer = env.sealer.run(Duration::from_millis(30));
    let (path, piece_cid, size) = env.data_file("payload.car", 3000, 7);
    let spec = env.offline_spec(piece_cid, size, protocol).await;
    let deal = env.client.propose_deal(&env.peer, &spec).await.unwrap();
    assert_eq!(deal.protocol, want_protocol);
    let r = DealRef::ProposalCid(deal.proposal_cid);
    let got = env.provider.deal(r).await.unwrap().unwrap();
    assert_eq!(got.state, S::WaitingForData);

    env.provider.import_data(r, &path).await.unwrap();
    let active = wait_for_state(&env.provider, r, S::Active, T)
        .await
        .unwrap();
    let id = active.deal_id.expect("published deal has an id");
    let on_chain = env
        .chain
        .market_deal(id)
        .await
        .unwrap()
        .expect("deal on chain");
    assert!(
        on_chain.state.sector_start_epoch.get() >= 0,
        "activated by a sector commit"
    );
    assert_eq!(on_chain.proposal, deal.proposal.proposal);
    assert!(active.publish_cid.is_some() && active.sector.is_some());

    // The client sees the same state through the status protocol of its generation.
    let status = env.client.update_status(&env.peer, &deal).await.unwrap();
    assert_eq!(status.deal_id, Some(id));
    if want_protocol == Protocol::DealV111 {
        assert_eq!(status.state, S::Active);
    } else {
        assert_eq!(status.checkpoint, "Complete");
    }
    assert_eq!(env.client.deals().await.unwrap().len(), 1);

    // Payments flow and the deal expires at its end epoch.
    let expired = wait_for_state(&env.provider, r, S::Expired, T)
        .await
        .unwrap();
    assert_eq!(expired.deal_id, Some(id));
    let paid = env.chain.market_balance(&env.miner).await.unwrap();
    assert_eq!(paid.locked, storage_market::types::TokenAmount::ZERO);

    // The timeline holds every state the deal went through, in order, with times.
    let timeline = env.provider.deal_events(r).await.unwrap();
    let states: Vec<S> = timeline.iter().map(|e| e.state).collect();
    let at = |s: S| {
        states
            .iter()
            .position(|&x| x == s)
            .unwrap_or_else(|| panic!("{s} in {states:?}"))
    };
    assert_eq!(states[0], S::WaitingForData);
    assert!(at(S::WaitingForData) < at(S::Publishing));
    assert!(at(S::Publishing) < at(S::Active));
    assert_eq!(*states.last().unwrap(), S::Expired);
    assert!(timeline.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    let counts = env.provider.deal_counts().await.unwrap();
    assert_eq!(counts, vec![(S::Expired, 1)]);
    sealer.abort();
}

on_both_backends!(
    offline_deal_over_boost_1_2_1,
    offline_deal_over_go_fil_markets_1_1_1
);

async fn offline_deal_over_boost_1_2_1(backend: Backend) {
    offline_deal_becomes_active(backend, DealProtocol::V12, Protocol::DealV121).await;
}

async fn offline_deal_over_go_fil_markets_1_1_1(backend: Backend) {
    offline_deal_becomes_active(backend, DealProtocol::V111, Protocol::DealV111).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asks_are_signed_by_the_worker_on_both_ask_protocols() {
    let env = Env::start(|_| {}, true).await;
    let ask = env.client.query_ask(&env.peer, &env.miner).await.unwrap();
    assert_eq!(ask.miner, env.miner);
    let network = storage_market::network::MarketNetwork::start(
        libp2p::identity::Keypair::generate_ed25519(),
        Default::default(),
    )
    .unwrap();
    let legacy = network
        .ask_legacy(&env.peer, AskRequest { miner: env.miner })
        .await
        .unwrap();
    let signed = legacy.ask.unwrap();
    let inner = signed.ask.unwrap();
    assert_eq!(inner, ask);
    verify(&signed.signature.unwrap(), &env.worker, &inner.to_cbor_v0()).unwrap();
    // A miner the provider does not serve gets no ask.
    let other = storage_market::types::Address::new_id(4242);
    let none = network
        .ask(&env.peer, AskRequest { miner: other })
        .await
        .unwrap();
    assert!(none.ask.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_with_the_wrong_data_is_refused_and_the_deal_keeps_waiting() {
    let env = Env::start(|_| {}, true).await;
    let (_, piece_cid, size) = env.data_file("right.car", 2000, 1);
    let (wrong, _, _) = env.data_file("wrong.car", 2000, 2);
    let spec = env.offline_spec(piece_cid, size, DealProtocol::V12).await;
    let deal = env.client.propose_deal(&env.peer, &spec).await.unwrap();
    let r = DealRef::Uuid(deal.deal_uuid);
    let err = env.provider.import_data(r, &wrong).await.unwrap_err();
    assert!(err.to_string().contains("commP mismatch"), "{err}");
    assert_eq!(
        env.provider.deal(r).await.unwrap().unwrap().state,
        S::WaitingForData
    );
}

/// A chain node that goes away (Lotus restarting, a network blip) must not fail deals: the
/// provider keeps asking, and the deal goes on when the node is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_active_deal_survives_a_chain_node_outage() {
    use std::sync::atomic::Ordering;
    let env = Env::start(|_| {}, true).await;
    let sealer = env.sealer.run(Duration::from_millis(30));
    let (path, piece_cid, size) = env.data_file("outage.car", 3000, 4);
    let spec = env.offline_spec(piece_cid, size, DealProtocol::V12).await;
    let deal = env.client.propose_deal(&env.peer, &spec).await.unwrap();
    let r = DealRef::ProposalCid(deal.proposal_cid);
    env.provider.import_data(r, &path).await.unwrap();
    wait_for_state(&env.provider, r, S::Active, T)
        .await
        .unwrap();

    // Dozens of the provider's 10 ms polls fail while the node is down.
    env.chain_down.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let during = env.provider.deal(r).await.unwrap().unwrap();
    assert_eq!(during.state, S::Active, "{}", during.message);
    env.chain_down.store(false, Ordering::Relaxed);

    let expired = wait_for_state(&env.provider, r, S::Expired, T)
        .await
        .unwrap();
    assert!(expired.deal_id.is_some());
    sealer.abort();
}

/// What a hostile or mistaken operator can hand `ImportData`: each is refused before a byte
/// is copied, nothing is left in the piece store, and the deal keeps waiting for the right
/// file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_import_sources_are_refused_without_reading_them() {
    use storage_market::provider::ProviderError;
    let env = Env::start(|_| {}, true).await;
    let (right, piece_cid, size) = env.data_file("right.car", 3000, 3);
    let spec = env.offline_spec(piece_cid, size, DealProtocol::V12).await;
    let deal = env.client.propose_deal(&env.peer, &spec).await.unwrap();
    let r = DealRef::ProposalCid(deal.proposal_cid);

    // A sparse 1 GiB file for a 4 KiB piece.
    let sparse = env.dir.path().join("sparse.bin");
    std::fs::File::create(&sparse)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    let fifo = env.dir.path().join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    type Expect = fn(&ProviderError) -> bool;
    let cases: [(&std::path::Path, Expect); 4] = [
        (&sparse, |e| matches!(e, ProviderError::DataTooLarge(_))),
        ("/dev/zero".as_ref(), |e| {
            matches!(e, ProviderError::NotAFile(_))
        }),
        // Opening a pipe nobody writes to would block forever.
        (&fifo, |e| matches!(e, ProviderError::NotAFile(_))),
        (env.dir.path(), |e| matches!(e, ProviderError::NotAFile(_))),
    ];
    for (path, want) in cases {
        let err = tokio::time::timeout(T, env.provider.import_data(r, path))
            .await
            .unwrap_or_else(|_| panic!("importing {} hung", path.display()))
            .unwrap_err();
        assert!(want(&err), "{}: {err}", path.display());
    }
    let leftovers: Vec<_> = std::fs::read_dir(env.dir.path().join("pieces"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(
        env.provider.deal(r).await.unwrap().unwrap().state,
        S::WaitingForData
    );

    // A caller that goes away after the import started (one poll, then dropped) does not
    // stop it half-way: it runs to its end and the deal goes on to Active.
    use futures::FutureExt;
    assert!(env.provider.import_data(r, &right).now_or_never().is_none());
    let sealer = env.sealer.run(Duration::from_millis(30));
    wait_for_state(&env.provider, r, S::Active, T)
        .await
        .unwrap();
    drop(sealer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_cancels_a_waiting_deal_retries_it_and_it_still_becomes_active() {
    use storage_market::provider::ProviderError;
    let env = Env::start(|_| {}, true).await;
    let sealer = env.sealer.run(Duration::from_millis(30));
    let (path, piece_cid, size) = env.data_file("payload.car", 2000, 3);
    let spec = env.offline_spec(piece_cid, size, DealProtocol::V12).await;
    let deal = env.client.propose_deal(&env.peer, &spec).await.unwrap();
    let r = DealRef::Uuid(deal.deal_uuid);

    // A waiting deal cannot be retried, only cancelled; a cancelled one ends in Error.
    let err = env.provider.retry(r).await.unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::NotAllowed {
                action: "retry",
                ..
            }
        ),
        "{err}"
    );
    env.provider.cancel(r).await.unwrap();
    let failed = wait_for_state(&env.provider, r, S::Error, T).await.unwrap();
    assert_eq!(failed.message, "cancelled by the operator");
    let err = env.provider.import_data(r, &path).await.unwrap_err();
    assert!(
        matches!(err, ProviderError::NotWaitingForData(S::Error)),
        "{err}"
    );
    let err = env.provider.cancel(r).await.unwrap_err();
    assert!(
        matches!(
            err,
            ProviderError::NotAllowed {
                action: "cancel",
                ..
            }
        ),
        "{err}"
    );

    // Retried before its start epoch, it waits for data again and goes all the way.
    let again = env.provider.retry(r).await.unwrap();
    assert_eq!(again.state, S::WaitingForData);
    env.provider.import_data(r, &path).await.unwrap();
    let active = wait_for_state(&env.provider, r, S::Active, T)
        .await
        .unwrap();
    assert!(active.deal_id.is_some());
    // Published deals are past both actions.
    let err = env.provider.cancel(r).await.unwrap_err();
    assert!(matches!(err, ProviderError::NotAllowed { .. }), "{err}");
    let states: Vec<S> = env
        .provider
        .deal_events(r)
        .await
        .unwrap()
        .iter()
        .map(|e| e.state)
        .collect();
    let expect_prefix = [S::WaitingForData, S::Failing, S::Error, S::WaitingForData];
    assert_eq!(&states[..4], &expect_prefix, "{states:?}");
    sealer.abort();
}
