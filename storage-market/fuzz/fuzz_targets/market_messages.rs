//! Feeds arbitrary bytes to every decoder a peer can reach; none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use storage_market::cbor;
use storage_market::deal::{ClientDealProposal, PublishStorageDealsReturn};
use storage_market::message::*;
use storage_market::network::{ASK_V101, Wire};

const LIMIT: usize = 256 * 1024;

fuzz_target!(|data: &[u8]| {
    let _ = cbor::item_len(data);
    let _ = cbor::from_slice::<AskRequest>(data, LIMIT);
    let _ = cbor::from_slice::<AskResponse>(data, LIMIT);
    let _ = cbor::from_slice::<Proposal>(data, LIMIT);
    let _ = cbor::from_slice::<SignedResponse>(data, LIMIT);
    let _ = cbor::from_slice::<DealParams>(data, LIMIT);
    let _ = cbor::from_slice::<DealResponse>(data, LIMIT);
    let _ = cbor::from_slice::<DealStatusRequest>(data, LIMIT);
    let _ = cbor::from_slice::<DealStatusResponse>(data, LIMIT);
    let _ = cbor::from_slice::<DealStatusRequestV12>(data, LIMIT);
    let _ = cbor::from_slice::<DealStatusResponseV12>(data, LIMIT);
    let _ = cbor::from_slice::<ClientDealProposal>(data, LIMIT);
    let _ = cbor::from_slice::<PublishStorageDealsReturn>(data, LIMIT);
    // The legacy tuple forms of /fil/storage/ask/1.0.1.
    let _ = <AskRequest as Wire>::decode(data, ASK_V101, LIMIT);
    let _ = <AskResponse as Wire>::decode(data, ASK_V101, LIMIT);
});
