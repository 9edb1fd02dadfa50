//! A dev chain, a provider serving one miner over libp2p on 127.0.0.1, and a funded client;
//! the provider's deals, pieces and index in SQLite and a directory (the embedded default)
//! or in a real PostgreSQL and a real S3 server ([`Backend`]).
#![allow(dead_code, unreachable_pub)]

use market_core::cid::PieceCidExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use commp::PaddedPieceSize;
use data_transfer::{TransferConfig, TransferManager};
use devnet::{DevChain, DevChainConfig, DevSealer};
use libp2p::identity;
use market_postgres::testing::PgServer;
use market_postgres::{PgDb, PgDealStore, PgPieceIndex};
use piecestore::testing::S3Server;
use piecestore::{FsPieceStore, PieceIndex, PieceStore, S3Config, S3PieceStore, SqlitePieceIndex};
use storage_market::Cid;
use storage_market::chain::{ChainNode, DealPolicy};
use storage_market::client::{Client, DealProtocol, DealSpec, price_per_epoch};
use storage_market::message::{HttpRequest, Transfer};
use storage_market::network::{Host, MarketNetwork, NetworkLimits, PeerAddr, ProviderNode};
use storage_market::provider::{AskParams, Provider, ProviderConfig, ProviderDeps};
use storage_market::store::{DealStore, SqliteDealStore};
use storage_market::types::{Address, ChainEpoch, TokenAmount};
use storage_market::wallet::{KeyStore, KeyType};

pub const EPOCH: Duration = Duration::from_millis(10);
pub const POLICY: DealPolicy = DealPolicy {
    min_duration: 100,
    max_duration: 10_000,
    max_end_offset: 20_000,
};

/// Where the provider keeps deals, pieces and the piece index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `provider.db`, `index.db` and `pieces/` in the test's directory.
    SqliteFs,
    /// Deals and the index in a PostgreSQL server, pieces in an S3 bucket (s3s-fs), both
    /// started for the test: what several instances share.
    PostgresS3,
}

/// Runs each named `async fn name(backend: Backend)` as a test on both backends, in modules
/// `sqlite_fs` and `postgres_s3`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite_fs {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::harness::Backend::SqliteFs).await
                }
            )*
        }
        mod postgres_s3 {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::harness::Backend::PostgresS3).await
                }
            )*
        }
    };
}

/// A [`Backend`]'s running servers and how to reach them. Every provider opened on one
/// backing (a restart, a second instance) sees the same deals, pieces and index.
#[derive(Debug)]
pub enum Backing {
    SqliteFs,
    PostgresS3(Box<Servers>),
}

/// The servers of [`Backend::PostgresS3`], stopped when dropped.
#[derive(Debug)]
pub struct Servers {
    pg: PgServer,
    s3: S3Server,
    url: String,
    bucket: S3Config,
}

impl Backing {
    /// Starts what `backend` needs under `dir`.
    pub fn start(backend: Backend, dir: &Path) -> Self {
        match backend {
            Backend::SqliteFs => Self::SqliteFs,
            Backend::PostgresS3 => {
                let pg = PgServer::start(&dir.join("pg"));
                let url = pg.database("provider");
                let s3 = S3Server::start(&dir.join("s3"));
                let bucket = s3.bucket("pieces");
                Self::PostgresS3(Box::new(Servers {
                    pg,
                    s3,
                    url,
                    bucket,
                }))
            }
        }
    }

    /// Opens the deal store, piece store and index, as a provider process starting does.
    pub async fn open(
        &self,
        env_dir: &Path,
    ) -> (Arc<dyn DealStore>, Arc<dyn PieceStore>, Arc<dyn PieceIndex>) {
        match self {
            Self::SqliteFs => (
                Arc::new(SqliteDealStore::open(env_dir.join("provider.db")).unwrap()),
                Arc::new(FsPieceStore::open(env_dir.join("pieces")).unwrap()),
                Arc::new(SqlitePieceIndex::open(&env_dir.join("index.db")).unwrap()),
            ),
            Self::PostgresS3(servers) => {
                let Servers { url, bucket, .. } = &**servers;
                let db = PgDb::connect(url, 8).unwrap();
                (
                    Arc::new(PgDealStore::open(db.clone()).await.unwrap()),
                    Arc::new(S3PieceStore::open(bucket).unwrap()),
                    Arc::new(PgPieceIndex::open(db).await.unwrap()),
                )
            }
        }
    }
}

