#![no_main]
//! Never panic on peer input: CBOR query messages, Range headers, gateway paths and queries,
//! denylists.

use libfuzzer_sys::fuzz_target;
use retrieval_market::types::{Query, QueryResponse, TransportsResponse};
use market_core::cbor;

fuzz_target!(|data: &[u8]| {
    let _ = cbor::from_slice::<Query>(data, 64 << 10);
    let _ = cbor::from_slice::<QueryResponse>(data, 64 << 10);
    let _ = cbor::from_slice::<TransportsResponse>(data, 64 << 10);
    let _ = retrieval_market::denylist::parse(data);
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(ranges) = retrieval_market::range::parse_ranges(s, 1 << 30) {
            assert!(ranges.iter().all(|r| r.start < r.end && r.end <= 1 << 30));
        }
        let (path, rest) = s.split_once('?').unwrap_or((s, ""));
        let (query, accept) = rest.split_once('\n').unwrap_or((rest, ""));
        let _ = retrieval_market::gateway::parse_request(path, Some(query), Some(accept));
    }
});
