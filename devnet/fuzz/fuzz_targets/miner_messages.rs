//! Any params of a sector message (`PreCommitSectorBatch2`, `ProveCommitSectors3`) sent to a
//! miner are decoded with a size limit and either applied or refused with an exit code,
//! never a panic. The first byte picks the method; the rest are the params. Each input gets
//! a fresh chain, so state (and memory) does not pile up across runs.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use market_core::chain::{ChainNode, Message};
use market_core::types::{Address, TokenAmount};

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let rt = runtime();
    let chain = devnet::DevChain::new(devnet::DevChainConfig::default());
    let key: Address = "f15ihq5ibzwki2b4ep2f46avlkrqzhpqgtga7pdrq".parse().unwrap();
    chain.fund(&key, TokenAmount::from_whole(1_000_000_000));
    let miner = chain.create_miner(&key, &key, 2048);
    let (key, miner) = (&key, &miner);
    let Some((&pick, params)) = data.split_first() else {
        return;
    };
    let method = match pick % 3 {
        0 => market_core::miner::method::PRE_COMMIT_SECTOR_BATCH2,
        1 => market_core::miner::method::PROVE_COMMIT_SECTORS3,
        _ => u64::from(pick),
    };
    let msg = Message {
        from: *key,
        to: *miner,
        method,
        params: params.to_vec(),
        value: TokenAmount::ZERO,
        max_fee: TokenAmount::from_whole(1),
        uuid: None,
    };
    rt.block_on(async {
        let _ = chain.push_message(msg).await;
    });
    chain.advance(1);
});