pub struct Env {
    /// Where the provider's state lives; a restart opens it again. Before `dir`, so its
    /// servers stop before their directories go.
    pub backing: Backing,
    pub dir: tempfile::TempDir,
    pub chain: DevChain,
    pub sealer: DevSealer,
    pub keys: KeyStore,
    pub miner: Address,
    pub worker: Address,
    pub client_addr: Address,
    pub provider: Provider,
    pub node: ProviderNode,
    pub peer: PeerAddr,
    pub client: Client,
    pub provider_key: identity::Keypair,
    /// Set to cut the provider off from its chain node.
    pub chain_down: Arc<std::sync::atomic::AtomicBool>,
}

pub fn provider_config(miner: Address) -> ProviderConfig {
    let mut c = ProviderConfig::default();
    c.miners = vec![miner];
    c.filter.expected_seal_duration = Duration::from_secs(30 * 20);
    c.filter.max_deal_start_delay = Duration::from_secs(30 * 100_000);
    c.publish.publish_period = Duration::ZERO;
    c.publish.start_epoch_sealing_buffer = 10;
    c.policy = POLICY;
    c.message_confidence = 1;
    c.poll_interval = Duration::from_millis(10);
    c.default_ask = AskParams {
        price: TokenAmount::from_atto(1_000_000),
        verified_price: TokenAmount::from_atto(100_000),
        min_piece_size: PaddedPieceSize::new(128).unwrap(),
        max_piece_size: PaddedPieceSize::new(1 << 20).unwrap(),
        duration: 100_000,
    };
    c
}

/// Transfer settings for tests (see `data_transfer::testing::config`).
pub fn transfer_config(env_dir: &Path) -> TransferConfig {
    data_transfer::testing::config(env_dir.join("staging"))
}

/// Boost's transfer of `bytes` from `url` (`kind` is `http` or `libp2p`) with `headers`.
pub fn transfer(kind: &str, url: &str, headers: &[(&str, String)], bytes: u64) -> Transfer {
    let req = HttpRequest {
        url: url.into(),
        headers: headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    };
    Transfer {
        size: bytes,
        kind: kind.into(),
        params: serde_json::to_vec(&req).unwrap(),
        client_id: String::new(),
    }
}

/// A provider's dependencies with its state opened from `backing`.
pub async fn deps(
    backing: &Backing,
    env_dir: &Path,
    chain: &FlakyChain,
    keys: &KeyStore,
    sealer: &DevSealer,
    transfers: TransferConfig,
    host: &Host,
) -> ProviderDeps {
    deps_on(None, backing, env_dir, chain, keys, sealer, transfers, host).await
}

/// [`deps`] with deals in `store` when given.
#[allow(clippy::too_many_arguments)]
pub async fn deps_on(
    store: Option<Arc<dyn DealStore>>,
    backing: &Backing,
    env_dir: &Path,
    chain: &FlakyChain,
    keys: &KeyStore,
    sealer: &DevSealer,
    transfers: TransferConfig,
    host: &Host,
) -> ProviderDeps {
    let (deals, pieces, index) = backing.open(env_dir).await;
    ProviderDeps {
        chain: Arc::new(chain.clone()),
        wallet: Arc::new(keys.clone()),
        store: store.unwrap_or(deals),
        pieces,
        index,
        transfers: Some(
            TransferManager::open(transfers, Some(host.clone()))
                .await
                .unwrap(),
        ),
        sealer: Arc::new(sealer.clone()),
    }
}

/// The provider's one libp2p host on 127.0.0.1.
pub async fn provider_host(key: &identity::Keypair) -> Host {
    Host::start(
        key.clone(),
        NetworkLimits::default()
            .host_config()
            .with_listen(["/ip4/127.0.0.1/tcp/0".parse().unwrap()]),
    )
    .await
    .unwrap()
}

impl Env {
    /// Starts everything; the chain clock runs unless `clock` is false.
    pub async fn start(config: impl FnOnce(&mut ProviderConfig), clock: bool) -> Env {
        Self::start_with(config, |_| {}, clock).await
    }

    /// [`start`](Self::start) with the provider's state on `backend`.
    pub async fn start_on_backend(
        backend: Backend,
        config: impl FnOnce(&mut ProviderConfig),
        clock: bool,
    ) -> Env {
        Self::start_full(backend, |c| c, config, |_| {}, clock, None).await
    }

