//! Any request body reaches an answer, never a panic or a hang: the JSON-RPC envelope, every
//! method's params, with all permissions held. The chain's clock is stopped and the wallet
//! is empty, so nothing the fuzzer sends can make a call wait for an epoch.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fn world() -> &'static (tokio::runtime::Runtime, devnet::api::ApiState) {
    static W: OnceLock<(tokio::runtime::Runtime, devnet::api::ApiState)> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let chain = devnet::DevChain::new(devnet::DevChainConfig::default());
        let state = devnet::api::ApiState::new(
            chain,
            market_core::wallet::KeyStore::in_memory(),
            vec![7; 32],
            market_core::types::TokenAmount::from_whole(100),
            1,
        );
        (rt, state)
    })
}

fuzz_target!(|data: &[u8]| {
    let (rt, state) = world();
    let all: Vec<String> = market_core::jwt::ALL.iter().map(|p| p.to_string()).collect();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), devnet::api::call(state, &all, data))
            .await
            .expect("a request hung");
    });
});
