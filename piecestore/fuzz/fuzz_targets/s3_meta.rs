//! An S3 piece store's meta objects come back from a bucket that other processes (or a
//! tampered bucket) may have written: any bytes give a record or a typed error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = piecestore::s3::parse_meta(data, None) {
        assert!(record.meta.payload_size <= u64::from(record.meta.padded_size.unpadded()));
        assert!(!record.object.split('/').any(|p| p == ".." || p.is_empty()));
    }
});
