//! Two `provider` processes as instances of one market node (`[cluster]`): one Postgres, one
//! S3 server, one devnet process they both reach as a Lotus node, the same miner, keys and
//! libp2p identity. Fifty deals, online and offline, made with both; one instance killed
//! with kill -9 mid-way. Every deal reaches Active exactly once (one Active in its
//! timeline, one deal id, one on-chain deal per proposal), and the survivor serves every
//! piece from S3. Both advertise to a real storetheindex through one ad chain in Postgres:
//! the indexer finds every payload under the miner's peer id, and the chain is one signed
//! line with each piece put once.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use market_core::chain::ChainNode;
use market_core::cid::PieceCidExt;
use market_core::types::DealId;
use market_ipni::store::AdStore;
use market_node::client::{self, DealTerms};
use market_node::config::{NodeConfig, PieceStoreSection, S3StoreSection};
use piecestore::unixfs::ImportProfile;
use serde_json::json;

mod common;
use common::{Daemon, free_port, list_deals, read_token, run_ok, spawn, wait_for};

const DEALS: usize = 50;

/// One instance's repo, configured for the shared servers.
struct Instance {
    repo: PathBuf,
    log: PathBuf,
}

impl Instance {
    fn start(&self) -> (Daemon, url::Url) {
        let _ = std::fs::remove_file(self.repo.join("api"));
        let d = spawn(
            env!("CARGO_BIN_EXE_provider"),
            &["--repo", self.repo.to_str().unwrap(), "run"],
            &self.log,
        );
        let http = url::Url::parse(&wait_for(&self.repo.join("api"))).unwrap();
        (d, http)
    }
}

/// `[cluster]` settings for `instance` on the shared servers, with fresh loopback ports.
fn configure(repo: &Path, instance: &str, shared: &Shared, miner: Option<&str>) {
    let Shared {
        api,
        pg,
        s3,
        announce,
        find,
    } = shared;
    let path = repo.join("config.toml");
    let mut cfg = NodeConfig::load(&path).unwrap();
    cfg.http.listen = format!("127.0.0.1:{}", free_port());
    cfg.libp2p.listen = vec![format!("/ip4/127.0.0.1/tcp/{}", free_port())];
    cfg.chain.api = Some(api.clone());
    cfg.chain.messaging = "node".into();
    cfg.chain.short_deal_terms = true;
    cfg.chain.confidence = 1;
    cfg.publish.period_secs = 0;
    cfg.storage.allow_private_transfers = true;
    cfg.filters.expected_seal_hours = 0.1;
    cfg.ipni.enabled = true;
    cfg.ipni.announce_urls = vec![announce.clone()];
    cfg.ipni.find_url = Some(find.clone());
    cfg.ipni.check_ingest = true;
    cfg.ipni.reconcile_secs = 1;
    let mut store = S3StoreSection::new("s3", "market");
    store.endpoint = Some(s3.clone());
    store.region = Some("us-east-1".into());
    store.access_key = Some(piecestore::testing::ACCESS_KEY.into());
    store.secret_key = Some(piecestore::testing::SECRET_KEY.into());
    cfg.storage.stores = vec![PieceStoreSection::S3(store)];
    cfg.database.postgres = Some(pg.clone());
    cfg.cluster.instance = instance.into();
    cfg.cluster.lease_secs = 3;
    if let Some(m) = miner {
        cfg.miners[0].address = Some(m.to_string());
    }
    cfg.save(&path).unwrap();
}

/// What both instances are configured with.
struct Shared {
    api: String,
    pg: String,
    s3: String,
    announce: String,
    find: String,
}

