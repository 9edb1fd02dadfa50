//! The node checks what `[chain]` says against the chain before serving: the network name and
//! each miner's worker.

use market_node::config::NodeConfig;
use market_node::node::{self, MarketNode};

async fn standalone_devnet(dir: &std::path::Path) -> devnet::Devnet {
    let mut c = devnet::DevnetConfig::default();
    c.block_time_ms = 50;
    devnet::repo::init(dir, &c).unwrap();
    devnet::Devnet::start(dir, Some("127.0.0.1:0"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_network_or_worker_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = standalone_devnet(&dir.path().join("devnet")).await;

    let mut cfg = NodeConfig::local_dev();
    cfg.chain.api = Some(d.api_info());
    cfg.chain.network = "calibnet".into();
    let repo = dir.path().join("a");
    node::init(&repo, Some(cfg)).unwrap();
    let err = MarketNode::start(&repo).await.err().expect("must refuse");
    let text = market_core::report(&err);
    assert!(
        text.contains("network = \"calibnet\"") && text.contains("\"devnet\""),
        "{text}"
    );

    // A miner address whose worker on chain is not the configured one.
    let other = d.chain.fund(
        &market_core::wallet::PrivateKey::generate(market_core::wallet::KeyType::Secp256k1)
            .address(),
        market_core::types::TokenAmount::from_whole(1),
    );
    let someone_elses = d.chain.create_miner(&other, &other, 2048);
    let mut cfg = NodeConfig::local_dev();
    cfg.chain.api = Some(d.api_info());
    let repo = dir.path().join("b");
    let mut cfg = node::init(&repo, Some(cfg)).unwrap();
    cfg.miners[0].address = Some(someone_elses.to_string());
    cfg.save(&node::Repo(repo.clone()).config()).unwrap();
    let err = MarketNode::start(&repo).await.err().expect("must refuse");
    let text = market_core::report(&err);
    assert!(text.contains("worker on chain is"), "{text}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sealing_modes_that_cannot_work_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let d = standalone_devnet(&dir.path().join("devnet")).await;
    for (mode, api, want) in [
        ("lotus-miner", true, "needs miner_api"),
        (
            "sideways",
            false,
            "use \"pull\", \"lotus-miner\" or \"dev\"",
        ),
    ] {
        let mut cfg = NodeConfig::local_dev();
        if api {
            cfg.chain.api = Some(d.api_info());
        }
        cfg.sealing.mode = mode.into();
        let repo = dir.path().join(mode);
        node::init(&repo, Some(cfg)).unwrap();
        let Err(err) = MarketNode::start(&repo).await else {
            panic!("{mode} must be refused");
        };
        let text = market_core::report(&err);
        assert!(text.contains(want), "{mode}: {text}");
    }
    // In the pull model (the default on a real chain) the sealer API is served and its
    // address written for sealer operators.
    let mut cfg = NodeConfig::local_dev();
    cfg.chain.api = Some(d.api_info());
    cfg.sealing.mode = "pull".into();
    let repo = dir.path().join("pull");
    node::init(&repo, Some(cfg)).unwrap();
    let n = MarketNode::start(&repo).await.unwrap();
    let info = std::fs::read_to_string(node::Repo(repo.clone()).sealer_api_info()).unwrap();
    let (token, addr) = info.split_once(':').unwrap();
    assert!(
        addr.starts_with("/ip4/127.0.0.1/tcp/") && addr.ends_with("/http"),
        "{addr}"
    );
    let v = market_node::admin::call_remote(
        &n.http_url,
        token,
        "VENUS_MARKET.ActorList",
        serde_json::json!([]),
    )
    .await
    .unwrap();
    assert_eq!(v[0]["Addr"], n.miners[0].to_string());
    n.stop();
}
