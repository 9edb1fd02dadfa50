//! A provider market node assembled from a repo directory: the chain (a Lotus or Venus node,
//! or the embedded devnet, always through the Lotus adapter), the storage provider on
//! libp2p, retrieval (query and transports on the same host, HTTP piece and gateway), and the
//! admin API on the HTTP listener.
//!
//! Repo layout: `config.toml`, `keys/` (wallet), `libp2p.key`, `jwt.secret`, `token` (admin)
//! and `token.read`, `sealer-api-info` (for pull sealers), `provider.db`, `index.db` (both in
//! Postgres instead when `[database] postgres` is set), `ipni.db` (IPNI ad chain), `messages.db`
//! (signed-message journal), `pieces/`, `staging/`, and `devnet/` when the node embeds one.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use data_transfer::{AddressPolicy, TransferConfig, TransferManager};
use devnet::{DevApi, DevSealer, Devnet, DevnetConfig};
use libp2p::{Multiaddr, identity};
use lotus_api::{
    ApiInfo, Flavor, Journal, LotusChain, LotusChainConfig, NodeWallet, RpcClient, RpcConfig,
    Sending,
};
use market_core::chain::ChainNode;
use market_core::host::{Host, PeerAddr};
use market_core::rpc::Service;
use market_core::wallet::Wallet;
use piecestore::metered::MeteredPieceStore;
use piecestore::{PieceIndex, PieceStore, SqlitePieceIndex};
use retrieval_market::RetrievalProvider;
use retrieval_market::client::url_to_multiaddr;
use retrieval_market::http::HttpConfig;
use retrieval_market::types::TransportProtocol;
use sealing::SealerApi;
use storage_market::chain::DealPolicy;
use storage_market::filter::{BasicFilter, ExternalFilter};
use storage_market::lease::LeaseConfig;
use storage_market::network::NetworkLimits;
use storage_market::provider::{AskParams, Provider, ProviderConfig, ProviderDeps};
use storage_market::publish::PublishConfig;
use storage_market::sealer::Sealer;
use storage_market::store::DealStore;
use storage_market::store::SqliteDealStore;
use storage_market::types::{Address, TokenAmount};
use storage_market::wallet::{KeyStore, KeyType};
use url::Url;

use crate::config::{ConfigError, MinerSection, NodeConfig};
use crate::{admin, jwt};

/// Deal terms short enough for a demo to see deals start and end.
pub const SHORT_TERMS: DealPolicy = devnet::repo::SHORT_TERMS;

/// Why the node could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The config is missing or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `init` found an existing repo.
    #[error("{0} is already initialised")]
    Exists(PathBuf),
    /// A part failed to start.
    #[error("cannot start the {part}")]
    Start {
        /// Which part.
        part: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Repo files could not be read or written.
    #[error("repo i/o: {0}")]
    Io(#[from] std::io::Error),
}

fn start_err<E: std::error::Error + Send + Sync + 'static>(
    part: &'static str,
) -> impl Fn(E) -> NodeError {
    move |e| NodeError::Start {
        part,
        source: Box::new(e),
    }
}

/// Files of a repo.
#[derive(Debug, Clone)]
pub struct Repo(pub PathBuf);

impl Repo {
    /// `config.toml`.
    pub fn config(&self) -> PathBuf {
        self.0.join("config.toml")
    }
    /// The admin token.
    pub fn admin_token(&self) -> PathBuf {
        self.0.join("token")
    }
    /// The read-only token.
    pub fn read_token(&self) -> PathBuf {
        self.0.join("token.read")
    }
    /// `TOKEN:MULTIADDR` of the sealer API with a read+write token, written at start in
    /// `[sealing] mode = "pull"`.
    pub fn sealer_api_info(&self) -> PathBuf {
        self.0.join("sealer-api-info")
    }
    fn under(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.0.join(p)
        }
    }
}

pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Creates a repo: keys for one miner (owner and worker), a libp2p identity, the JWT secret
/// and tokens, and `config` (defaults if `None`) naming the new miner.
pub fn init(dir: &Path, config: Option<NodeConfig>) -> Result<NodeConfig, NodeError> {
    let repo = Repo(dir.to_path_buf());
    if repo.config().exists() {
        return Err(NodeError::Exists(dir.to_path_buf()));
    }
    std::fs::create_dir_all(dir)?;
    let keys = KeyStore::open(dir.join("keys")).map_err(start_err("wallet"))?;
    let mut config = config.unwrap_or_default();
    if config.miners.is_empty() {
        let owner = keys
            .generate(KeyType::Secp256k1)
            .map_err(start_err("wallet"))?;
        let worker = keys
            .generate(KeyType::Secp256k1)
            .map_err(start_err("wallet"))?;
        config.miners.push(MinerSection {
            address: None,
            owner: owner.to_string(),
            worker: worker.to_string(),
            sector_size: 32 << 30,
        });
    }
    let key = identity::Keypair::generate_ed25519();
    write_private(
        &dir.join("libp2p.key"),
        &key.to_protobuf_encoding()
            .map_err(start_err("libp2p key"))?,
    )?;
    let secret: [u8; 32] = rand::random();
    write_private(&dir.join("jwt.secret"), hex::encode(secret).as_bytes())?;
    let sign = |perms: &[&str]| jwt::sign(&secret, perms).map_err(start_err("API tokens"));
    write_private(&repo.admin_token(), sign(jwt::ALL)?.as_bytes())?;
    write_private(&repo.read_token(), sign(&[jwt::READ])?.as_bytes())?;
    config.save(&repo.config())?;
    Ok(config)
}

