//! Chaos on the binaries: the `devnet`, `provider` (pull mode, pointed at the devnet like at
//! a Lotus node) and `sealer` run as separate processes; a client in this process makes
//! online and offline deals of mixed sizes, and while they go through, one of the three is
//! kill -9'd at a random moment and restarted, again and again. At the end every deal is
//! Active exactly once (one on-chain deal each, none published twice), every piece served by
//! `/piece` has the commP it was proposed with, and no staging or partial bytes are left.
//!
//! The default is the short version CI runs. The long one is `scripts/chaos` (or these
//! variables, with `cargo test --release -p examples --test chaos -- --nocapture`):
//! `CHAOS_DEALS` (10), `CHAOS_KILLS` (8), `CHAOS_MAX_BYTES` (3 MiB: file sizes are log-uniform
//! from 8 bytes to this), `CHAOS_SECTOR` (8 MiB; 536870912 for pieces up to 256 MiB), `CHAOS_GAP_MS` (900: the
//! longest pause between kills, and between proposals) and `CHAOS_SEED` (random; printed so a failure can be
//! replayed).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use commp::PaddedPieceSize;
use market_core::chain::ChainNode;
use market_core::cid::PieceCidExt;
use market_core::types::DealId;
use market_node::client::{self, DealTerms};
use piecestore::unixfs::ImportProfile;
use rand::{Rng, SeedableRng};
use serde_json::json;

mod common;
use common::{Daemon, free_port, list_deals, spawn, wait_for};

/// The run's size, from the environment.
struct Knobs {
    deals: usize,
    kills: usize,
    max_bytes: u64,
    sector: u64,
    /// Longest pause between two kills, and between two proposals, ms.
    gap_ms: u64,
    seed: u64,
}

impl Knobs {
    fn from_env() -> Self {
        fn var(name: &str, default: u64) -> u64 {
            std::env::var(name)
                .ok()
                .map(|v| {
                    v.parse()
                        .unwrap_or_else(|_| panic!("{name}={v} is not a number"))
                })
                .unwrap_or(default)
        }
        Self {
            deals: var("CHAOS_DEALS", 10) as usize,
            kills: var("CHAOS_KILLS", 8) as usize,
            max_bytes: var("CHAOS_MAX_BYTES", 3 << 20),
            sector: var("CHAOS_SECTOR", 8 << 20),
            gap_ms: var("CHAOS_GAP_MS", 900).max(51),
            seed: var("CHAOS_SEED", rand::random::<u32>() as u64),
        }
    }
}

/// One of the three daemons: how to start it and which file says it is up.
struct Proc {
    name: &'static str,
    bin: &'static str,
    args: Vec<String>,
    log: PathBuf,
    /// Removed before a start, awaited after it (none for the sealer, which serves nothing).
    ready: Option<PathBuf>,
    daemon: Option<Daemon>,
    starts: usize,
}

impl Proc {
    fn start(&mut self) {
        if let Some(r) = &self.ready {
            let _ = std::fs::remove_file(r);
        }
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        self.daemon = Some(spawn(self.bin, &args, &self.log));
        if let Some(r) = &self.ready {
            wait_for(r);
        }
        self.starts += 1;
    }

    fn kill9(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            d.kill9();
        }
    }

    fn log_tail(&self, lines: usize) -> String {
        format!(
            "--- {} log (last {lines} lines)\n{}",
            self.name,
            common::log_tail(&self.log, lines)
        )
    }
}

/// A deal this test made.
struct Made {
    uuid: String,
    piece: String,
    online: bool,
    car: PathBuf,
    bytes: u64,
}

