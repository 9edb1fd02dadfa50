//! The quote protocol's wire contract: golden vectors (`tests/quote_vectors.json`, the exact
//! bytes and signatures from fixed keys; `UPDATE_VECTORS=1` rewrites them after a deliberate
//! change), the checks each side makes, and decoders that never panic on any input.

use market_broker::quote::{
    self, MAX_MESSAGE_SIZE, Quote, QuoteError, QuoteRequest, QuoteResponse, SignedQuote,
    SignedQuoteRequest, check_quote, check_request, decode_request, decode_response, within_quote,
};
use market_core::cbor;
use market_core::deal::DealProposal;
use market_core::types::{Address, ChainEpoch, DealLabel, TokenAmount};
use market_core::wallet::{KeyType, PrivateKey};
use proptest::prelude::*;

fn key(kind: KeyType, byte: u8) -> PrivateKey {
    PrivateKey::from_bytes(kind, &[byte; 32]).unwrap()
}

fn request(client: &PrivateKey) -> QuoteRequest {
    QuoteRequest::new(
        Address::new_id(1000),
        client.address(),
        32 << 30,
        518_400,
        true,
        ChainEpoch::new(5_000_000),
        ChainEpoch::new(5_010_000),
        42,
    )
}

fn signed_request(client: &PrivateKey) -> SignedQuoteRequest {
    let request = request(client);
    SignedQuoteRequest {
        signature: client.sign(&request.to_cbor()),
        request,
    }
}

fn signed_quote(req: &QuoteRequest, worker: &PrivateKey) -> SignedQuote {
    let quote = Quote::new(
        req,
        TokenAmount::from_atto(3_200),
        TokenAmount::from_nano(1_500),
        ChainEpoch::new(5_001_000),
        ChainEpoch::new(4_999_000),
        100 << 40,
    );
    SignedQuote {
        signature: worker.sign(&quote.to_cbor()),
        quote,
    }
}

fn proposal(req: &QuoteRequest, q: &Quote) -> DealProposal {
    DealProposal {
        piece_cid: "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
            .parse()
            .unwrap(),
        piece_size: req.piece_size,
        verified_deal: req.verified,
        client: req.client,
        provider: req.provider,
        label: DealLabel::default(),
        start_epoch: q.earliest_start,
        end_epoch: q.earliest_start.plus(req.duration),
        storage_price_per_epoch: q.price_per_epoch,
        provider_collateral: q.collateral,
        client_collateral: TokenAmount::ZERO,
    }
}

#[test]
fn the_wire_bytes_match_the_vectors() {
    let worker = key(KeyType::Secp256k1, 9);
    let mut vectors = Vec::new();
    for (name, client) in [
        ("secp256k1 client", key(KeyType::Secp256k1, 7)),
        ("bls client", key(KeyType::Bls, 1)),
    ] {
        let req = signed_request(&client);
        let q = signed_quote(&req.request, &worker);
        let bid = QuoteResponse::bid(q);
        let no = QuoteResponse::decline("only 12 bytes free");
        vectors.push(serde_json::json!({
            "name": name,
            "request": hex::encode(cbor::to_vec(&req)),
            "request_digest": hex::encode(req.request.digest()),
            "quote_response": hex::encode(cbor::to_vec(&bid)),
            "decline_response": hex::encode(cbor::to_vec(&no)),
        }));
        // What is sent decodes to what was made.
        assert_eq!(decode_request(&cbor::to_vec(&req)).unwrap(), req);
        assert_eq!(decode_response(&cbor::to_vec(&bid)).unwrap(), bid);
        assert_eq!(decode_response(&cbor::to_vec(&no)).unwrap(), no);
    }
    let got = serde_json::to_string_pretty(&vectors).unwrap() + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/quote_vectors.json");
    if std::env::var_os("UPDATE_VECTORS").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        got, want,
        "the quote protocol's bytes changed: a new protocol version, or UPDATE_VECTORS=1"
    );
    // The keys are in canonical order (shorter first, then bytewise), as cbor-gen writes them.
    let req: serde_json::Value = serde_json::from_str(&want).unwrap();
    let bytes = hex::decode(req[0]["request"].as_str().unwrap()).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let at = |k: &str| text.find(k).unwrap();
    assert!(at("Request") < at("Signature"));
    assert!(at("Nonce") < at("Client") && at("Client") < at("Duration"));
}

#[test]
fn a_provider_checks_the_request() {
    let client = key(KeyType::Secp256k1, 7);
    let head = ChainEpoch::new(4_990_000);
    let good = signed_request(&client);
    check_request(&good, &client.address(), head).unwrap();

    let mut forged = good.clone();
    forged.request.piece_size = 64 << 30;
    assert!(matches!(
        check_request(&forged, &client.address(), head),
        Err(QuoteError::BadSignature { .. })
    ));
    let other = key(KeyType::Secp256k1, 8);
    let mut theirs = good.clone();
    theirs.signature = other.sign(&good.request.to_cbor());
    assert!(matches!(
        check_request(&theirs, &client.address(), head),
        Err(QuoteError::BadSignature { .. })
    ));
    let resigned = |f: &dyn Fn(&mut QuoteRequest)| {
        let mut r = request(&client);
        f(&mut r);
        SignedQuoteRequest {
            signature: client.sign(&r.to_cbor()),
            request: r,
        }
    };
    for (why, bad) in [
        ("size", resigned(&|r| r.piece_size = 3 << 20)),
        ("duration", resigned(&|r| r.duration = 0)),
        (
            "empty window",
            resigned(&|r| r.start_before = ChainEpoch::new(4_000_000)),
        ),
    ] {
        assert!(
            matches!(
                check_request(&bad, &client.address(), head),
                Err(QuoteError::InvalidRequest(_))
            ),
            "{why}"
        );
    }
    assert!(matches!(
        check_request(&good, &client.address(), ChainEpoch::new(5_010_000)),
        Err(QuoteError::InvalidRequest(m)) if m.contains("ends at")
    ));
}

