#![no_main]
//! Never panic on outside input: indexer answers, ads, entry chunks, heads, metadata and
//! context ids. What decodes must also re-encode and decode to the same value.

use libfuzzer_sys::fuzz_target;
use market_ipni::{context, find, ingest, metadata, schema, sign};

fuzz_target!(|data: &[u8]| {
    let _ = find::parse_find(data);
    let _ = ingest::parse_ad_state(data);
    if let Ok(ad) = schema::decode_ad(data, None) {
        let _ = sign::verify_ad(&ad);
        let block = schema::encode(&ad).expect("a decoded ad encodes");
        assert_eq!(schema::decode_ad(&block.data, Some(&block.cid)).unwrap(), ad);
    }
    if let Ok(chunk) = schema::decode_chunk(data, None) {
        let block = schema::encode(&chunk).expect("a decoded chunk encodes");
        assert_eq!(schema::decode_chunk(&block.data, Some(&block.cid)).unwrap(), chunk);
    }
    let _ = sign::SignedHead::decode_verified(data);
    if let Ok(ts) = metadata::decode(data) {
        assert!(!ts.is_empty());
    }
    if let Ok((size, piece)) = context::parse_piece_context_id(data) {
        assert_eq!(
            context::parse_piece_context_id(&context::piece_context_id(size, &piece)).unwrap(),
            (size, piece)
        );
    }
});
