//! Which pieces the node advertises to IPNI, decided from its deals: a piece is advertised
//! while some deal holding it is handed to sealing or active and did not ask
//! `SkipIPNIAnnounce`; once none is (expired, slashed, failed), its ad is removed. The
//! decision ([`plan`]) is a pure function over the deals and the live ads; [`reconcile`]
//! gathers those facts and carries the plan out, so a restart simply plans again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use market_ipni::IpniProvider;
use market_ipni::context::parse_piece_context_id;
use piecestore::PieceIndex;
use storage_market::state::StorageDealStatus;
use storage_market::store::{DealStore, ProviderDeal};

/// A piece, as the ads name it: (piece CID, padded size).
pub(crate) type PieceKey = (cid::Cid, u64);

/// What to do.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    /// Pieces to advertise.
    pub(crate) announce: Vec<PieceKey>,
    /// Advertised pieces to remove.
    pub(crate) remove: Vec<PieceKey>,
}

/// Whether a deal in `state` keeps its piece advertised: the piece is stored, indexed and
/// the deal is on chain, on its way into a sector or in one.
fn serving(state: StorageDealStatus) -> bool {
    matches!(
        state,
        StorageDealStatus::AwaitingPreCommit
            | StorageDealStatus::Sealing
            | StorageDealStatus::Finalizing
            | StorageDealStatus::Active
    )
}

/// Decides from the deals (piece, size, state, skip flag) and the pieces now advertised.
pub(crate) fn plan(
    deals: impl IntoIterator<Item = (PieceKey, StorageDealStatus, bool)>,
    live: &BTreeSet<PieceKey>,
) -> Plan {
    // Per piece: does some deal want it advertised?
    let mut wanted: BTreeMap<PieceKey, bool> = BTreeMap::new();
    for (piece, state, skip) in deals {
        let w = wanted.entry(piece).or_default();
        *w |= serving(state) && !skip;
    }
    let announce = wanted
        .iter()
        .filter(|(p, w)| **w && !live.contains(*p))
        .map(|(p, _)| *p)
        .collect();
    let remove = live
        .iter()
        .filter(|p| !wanted.get(*p).copied().unwrap_or(false))
        .copied()
        .collect();
    Plan { announce, remove }
}

/// The node's IPNI identities: its own (libp2p) one, and one per miner of
/// `[ipni] miner_keys`. All share one ad store and one publisher.
#[derive(Clone, Debug)]
pub(crate) struct Identities {
    /// The node's peer id: miners without a key of their own advertise under it.
    pub(crate) node: IpniProvider,
    /// Miner address → its identity.
    pub(crate) by_miner: BTreeMap<String, IpniProvider>,
}

impl Identities {
    /// The identity `miner`'s deals are advertised under.
    pub(crate) fn for_miner(&self, miner: &str) -> &IpniProvider {
        self.by_miner.get(miner).unwrap_or(&self.node)
    }

    /// Every identity, the node's first (it answers the publisher's root routes).
    pub(crate) fn all(&self) -> Vec<IpniProvider> {
        std::iter::once(self.node.clone())
            .chain(self.by_miner.values().cloned())
            .collect()
    }
}

fn deal_fact(d: &ProviderDeal) -> Option<(PieceKey, StorageDealStatus, bool)> {
    let p = &d.proposal.proposal;
    let piece = market_core::cid::narrow(&p.piece_cid)?;
    Some(((piece, p.piece_size), d.state, d.skip_ipni))
}

/// The piece's own multihashes (of its v1 and v2 CIDs), advertised with its blocks, so a
/// client holding only a piece CID finds who serves `/piece/` for it (as Curio's piece ads
/// do for v2).
pub(crate) fn piece_multihashes(meta: &piecestore::PieceMeta) -> Vec<Vec<u8>> {
    let mut out = vec![meta.piece_cid.hash().to_bytes()];
    let v2 = commp::Commitment::from_cid_v1(&meta.piece_cid)
        .and_then(|c| commp::PieceCidV2::new(c, meta.padded_size, meta.payload_size));
    if let Ok(v2) = v2 {
        out.push(v2.to_cid().hash().to_bytes());
    }
    out
}

