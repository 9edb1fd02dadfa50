//! Transfers against real HTTP and libp2p servers on loopback.

use market_core::cid::PieceCidExt;
use market_core::host::{Host, HostConfig};
use std::time::Duration;

use data_transfer::testing::{Script, ScriptedSource, range_start};
use data_transfer::{
    CarServer, TransferConfig, TransferError, TransferId, TransferManager, TransferRequest,
    TransferState,
};

const T: Duration = Duration::from_secs(60);

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

fn config(dir: &std::path::Path) -> TransferConfig {
    data_transfer::testing::config(dir.join("staging"))
}

fn request(id: &str, url: &str, size: usize) -> TransferRequest {
    TransferRequest {
        id: TransferId::new(id).unwrap(),
        url: url.into(),
        headers: vec![],
        size: size as u64,
        padded_size: None,
    }
}

async fn wait(m: &TransferManager, id: &str) -> Result<data_transfer::Completed, TransferError> {
    tokio::time::timeout(T, m.wait(&TransferId::new(id).unwrap()))
        .await
        .expect("transfer did not end in time")
}

async fn serve_car_server(server: &CarServer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = server.router();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/car")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_pull_with_five_connections_hashes_while_receiving() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(12 << 20, 1);
    let car = dir.path().join("client.car");
    std::fs::write(&car, &data).unwrap();
    let server = CarServer::new();
    server.add("secret", &car);
    let url = serve_car_server(&server).await;

    let m = TransferManager::open(config(dir.path()), None)
        .await
        .unwrap();
    let mut events = m.subscribe();
    let mut req = request("deal-1", &url, data.len());
    req.headers = vec![("Authorization".into(), CarServer::auth_header("secret"))];
    m.start(req.clone()).await.unwrap();
    // Starting the same request again is a no-op.
    m.start(req).await.unwrap();
    let done = wait(&m, "deal-1").await.unwrap();
    assert_eq!(
        done.piece.piece_cid,
        commp::commp(&data).unwrap().piece_cid()
    );
    assert_eq!(std::fs::read(&done.path).unwrap(), data);
    let rec = m
        .status(&TransferId::new("deal-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.chunks.len(), 5);
    assert_eq!(rec.received(), data.len() as u64);
    let mut progress = 0;
    while let Ok(e) = events.try_recv() {
        if e.state == TransferState::Running && e.received > 0 {
            progress += 1;
            assert!(e.received <= e.total);
        }
    }
    assert!(progress >= 12, "progress events: {progress}");
    m.remove(&TransferId::new("deal-1").unwrap()).await.unwrap();
    assert!(!done.path.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn libp2p_pull_with_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(3 << 20, 2);
    let car = dir.path().join("client.car");
    std::fs::write(&car, &data).unwrap();
    let client_host = Host::start(
        libp2p::identity::Keypair::generate_ed25519(),
        HostConfig::default().with_listen(["/ip4/127.0.0.1/tcp/0".parse().unwrap()]),
    )
    .await
    .unwrap();
    let server = CarServer::new();
    server.add("tok", &car);
    server.serve_libp2p(&client_host).unwrap();
    let provider_host = Host::dialer(
        libp2p::identity::Keypair::generate_ed25519(),
        HostConfig::default(),
    )
    .unwrap();
    let m = TransferManager::open(config(dir.path()), Some(provider_host))
        .await
        .unwrap();
    let url = data_transfer::transfer_url(&client_host).unwrap();

    // A wrong token is refused at once (401), not retried.
    let mut bad = request("bad-token", &url, data.len());
    bad.headers = vec![("Authorization".into(), CarServer::auth_header("nope"))];
    m.start(bad).await.unwrap();
    let err = wait(&m, "bad-token").await.unwrap_err();
    assert!(err.to_string().contains("401"), "{err}");

    let mut req = request("p2p", &url, data.len());
    req.headers = vec![("Authorization".into(), CarServer::auth_header("tok"))];
    m.start(req).await.unwrap();
    let done = wait(&m, "p2p").await.unwrap();
    assert_eq!(
        done.piece.piece_cid,
        commp::commp(&data).unwrap().piece_cid()
    );
    let rec = m
        .status(&TransferId::new("p2p").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rec.chunks.len(), 1, "libp2p uses one connection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_resumes_with_a_range_request() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(600_000, 3);
    let src = ScriptedSource::new(data.clone());
    src.set(Script {
        cut_after: Some(250_000),
        ..Script::default()
    });
    let url = src.serve().await.unwrap();
    let m = TransferManager::open(config(dir.path()), None)
        .await
        .unwrap();
    m.start(request("cut", &url, data.len())).await.unwrap();
    let done = wait(&m, "cut").await.unwrap();
    assert_eq!(
        done.piece.piece_cid,
        commp::commp(&data).unwrap().piece_cid()
    );
    let reqs = src.requests();
    assert_eq!(reqs[0], None);
    let resumed = reqs[1].clone().unwrap();
    let from = range_start(&resumed).unwrap();
    assert!(from > 0 && from <= 250_000, "{resumed}");
}

/// A source that stalls after `hang_after` bytes, and a one-connection config for it.
async fn stalling_source(
    dir: &std::path::Path,
    data: &[u8],
    hang_after: u64,
) -> (ScriptedSource, String, TransferConfig) {
    let src = ScriptedSource::new(data.to_vec());
    src.set(Script {
        hang_after: Some(hang_after),
        ..Script::default()
    });
    let url = src.serve().await.unwrap();
    let mut cfg = config(dir);
    cfg.multi_connection_threshold = u64::MAX;
    (src, url, cfg)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_transfer_resumes_from_the_durable_offset() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(5 << 20, 4);
    let (src, url, cfg) = stalling_source(dir.path(), &data, 3_500_000).await;
    let m = TransferManager::open(cfg.clone(), None).await.unwrap();
    let id = TransferId::new("restart").unwrap();
    m.start(request("restart", &url, data.len())).await.unwrap();
    // Wait until some progress is durable, then crash.
    let deadline = tokio::time::Instant::now() + T;
    loop {
        let rec = m.status(&id).await.unwrap().unwrap();
        if rec.received() >= 2 << 20 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no durable progress"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    m.stop();
    let durable = m.status(&id).await.unwrap().unwrap().received();
    drop(m);
    src.set(Script::default());

    let m = TransferManager::open(cfg, None).await.unwrap();
    let done = wait(&m, "restart").await.unwrap();
    assert_eq!(
        done.piece.piece_cid,
        commp::commp(&data).unwrap().piece_cid()
    );
    assert_eq!(std::fs::read(&done.path).unwrap(), data);
    // `stop` aborts the tasks, and one running on the other worker may still write a
    // checkpoint before it sees that: the resume starts at the last durable offset, which
    // is at least what was durable when `stop` returned.
    let reqs = src.requests();
    let last = reqs.last().unwrap().clone().expect("a range request");
    let range = last.strip_prefix("bytes=").expect("a byte range");
    let (start, end) = range.split_once('-').expect("start-end");
    let start: u64 = start.parse().unwrap();
    assert!(
        start >= durable && start < data.len() as u64,
        "resumed at {start}, durable at stop {durable}"
    );
    assert_eq!(end, (data.len() - 1).to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_counts_bytes_as_they_arrive_between_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(5 << 20, 6);
    let (_src, url, mut cfg) = stalling_source(dir.path(), &data, 3_500_000).await;
    // No checkpoint before the source hangs: durable progress stays at zero.
    cfg.checkpoint_bytes = 32 << 20;
    // Keeps the test short should the stalled connection outlive the cancel.
    cfg.stall_timeout = Duration::from_secs(3);
    let m = TransferManager::open(cfg, None).await.unwrap();
    let id = TransferId::new("live").unwrap();
    m.start(request("live", &url, data.len())).await.unwrap();
    let deadline = tokio::time::Instant::now() + T;
    while m.received(&id).await.unwrap().unwrap() < 3 << 20 {
        assert!(tokio::time::Instant::now() < deadline, "no live progress");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(m.status(&id).await.unwrap().unwrap().received(), 0);
    m.cancel(&id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_oversized_and_refused_sources_fail_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(100_000, 5);
    let src = ScriptedSource::new(data.clone());
    let url = src.serve().await.unwrap();
    let m = TransferManager::open(config(dir.path()), None)
        .await
        .unwrap();

    m.start(request("short", &url, data.len() + 1))
        .await
        .unwrap();
    let err = wait(&m, "short").await.unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");

    m.start(request("long", &url, data.len() - 1))
        .await
        .unwrap();
    let err = wait(&m, "long").await.unwrap_err();
    assert!(err.to_string().contains("oversized"), "{err}");

    // A server that ignores Range and sends more than it announced is caught too.
    src.set(Script {
        status: Some(404),
        ..Script::default()
    });
    m.start(request("gone", &url, data.len())).await.unwrap();
    let err = wait(&m, "gone").await.unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
    assert_eq!(src.requests().len(), 3, "4xx answers are not retried");

    // 5xx is retried until the attempts run out.
    src.set(Script {
        status: Some(503),
        ..Script::default()
    });
    m.start(request("busy", &url, data.len())).await.unwrap();
    let err = wait(&m, "busy").await.unwrap_err();
    assert!(err.to_string().contains("after 5 attempts"), "{err}");

    // Failed transfers leave nothing in staging but the database.
    let staged: Vec<_> = std::fs::read_dir(dir.path().join("staging"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".car"))
        .collect();
    assert!(staged.is_empty(), "{staged:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_range_support_still_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(400_000, 6);
    let src = ScriptedSource::new(data.clone());
    src.set(Script {
        cut_after: Some(150_000),
        ignore_range: true,
        ..Script::default()
    });
    let url = src.serve().await.unwrap();
    let m = TransferManager::open(config(dir.path()), None)
        .await
        .unwrap();
    m.start(request("norange", &url, data.len())).await.unwrap();
    let done = wait(&m, "norange").await.unwrap();
    assert_eq!(std::fs::read(&done.path).unwrap(), data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_policy_cancel_and_queueing() {
    let dir = tempfile::tempdir().unwrap();
    let data = payload(2 << 20, 7);
    let src = ScriptedSource::new(data.clone());
    src.set(Script {
        hang_after: Some(1000),
        ..Script::default()
    });
    let url = src.serve().await.unwrap();

    let mut cfg = config(dir.path());
    cfg.max_concurrent = 1;
    cfg.max_staging_bytes = 5 << 20;
    cfg.max_staging_bytes_per_host = 3 << 20;
    let m = TransferManager::open(cfg, None).await.unwrap();
    m.start(request("a", &url, data.len())).await.unwrap();
    // Same host: over the per-host limit.
    let err = m.start(request("b", &url, data.len())).await.unwrap_err();
    assert!(
        matches!(err, TransferError::HostStagingFull { .. }),
        "{err}"
    );
    // Another host (by name): admitted but queued behind the single slot.
    let other = url.replace("127.0.0.1", "localhost");
    m.start(request("c", &other, data.len())).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = m
        .status(&TransferId::new("c").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.state, TransferState::Queued);
    // Total limit (a third host: a libp2p peer).
    let third =
        "libp2p:///ip4/127.0.0.1/tcp/9/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA";
    let err = m.start(request("d", third, data.len())).await.unwrap_err();
    assert!(matches!(err, TransferError::StagingFull { .. }), "{err}");

    // Cancelling frees the slot and the space.
    m.cancel(&TransferId::new("a").unwrap()).await.unwrap();
    let a = m
        .status(&TransferId::new("a").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.state, TransferState::Cancelled);
    assert!(!dir.path().join("staging/a.car").exists());
    src.set(Script::default());
    m.start(request("b", &url, data.len())).await.unwrap();
    m.cancel(&TransferId::new("c").unwrap()).await.unwrap();
    let done = wait(&m, "b").await.unwrap();
    assert_eq!(
        done.piece.piece_cid,
        commp::commp(&data).unwrap().piece_cid()
    );

    // The default policy refuses private and loopback addresses.
    let strict = TransferManager::open(TransferConfig::new(dir.path().join("strict")), None)
        .await
        .unwrap();
    for u in [
        "http://127.0.0.1:8080/x",
        "http://10.1.2.3/x",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data",
        "libp2p:///ip4/192.168.1.5/tcp/4001/p2p/12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA",
    ] {
        let err = strict.check(u, 100).await.unwrap_err();
        assert!(
            matches!(err, TransferError::ForbiddenAddress(_)),
            "{u}: {err}"
        );
    }
    // A name resolving to loopback is refused when resolved.
    strict
        .start(request("dns", &other, data.len()))
        .await
        .unwrap();
    let err = tokio::time::timeout(T, strict.wait(&TransferId::new("dns").unwrap()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("not allowed"), "{err}");
    for bad in [
        "ftp://x/y",
        "libp2p:///ip4/1.2.3.4/tcp/1",
        "not a url",
        "http://",
    ] {
        assert!(matches!(
            strict.check(bad, 1).await.unwrap_err(),
            TransferError::InvalidUrl { .. }
        ));
    }
}

#[test]
fn ranges_parse_as_http_does() {
    use data_transfer::parse_range;
    assert_eq!(parse_range("bytes=0-9", 100), Some((0, 10)));
    assert_eq!(parse_range("bytes=90-", 100), Some((90, 100)));
    assert_eq!(parse_range("bytes=-10", 100), Some((90, 100)));
    assert_eq!(parse_range("bytes=50-500", 100), Some((50, 100)));
    assert_eq!(parse_range("bytes=100-", 100), None);
    assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
    assert_eq!(parse_range("items=0-1", 100), None);
    assert_eq!(parse_range("bytes=9-3", 100), None);
}

#[test]
fn transfer_ids_cannot_name_other_files() {
    for bad in ["", "../x", "a/b", "a.car", &"x".repeat(65)] {
        assert!(TransferId::new(bad).is_err(), "{bad}");
    }
    assert!(TransferId::new("0b6a1f4c-5d1e-4b8a-9c3e-2f1a7d9e8b01").is_ok());
}

proptest::proptest! {
    #[test]
    fn client_controlled_inputs_never_panic(text in ".{0,200}", len in proptest::num::u64::ANY) {
        let _ = data_transfer::Source::parse(&text).map(|s| (s.host(), s.ip(), s.to_string()));
        let _ = TransferId::new(text.clone());
        if let Some((start, end)) = data_transfer::parse_range(&text, len) {
            proptest::prop_assert!(start < end && end <= len);
        }
        let url = format!("libp2p://{text}");
        let _ = data_transfer::Source::parse(&url);
    }
}

/// The staging disk fills up mid-transfer: the transfer waits, says why, and completes with
/// the right commP once space is freed; nothing received is lost or corrupted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_staging_disk_makes_the_transfer_wait_not_fail() {
    let dir = tempfile::tempdir().unwrap();
    let staging = dir.path().join("staging");
    let _fs = market_core::testing::SmallFs::mount(&staging, "8m");
    // Ballast leaves about 3 MiB for a 4 MiB transfer.
    let ballast = staging.join("ballast");
    std::fs::write(&ballast, vec![1u8; 5 << 20]).unwrap();
    let data = payload(4 << 20, 9);
    let src = ScriptedSource::new(data.clone());
    let url = src.serve().await.unwrap();
    let m = TransferManager::open(config(dir.path()), None)
        .await
        .unwrap();
    let mut events = m.subscribe();
    m.start(request("full", &url, data.len())).await.unwrap();
    // It reports that it waits for space...
    let waiting = tokio::time::timeout(T, async {
        loop {
            let e = events.recv().await.unwrap();
            if e.error.contains("No space left") {
                return e;
            }
        }
    })
    .await
    .expect("the transfer never reported the full disk");
    assert_eq!(waiting.state, TransferState::Running);
    // ...and goes on when space returns.
    std::fs::remove_file(&ballast).unwrap();
    let done = wait(&m, "full").await.unwrap();
    assert_eq!(
        done.piece.piece_cid,
        commp::commp(&data).unwrap().piece_cid()
    );
    assert_eq!(std::fs::read(&done.path).unwrap(), data);
}
