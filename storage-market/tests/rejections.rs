//! Every rejection reason a provider gives, each checked for its text.

mod harness;

use std::str::FromStr;
use std::time::Duration;
use storage_market::protocol::Protocol;

use harness::Env;
use storage_market::Cid;
use storage_market::client::DealProtocol;
use storage_market::deal::{ClientDealProposal, DealProposal};
use storage_market::filter::ExternalFilter;
use storage_market::message::{DealParams, HttpRequest, Transfer};
use storage_market::provider::ProviderConfig;
use storage_market::types::*;
use storage_market::wallet::{KeyType, PrivateKey};

struct Case {
    name: &'static str,
    config: fn(&mut ProviderConfig),
    edit: fn(&Env, &mut DealProposal, &mut DealParams),
    /// Sign with a key other than the client's.
    forge: bool,
    expect: &'static str,
}

fn none(_: &mut ProviderConfig) {}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "forged signature",
            config: none,
            edit: |_, _, _| {},
            forge: true,
            expect: "invalid client signature",
        },
        Case {
            name: "unknown client id",
            config: none,
            edit: |_, p, _| p.client = Address::new_id(99_999),
            forge: false,
            expect: "cannot resolve client",
        },
        Case {
            name: "miner not served",
            config: none,
            edit: |_, p, _| p.provider = Address::new_id(77_777),
            forge: false,
            expect: "incorrect provider",
        },
        Case {
            name: "label over 256 bytes",
            config: none,
            edit: |_, p, _| p.label = DealLabel::String("x".repeat(257)),
            forge: false,
            expect: "deal label is 257 bytes",
        },
        Case {
            name: "piece size not a power of two",
            config: none,
            edit: |_, p, _| p.piece_size = 3000,
            forge: false,
            expect: "piece size is invalid",
        },
        Case {
            name: "piece CID of the wrong codec",
            config: none,
            edit: |_, p, _| {
                p.piece_cid =
                    Cid::from_str("bafy2bzacec5bp2hal3v5gsm52ohm63ml6lzepzt7ficoo6usbkuajno2i7gkw")
                        .unwrap()
            },
            forge: false,
            expect: "wrong prefix",
        },
        Case {
            name: "end before start",
            config: none,
            edit: |_, p, _| p.end_epoch = p.start_epoch,
            forge: false,
            expect: "before proposal start",
        },
        Case {
            name: "start already elapsed",
            config: none,
            edit: |e, p, _| {
                p.start_epoch = e.head().plus(-1);
                p.end_epoch = p.start_epoch.plus(150);
            },
            forge: false,
            expect: "has already elapsed",
        },
        Case {
            name: "duration too short",
            config: none,
            edit: |_, p, _| p.end_epoch = p.start_epoch.plus(50),
            forge: false,
            expect: "deal duration 50 epochs out of bounds",
        },
        Case {
            name: "duration too long",
            config: none,
            edit: |_, p, _| p.end_epoch = p.start_epoch.plus(10_001),
            forge: false,
            expect: "out of bounds",
        },
        Case {
            name: "end epoch too far",
            config: none,
            edit: |e, p, _| {
                p.start_epoch = e.head().plus(15_000);
                p.end_epoch = p.start_epoch.plus(9_000);
            },
            forge: false,
            expect: "cannot be more than 20000 epochs",
        },
        Case {
            name: "collateral above the multiplier bound",
            config: none,
            edit: |_, p, _| p.provider_collateral = TokenAmount::from_whole(1_000_000),
            forge: false,
            expect: "not between bounds",
        },
        Case {
            name: "collateral below the chain minimum",
            config: |c| c.max_provider_collateral_multiplier = 2,
            edit: |_, p, _| {
                p.piece_size = 1 << 20;
                p.provider_collateral = TokenAmount::ZERO;
            },
            forge: false,
            expect: "not between bounds",
        },
        Case {
            name: "price below ask",
            config: none,
            edit: |_, p, _| p.storage_price_per_epoch = TokenAmount::ZERO,
            forge: false,
            expect: "less than asking price",
        },
        Case {
            name: "piece smaller than ask minimum",
            config: |c| c.default_ask.min_piece_size = commp::PaddedPieceSize::new(8192).unwrap(),
            edit: |_, _, _| {},
            forge: false,
            expect: "outside the ask's bounds",
        },
        Case {
            name: "piece larger than ask maximum",
            config: |c| c.default_ask.max_piece_size = commp::PaddedPieceSize::new(2048).unwrap(),
            edit: |_, _, _| {},
            forge: false,
            expect: "outside the ask's bounds",
        },
        Case {
            name: "client escrow too small",
            config: none,
            edit: |_, p, _| p.client_collateral = TokenAmount::from_whole(1_000),
            forge: false,
            expect: "Available too small",
        },
        Case {
            name: "verified deal without DataCap",
            config: none,
            edit: |_, p, _| p.verified_deal = true,
            forge: false,
            expect: "is not a verified client",
        },
        Case {
            name: "offline deals not considered",
            config: |c| c.filter.consider_offline = false,
            edit: |_, _, _| {},
            forge: false,
            expect: "not accepting offline storage deals",
        },
        Case {
            name: "unverified deals not considered",
            config: |c| c.filter.consider_unverified = false,
            edit: |_, _, _| {},
            forge: false,
            expect: "not accepting unverified storage deals",
        },
        Case {
            name: "start before sealing could finish",
            config: |c| c.filter.expected_seal_duration = Duration::from_secs(30 * 1000),
            edit: |_, _, _| {},
            forge: false,
            expect: "cannot seal a sector before",
        },
        Case {
            name: "external filter says no",
            config: |c| {
                c.external_filter = Some(ExternalFilter::new(
                    "grep -q '\"FormatVersion\": \"2.2.0\"' && echo 'we only take Tuesdays' && exit 1",
                    Duration::from_secs(10),
                ))
            },
            edit: |_, _, _| {},
            forge: false,
            expect: "we only take Tuesdays",
        },
        Case {
            name: "online deal with an unsupported transfer type",
            config: none,
            edit: |_, _, d| online(d, "graphsync", "http://127.0.0.1:1/data.car", 3000),
            forge: false,
            expect: "transfer type \"graphsync\" is not supported",
        },
        Case {
            name: "online deal with an unusable URL",
            config: none,
            edit: |_, _, d| online(d, "http", "ftp://example.com/data.car", 3000),
            forge: false,
            expect: "scheme must be http, https or libp2p",
        },
        Case {
            name: "online deal with a libp2p URL without a peer id",
            config: none,
            edit: |_, _, d| online(d, "libp2p", "libp2p:///ip4/127.0.0.1/tcp/1", 3000),
            forge: false,
            expect: "must end with /p2p/<peer id>",
        },
        Case {
            name: "online deal with more data than the piece holds",
            config: none,
            edit: |_, _, d| online(d, "http", "http://127.0.0.1:1/data.car", 1 << 20),
            forge: false,
            expect: "exceeds the piece's",
        },
    ]
}

