//! Golden vectors: real Lotus-signed proposals reproduce byte for byte, and every wire message
//! round-trips with its keys in cbor-gen's canonical order.

use std::str::FromStr;

use base64::Engine;
use storage_market::Cid;
use storage_market::cbor::{self, DecodeError};
use storage_market::deal::{
    ClientDealProposal, DealProposal, PublishStorageDealsParams, PublishStorageDealsReturn,
};
use storage_market::message::*;
use storage_market::types::*;
use storage_market::wallet::verify;

const LIMIT: usize = 1 << 16;

/// (piece CID, label, BLS signature base64, ProposalCid) of the three MinerDeals in droplet's
/// `cli/testdata/lotus_miner_query_result.json` (Lotus-signed, mainnet f020523).
const LOTUS_DEALS: [(&str, &str, &str, &str); 3] = [
    (
        "baga6ea4seaqp2gxiw4a5hrerykjpti7bzm6n6oc236jbkdykctwgthcmpqnjqhy",
        "uAXASIDsH7LfFV_4X1aEm-9rWbsculXCLOFM3o5VlGvaq_SzJ",
        "ta1aI6Iz4AqOrE4sBBfuFQxlgN4TM5dKbMuHlmlNkvTb8wU6jA/fTOouJW6Cy8A0GYPSZymP+18WSW1yt4r0g9etFr7KASVN9/78wzFJ48bbrYV2WWYzt6pnXrG9sgMy",
        "bafyreiaskbu5kx3qje5fvgsymtlogitaiwx6quksv57rppw33ogw2gwz3a",
    ),
    (
        "baga6ea4seaqd65rktwpqdoc52ga5vt4tyydvdph6wflp6njs73verpundawicoa",
        "uAXASIFb4y384Cke03LGnMVpNn-ZV83oUaro4soRsfvw3rKx0",
        "qFgZWscttskyN/rvNsU+D64sT2/bhLcphQiZnkPoyBlCsmjAWAzrK1N2D7ANDcs1Gema1Mu4JyljwZbG7BIWwOgbGdHk9YaEEt4NkLkSvDgr7genkUwPIBh9IssMJxbB",
        "bafyreibavnnp5yql7m3df5ufdooxx22uzytctcqlo6rvddhccks5gzhjoe",
    ),
    (
        "baga6ea4seaqnbsxmgpdt2kddech6ekvh5rxc7fqedbfi4ght7ct2nks5kphowcy",
        "uAXASIPKr8XKZYBzQdDigba8ASqYzuFYtZYsF03OthB_Xa313",
        "oKwMdEvsghaHsd1YQQIYPB9MPGgjbH6IUOWFiToIMIfyyQyYpKKsgdIK9ZueJ7pnBOOa//PVWsyAFaGcznMBK6TDIh8OeJmkB1K5ENoTLFq7AZnF+SLMkGP1MkR98SVu",
        "bafyreibkd4co27mn5p2bebkyviqkl5mueyoc6rip7h7f5irwg67hqejpaa",
    ),
];

const CLIENT: &str =
    "f3wivhkdivcxj5zp2l4wjkzon232s52smnd5m3na66ujl5nel75jggguhgaa3zbhjo3as4epf5ytxl6ly3qoha";

fn lotus_deal(i: usize) -> ClientDealProposal {
    let (piece, label, sig, _) = LOTUS_DEALS[i];
    ClientDealProposal {
        proposal: DealProposal {
            piece_cid: Cid::from_str(piece).unwrap(),
            piece_size: 16_777_216,
            verified_deal: false,
            client: CLIENT.parse().unwrap(),
            provider: "f020523".parse().unwrap(),
            label: DealLabel::String(label.into()),
            start_epoch: ChainEpoch::new(649_604),
            end_epoch: ChainEpoch::new(1_171_644),
            storage_price_per_epoch: TokenAmount::ZERO,
            provider_collateral: TokenAmount::ZERO,
            client_collateral: TokenAmount::ZERO,
        },
        client_signature: Signature::new(
            SignatureType::Bls,
            base64::engine::general_purpose::STANDARD
                .decode(sig)
                .unwrap(),
        ),
    }
}

