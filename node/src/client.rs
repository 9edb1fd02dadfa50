//! The client side shared by the `client` CLI and the demo: a repo with a wallet and a deal
//! database, data preparation, deal proposals and retrieval.
//!
//! Repo layout: `keys/` (wallet; the first BLS key is the default address) and `client.db`.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use commp::PaddedPieceSize;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, identity};
use piecestore::directory::import_dir;
use piecestore::unixfs::{ImportProfile, ImportReport, import_file};
use retrieval_market::RetrievalClient;
use storage_market::Cid;
use storage_market::chain::ChainNode;
use storage_market::client::{Client, DealProtocol, DealSpec, price_per_epoch};
use storage_market::message::{HttpRequest, Transfer};
use storage_market::network::{MarketNetwork, NetworkLimits, PeerAddr};
use storage_market::store::SqliteDealStore;
use storage_market::types::{Address, TokenAmount};
use storage_market::wallet::{KeyStore, KeyType};

use devnet::DevApi;
use lotus_api::{ApiInfo, Journal, LotusChain, LotusChainConfig, RpcClient, RpcConfig, Sending};

/// A client's parts.
pub struct ClientNode {
    /// The storage client.
    pub storage: Client,
    /// The retrieval client.
    pub retrieval: RetrievalClient,
    /// The chain, through the Lotus adapter (messages signed with the repo's keys).
    pub chain: Arc<LotusChain>,
    /// The devnet's `Dev` API (faucet), when the chain is a devnet.
    pub dev: DevApi,
    /// The default wallet address.
    pub address: Address,
}

/// Opens (creating on first use) the client repo at `dir`, reaching the chain node at `api`.
/// Messages are signed with the repo's keys and journaled in `messages.db`, so only `read`
/// and `write` permissions are needed (a public gateway's `MpoolPush` is enough).
pub async fn open(dir: &Path, api: &ApiInfo) -> Result<ClientNode, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let keys = KeyStore::open(dir.join("keys")).map_err(|e| market_core::report(&e))?;
    let address = match keys
        .addresses()
        .into_iter()
        .find(|a| a.to_string().starts_with("f3") || a.to_string().starts_with("t3"))
    {
        Some(a) => a,
        None => keys
            .generate(KeyType::Bls)
            .map_err(|e| market_core::report(&e))?,
    };
    let network = MarketNetwork::start(
        identity::Keypair::generate_ed25519(),
        NetworkLimits::default(),
    )
    .map_err(|e| market_core::report(&e))?;
    let rpc = RpcClient::new(
        api.url.clone(),
        api.token.clone(),
        "Filecoin",
        RpcConfig::default(),
    );
    let journal = Journal::open(&dir.join("messages.db")).map_err(|e| market_core::report(&e))?;
    let chain = Arc::new(LotusChain::new(
        rpc.clone(),
        Sending::Local {
            wallet: Arc::new(keys.clone()),
            journal,
        },
        LotusChainConfig::default(),
    ));
    let dev = DevApi::new(&rpc);
    let storage = Client::new(
        network.clone(),
        Arc::new(keys),
        chain.clone(),
        Arc::new(
            SqliteDealStore::open(dir.join("client.db")).map_err(|e| market_core::report(&e))?,
        ),
    );
    let retrieval =
        RetrievalClient::new(Some(network.host().clone())).map_err(|e| market_core::report(&e))?;
    Ok(ClientNode {
        storage,
        retrieval,
        chain,
        dev,
        address,
    })
}

/// `/ip4/…/tcp/…/p2p/<peer>` to a peer address.
pub fn parse_peer(s: &str) -> Result<PeerAddr, String> {
    let mut ma = Multiaddr::from_str(s).map_err(|e| format!("{s}: {e}"))?;
    match ma.pop() {
        Some(Protocol::P2p(peer_id)) => Ok(PeerAddr {
            peer_id,
            addrs: vec![ma],
        }),
        _ => Err(format!("{s} does not end in /p2p/<peer id>")),
    }
}

/// A file of `size` pseudo-random bytes from `seed` (xorshift64), for tests and demos.
pub fn generate_file(path: &Path, size: u64, seed: u64) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut s = seed | 1;
    let mut left = size;
    let mut buf = Vec::with_capacity(1 << 16);
    while left > 0 {
        buf.clear();
        while buf.len() < (1 << 16) {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            buf.extend_from_slice(&s.to_le_bytes());
        }
        let n = left.min(buf.len() as u64) as usize;
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    out.flush()
}

