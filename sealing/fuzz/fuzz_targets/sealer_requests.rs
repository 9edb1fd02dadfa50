//! Any JSON-RPC call a sealer sends reaches an answer, never a panic or a hang: the method
//! name, every method's params, with every permission held, against a real deal store,
//! piece store and index, and a dev chain with one miner.
#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sealing::{ApiVersion, SealerApi};

struct World {
    rt: tokio::runtime::Runtime,
    api: SealerApi,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let chain = devnet::DevChain::new(devnet::DevChainConfig::default());
        let key: market_core::types::Address =
            "f15ihq5ibzwki2b4ep2f46avlkrqzhpqgtga7pdrq".parse().unwrap();
        let miner = chain.create_miner(&key, &key, 2048);
        let api = SealerApi::new(
            Arc::new(storage_market::store::SqliteDealStore::in_memory().unwrap()),
            Arc::new(chain),
            Arc::new(piecestore::FsPieceStore::open(dir.path()).unwrap()),
            Arc::new(piecestore::SqlitePieceIndex::open(&dir.path().join("index.db")).unwrap()),
            vec![miner],
        );
        World { rt, api, _dir: dir }
    })
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    let Ok(req) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let method = req["method"].as_str().unwrap_or_default().to_string();
    let params = req["params"].as_array().cloned().unwrap_or_default();
    let version = if req["v0"].as_bool() == Some(true) {
        ApiVersion::V0
    } else {
        ApiVersion::V1
    };
    let all: Vec<String> = market_core::jwt::ALL.iter().map(|p| p.to_string()).collect();
    w.rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(5),
            sealing::api::dispatch(&w.api, &all, &method, &params, version),
        )
        .await
        .expect("a request hung");
    });
});
