//! Our publisher against a real indexer (storetheindex, built by scripts/go-peers/install):
//! it syncs our chain over HTTP, verifies our signatures, indexes every multihash of a piece
//! cut into several entry chunks, confirms through its ad status endpoint, finds us with our
//! metadata and context id, and forgets the piece after our removal ad. A restarted
//! publisher serves the same chain.

use std::time::Duration;

use cid::Cid;
use libp2p::identity::Keypair;
use market_ipni::context::piece_context_id;
use market_ipni::find;
use market_ipni::metadata::{self, Transport};
use market_ipni::store::SqliteAdStore;
use market_ipni::testing::{Indexer, free_port};
use market_ipni::{IpniConfig, IpniProvider};
use sha2::{Digest, Sha256};

const BLOCKS: usize = 40_000;

fn multihashes(n: usize, salt: u8) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            let mut m = vec![0x12, 0x20];
            m.extend_from_slice(&Sha256::digest(
                [&[salt][..], &(i as u64).to_le_bytes()].concat(),
            ));
            m
        })
        .collect()
}

async fn serve(
    provider: &IpniProvider,
    listener: tokio::net::TcpListener,
) -> tokio::task::JoinHandle<()> {
    let app = provider.router();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    })
}

async fn wait_confirmed(provider: &IpniProvider, piece: &Cid, ads: usize, indexer: &Indexer) {
    for _ in 0..1200 {
        let s = provider.piece_ads(piece).await.unwrap();
        if s.len() == ads && s.iter().all(|a| a.indexed_at.is_some()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "not confirmed: {:?}\nindexer log:\n{}",
        provider.piece_ads(piece).await.unwrap(),
        indexer.log_tail()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storetheindex_ingests_finds_and_forgets_a_piece() {
    let indexer = Indexer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let http: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}/http").parse().unwrap();
    let key = Keypair::generate_ed25519();
    let config = IpniConfig::default()
        .with_announce_urls(vec![indexer.announce_url()])
        .with_http_addrs(vec![http.clone()])
        .with_find_url(Some(indexer.find.clone()))
        .with_tick(Duration::from_millis(200));
    let provider = IpniProvider::new(
        std::sync::Arc::new(SqliteAdStore::open(&dir.path().join("ipni.db")).unwrap()),
        key.clone(),
        config.clone(),
    )
    .unwrap();
    let server = serve(&provider, listener).await;
    let worker = provider.spawn();

    let piece: Cid = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
        .parse()
        .unwrap();
    let size = 64u64 << 20;
    let mhs = multihashes(BLOCKS, 1);
    let ad = provider
        .announce_piece(&piece, size, mhs.clone())
        .await
        .unwrap()
        .expect("a new ad");
    // Announcing again changes nothing.
    assert_eq!(
        provider
            .announce_piece(&piece, size, mhs.clone())
            .await
            .unwrap(),
        None
    );
    wait_confirmed(&provider, &piece, 1, &indexer).await;
    let status = &provider.piece_ads(&piece).await.unwrap()[0];
    assert_eq!((status.ad, status.entries), (ad, BLOCKS as u64));
    assert!(status.announced_at.unwrap() <= status.indexed_at.unwrap());

    let http_client = reqwest::Client::new();
    let me = key.public().to_peer_id().to_string();
    for i in [0, 1, BLOCKS / 2, BLOCKS - 1] {
        let recs = find::find(&http_client, &indexer.find, &mhs[i])
            .await
            .unwrap();
        let ours: Vec<_> = recs.iter().filter(|r| r.provider == me).collect();
        assert_eq!(ours.len(), 1, "multihash {i}: {recs:?}");
        assert_eq!(ours[0].context_id, piece_context_id(size, &piece));
        assert_eq!(
            metadata::decode(&ours[0].metadata).unwrap(),
            [Transport::IpfsGatewayHttp, Transport::FilecoinPieceHttp]
        );
        assert_eq!(ours[0].addrs, [http.to_string()]);
    }
    // Something never advertised is not found.
    let other = multihashes(1, 2);
    assert!(
        find::find(&http_client, &indexer.find, &other[0])
            .await
            .unwrap()
            .is_empty()
    );

    // Restart: a new provider on the same store and port serves the same head.
    worker.abort();
    server.abort();
    let _ = server.await;
    drop(provider);
    let provider = IpniProvider::new(
        std::sync::Arc::new(SqliteAdStore::open(&dir.path().join("ipni.db")).unwrap()),
        key.clone(),
        config,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let _server = serve(&provider, listener).await;
    let head = http_client
        .get(format!("http://127.0.0.1:{port}/ipni/v1/ad/head"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let (head, signer) = market_ipni::sign::SignedHead::decode_verified(&head).unwrap();
    assert_eq!((head.head, signer.to_string()), (ad, me.clone()));
    assert!(provider.is_piece_announced(&piece, size).await.unwrap());
    let _worker = provider.spawn();

    let rm = provider
        .remove_piece(&piece, size)
        .await
        .unwrap()
        .expect("a removal ad");
    assert_ne!(rm, ad);
    assert_eq!(provider.remove_piece(&piece, size).await.unwrap(), None);
    wait_confirmed(&provider, &piece, 2, &indexer).await;
    for i in [0, BLOCKS - 1] {
        let recs = find::find(&http_client, &indexer.find, &mhs[i])
            .await
            .unwrap();
        assert!(
            recs.iter().all(|r| r.provider != me),
            "still found after removal: {recs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_indexer_is_backed_off_and_its_error_kept() {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let http: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}/http").parse().unwrap();
    // Nothing listens there yet.
    let ingest_port = free_port();
    let announce: url::Url = format!("http://127.0.0.1:{ingest_port}/announce")
        .parse()
        .unwrap();
    let provider = IpniProvider::new(
        std::sync::Arc::new(SqliteAdStore::open(&dir.path().join("ipni.db")).unwrap()),
        Keypair::generate_ed25519(),
        IpniConfig::default()
            .with_announce_urls(vec![announce.clone()])
            .with_http_addrs(vec![http]),
    )
    .unwrap();
    let _server = serve(&provider, listener).await;
    let piece: Cid = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
        .parse()
        .unwrap();
    provider
        .announce_piece(&piece, 2048, multihashes(10, 3))
        .await
        .unwrap()
        .unwrap();
    let r = provider.run_once().await.unwrap();
    assert_eq!((r.announced, r.announce_failures), (0, 1));
    // Backing off: an immediate second round does not try again.
    let r = provider.run_once().await.unwrap();
    assert_eq!((r.announced, r.announce_failures), (0, 0));
    let errors = provider.store().announce_errors().await.unwrap();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        provider.piece_ads(&piece).await.unwrap()[0]
            .announced_at
            .is_none()
    );
}

/// Two identities (as two miners have) on one store and one publisher: the second announces
/// its chain under `/ipni-provider/{peer}`. The indexer syncs both, and finds each piece
/// under the identity that advertised it, and a piece both advertised under both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_identities_share_a_publisher_and_are_indexed_apart() {
    let indexer = Indexer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let http: libp2p::Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}/http").parse().unwrap();
    let store: std::sync::Arc<dyn market_ipni::store::AdStore> =
        std::sync::Arc::new(SqliteAdStore::open(&dir.path().join("ipni.db")).unwrap());
    let config = IpniConfig::default()
        .with_announce_urls(vec![indexer.announce_url()])
        .with_http_addrs(vec![http.clone()])
        .with_find_url(Some(indexer.find.clone()))
        .with_tick(Duration::from_millis(200));
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let a = IpniProvider::new(store.clone(), ka.clone(), config.clone()).unwrap();
    let b = IpniProvider::new(store, kb.clone(), config.with_peer_path(true)).unwrap();
    assert!(
        b.publisher_addrs()[0]
            .to_string()
            .ends_with(&format!("/http-path/%2Fipni-provider%2F{}", b.peer_id())),
        "{:?}",
        b.publisher_addrs()
    );
    let app = market_ipni::publisher::routes(&[a.clone(), b.clone()]);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let _workers = (a.spawn(), b.spawn());

    let piece = |n: u8| -> Cid {
        let mh = cid::multihash::Multihash::<64>::wrap(0x1012, &[n; 32]).unwrap();
        Cid::new_v1(0xf101, mh)
    };
    let size = 1u64 << 20;
    let (only_a, only_b, both) = (
        multihashes(10, 11),
        multihashes(10, 12),
        multihashes(10, 13),
    );
    a.announce_piece(&piece(1), size, only_a.clone())
        .await
        .unwrap();
    b.announce_piece(&piece(2), size, only_b.clone())
        .await
        .unwrap();
    a.announce_piece(&piece(3), size, both.clone())
        .await
        .unwrap();
    b.announce_piece(&piece(3), size, both.clone())
        .await
        .unwrap();
    wait_confirmed(&a, &piece(1), 1, &indexer).await;
    wait_confirmed(&b, &piece(2), 1, &indexer).await;
    wait_confirmed(&a, &piece(3), 2, &indexer).await;

    let http_client = reqwest::Client::new();
    let providers = |mh: Vec<u8>| {
        let (client, find) = (http_client.clone(), indexer.find.clone());
        async move {
            let mut p: Vec<String> = find::find(&client, &find, &mh)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.provider)
                .collect();
            p.sort();
            p
        }
    };
    let (pa, pb) = (a.peer_id().to_string(), b.peer_id().to_string());
    assert_eq!(providers(only_a[0].clone()).await, vec![pa.clone()]);
    assert_eq!(providers(only_b[9].clone()).await, vec![pb.clone()]);
    let mut want = vec![pa, pb];
    want.sort();
    assert_eq!(providers(both[5].clone()).await, want);
}
