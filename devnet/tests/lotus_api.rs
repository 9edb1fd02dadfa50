//! The Lotus adapter's suite against the devnet's Lotus API, over real HTTP and WebSocket:
//! permissions and tokens, the faucet cap, locally signed and node-signed messages with their
//! idempotency keys, forged and replayed messages, `ChainNotify`, `WalletSign`, and a restart
//! that keeps the chain.

use std::sync::Arc;
use std::time::Duration;

use devnet::{DevApi, Devnet, DevnetConfig};
use lotus_api::json::{AddressJson, CidJson, SignedMessageJson};
use lotus_api::{
    ApiInfo, Flavor, Journal, LotusChain, LotusChainConfig, NodeWallet, RpcClient, RpcConfig,
    RpcError, Sending,
};
use market_core::chain::{ChainError, ChainNode, Message};
use market_core::deal::{STORAGE_MARKET_ACTOR, method};
use market_core::jwt;
use market_core::message::{SignedMessage, UnsignedMessage};
use market_core::types::{Address, TokenAmount};
use market_core::wallet::{KeyStore, KeyType, PrivateKey, Wallet};

async fn devnet(dir: &std::path::Path) -> Devnet {
    if !dir.join("devnet.toml").exists() {
        let mut c = DevnetConfig::default();
        c.block_time_ms = 20;
        c.sealing_period_ms = 100;
        c.short_deal_terms = true;
        c.faucet_cap_fil = 50;
        devnet::repo::init(dir, &c).unwrap();
    }
    Devnet::start(dir, Some("127.0.0.1:0")).await.unwrap()
}

fn rpc(d: &Devnet, token: Option<String>) -> RpcClient {
    RpcClient::new(d.url.clone(), token, "Filecoin", RpcConfig::default())
}

