//! UnixFS directories against boxo (Kubo's importer): `tests/boxo.json`, printed by
//! `tests/boxo/main.go`, holds a plain directory and a HAMT-sharded one of 300 entries,
//! every block and the CID each path resolves to.

use std::collections::HashMap;
use std::path::Path;

use market_core::Cid;
use piecestore::CarIndexer;
use piecestore::dagpb::{DAG_PB, PbLink, PbNode, RAW, UnixFsData};
use piecestore::directory::{export_tree, import_dir, tree_bytes, write_tree};
use piecestore::hamt::{self, Entry, Geometry, Step};
use piecestore::unixfs::{
    DagHash, ImportProfile, UnixFsError, block_cid, verify_block, verify_car,
};

struct Vectors {
    roots: HashMap<String, Cid>,
    paths: HashMap<String, Cid>,
    /// Blocks by multihash.
    blocks: HashMap<Vec<u8>, Vec<u8>>,
}

fn vectors() -> Vectors {
    let v: serde_json::Value =
        serde_json::from_str(include_str!("boxo.json")).expect("boxo.json parses");
    let cids = |k: &str| -> HashMap<String, Cid> {
        v[k].as_object()
            .unwrap()
            .iter()
            .map(|(k, c)| (k.clone(), c.as_str().unwrap().parse().unwrap()))
            .collect()
    };
    let blocks = v["blocks"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(mh, b)| {
            (
                hex::decode(mh).unwrap(),
                hex::decode(b.as_str().unwrap()).unwrap(),
            )
        })
        .collect();
    Vectors {
        roots: cids("roots"),
        paths: cids("paths"),
        blocks,
    }
}

impl Vectors {
    fn block(&self, cid: &Cid) -> &[u8] {
        let data = &self.blocks[&cid.hash().to_bytes()];
        verify_block(cid, data).unwrap();
        data
    }
}

fn pb_cid(bytes: &[u8]) -> Cid {
    block_cid(DAG_PB, DagHash::Sha256, 0, bytes)
}

/// Every name of boxo's sharded directory resolves, through its sub-shards, to the CID boxo
/// put there; a name that is not there is absent.
#[test]
fn hamt_lookups_match_boxo() {
    let v = vectors();
    let root = v.roots["hamt"];
    let lookup = |name: &str| -> Option<(Cid, usize)> {
        let mut cid = root;
        for depth in 0.. {
            let node = PbNode::decode(v.block(&cid)).unwrap();
            let fs = UnixFsData::decode(node.data.as_deref().unwrap()).unwrap();
            let geom = Geometry::of(&fs).unwrap();
            match hamt::lookup(&geom, &node, name, depth).unwrap() {
                Step::Found(c) => return Some((c, depth)),
                Step::Descend(c) => cid = c,
                Step::Absent => return None,
            }
        }
        unreachable!()
    };
    let mut deepest = 0;
    for (path, want) in &v.paths {
        let Some(name) = path.strip_prefix("hamt/") else {
            continue;
        };
        let (got, depth) = lookup(name).unwrap_or_else(|| panic!("{name} not found"));
        assert_eq!(got, *want, "{name}");
        deepest = deepest.max(depth);
    }
    assert!(deepest >= 1, "the vectors should exercise sub-shards");
    assert_eq!(lookup("file-300.txt"), None);
}

/// Building a shard tree from the same entries gives boxo's root and blocks, byte for byte.
#[test]
fn hamt_build_matches_boxo() {
    let v = vectors();
    let entries: Vec<Entry> = v
        .paths
        .iter()
        .filter_map(|(p, c)| {
            let name = p.strip_prefix("hamt/")?;
            assert_eq!(c.codec(), RAW);
            Some(Entry {
                name: name.to_string(),
                cid: *c,
                tsize: v.block(c).len() as u64,
            })
        })
        .collect();
    let built = hamt::build(entries, hamt::DEFAULT_FANOUT, &pb_cid).unwrap();
    for (cid, bytes) in &built.nodes {
        assert_eq!(v.block(cid), &bytes[..], "shard {cid}");
    }
    assert_eq!(built.root, v.roots["hamt"]);
}