/// Plans and carries out one round for every identity, each over its miners' deals;
/// returns what was done.
pub(crate) async fn reconcile(
    ids: &Identities,
    deals: &Arc<dyn DealStore>,
    index: &Arc<dyn PieceIndex>,
) -> Result<Plan, String> {
    let all = deals
        .provider_deals()
        .await
        .map_err(|e| market_core::report(&e))?;
    let mut done = Plan::default();
    for ipni in ids.all() {
        let peer = ipni.peer_id();
        let mine: Vec<&ProviderDeal> = all
            .iter()
            .filter(|d| {
                ids.for_miner(&d.proposal.proposal.provider.to_string())
                    .peer_id()
                    == peer
            })
            .collect();
        let d = reconcile_one(&ipni, &mine, index).await?;
        done.announce.extend(d.announce);
        done.remove.extend(d.remove);
    }
    Ok(done)
}

async fn reconcile_one(
    ipni: &IpniProvider,
    all: &[&ProviderDeal],
    index: &Arc<dyn PieceIndex>,
) -> Result<Plan, String> {
    let live: BTreeSet<PieceKey> = ipni
        .store()
        .live_contexts(&ipni.peer_id().to_string())
        .await
        .map_err(|e| market_core::report(&e))?
        .iter()
        .filter_map(|c| {
            parse_piece_context_id(c)
                .ok()
                .map(|(size, cid)| (cid, size))
        })
        .collect();
    let plan = plan(all.iter().filter_map(|d| deal_fact(d)), &live);
    let mut done = Plan::default();
    for (piece, size) in &plan.announce {
        let wide = market_core::cid::widen(piece);
        let record = index
            .piece(&wide)
            .await
            .map_err(|e| market_core::report(&e))?;
        let Some(record) = record.filter(|r| r.indexed && r.block_count > 0) else {
            // Not a CAR we could index (or not indexed yet): nothing to advertise.
            continue;
        };
        let blocks = index
            .blocks(&wide)
            .await
            .map_err(|e| market_core::report(&e))?;
        let mut mhs: Vec<Vec<u8>> = blocks.into_iter().map(|(mh, _, _)| mh).collect();
        mhs.extend(piece_multihashes(&record.meta));
        if ipni
            .announce_piece(piece, *size, mhs)
            .await
            .map_err(|e| market_core::report(&e))?
            .is_some()
        {
            done.announce.push((*piece, *size));
        }
    }
    for (piece, size) in &plan.remove {
        if ipni
            .remove_piece(piece, *size)
            .await
            .map_err(|e| market_core::report(&e))?
            .is_some()
        {
            done.remove.push((*piece, *size));
        }
    }
    Ok(done)
}