/// Files under `dir` (recursively), for the leak checks.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// Calls `f` until it succeeds (two minutes at most), counting the failures.
async fn retry<T, E: std::fmt::Display, F: std::future::Future<Output = Result<T, E>>>(
    what: &str,
    failures: &mut usize,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        match f().await {
            Ok(v) => return v,
            Err(e) => {
                assert!(Instant::now() < deadline, "{what} kept failing: {e}");
                *failures += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Imports an offline deal's data, again after a failed call, until the provider has taken
/// it (its deal left WaitingForData); returns the failures.
async fn import(http: &url::Url, admin: &str, m: &Made) -> usize {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut failures = 0;
    loop {
        if let Some(d) = list_deals(http, admin)
            .await
            .iter()
            .find(|d| d["DealUuid"] == m.uuid.as_str())
            && d["State"] != "StorageDealWaitingForData"
        {
            return failures;
        }
        let r = market_node::admin::call_remote(
            http,
            admin,
            "Market.ImportData",
            json!([m.uuid, m.car.to_string_lossy()]),
        )
        .await;
        if r.is_ok() {
            return failures;
        }
        assert!(
            Instant::now() < deadline,
            "import of {} kept failing: {r:?}",
            m.uuid
        );
        failures += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn deals_survive_kill_9_of_devnet_provider_and_sealer() {
    let k = Knobs::from_env();
    eprintln!(
        "chaos: {} deals, {} kills {} ms apart at most, files up to {} bytes, {}-byte sectors, \
         CHAOS_SEED={}",
        k.deals, k.kills, k.gap_ms, k.max_bytes, k.sector, k.seed
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(k.seed);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // The devnet, on its own like a lotus daemon.
    let chain_repo = d.join("devnet");
    let listen = format!("127.0.0.1:{}", free_port());
    common::init_fast_devnet(&chain_repo, &listen);
    let mut devnet = Proc {
        name: "devnet",
        bin: env!("CARGO_BIN_EXE_devnet"),
        args: vec![
            "--repo".into(),
            chain_repo.to_str().unwrap().into(),
            "run".into(),
        ],
        log: d.join("devnet.log"),
        ready: Some(chain_repo.join("api-info")),
        daemon: None,
        starts: 0,
    };
    devnet.start();
    let chain_api = std::fs::read_to_string(chain_repo.join("api-info"))
        .unwrap()
        .trim()
        .to_string();

    // The provider, in pull mode, on that devnet.
    let repo = d.join("prov");
    common::init_fast_provider(
        &repo,
        &[
            ("[chain]\n", &format!("[chain]\napi = \"{chain_api}\"\n")),
            (
                "sector_size = 34359738368",
                &format!("sector_size = {}", k.sector),
            ),
            ("mode = \"\"", "mode = \"pull\""),
            ("min_piece_size = 256", "min_piece_size = 128"),
        ],
    );
    let mut provider = Proc {
        name: "provider",
        bin: env!("CARGO_BIN_EXE_provider"),
        args: vec!["--repo".into(), repo.to_str().unwrap().into(), "run".into()],
        log: d.join("provider.log"),
        ready: Some(repo.join("api")),
        daemon: None,
        starts: 0,
    };
    provider.start();
    let http = url::Url::parse(&wait_for(&repo.join("api"))).unwrap();
    let admin = common::read_token(&repo.join("token"));
    let (peer, miner) = common::provider_peer(&http, &admin).await;
    let owner = common::owner_of(&repo);

    // The sealer, as damocles would be.
    let mut sealer = Proc {
        name: "sealer",
        bin: env!("CARGO_BIN_EXE_sealer"),
        args: vec![
            "--market-api".into(),
            wait_for(&repo.join("sealer-api-info")),
            "--chain-api".into(),
            chain_api.clone(),
            "--miner".into(),
            miner.to_string(),
            "--wallet".into(),
            repo.join("keys").to_str().unwrap().into(),
            "--sender".into(),
            owner,
            "--state".into(),
            d.join("sealer").to_str().unwrap().into(),
            "--idle-secs".into(),
            "0.2".into(),
        ],
        log: d.join("sealer.log"),
        ready: None,
        daemon: None,
        starts: 0,
    };
    sealer.start();

    // The client: funds, and the data of every deal (online ones are fetched from us).
    let api: lotus_api::ApiInfo = chain_api.parse().unwrap();
    let c = common::funded_client(&d.join("client"), &api, 1000, 200).await;
    let (server, car_base) = common::car_server().await;

    // What each deal will be: log-uniform sizes (as many tiny deals as large ones), every
    // other one online.
    let started = Instant::now();
    let mut plans = Vec::new();
    for i in 0..k.deals {
        // The extremes always (a payload under commP's 65-byte minimum once aborted every
        // sector it was packed in), the rest between.
        let span = (k.max_bytes as f64 / 8.0).ln();
        let bytes = match i {
            0 => 8,
            1 => k.max_bytes,
            _ => (8.0 * (rng.r#gen::<f64>() * span).exp()) as u64,
        };
        let file = d.join(format!("d{i}.bin"));
        client::generate_file(&file, bytes, k.seed ^ (i as u64 + 1)).unwrap();
        let car = d.join(format!("d{i}.car"));
        let p = client::prepare(&file, &car, ImportProfile::LOTUS, &mut |_| {}).unwrap();
        std::fs::remove_file(&file).unwrap();
        plans.push((i % 2 == 1, bytes, car, p));
    }
    let total_bytes: u64 = plans.iter().map(|p| p.1).sum();
    let start_in = (1500 + 150 * k.kills as i64 + (total_bytes >> 20) as i64 * 4).min(9000);

    // The client proposes and imports while the daemons are killed under it, retrying what
    // fails (a retried proposal keeps its UUID, so it cannot become a second deal).
    let mut client_rng = rand::rngs::StdRng::seed_from_u64(k.seed ^ 0x5eed);
    let client_work = async {
        let mut made = Vec::new();
        let mut retries = 0;
        for (i, (online, bytes, car, p)) in plans.iter().enumerate() {
            // Clients arrive over the whole run, so kills land among deals in every stage.
            tokio::time::sleep(Duration::from_millis(client_rng.gen_range(0..k.gap_ms))).await;
            let transfer = online.then(|| {
                common::online_transfer(
                    &server,
                    &car_base,
                    &format!("t{i}"),
                    car,
                    p.import.car_size,
                )
            });
            let terms = DealTerms {
                miner,
                piece_cid: p.piece.piece_cid(),
                piece_size: PaddedPieceSize::new(p.piece.padded_size.get()).unwrap(),
                root: p.root,
                start_in,
                duration: 1000,
                verified: false,
                transfer,
            };
            let mut spec = retry("ask", &mut retries, || c.spec(&peer, terms.clone())).await;
            spec.deal_uuid = Some(storage_market::types::DealUuid::new_v4());
            let deal = retry("proposal", &mut retries, || async {
                c.storage
                    .propose_deal(&peer, &spec)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await;
            let m = Made {
                uuid: deal.deal_uuid.to_string(),
                piece: p.piece.piece_cid().to_string(),
                online: *online,
                car: car.clone(),
                bytes: *bytes,
            };
            if !online {
                retries += import(&http, &admin, &m).await;
            }
            made.push(m);
        }
        (made, retries)
    };
    // Kill one of the three at a random moment, restart it, again.
    let chaos = async {
        let mut killed_in: Vec<String> = Vec::new();
        for _ in 0..k.kills {
            tokio::time::sleep(Duration::from_millis(rng.gen_range(50..k.gap_ms))).await;
            let states: BTreeMap<String, usize> =
                list_deals(&http, &admin)
                    .await
                    .iter()
                    .fold(BTreeMap::new(), |mut m, d| {
                        *m.entry(d["State"].as_str().unwrap_or("?").to_string())
                            .or_default() += 1;
                        m
                    });
            let victim = match rng.gen_range(0..3) {
                0 => &mut devnet,
                1 => &mut provider,
                _ => &mut sealer,
            };
            victim.kill9();
            killed_in.push(format!("{} at {states:?}", victim.name));
            tokio::time::sleep(Duration::from_millis(rng.gen_range(0..800))).await;
            victim.start();
        }
        killed_in
    };
    let ((made, retries), killed_in) = tokio::join!(client_work, chaos);
    eprintln!(
        "chaos: {} deals proposed ({total_bytes} bytes) in {:.1} s with {retries} retries",
        made.len(),
        started.elapsed().as_secs_f64()
    );

    // Every deal reaches Active.
    let finished = common::wait_all_active(
        &http,
        &admin,
        made.len(),
        Duration::from_secs(180 + (total_bytes >> 20) / 2),
        || {
            format!(
                "after kills {killed_in:#?}\n{}\n{}\n{}",
                provider.log_tail(40),
                sealer.log_tail(20),
                devnet.log_tail(10)
            )
        },
    )
    .await;
    let took = started.elapsed();

    // Exactly once: one distinct on-chain deal per proposal, each active, not slashed, of the
    // proposed piece; and the chain holds no other deal (nothing was published twice).
    let mut ids = BTreeSet::new();
    for m in &made {
        let d = finished
            .iter()
            .find(|d| d["DealUuid"] == m.uuid.as_str())
            .expect("every proposal is a deal");
        assert_eq!(d["PieceCid"], m.piece.as_str());
        let id = d["DealId"].as_u64().unwrap();
        assert!(ids.insert(id), "deal id {id} used twice");
        let on_chain = c
            .chain
            .market_deal(DealId(id))
            .await
            .unwrap()
            .expect("deal on chain");
        assert_eq!(on_chain.proposal.piece_cid.to_string(), m.piece);
        assert!(on_chain.state.sector_start_epoch.get() >= 0);
        assert_eq!(on_chain.state.slash_epoch.get(), -1);
    }
    let last = *ids.last().unwrap();
    let mut on_chain = 0;
    for id in 1..=last + 20 {
        if c.chain.market_deal(DealId(id)).await.unwrap().is_some() {
            on_chain += 1;
        }
    }
    assert_eq!(
        on_chain,
        made.len(),
        "deals on chain, for {} proposals",
        made.len()
    );

    // Every piece is served whole, with its commP.
    let http_client = reqwest::Client::new();
    for m in &made {
        let got = d.join("got.car");
        let mut resp = http_client
            .get(http.join(&format!("piece/{}", m.piece)).unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "/piece/{}", m.piece);
        let mut out = std::fs::File::create(&got).unwrap();
        while let Some(chunk) = resp.chunk().await.unwrap() {
            std::io::Write::write_all(&mut out, &chunk).unwrap();
        }
        drop(out);
        let info = client::car_commp(&got).unwrap();
        assert_eq!(
            info.piece_cid().to_string(),
            m.piece,
            "piece of {} bytes",
            m.bytes
        );
    }

    // Nothing is left in staging, and no partial piece anywhere in the provider's repo.
    let staging: Vec<PathBuf> = files_under(&repo.join("staging"))
        .into_iter()
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("transfers.db")
        })
        .collect();
    assert!(staging.is_empty(), "staging bytes leaked: {staging:?}");
    let partial: Vec<PathBuf> = files_under(&repo)
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(partial.is_empty(), "partial files left: {partial:?}");

    eprintln!(
        "chaos: {} deals ({} bytes, {} online) Active after {} kills in {:.1} s; \
         starts: devnet {}, provider {}, sealer {}",
        made.len(),
        total_bytes,
        made.iter().filter(|m| m.online).count(),
        k.kills,
        took.as_secs_f64(),
        devnet.starts,
        provider.starts,
        sealer.starts,
    );
    for s in &killed_in {
        eprintln!("chaos: killed {s}");
    }
}
