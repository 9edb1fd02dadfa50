//! One suite every [`AdStore`] passes: SQLite (`tests/store.rs`) and Postgres
//! (`market-postgres`'s `tests/ipni.rs`) run it through two handles on one store, as two
//! instances of a provider share one.

use std::collections::HashSet;
use std::sync::Arc;

use cid::Cid;
use libp2p::identity::Keypair;

use crate::schema::{Block, decode_ad, decode_chunk, encode, no_entries};
use crate::sign::verify_ad;
use crate::store::{AdDraft, AdStore};

const INDEXER_A: &str = "http://indexer-a.example/announce";
const INDEXER_B: &str = "http://indexer-b.example/announce";

fn mh(n: u32) -> Vec<u8> {
    let mut digest = [0u8; 32];
    digest[..4].copy_from_slice(&n.to_be_bytes());
    cid::multihash::Multihash::<64>::wrap(0x12, &digest)
        .unwrap()
        .to_bytes()
}

/// A put of context `n` (with one entry chunk) or its removal, about piece `piece-n`.
fn draft(n: u32, is_rm: bool) -> AdDraft {
    let (entries, chunks) = if is_rm {
        (no_entries(), Vec::new())
    } else {
        let chunk = crate::schema::EntryChunk::new(vec![serde_bytes::ByteBuf::from(mh(n))], None);
        let block = encode(&chunk).unwrap();
        (block.cid, vec![block])
    };
    AdDraft {
        addresses: vec!["/ip4/127.0.0.1/tcp/1/http".into()],
        context_id: n.to_be_bytes().to_vec(),
        metadata: if is_rm {
            Vec::new()
        } else {
            vec![0x80, 0x80, 0x04]
        },
        entries,
        chunks,
        entry_count: u64::from(!is_rm),
        sample: (!is_rm).then(|| mh(n)),
        is_rm,
        piece: Some(format!("piece-{n}")),
    }
}

fn peer(key: &Keypair) -> String {
    key.public().to_peer_id().to_string()
}

/// The chain of `provider` from its head back to its first ad, each ad's signature checked.
async fn walk(store: &dyn AdStore, provider: &str) -> Vec<Cid> {
    let mut out = Vec::new();
    let mut next = store.head(provider).await.unwrap();
    while let Some(cid) = next {
        let data = store
            .block(cid)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("ad {cid} of the chain is not stored"));
        let ad = decode_ad(&data, Some(&cid)).unwrap();
        assert_eq!(verify_ad(&ad).unwrap().to_string(), provider);
        assert_eq!(ad.provider, provider);
        out.push(cid);
        next = ad.previous_id;
        assert!(out.len() <= 10_000, "the chain of {provider} loops");
    }
    out
}

async fn append(store: &dyn AdStore, key: &Keypair, d: AdDraft, now: i64) -> Option<Block> {
    store.append(key, d, now).await.unwrap()
}