/// Reconciles every `period` until aborted.
pub(crate) async fn run(
    ipni: Identities,
    deals: Arc<dyn DealStore>,
    index: Arc<dyn PieceIndex>,
    period: std::time::Duration,
) {
    loop {
        match reconcile(&ipni, &deals, &index).await {
            Ok(done) => {
                for (piece, _) in &done.announce {
                    tracing::info!(%piece, "piece advertised to IPNI");
                }
                for (piece, _) in &done.remove {
                    tracing::info!(%piece, "piece's IPNI advertisement removed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "deciding which pieces to advertise"),
        }
        tokio::time::sleep(period).await;
    }
}

/// The provider identities over `store`: the node's (its libp2p key, so the IPNI
/// provider id is the peer id miners publish on chain) and each of `[ipni] miner_keys`
/// (read, or generated on first start), announced under `/ipni-provider/{peer}`.
pub(crate) fn start(
    dir: &std::path::Path,
    store: Arc<dyn market_ipni::store::AdStore>,
    section: &crate::config::IpniSection,
    key: libp2p::identity::Keypair,
    http_url: &url::Url,
) -> Result<Identities, crate::node::NodeError> {
    use crate::config::ConfigError;
    let urls = section
        .announce_urls
        .iter()
        .map(|u| {
            url::Url::parse(u)
                .map_err(|e| ConfigError::Invalid(format!("[ipni] announce_urls {u}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let find = section
        .find_url
        .as_deref()
        .map(|u| {
            url::Url::parse(u)
                .map_err(|e| ConfigError::Invalid(format!("[ipni] find_url {u}: {e}")))
        })
        .transpose()?;
    let addrs: Vec<libp2p::Multiaddr> = retrieval_market::client::url_to_multiaddr(http_url)
        .into_iter()
        .collect();
    let mut config = market_ipni::IpniConfig::default()
        .with_announce_urls(urls)
        .with_http_addrs(addrs)
        .with_find_url(find);
    config.check_ingest = section.check_ingest;
    config.topic = section.topic.clone();
    config.unindexed_warning =
        std::time::Duration::from_secs(section.unindexed_warn_minutes.max(1) * 60);
    let node = IpniProvider::new(store.clone(), key, config.clone()).map_err(start_err)?;
    let mut by_miner = BTreeMap::new();
    for (miner, path) in &section.miner_keys {
        let key = miner_key(&dir.join(path)).map_err(|e| {
            ConfigError::Invalid(format!("[ipni] miner_keys {miner} = {path:?}: {e}"))
        })?;
        let p = IpniProvider::new(store.clone(), key, config.clone().with_peer_path(true))
            .map_err(start_err)?;
        tracing::info!(%miner, peer = %p.peer_id(), "miner advertises under its own IPNI identity");
        by_miner.insert(miner.clone(), p);
    }
    Ok(Identities { node, by_miner })
}

/// A libp2p key file (protobuf encoding, as Lotus and Boost keep theirs), generated when
/// missing.
fn miner_key(path: &std::path::Path) -> Result<libp2p::identity::Keypair, String> {
    use libp2p::identity::Keypair;
    match std::fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| e.to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = Keypair::generate_ed25519();
            let bytes = key.to_protobuf_encoding().map_err(|e| e.to_string())?;
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            crate::node::write_private(path, &bytes).map_err(|e| e.to_string())?;
            Ok(key)
        }
        Err(e) => Err(e.to_string()),
    }
}

fn start_err(e: market_ipni::IpniError) -> crate::node::NodeError {
    crate::node::NodeError::Start {
        part: "ipni",
        source: Box::new(e),
    }
}

/// Warns when a miner's on-chain peer id is not the identity its ads are published under:
/// retrieval checkers look ads up under MinerInfo.PeerId, so such a miner's content is not
/// found as its own.
pub(crate) async fn check_peer_ids(
    chain: &lotus_api::LotusChain,
    miners: &[storage_market::types::Address],
    ids: &Identities,
) {
    for m in miners {
        let ours = ids.for_miner(&m.to_string()).peer_id();
        match chain.state_miner_info(m).await {
            Ok(info) => match info.peer_id.as_deref() {
                Some(p) if p == ours.to_string() => {}
                Some(p) => {
                    tracing::warn!(miner = %m, on_chain = p, ours = %ours, "the miner's on-chain peer id is not this node's: IPNI ads are published under ours, so checkers will not find the miner's content; set it with `lotus-miner actor set-peer-id {ours}`")
                }
                None => {
                    tracing::warn!(miner = %m, ours = %ours, "the miner has no peer id on chain: set it to this node's (`lotus-miner actor set-peer-id {ours}`) so its IPNI ads are found")
                }
            },
            Err(e) => {
                tracing::warn!(miner = %m, error = %market_core::report(&e), "reading the miner's peer id")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StorageDealStatus as S;

    fn piece(n: u8) -> PieceKey {
        let mh = multihash::Multihash::<64>::wrap(0x1012, &[n; 32]).unwrap();
        (cid::Cid::new_v1(0xf101, mh), 2048)
    }

    /// A miner listed in `miner_keys` advertises under its own key (generated once, then
    /// read back), announced under its peer path; the others under the node's.
    #[test]
    fn miners_with_keys_get_identities_of_their_own() {
        let dir = tempfile::tempdir().unwrap();
        let mut section = crate::config::IpniSection::default();
        section
            .miner_keys
            .insert("f01002".into(), "ipni-keys/f01002.key".into());
        let node_key = libp2p::identity::Keypair::generate_ed25519();
        let url = url::Url::parse("http://127.0.0.1:7777/").unwrap();
        let ads: Arc<dyn market_ipni::store::AdStore> =
            Arc::new(market_ipni::store::SqliteAdStore::open_in_memory().unwrap());
        let ids = start(dir.path(), ads.clone(), &section, node_key.clone(), &url).unwrap();
        let own = ids.for_miner("f01002").peer_id();
        assert_ne!(own, node_key.public().to_peer_id());
        assert_eq!(
            ids.for_miner("f01000").peer_id(),
            node_key.public().to_peer_id()
        );
        assert_eq!(ids.all().len(), 2);
        assert!(
            ids.for_miner("f01002").publisher_addrs()[0]
                .to_string()
                .contains("http-path")
        );
        assert!(
            !ids.node.publisher_addrs()[0]
                .to_string()
                .contains("http-path")
        );
        drop(ids);
        // The key persists: the same identity after a restart.
        let again = start(dir.path(), ads.clone(), &section, node_key, &url).unwrap();
        assert_eq!(again.for_miner("f01002").peer_id(), own);
        // A file that is not a key is refused, not replaced.
        std::fs::write(dir.path().join("bad.key"), b"nope").unwrap();
        section.miner_keys.insert("f01003".into(), "bad.key".into());
        let key = libp2p::identity::Keypair::generate_ed25519();
        assert!(start(dir.path(), ads, &section, key, &url).is_err());
        assert_eq!(std::fs::read(dir.path().join("bad.key")).unwrap(), b"nope");
    }

    #[test]
    fn pieces_are_findable_by_their_v1_and_v2_cids() {
        let mut hasher = commp::CommP::new().with_short_payload(commp::ShortPayload::ZeroPad);
        hasher.update(&[7u8; 1000]);
        let info = hasher.finish().unwrap();
        let meta = piecestore::PieceMeta {
            piece_cid: market_core::cid::widen(&info.cid_v1()),
            payload_size: 1000,
            padded_size: info.padded_size,
        };
        let mhs = piece_multihashes(&meta);
        let v2 = commp::PieceCidV2::from_v1(&meta.piece_cid, 1000).unwrap();
        assert_eq!(
            mhs,
            [
                meta.piece_cid.hash().to_bytes(),
                v2.to_cid().hash().to_bytes()
            ]
        );
    }

    #[test]
    fn advertises_while_a_deal_serves_and_removes_after() {
        let none = BTreeSet::new();
        // Sealing deals are advertised; early and skipped ones are not.
        let p = plan(
            [
                (piece(1), S::Sealing, false),
                (piece(2), S::Transferring, false),
                (piece(3), S::Active, true),
            ],
            &none,
        );
        assert_eq!(p.announce, [piece(1)]);
        assert!(p.remove.is_empty());
        // Live and still wanted: nothing; one expired deal beside an active one: kept.
        let live: BTreeSet<_> = [piece(1), piece(4)].into();
        let p = plan(
            [
                (piece(1), S::Active, false),
                (piece(4), S::Expired, false),
                (piece(4), S::Active, false),
            ],
            &live,
        );
        assert_eq!(p, Plan::default());
        // Every deal of a piece ended (or the deal is gone): removed.
        let p = plan(
            [(piece(1), S::Slashed, false), (piece(4), S::Expired, false)],
            &live,
        );
        assert_eq!(p.remove, [piece(1), piece(4)]);
        let p = plan([], &live);
        assert_eq!(p.remove, [piece(1), piece(4)]);
    }
}