fn online(d: &mut DealParams, kind: &str, url: &str, size: u64) {
    d.is_offline = false;
    let req = HttpRequest {
        url: url.into(),
        headers: Default::default(),
    };
    d.transfer = Transfer {
        size,
        kind: kind.into(),
        params: serde_json::to_vec(&req).unwrap(),
        client_id: String::new(),
    };
}

async fn params_for(env: &Env, case: &Case) -> DealParams {
    let (_, piece_cid, size) = env.data_file("p.car", 3000, 3);
    let spec = env.offline_spec(piece_cid, size, DealProtocol::V12).await;
    let mut cdp = env.client.sign_proposal(&spec).await.unwrap();
    let mut params = DealParams::offline(cdp.clone(), piece_cid);
    (case.edit)(env, &mut cdp.proposal, &mut params);
    let sig = if case.forge {
        PrivateKey::generate(KeyType::Bls).sign(&cdp.proposal.to_cbor())
    } else {
        env.keys
            .sign_sync(&env.client_addr, &cdp.proposal.to_cbor())
            .unwrap()
    };
    params.client_deal_proposal = ClientDealProposal {
        proposal: cdp.proposal,
        client_signature: sig,
    };
    params
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_rejection_carries_its_reason() {
    let all = cases();
    assert!(all.len() >= 15);
    for case in &all {
        let env = Env::start(case.config, false).await;
        let params = params_for(&env, case).await;
        let res = env.provider.propose(params, Protocol::DealV121).await;
        assert!(!res.accepted, "{}: accepted", case.name);
        assert!(
            res.message.contains(case.expect),
            "{}: got {:?}",
            case.name,
            res.message
        );
        assert!(
            env.provider.deals().await.unwrap().is_empty(),
            "{}: rejected deal was stored",
            case.name
        );
    }
}

/// Gives the proposal a new label (so a new proposal CID) and signs it again as the client.
fn relabel(env: &Env, params: &mut DealParams, label: &str) {
    let cdp = &mut params.client_deal_proposal;
    cdp.proposal.label = DealLabel::String(label.into());
    cdp.client_signature = env
        .keys
        .sign_sync(&env.client_addr, &cdp.proposal.to_cbor())
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_and_blocklist_and_datacap() {
    let env = Env::start(|_| {}, false).await;
    let case = Case {
        name: "base",
        config: none,
        edit: |_, _, _| {},
        forge: false,
        expect: "",
    };
    let params = params_for(&env, &case).await;
    assert!(
        env.provider
            .propose(params.clone(), Protocol::DealV121)
            .await
            .accepted
    );
    // Same signed proposal again.
    let mut again = params.clone();
    again.deal_uuid = DealUuid::new_v4();
    let res = env.provider.propose(again, Protocol::DealV121).await;
    assert!(res.message.contains("identical to deal"), "{}", res.message);
    // Same UUID, different proposal.
    let mut other = params_for(&env, &case).await;
    other.deal_uuid = params.deal_uuid;
    relabel(&env, &mut other, "other");
    let res = env.provider.propose(other, Protocol::DealV121).await;
    assert!(res.message.contains("same uuid"), "{}", res.message);
    assert_eq!(env.provider.deals().await.unwrap().len(), 1);

    // One new proposal sent eight times at once (no lock serialises acceptance; the store's
    // insert is atomic): every send is accepted (a re-send of the same deal is idempotent)
    // and exactly one deal exists.
    let mut fresh = params_for(&env, &case).await;
    relabel(&env, &mut fresh, "concurrent");
    let sends: Vec<_> = (0..8)
        .map(|_| {
            let (provider, p) = (env.provider.clone(), fresh.clone());
            tokio::spawn(async move { provider.propose(p, Protocol::DealV121).await })
        })
        .collect();
    for s in sends {
        let r = s.await.unwrap();
        assert!(r.accepted, "{}", r.message);
    }
    assert_eq!(env.provider.deals().await.unwrap().len(), 2);

    // Blocklisted piece.
    let piece = params.client_deal_proposal.proposal.piece_cid;
    let blocked = Env::start(
        move |c| {
            c.filter.piece_cid_blocklist.insert(piece);
        },
        false,
    )
    .await;
    let p = params_for(&blocked, &case).await;
    let res = blocked.provider.propose(p, Protocol::DealV121).await;
    assert!(
        res.message.contains("blocklisted piece CID"),
        "{}",
        res.message
    );

    // Verified client with too little DataCap.
    let small = Env::start(|_| {}, false).await;
    small.chain.add_verified_client(&small.client_addr, 1024);
    let mut p = params_for(&small, &case).await;
    p.client_deal_proposal.proposal.verified_deal = true;
    p.client_deal_proposal.client_signature = small
        .keys
        .sign_sync(
            &small.client_addr,
            &p.client_deal_proposal.proposal.to_cbor(),
        )
        .unwrap();
    let res = small.provider.propose(p, Protocol::DealV121).await;
    assert!(res.message.contains("DataCap too small"), "{}", res.message);
}
