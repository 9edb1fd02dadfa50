//! A deal the sealer said it would put in one sector is snapped into another (a proven
//! committed-capacity sector, `ProveReplicaUpdates3`): the provider takes the sector from the
//! chain (`StateMarketStorageDeal`'s `SectorNumber`) into the deal and the piece index.

mod harness;

use std::time::Duration;

use harness::Env;
use storage_market::chain::ChainNode;
use storage_market::provider::{DealRef, wait_for_state};
use storage_market::state::StorageDealStatus as S;
use storage_market::types::SectorNumber;

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread")]
async fn a_snapped_deal_lives_in_the_sector_the_chain_names() {
    let env = Env::start(|_| {}, true).await;
    let (path, piece_cid, size) = env.data_file("payload.car", 3000, 9);
    let spec = env
        .offline_spec(piece_cid, size, storage_market::client::DealProtocol::V12)
        .await;
    let deal = env.client.propose_deal(&env.peer, &spec).await.unwrap();
    let r = DealRef::ProposalCid(deal.proposal_cid);
    env.provider.import_data(r, &path).await.unwrap();
    let waiting = wait_for_state(&env.provider, r, S::AwaitingPreCommit, T)
        .await
        .unwrap();
    let planned = waiting.sector.expect("the dev sealer placed it");

    let cc = SectorNumber(planned.0 + 1000);
    env.chain.commit_cc_sector(&env.miner, cc).unwrap();
    env.chain
        .snap_deals(&env.miner, cc, &[waiting.deal_id.unwrap()])
        .unwrap();
    let active = wait_for_state(&env.provider, r, S::Active, T)
        .await
        .unwrap();
    assert_eq!(
        active.sector,
        Some(cc),
        "the chain's sector wins over the plan"
    );
    let on_chain = env
        .chain
        .market_deal(active.deal_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(on_chain.sector, Some(cc));
    let sector = env.chain.sector(&env.miner, cc).await.unwrap().unwrap();
    assert_eq!(sector.stage, storage_market::chain::SectorStage::Proven);
    assert!(
        sector.unsealed_cid.is_some(),
        "the snap declared new content"
    );
}