    /// [`start`](Self::start) with transfer settings adjusted by `transfers`.
    pub async fn start_with(
        config: impl FnOnce(&mut ProviderConfig),
        transfers: impl FnOnce(&mut TransferConfig),
        clock: bool,
    ) -> Env {
        Self::start_on(|c| c, config, transfers, clock).await
    }

    /// [`start_with`](Self::start_with) on a dev chain configured by `chain`.
    #[allow(dead_code)]
    pub async fn start_on(
        chain: impl FnOnce(DevChainConfig) -> DevChainConfig,
        config: impl FnOnce(&mut ProviderConfig),
        transfers: impl FnOnce(&mut TransferConfig),
        clock: bool,
    ) -> Env {
        Self::start_full(Backend::SqliteFs, chain, config, transfers, clock, None).await
    }

    /// [`start`](Self::start) with the provider's deals in `store`.
    pub async fn start_with_store(store: Arc<dyn DealStore>, clock: bool) -> Env {
        Self::start_full(Backend::SqliteFs, |c| c, |_| {}, |_| {}, clock, Some(store)).await
    }

    async fn start_full(
        backend: Backend,
        chain: impl FnOnce(DevChainConfig) -> DevChainConfig,
        config: impl FnOnce(&mut ProviderConfig),
        transfers: impl FnOnce(&mut TransferConfig),
        clock: bool,
        store: Option<Arc<dyn DealStore>>,
    ) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let backing = Backing::start(backend, dir.path());
        let mut chain_config = DevChainConfig::default();
        chain_config.policy = POLICY;
        let chain_config = chain(chain_config);
        let chain = DevChain::new(chain_config);
        let keys = KeyStore::open(dir.path().join("keys")).unwrap();
        let worker = keys.generate(KeyType::Secp256k1).unwrap();
        let owner = keys.generate(KeyType::Secp256k1).unwrap();
        let client_addr = keys.generate(KeyType::Bls).unwrap();
        chain.fund(&worker, TokenAmount::from_whole(100));
        chain.fund(&owner, TokenAmount::from_whole(100));
        chain.fund(&client_addr, TokenAmount::from_whole(100));
        let miner = chain.create_miner(&owner, &worker, 32 << 30);
        let sealer = DevSealer::new(chain.clone());
        let mut cfg = provider_config(miner);
        config(&mut cfg);
        let mut tcfg = transfer_config(dir.path());
        transfers(&mut tcfg);
        let provider_key = identity::Keypair::generate_ed25519();
        let host = provider_host(&provider_key).await;
        let chain_down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flaky = FlakyChain {
            inner: chain.clone(),
            down: chain_down.clone(),
        };
        let provider = Provider::start(
            cfg,
            deps_on(
                store,
                &backing,
                dir.path(),
                &flaky,
                &keys,
                &sealer,
                tcfg,
                &host,
            )
            .await,
        )
        .await
        .unwrap();
        let node = ProviderNode::on(host, provider.clone(), &NetworkLimits::default()).unwrap();
        let peer = node.host().addr();
        let network = MarketNetwork::start(
            identity::Keypair::generate_ed25519(),
            NetworkLimits::default(),
        )
        .unwrap();
        let client = Client::new(
            network,
            Arc::new(keys.clone()),
            Arc::new(chain.clone()),
            Arc::new(SqliteDealStore::open(dir.path().join("client.db")).unwrap()),
        );
        if clock {
            chain.start_clock(EPOCH);
        }
        // Client escrow for many deals.
        let env = Env {
            dir,
            backing,
            chain,
            sealer,
            keys,
            miner,
            worker,
            client_addr,
            provider,
            node,
            peer,
            client,
            provider_key,
            chain_down,
        };
        env.fund_client(TokenAmount::from_whole(10)).await;
        env
    }

    pub async fn fund_client(&self, amount: TokenAmount) {
        let c = self.client.clone();
        let addr = self.client_addr;
        let fee = TokenAmount::from_whole(1);
        let chain = self.chain.clone();
        // Mine epochs meanwhile in case the clock is stopped.
        let miner = tokio::spawn(async move {
            loop {
                tokio::time::sleep(EPOCH).await;
                chain.advance(1);
            }
        });
        c.add_funds(&addr, amount, fee).await.unwrap();
        miner.abort();
    }

    /// Restarts the provider on the same database, as after a crash.
    pub async fn restart_provider(&mut self, config: impl FnOnce(&mut ProviderConfig)) {
        self.provider.stop();
        self.node.stop();
        let mut cfg = provider_config(self.miner);
        config(&mut cfg);
        let host = provider_host(&self.provider_key).await;
        self.provider = Provider::start(
            cfg,
            deps(
                &self.backing,
                self.dir.path(),
                &FlakyChain {
                    inner: self.chain.clone(),
                    down: self.chain_down.clone(),
                },
                &self.keys,
                &self.sealer,
                transfer_config(self.dir.path()),
                &host,
            )
            .await,
        )
        .await
        .unwrap();
        self.node =
            ProviderNode::on(host, self.provider.clone(), &NetworkLimits::default()).unwrap();
        self.peer = self.node.host().addr();
    }

    /// A CAR-like payload file of `len` deterministic bytes, with its piece CID and size.
    pub fn data_file(&self, name: &str, len: usize, seed: u8) -> (PathBuf, Cid, PaddedPieceSize) {
        let bytes: Vec<u8> = (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        let path = self.dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let info = commp::commp(&bytes).unwrap();
        (path, info.piece_cid(), info.padded_size)
    }

    /// A real CARv1 of `blocks` raw blocks of `block_len` bytes under the first block's CID:
    /// its path, bytes, piece CID, piece size and root.
    pub fn car_file(
        &self,
        name: &str,
        blocks: usize,
        block_len: usize,
        seed: u8,
    ) -> (PathBuf, Vec<u8>, Cid, PaddedPieceSize, Cid) {
        use sha2::Digest;
        let data: Vec<Vec<u8>> = (0..blocks)
            .map(|b| {
                (0..block_len)
                    .map(|i| ((i * 131 + b * 7) as u8) ^ seed)
                    .collect()
            })
            .collect();
        let cid_of = |d: &[u8]| {
            let digest = sha2::Sha256::digest(d);
            Cid::new_v1(
                0x55,
                market_core::cid::Multihash::wrap(0x12, &digest).unwrap(),
            )
        };
        let root = cid_of(&data[0]);
        let mut w = piecestore::CarWriter::new(Vec::new(), &[root]).unwrap();
        for d in &data {
            w.write_block(&cid_of(d), d).unwrap();
        }
        let bytes = w.finish().unwrap();
        let path = self.dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let info = commp::commp(&bytes).unwrap();
        (path, bytes, info.piece_cid(), info.padded_size, root)
    }

    /// An online deal spec with `transfer`.
    pub async fn online_spec(
        &self,
        piece_cid: Cid,
        size: PaddedPieceSize,
        root: Cid,
        transfer: Transfer,
    ) -> DealSpec {
        let mut spec = self.offline_spec(piece_cid, size, DealProtocol::V12).await;
        spec.payload_root = root;
        spec.transfer = Some(transfer);
        spec
    }

    pub async fn offline_spec(
        &self,
        piece_cid: Cid,
        size: PaddedPieceSize,
        protocol: DealProtocol,
    ) -> DealSpec {
        let ask = self
            .client
            .query_ask(&self.peer, &self.miner)
            .await
            .unwrap();
        let head = self.chain.head().await.unwrap();
        DealSpec {
            client: self.client_addr,
            miner: self.miner,
            piece_cid,
            piece_size: size,
            payload_root: piece_cid,
            label: None,
            start_epoch: head.plus(500),
            duration: 150,
            price_per_epoch: price_per_epoch(&ask, size, false),
            provider_collateral: None,
            verified: false,
            transfer: None,
            fast_retrieval: true,
            protocol,
            deal_uuid: None,
        }
    }

    pub fn head(&self) -> ChainEpoch {
        self.chain.epoch()
    }
}