#[test]
fn lotus_signed_proposals_reproduce_their_cids_and_signatures() {
    for (i, (_, _, _, want_cid)) in LOTUS_DEALS.iter().enumerate() {
        let deal = lotus_deal(i);
        assert_eq!(deal.cid().to_string(), *want_cid, "record {i}");
        // The client's real BLS signature verifies over our encoding of the proposal.
        verify(
            &deal.client_signature,
            &deal.proposal.client,
            &deal.proposal.to_cbor(),
        )
        .unwrap();
        let bytes = cbor::to_vec(&deal);
        assert_eq!(bytes.len(), 271);
        let back: ClientDealProposal = cbor::from_slice(&bytes, LIMIT).unwrap();
        assert_eq!(back, deal);
    }
}

#[test]
fn record_one_bytes_and_on_chain_cid() {
    let deal = lotus_deal(0);
    assert_eq!(
        hex::encode(deal.proposal.to_cbor()),
        "8bd82a5828000181e203922020fd1ae8b701d3c491c292f9a3e1cb3cdf385adf92150f0a14ec699c4c7c1a981f1a01000000f4583103b22a750d1515d3dcbf4be592acb9badea5dd498d1f59b683dea257d6917fea4c6350e60037909d2ed825c23cbdc4eebf4400aba0017831754158415349447348374c6646565f34583161456d2d397257627363756c58434c4f464d336f35566c477661715f537a4a1a0009e9841a0011e0bc404040"
    );
    assert_eq!(
        deal.proposal.cid().to_string(),
        "bafy2bzacec5bp2hal3v5gsm52ohm63ml6lzepzt7ficoo6usbkuajno2i7gkw"
    );
    assert_eq!(
        hex::encode(status_request_payload(&deal.cid())),
        "d82a58250001711220125069d55f70493a5a9a5864d6e3226045afe85152af7f17bedbdb8d6d1ad9d8"
    );
}

#[test]
fn ask_request_golden() {
    let req = AskRequest {
        miner: "f020523".parse().unwrap(),
    };
    let bytes = cbor::to_vec(&req);
    assert_eq!(
        hex::encode(&bytes),
        "a1654d696e6572440 0aba001".replace(' ', "")
    );
    assert_eq!(cbor::from_slice::<AskRequest>(&bytes, LIMIT).unwrap(), req);
}

fn sample_ask() -> StorageAsk {
    StorageAsk {
        miner: Address::new_id(1000),
        price: TokenAmount::from_atto(500_000_000),
        seq_no: 3,
        expiry: ChainEpoch::new(1_000_100),
        timestamp: ChainEpoch::new(100),
        max_piece_size: 32 << 30,
        min_piece_size: 256,
        verified_price: TokenAmount::from_atto(50_000_000),
    }
}

/// The text keys of a CBOR map, in wire order.
fn map_keys(bytes: &[u8]) -> Vec<String> {
    let v: ipld_like::Value = serde_ipld_dagcbor::from_slice(bytes).unwrap();
    v.0
}

mod ipld_like {
    use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
    pub(super) struct Value(pub(super) Vec<String>);
    impl<'de> Deserialize<'de> for Value {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> Visitor<'de> for V {
                type Value = Value;
                fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    f.write_str("map")
                }
                fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Value, A::Error> {
                    let mut keys = Vec::new();
                    while let Some(k) = m.next_key::<String>()? {
                        m.next_value::<IgnoredAny>()?;
                        keys.push(k);
                    }
                    Ok(Value(keys))
                }
            }
            d.deserialize_map(V)
        }
    }
}