/// A deal as the test made it.
struct Made {
    uuid: String,
    /// The instance it was proposed to (0: a, 1: b).
    at: usize,
    /// The CAR to import, for an offline deal.
    offline: Option<PathBuf>,
    car: Vec<u8>,
    piece: String,
    /// The payload root.
    root: market_core::Cid,
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

fn count(ds: &[serde_json::Value], states: &[&str]) -> usize {
    ds.iter()
        .filter(|d| states.contains(&d["State"].as_str().unwrap_or_default()))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_one_killed_every_deal_active_once() {
    let dir = tempfile::tempdir().unwrap();
    let s3 = piecestore::testing::S3Server::start(&dir.path().join("s3"));
    s3.bucket("market");
    let pg = market_postgres::testing::PgServer::start(&dir.path().join("pg"));
    let pg_url = pg.database("market");

    // The devnet signs the worker's messages (`MpoolPushMessage`): it holds the miner's
    // keys, which instance a created.
    let chain_repo = dir.path().join("chain");
    common::init_fast_devnet(&chain_repo, &format!("127.0.0.1:{}", free_port()));
    let a = Instance {
        repo: dir.path().join("a"),
        log: dir.path().join("a.log"),
    };
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_provider"))
            .arg("--repo")
            .arg(&a.repo)
            .arg("init"),
    );
    for e in std::fs::read_dir(a.repo.join("keys")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), chain_repo.join("keys").join(e.file_name())).unwrap();
    }
    let _chain = spawn(
        env!("CARGO_BIN_EXE_devnet"),
        &["--repo", chain_repo.to_str().unwrap(), "run"],
        &dir.path().join("devnet.log"),
    );
    let api_info = wait_for(&chain_repo.join("api-info"));

    // b is a copy of a's repo (keys, libp2p identity, tokens) before a first ran.
    let b = Instance {
        repo: dir.path().join("b"),
        log: dir.path().join("b.log"),
    };
    copy_dir(&a.repo, &b.repo);
    let indexer = market_ipni::testing::Indexer::start().await;
    let shared = Shared {
        api: api_info.clone(),
        pg: pg_url.clone(),
        s3: s3.endpoint().to_string(),
        announce: indexer.announce_url().to_string(),
        find: indexer.find.to_string(),
    };
    configure(&a.repo, "a", &shared, None);
    let (mut daemon_a, http_a) = a.start();
    let admin = read_token(&a.repo.join("token"));
    let (peer_a, miner) = common::provider_peer(&http_a, &admin).await;
    let miner_s = miner.to_string();
    configure(&b.repo, "b", &shared, Some(&miner_s));
    let (_daemon_b, http_b) = b.start();
    let (peer_b, miner_b) = common::provider_peer(&http_b, &admin).await;
    assert_eq!(miner_b, miner);
    assert_eq!(peer_a.peer_id, peer_b.peer_id, "one identity for the miner");

    // Two clients, one talking to each instance.
    let api: lotus_api::ApiInfo = api_info.parse().unwrap();
    let clients = [
        common::funded_client(&dir.path().join("c1"), &api, 200, 50).await,
        common::funded_client(&dir.path().join("c2"), &api, 200, 50).await,
    ];
    let peers = [&peer_a, &peer_b];

    // MinerInfo lists both instances: a's addresses, then b's, under their one peer id.
    let mut set = Command::new(env!("CARGO_BIN_EXE_provider"));
    set.arg("--repo")
        .arg(&a.repo)
        .args(["actor", "set-peer-info"]);
    for addr in &peer_b.addrs {
        set.arg("--addr").arg(addr.to_string());
    }
    run_ok(&mut set);
    let on_chain = clients[0].miner_peer(&miner).await.unwrap();
    assert_eq!(on_chain.peer_id, peer_a.peer_id);
    for addr in peer_a.addrs.iter().chain(&peer_b.addrs) {
        assert!(on_chain.addrs.contains(addr), "{addr} not in {on_chain:?}");
    }
    let (server, car_base) = common::car_server().await;

    let mut made: Vec<Made> = Vec::new();
    for i in 0..DEALS {
        let online = i % 2 == 0;
        let at = (i / 2) % 2;
        let file = dir.path().join(format!("d{i}.bin"));
        client::generate_file(&file, 20_000 + 3_000 * i as u64, i as u64).unwrap();
        let car = dir.path().join(format!("d{i}.car"));
        let p = client::prepare(&file, &car, ImportProfile::LOTUS, &mut |_| {}).unwrap();
        let transfer = online.then(|| {
            common::online_transfer(
                &server,
                &car_base,
                &format!("t{i}"),
                &car,
                p.import.car_size,
            )
        });
        let c = &clients[at];
        let spec = c
            .spec(
                peers[at],
                DealTerms {
                    miner,
                    piece_cid: p.piece.piece_cid(),
                    piece_size: p.piece.padded_size,
                    root: p.root,
                    start_in: 900,
                    duration: 1000,
                    verified: false,
                    transfer,
                },
            )
            .await
            .unwrap();
        let deal = c.storage.propose_deal(peers[at], &spec).await.unwrap();
        made.push(Made {
            uuid: deal.deal_uuid.to_string(),
            at,
            offline: (!online).then_some(car.clone()),
            car: std::fs::read(&car).unwrap(),
            piece: p.piece.piece_cid().to_string(),
            root: p.root,
        });
    }
    let import = |http: url::Url, uuid: String, car: PathBuf| {
        let admin = admin.clone();
        async move {
            market_node::admin::call_remote(
                &http,
                &admin,
                "Market.ImportData",
                json!([uuid, car.to_string_lossy()]),
            )
            .await
        }
    };
    // The offline deals of the first half get their data through the instance they were
    // made with; the rest wait for the kill.
    for m in &made[..DEALS / 2] {
        if let Some(car) = &m.offline {
            let http = if m.at == 0 { &http_a } else { &http_b };
            import(http.clone(), m.uuid.clone(), car.clone())
                .await
                .unwrap();
        }
    }

    // Kill a once deals are under way but not done.
    let deadline = Instant::now() + Duration::from_secs(120);
    let before_kill = loop {
        let ds = list_deals(&http_b, &admin).await;
        let published = count(
            &ds,
            &[
                "StorageDealStaged",
                "StorageDealAwaitingPreCommit",
                "StorageDealSealing",
                "StorageDealActive",
            ],
        );
        if published >= 8 {
            break ds;
        }
        assert!(
            Instant::now() < deadline,
            "no progress before the kill:\n{}",
            common::log_tail(&a.log, 40)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    daemon_a.kill9();
    let unfinished = DEALS - count(&before_kill, &["StorageDealActive"]);
    // Deals a was driving: made with a, with their data, not yet Active.
    let a_was_driving = made
        .iter()
        .filter(|m| m.at == 0)
        .filter_map(|m| {
            before_kill
                .iter()
                .find(|d| d["DealUuid"] == m.uuid.as_str())
        })
        .filter(|d| {
            !matches!(
                d["State"].as_str().unwrap_or_default(),
                "StorageDealActive" | "StorageDealWaitingForData"
            )
        })
        .count();
    eprintln!(
        "killed instance a with {unfinished} of {DEALS} deals not yet Active, {a_was_driving} of them driven by a"
    );
    assert!(
        a_was_driving > 0,
        "a drove no unfinished deal when it was killed"
    );

    // The remaining offline deals get their data through the survivor.
    for m in &made[DEALS / 2..] {
        if let Some(car) = &m.offline {
            import(http_b.clone(), m.uuid.clone(), car.clone())
                .await
                .unwrap();
        }
    }
    let finished =
        common::wait_all_active(&http_b, &admin, DEALS, Duration::from_secs(300), || {
            format!(
                "b's log:\n{}\na's log:\n{}",
                common::log_tail(&b.log, 60),
                common::log_tail(&a.log, 20)
            )
        })
        .await;

    // Exactly once: one deal id each, one Active in each timeline, one on-chain deal per
    // proposal, each the deal of its piece.
    let mut ids = HashSet::new();
    let mut piece_of_id = HashMap::new();
    for d in &finished {
        let id = d["DealId"].as_u64().unwrap();
        assert!(ids.insert(id), "deal id {id} used twice");
        piece_of_id.insert(id, d["PieceCid"].as_str().unwrap().to_string());
        let events = market_node::admin::call_remote(
            &http_b,
            &admin,
            "Market.DealEvents",
            json!([d["DealUuid"]]),
        )
        .await
        .unwrap();
        let actives = events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["State"] == "StorageDealActive")
            .count();
        assert_eq!(actives, 1, "timeline of {}: {events}", d["DealUuid"]);
    }
    let chain = &clients[0].chain;
    let ours: HashSet<String> = made.iter().map(|m| m.piece.clone()).collect();
    let mut on_chain = Vec::new();
    for id in 0..=ids.iter().max().unwrap() + 5 {
        if let Some(d) = chain.market_deal(DealId(id)).await.unwrap() {
            let piece = d.proposal.piece_cid.to_string();
            if ours.contains(&piece) {
                assert_eq!(piece_of_id.get(&id), Some(&piece), "deal {id}");
                assert!(d.state.sector_start_epoch.get() >= 0);
                on_chain.push(piece);
            }
        }
    }
    assert_eq!(
        on_chain.len(),
        DEALS,
        "a proposal published twice or not at all"
    );

    // The survivor serves every piece, whichever instance stored it, and every payload as a
    // verified CAR through the trustless gateway: the piece index is in Postgres too.
    let http = reqwest::Client::new();
    for Made {
        uuid,
        car,
        piece,
        root,
        ..
    } in &made
    {
        let got = http
            .get(http_b.join(&format!("ipfs/{root}")).unwrap())
            .header("accept", "application/vnd.ipld.car")
            .send()
            .await
            .unwrap();
        assert_eq!(got.status(), 200, "CAR of {uuid}");
        let path = dir.path().join(format!("{uuid}.retrieved.car"));
        std::fs::write(&path, got.bytes().await.unwrap()).unwrap();
        let blocks = piecestore::unixfs::verify_car(&path, root, true)
            .unwrap_or_else(|e| panic!("CAR of {uuid}: {e}"));
        assert!(blocks > 0);

        let body = http
            .get(http_b.join(&format!("piece/{piece}")).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(body.status(), 200, "piece of {uuid}");
        let body = body.bytes().await.unwrap();
        assert!(body.len() >= car.len(), "piece of {uuid} is short");
        assert_eq!(&body[..car.len()], &car[..], "piece of {uuid}");
        assert!(body[car.len()..].iter().all(|b| *b == 0));
    }

    // One ad chain for the miner's one identity, extended by both instances: every ad
    // signed by it, each piece put once, and nothing in the table off the line.
    let ads = market_postgres::PgAdStore::open(market_postgres::PgDb::connect(&pg_url, 2).unwrap())
        .await
        .unwrap();
    let me = peer_a.peer_id.to_string();
    let mut next = ads.head(&me).await.unwrap();
    let mut length = 0;
    let mut puts: HashMap<Vec<u8>, usize> = HashMap::new();
    while let Some(cid) = next {
        let data = ads
            .block(cid)
            .await
            .unwrap()
            .expect("every ad of the chain is stored");
        let ad = market_ipni::schema::decode_ad(&data, Some(&cid)).unwrap();
        assert_eq!(market_ipni::sign::verify_ad(&ad).unwrap(), peer_a.peer_id);
        if !ad.is_rm {
            *puts.entry(ad.context_id).or_default() += 1;
        }
        length += 1;
        next = ad.previous_id;
    }
    assert_eq!(
        ads.summary().await.unwrap().ads,
        length,
        "ads off the chain"
    );
    for m in &made {
        let piece: cid::Cid = m.piece.parse().unwrap();
        let size = finished
            .iter()
            .find(|d| d["DealUuid"] == m.uuid.as_str())
            .unwrap()["PieceSize"]
            .as_u64()
            .unwrap();
        let ctx = market_ipni::context::piece_context_id(size, &piece);
        assert_eq!(
            puts.get(&ctx),
            Some(&1),
            "piece {} put {:?} times",
            m.piece,
            puts.get(&ctx)
        );
    }

    // The indexer took the chain (from whichever instance announced its head) and names the
    // miner's peer id for every payload.
    let finder = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    for m in &made {
        loop {
            let found = market_ipni::find::find(&finder, &indexer.find, &m.root.hash().to_bytes())
                .await
                .unwrap_or_default();
            if found.iter().any(|r| r.provider == me) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the indexer does not name us for {} of {}:\n{}\nb's log:\n{}",
                m.root,
                m.uuid,
                indexer.log_tail(),
                common::log_tail(&b.log, 40)
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
