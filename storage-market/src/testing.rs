//! Test support (feature `testing`): one conformance suite every [`DealStore`] backend runs,
//! so SQLite and a shared database promise the same things.

use std::sync::Arc;

use crate::Cid;
use crate::chain::Message;
use crate::deal::{ClientDealProposal, DealProposal};
use crate::message::{SignedStorageAsk, StorageAsk, Transfer};
use crate::placement::{PieceStatus, Placement, PlacementChange};
use crate::protocol::Protocol;
use crate::state::StorageDealStatus;
use crate::store::{ClientDeal, DealStore, ProviderDeal, PublishRecord, StoreError};
use crate::types::{
    Address, ChainEpoch, DealId, DealLabel, DealUuid, SectorNumber, Signature, SignatureType,
    TokenAmount,
};

fn piece(n: u64) -> Cid {
    let mut digest = [0u8; 32];
    digest[..8].copy_from_slice(&n.to_be_bytes());
    let mh = cid::multihash::Multihash::<128>::wrap(0x1012, &digest).expect("32-byte digest");
    Cid::new_v1(0xf101, mh)
}

/// A provider deal of `miner`, distinct for each `n` (its label), accepted in `state`.
pub fn sample_deal(n: u64, miner: Address, state: StorageDealStatus) -> ProviderDeal {
    let proposal = ClientDealProposal {
        proposal: DealProposal {
            piece_cid: piece(n),
            piece_size: 1 << 20,
            verified_deal: n.is_multiple_of(2),
            client: Address::new_id(5000 + n),
            provider: miner,
            label: DealLabel::String(format!("deal-{n}")),
            start_epoch: ChainEpoch::new(1000 + n as i64),
            end_epoch: ChainEpoch::new(600_000 + n as i64),
            storage_price_per_epoch: TokenAmount::from_atto(n as u128),
            provider_collateral: TokenAmount::from_atto(0),
            client_collateral: TokenAmount::from_atto(0),
        },
        client_signature: Signature::new(SignatureType::Secp256k1, vec![n as u8; 65]),
    };
    ProviderDeal {
        proposal_cid: proposal.cid(),
        deal_uuid: DealUuid::new_v4(),
        miner,
        protocol: Protocol::DealV121,
        proposal,
        payload_root: Some(piece(n + 1_000_000)),
        is_offline: n.is_multiple_of(3),
        transfer: Transfer {
            size: 1000 + n,
            kind: "http".into(),
            params: br#"{"URL":"http://client/x.car"}"#.to_vec(),
            client_id: String::new(),
        },
        fast_retrieval: true,
        remove_unsealed: false,
        skip_ipni: false,
        state,
        message: String::new(),
        add_funds_cid: None,
        publish_cid: None,
        publish_index: None,
        deal_id: None,
        sector: None,
        sector_offset: None,
        piece_path: None,
        created_at: 0,
        updated_at: 0,
    }
}

/// Compares what a store gives back with what was written, ignoring its timestamps.
fn same(a: &ProviderDeal, b: &ProviderDeal) -> bool {
    let strip = |d: &ProviderDeal| ProviderDeal {
        created_at: 0,
        updated_at: 0,
        ..d.clone()
    };
    strip(a) == strip(b)
}

