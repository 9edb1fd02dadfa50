//! Any `Authorization` value is refused with a typed error unless it is a token signed with
//! the secret; forging one from arbitrary bytes never yields a permission.
#![no_main]

use libfuzzer_sys::fuzz_target;
use market_core::jwt;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Arbitrary text must not verify (the chance of hitting a valid MAC is nil).
    assert!(jwt::verify(SECRET, text).is_err());
    // A real token with the fuzz input as a suffix or inside a claim stays consistent.
    let t = jwt::sign(SECRET, &[jwt::READ]).unwrap();
    if !text.is_empty() {
        assert!(jwt::verify(SECRET, &format!("{t}{text}")).is_err() || text.trim().is_empty());
    }
});