#[test]
fn map_keys_follow_cbor_gen_canonical_order() {
    let ask = sample_ask();
    assert_eq!(
        map_keys(&ask.to_cbor()),
        [
            "Miner",
            "Price",
            "SeqNo",
            "Expiry",
            "Timestamp",
            "MaxPieceSize",
            "MinPieceSize",
            "VerifiedPrice"
        ]
    );
    let deal = lotus_deal(1);
    let params = DealParams {
        deal_uuid: DealUuid::new_v4(),
        transfer: Transfer::default(),
        is_offline: true,
        deal_data_root: deal.proposal.piece_cid,
        skip_ipni_announce: false,
        client_deal_proposal: deal.clone(),
        remove_unsealed_copy: false,
    };
    let b = cbor::to_vec(&params);
    assert_eq!(b[0], 0xa7);
    assert_eq!(
        map_keys(&b),
        [
            "DealUUID",
            "Transfer",
            "IsOffline",
            "DealDataRoot",
            "SkipIPNIAnnounce",
            "ClientDealProposal",
            "RemoveUnsealedCopy"
        ]
    );
    let v120 = params.to_cbor_v120();
    assert_eq!(v120[0], 0xa5);
    assert_eq!(
        map_keys(&v120),
        [
            "DealUUID",
            "Transfer",
            "IsOffline",
            "DealDataRoot",
            "ClientDealProposal"
        ]
    );
    // A 1.2.0 message decodes with the two missing flags false (Boost's net_test compat case).
    let back: DealParams = cbor::from_slice(&v120, LIMIT).unwrap();
    assert_eq!(back, params);
    assert_eq!(
        map_keys(&cbor::to_vec(&Transfer::default())),
        ["Size", "Type", "Params", "ClientID"]
    );
    let proposal = Proposal {
        piece: None,
        deal_proposal: Some(deal),
        fast_retrieval: true,
    };
    assert_eq!(
        map_keys(&cbor::to_vec(&proposal)),
        ["Piece", "DealProposal", "FastRetrieval"]
    );
}

#[test]
fn every_message_round_trips() {
    fn rt<T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug>(v: T) {
        let b = cbor::to_vec(&v);
        assert_eq!(cbor::from_slice::<T>(&b, LIMIT).unwrap(), v);
    }
    let deal = lotus_deal(2);
    let pcid = deal.cid();
    let sig = deal.client_signature.clone();
    let ask = SignedStorageAsk {
        ask: Some(sample_ask()),
        signature: Some(sig.clone()),
    };
    rt(ask.clone());
    rt(AskResponse {
        ask: Some(ask.clone()),
    });
    rt(AskResponse { ask: None });
    let data_ref = DataRef {
        root: pcid,
        piece_cid: Some(deal.proposal.piece_cid),
        piece_size: 16_646_144,
        raw_block_size: 10_241_347,
        transfer_type: TRANSFER_TYPE_MANUAL.into(),
    };
    rt(data_ref.clone());
    rt(Proposal {
        piece: Some(data_ref),
        deal_proposal: Some(deal.clone()),
        fast_retrieval: true,
    });
    let response = Response {
        state: 18,
        message: String::new(),
        proposal: pcid,
        publish_message: None,
    };
    rt(SignedResponse {
        response,
        signature: Some(sig.clone()),
    });
    rt(DealStatusRequest {
        proposal: pcid,
        signature: sig.clone(),
    });
    let pds = ProviderDealState {
        state: 7,
        deal_id: DealId(42),
        message: "ok".into(),
        proposal: Some(deal.proposal.clone()),
        publish_cid: Some(pcid),
        add_funds_cid: None,
        proposal_cid: Some(pcid),
        fast_retrieval: false,
    };
    rt(pds.clone());
    rt(DealStatusResponse {
        deal_state: pds,
        signature: sig.clone(),
    });
    rt(DealResponse {
        accepted: false,
        message: "failed validation: x".into(),
    });
    rt(DealStatusRequestV12 {
        deal_uuid: DealUuid::new_v4(),
        signature: sig,
    });
    rt(DealStatusResponseV12 {
        deal_uuid: DealUuid::new_v4(),
        error: String::new(),
        is_offline: true,
        deal_status: Some(DealStatus {
            error: String::new(),
            status: "Accepted".into(),
            proposal: deal.proposal.clone(),
            publish_cid: None,
            chain_deal_id: DealId(0),
            sealing_status: String::new(),
            signed_proposal_cid: pcid,
        }),
        transfer_size: 10,
        n_bytes_received: 5,
    });
    rt(PublishStorageDealsParams {
        deals: vec![deal.clone(), lotus_deal(0)],
    });
    let mut valid = fvm_ipld_bitfield::BitField::new();
    valid.set(0);
    valid.set(2);
    let ret = PublishStorageDealsReturn {
        ids: vec![DealId(10), DealId(11)],
        valid_deals: valid,
    };
    let b = cbor::to_vec(&ret);
    let back: PublishStorageDealsReturn = cbor::from_slice(&b, LIMIT).unwrap();
    assert_eq!(back.deal_id_for(0), Some(DealId(10)));
    assert_eq!(back.deal_id_for(1), None);
    assert_eq!(back.deal_id_for(2), Some(DealId(11)));
}