/// Everything a [`DealStore`] promises, on a fresh, empty store.
pub async fn deal_store_conformance(store: Arc<dyn DealStore>) {
    let miner = Address::new_id(1000);
    let other = Address::new_id(2000);
    assert!(store.provider_deals().await.unwrap().is_empty());

    // Inserts, lookups by each key, oldest first.
    let mut deals = Vec::new();
    for n in 0..6 {
        let m = if n < 4 { miner } else { other };
        let d = sample_deal(n, m, StorageDealStatus::WaitingForData);
        store.insert_provider_deal(d.clone()).await.unwrap();
        deals.push(d);
    }
    let all = store.provider_deals().await.unwrap();
    assert_eq!(all.len(), 6);
    for (got, want) in all.iter().zip(&deals) {
        assert!(same(got, want), "{got:?}\n{want:?}");
        assert!(got.created_at > 0);
    }
    let d0 = &deals[0];
    assert!(same(
        &store
            .provider_deal(&d0.proposal_cid)
            .await
            .unwrap()
            .unwrap(),
        d0
    ));
    assert!(same(
        &store
            .provider_deal_by_uuid(&d0.deal_uuid)
            .await
            .unwrap()
            .unwrap(),
        d0
    ));
    assert!(store.provider_deal(&piece(999)).await.unwrap().is_none());

    // Duplicates by proposal CID or by UUID are refused; of concurrent inserts of one deal,
    // exactly one succeeds.
    assert!(matches!(
        store.insert_provider_deal(d0.clone()).await,
        Err(StoreError::Duplicate(_))
    ));
    let mut same_uuid = sample_deal(100, miner, StorageDealStatus::WaitingForData);
    same_uuid.deal_uuid = d0.deal_uuid;
    assert!(matches!(
        store.insert_provider_deal(same_uuid).await,
        Err(StoreError::Duplicate(_))
    ));
    let racer = sample_deal(101, miner, StorageDealStatus::WaitingForData);
    let results = futures::future::join_all((0..8).map(|_| {
        let (s, d) = (store.clone(), racer.clone());
        async move { s.insert_provider_deal(d).await }
    }))
    .await;
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 1);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(()) | Err(StoreError::Duplicate(_))))
    );
    deals.push(racer);

    // Updates write every mutable field, and each state or message change is one timeline
    // entry.
    let mut d = deals[1].clone();
    d.state = StorageDealStatus::Publishing;
    d.message = "sent".into();
    d.add_funds_cid = Some(piece(7001));
    d.publish_cid = Some(piece(7002));
    d.publish_index = Some(3);
    d.deal_id = Some(DealId(77));
    d.sector = Some(SectorNumber(9));
    d.sector_offset = Some(1 << 20);
    d.piece_path = Some("s3://b/x".into());
    store.update_provider_deal(&d).await.unwrap();
    store.update_provider_deal(&d).await.unwrap();
    d.state = StorageDealStatus::Active;
    store.update_provider_deal(&d).await.unwrap();
    assert!(same(
        &store.provider_deal(&d.proposal_cid).await.unwrap().unwrap(),
        &d
    ));
    let events = store.deal_events(&d.proposal_cid).await.unwrap();
    let states: Vec<_> = events
        .iter()
        .map(|e| (e.state, e.message.as_str()))
        .collect();
    assert_eq!(
        states,
        vec![
            (StorageDealStatus::WaitingForData, ""),
            (StorageDealStatus::Publishing, "sent"),
            (StorageDealStatus::Active, "sent"),
        ]
    );
    assert!(events.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
    assert!(
        store
            .provider_deal_by_deal_id(&miner, DealId(77))
            .await
            .unwrap()
            .is_some_and(|x| x.proposal_cid == d.proposal_cid)
    );
    assert!(
        store
            .provider_deal_by_deal_id(&other, DealId(77))
            .await
            .unwrap()
            .is_none()
    );
    deals[1] = d.clone();

    // Unfinished deals leave out terminal states; filters and counts agree with the rows.
    let mut failed = deals[2].clone();
    failed.state = StorageDealStatus::Error;
    failed.message = "commP mismatch".into();
    store.update_provider_deal(&failed).await.unwrap();
    let unfinished = store.unfinished_provider_deals().await.unwrap();
    assert!(
        unfinished
            .iter()
            .all(|x| !x.state.is_terminal() && x.proposal_cid != failed.proposal_cid)
    );
    assert_eq!(unfinished.len(), 6);
    let active = store
        .provider_deals_in(&[StorageDealStatus::Active, StorageDealStatus::Error])
        .await
        .unwrap();
    assert_eq!(active.len(), 2);
    assert!(store.provider_deals_in(&[]).await.unwrap().is_empty());
    let mut counts = store.provider_deal_counts().await.unwrap();
    counts.sort_by_key(|(s, _)| s.code());
    let mut want = vec![
        (StorageDealStatus::WaitingForData, 5),
        (StorageDealStatus::Active, 1),
        (StorageDealStatus::Error, 1),
    ];
    want.sort_by_key(|(s, _)| s.code());
    assert_eq!(counts, want);

    // Asks, one per miner, replaced on save.
    let mut ask = StorageAsk {
        miner,
        price: TokenAmount::from_atto(500),
        seq_no: 1,
        expiry: ChainEpoch::new(100_000),
        timestamp: ChainEpoch::new(10),
        max_piece_size: 32 << 30,
        min_piece_size: 256,
        verified_price: TokenAmount::from_atto(5),
    };
    assert!(store.ask(&miner).await.unwrap().is_none());
    for seq in [1, 2] {
        ask.seq_no = seq;
        store
            .save_ask(&SignedStorageAsk {
                ask: Some(ask.clone()),
                signature: Some(Signature::new(SignatureType::Bls, vec![1; 96])),
            })
            .await
            .unwrap();
    }
    assert_eq!(
        store
            .ask(&miner)
            .await
            .unwrap()
            .unwrap()
            .ask
            .unwrap()
            .seq_no,
        2
    );
    assert!(store.ask(&other).await.unwrap().is_none());

    // Client deals: inserted, then updated in place.
    let mut cd = ClientDeal {
        proposal_cid: deals[3].proposal_cid,
        deal_uuid: deals[3].deal_uuid,
        provider_peer: "12D3KooWtest".into(),
        protocol: Protocol::DealV121,
        proposal: deals[3].proposal.clone(),
        payload_root: deals[3].payload_root,
        is_offline: false,
        state: StorageDealStatus::Transferring,
        checkpoint: "Accepted".into(),
        message: String::new(),
        deal_id: None,
        publish_cid: None,
        created_at: 1_700_000_000,
        updated_at: 0,
    };
    store.put_client_deal(cd.clone()).await.unwrap();
    cd.state = StorageDealStatus::Active;
    cd.deal_id = Some(DealId(5));
    cd.publish_cid = Some(piece(8000));
    store.put_client_deal(cd.clone()).await.unwrap();
    let cds = store.client_deals().await.unwrap();
    assert_eq!(cds.len(), 1);
    assert_eq!(
        ClientDeal {
            updated_at: 0,
            ..cds[0].clone()
        },
        cd
    );

    // Publish records: recorded before the push, found by each proposal with its index,
    // the CID added once pushed, the newest record winning, forgotten when refused.
    let message = |n: u8| Message {
        from: Address::new_id(3000),
        to: Address::new_id(5),
        method: 4,
        params: vec![n; 10],
        value: TokenAmount::from_atto(0),
        max_fee: TokenAmount::from_atto(1_000_000),
        uuid: None,
    };
    let first = PublishRecord {
        uuid: uuid::Uuid::new_v4(),
        miner,
        message: message(1),
        proposals: vec![deals[0].proposal_cid, deals[3].proposal_cid],
        cid: None,
    };
    store.record_publish(&first).await.unwrap();
    let (got, idx) = store
        .publish_for(&deals[3].proposal_cid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.clone(), idx), (first.clone(), 1));
    store.publish_sent(first.uuid, piece(9000)).await.unwrap();
    assert_eq!(
        store
            .publish_for(&deals[0].proposal_cid)
            .await
            .unwrap()
            .unwrap()
            .0
            .cid,
        Some(piece(9000))
    );
    // Newer records are created later; a store may order by seconds, so wait one.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let second = PublishRecord {
        uuid: uuid::Uuid::new_v4(),
        miner,
        message: message(2),
        proposals: vec![deals[3].proposal_cid],
        cid: None,
    };
    store.record_publish(&second).await.unwrap();
    assert_eq!(
        store
            .publish_for(&deals[3].proposal_cid)
            .await
            .unwrap()
            .unwrap(),
        (second.clone(), 0)
    );
    store.forget_publish(second.uuid).await.unwrap();
    assert_eq!(
        store
            .publish_for(&deals[3].proposal_cid)
            .await
            .unwrap()
            .unwrap()
            .0
            .uuid,
        first.uuid
    );
    assert!(
        store
            .publish_for(&deals[5].proposal_cid)
            .await
            .unwrap()
            .is_none()
    );

    // Placements: queued once (a second queue keeps the first), sealable while Undefine and
    // AwaitingPreCommit, changed all or nothing.
    let mut sealing = Vec::new();
    for (i, d) in deals.iter().take(2).enumerate() {
        let mut d = d.clone();
        d.state = StorageDealStatus::AwaitingPreCommit;
        d.deal_id = Some(DealId(100 + i as u64));
        store.update_provider_deal(&d).await.unwrap();
        let p = Placement {
            proposal_cid: d.proposal_cid,
            miner,
            deal_id: DealId(100 + i as u64),
            status: PieceStatus::Undefine,
            sector: None,
            offset: None,
        };
        store.queue_for_sealing(&p).await.unwrap();
        sealing.push(p);
    }
    let mut again = sealing[0].clone();
    again.status = PieceStatus::Proving;
    store.queue_for_sealing(&again).await.unwrap();
    assert_eq!(
        store.placement(&sealing[0].proposal_cid).await.unwrap(),
        Some(sealing[0].clone())
    );
    assert_eq!(store.sealable_deals(&miner).await.unwrap().len(), 2);
    assert!(store.sealable_deals(&other).await.unwrap().is_empty());
    let assign = |p: &Placement, sector: u64| PlacementChange {
        expect: vec![PieceStatus::Undefine],
        new: Placement {
            status: PieceStatus::Assigned,
            sector: Some(SectorNumber(sector)),
            offset: Some(0),
            ..p.clone()
        },
    };
    store
        .update_placements(vec![assign(&sealing[0], 1)])
        .await
        .unwrap();
    assert_eq!(store.sealable_deals(&miner).await.unwrap().len(), 1);
    // The second change conflicts (already Assigned): nothing of the batch is written.
    assert!(matches!(
        store
            .update_placements(vec![assign(&sealing[1], 2), assign(&sealing[0], 3)])
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .placement(&sealing[1].proposal_cid)
            .await
            .unwrap()
            .unwrap()
            .status,
        PieceStatus::Undefine
    );
    assert_eq!(
        store
            .placement(&sealing[0].proposal_cid)
            .await
            .unwrap()
            .unwrap()
            .sector,
        Some(SectorNumber(1))
    );
    let unknown = Placement {
        proposal_cid: deals[4].proposal_cid,
        ..sealing[0].clone()
    };
    assert!(matches!(
        store
            .update_placements(vec![PlacementChange {
                expect: vec![],
                new: unknown
            }])
            .await,
        Err(StoreError::Conflict(_))
    ));
}

