//! The workspace's dependency rules, checked over `cargo metadata`: the layering is part
//! of the design, so a shortcut that breaks it fails here rather than in review.
//!
//! - market-core sits under everything but commp;
//! - retrieval-market and data-transfer do not depend on storage-market (a retrieval client
//!   must not drag in the deal pipeline);
//! - nothing depends on the dev chain but tests, the node's default chain and the demo.

use std::collections::{BTreeMap, BTreeSet};

/// Workspace package → (normal and build dependencies, dev-dependencies), workspace-only.
type Graph = BTreeMap<String, (BTreeSet<String>, BTreeSet<String>)>;

fn graph() -> Graph {
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata is JSON");
    let packages = meta["packages"].as_array().expect("packages");
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let mut graph = Graph::new();
    for p in packages {
        let (mut normal, mut dev) = (BTreeSet::new(), BTreeSet::new());
        for d in p["dependencies"].as_array().unwrap() {
            let name = d["name"].as_str().unwrap().to_string();
            if !names.contains(&name) {
                continue;
            }
            match d["kind"].as_str() {
                Some("dev") => dev.insert(name),
                _ => normal.insert(name),
            };
        }
        graph.insert(p["name"].as_str().unwrap().to_string(), (normal, dev));
    }
    graph
}

/// Everything `package` pulls in through normal and build dependencies.
fn closure(graph: &Graph, package: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![package.to_string()];
    while let Some(p) = todo.pop() {
        for d in &graph[&p].0 {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn the_workspace_is_layered() {
    let g = graph();
    for member in [
        "market-core",
        "commp",
        "piecestore",
        "data-transfer",
        "storage-market",
        "retrieval-market",
        "devnet",
        "market-node",
        "examples",
    ] {
        assert!(g.contains_key(member), "{member} is a workspace member");
    }

    let core = closure(&g, "market-core");
    assert_eq!(
        core,
        BTreeSet::from(["commp".to_string()]),
        "market-core's dependencies"
    );

    for lower in ["retrieval-market", "data-transfer", "piecestore"] {
        let deps = closure(&g, lower);
        assert!(
            !deps.contains("storage-market"),
            "{lower} must not depend on storage-market: {deps:?}"
        );
        assert!(
            deps.contains("market-core"),
            "{lower} builds on market-core"
        );
    }

    // Only the node (its default chain) and the example binaries (the demo) may depend on
    // the dev chain in their normal dependencies; tests and benchmarks may as dev-deps.
    let allowed = BTreeSet::from(["market-node".to_string(), "examples".to_string()]);
    for (name, (normal, _)) in &g {
        if normal.contains("devnet") {
            assert!(
                allowed.contains(name),
                "{name} depends on devnet outside its tests"
            );
        }
    }
    for product in [
        "storage-market",
        "retrieval-market",
        "data-transfer",
        "piecestore",
    ] {
        assert!(
            !closure(&g, product).contains("devnet"),
            "{product} pulls in the dev chain"
        );
    }
}