fn token(dir: &std::path::Path, perms: &[&str]) -> String {
    let secret = hex::decode(
        std::fs::read_to_string(dir.join("jwt.secret"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    jwt::sign(&secret, perms).unwrap()
}

fn local(d: &Devnet, token: Option<String>, keys: &KeyStore) -> LotusChain {
    LotusChain::new(
        rpc(d, token),
        Sending::Local {
            wallet: Arc::new(keys.clone()),
            journal: Journal::in_memory().unwrap(),
        },
        LotusChainConfig::default(),
    )
}

fn add_balance(from: Address, amount: TokenAmount, uuid: Option<uuid::Uuid>) -> Message {
    Message {
        from,
        to: STORAGE_MARKET_ACTOR,
        method: method::ADD_BALANCE,
        params: market_core::cbor::to_vec(&from),
        value: amount,
        max_fee: TokenAmount::from_nano(1_000_000),
        uuid,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn permissions_follow_lotus() {
    let dir = tempfile::tempdir().unwrap();
    let d = devnet(dir.path()).await;
    // Anonymous callers may read...
    let anon = LotusChain::new(rpc(&d, None), Sending::Node, LotusChainConfig::default());
    assert!(anon.head().await.unwrap().get() >= 1000);
    assert_eq!(anon.network_name().await.unwrap(), "devnet");
    // ... and nothing else.
    let someone = PrivateKey::generate(KeyType::Secp256k1).address();
    let err = DevApi::new(&rpc(&d, None))
        .fund(&someone, TokenAmount::from_whole(1))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("missing permission to invoke 'Dev.Fund' (need 'write')"),
        "{err}"
    );
    // A token that does not verify is refused before JSON-RPC.
    let bad = rpc(&d, Some("not.a.token".into()));
    match bad.call::<_, serde_json::Value>("ChainHead", ()).await {
        Err(RpcError::Http { status: 401, .. }) => {}
        other => panic!("{other:?}"),
    }
    // A read token cannot sign with the node's wallet.
    let read = rpc(&d, Some(token(dir.path(), &[jwt::READ])));
    let w = NodeWallet::new(read, Flavor::Lotus);
    let e = w.sign(&someone, b"x").await.unwrap_err().to_string();
    assert!(e.contains("need 'sign'"), "{e}");
    // Unknown methods and wrong arity get go-jsonrpc's codes.
    let admin = rpc(&d, Some(d.token.clone()));
    match admin.call::<_, serde_json::Value>("NoSuchMethod", ()).await {
        Err(RpcError::Rpc { code: -32601, .. }) => {}
        other => panic!("{other:?}"),
    }
    match admin
        .call::<_, serde_json::Value>("StateLookupID", ("f01000",))
        .await
    {
        Err(RpcError::Rpc {
            code: -32602,
            message,
            ..
        }) => assert!(message.contains("wrong param count"), "{message}"),
        other => panic!("{other:?}"),
    }
}

/// The permission of every Filecoin method the devnet serves is Lotus's own.
#[test]
fn permissions_match_lotus_openrpc() {
    let f: serde_json::Value =
        serde_json::from_str(include_str!("../../lotus/tests/data/lotus_openrpc_v1.json")).unwrap();
    let mut checked = 0;
    for (name, m) in f["methods"].as_object().unwrap() {
        if let Some(ours) = devnet::api::permission(name) {
            assert_eq!(ours, m["perm"].as_str().unwrap(), "{name}");
            checked += 1;
        }
    }
    assert!(checked >= 25, "{checked}");
}

#[tokio::test(flavor = "multi_thread")]
async fn messages_are_signed_checked_and_sent_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = devnet(dir.path()).await;
    let write = Some(token(dir.path(), &[jwt::READ, jwt::WRITE]));
    let sign = Some(token(dir.path(), &[jwt::READ, jwt::WRITE, jwt::SIGN]));
    let dev = DevApi::new(&rpc(&d, write.clone()));
    let keys = KeyStore::in_memory();
    let me = keys.generate(KeyType::Secp256k1).unwrap();
    dev.fund(&me, TokenAmount::from_whole(30)).await.unwrap();
    // The faucet is capped per address.
    let e = dev
        .fund(&me, TokenAmount::from_whole(30))
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("faucet cap"), "{e}");

    // Sign locally and push, with a write token only.
    let chain = local(&d, write.clone(), &keys);
    let uuid = uuid::Uuid::new_v4();
    let cid = chain
        .push_message(add_balance(me, TokenAmount::from_whole(2), Some(uuid)))
        .await
        .unwrap();
    // The same uuid again is the same message, not a second top-up.
    let again = chain
        .push_message(add_balance(me, TokenAmount::from_whole(2), Some(uuid)))
        .await
        .unwrap();
    assert_eq!(cid, again);
    let found = chain.wait_message(&cid, 1).await.unwrap();
    assert!(found.receipt.exit_code.is_ok());
    assert_eq!(
        chain.market_balance(&me).await.unwrap().escrow,
        TokenAmount::from_whole(2)
    );
    assert_eq!(chain.get_message(&cid).await.unwrap().nonce, 0);
    let n: u64 = rpc(&d, None)
        .call("MpoolGetNonce", (AddressJson(me),))
        .await
        .unwrap();
    assert_eq!(n, 1);

    // A message signed by another key, or replayed with an old nonce, is refused.
    let thief = PrivateKey::generate(KeyType::Secp256k1);
    let forged = UnsignedMessage {
        version: 0,
        to: thief.address(),
        from: me,
        nonce: 1,
        value: TokenAmount::from_whole(10),
        gas_limit: devnet::chain::GAS_LIMIT,
        gas_fee_cap: TokenAmount::from_nano(1),
        gas_premium: TokenAmount::ZERO,
        method: 0,
        params: vec![],
    };
    let signed = SignedMessage {
        signature: thief.sign(&forged.cid().to_bytes()),
        message: forged.clone(),
    };
    let r: Result<CidJson, _> = rpc(&d, write.clone())
        .call("MpoolPush", (SignedMessageJson::from(&signed),))
        .await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("does not verify"), "{e}");
    let stale = UnsignedMessage { nonce: 0, ..forged };
    let signed = SignedMessage {
        signature: keys.sign(&me, &stale.cid().to_bytes()).await.unwrap(),
        message: stale,
    };
    let r: Result<CidJson, _> = rpc(&d, write.clone())
        .call("MpoolPush", (SignedMessageJson::from(&signed),))
        .await;
    let e = r.unwrap_err().to_string();
    assert!(e.contains("is not its next nonce"), "{e}");

    // MpoolPushMessage signs only with keys in the devnet's wallet.
    let by_node = LotusChain::new(
        rpc(&d, sign.clone()),
        Sending::Node,
        LotusChainConfig::default(),
    );
    let e = by_node
        .push_message(add_balance(me, TokenAmount::from_whole(1), None))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, ChainError::MessageRejected(m) if m.contains("key not found")),
        "{e:?}"
    );
    let held = d.wallet.generate(KeyType::Secp256k1).unwrap();
    dev.fund(&held, TokenAmount::from_whole(10)).await.unwrap();
    let u = uuid::Uuid::new_v4();
    let a = by_node
        .push_message(add_balance(held, TokenAmount::from_whole(1), Some(u)))
        .await
        .unwrap();
    let b = by_node
        .push_message(add_balance(held, TokenAmount::from_whole(1), Some(u)))
        .await
        .unwrap();
    assert_eq!(a, b, "MsgUuid makes MpoolPushMessage idempotent");
    assert!(
        by_node
            .wait_message(&a, 1)
            .await
            .unwrap()
            .receipt
            .exit_code
            .is_ok()
    );
    assert_eq!(
        by_node.market_balance(&held).await.unwrap().escrow,
        TokenAmount::from_whole(1)
    );

    // A max fee below what the message needs is refused with the numbers.
    let mut cheap = add_balance(me, TokenAmount::from_whole(1), None);
    cheap.max_fee = TokenAmount::from_atto(1000);
    let e = chain.push_message(cheap).await.unwrap_err().to_string();
    assert!(e.contains("fee cap too low"), "{e}");

    // WalletSign with a sign token, checked against the key.
    let w = NodeWallet::new(rpc(&d, sign), Flavor::Lotus);
    let sig = w.sign(&held, b"ask bytes").await.unwrap();
    market_core::wallet::verify(&sig, &held, b"ask bytes").unwrap();
}

