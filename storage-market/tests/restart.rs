//! Stop the provider (every task aborted, as in a crash) in each non-terminal state, start a
//! new one on the same database, and the deal completes: on SQLite and a directory, and on
//! Postgres with the pieces in S3.

#[macro_use]
mod harness;

use std::time::Duration;

use harness::{Backend, EPOCH, Env};
use storage_market::chain::{ChainNode, Message};
use storage_market::client::DealProtocol;
use storage_market::deal::{STORAGE_MARKET_ACTOR, method};
use storage_market::provider::{DealRef, wait_for_state};
use storage_market::state::StorageDealStatus as S;
use storage_market::types::TokenAmount;

const T: Duration = Duration::from_secs(30);

/// How to hold a deal in `state` before the crash, and how to release it afterwards.
async fn crash_at(backend: Backend, state: S) {
    let hold_publish = state == S::Publish;
    let mut env = Env::start_on_backend(
        backend,
        |c| {
            if hold_publish {
                c.publish.publish_period = Duration::from_secs(3600);
            }
        },
        true,
    )
    .await;
    env.sealer.set_accepting(state != S::Staged);
    let (path, piece_cid, size) = env.data_file("d.car", 2500, 9);
    // The provider's escrow starts empty, so the collateral always needs an AddBalance.
    let spec = env.offline_spec(piece_cid, size, DealProtocol::V12).await;
    let deal = env.client.propose_deal(&env.peer, &spec).await.unwrap();
    let r = DealRef::ProposalCid(deal.proposal_cid);
    if state != S::WaitingForData {
        if matches!(state, S::ProviderFunding | S::Publishing) {
            // A stopped clock holds the next message in the pool. For Publishing, fund the
            // provider's escrow first so the next message is the publish message.
            env.chain.stop_clock();
            if state == S::Publishing {
                let add = Message {
                    from: env.worker,
                    to: STORAGE_MARKET_ACTOR,
                    method: method::ADD_BALANCE,
                    params: storage_market::cbor::to_vec(&env.miner),
                    value: TokenAmount::from_whole(1),
                    max_fee: TokenAmount::from_whole(1),
                    uuid: None,
                };
                env.chain.push_message(add).await.unwrap();
                env.chain.advance(1);
            }
        }
        env.provider.import_data(r, &path).await.unwrap();
        if state == S::Sealing {
            wait_for_state(&env.provider, r, S::AwaitingPreCommit, T)
                .await
                .unwrap();
            env.sealer.precommit_all().await;
        }
        if state == S::Active {
            wait_for_state(&env.provider, r, S::AwaitingPreCommit, T)
                .await
                .unwrap();
            env.sealer.precommit_all().await;
            env.sealer.prove_all().await;
        }
        wait_for_state(&env.provider, r, state, T).await.unwrap();
    }
    // Let any in-flight step settle, then crash.
    tokio::time::sleep(EPOCH * 5).await;
    let before = env.provider.deal(r).await.unwrap().unwrap();
    assert_eq!(before.state, state, "held in {state}");

    env.restart_provider(|_| {}).await;
    env.chain.start_clock(EPOCH);
    env.sealer.set_accepting(true);
    let sealer = env.sealer.run(Duration::from_millis(30));
    if state == S::WaitingForData {
        env.provider.import_data(r, &path).await.unwrap();
    }
    let done = wait_for_state(&env.provider, r, S::Active, T).await;
    let done = done.unwrap_or_else(|e| panic!("after a crash in {state}: {e}"));
    assert!(done.deal_id.is_some());
    if state == S::Active {
        wait_for_state(&env.provider, r, S::Expired, T)
            .await
            .unwrap();
    }
    sealer.abort();
}

on_both_backends!(resumes_after_a_crash_in_every_waiting_state);

async fn resumes_after_a_crash_in_every_waiting_state(backend: Backend) {
    for state in [
        S::WaitingForData,
        S::ProviderFunding,
        S::Publish,
        S::Publishing,
        S::Staged,
        S::AwaitingPreCommit,
        S::Sealing,
        S::Active,
    ] {
        crash_at(backend, state).await;
    }
}
