//! The quote protocol between two real libp2p hosts, the provider reading a devnet chain:
//! a signed quote the broker verifies and a deal within it, declines that say why, a
//! quote checked against the wrong worker refused, and a policy changed at run time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use devnet::chain::{DevChain, DevChainConfig};
use market_broker::quote::{QuoteRequest, SignedQuoteRequest, within_quote};
use market_broker::serve::{AskQuoteError, QuoteProvider, request_quote, serve, worker_key};
use market_broker::{BiddingPolicy, ClientRule};
use market_core::chain::ChainNode;
use market_core::host::{Host, HostConfig};
use market_core::libp2p::identity::Keypair;
use market_core::types::{Address, TokenAmount};
use market_core::wallet::{KeyStore, KeyType, Wallet};

const GIB: u64 = 1 << 30;

async fn host(listen: bool) -> Host {
    let mut cfg = HostConfig::default();
    if listen {
        cfg = cfg.with_listen(["/ip4/127.0.0.1/tcp/0".parse().unwrap()]);
    }
    Host::start(Keypair::generate_ed25519(), cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_gets_a_signed_quote_or_the_reason_there_is_none() {
    let chain = DevChain::new(DevChainConfig::default());
    let keys = KeyStore::in_memory();
    let worker = keys.generate(KeyType::Secp256k1).unwrap();
    let owner = keys.generate(KeyType::Secp256k1).unwrap();
    chain.fund(&worker, TokenAmount::from_whole(10));
    chain.fund(&owner, TokenAmount::from_whole(10));
    let miner = chain.create_miner(&owner, &worker, 32 << 30);
    let client_keys = KeyStore::in_memory();
    let client = client_keys.generate(KeyType::Bls).unwrap();
    let client_id = chain.fund(&client, TokenAmount::from_whole(10));
    let refused = client_keys.generate(KeyType::Secp256k1).unwrap();
    chain.fund(&refused, TokenAmount::from_whole(1));

    let mut policy = BiddingPolicy::default();
    policy.price_per_gib_epoch = TokenAmount::from_atto(1_000);
    policy.min_duration = 100;
    policy.start_lead = 50;
    policy.clients.insert(refused, ClientRule::Decline);
    let free = Arc::new(AtomicU64::new(40 * GIB));
    let capacity = {
        let free = free.clone();
        Arc::new(move || free.load(Ordering::Relaxed))
    };
    let chain: Arc<dyn ChainNode> = Arc::new(chain);
    let provider = QuoteProvider::new(chain.clone(), Arc::new(keys), vec![miner], policy, capacity);
    let provider_host = host(true).await;
    let _service = serve(&provider_host, provider.clone()).unwrap();
    let broker = host(false).await;
    let peer = provider_host.addr();
    let head = chain.head().await.unwrap();
    let worker_key = worker_key(chain.as_ref(), &miner).await.unwrap();

    let sign = |by: Address, req: QuoteRequest| {
        let keys = &client_keys;
        async move {
            SignedQuoteRequest {
                signature: keys.sign(&by, &req.to_cbor()).await.unwrap(),
                request: req,
            }
        }
    };
    // Named by its id address, signed by its key: the provider resolves the key on chain.
    let req = QuoteRequest::new(
        miner,
        client_id,
        4 * GIB,
        1_000,
        false,
        head,
        head.plus(10_000),
        1,
    );
    let signed = sign(client, req.clone()).await;
    let q = request_quote(&broker, &peer, &signed, &worker_key, head)
        .await
        .unwrap();
    assert_eq!(q.quote.price_per_epoch, TokenAmount::from_atto(4_000));
    assert_eq!(q.quote.remaining_capacity, 36 * GIB);
    assert_eq!(q.quote.earliest_start, head.plus(50));
    assert!(
        q.quote.collateral > TokenAmount::ZERO,
        "the chain's minimum"
    );
    // A deal on those terms is within the quote.
    let proposal = market_core::deal::DealProposal {
        piece_cid: "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
            .parse()
            .unwrap(),
        piece_size: req.piece_size,
        verified_deal: false,
        client: client_id,
        provider: miner,
        label: Default::default(),
        start_epoch: q.quote.earliest_start,
        end_epoch: q.quote.earliest_start.plus(1_000),
        storage_price_per_epoch: q.quote.price_per_epoch,
        provider_collateral: q.quote.collateral,
        client_collateral: TokenAmount::ZERO,
    };
    within_quote(&proposal, &req, &q.quote, head).unwrap();

    // Declines carry their reason: capacity, a refused client, another miner, a forgery.
    free.store(GIB, Ordering::Relaxed);
    let declined = |e: AskQuoteError| match e {
        AskQuoteError::Declined(m) => m,
        other => panic!("expected a decline, got {other}"),
    };
    let m = declined(
        request_quote(&broker, &peer, &signed, &worker_key, head)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("bytes free"), "{m}");
    free.store(40 * GIB, Ordering::Relaxed);
    let mut theirs = req.clone();
    theirs.client = refused;
    let m = declined(
        request_quote(
            &broker,
            &peer,
            &sign(refused, theirs).await,
            &worker_key,
            head,
        )
        .await
        .unwrap_err(),
    );
    assert!(m.contains("does not take deals from this client"), "{m}");
    let mut elsewhere = req.clone();
    elsewhere.provider = Address::new_id(99_999);
    let m = declined(
        request_quote(
            &broker,
            &peer,
            &sign(client, elsewhere).await,
            &worker_key,
            head,
        )
        .await
        .unwrap_err(),
    );
    assert!(m.contains("does not serve miner"), "{m}");
    let mut forged = signed.clone();
    forged.request.piece_size = 8 * GIB;
    let m = declined(
        request_quote(&broker, &peer, &forged, &worker_key, head)
            .await
            .unwrap_err(),
    );
    assert!(m.contains("bad signature"), "{m}");

    // A quote checked against another worker key is refused by the broker.
    let other = KeyStore::in_memory().generate(KeyType::Secp256k1).unwrap();
    assert!(matches!(
        request_quote(&broker, &peer, &signed, &other, head).await,
        Err(AskQuoteError::Invalid(_))
    ));

    // A new policy takes effect at the next request.
    let mut dearer = BiddingPolicy::default();
    dearer.price_per_gib_epoch = TokenAmount::from_atto(2_000);
    dearer.min_duration = 100;
    provider.set_policy(dearer);
    let q = request_quote(&broker, &peer, &signed, &worker_key, head)
        .await
        .unwrap();
    assert_eq!(q.quote.price_per_epoch, TokenAmount::from_atto(8_000));
    assert_eq!(q.quote.request, req.digest());
}