/// The dev chain behind a switch: while `down` is set every call fails as an unreachable
/// node would (`ChainError::Node`).
#[derive(Clone)]
pub struct FlakyChain {
    pub inner: DevChain,
    pub down: Arc<std::sync::atomic::AtomicBool>,
}

impl FlakyChain {
    fn check(&self) -> Result<(), storage_market::chain::ChainError> {
        if self.down.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(storage_market::chain::ChainError::Node(
                "connection refused (test outage)".into(),
            ));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl ChainNode for FlakyChain {
    async fn head(&self) -> Result<ChainEpoch, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.head().await
    }
    async fn miner_info(
        &self,
        miner: &Address,
    ) -> Result<storage_market::chain::MinerInfo, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.miner_info(miner).await
    }
    async fn market_balance(
        &self,
        addr: &Address,
    ) -> Result<storage_market::chain::MarketBalance, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.market_balance(addr).await
    }
    async fn collateral_bounds(
        &self,
        size: PaddedPieceSize,
        verified: bool,
    ) -> Result<storage_market::chain::CollateralBounds, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.collateral_bounds(size, verified).await
    }
    async fn datacap(
        &self,
        client: &Address,
    ) -> Result<Option<u128>, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.datacap(client).await
    }
    async fn account_key(
        &self,
        addr: &Address,
    ) -> Result<Address, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.account_key(addr).await
    }
    async fn lookup_id(
        &self,
        addr: &Address,
    ) -> Result<Address, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.lookup_id(addr).await
    }
    async fn push_message(
        &self,
        msg: storage_market::chain::Message,
    ) -> Result<Cid, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.push_message(msg).await
    }
    async fn call(
        &self,
        msg: &storage_market::chain::Message,
    ) -> Result<storage_market::chain::Receipt, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.call(msg).await
    }
    async fn wait_message(
        &self,
        cid: &Cid,
        confidence: u64,
    ) -> Result<storage_market::chain::MessageLookup, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.wait_message(cid, confidence).await
    }
    async fn market_deal(
        &self,
        id: storage_market::types::DealId,
    ) -> Result<Option<storage_market::chain::MarketDeal>, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.market_deal(id).await
    }
    async fn sector(
        &self,
        miner: &Address,
        sector: storage_market::types::SectorNumber,
    ) -> Result<Option<market_core::chain::SectorOnChain>, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.sector(miner, sector).await
    }
    async fn wallet_balance(
        &self,
        addr: &Address,
    ) -> Result<TokenAmount, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.wallet_balance(addr).await
    }
    async fn network_version(
        &self,
    ) -> Result<storage_market::types::NetworkVersion, storage_market::chain::ChainError> {
        self.check()?;
        self.inner.network_version().await
    }
}