/// The blocks of a CAR in order, and its roots.
fn car_blocks(car: &[u8]) -> (Vec<(Cid, Vec<u8>)>, Vec<Cid>) {
    let mut at = Vec::new();
    let mut ix = CarIndexer::new();
    ix.update(car, &mut |e| at.push((e.cid, e.offset, e.size)))
        .unwrap();
    let roots = ix.finish().unwrap();
    let blocks = at
        .into_iter()
        .map(|(c, o, s)| (c, car[o as usize..(o + s) as usize].to_vec()))
        .collect();
    (blocks, roots)
}

fn write(path: &Path, content: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

/// boxo's plain directory: a.txt, b.bin and sub/c.txt.
fn plain_tree(dir: &Path) {
    write(&dir.join("a.txt"), "hello\n");
    write(
        &dir.join("b.bin"),
        "the second file, a little longer than the first one\n",
    );
    write(&dir.join("sub/c.txt"), "in the subdirectory\n");
}

/// Importing the same tree as boxo gives boxo's root and exactly its blocks, root first and
/// each directory before its entries; writing it back out gives the same files.
#[test]
fn plain_directory_imports_as_boxo_does_and_exports_back() {
    let v = vectors();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("plain");
    plain_tree(&src);
    let mut car = Vec::new();
    let mut last = 0;
    let report = import_dir(&src, ImportProfile::KUBO, &mut car, &mut |n| last = n).unwrap();
    assert_eq!(report.root, v.roots["plain"]);
    assert_eq!((report.files, report.directories), (3, 2));
    let bytes = tree_bytes(&src).unwrap();
    assert_eq!(report.bytes, bytes);
    assert_eq!(last, 2 * bytes, "progress counts both walks");

    let (blocks, roots) = car_blocks(&car);
    assert_eq!(roots, vec![v.roots["plain"]]);
    assert_eq!(report.blocks, blocks.len() as u64);
    let order: Vec<Cid> = blocks.iter().map(|(c, _)| *c).collect();
    let p = |k: &str| v.paths[k];
    assert_eq!(
        order,
        vec![
            v.roots["plain"],
            p("plain/a.txt"),
            p("plain/b.bin"),
            p("plain/sub"),
            p("plain/sub/c.txt")
        ]
    );
    for (cid, data) in &blocks {
        assert_eq!(v.block(cid), &data[..], "{cid}");
    }

    let car_file = tmp.path().join("plain.car");
    std::fs::write(&car_file, &car).unwrap();
    let out = tmp.path().join("out");
    let tree = export_tree(&car_file, None, &out).unwrap();
    assert_eq!((tree.files, tree.directories, tree.bytes), (3, 2, bytes));
    for f in ["a.txt", "b.bin", "sub/c.txt"] {
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(src.join(f)).unwrap(),
            "{f}"
        );
    }
    // The output must not exist yet: nothing is merged into or written over.
    assert!(matches!(
        export_tree(&car_file, None, &out),
        Err(UnixFsError::Io(_))
    ));
    // A file's root exports as a file.
    let single = tmp.path().join("a-again.txt");
    let t = export_tree(&car_file, Some(p("plain/a.txt")), &single).unwrap();
    assert_eq!((t.files, t.directories), (1, 0));
    assert_eq!(std::fs::read(&single).unwrap(), b"hello\n");
}

