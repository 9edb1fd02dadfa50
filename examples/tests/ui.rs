//! The web UI in a real browser: Debian's chromium, driven by playwright-core
//! (`scripts/browser/ui.mjs`), logs in to the demo's provider, watches the demo's deals reach
//! Active on the live deal list, opens a deal, edits an ask, and checks that a read token
//! cannot; screenshots are taken and no page may log a console error. Then `/metrics` is
//! scraped and must tell the same story. Needs `scripts/browser/install` (the test command
//! runs it); without chromium or playwright-core the test fails and says so.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::Daemon;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The demo's provider URL, from the line it prints once its node is up.
fn wait_for_ui(log: &Path, demo: &mut Daemon) -> url::Url {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| l.contains("web UI at ")) {
            let at = line.split("web UI at ").nth(1).unwrap();
            let u = at.split_whitespace().next().unwrap();
            return url::Url::parse(u.trim_end_matches("ui/")).unwrap();
        }
        if let Ok(Some(status)) = demo.0.try_wait() {
            panic!("demo exited ({status}) before its UI was up:\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "no UI line from the demo:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn metric(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l[series.len()..].trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_in_chromium_follows_the_demo_and_guards_its_forms() {
    let root = workspace();
    let deps = root.join("target/browser");
    assert!(
        deps.join("node_modules/playwright-core").is_dir()
            && Path::new("/usr/bin/chromium").exists(),
        "chromium or playwright-core missing: run scripts/browser/install (scripts/test does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("demo.log");
    let flag = dir.path().join("go");
    let mut demo = common::spawn(
        env!("CARGO_BIN_EXE_demo"),
        &[
            "--dir",
            dir.path().join("work").to_str().unwrap(),
            "--online-size",
            "3000000",
            "--offline-size",
            "250000",
            "--timeout",
            "240",
            "--hold-secs",
            "600",
            "--wait-for",
            flag.to_str().unwrap(),
        ],
        &log,
    );
    let http = wait_for_ui(&log, &mut demo);
    let repo = dir.path().join("work/provider");
    let admin = std::fs::read_to_string(repo.join("token")).unwrap();
    let read = std::fs::read_to_string(repo.join("token.read")).unwrap();
    let shots = root.join("target/browser/shots");

    let out = Command::new("node")
        .arg(root.join("scripts/browser/ui.mjs"))
        .env("UI_URL", http.as_str())
        .env("ADMIN_TOKEN", admin.trim())
        .env("READ_TOKEN", read.trim())
        .env("START_FLAG", &flag)
        .env("SHOTS", &shots)
        .env("BROWSER_DEPS", &deps)
        .env("DEALS", "2")
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "no report from the browser driver ({e}):\n{stdout}\n{}\ndemo log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        )
    });
    assert!(
        out.status.success() && report["ok"] == true,
        "browser checks failed: {}\n{}\ndemo log:\n{}",
        serde_json::to_string_pretty(&report).unwrap(),
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    println!("browser checks passed: {}", report["checks"]);
    println!(
        "states seen on the live deal list: {}",
        report["statesSeen"]
    );

    // Every screenshot is a real, non-trivial PNG (a blank page compresses to a few KB).
    for shot in report["screenshots"].as_array().unwrap() {
        let bytes = std::fs::read(shot.as_str().unwrap()).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{shot} is a PNG");
        assert!(
            bytes.len() > 15_000,
            "{shot} has content ({} bytes)",
            bytes.len()
        );
    }

    // The ask the browser saved is the node's ask.
    let ask =
        market_node::admin::call_remote(&http, &admin, "Market.GetAsk", serde_json::json!([]))
            .await
            .unwrap();
    assert_eq!(ask["Price"], "12345");

    // The metrics tell the same story once the demo has also retrieved; without a token
    // there are none.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("demo complete")
    {
        assert!(Instant::now() < deadline, "the demo never completed");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = reqwest::Client::new();
    let anonymous = client
        .get(http.join("metrics").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let scrape = client
        .get(http.join("metrics").unwrap())
        .bearer_auth(read.trim())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    println!("--- /metrics after the demo flow ---\n{scrape}");
    let m = |s: &str| metric(&scrape, s).unwrap_or_else(|| panic!("{s} missing from\n{scrape}"));
    assert_eq!(m("fil_market_deals{state=\"StorageDealActive\"}"), 2.0);
    assert_eq!(
        m("fil_market_proposals_total{outcome=\"accepted\",reason=\"none\"}"),
        2.0
    );
    assert_eq!(
        m("fil_market_deal_transitions_total{state=\"StorageDealActive\"}"),
        2.0
    );
    let published: f64 = scrape
        .lines()
        .filter(|l| l.starts_with("fil_market_publish_deals_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(published, 2.0);
    assert!(m("fil_market_transfer_bytes_total{transport=\"http\"}") > 3_000_000.0);
    assert!(m("fil_market_commp_bytes_total") >= 3_250_204.0);
    assert!(m("fil_market_http_requests_total{route=\"ui\",status=\"200\"}") >= 5.0);
    assert!(m("fil_market_http_requests_total{route=\"piece\",status=\"200\"}") >= 2.0);
    assert!(m("fil_market_http_response_bytes_total{route=\"piece\"}") > 3_000_000.0);
    assert!(m("fil_market_db_seconds_count{db=\"deals\",op=\"write\"}") > 0.0);
    assert!(m("fil_market_piece_store_seconds_count{op=\"put\"}") >= 2.0);
    assert_eq!(m("fil_market_pieces"), 2.0);
    assert_eq!(m("fil_market_ipni_failing_announces"), 0.0);

    // SIGINT ends the demo's hold; it stops its sealer process on the way out.
    let pid = demo.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while demo.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the demo did not stop on SIGINT");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