/// Distinct, validly signed offline proposals from one funded secp256k1 client, for
/// benchmarks that count proposals per second.
pub struct ProposalMaker {
    keys: KeyStore,
    client: Address,
    base: storage_market::deal::DealProposal,
    piece_cid: Cid,
    counter: u64,
}

impl ProposalMaker {
    /// A client with escrow for many deals on `env`'s chain (mining epochs meanwhile).
    pub async fn new(env: &Env) -> Self {
        use storage_market::types::DealLabel;
        // secp256k1: the common key type of deal-making tools.
        let client = env.keys.generate(KeyType::Secp256k1).unwrap();
        env.chain.fund(&client, TokenAmount::from_whole(1000));
        let chain = env.chain.clone();
        let miner = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(5)).await;
                chain.advance(1);
            }
        });
        let c = Client::new(
            MarketNetwork::start(identity::Keypair::generate_ed25519(), Default::default())
                .unwrap(),
            Arc::new(env.keys.clone()),
            Arc::new(env.chain.clone()),
            Arc::new(SqliteDealStore::in_memory().unwrap()),
        );
        c.add_funds(
            &client,
            TokenAmount::from_whole(500),
            TokenAmount::from_whole(1),
        )
        .await
        .unwrap();
        miner.abort();
        let (_, piece_cid, size) = env.data_file("b.car", 3000, 1);
        let mut spec = env.offline_spec(piece_cid, size, DealProtocol::V12).await;
        spec.client = client;
        let mut base = env.client.sign_proposal(&spec).await.unwrap().proposal;
        base.label = DealLabel::String(String::new());
        Self {
            keys: env.keys.clone(),
            client,
            base,
            piece_cid,
            counter: 0,
        }
    }

    /// `n` new proposals, each with a label of its own.
    pub fn make(&mut self, n: u64) -> Vec<storage_market::message::DealParams> {
        use storage_market::types::DealLabel;
        (0..n)
            .map(|_| {
                self.counter += 1;
                let mut p = self.base.clone();
                p.label = DealLabel::String(format!("bench-{}", self.counter));
                let sig = self.keys.sign_sync(&self.client, &p.to_cbor()).unwrap();
                storage_market::message::DealParams::offline(
                    storage_market::deal::ClientDealProposal {
                        proposal: p,
                        client_signature: sig,
                    },
                    self.piece_cid,
                )
            })
            .collect()
    }
}
