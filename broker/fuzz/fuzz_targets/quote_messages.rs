//! Feeds arbitrary bytes to both quote decoders, and whatever decodes to the checks a
//! provider and a broker make; none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use market_broker::quote::{check_quote, check_request, decode_request, decode_response};
use market_core::types::{Address, ChainEpoch};

fuzz_target!(|data: &[u8]| {
    let head = ChainEpoch::new(1_000);
    if let Ok(r) = decode_request(data) {
        let _ = check_request(&r, &r.request.client, head);
        let _ = market_broker::bid(
            &Default::default(),
            &r.request,
            &market_broker::BidFacts::new(head, u64::MAX, Default::default()),
        );
    }
    if let Ok(resp) = decode_response(data)
        && let Some(q) = resp.quote
    {
        let req = market_broker::QuoteRequest::new(
            q.quote.provider,
            Address::new_id(1),
            2048,
            1,
            false,
            head,
            head.plus(10),
            0,
        );
        let _ = check_quote(&q, &req, &Address::new_id(2), head);
    }
});
