//! Feeds arbitrary bytes to every decoder a peer can reach; none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    storage_market::network::decode_any(data, 256 * 1024);
});