/// A prepared deal payload: the CAR, its DAG root and its piece.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The CAR file.
    pub car: PathBuf,
    /// The DAG root.
    pub root: Cid,
    /// The import.
    pub import: ImportReport,
    /// commP of the CAR.
    pub piece: commp::PieceInfo,
}

/// Imports `file` (a file, or a directory tree as Kubo's `ipfs add -r` would) into a CAR at
/// `car` and computes its commP, reporting bytes processed (twice the content: two passes).
pub fn prepare(
    file: &Path,
    car: &Path,
    profile: ImportProfile,
    progress: &mut dyn FnMut(u64),
) -> Result<Prepared, String> {
    let is_dir = std::fs::metadata(file)
        .map_err(|e| format!("{}: {e}", file.display()))?
        .is_dir();
    let out = std::fs::File::create(car).map_err(|e| format!("{}: {e}", car.display()))?;
    let import = if is_dir {
        let r = import_dir(file, profile, out, progress).map_err(|e| market_core::report(&e))?;
        ImportReport {
            root: r.root,
            file_size: r.bytes,
            blocks: r.blocks,
            car_size: r.car_size,
        }
    } else {
        import_file(file, profile, out, progress).map_err(|e| market_core::report(&e))?
    };
    // An inline (identity) root is a legal payload CID: Lotus gives one to every file of
    // (1 MiB, 2 MiB].
    let root = import.root;
    let piece = car_commp(car)?;
    Ok(Prepared {
        car: car.to_path_buf(),
        root,
        import,
        piece,
    })
}

