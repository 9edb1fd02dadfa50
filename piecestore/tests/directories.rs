//! UnixFS directories against boxo (Kubo's importer): `tests/boxo.json`, printed by
//! `tests/boxo/main.go`, holds a plain directory and a HAMT-sharded one of 300 entries,
//! every block and the CID each path resolves to.

use std::collections::HashMap;

use market_core::Cid;
use piecestore::dagpb::{DAG_PB, PbNode, RAW, UnixFsData};
use piecestore::hamt::{self, Entry, Geometry, Step};
use piecestore::unixfs::{DagHash, block_cid, verify_block};

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