#[test]
fn tuple_ask_form_for_protocol_1_0_1() {
    let ask = sample_ask();
    let b = ask.to_cbor_v0();
    assert_eq!(b[0], 0x88, "8-element tuple");
    // Price comes first in the legacy tuple.
    assert_eq!(&b[1..7], &[0x45, 0x00, 0x1d, 0xcd, 0x65, 0x00]);
}

#[test]
fn decoders_reject_bad_input_with_typed_errors() {
    let deal = lotus_deal(0);
    let good = cbor::to_vec(&deal);
    assert!(matches!(
        cbor::from_slice::<ClientDealProposal>(&good, 100),
        Err(DecodeError::TooLarge { .. })
    ));
    assert!(matches!(
        cbor::from_slice::<ClientDealProposal>(&good[..200], LIMIT),
        Err(DecodeError::Truncated)
    ));
    let mut trailing = good.clone();
    trailing.push(0);
    assert!(matches!(
        cbor::from_slice::<ClientDealProposal>(&trailing, LIMIT),
        Err(DecodeError::TrailingBytes(1))
    ));
    // A map where a tuple belongs.
    assert!(matches!(
        cbor::from_slice::<ClientDealProposal>(&[0xa0], LIMIT),
        Err(DecodeError::Shape(_))
    ));
    // Wrong signature type byte.
    let mut bad_sig = good.clone();
    let pos = bad_sig.len() - 97;
    bad_sig[pos] = 9;
    assert!(matches!(
        cbor::from_slice::<ClientDealProposal>(&bad_sig, LIMIT),
        Err(DecodeError::Shape(_))
    ));
    // Missing required key.
    assert!(matches!(
        cbor::from_slice::<AskRequest>(&[0xa0], LIMIT),
        Err(DecodeError::Shape(_))
    ));
    // Unknown keys are skipped, as cbor-gen does.
    let mut extra = vec![0xa2, 0x65];
    extra.extend_from_slice(b"Miner");
    extra.extend_from_slice(&[0x42, 0x00, 0x05, 0x63]);
    extra.extend_from_slice(b"Zzz");
    extra.push(0x01);
    assert_eq!(
        cbor::from_slice::<AskRequest>(&extra, LIMIT).unwrap().miner,
        Address::new_id(5)
    );
}

mod never_panic {
    use super::*;
    use proptest::prelude::*;

    fn all_decoders(data: &[u8]) {
        storage_market::network::decode_any(data, LIMIT);
    }

    proptest! {
        #[test]
        fn random_bytes(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            all_decoders(&data);
        }

        /// Valid messages with bytes flipped or cut short.
        #[test]
        fn mutated_messages(pos in any::<usize>(), byte in any::<u8>(), cut in any::<usize>()) {
            let deal = lotus_deal(0);
            let params = DealParams {
                deal_uuid: DealUuid::new_v4(),
                transfer: Transfer::default(),
                is_offline: true,
                deal_data_root: deal.proposal.piece_cid,
                skip_ipni_announce: true,
                client_deal_proposal: deal,
                remove_unsealed_copy: false,
            };
            let mut b = cbor::to_vec(&params);
            let i = pos % b.len();
            b[i] = byte;
            all_decoders(&b);
            b.truncate(cut % b.len());
            all_decoders(&b);
        }
    }
}