/// Everything [`DealStore`]'s leases promise, on a fresh, empty store.
pub async fn lease_conformance(store: Arc<dyn DealStore>) {
    use std::time::Duration;
    let miner = Address::new_id(1000);
    let long = Duration::from_secs(60);
    // Deals with work for a driver, one waiting for its data, one finished.
    let mut working = Vec::new();
    for n in 0..3 {
        let d = sample_deal(n * 3 + 1, miner, StorageDealStatus::Publishing);
        store.insert_provider_deal(d.clone()).await.unwrap();
        working.push(d.proposal_cid);
    }
    let waiting = sample_deal(100, miner, StorageDealStatus::WaitingForData);
    let done = sample_deal(101, miner, StorageDealStatus::Error);
    let mut offline = sample_deal(102, miner, StorageDealStatus::Transferring);
    offline.is_offline = true;
    for d in [&waiting, &done, &offline] {
        store.insert_provider_deal(d.clone()).await.unwrap();
    }
    // Unleased deals with work are claimable, oldest first.
    assert_eq!(store.claimable_deals(10).await.unwrap(), working);
    assert_eq!(store.claimable_deals(2).await.unwrap(), working[..2]);

    // One holder at a time; the holder may take its own lease again.
    assert!(store.take_lease(&working[0], "a", long).await.unwrap());
    assert!(!store.take_lease(&working[0], "b", long).await.unwrap());
    assert!(store.take_lease(&working[0], "a", long).await.unwrap());
    assert_eq!(store.claimable_deals(10).await.unwrap(), working[1..]);

    // Renewal returns only the leases still held.
    assert!(store.take_lease(&working[1], "b", long).await.unwrap());
    let renewed = store
        .renew_leases("a", &[working[0], working[1], working[2]], long)
        .await
        .unwrap();
    assert_eq!(renewed, vec![working[0]]);

    // Release by another holder does nothing; by the holder frees the deal.
    store.release_lease(&working[0], "b").await.unwrap();
    assert!(!store.take_lease(&working[0], "b", long).await.unwrap());
    store.release_lease(&working[0], "a").await.unwrap();
    assert!(store.take_lease(&working[0], "b", long).await.unwrap());

    // An expired lease is anyone's, and its old holder's renewal no longer returns it.
    assert!(
        store
            .take_lease(&working[2], "a", Duration::from_millis(1))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(store.claimable_deals(10).await.unwrap(), vec![working[2]]);
    assert!(store.take_lease(&working[2], "c", long).await.unwrap());
    assert!(
        store
            .renew_leases("a", &[working[2]], long)
            .await
            .unwrap()
            .is_empty()
    );

    // Of many instances taking one free lease at once, exactly one gets it.
    let fresh = sample_deal(200, miner, StorageDealStatus::Staged);
    store.insert_provider_deal(fresh.clone()).await.unwrap();
    let tries = (0..8).map(|i| {
        let store = store.clone();
        let cid = fresh.proposal_cid;
        tokio::spawn(async move { store.take_lease(&cid, &format!("i{i}"), long).await })
    });
    let mut won = 0;
    for t in tries {
        if t.await.unwrap().unwrap() {
            won += 1;
        }
    }
    assert_eq!(won, 1);
}
