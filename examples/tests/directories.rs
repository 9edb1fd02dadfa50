//! Directory trees end to end with a real peer: the client binary turns a directory (one
//! subdirectory big enough to be HAMT-sharded) into a CAR, a retrieval provider serves it on
//! loopback, and a real lassie resolves paths through the plain and the sharded directory
//! (it verifies every block and the path itself) and fetches the whole tree; the CARs it
//! writes hold the original files. Our client then writes the tree back out from the
//! provider.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::*;
use market_core::Cid;
use market_core::types::Address;
use piecestore::dagpb::RAW;
use piecestore::directory::export_tree;
use piecestore::unixfs::{DagHash, block_cid};
use piecestore::{FsPieceStore, PieceIndex, PieceStore, SqlitePieceIndex};
use retrieval_market::RetrievalProvider;
use retrieval_market::http::{HttpConfig, router};

fn same_tree(a: &Path, b: &Path) {
    let mut names: Vec<_> = std::fs::read_dir(a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    let mut other: Vec<_> = std::fs::read_dir(b)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    other.sort();
    assert_eq!(names, other, "{} vs {}", a.display(), b.display());
    for n in names {
        let (x, y) = (a.join(&n), b.join(&n));
        if x.is_dir() {
            same_tree(&x, &y);
        } else {
            assert!(
                std::fs::read(&x).unwrap() == std::fs::read(&y).unwrap(),
                "{}",
                y.display()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lassie_resolves_paths_through_sharded_directories() {
    let dir = tempfile::tempdir().unwrap();
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("big")).unwrap();
    std::fs::create_dir_all(tree.join("docs")).unwrap();
    for i in 0..400 {
        std::fs::write(
            tree.join(format!("big/file-{i:03}.txt")),
            format!("entry {i}\n"),
        )
        .unwrap();
    }
    std::fs::write(tree.join("docs/readme.txt"), "read me\n").unwrap();
    market_node::client::generate_file(&tree.join("data.bin"), 700_000, 3).unwrap();

    // The client binary: Kubo's layout, sharding past 4 KiB of links.
    let car = dir.path().join("tree.car");
    let out = run_ok(Command::new(env!("CARGO_BIN_EXE_client")).args([
        "--repo",
        dir.path().join("client").to_str().unwrap(),
        "data",
        "generate-car",
        "--profile",
        "kubo",
        "--shard-above",
        "4096",
        tree.to_str().unwrap(),
        car.to_str().unwrap(),
    ]));
    let root = field(&String::from_utf8(out.stdout).unwrap(), "root");
    let root_cid: Cid = root.parse().unwrap();

    let store = Arc::new(FsPieceStore::open(dir.path().join("pieces")).unwrap());
    let bytes = std::fs::read(&car).unwrap();
    let meta = store
        .put(Box::pin(std::io::Cursor::new(bytes.clone())), None)
        .await
        .unwrap();
    let index: Arc<dyn PieceIndex> =
        Arc::new(SqlitePieceIndex::open(&dir.path().join("index.db")).unwrap());
    piecestore::index_payload(&*index, meta, Box::pin(std::io::Cursor::new(bytes)))
        .await
        .unwrap();
    let provider = RetrievalProvider::new(store, index, None, Address::new_id(1001));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(listener, router(provider, HttpConfig::default()))
            .await
            .unwrap();
    });

    let fetch = |path: &str, name: &str| {
        let out_car = dir.path().join(format!("{name}.car"));
        let out = lassie(&[
            "--providers",
            &origin,
            "-o",
            out_car.to_str().unwrap(),
            path,
        ]);
        assert!(
            out.status.success(),
            "lassie {path}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out_car
    };

    // A file through the sharded directory, and one through a plain one.
    for (path, content) in [
        ("big/file-123.txt", "entry 123\n"),
        ("big/file-399.txt", "entry 399\n"),
        ("docs/readme.txt", "read me\n"),
    ] {
        let got = fetch(&format!("{root}/{path}"), &path.replace('/', "-"));
        let file = block_cid(RAW, DagHash::Sha256, 0, content.as_bytes());
        let written = dir.path().join(format!("{}.out", path.replace('/', "-")));
        export_tree(&got, Some(file), &written).unwrap();
        assert_eq!(std::fs::read_to_string(&written).unwrap(), content);
    }

    // The whole tree.
    let whole = fetch(&root, "whole");
    let written = dir.path().join("whole.out");
    let report = export_tree(&whole, Some(root_cid), &written).unwrap();
    assert_eq!((report.files, report.directories), (402, 3));
    same_tree(&tree, &written);

    // Our client writes the tree back out from the provider.
    let ours = dir.path().join("ours");
    let said = run_ok(Command::new(env!("CARGO_BIN_EXE_client")).args([
        "--repo",
        dir.path().join("client").to_str().unwrap(),
        "retrieve",
        "--provider",
        &origin,
        "--root",
        &root,
        "--out",
        ours.to_str().unwrap(),
    ]));
    let said = String::from_utf8(said.stdout).unwrap();
    assert!(said.contains("directory of 402 files"), "{said}");
    same_tree(&tree, &ours);
}