/// A change to a proposal that breaks one quoted term.
type Break = Box<dyn Fn(&mut DealProposal)>;

#[test]
fn a_broker_checks_the_quote_and_a_deal_within_it_holds() {
    let client = key(KeyType::Bls, 1);
    let worker = key(KeyType::Secp256k1, 9);
    let req = request(&client);
    let q = signed_quote(&req, &worker);
    let head = ChainEpoch::new(4_998_000);
    let got = check_quote(&q, &req, &worker.address(), head).unwrap();
    assert_eq!(got, &q.quote);

    // Another worker's signature, another request, an expired quote, a start too late.
    let impostor = key(KeyType::Secp256k1, 10);
    assert!(matches!(
        check_quote(&q, &req, &impostor.address(), head),
        Err(QuoteError::BadSignature { .. })
    ));
    let mut other = req.clone();
    other.nonce += 1;
    assert!(matches!(
        check_quote(&q, &other, &worker.address(), head),
        Err(QuoteError::Mismatch(_))
    ));
    assert!(matches!(
        check_quote(&q, &req, &worker.address(), ChainEpoch::new(4_999_001)),
        Err(QuoteError::Mismatch(m)) if m.contains("valid until")
    ));
    let mut late = q.quote.clone();
    late.earliest_start = ChainEpoch::new(5_010_001);
    let late = SignedQuote {
        signature: worker.sign(&late.to_cbor()),
        quote: late,
    };
    assert!(matches!(
        check_quote(&late, &req, &worker.address(), head),
        Err(QuoteError::Mismatch(m)) if m.contains("window")
    ));

    // A proposal on the quoted terms holds, also paying more; each broken term is named.
    let quote = &q.quote;
    let deal = proposal(&req, quote);
    within_quote(&deal, &req, quote, head).unwrap();
    let mut richer = deal.clone();
    richer.storage_price_per_epoch = TokenAmount::from_atto(10_000);
    within_quote(&richer, &req, quote, head).unwrap();
    let breaks: [(&str, Break); 6] = [
        (
            "price",
            Box::new(|d| d.storage_price_per_epoch = TokenAmount::from_atto(3_199)),
        ),
        (
            "collateral",
            Box::new(|d| d.provider_collateral = TokenAmount::ZERO),
        ),
        ("duration", Box::new(|d| d.end_epoch = d.end_epoch.plus(1))),
        (
            "start",
            Box::new(|d| {
                d.start_epoch = d.start_epoch.plus(-1);
                d.end_epoch = d.end_epoch.plus(-1);
            }),
        ),
        ("verified", Box::new(|d| d.verified_deal = false)),
        ("client", Box::new(|d| d.client = Address::new_id(5))),
    ];
    for (why, f) in breaks {
        let mut d = deal.clone();
        f(&mut d);
        assert!(within_quote(&d, &req, quote, head).is_err(), "{why}");
    }
    assert!(within_quote(&deal, &req, quote, ChainEpoch::new(4_999_001)).is_err());
}

#[test]
fn oversized_and_foreign_messages_are_typed_errors() {
    let client = key(KeyType::Secp256k1, 7);
    let mut big = signed_request(&client);
    big.signature = market_core::types::Signature::new(
        market_core::types::SignatureType::Bls,
        vec![0; MAX_MESSAGE_SIZE],
    );
    assert!(matches!(
        decode_request(&cbor::to_vec(&big)),
        Err(QuoteError::Decode(_))
    ));
    assert!(matches!(
        decode_request(b"\xa0"),
        Err(QuoteError::Decode(_))
    ));
    assert!(matches!(
        decode_response(&[0xff; 3]),
        Err(QuoteError::Decode(_))
    ));
    let long = QuoteResponse::decline(&"é".repeat(500));
    assert!(long.message.len() <= quote::MAX_REASON_LEN);
    assert!(long.message.chars().all(|c| c == 'é'));
}

proptest! {
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_request(&bytes);
        let _ = decode_response(&bytes);
    }

    #[test]
    fn mutated_messages_never_panic(at in 0usize..400, byte in any::<u8>(), cut in 0usize..400) {
        let client = key(KeyType::Secp256k1, 7);
        let req = signed_request(&client);
        let worker = key(KeyType::Secp256k1, 9);
        for mut bytes in [
            cbor::to_vec(&req),
            cbor::to_vec(&QuoteResponse::bid(signed_quote(&req.request, &worker))),
        ] {
            if at < bytes.len() {
                bytes[at] = byte;
            }
            bytes.truncate(cut.max(1));
            if let Ok(r) = decode_request(&bytes) {
                let _ = check_request(&r, &client.address(), ChainEpoch::new(0));
            }
            if let Ok(QuoteResponse { quote: Some(q), .. }) = decode_response(&bytes) {
                let _ = check_quote(&q, &req.request, &worker.address(), ChainEpoch::new(0));
            }
        }
    }
}
