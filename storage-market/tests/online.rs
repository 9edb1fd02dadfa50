//! Online deals: the provider pulls the data over HTTP or libp2p, verifies commP, and the
//! deal goes on to Active. Also: resume after a provider crash mid-transfer, bad transfers
//! failing with their reason, and admission limits. Deals and resumes run on SQLite and a
//! directory, and on Postgres with the pieces in S3.

#[macro_use]
mod harness;

use market_core::cid::PieceCidExt;
use std::time::Duration;

use data_transfer::CarServer;
use data_transfer::testing::{Script, ScriptedSource, range_start};
use harness::{Backend, Env, transfer};
use storage_market::network::{Host, HostConfig};
use storage_market::provider::{DealRef, wait_for_state};
use storage_market::state::StorageDealStatus as S;

const T: Duration = Duration::from_secs(60);

async fn serve_http(server: &CarServer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = server.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/deal.car")
}

/// Runs a deal fetching from `url` to Active and checks the piece index afterwards.
async fn online_deal_becomes_active(backend: Backend, kind: &str) {
    let env = Env::start_on_backend(backend, |_| {}, true).await;
    let sealer = env.sealer.run(Duration::from_millis(30));
    let (path, bytes, piece_cid, size, root) = env.car_file("deal.car", 300, 1000, 5);
    let server = CarServer::new();
    server.add("token-1", &path);
    let mut client_host = None;
    let url = match kind {
        "http" => serve_http(&server).await,
        _ => {
            let host = Host::start(
                libp2p::identity::Keypair::generate_ed25519(),
                HostConfig::default().with_listen(["/ip4/127.0.0.1/tcp/0".parse().unwrap()]),
            )
            .await
            .unwrap();
            server.serve_libp2p(&host).unwrap();
            let url = data_transfer::transfer_url(&host).unwrap();
            client_host = Some(host);
            url
        }
    };
    let auth = [("Authorization", CarServer::auth_header("token-1"))];
    let spec = env
        .online_spec(
            piece_cid,
            size,
            root,
            transfer(kind, &url, &auth, bytes.len() as u64),
        )
        .await;
    let deal = env.client.propose_deal(&env.peer, &spec).await.unwrap();
    let r = DealRef::ProposalCid(deal.proposal_cid);
    let active = wait_for_state(&env.provider, r, S::Active, T)
        .await
        .unwrap_or_else(|e| panic!("{kind}: {e}"));
    assert!(active.piece_path.is_some());

    // The piece index knows the deal, the payload root and every block.
    let (_, _, index) = env.backing.open(env.dir.path()).await;
    let rec = index.piece(&piece_cid).await.unwrap().unwrap();
    assert_eq!(rec.roots, vec![root]);
    assert_eq!(rec.block_count, 300);
    assert_eq!(rec.deals.len(), 1);
    assert_eq!(rec.deals[0].deal_id, active.deal_id.unwrap().0);
    assert_eq!(index.pieces_for_root(&root).await.unwrap(), vec![piece_cid]);
    assert_eq!(index.find_block(&root).await.unwrap()[0].0, piece_cid);
    // The staging area is empty again.
    let staged = std::fs::read_dir(env.dir.path().join("staging"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".car")
        })
        .count();
    assert_eq!(staged, 0);
    // The client sees the deal complete through the status protocol.
    let status = env.client.update_status(&env.peer, &deal).await.unwrap();
    assert_eq!(status.checkpoint, "Complete");
    sealer.abort();
    drop(client_host);
}

on_both_backends!(
    online_deal_over_http,
    online_deal_over_libp2p,
    a_provider_crash_mid_transfer_resumes_from_its_offset,
);

async fn online_deal_over_http(backend: Backend) {
    online_deal_becomes_active(backend, "http").await;
}

async fn online_deal_over_libp2p(backend: Backend) {
    online_deal_becomes_active(backend, "libp2p").await;
}

