//! Deals across network version 29 "Solstice" (FIP-0118): a verified deal made before the
//! upgrade stays active; after it, the provider rejects verified deals naming the upgrade, the
//! client refuses to propose them, the chain drops them from a publish, and unverified deals
//! go on as before.

mod harness;

use std::time::Duration;

use harness::Env;
use storage_market::chain::ChainNode;
use storage_market::client::DealProtocol;
use storage_market::protocol::Protocol;
use storage_market::provider::{DealRef, wait_for_state};
use storage_market::state::StorageDealStatus as S;
use storage_market::types::{ChainEpoch, NetworkVersion};

const T: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn verified_deals_end_at_solstice() {
    let upgrade = ChainEpoch::new(1000 + 400);
    let env = Env::start_on(
        |c| c.with_upgrade(upgrade, NetworkVersion::SOLSTICE),
        |_| {},
        |_| {},
        false,
    )
    .await;
    assert_eq!(
        env.chain.network_version().await.unwrap(),
        NetworkVersion(28)
    );
    env.chain.add_verified_client(&env.client_addr, 1 << 30);

    // Before the upgrade: a verified deal goes all the way.
    let (path, piece_cid, size) = env.data_file("v.car", 3000, 1);
    let mut spec = env.offline_spec(piece_cid, size, DealProtocol::V12).await;
    spec.verified = true;
    spec.price_per_epoch = storage_market::types::TokenAmount::ZERO;
    let deal = env.client.propose_deal(&env.peer, &spec).await.unwrap();
    let r = DealRef::ProposalCid(deal.proposal_cid);
    env.provider.import_data(r, &path).await.unwrap();
    let chain = env.chain.clone();
    let sealer = env.sealer.clone();
    let provider = env.provider.clone();
    let r2 = r;
    let driver = tokio::spawn(async move {
        loop {
            chain.advance(1);
            sealer.prove_all().await;
            sealer.precommit_all().await;
            if let Ok(Some(d)) = provider.deal(r2).await
                && d.state == S::Active
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    tokio::time::timeout(T, driver).await.unwrap().unwrap();
    wait_for_state(&env.provider, r, S::Active, T)
        .await
        .unwrap();
    assert!(
        env.head() < upgrade,
        "the first deal must be active before the upgrade"
    );

    // Cross the upgrade.
    env.chain
        .advance((upgrade.get() - env.head().get()) as u64 + 1);
    assert_eq!(
        env.chain.network_version().await.unwrap(),
        NetworkVersion::SOLSTICE
    );
    let id = env
        .provider
        .deal(r)
        .await
        .unwrap()
        .unwrap()
        .deal_id
        .unwrap();
    let on_chain = env.chain.market_deal(id).await.unwrap().unwrap();
    assert!(on_chain.state.sector_start_epoch.get() >= 0);
    assert_eq!(
        on_chain.state.slash_epoch.get(),
        -1,
        "claims stay after Solstice"
    );

    // The client refuses to propose a verified deal.
    let (_, piece_cid, size) = env.data_file("w.car", 3000, 2);
    let mut spec = env.offline_spec(piece_cid, size, DealProtocol::V12).await;
    spec.verified = true;
    let err = env
        .client
        .sign_proposal(&spec)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("Solstice") && err.contains("29"), "{err}");

    // The provider rejects one signed by hand, naming the upgrade.
    spec.verified = false;
    let mut cdp = env.client.sign_proposal(&spec).await.unwrap();
    cdp.proposal.verified_deal = true;
    cdp.client_signature = env
        .keys
        .sign_sync(&env.client_addr, &cdp.proposal.to_cbor())
        .unwrap();
    let mut params = storage_market::message::DealParams {
        deal_uuid: storage_market::types::DealUuid::new_v4(),
        is_offline: true,
        client_deal_proposal: cdp,
        deal_data_root: piece_cid,
        transfer: storage_market::message::Transfer::default(),
        remove_unsealed_copy: false,
        skip_ipni_announce: true,
    };
    let res = env
        .provider
        .propose(params.clone(), Protocol::DealV121)
        .await;
    assert!(!res.accepted);
    assert!(
        res.message.contains("FIL+ ended with nv29 Solstice"),
        "{}",
        res.message
    );

    // Unverified deals are unaffected.
    params.client_deal_proposal = env.client.sign_proposal(&spec).await.unwrap();
    params.deal_uuid = storage_market::types::DealUuid::new_v4();
    let res = env.provider.propose(params, Protocol::DealV121).await;
    assert!(res.accepted, "{}", res.message);
}