/// Above the sharding threshold a directory becomes boxo's HAMT, byte for byte; the
/// sharded tree exports back to the same 300 files.
#[test]
fn large_directory_shards_as_boxo_does_and_exports_back() {
    let v = vectors();
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("hamt");
    for i in 0..300 {
        write(
            &src.join(format!("file-{i:03}.txt")),
            &format!("entry {i}\n"),
        );
    }
    let profile = ImportProfile {
        // 300 links of about 48 bytes: over 4 KiB, under Kubo's 256 KiB.
        shard_above: 4096,
        ..ImportProfile::KUBO
    };
    let mut car = Vec::new();
    let report = import_dir(&src, profile, &mut car, &mut |_| {}).unwrap();
    assert_eq!(report.root, v.roots["hamt"]);
    let (blocks, _) = car_blocks(&car);
    assert_eq!(blocks[0].0, v.roots["hamt"]);
    for (cid, data) in &blocks {
        assert_eq!(v.block(cid), &data[..], "{cid}");
    }
    assert_eq!(blocks.len(), v.blocks.len() - 5, "every hamt block, once");

    // Under the threshold the same directory stays plain.
    let mut plain = Vec::new();
    let r = import_dir(&src, ImportProfile::KUBO, &mut plain, &mut |_| {}).unwrap();
    assert_ne!(r.root, report.root);
    assert_eq!(car_blocks(&plain).0.len(), 301);

    let car_file = tmp.path().join("hamt.car");
    std::fs::write(&car_file, &car).unwrap();
    let out = tmp.path().join("out");
    let tree = export_tree(&car_file, None, &out).unwrap();
    assert_eq!((tree.files, tree.directories), (300, 1));
    for i in [0, 150, 299] {
        let name = format!("file-{i:03}.txt");
        assert_eq!(
            std::fs::read_to_string(out.join(&name)).unwrap(),
            format!("entry {i}\n")
        );
    }
}

/// Identical files and subtrees are written once; the CAR still holds the whole DAG.
#[test]
fn repeated_content_is_written_once() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    plain_tree(&src.join("one"));
    plain_tree(&src.join("two"));
    write(&src.join("three.txt"), "hello\n");
    let mut car = Vec::new();
    let report = import_dir(&src, ImportProfile::KUBO, &mut car, &mut |_| {}).unwrap();
    assert_eq!((report.files, report.directories), (7, 5));
    let (blocks, _) = car_blocks(&car);
    // The root, one copy of the plain tree (5 blocks); three.txt is a.txt's block.
    assert_eq!(blocks.len(), 6);
    let unique: std::collections::HashSet<_> = blocks.iter().map(|(c, _)| c).collect();
    assert_eq!(unique.len(), blocks.len());
    let car_file = tmp.path().join("src.car");
    std::fs::write(&car_file, &car).unwrap();
    assert_eq!(verify_car(&car_file, &report.root, true).unwrap(), 6);
}

/// What a directory import cannot represent is refused by name, never skipped.
#[test]
fn symlinks_are_refused_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    plain_tree(&src);
    std::os::unix::fs::symlink(src.join("a.txt"), src.join("link")).unwrap();
    let err = import_dir(&src, ImportProfile::KUBO, &mut Vec::new(), &mut |_| {}).unwrap_err();
    match err {
        UnixFsError::Entry { path, .. } => assert!(path.ends_with("link"), "{path}"),
        e => panic!("{e}"),
    }
}

/// A directory from a peer naming an entry `..` (or anything leaving the output) is refused
/// before anything is written outside.
#[test]
fn hostile_entry_names_are_refused() {
    let leaf = b"escaped\n".to_vec();
    let leaf_cid = block_cid(RAW, DagHash::Sha256, 0, &leaf);
    for name in ["..", "a/../../b", ""] {
        let node = PbNode {
            links: vec![PbLink {
                cid: leaf_cid,
                name: name.to_string(),
                tsize: Some(leaf.len() as u64),
            }],
            data: Some(UnixFsData::directory().encode()),
        }
        .encode();
        let root = pb_cid(&node);
        let blocks: HashMap<Cid, Vec<u8>> = [(root, node), (leaf_cid, leaf.clone())].into();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("a").join("out");
        std::fs::create_dir(tmp.path().join("a")).unwrap();
        let err = write_tree(
            &root,
            &mut |c| {
                blocks
                    .get(c)
                    .cloned()
                    .ok_or(UnixFsError::MissingBlock(c.to_string()))
            },
            &out,
        )
        .unwrap_err();
        assert!(matches!(err, UnixFsError::Entry { .. }), "{name:?}: {err}");
        assert!(!tmp.path().join("b").exists() && !tmp.path().join("a/b").exists());
    }
}
