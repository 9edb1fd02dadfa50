//! Any body a caller POSTs to a JSON-RPC endpoint gets an answer that is valid JSON-RPC:
//! one frame or an array of them, each with an id and exactly one of result and error,
//! standard codes for envelope errors, and never caller input quoted at length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use market_core::jsonrpc::{self, Call, Fault, Limits};
use serde_json::Value;

fn check(frame: &Value) {
    assert_eq!(frame["jsonrpc"], "2.0");
    assert!(frame.get("id").is_some());
    let (result, error) = (frame.get("result"), frame.get("error"));
    assert!(result.is_some() != error.is_some(), "{frame}");
    if let Some(e) = error {
        assert!(e["code"].is_i64());
        let m = e["message"].as_str().unwrap();
        // Envelope messages quote at most a clipped method name plus fixed words.
        assert!(m.len() <= 400 || m.starts_with("parse error"), "{} bytes", m.len());
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let answer = futures::executor::block_on(jsonrpc::answer(data, &limits, |c: Call| async move {
        match c.method.as_str() {
            "Echo" => Ok(Value::Array(c.params)),
            m => Err(Fault::not_found(m)),
        }
    }));
    match answer {
        None => {}
        Some(Value::Array(frames)) => {
            assert!(!frames.is_empty() && frames.len() <= limits.max_batch);
            frames.iter().for_each(check);
        }
        Some(frame) => check(&frame),
    }
});
