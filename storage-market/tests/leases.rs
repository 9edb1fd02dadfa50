//! Two provider instances on one deal store with leases: a deal is driven by the instance
//! holding its lease; when one instance stops (every task aborted, as in a crash), the
//! other takes its deals over once their leases expire, and every deal is published and
//! becomes Active exactly once. On SQLite (one file) and on Postgres with the pieces in S3,
//! as two provider processes would share them.

#[macro_use]
mod harness;

use std::collections::HashSet;
use std::time::Duration;

use harness::{Backend, Env, FlakyChain, deps, provider_config, provider_host, transfer_config};
use libp2p::identity;
use storage_market::chain::ChainNode;
use storage_market::client::DealProtocol;
use storage_market::lease::LeaseConfig;
use storage_market::provider::{DealRef, Provider, ProviderError, wait_for_state};
use storage_market::state::StorageDealStatus as S;

use storage_market::types::DealId;

const T: Duration = Duration::from_secs(60);

on_both_backends!(a_stopped_instance_s_deals_are_taken_over_and_activated_once);

async fn a_stopped_instance_s_deals_are_taken_over_and_activated_once(backend: Backend) {
    let ttl = Duration::from_millis(900);
    let env = Env::start_on_backend(
        backend,
        |c| c.lease = Some(LeaseConfig::new("a", ttl)),
        true,
    )
    .await;
    let b_dir = env.dir.path().join("b");
    std::fs::create_dir_all(&b_dir).unwrap();
    let host_b = provider_host(&identity::Keypair::generate_ed25519()).await;
    let chain = FlakyChain {
        inner: env.chain.clone(),
        down: env.chain_down.clone(),
    };
    // Same deal store, pieces and index; its own transfers and staging.
    let deps_b = deps(
        &env.backing,
        env.dir.path(),
        &chain,
        &env.keys,
        &env.sealer,
        transfer_config(&b_dir),
        &host_b,
    )
    .await;
    let mut cfg_b = provider_config(env.miner);
    cfg_b.lease = Some(LeaseConfig::new("b", ttl));
    let b = Provider::start(cfg_b, deps_b).await.unwrap();

    // Six offline deals made with a; four of them imported there.
    let mut deals = Vec::new();
    for i in 0..6u8 {
        let (path, piece, size) = env.data_file(&format!("d{i}.car"), 2000 + 100 * i as usize, i);
        let spec = env.offline_spec(piece, size, DealProtocol::V12).await;
        let d = env.client.propose_deal(&env.peer, &spec).await.unwrap();
        deals.push((DealRef::ProposalCid(d.proposal_cid), path));
    }
    for (r, path) in &deals[..4] {
        env.provider.import_data(*r, path).await.unwrap();
    }
    // a drives them up to the sealer (which does not seal yet): b may not touch them.
    for (r, _) in &deals[..4] {
        wait_for_state(&env.provider, *r, S::AwaitingPreCommit, T)
            .await
            .unwrap();
    }
    let (r0, path0) = &deals[0];
    // a's driver holds the lease: another holder cannot take it while a renews.
    let DealRef::ProposalCid(cid0) = r0 else {
        unreachable!("made by proposal CID")
    };
    let (store, _, _) = env.backing.open(env.dir.path()).await;
    assert!(!store.take_lease(cid0, "b", ttl).await.unwrap());

    // a dies; b takes its deals over within the lease's lifetime and finishes them.
    env.provider.stop();
    env.node.stop();
    let sealer = env.sealer.run(Duration::from_millis(30));
    for (r, path) in &deals[4..] {
        b.import_data(*r, path).await.unwrap();
    }
    // An import of a deal that has its data already is refused.
    assert!(matches!(
        b.import_data(*r0, path0).await,
        Err(ProviderError::NotWaitingForData(_))
    ));
    let mut ids = HashSet::new();
    for (r, _) in &deals {
        let done = wait_for_state(&b, *r, S::Active, T).await.unwrap();
        assert!(ids.insert(done.deal_id.unwrap()), "deal id used twice");
    }
    sealer.abort();

    // Each proposal is on chain exactly once.
    let max = ids.iter().map(|d| d.0).max().unwrap();
    let ours: HashSet<_> = b
        .deals()
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.proposal.proposal.piece_cid)
        .collect();
    let mut published = Vec::new();
    for id in 0..=max + 2 {
        if let Some(d) = env.chain.market_deal(DealId(id)).await.unwrap()
            && ours.contains(&d.proposal.piece_cid)
        {
            published.push(d.proposal.piece_cid);
        }
    }
    assert_eq!(published.len(), 6, "{published:?}");
    assert_eq!(published.iter().collect::<HashSet<_>>().len(), 6);
}