/// A running node.
pub struct MarketNode {
    /// The storage provider.
    pub provider: Provider,
    /// The retrieval provider.
    pub retrieval: RetrievalProvider,
    /// The chain, through the Lotus adapter.
    pub chain: LotusChain,
    /// The embedded devnet, when `[chain] api` is unset.
    pub devnet: Option<Devnet>,
    /// Where libp2p peers reach the node.
    pub peer: PeerAddr,
    /// The HTTP base URL (retrieval, `/rpc/v0`).
    pub http_url: Url,
    /// The miners served.
    pub miners: Vec<Address>,
    /// The libp2p host every protocol is served on.
    pub host: Host,
    /// The IPNI provider of the node's own identity (ads under the host's peer id); miners
    /// with a key of their own (`[ipni] miner_keys`) publish into the same ad store.
    pub ipni: market_ipni::IpniProvider,
    _services: Service,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// The deal leases of `[cluster]`, after checking that what several instances share
/// allows them.
fn cluster_lease(cfg: &NodeConfig, repo: &Path) -> Result<Option<LeaseConfig>, NodeError> {
    let c = &cfg.cluster;
    if c.instance.is_empty() {
        return Ok(None);
    }
    let refuse = |why: &str| -> Result<Option<LeaseConfig>, NodeError> {
        Err(ConfigError::Invalid(format!("[cluster] instance = {:?}: {why}", c.instance)).into())
    };
    if cfg.database.postgres_url(repo)?.is_none() {
        return refuse("instances share deals through [database] postgres; none is set");
    }
    if cfg.chain.messaging == "local" {
        return refuse(
            "[chain] messaging = \"local\" assigns nonces in each instance, so two could send \
             the worker's messages with one nonce; use \"node\" or \"messager\"",
        );
    }
    if c.lease_secs < 3 {
        return refuse("lease_secs must be at least 3");
    }
    Ok(Some(LeaseConfig::new(
        c.instance.clone(),
        Duration::from_secs(c.lease_secs),
    )))
}

fn parse_addr(s: &str) -> Result<Address, NodeError> {
    Address::from_str(s).map_err(|e| ConfigError::Invalid(format!("address {s}: {e}")).into())
}

fn secret(repo: &Path) -> Result<Vec<u8>, NodeError> {
    let hex_secret = std::fs::read_to_string(repo.join("jwt.secret"))?;
    match hex::decode(hex_secret.trim()) {
        Ok(s) if s.len() >= 16 => Ok(s),
        Ok(_) => Err(ConfigError::Invalid("jwt.secret: shorter than 16 bytes".into()).into()),
        Err(e) => Err(ConfigError::Invalid(format!("jwt.secret: {e}")).into()),
    }
}

impl MarketNode {
    /// Starts the node of the repo at `dir`.
    pub async fn start(dir: &Path) -> Result<Self, NodeError> {
        let repo = Repo(dir.to_path_buf());
        let cfg = NodeConfig::load(&repo.config())?;
        let keys = KeyStore::open(dir.join("keys")).map_err(start_err("wallet"))?;
        let parts = connect_chain(&repo, &cfg, &keys).await?;
        let chain = parts.chain.clone();
        let policy = if cfg.chain.short_deal_terms && cfg.chain.network == "devnet" {
            SHORT_TERMS
        } else {
            DealPolicy::MAINNET
        };
        let block_time = parts.epoch;
        let held = keys.addresses();
        let mut miners = Vec::new();
        let mut worker = None;
        for m in &cfg.miners {
            let (owner, w) = (parse_addr(&m.owner)?, parse_addr(&m.worker)?);
            let uses_local_key = cfg.chain.signing == "local" || cfg.chain.messaging == "local";
            if uses_local_key && !held.contains(&w) {
                return Err(ConfigError::Invalid(format!(
                    "the key of worker {w} is not in {}/keys",
                    dir.display()
                ))
                .into());
            }
            let miner = match (&m.address, &parts.dev) {
                (Some(a), _) => parse_addr(a)?,
                (None, Some(dev)) => {
                    for a in [&owner, &w] {
                        let low = chain.wallet_balance(a).await.map_err(start_err("chain"))?
                            < TokenAmount::from_whole(100);
                        if low && let Err(e) = dev.fund(a, TokenAmount::from_whole(1000)).await {
                            tracing::warn!(address = %a, error = %e, "devnet faucet refused");
                        }
                    }
                    dev.create_miner(&owner, &w, m.sector_size)
                        .await
                        .map_err(start_err("devnet miner"))?
                }
                (None, None) => {
                    return Err(ConfigError::Invalid(format!(
                        "[[miners]] with worker {w} has no address (only a devnet creates miners)"
                    ))
                    .into());
                }
            };
            // The chain's word on the worker, so a wrong config fails here, not at signing.
            let info = chain.miner_info(&miner).await.map_err(start_err("chain"))?;
            if info.worker != w {
                return Err(ConfigError::Invalid(format!(
                    "miner {miner}'s worker on chain is {}, not {w}",
                    info.worker
                ))
                .into());
            }
            miners.push(miner);
            worker.get_or_insert(w);
        }
        let worker = worker.ok_or_else(|| ConfigError::Invalid("no [[miners]]".into()))?;
        // HTTP first: a push sealer hands lotus-miner URLs on it.
        let listener = tokio::net::TcpListener::bind(&cfg.http.listen)
            .await
            .map_err(start_err("http listen"))?;
        let bound = listener.local_addr()?;
        let http_url = match &cfg.http.public_url {
            Some(u) => {
                Url::parse(u).map_err(|e| ConfigError::Invalid(format!("public_url: {e}")))?
            }
            None => Url::parse(&format!("http://{bound}/")).map_err(start_err("http"))?,
        };
        let mode = match (cfg.sealing.mode.as_str(), &parts.dev) {
            ("", Some(_)) => "dev",
            ("", None) => "pull",
            (m, _) => m,
        };
        let mut unsealer: Option<Arc<dyn retrieval_market::Unsealer>> = None;
        let (sealer, sealer_routes): (Arc<dyn Sealer>, Option<axum::Router>) =
            match (mode, &parts.dev) {
                ("dev", Some(dev)) => (Arc::new(DevSealer::new(dev.clone())), None),
                ("dev", None) => {
                    return Err(ConfigError::Invalid(
                        "[sealing] mode = \"dev\" needs a devnet (its Dev API seals)".into(),
                    )
                    .into());
                }
                ("pull", _) => (Arc::new(sealing::PullSealer), None),
                ("lotus-miner", _) => {
                    let (s, u) = lotus_miner_sealer(&cfg.sealing, &http_url)?;
                    unsealer = Some(Arc::new(u));
                    let routes = s.router();
                    (Arc::new(s), Some(routes))
                }
                (other, _) => {
                    return Err(ConfigError::Invalid(format!(
                        "[sealing] mode = {other:?}: use \"pull\", \"lotus-miner\" or \"dev\""
                    ))
                    .into());
                }
            };

        let parse_size = |n: u64| {
            commp::PaddedPieceSize::new(n)
                .map_err(|e| NodeError::from(ConfigError::Invalid(format!("piece size {n}: {e}"))))
        };
        let price = |s: &str| {
            TokenAmount::from_str(s)
                .map_err(|e| NodeError::from(ConfigError::Invalid(format!("price {s}: {e}"))))
        };
        let ask = AskParams {
            price: price(&cfg.ask.price)?,
            verified_price: price(&cfg.ask.verified_price)?,
            min_piece_size: parse_size(cfg.ask.min_piece_size)?,
            max_piece_size: parse_size(cfg.ask.max_piece_size)?,
            ..AskParams::default()
        };
        let f = &cfg.filters;
        let blocklist = f
            .piece_blocklist
            .iter()
            .map(|s| {
                storage_market::Cid::from_str(s).map_err(|e| {
                    NodeError::from(ConfigError::Invalid(format!("blocklist {s}: {e}")))
                })
            })
            .collect::<Result<_, _>>()?;
        let filter = BasicFilter::default()
            .with_consider_online(f.consider_online)
            .with_consider_offline(f.consider_offline)
            .with_consider_verified(f.consider_verified)
            .with_consider_unverified(f.consider_unverified)
            .with_piece_cid_blocklist(blocklist)
            .with_expected_seal_duration(Duration::from_secs_f64(
                f.expected_seal_hours.max(0.0) * 3600.0,
            ))
            .with_max_deal_start_delay(Duration::from_secs_f64(
                f.max_start_delay_days.max(0.0) * 86400.0,
            ));
        let publish = PublishConfig::default()
            .with_publish_period(Duration::from_secs(cfg.publish.period_secs))
            .with_max_deals_per_message(cfg.publish.max_deals_per_message.max(1))
            .with_start_epoch_sealing_buffer(if cfg.chain.short_deal_terms { 10 } else { 480 });
        let provider_config = ProviderConfig::default()
            .with_miners(miners.clone())
            .with_filter(filter)
            .with_external_filter(
                f.external_command
                    .clone()
                    .map(|command| ExternalFilter::new(command, Duration::from_secs(30))),
            )
            .with_publish(publish)
            .with_policy(policy)
            .with_message_confidence(cfg.chain.confidence)
            .with_poll_interval(block_time)
            .with_default_ask(ask)
            .with_lease(cluster_lease(&cfg, &repo.0)?);

        let mut transfers = TransferConfig::new(repo.under(&cfg.storage.staging));
        transfers.max_staging_bytes = cfg.storage.staging_limit_gib << 30;
        transfers.max_staging_bytes_per_host = transfers.max_staging_bytes;
        if cfg.storage.allow_private_transfers {
            transfers.policy = AddressPolicy::allowing_private();
        }
        // One libp2p host for everything: deals, retrieval queries and transfers.
        let key =
            identity::Keypair::from_protobuf_encoding(&std::fs::read(dir.join("libp2p.key"))?)
                .map_err(start_err("libp2p key"))?;
        let listen = cfg
            .libp2p
            .listen
            .iter()
            .map(|s| Multiaddr::from_str(s).map_err(|e| ConfigError::Invalid(format!("{s}: {e}"))))
            .collect::<Result<Vec<_>, _>>()?;
        let limits = NetworkLimits::default();
        let mut host_config = limits.host_config().with_listen(listen);
        host_config.handshake_timeout =
            std::time::Duration::from_secs(cfg.libp2p.handshake_timeout_secs.max(1));
        host_config.max_pending_incoming = cfg.libp2p.max_pending_connections;
        host_config.max_established_incoming = cfg.libp2p.max_connections;
        host_config.max_established_per_peer = cfg.libp2p.max_connections_per_peer;
        let ipni_key = key.clone();
        let host = Host::start(key, host_config)
            .await
            .map_err(start_err("libp2p"))?;
        let opened = crate::piece_stores::open(&cfg.storage, &repo.0).await?;
        let pieces: Arc<dyn PieceStore> = Arc::new(MeteredPieceStore::new(opened.store));
        // One pool for everything in Postgres: deals, the piece index and the ad chains.
        let postgres = match cfg.database.postgres_url(&repo.0)? {
            Some(url) => {
                let db = market_postgres::PgDb::connect(
                    &url,
                    cfg.database.max_connections.unwrap_or(16),
                )
                .map_err(start_err("postgres"))?;
                db.ping().await.map_err(start_err("postgres"))?;
                Some(db)
            }
            None => None,
        };
        // In Postgres, every instance sharing it finds every piece's blocks, so each serves
        // CAR retrieval of pieces another instance received.
        let index: Arc<dyn PieceIndex> = match &postgres {
            Some(db) => Arc::new(
                market_postgres::PgPieceIndex::open(db.clone())
                    .await
                    .map_err(start_err("piece index (postgres)"))?,
            ),
            None => Arc::new(
                SqlitePieceIndex::open(&dir.join("index.db")).map_err(start_err("piece index"))?,
            ),
        };
        if mode == "pull"
            && let Some(ma) = url_to_multiaddr(&http_url)
        {
            // What a sealer operator gives damocles: a read+write token and the API address.
            let token = jwt::sign(&secret(dir)?, &[jwt::READ, jwt::WRITE])
                .map_err(start_err("sealer token"))?;
            write_private(&repo.sealer_api_info(), format!("{token}:{ma}").as_bytes())?;
        }
        let store: Arc<dyn DealStore> = match &postgres {
            Some(db) => {
                tracing::info!("deals and the piece index in postgres");
                Arc::new(
                    market_postgres::PgDealStore::open(db.clone())
                        .await
                        .map_err(start_err("deal store (postgres)"))?,
                )
            }
            None => Arc::new(
                SqliteDealStore::open(dir.join("provider.db")).map_err(start_err("deal store"))?,
            ),
        };
        let sealer_api = (mode == "pull").then(|| {
            SealerApi::new(
                store.clone(),
                Arc::new(chain.clone()),
                pieces.clone(),
                index.clone(),
                miners.clone(),
            )
        });
        if let Some(api) = &sealer_api {
            // Pieces without an unsealed copy come back from a listening pull sealer.
            unsealer = Some(Arc::new(sealing::unseal::PullUnsealer::new(
                api.events().clone(),
                pieces.clone(),
                &http_url,
                secret(dir)?,
                Duration::from_secs(cfg.sealing.unseal_timeout_secs.max(1)),
            )));
        }
        let (ipni_deals, ipni_index) = (store.clone(), index.clone());
        let deps = ProviderDeps {
            chain: Arc::new(chain.clone()),
            wallet: parts.wallet.clone(),
            store,
            pieces: pieces.clone(),
            index: index.clone(),
            transfers: Some(
                TransferManager::open(transfers, Some(host.clone()))
                    .await
                    .map_err(start_err("transfers"))?,
            ),
            sealer,
        };
        let provider = Provider::start(provider_config, deps)
            .await
            .map_err(start_err("provider"))?;

        let storage = storage_market::network::serve(&host, provider.clone(), &limits)
            .map_err(start_err("storage protocols"))?;
        let (quotes, capacity_refresh) = if cfg.quotes.enabled {
            let (quoter, refresh) = crate::quotes::start(
                Arc::new(chain.clone()),
                parts.wallet.clone(),
                miners.clone(),
                crate::quotes::policy(&cfg.quotes, &cfg.ask)?,
                pieces.clone(),
            )
            .await;
            let service =
                market_broker::serve::serve(&host, quoter).map_err(start_err("quote protocol"))?;
            (Some(service), Some(refresh))
        } else {
            (None, None)
        };
        let peer = host.addr();

        // The ad chains beside the deals: in Postgres every instance extends the provider's
        // one chain, where a file per instance would fork it.
        let ads: Arc<dyn market_ipni::store::AdStore> = match &postgres {
            Some(db) => Arc::new(
                market_postgres::PgAdStore::open(db.clone())
                    .await
                    .map_err(start_err("ad store (postgres)"))?,
            ),
            None => Arc::new(
                market_ipni::store::SqliteAdStore::open(&dir.join("ipni.db"))
                    .map_err(start_err("ad store"))?,
            ),
        };
        let ipni = crate::ipni::start(dir, ads, &cfg.ipni, ipni_key, &http_url)?;
        if cfg.ipni.enabled && cfg.chain.api.is_some() {
            crate::ipni::check_peer_ids(&chain, &miners, &ipni).await;
        }
        let retrieval = RetrievalProvider::new(pieces.clone(), index.clone(), unsealer, worker);
        let service = retrieval_market::network::serve(&host, retrieval.clone())
            .map_err(start_err("retrieval protocols"))?;
        let mut p2p_addrs = peer.addrs.clone();
        for a in &mut p2p_addrs {
            a.push(libp2p::multiaddr::Protocol::P2p(peer.peer_id));
        }
        let mut transports = vec![TransportProtocol::new("libp2p", &p2p_addrs)];
        if let Some(ma) = url_to_multiaddr(&http_url) {
            transports.insert(0, TransportProtocol::new("http", &[ma]));
        }
        retrieval.set_transports(transports);
        let mut tasks = Vec::new();
        let denylist = (!cfg.http.denylists.is_empty()).then(|| {
            let list = retrieval_market::denylist::Denylist::new();
            tasks.push(list.spawn_refresh(
                cfg.http.denylists.clone(),
                Duration::from_secs(cfg.http.denylist_refresh_minutes.max(1) * 60),
            ));
            list
        });
        let app = retrieval_market::http::router(
            retrieval.clone(),
            HttpConfig::default()
                .with_serve_pieces(cfg.http.serve_pieces)
                .with_serve_cars(cfg.http.serve_cars)
                .with_max_concurrent(cfg.http.max_concurrent)
                .with_denylist(denylist),
        )
        .merge(admin::router(admin::AdminState {
            secret: secret(dir)?,
            provider: provider.clone(),
            pieces: pieces.clone(),
            peer: peer.clone(),
            http_url: http_url.clone(),
            miners: miners.clone(),
            sealer: sealer_api.clone(),
            ipni: ipni.node.clone(),
            chain: Arc::new(chain.clone()),
        }))
        .merge(sealing::resource::router(
            sealing::resource::ResourceState {
                secret: secret(dir)?,
                pieces: pieces.clone(),
                index,
            },
        ));
        let app = if cfg.metrics.enabled {
            app.merge(crate::metrics::router(crate::metrics::MetricsState {
                secret: (!cfg.metrics.public).then(|| secret(dir)).transpose()?,
                provider: provider.clone(),
                pieces: pieces.clone(),
                ipni: ipni.node.clone(),
            }))
        } else {
            app
        };
        let app = if cfg.ui.enabled {
            let (routes, watch) = crate::ui::router(crate::ui::UiState {
                secret: secret(dir)?,
                provider: provider.clone(),
                pieces: pieces.clone(),
                store_name: opened.description.clone(),
                miners: miners.clone(),
                ipni: ipni.node.clone(),
                ipni_enabled: cfg.ipni.enabled,
                https: http_url.scheme() == "https",
            });
            tasks.push(watch);
            app.merge(routes)
        } else {
            app
        };
        let app = app.merge(market_ipni::publisher::routes(&ipni.all()));
        if cfg.ipni.enabled {
            tasks.extend(ipni.all().iter().map(|p| p.spawn()));
            tasks.push(tokio::spawn(crate::ipni::run(
                ipni.clone(),
                ipni_deals,
                ipni_index,
                Duration::from_secs(cfg.ipni.reconcile_secs.max(1)),
            )));
        }
        let app = match sealer_routes {
            Some(routes) => app.merge(routes),
            None => app,
        };
        let app = match sealer_api {
            Some(api) => app.merge(sealing::api::ws_router(api, secret(dir)?)),
            None => app,
        };
        // Outermost, so every route is counted, the ones merged above included.
        let app = app.layer(axum::middleware::from_fn(crate::metrics::track));
        let limits = cfg.http.server_limits();
        tasks.push(tokio::spawn(market_core::http::serve(
            listener, app, limits,
        )));
        // Last, so a start that fails leaves no sweeper or refresher behind.
        tasks.extend(opened.buckets.iter().map(|(name, b)| {
            tokio::spawn(crate::piece_stores::sweep_daily(name.clone(), b.clone()))
        }));
        tasks.extend(capacity_refresh.map(|r| tokio::spawn(r.run())));
        tracing::info!(peer = %peer.peer_id, http = %http_url, miners = ?miners, "market node started");
        Ok(Self {
            provider,
            retrieval,
            chain,
            devnet: parts.devnet,
            peer,
            http_url,
            miners,
            host,
            _services: Service::merge([storage, service].into_iter().chain(quotes)),
            ipni: ipni.node.clone(),
            tasks,
        })
    }

