#![no_main]
//! DAG-PB nodes and UnixFS data come from peers (CARs, gateway responses): decoding must
//! never panic, and whatever decodes must re-encode to something that decodes the same.

use libfuzzer_sys::fuzz_target;
use piecestore::dagpb::{PbNode, UnixFsData};

fuzz_target!(|data: &[u8]| {
    if let Ok(node) = PbNode::decode(data) {
        let again = PbNode::decode(&node.encode()).expect("re-encoded node decodes");
        assert_eq!(again, node);
    }
    let _ = UnixFsData::decode(data);
});