async fn next(
    rx: &mut tokio::sync::mpsc::Receiver<Vec<lotus_api::json::HeadChangeJson>>,
) -> Vec<lotus_api::json::HeadChangeJson> {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn chain_notify_streams_heads() {
    let dir = tempfile::tempdir().unwrap();
    let d = devnet(dir.path()).await;
    let chain = LotusChain::new(rpc(&d, None), Sending::Node, LotusChainConfig::default());
    let mut rx = chain.chain_notify().await.unwrap();
    let first = next(&mut rx).await;
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].kind, "current");
    let mut last = first[0].val.height;
    for _ in 0..3 {
        let change = next(&mut rx).await;
        assert_eq!(change[0].kind, "apply");
        assert_eq!(change[0].val.height, last + 1);
        last = change[0].val.height;
    }
    // Over plain HTTP a channel method is refused as Lotus refuses it.
    match rpc(&d, None)
        .call::<_, serde_json::Value>("ChainNotify", ())
        .await
    {
        Err(RpcError::Rpc {
            code: -32601,
            message,
            ..
        }) => assert!(message.contains("no out channel"), "{message}"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_devnet_keeps_its_chain() {
    let dir = tempfile::tempdir().unwrap();
    let keys = KeyStore::in_memory();
    let me = keys.generate(KeyType::Secp256k1).unwrap();
    let (epoch, miner) = {
        let d = devnet(dir.path()).await;
        let admin = DevApi::new(&rpc(&d, Some(d.token.clone())));
        admin.fund(&me, TokenAmount::from_whole(5)).await.unwrap();
        let miner = admin.create_miner(&me, &me, 2048).await.unwrap();
        let chain = local(&d, Some(d.token.clone()), &keys);
        let cid = chain
            .push_message(add_balance(me, TokenAmount::from_whole(1), None))
            .await
            .unwrap();
        chain.wait_message(&cid, 0).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let epoch = chain.head().await.unwrap();
        d.stop();
        (epoch, miner)
    };
    let d = devnet(dir.path()).await;
    let info: ApiInfo = d.api_info().parse().unwrap();
    let chain = local(&d, info.token, &keys);
    assert!(chain.head().await.unwrap() >= epoch, "no epoch reset");
    assert_eq!(
        chain.market_balance(&me).await.unwrap().escrow,
        TokenAmount::from_whole(1)
    );
    // The same miner, not a new one.
    let admin = DevApi::new(&rpc(&d, Some(d.token.clone())));
    assert_eq!(admin.create_miner(&me, &me, 2048).await.unwrap(), miner);
    // Nonces continue.
    let cid = chain
        .push_message(add_balance(me, TokenAmount::from_whole(1), None))
        .await
        .unwrap();
    assert_eq!(chain.get_message(&cid).await.unwrap().nonce, 1);
}

/// The sophon-messager path: push by id, the messager signs and sends, a repeated id is the
/// same message.
#[tokio::test(flavor = "multi_thread")]
async fn messager_sends_once_per_id() {
    let dir = tempfile::tempdir().unwrap();
    let d = devnet(dir.path()).await;
    let write = Some(token(dir.path(), &[jwt::READ, jwt::WRITE]));
    let held = d.wallet.generate(KeyType::Secp256k1).unwrap();
    DevApi::new(&rpc(&d, write.clone()))
        .fund(&held, TokenAmount::from_whole(10))
        .await
        .unwrap();
    let messager = RpcClient::new(
        d.url.join("/rpc/v0").unwrap(),
        write.clone(),
        "Message",
        RpcConfig::default(),
    );
    let chain = LotusChain::new(
        rpc(&d, write),
        Sending::Messager(messager),
        LotusChainConfig::default(),
    );
    let u = uuid::Uuid::new_v4();
    let a = chain
        .push_message(add_balance(held, TokenAmount::from_whole(1), Some(u)))
        .await
        .unwrap();
    let b = chain
        .push_message(add_balance(held, TokenAmount::from_whole(1), Some(u)))
        .await
        .unwrap();
    assert_eq!(a, b);
    assert!(
        chain
            .wait_message(&a, 1)
            .await
            .unwrap()
            .receipt
            .exit_code
            .is_ok()
    );
    assert_eq!(
        chain.market_balance(&held).await.unwrap().escrow,
        TokenAmount::from_whole(1)
    );
}