    /// Stops serving.
    pub fn stop(&self) {
        self.provider.stop();
        self.host.stop();
        if let Some(d) = &self.devnet {
            d.stop();
        }
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for MarketNode {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The chain as the node uses it.
struct ChainParts {
    chain: LotusChain,
    /// Signs asks and deal responses.
    wallet: Arc<dyn Wallet>,
    devnet: Option<Devnet>,
    /// The `Dev` namespace, on a devnet.
    dev: Option<DevApi>,
    /// How often to look at the chain: one epoch.
    epoch: Duration,
}

fn read_token(repo: &Repo, c: &crate::config::ChainSection) -> Result<Option<String>, NodeError> {
    if let Some(t) = &c.token {
        return Ok(Some(t.trim().to_string()));
    }
    match &c.token_file {
        Some(f) => Ok(Some(
            std::fs::read_to_string(repo.under(f))?.trim().to_string(),
        )),
        None => Ok(None),
    }
}

/// The node's chain: the configured Lotus/Venus node, or the embedded devnet (created on first
/// start under `<repo>/devnet`, on a loopback port), both through the Lotus adapter.
async fn connect_chain(
    repo: &Repo,
    cfg: &NodeConfig,
    keys: &KeyStore,
) -> Result<ChainParts, NodeError> {
    let c = &cfg.chain;
    let (info, devnet) = match &c.api {
        Some(api) => {
            let mut info = ApiInfo::parse(api, "v1")
                .map_err(|e| ConfigError::Invalid(format!("[chain] api: {e}")))?;
            if let Some(t) = read_token(repo, c)? {
                info.token = Some(t);
            }
            (info, None)
        }
        None => {
            let dir = repo.0.join("devnet");
            if !dir.join("devnet.toml").exists() {
                let mut dc = DevnetConfig::default();
                dc.listen = c.devnet_listen.clone();
                dc.block_time_ms = c.block_time_ms;
                dc.sealing_period_ms = c.sealing_period_ms;
                dc.short_deal_terms = c.short_deal_terms;
                dc.network_version = c.network_version;
                dc.upgrades = c.upgrades.clone();
                devnet::repo::init(&dir, &dc).map_err(start_err("devnet"))?;
            }
            let d = Devnet::start(&dir, None)
                .await
                .map_err(start_err("devnet"))?;
            let info = ApiInfo {
                url: d.url.clone(),
                token: Some(d.token.clone()),
            };
            (info, Some(d))
        }
    };
    let flavor = match c.flavor.as_str() {
        "lotus" => Flavor::Lotus,
        "venus" => Flavor::Venus,
        other => {
            return Err(ConfigError::Invalid(format!(
                "[chain] flavor = {other:?}: use \"lotus\" or \"venus\""
            ))
            .into());
        }
    };
    let rpc = RpcClient::new(
        info.url.clone(),
        info.token.clone(),
        "Filecoin",
        RpcConfig::default(),
    );
    let sending = match c.messaging.as_str() {
        "local" => Sending::Local {
            wallet: Arc::new(keys.clone()),
            journal: Journal::open(&repo.0.join("messages.db"))
                .map_err(start_err("message journal"))?,
        },
        "node" => Sending::Node,
        "messager" => {
            let api = c.messager_api.as_deref().ok_or_else(|| {
                ConfigError::Invalid("[chain] messaging = \"messager\" needs messager_api".into())
            })?;
            let info = ApiInfo::parse(api, "v0")
                .map_err(|e| ConfigError::Invalid(format!("[chain] messager_api: {e}")))?;
            Sending::Messager(RpcClient::new(
                info.url,
                info.token,
                "Message",
                RpcConfig::default(),
            ))
        }
        other => {
            return Err(ConfigError::Invalid(format!(
                "[chain] messaging = {other:?}: use \"local\", \"node\" or \"messager\""
            ))
            .into());
        }
    };
    let wallet: Arc<dyn Wallet> = match c.signing.as_str() {
        "local" => Arc::new(keys.clone()),
        "node" => Arc::new(NodeWallet::new(rpc.clone(), flavor)),
        "gateway" => {
            let api = c.gateway_api.as_deref().ok_or_else(|| {
                ConfigError::Invalid("[chain] signing = \"gateway\" needs gateway_api".into())
            })?;
            let info = ApiInfo::parse(api, "v2")
                .map_err(|e| ConfigError::Invalid(format!("[chain] gateway_api: {e}")))?;
            let gw = RpcClient::new(info.url, info.token, "Gateway", RpcConfig::default());
            Arc::new(lotus_api::GatewayWallet::new(
                &gw,
                c.gateway_accounts.clone(),
            ))
        }
        other => {
            return Err(ConfigError::Invalid(format!(
                "[chain] signing = {other:?}: use \"local\", \"node\" or \"gateway\""
            ))
            .into());
        }
    };
    let chain = LotusChain::new(
        rpc.clone(),
        sending,
        LotusChainConfig::default().with_flavor(flavor),
    );
    let name = chain.network_name().await.map_err(start_err("chain"))?;
    let expected = match c.network.as_str() {
        "mainnet" => Some("mainnet"),
        "calibnet" => Some("calibrationnet"),
        "devnet" => None,
        other => {
            return Err(ConfigError::Invalid(format!(
                "[chain] network = {other:?}: use mainnet, calibnet or devnet"
            ))
            .into());
        }
    };
    if let Some(want) = expected
        && name != want
    {
        return Err(ConfigError::Invalid(format!(
            "[chain] network = {:?} but the node at {} is on {name:?}",
            c.network, info.url
        ))
        .into());
    }
    let version = chain.network_version().await.map_err(start_err("chain"))?;
    tracing::info!(node = %info.url, network = %name, %version, "chain connected");
    let dev = (c.network == "devnet").then(|| DevApi::new(&rpc));
    let epoch = match &devnet {
        Some(_) => Duration::from_millis(c.block_time_ms.max(1)),
        None => Duration::from_secs(
            chain
                .version()
                .await
                .map_err(start_err("chain"))?
                .block_delay
                .max(1),
        ),
    };
    Ok(ChainParts {
        chain,
        wallet,
        devnet,
        dev,
        epoch,
    })
}

/// The push sealer of `[sealing] mode = "lotus-miner"`.
fn lotus_miner_sealer(
    cfg: &crate::config::SealingSection,
    http_url: &Url,
) -> Result<
    (
        sealing::lotus_miner::LotusMinerSealer,
        sealing::unseal::LotusMinerUnsealer,
    ),
    NodeError,
> {
    let api = cfg.miner_api.as_deref().ok_or_else(|| {
        ConfigError::Invalid("[sealing] mode = \"lotus-miner\" needs miner_api".into())
    })?;
    let info = ApiInfo::parse(api, "v0")
        .map_err(|e| ConfigError::Invalid(format!("[sealing] miner_api: {e}")))?;
    let rpc = RpcClient::new(
        info.url,
        info.token.clone(),
        "Filecoin",
        RpcConfig::default(),
    );
    let unsealer = sealing::unseal::LotusMinerUnsealer::new(rpc.clone(), info.token);
    let config = sealing::lotus_miner::LotusMinerConfig::default()
        .with_retry_interval(Duration::from_secs(cfg.retry_interval_secs.max(1)))
        .with_retry_for(Duration::from_secs_f64(
            cfg.retry_for_hours.max(0.0) * 3600.0,
        ));
    Ok((
        sealing::lotus_miner::LotusMinerSealer::new(rpc, http_url.clone(), config),
        unsealer,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_needs_postgres_and_shared_nonces() {
        let repo = Path::new("/nonexistent");
        let mut cfg = NodeConfig::default();
        assert_eq!(cluster_lease(&cfg, repo).unwrap(), None);
        cfg.cluster.instance = "a".into();
        if std::env::var_os("MARKET_POSTGRES_URL").is_none() {
            let err = cluster_lease(&cfg, repo).unwrap_err().to_string();
            assert!(err.contains("none is set"), "{err}");
        }
        cfg.database.postgres_file = Some("/nonexistent/pg-url".into());
        let err = cluster_lease(&cfg, repo).unwrap_err().to_string();
        assert!(err.contains("postgres_file"), "{err}");
        cfg.database.postgres_file = None;
        cfg.database.postgres = Some("postgres://h/m".into());
        let err = cluster_lease(&cfg, repo).unwrap_err().to_string();
        assert!(err.contains("messaging"), "{err}");
        cfg.chain.messaging = "node".into();
        cfg.cluster.lease_secs = 1;
        assert!(cluster_lease(&cfg, repo).is_err());
        cfg.cluster.lease_secs = 20;
        let lease = cluster_lease(&cfg, repo).unwrap().unwrap();
        assert_eq!(lease.holder, "a");
        assert_eq!(lease.ttl, Duration::from_secs(20));
    }
}
