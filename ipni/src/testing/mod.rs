//! Test support (feature `testing`): the Go peers built by `scripts/go-peers/install`
//! (which `scripts/test` runs), and a real storetheindex initialised in a temporary directory
//! without bootstrap peers, its finder, ingest and admin APIs on free loopback ports, killed
//! when dropped. A missing binary fails the test with the command that builds it.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

/// The path of a Go peer (`storetheindex`, `lassie`): `$<NAME>_BIN`, or where
/// `scripts/go-peers/install` builds it.
pub fn go_peer(name: &str) -> PathBuf {
    if let Ok(p) = std::env::var(format!("{}_BIN", name.to_uppercase())) {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/go-peers/bin")
        .join(name);
    assert!(
        p.exists(),
        "{} is missing: run scripts/go-peers/install (scripts/test does) to build it",
        p.display()
    );
    p
}

/// A free loopback port (bound, then released for the child to take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running storetheindex.
pub struct Indexer {
    child: Child,
    _dir: tempfile::TempDir,
    /// The finder API root.
    pub find: url::Url,
    /// The ingest API root.
    pub ingest: url::Url,
    /// Its log file.
    pub log: PathBuf,
}

impl Indexer {
    /// Initialises and starts one; returns once its finder answers.
    pub async fn start() -> Self {
        let bin = go_peer("storetheindex");
        let dir = tempfile::tempdir().unwrap();
        let (find, ingest, admin, p2p) = (free_port(), free_port(), free_port(), free_port());
        let ma = |p: u16| format!("/ip4/127.0.0.1/tcp/{p}");
        let out = Command::new(&bin)
            .env("STORETHEINDEX_PATH", dir.path())
            .args(["init", "--no-bootstrap", "--listen-finder"])
            .arg(ma(find))
            .arg("--listen-ingest")
            .arg(ma(ingest))
            .arg("--listen-admin")
            .arg(ma(admin))
            .arg("--listen-p2p")
            .arg(ma(p2p))
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "storetheindex init: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        // A test indexer must not freeze because the machine's disk is nearly full (it
        // refuses new providers once its filesystem is 95% used), nor hold a 1 GiB cache.
        let cfg_path = dir.path().join("config");
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
        cfg["Indexer"]["FreezeAtPercent"] = serde_json::json!(-1);
        cfg["Indexer"]["PebbleBlockCacheSize"] = serde_json::json!("64Mi");
        std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
        let log = dir.path().join("daemon.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(&bin)
            .env("STORETHEINDEX_PATH", dir.path())
            .env("GOLOG_LOG_LEVEL", "info")
            .arg("daemon")
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let me = Self {
            child,
            _dir: dir,
            find: format!("http://127.0.0.1:{find}/").parse().unwrap(),
            ingest: format!("http://127.0.0.1:{ingest}/").parse().unwrap(),
            log,
        };
        let health = me.find.join("health").unwrap();
        for _ in 0..300 {
            if let Ok(r) = reqwest::get(health.clone()).await
                && r.status().is_success()
            {
                return me;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("storetheindex did not start: {}", me.log_tail());
    }

    /// The announce URL.
    pub fn announce_url(&self) -> url::Url {
        self.ingest.join("announce").unwrap()
    }

    /// The end of its log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Indexer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

mod ad_store_conformance;
pub use ad_store_conformance::ad_store_conformance;