async fn a_provider_crash_mid_transfer_resumes_from_its_offset(backend: Backend) {
    let mut env = Env::start_on_backend(backend, |_| {}, true).await;
    let sealer = env.sealer.run(Duration::from_millis(30));
    let (_, bytes, piece_cid, size, root) = env.car_file("deal.car", 800, 1000, 6);
    let src = ScriptedSource::new(bytes.clone());
    src.set(Script {
        hang_after: Some(500_000),
        ..Script::default()
    });
    let url = src.serve().await.unwrap();
    // One connection, so the resume offset is a single number.
    let spec = env
        .online_spec(
            piece_cid,
            size,
            root,
            transfer("http", &url, &[], bytes.len() as u64),
        )
        .await;
    assert!(bytes.len() < 1 << 20);
    let deal = env.client.propose_deal(&env.peer, &spec).await.unwrap();
    let r = DealRef::ProposalCid(deal.proposal_cid);

    // Wait for durable progress, then crash the provider (its transfers go down with it).
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let durable = env.provider.transfer_record(r).await.unwrap();
        if durable.is_some_and(|rec| rec.received() >= 256 << 10) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no durable progress"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The hanging response stays hung; requests after the restart get everything.
    src.set(Script::default());
    env.restart_provider(|_| {}).await;
    let active = wait_for_state(&env.provider, r, S::Active, T)
        .await
        .unwrap();
    assert!(active.deal_id.is_some());
    let ranges = src.requests();
    let resumed = ranges
        .last()
        .unwrap()
        .clone()
        .expect("resumed with a Range request");
    let from = range_start(&resumed).unwrap();
    assert!((256 << 10..=500_000).contains(&from), "{resumed}");
    sealer.abort();
}

/// Proposes an online deal for `bytes` served (as `served`) by a scripted source; returns the
/// deal's final message.
async fn failing_deal(served: Vec<u8>, claimed: &[u8], script: Script) -> String {
    let env = Env::start(|_| {}, true).await;
    let info = commp::commp(claimed).unwrap();
    let src = ScriptedSource::new(served);
    src.set(script);
    let url = src.serve().await.unwrap();
    let root = info.piece_cid();
    let spec = env
        .online_spec(
            info.piece_cid(),
            info.padded_size,
            root,
            transfer("http", &url, &[], claimed.len() as u64),
        )
        .await;
    let deal = env.client.propose_deal(&env.peer, &spec).await.unwrap();
    let r = DealRef::ProposalCid(deal.proposal_cid);
    let failed = wait_for_state(&env.provider, r, S::Error, T).await.unwrap();
    // Nothing staged or stored is left behind.
    let pieces = std::fs::read_dir(env.dir.path().join("pieces"))
        .unwrap()
        .count();
    assert_eq!(pieces, 0, "{}", failed.message);
    failed.message
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_transfers_fail_the_deal_with_their_reason() {
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 253) as u8).collect();

    let mut corrupted = data.clone();
    corrupted[100_000] ^= 1;
    let msg = failing_deal(corrupted, &data, Script::default()).await;
    assert!(msg.contains("commP mismatch"), "{msg}");

    let msg = failing_deal(data[..150_000].to_vec(), &data, Script::default()).await;
    assert!(msg.contains("truncated"), "{msg}");

    let mut longer = data.clone();
    longer.extend_from_slice(&[0u8; 1000]);
    let msg = failing_deal(longer, &data, Script::default()).await;
    assert!(msg.contains("oversized"), "{msg}");

    let msg = failing_deal(
        data.clone(),
        &data,
        Script {
            status: Some(403),
            ..Script::default()
        },
    )
    .await;
    assert!(msg.contains("403"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_limits_reject_with_a_reason() {
    // Staging space.
    let env = Env::start_with(|_| {}, |t| t.max_staging_bytes = 10_000, false).await;
    let (_, bytes, piece_cid, size, root) = env.car_file("big.car", 30, 1000, 1);
    let spec = env
        .online_spec(
            piece_cid,
            size,
            root,
            transfer("http", "http://127.0.0.1:9/x.car", &[], bytes.len() as u64),
        )
        .await;
    let err = env.client.propose_deal(&env.peer, &spec).await.unwrap_err();
    assert!(err.to_string().contains("staging area full"), "{err}");

    // Private addresses, when the policy forbids them.
    let env = Env::start_with(|_| {}, |t| t.policy.allow_private = false, false).await;
    let (_, bytes, piece_cid, size, root) = env.car_file("p.car", 3, 1000, 2);
    for url in ["http://127.0.0.1:9/x.car", "http://192.168.0.10/x.car"] {
        let spec = env
            .online_spec(
                piece_cid,
                size,
                root,
                transfer("http", url, &[], bytes.len() as u64),
            )
            .await;
        let err = env.client.propose_deal(&env.peer, &spec).await.unwrap_err();
        assert!(err.to_string().contains("is not allowed"), "{url}: {err}");
    }
    assert!(env.provider.deals().await.unwrap().is_empty());
}
