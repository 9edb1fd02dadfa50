//! Batched publishing: deals share one message, and a deal the market actor drops fails alone.

mod harness;

use std::time::Duration;

use harness::Env;
use storage_market::client::DealProtocol;
use storage_market::message::DealParams;
use storage_market::provider::DealRef;
use storage_market::state::StorageDealStatus as S;
use storage_market::types::{DealLabel, TokenAmount};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deal_dropped_by_the_actor_fails_alone() {
    let env = Env::start(
        |c| c.publish.publish_period = Duration::from_millis(1500),
        true,
    )
    .await;
    let sealer = env.sealer.run(Duration::from_millis(30));
    let (path, piece_cid, size) = env.data_file("d.car", 2000, 5);
    let spec = env.offline_spec(piece_cid, size, DealProtocol::V12).await;
    let mut refs = Vec::new();
    // Each deal locks 6 FIL of the client's 10 FIL escrow: each passes validation and the
    // single-deal dry run, but the actor can only take the first of the batch.
    for label in ["a", "b"] {
        let mut cdp = env.client.sign_proposal(&spec).await.unwrap();
        cdp.proposal.label = DealLabel::String(label.into());
        cdp.proposal.client_collateral = TokenAmount::from_whole(6);
        cdp.client_signature = env
            .keys
            .sign_sync(&env.client_addr, &cdp.proposal.to_cbor())
            .unwrap();
        let params = DealParams::offline(cdp.clone(), piece_cid);
        let res = env
            .provider
            .propose(params, storage_market::protocol::Protocol::DealV121)
            .await;
        assert!(res.accepted, "{}", res.message);
        refs.push(DealRef::ProposalCid(cdp.cid()));
    }
    for r in &refs {
        env.provider.import_data(*r, &path).await.unwrap();
    }
    // Whichever reached the publisher first is index 0 and lands; the other is dropped.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let (won, lost) = loop {
        let a = env.provider.deal(refs[0]).await.unwrap().unwrap();
        let b = env.provider.deal(refs[1]).await.unwrap().unwrap();
        match (a.state, b.state) {
            (S::Active, S::Error) => break (a, b),
            (S::Error, S::Active) => break (b, a),
            _ if tokio::time::Instant::now() > deadline => {
                panic!(
                    "stuck in {} / {}: {} / {}",
                    a.state, b.state, a.message, b.message
                )
            }
            _ => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert_eq!(
        won.publish_cid, lost.publish_cid,
        "both went out in one message"
    );
    assert_eq!((won.publish_index, lost.publish_index), (Some(0), Some(1)));
    assert!(
        lost.message.contains("invalid at publication"),
        "{}",
        lost.message
    );
    assert!(lost.deal_id.is_none() && won.deal_id.is_some());
    // Both deals carried the same piece: cleaning up the lost one keeps it for the other.
    let pieces = piecestore::FsPieceStore::open(env.dir.path().join("pieces")).unwrap();
    use piecestore::PieceStore;
    assert!(pieces.has(&piece_cid).await.unwrap());
    sealer.abort();
}

/// A publish the chain would refuse fails with the exit code, its name and the cause.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_publish_names_its_cause() {
    use storage_market::chain::{ChainNode, Message};
    use storage_market::deal::{STORAGE_MARKET_ACTOR, method};
    let env = Env::start(|_| {}, true).await;
    let (path, piece_cid, size) = env.data_file("d.car", 2000, 6);
    let spec = env.offline_spec(piece_cid, size, DealProtocol::V12).await;
    let deal = env.client.propose_deal(&env.peer, &spec).await.unwrap();
    // The client takes its escrow back after the deal was accepted.
    let withdraw = Message {
        from: env.client_addr,
        to: STORAGE_MARKET_ACTOR,
        method: method::WITHDRAW_BALANCE,
        params: storage_market::cbor::to_vec(&(env.client_addr, TokenAmount::from_whole(10))),
        value: TokenAmount::ZERO,
        max_fee: TokenAmount::from_whole(1),
        uuid: None,
    };
    let cid = env.chain.push_message(withdraw).await.unwrap();
    assert!(
        env.chain
            .wait_message(&cid, 0)
            .await
            .unwrap()
            .receipt
            .exit_code
            .is_ok()
    );
    let r = DealRef::ProposalCid(deal.proposal_cid);
    env.provider.import_data(r, &path).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let d = loop {
        let d = env.provider.deal(r).await.unwrap().unwrap();
        if d.state == S::Error {
            break d;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} {}",
            d.state,
            d.message
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        d.message
            .contains("exited with code 16 (ErrIllegalArgument)")
            && d.message.contains("client escrow too small: needs"),
        "{}",
        d.message
    );
}