/// Runs every check on `a` and `b`, two handles on one empty store.
pub async fn ad_store_conformance(a: Arc<dyn AdStore>, b: Arc<dyn AdStore>) {
    let key = Keypair::generate_ed25519();
    let other = Keypair::generate_ed25519();
    let (me, them) = (peer(&key), peer(&other));
    let indexers = || vec![INDEXER_A.to_string(), INDEXER_B.to_string()];

    // Empty.
    assert_eq!(a.head(&me).await.unwrap(), None);
    assert!(a.live_contexts(&me).await.unwrap().is_empty());
    assert!(
        a.due_announces(&me, indexers(), 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(a.block(no_entries()).await.unwrap().is_none());
    assert_eq!(a.summary().await.unwrap(), Default::default());

    // A put, linked to nothing; its chunk and the ad are stored and readable through b.
    let first = append(&*a, &key, draft(1, false), 1_000).await.unwrap();
    assert_eq!(b.head(&me).await.unwrap(), Some(first.cid));
    assert_eq!(b.block(first.cid).await.unwrap(), Some(first.data.clone()));
    let ad = decode_ad(&first.data, Some(&first.cid)).unwrap();
    assert_eq!(ad.previous_id, None);
    let chunk = b
        .block(ad.entries)
        .await
        .unwrap()
        .expect("entry chunk stored");
    assert_eq!(
        decode_chunk(&chunk, Some(&ad.entries)).unwrap().entries[0].as_ref(),
        &mh(1)[..]
    );
    assert!(b.is_live(&me, &1u32.to_be_bytes()).await.unwrap());
    assert!(!b.is_live(&them, &1u32.to_be_bytes()).await.unwrap());

    // Appends that change nothing add nothing: a live context put again, one never put removed.
    assert!(append(&*b, &key, draft(1, false), 1_001).await.is_none());
    assert!(append(&*b, &key, draft(2, true), 1_002).await.is_none());
    assert_eq!(b.head(&me).await.unwrap(), Some(first.cid));

    // A removal follows the put, then the context can be put again.
    let rm = append(&*b, &key, draft(1, true), 1_003).await.unwrap();
    assert_eq!(
        decode_ad(&rm.data, Some(&rm.cid)).unwrap().previous_id,
        Some(first.cid)
    );
    assert!(!a.is_live(&me, &1u32.to_be_bytes()).await.unwrap());
    assert!(append(&*a, &key, draft(1, true), 1_004).await.is_none());
    let again = append(&*a, &key, draft(1, false), 1_005).await.unwrap();
    assert_eq!(walk(&*b, &me).await, vec![again.cid, rm.cid, first.cid]);
    let ads = b.piece_ads("piece-1").await.unwrap();
    assert_eq!(
        ads.iter().map(|s| (s.ad, s.is_rm)).collect::<Vec<_>>(),
        vec![(first.cid, false), (rm.cid, true), (again.cid, false)]
    );
    assert_eq!((ads[0].entries, ads[1].entries), (1, 0));
    assert!(
        ads.iter()
            .all(|s| s.provider == me && s.announced_at.is_none())
    );

    // Appends racing through both handles: one line, every ad once, each signed.
    let mut tasks = Vec::new();
    for n in 10..50u32 {
        let store = if n % 2 == 0 { a.clone() } else { b.clone() };
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            store.append(&key, draft(n, false), 2_000).await.unwrap()
        }));
    }
    let mut raced = HashSet::new();
    for t in tasks {
        raced.insert(t.await.unwrap().expect("a new context makes an ad").cid);
    }
    let chain = walk(&*a, &me).await;
    assert_eq!(chain.len(), 43, "{chain:?}");
    assert_eq!(chain.iter().collect::<HashSet<_>>().len(), 43);
    assert!(raced.iter().all(|c| chain[..40].contains(c)));
    let mut live = a.live_contexts(&me).await.unwrap();
    live.sort();
    let mut want: Vec<Vec<u8>> = std::iter::once(1u32)
        .chain(10..50)
        .map(|n| n.to_be_bytes().to_vec())
        .collect();
    want.sort();
    assert_eq!(live, want);
    // The same context raced from both handles: one ad.
    let (x, y) = tokio::join!(
        a.append(&key, draft(60, false), 2_100),
        b.append(&key, draft(60, false), 2_100)
    );
    assert_eq!(
        [x.unwrap(), y.unwrap()]
            .iter()
            .filter(|r| r.is_some())
            .count(),
        1
    );
    let head = a.head(&me).await.unwrap().unwrap();
    assert_eq!(walk(&*b, &me).await.len(), 44);

    // Announcing: both indexers are due; one takes the head, the other fails and backs off.
    let due = a.due_announces(&me, indexers(), 3_000).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.indexer.as_str(), d.head, d.attempts))
            .collect::<Vec<_>>(),
        vec![(INDEXER_A, head, 0), (INDEXER_B, head, 0)]
    );
    assert!(due.iter().all(|d| d.provider == me));
    let mut due = due.into_iter();
    let (to_a, to_b) = (due.next().unwrap(), due.next().unwrap());
    b.record_announce(to_a, Ok(()), 3_000, 0, 4_000)
        .await
        .unwrap();
    b.record_announce(to_b, Err("connection refused".into()), 3_000, 5_000, 0)
        .await
        .unwrap();
    assert!(
        a.due_announces(&me, indexers(), 4_999)
            .await
            .unwrap()
            .is_empty()
    );
    let retry = a.due_announces(&me, indexers(), 5_000).await.unwrap();
    assert_eq!(
        retry
            .iter()
            .map(|d| (d.indexer.as_str(), d.attempts))
            .collect::<Vec<_>>(),
        vec![(INDEXER_B, 1)]
    );
    assert_eq!(
        a.announce_errors().await.unwrap(),
        vec![(
            me.clone(),
            INDEXER_B.to_string(),
            "connection refused".to_string()
        )]
    );
    let s = a.summary().await.unwrap();
    assert_eq!(
        (
            s.ads,
            s.unannounced,
            s.unindexed,
            s.oldest_unindexed_announced_at,
            s.failing_announces
        ),
        (44, 0, 44, Some(3_000), 1)
    );
    assert!(
        b.piece_ads("piece-1")
            .await
            .unwrap()
            .iter()
            .all(|s| s.announced_at == Some(3_000))
    );

    // A newer ad: only it is unannounced, and the head is due again for the indexer that had
    // taken the old one.
    let newest = append(&*a, &key, draft(70, false), 6_000).await.unwrap();
    let due = b.due_announces(&me, indexers(), 6_000).await.unwrap();
    assert_eq!(due.len(), 2);
    assert!(due.iter().all(|d| d.head == newest.cid));
    assert_eq!(b.summary().await.unwrap().unannounced, 1);
    for d in due {
        a.record_announce(d, Ok(()), 6_000, 0, 7_000).await.unwrap();
    }
    assert!(b.announce_errors().await.unwrap().is_empty());
    assert!(
        b.due_announces(&me, indexers(), 9_000)
            .await
            .unwrap()
            .is_empty()
    );
    // An announcement that led nowhere: the head is due again everywhere, nothing else moves.
    a.forget_announced(&me).await.unwrap();
    let due = b.due_announces(&me, indexers(), 9_000).await.unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.indexer.as_str(), d.head, d.attempts))
            .collect::<Vec<_>>(),
        vec![(INDEXER_A, newest.cid, 0), (INDEXER_B, newest.cid, 0)]
    );
    for d in due {
        b.record_announce(d, Ok(()), 9_000, 0, 10_000)
            .await
            .unwrap();
    }
    assert!(
        a.due_announces(&me, indexers(), 9_000)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        a.piece_ads("piece-70").await.unwrap()[0].announced_at,
        Some(6_000),
        "announced when first announced"
    );

    // Checks: due from their first check time, oldest of the chain first, at most `limit`.
    assert!(a.due_checks(&me, 3_999, 100).await.unwrap().is_empty());
    let checks = a.due_checks(&me, 4_000, 100).await.unwrap();
    assert_eq!(checks.len(), 44);
    assert_eq!(checks[0].ad, first.cid);
    assert_eq!(
        (checks[0].sample.clone(), checks[0].is_rm),
        (Some(mh(1)), false)
    );
    assert_eq!(
        (checks[1].ad, checks[1].is_rm, checks[1].sample.clone()),
        (rm.cid, true, None)
    );
    assert_eq!(checks[0].announced_at, 3_000);
    let oldest_first: Vec<Cid> = chain.iter().rev().copied().collect();
    assert_eq!(
        checks.iter().map(|c| c.ad).take(43).collect::<Vec<_>>(),
        oldest_first
    );
    assert_eq!(b.due_checks(&me, 7_000, 5).await.unwrap().len(), 5);
    assert_eq!(b.due_checks(&me, 7_000, 100).await.unwrap().len(), 45);
    assert!(b.due_checks(&them, 7_000, 100).await.unwrap().is_empty());
    b.record_check(first.cid, true, None, 7_100, 0)
        .await
        .unwrap();
    b.record_check(
        rm.cid,
        false,
        Some("503 from the indexer".into()),
        7_100,
        20_000,
    )
    .await
    .unwrap();
    let checks = a.due_checks(&me, 7_100, 100).await.unwrap();
    assert_eq!(checks.len(), 43);
    assert!(checks.iter().all(|c| c.ad != first.cid && c.ad != rm.cid));
    let later = a.due_checks(&me, 20_000, 100).await.unwrap();
    let rm_check = later.iter().find(|c| c.ad == rm.cid).unwrap();
    assert_eq!(rm_check.attempts, 1);
    let ads = a.piece_ads("piece-1").await.unwrap();
    assert_eq!(ads[0].indexed_at, Some(7_100));
    assert_eq!(ads[0].check_error, None);
    assert_eq!(ads[1].check_error.as_deref(), Some("503 from the indexer"));
    assert_eq!(ads[1].indexed_at, None);
    assert_eq!(a.summary().await.unwrap().unindexed, 44);

    // Overdue warnings: each unconfirmed ad announced before the cut once, whoever asks.
    assert!(a.take_overdue(&me, 3_000).await.unwrap().is_empty());
    let (x, y) = tokio::join!(a.take_overdue(&me, 3_001), b.take_overdue(&me, 3_001));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.len() + y.len(), 43, "{x:?} {y:?}");
    let warned: HashSet<Cid> = x.iter().chain(&y).map(|s| s.ad).collect();
    assert_eq!(warned.len(), 43);
    assert!(!warned.contains(&first.cid) && !warned.contains(&newest.cid));
    assert!(
        a.take_overdue(&me, 10_000)
            .await
            .unwrap()
            .iter()
            .map(|s| s.ad)
            .eq([newest.cid])
    );
    assert!(b.take_overdue(&me, 10_000).await.unwrap().is_empty());

    // Another identity in the same store: its own chain; the two take turns at the indexers.
    let theirs = append(&*b, &other, draft(1, false), 30_000).await.unwrap();
    assert_eq!(walk(&*a, &them).await, vec![theirs.cid]);
    assert!(a.is_live(&them, &1u32.to_be_bytes()).await.unwrap());
    assert_eq!(a.head(&me).await.unwrap(), Some(newest.cid));
    assert!(a.take_overdue(&them, 1_000_000).await.unwrap().is_empty());
    // Ours were announced at 6,000 and are unconfirmed: they wait while the turn began
    // before that, not once it began after; their ad is not announced, so we do not wait.
    assert!(a.other_identity_ingesting(&them, 5_000).await.unwrap());
    assert!(!a.other_identity_ingesting(&them, 6_000).await.unwrap());
    assert!(!a.other_identity_ingesting(&me, 0).await.unwrap());
    // Their ad made before the turn began: it has waited long enough.
    assert!(!b.other_identity_ingesting(&them, 30_000).await.unwrap());
    for d in a.due_announces(&them, indexers(), 31_000).await.unwrap() {
        b.record_announce(d, Ok(()), 31_000, 0, 32_000)
            .await
            .unwrap();
    }
    assert!(a.other_identity_ingesting(&me, 30_500).await.unwrap());
    let ads = b.piece_ads("piece-1").await.unwrap();
    assert_eq!(
        ads.iter()
            .map(|s| (s.ad, s.provider.as_str()))
            .collect::<Vec<_>>(),
        vec![
            (first.cid, me.as_str()),
            (rm.cid, me.as_str()),
            (again.cid, me.as_str()),
            (theirs.cid, them.as_str())
        ]
    );
    let s = b.summary().await.unwrap();
    assert_eq!((s.ads, s.unannounced, s.failing_announces), (46, 0, 0));
}
