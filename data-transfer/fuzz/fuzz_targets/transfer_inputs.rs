//! URL, id and range parsing must never panic, and ranges must stay inside the file.
#![no_main]

use data_transfer::{Source, TransferId, parse_range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Source::parse(text).map(|s| (s.host(), s.ip(), s.to_string()));
    let _ = TransferId::new(text);
    for len in [0u64, 1, 1000, u64::MAX] {
        if let Some((start, end)) = parse_range(text, len) {
            assert!(start < end && end <= len);
        }
    }
});
