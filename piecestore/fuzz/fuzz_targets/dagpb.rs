#![no_main]
//! DAG-PB nodes and UnixFS data come from peers (CARs, gateway responses): decoding must
//! never panic, and whatever decodes must re-encode to something that decodes the same.
//! A node that declares itself a HAMT shard is also read as one (every link classified, a
//! name looked up at every depth), as path resolution and export read shards from peers.

use libfuzzer_sys::fuzz_target;
use piecestore::dagpb::{PbNode, UnixFsData};
use piecestore::hamt::{self, Geometry};

fuzz_target!(|data: &[u8]| {
    if let Ok(node) = PbNode::decode(data) {
        let again = PbNode::decode(&node.encode()).expect("re-encoded node decodes");
        assert_eq!(again, node);
        if let Some(fs) = node.data.as_deref().and_then(|d| UnixFsData::decode(d).ok())
            && let Ok(geom) = Geometry::of(&fs)
        {
            for link in &node.links {
                let _ = hamt::classify(&geom, link);
            }
            for depth in 0..12 {
                let _ = hamt::lookup(&geom, &node, "file-123.txt", depth);
            }
        }
    }
    let _ = UnixFsData::decode(data);
});
