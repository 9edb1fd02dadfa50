//! Piece CIDs arrive from peers (deal proposals, retrieval URLs): parsing arbitrary bytes or
//! text must never panic, and whatever parses must re-encode to the same CID.
#![no_main]

use commp::{Cid, PieceCid};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(cid) = Cid::try_from(data) {
        if let Ok(piece) = PieceCid::from_cid(&cid) {
            let again = match piece {
                PieceCid::V1(c) => c.to_cid_v1(),
                PieceCid::V2(v2) => v2.to_cid(),
                _ => return,
            };
            assert_eq!(again, cid);
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = text.parse::<PieceCid>();
    }
});
