//! Any bytes a node sends back decode into an error or a value, never a panic: every Lotus
//! JSON shape the adapter reads, and the messages in them re-encoded to CBOR and hashed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotus_api::json::*;
use market_core::message::{SignedMessage, UnsignedMessage};

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = serde_json::from_value::<TipSetJson>(v.clone());
    let _ = serde_json::from_value::<Vec<HeadChangeJson>>(v.clone());
    let _ = serde_json::from_value::<MinerInfoJson>(v.clone());
    let _ = serde_json::from_value::<MarketDealJson>(v.clone()).map(market_core::chain::MarketDeal::from);
    let _ = serde_json::from_value::<MsgLookupJson>(v.clone());
    let _ = serde_json::from_value::<MarketBalanceJson>(v.clone());
    let _ = serde_json::from_value::<CollateralBoundsJson>(v.clone());
    let _ = serde_json::from_value::<InvocResultJson>(v.clone());
    let _ = serde_json::from_value::<VersionJson>(v.clone());
    if let Ok(m) = serde_json::from_value::<SignedMessageJson>(v.clone()) {
        let s: Result<SignedMessage, _> = m.try_into();
        if let Ok(s) = s {
            let _ = s.cid();
        }
    }
    if let Ok(m) = serde_json::from_value::<MessageJson>(v) {
        let u: UnsignedMessage = m.into();
        let _ = UnsignedMessage::from_cbor(&u.to_cbor());
    }
});
