//! The Postgres ad store against a real Postgres server: the suite every ad store runs,
//! through two pools (two instances of one provider) on one database, and a provider whose
//! two instances advertise at once, each through its own `IpniProvider`.

use std::sync::Arc;

use libp2p::identity::Keypair;
use market_ipni::store::AdStore;
use market_ipni::{IpniConfig, IpniProvider};
use market_postgres::testing::PgServer;
use market_postgres::{PgAdStore, PgDb};

async fn two_handles(url: &str) -> (Arc<dyn AdStore>, Arc<dyn AdStore>) {
    let (a, b) = tokio::join!(
        PgAdStore::open(PgDb::connect(url, 4).unwrap()),
        PgAdStore::open(PgDb::connect(url, 4).unwrap())
    );
    (Arc::new(a.unwrap()), Arc::new(b.unwrap()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_postgres_ad_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start(&dir.path().join("pg"));
    let (a, b) = two_handles(&server.database("ipni")).await;
    market_ipni::testing::ad_store_conformance(a, b).await;
}

/// Two instances sharing the provider's key advertise different pieces at once, and then the
/// same one: one chain, each piece once, every ad signed by the provider.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_extend_one_chain() {
    let dir = tempfile::tempdir().unwrap();
    let server = PgServer::start(&dir.path().join("pg"));
    let (a, b) = two_handles(&server.database("ipni")).await;
    let key = Keypair::generate_ed25519();
    let config = IpniConfig::default();
    let one = IpniProvider::new(a, key.clone(), config.clone()).unwrap();
    let two = IpniProvider::new(b.clone(), key.clone(), config).unwrap();
    let hash = |n: u8, tag: u8| cid::multihash::Multihash::<64>::wrap(0x12, &[n, tag]).unwrap();
    let piece = move |n: u8| cid::Cid::new_v1(0x55, hash(n, 0));
    let mh = move |n: u8| hash(n, 1).to_bytes();
    let mut tasks = Vec::new();
    for n in 0..20u8 {
        let p = if n % 2 == 0 { one.clone() } else { two.clone() };
        tasks.push(tokio::spawn(async move {
            p.announce_piece(&piece(n), 2048, vec![mh(n)]).await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap().is_some());
    }
    let (p1, p99) = (piece(1), piece(99));
    let (x, y) = tokio::join!(
        one.announce_piece(&p1, 2048, vec![mh(1)]),
        two.announce_piece(&p99, 2048, vec![mh(99)])
    );
    assert!(x.unwrap().is_none(), "piece 1 is advertised already");
    assert!(y.unwrap().is_some());
    let provider = key.public().to_peer_id().to_string();
    let mut next = b.head(&provider).await.unwrap();
    let mut seen = std::collections::HashSet::new();
    while let Some(cid) = next {
        let data = b.block(cid).await.unwrap().unwrap();
        let ad = market_ipni::schema::decode_ad(&data, Some(&cid)).unwrap();
        assert_eq!(
            market_ipni::sign::verify_ad(&ad).unwrap(),
            key.public().to_peer_id()
        );
        assert!(
            seen.insert(ad.context_id.clone()),
            "a piece advertised twice"
        );
        next = ad.previous_id;
    }
    assert_eq!(seen.len(), 21);
    for n in (0..20).chain([99]) {
        assert!(one.is_piece_announced(&piece(n), 2048).await.unwrap());
    }
}