/// commP of a CAR file. CARs under 65 bytes (those of empty and one-byte files) use
/// FRC-0069's zero padding, as Lotus's client does.
pub fn car_commp(car: &Path) -> Result<commp::PieceInfo, String> {
    use std::io::Read;
    let mut reader = std::io::BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(car).map_err(|e| format!("{}: {e}", car.display()))?,
    );
    let mut hasher = commp::CommP::new().with_short_payload(commp::ShortPayload::ZeroPad);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader.read(&mut buf).map_err(|e| market_core::report(&e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    hasher.finish().map_err(|e| market_core::report(&e))
}

/// A Boost HTTP transfer of `size` bytes from `url` with `headers`.
pub fn http_transfer(url: &str, headers: Vec<(String, String)>, size: u64) -> Transfer {
    let req = HttpRequest {
        url: url.into(),
        headers: headers.into_iter().collect(),
    };
    Transfer {
        size,
        kind: "http".into(),
        params: serde_json::to_vec(&req).expect("request serializes"),
        client_id: String::new(),
    }
}

/// What a deal should be.
#[derive(Debug, Clone)]
pub struct DealTerms {
    /// The miner.
    pub miner: Address,
    /// Piece CID.
    pub piece_cid: Cid,
    /// Padded piece size.
    pub piece_size: PaddedPieceSize,
    /// Payload root.
    pub root: Cid,
    /// Epochs from now until the deal starts.
    pub start_in: i64,
    /// Deal length in epochs.
    pub duration: i64,
    /// Verified deal.
    pub verified: bool,
    /// Online transfer; `None` for an offline deal.
    pub transfer: Option<Transfer>,
}

impl ClientNode {
    /// Where `miner`'s market node is, as its MinerInfo says (peer id and multiaddrs, what
    /// `provider actor set-peer-info` and `lotus-miner actor set-peer-id` write).
    pub async fn miner_peer(&self, miner: &Address) -> Result<PeerAddr, String> {
        let info = self
            .chain
            .state_miner_info(miner)
            .await
            .map_err(|e| market_core::report(&e))?;
        let peer = info
            .peer_id
            .filter(|p| !p.is_empty())
            .ok_or(format!("{miner} has no peer id on chain: give --peer"))?;
        let peer_id = libp2p::PeerId::from_str(&peer)
            .map_err(|e| format!("{miner}'s peer id {peer}: {e}"))?;
        use base64::Engine as _;
        let addrs = info
            .multiaddrs
            .iter()
            .filter_map(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .filter_map(|b| Multiaddr::try_from(b).ok())
            .collect::<Vec<_>>();
        if addrs.is_empty() {
            return Err(format!("{miner} has no multiaddrs on chain: give --peer"));
        }
        Ok(PeerAddr { peer_id, addrs })
    }

    /// Asks each provider for the status of this client's unfinished deals and records the
    /// answers; `peer` (when given) is used for every deal instead of the miner's on-chain
    /// address. Returns every deal, refreshed where the provider answered, with why not
    /// where it did not.
    pub async fn refresh_deals(
        &self,
        peer: Option<&PeerAddr>,
    ) -> Result<Vec<(storage_market::store::ClientDeal, Option<String>)>, String> {
        let deals = self
            .storage
            .deals()
            .await
            .map_err(|e| market_core::report(&e))?;
        let mut out = Vec::with_capacity(deals.len());
        for d in deals {
            let finished = d.state.is_terminal() || d.checkpoint == "Complete";
            if finished {
                out.push((d, None));
                continue;
            }
            let target = match peer {
                Some(p) => Ok(p.clone()),
                None => self.miner_peer(&d.proposal.proposal.provider).await,
            };
            let updated = match target {
                Ok(p) => self
                    .storage
                    .update_status(&p, &d)
                    .await
                    .map_err(|e| market_core::report(&e)),
                Err(e) => Err(e),
            };
            out.push(match updated {
                Ok(fresh) => (fresh, None),
                Err(e) => (d, Some(e)),
            });
        }
        Ok(out)
    }

    /// A deal spec at the miner's asked price, starting `start_in` epochs from the head.
    pub async fn spec(&self, peer: &PeerAddr, t: DealTerms) -> Result<DealSpec, String> {
        let ask = self
            .storage
            .query_ask(peer, &t.miner)
            .await
            .map_err(|e| format!("ask: {e}"))?;
        let head = self
            .chain
            .head()
            .await
            .map_err(|e| market_core::report(&e))?;
        Ok(DealSpec {
            client: self.address,
            miner: t.miner,
            piece_cid: t.piece_cid,
            piece_size: t.piece_size,
            payload_root: t.root,
            label: None,
            start_epoch: head.plus(t.start_in),
            duration: t.duration,
            price_per_epoch: price_per_epoch(&ask, t.piece_size, t.verified),
            provider_collateral: None,
            verified: t.verified,
            transfer: t.transfer,
            fast_retrieval: true,
            protocol: DealProtocol::V12,
            deal_uuid: None,
        })
    }

    /// Adds `amount` to the client's market escrow.
    pub async fn add_funds(&self, amount: TokenAmount) -> Result<Cid, String> {
        self.storage
            .add_funds(&self.address, amount, TokenAmount::from_whole(1))
            .await
            .map_err(|e| market_core::report(&e))
    }

    /// Takes up to `amount` of unlocked escrow back; returns the message and what came back.
    pub async fn withdraw_funds(&self, amount: TokenAmount) -> Result<(Cid, TokenAmount), String> {
        self.storage
            .withdraw_funds(&self.address, amount, TokenAmount::from_whole(1))
            .await
            .map_err(|e| market_core::report(&e))
    }
}

/// The multihashes an indexer knows a piece by: its v1 CID's, and its v2 CID's when `piece`
/// is a v2 CID (a v1 CID does not say the payload size a v2 CID carries).
pub fn piece_lookup_multihashes(piece: &Cid) -> Result<(Cid, Vec<Vec<u8>>), String> {
    if let Ok(v2) = commp::PieceCidV2::from_cid(piece) {
        let v1 = market_core::cid::widen(&v2.to_v1());
        return Ok((v1, vec![v1.hash().to_bytes(), piece.hash().to_bytes()]));
    }
    commp::Commitment::from_cid_v1(piece)
        .map_err(|e| format!("{piece} is not a piece CID: {e}"))?;
    Ok((*piece, vec![piece.hash().to_bytes()]))
}

/// The HTTP providers the IPNI indexer at `find` names for any of `multihashes` and whose
/// ads offer `transport` (a [`market_ipni::metadata`] code), each once, in the indexer's
/// order. Providers without an `http(s)` address are left out: they cannot serve us.
pub async fn indexer_providers(
    http: &reqwest::Client,
    find: &url::Url,
    multihashes: &[Vec<u8>],
    transport: u64,
) -> Result<Vec<retrieval_market::client::HttpProvider>, String> {
    let mut out: Vec<retrieval_market::client::HttpProvider> = Vec::new();
    for mh in multihashes {
        let records = market_ipni::find::find(http, find, mh)
            .await
            .map_err(|e| market_core::report(&e))?;
        for r in records.iter().filter(|r| r.serves(transport)) {
            if out.iter().any(|p| p.id == r.provider) {
                continue;
            }
            if let Some(url) = r
                .multiaddrs()
                .iter()
                .find_map(retrieval_market::client::multiaddr_to_url)
            {
                out.push(retrieval_market::client::HttpProvider::new(
                    r.provider.clone(),
                    url,
                ));
            }
        }
    }
    Ok(out)
}
