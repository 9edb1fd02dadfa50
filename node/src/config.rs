//! The provider node's TOML configuration (`<repo>/config.toml`), in the spirit of
//! venus-market's: listen addresses, piece storage, miners and their keys, ask, publishing
//! and deal filters. Every field has a default, so a config names only what it changes.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use storage_market::filter::BasicFilter;
use storage_market::provider::AskParams;
use storage_market::publish::PublishConfig;

/// The whole file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct NodeConfig {
    /// libp2p (deal, ask, status and retrieval query protocols).
    pub libp2p: Libp2pSection,
    /// HTTP: retrieval and the admin API.
    pub http: HttpSection,
    /// Where pieces and transfers live.
    pub storage: StorageSection,
    /// The chain.
    pub chain: ChainSection,
    /// Miners served, by key.
    pub miners: Vec<MinerSection>,
    /// The storage ask set for every miner at start.
    pub ask: AskSection,
    /// Deal publishing.
    pub publish: PublishSection,
    /// Which deals are considered.
    pub filters: FilterSection,
    /// How published deals reach sealers.
    pub sealing: SealingSection,
    /// Announcing stored pieces to IPNI indexers.
    pub ipni: IpniSection,
    /// Prometheus metrics at `/metrics`.
    pub metrics: MetricsSection,
    /// The web UI at `/ui/`.
    pub ui: UiSection,
    /// Where deals are kept: the repo's SQLite file, or a shared Postgres.
    pub database: DatabaseSection,
    /// Several instances of this node sharing one Postgres and one S3.
    pub cluster: ClusterSection,
    /// Quotes for brokers (`/fil-market/quote/1.0.0`).
    pub quotes: QuotesSection,
}

/// `[quotes]`: answering brokers' requests for quote (`/fil-market/quote/1.0.0`) with signed
/// prices. The list prices and piece sizes are `[ask]`'s; this section adds the terms a quote
/// also names and the rules by size, duration and client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct QuotesSection {
    /// Serve the protocol on the node's libp2p host.
    pub enabled: bool,
    /// Shortest deal quoted, days.
    pub min_duration_days: u64,
    /// Longest deal quoted, days.
    pub max_duration_days: u64,
    /// Epochs from now before a quoted deal can start (transfer, sealing, confidence).
    pub start_lead_epochs: u64,
    /// Epochs a quote stays valid.
    pub validity_epochs: u64,
    /// GiB of piece storage never quoted away.
    pub reserve_gib: u64,
    /// Discounts: `{ min_piece_size = 34359738368, min_duration_days = 540, percent = 20 }`;
    /// the largest that applies wins.
    pub discounts: Vec<DiscountSection>,
    /// Per client (address): `"decline"`, or a percentage of the price others get (`"80%"`).
    pub clients: std::collections::BTreeMap<String, String>,
    /// Quote only the clients listed in `clients` with a percentage.
    pub listed_clients_only: bool,
}

impl Default for QuotesSection {
    fn default() -> Self {
        Self {
            enabled: true,
            min_duration_days: 180,
            max_duration_days: 1278,
            start_lead_epochs: 480,
            validity_epochs: 120,
            reserve_gib: 0,
            discounts: Vec::new(),
            clients: std::collections::BTreeMap::new(),
            listed_clients_only: false,
        }
    }
}

/// One `[[quotes.discounts]]` rule.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DiscountSection {
    /// Smallest padded piece size it applies to.
    pub min_piece_size: u64,
    /// Shortest deal it applies to, days.
    pub min_duration_days: u64,
    /// Percent off (0-100).
    pub percent: u8,
}

/// `[cluster]`: this node is one of several instances serving the same miners from one
/// Postgres (`[database]`) and shared piece stores (S3). Each deal is driven by one
/// instance at a time, the holder of its lease; the deals of an instance that dies are
/// taken over by the others within `lease_secs`. Needs `[database] postgres` and
/// `[chain] messaging = "node"` or `"messager"` (nonces are assigned in one place; local
/// signing would give two instances the same nonce). `[ipni]` may be enabled on every
/// instance: they extend the miner's one ad chain in Postgres and each serves all of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ClusterSection {
    /// This instance's name, unique among the instances and kept across restarts (a
    /// restarted instance resumes its own deals at once). Empty: a single instance.
    pub instance: String,
    /// How long a deal lease lives without renewal, seconds: the longest a dead
    /// instance's deals wait for another to take them over.
    pub lease_secs: u64,
}

impl Default for ClusterSection {
    fn default() -> Self {
        Self {
            instance: String::new(),
            lease_secs: 30,
        }
    }
}

/// `[database]`: the deal store. Unset: `<repo>/provider.db` (SQLite, embedded). With
/// `postgres`, deals, asks, publish records, placements, deal timelines and the piece index
/// (deals, payload roots and CAR blocks of each piece) and the IPNI ad chains live in that
/// database (also YugabyteDB's YSQL). Transfer progress stays beside its staged bytes
/// (`transfers.db` in the instance's staging directory: a record is only true of the bytes
/// next to it; a deal another instance takes over is fetched again).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DatabaseSection {
    /// `postgres://user:password@host:5432/market` (better: `postgres_file` or the
    /// `MARKET_POSTGRES_URL` variable, since the URL holds the password).
    pub postgres: Option<String>,
    /// A file holding the URL (relative paths are under the repo).
    pub postgres_file: Option<PathBuf>,
    /// Pooled connections at most (default 16).
    pub max_connections: Option<usize>,
}

impl DatabaseSection {
    /// The Postgres URL, if one is configured: the config, its file, or `MARKET_POSTGRES_URL`.
    pub fn postgres_url(&self, repo: &Path) -> Result<Option<String>, ConfigError> {
        if let Some(u) = &self.postgres {
            return Ok(Some(u.clone()));
        }
        if let Some(f) = &self.postgres_file {
            let path = if f.is_absolute() {
                f.clone()
            } else {
                repo.join(f)
            };
            let url = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::Invalid(format!("[database] postgres_file {}: {e}", path.display()))
            })?;
            return Ok(Some(url.trim().to_string()));
        }
        Ok(std::env::var("MARKET_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty()))
    }
}

/// `[metrics]`: the Prometheus text exposition at `<http>/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct MetricsSection {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// Serve it without a token. Off by default: the HTTP listener is public (retrieval),
    /// and deal counts and fees are the operator's business. Prometheus sends the read token
    /// with `authorization: { credentials_file: <repo>/token.read }`.
    pub public: bool,
}

impl Default for MetricsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            public: false,
        }
    }
}

/// `[ui]`: the operator's web UI at `<http>/ui/`, behind the API tokens (the admin token
/// may change things, the read token only look).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct UiSection {
    /// Serve the UI at all.
    pub enabled: bool,
}

impl Default for UiSection {
    fn default() -> Self {
        Self { enabled: true }
    }
}

/// `[ipni]`: advertising stored pieces to network indexers, so retrieval clients and checkers
/// (lassie, Spark) find them. Ads are published at `<http>/ipni/v1/ad/` whatever the
/// announce list; with no indexer to announce to, nobody fetches them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct IpniSection {
    /// Advertise pieces at all (deals asking `SkipIPNIAnnounce` never are).
    pub enabled: bool,
    /// Indexers' announce URLs, e.g. `https://cid.contact/ingest/announce`.
    pub announce_urls: Vec<String>,
    /// The first indexer's find API, for ingest checks when it has no ad status endpoint
    /// (default: the announce URL's origin).
    pub find_url: Option<String>,
    /// Confirm with the first indexer that each ad was ingested.
    pub check_ingest: bool,
    /// Warn about an ad still not indexed this many minutes after its announcement.
    pub unindexed_warn_minutes: u64,
    /// The gossipsub topic named in the signed head.
    pub topic: String,
    /// Seconds between two looks at the deals for pieces to announce or remove.
    pub reconcile_secs: u64,
    /// Miners that advertise under an identity of their own (miner address → libp2p key
    /// file, relative to the repo, generated when missing; e.g. the key of the Boost
    /// instance whose peer id is already on chain). The others advertise under the node's
    /// peer id. Retrieval checkers look ads up under each miner's MinerInfo.PeerId.
    pub miner_keys: std::collections::BTreeMap<String, String>,
}

impl Default for IpniSection {
    fn default() -> Self {
        Self {
            enabled: true,
            announce_urls: Vec::new(),
            find_url: None,
            check_ingest: true,
            unindexed_warn_minutes: 60,
            topic: "/indexer/ingest/mainnet".into(),
            reconcile_secs: 10,
            miner_keys: Default::default(),
        }
    }
}

/// `[sealing]`: how published deals reach sealers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SealingSection {
    /// `pull`: damocles, venus-sealer or the `sealer` example take deals through this node's
    /// `VENUS_MARKET` API and fetch pieces from `/resource` (droplet's model; the default on
    /// a real chain). `lotus-miner`: the node pushes each piece to `miner_api` with
    /// `SectorAddPieceToAny` (Boost's model). `dev`: the devnet's sealer seals
    /// every deal alone in a sector (the default on the devnet). Empty picks the default.
    pub mode: String,
    /// lotus-miner's API (`TOKEN:/ip4/…/tcp/2345/http`, like `MINER_API_INFO`), for
    /// `mode = "lotus-miner"`. Needs an admin token.
    pub miner_api: Option<String>,
    /// How long to wait before asking again when lotus-miner answers "too many sectors
    /// sealing" (Boost: 5 minutes).
    pub retry_interval_secs: u64,
    /// How long to keep asking before failing the deal (Boost: 6 hours).
    pub retry_for_hours: f64,
    /// How long a retrieval waits for a pull sealer to unseal a piece the store has no copy
    /// of (a `SectorsUnsealPiece` market event).
    pub unseal_timeout_secs: u64,
}

impl Default for SealingSection {
    fn default() -> Self {
        Self {
            mode: String::new(),
            miner_api: None,
            retry_interval_secs: 300,
            retry_for_hours: 6.0,
            unseal_timeout_secs: 3600,
        }
    }
}

/// `[libp2p]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct Libp2pSection {
    /// Listen multiaddrs.
    pub listen: Vec<String>,
    /// Seconds a new connection has to finish its handshake before it is dropped.
    pub handshake_timeout_secs: u64,
    /// Inbound connections in their handshake at once (new ones past it are closed).
    pub max_pending_connections: u32,
    /// Established inbound connections at once.
    pub max_connections: u32,
    /// Connections with one peer at once.
    pub max_connections_per_peer: u32,
}

impl NodeConfig {
    /// A node for tests and demos on one machine: everything on 127.0.0.1 with ports the
    /// system picks, the embedded devnet at 50 ms blocks with sealing every 200 ms, short deal
    /// terms, immediate publishing, and transfers from private addresses allowed.
    pub fn local_dev() -> Self {
        let mut cfg = Self::default();
        cfg.libp2p.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
        cfg.http.listen = "127.0.0.1:0".into();
        cfg.chain.block_time_ms = 50;
        cfg.chain.sealing_period_ms = 200;
        cfg.chain.short_deal_terms = true;
        cfg.chain.confidence = 1;
        cfg.publish.period_secs = 0;
        cfg.storage.allow_private_transfers = true;
        // Deal start checks count mainnet 30 s epochs: 20 epochs to seal, starts up to
        // 100 000 epochs ahead.
        cfg.filters.expected_seal_hours = 600.0 / 3600.0;
        cfg.filters.max_start_delay_days = 3_000_000.0 / 86_400.0;
        cfg
    }

    /// Listens for libp2p on `addrs`.
    pub fn with_libp2p_listen(
        mut self,
        addrs: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.libp2p.listen = addrs.into_iter().map(Into::into).collect();
        self
    }

    /// Serves HTTP (retrieval, admin API) on `addr`.
    pub fn with_http_listen(mut self, addr: impl Into<String>) -> Self {
        self.http.listen = addr.into();
        self
    }
}

impl Default for Libp2pSection {
    fn default() -> Self {
        let host = market_core::host::HostConfig::default();
        Self {
            listen: vec!["/ip4/0.0.0.0/tcp/58418".into()],
            handshake_timeout_secs: host.handshake_timeout.as_secs(),
            max_pending_connections: host.max_pending_incoming,
            max_connections: host.max_established_incoming,
            max_connections_per_peer: host.max_established_per_peer,
        }
    }
}

/// `[http]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpSection {
    /// `host:port` to listen on.
    pub listen: String,
    /// The URL clients reach retrieval at, advertised on `/fil/retrieval/transports/1.0.0`
    /// (defaults to `http://<listen>/`).
    pub public_url: Option<String>,
    /// Retrievals served at once (429 beyond).
    pub max_concurrent: usize,
    /// Serve `/piece/`.
    pub serve_pieces: bool,
    /// Serve `/ipfs/` (trustless gateway).
    pub serve_cars: bool,
    /// Seconds a connection may take to send a request head (idle keep-alive included)
    /// before it is closed: what keeps slowloris clients from holding connections.
    pub header_timeout_secs: u64,
    /// Seconds a request body may pause.
    pub body_idle_timeout_secs: u64,
    /// Connections held at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Bad-bits denylists (files or URLs, e.g. `https://badbits.dwebops.pub/denylist.json`):
    /// listed pieces, roots and path targets get 451, and nothing is served until they are
    /// loaded. None: nothing is refused.
    pub denylists: Vec<String>,
    /// Minutes between two reloads of the denylists.
    pub denylist_refresh_minutes: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        let limits = market_core::http::ServerLimits::default();
        Self {
            listen: "127.0.0.1:7777".into(),
            public_url: None,
            max_concurrent: 64,
            serve_pieces: true,
            serve_cars: true,
            header_timeout_secs: limits.header_read_timeout.as_secs(),
            body_idle_timeout_secs: limits.body_idle_timeout.as_secs(),
            max_connections: limits.max_connections,
            denylists: Vec::new(),
            denylist_refresh_minutes: 60,
        }
    }
}

impl HttpSection {
    /// The listener limits these settings give.
    pub fn server_limits(&self) -> market_core::http::ServerLimits {
        use std::time::Duration;
        market_core::http::ServerLimits::default()
            .with_header_read_timeout(Duration::from_secs(self.header_timeout_secs.max(1)))
            .with_body_idle_timeout(Duration::from_secs(self.body_idle_timeout_secs.max(1)))
            .with_max_connections(self.max_connections.max(1))
    }
}

/// `[storage]`; relative paths are under the repo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct StorageSection {
    /// Piece store directory.
    pub pieces: PathBuf,
    /// Transfer staging directory.
    pub staging: PathBuf,
    /// Staging space for transfers in flight, GiB.
    pub staging_limit_gib: u64,
    /// Accept transfers from private and loopback addresses (local testing only).
    pub allow_private_transfers: bool,
    /// Piece stores (`[[storage.stores]]`, droplet's `[PieceStorage]` entries). Empty: one
    /// filesystem store at `pieces`. Otherwise exactly these: new pieces go to the writable
    /// store of highest priority with room (then the most free space), reads to whichever
    /// store holds the piece.
    pub stores: Vec<PieceStoreSection>,
}

/// One `[[storage.stores]]` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "lowercase")]
#[non_exhaustive]
pub enum PieceStoreSection {
    /// A directory (`kind = "fs"`).
    Fs(FsStoreSection),
    /// An S3-compatible bucket (`kind = "s3"`): AWS S3, MinIO, Ceph RGW, Aliyun OSS.
    S3(S3StoreSection),
}

impl PieceStoreSection {
    /// The name operators see in logs and the UI.
    pub fn name(&self) -> &str {
        match self {
            Self::Fs(f) => &f.name,
            Self::S3(s) => &s.name,
        }
    }

    /// Higher is written first.
    pub fn priority(&self) -> i32 {
        match self {
            Self::Fs(f) => f.priority,
            Self::S3(s) => s.priority,
        }
    }

    /// Read, never written nor deleted from.
    pub fn read_only(&self) -> bool {
        match self {
            Self::Fs(f) => f.read_only,
            Self::S3(s) => s.read_only,
        }
    }
}

/// A filesystem piece store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct FsStoreSection {
    /// Name in logs and the UI.
    pub name: String,
    /// The directory (relative paths are under the repo).
    pub path: PathBuf,
    /// Higher is written first.
    #[serde(default)]
    pub priority: i32,
    /// Read from, never written nor deleted from.
    #[serde(default)]
    pub read_only: bool,
}

/// An S3-compatible piece store. Keys not given here come from `AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct S3StoreSection {
    /// Name in logs and the UI.
    pub name: String,
    /// Service URL without the bucket (`https://oss-cn-hangzhou.aliyuncs.com`,
    /// `http://minio:9000`). Unset: AWS S3 in `region`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The bucket.
    pub bucket: String,
    /// Region (`us-east-1`, `oss-cn-hangzhou`).
    #[serde(default)]
    pub region: Option<String>,
    /// Access key id.
    #[serde(default)]
    pub access_key: Option<String>,
    /// Secret access key (better: `secret_key_file` or the environment).
    #[serde(default)]
    pub secret_key: Option<String>,
    /// A file holding the secret key (relative paths are under the repo).
    #[serde(default)]
    pub secret_key_file: Option<PathBuf>,
    /// Session token of temporary credentials.
    #[serde(default)]
    pub session_token: Option<String>,
    /// `bucket.host` requests (Aliyun OSS needs them) instead of `host/bucket`.
    #[serde(default)]
    pub virtual_hosted: bool,
    /// Key prefix of every object (`pieces/`).
    #[serde(default)]
    pub prefix: String,
    /// Upload part size, MiB (5 at least).
    #[serde(default = "default_part_mib")]
    pub part_size_mib: usize,
    /// Parts uploaded at once per piece.
    #[serde(default = "default_upload_concurrency")]
    pub upload_concurrency: usize,
    /// Bytes (KiB) fetched around a small read and kept for the next ones, so a CAR
    /// retrieval's block reads become a few large GETs (0: one GET per read).
    #[serde(default = "default_read_window_kib")]
    pub read_window_kib: u64,
    /// Read windows kept in memory per store.
    #[serde(default = "default_read_windows")]
    pub read_windows: usize,
    /// Higher is written first.
    #[serde(default)]
    pub priority: i32,
    /// Read from, never written nor deleted from.
    #[serde(default)]
    pub read_only: bool,
}

fn default_part_mib() -> usize {
    16
}

fn default_upload_concurrency() -> usize {
    4
}

fn default_read_window_kib() -> u64 {
    4096
}

fn default_read_windows() -> usize {
    8
}

impl S3StoreSection {
    /// A bucket with the defaults (AWS endpoint, no prefix, keys from the environment).
    pub fn new(name: impl Into<String>, bucket: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            endpoint: None,
            bucket: bucket.into(),
            region: None,
            access_key: None,
            secret_key: None,
            secret_key_file: None,
            session_token: None,
            virtual_hosted: false,
            prefix: String::new(),
            part_size_mib: default_part_mib(),
            upload_concurrency: default_upload_concurrency(),
            read_window_kib: default_read_window_kib(),
            read_windows: default_read_windows(),
            priority: 0,
            read_only: false,
        }
    }

    /// The store's settings, the secret read from `secret_key_file` when given.
    pub fn to_config(&self, repo: &Path) -> Result<piecestore::S3Config, ConfigError> {
        let mut c = piecestore::S3Config::new(&self.bucket)
            .with_virtual_hosted(self.virtual_hosted)
            .with_prefix(&self.prefix)
            .with_parts(
                self.part_size_mib.saturating_mul(1 << 20),
                self.upload_concurrency,
            )
            .with_read_windows(self.read_window_kib.saturating_mul(1024), self.read_windows);
        c.endpoint = self.endpoint.clone();
        c.region = self.region.clone();
        c.access_key = self.access_key.clone();
        c.secret_key = self.secret_key.clone();
        c.session_token = self.session_token.clone();
        if let Some(f) = &self.secret_key_file {
            let path = if f.is_absolute() {
                f.clone()
            } else {
                repo.join(f)
            };
            let secret = std::fs::read_to_string(&path).map_err(|e| {
                ConfigError::Invalid(format!(
                    "store {}: secret_key_file {}: {e}",
                    self.name,
                    path.display()
                ))
            })?;
            c.secret_key = Some(secret.trim().to_string());
        }
        Ok(c)
    }
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            pieces: "pieces".into(),
            staging: "staging".into(),
            staging_limit_gib: 1024,
            allow_private_transfers: false,
            stores: Vec::new(),
        }
    }
}

/// `[chain]`: which node the market uses, and how it signs and sends messages.
///
/// Without `api`, the node runs an embedded devnet (its repo under `<repo>/devnet`, served on
/// a loopback port) and reaches it through the same Lotus adapter as a real node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct ChainSection {
    /// The node: `FULLNODE_API_INFO` form (`TOKEN:/ip4/127.0.0.1/tcp/1234/http`), a
    /// multiaddr or a URL. Unset: the embedded devnet.
    pub api: Option<String>,
    /// The token, inline (overrides one in `api`).
    pub token: Option<String>,
    /// A file holding the token (relative paths are under the repo).
    pub token_file: Option<PathBuf>,
    /// `mainnet`, `calibnet` or `devnet`: checked against the node's `StateNetworkName`, and
    /// it sets the deal term rules.
    pub network: String,
    /// `lotus` or `venus`: where their APIs differ (`WalletSign`'s arity).
    pub flavor: String,
    /// How messages are sent: `local` (sign with the repo's keys, then `MpoolPush`),
    /// `node` (`MpoolPushMessage`: the node signs with its wallet; needs a `sign` token) or
    /// `messager` (sophon-messager at `messager_api`, Venus's chain service).
    pub messaging: String,
    /// sophon-messager's API info (`TOKEN:/ip4/…/tcp/39812`), for `messaging = "messager"`.
    pub messager_api: Option<String>,
    /// Who signs asks and deal responses with the worker key: `local` (the repo's keys),
    /// `node` (the node's `WalletSign`; needs a `sign` token) or `gateway` (sophon-gateway at
    /// `gateway_api`, for the `gateway_accounts` that own the worker keys).
    pub signing: String,
    /// sophon-gateway's API info (`TOKEN:/ip4/…/tcp/45132`), for `signing = "gateway"`.
    pub gateway_api: Option<String>,
    /// The sophon-auth accounts owning the signers, for `signing = "gateway"`.
    pub gateway_accounts: Vec<String>,
    /// Confirmations to wait for after a message lands.
    pub confidence: u64,
    /// Embedded devnet: epoch duration, ms.
    pub block_time_ms: u64,
    /// Embedded devnet: how often its dev sealer pre-commits and proves, ms.
    pub sealing_period_ms: u64,
    /// Short deal terms (100 to 10 000 epochs) instead of mainnet's, for demos (devnet).
    pub short_deal_terms: bool,
    /// Embedded devnet: the network version at genesis.
    pub network_version: u32,
    /// Embedded devnet: `[[chain.upgrades]] epoch = 1200, version = 29`.
    #[schemars(with = "Vec<UpgradeDoc>")]
    pub upgrades: Vec<devnet::repo::Upgrade>,
    /// Embedded devnet: where its Lotus API listens (loopback; port 0 picks one, written to
    /// `<repo>/devnet/api` on every start).
    pub devnet_listen: String,
}

impl Default for ChainSection {
    fn default() -> Self {
        Self {
            api: None,
            token: None,
            token_file: None,
            network: "devnet".into(),
            flavor: "lotus".into(),
            messaging: "local".into(),
            messager_api: None,
            signing: "local".into(),
            gateway_api: None,
            gateway_accounts: Vec::new(),
            confidence: 2,
            block_time_ms: 1000,
            sealing_period_ms: 2000,
            short_deal_terms: false,
            network_version: 28,
            upgrades: Vec::new(),
            devnet_listen: "127.0.0.1:0".into(),
        }
    }
}

/// `[[miners]]`: keys are in the repo's key store, named by address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MinerSection {
    /// The miner actor (`f0…`). Unset on a devnet: the miner of this owner and worker is
    /// created there on first start.
    #[serde(default)]
    pub address: Option<String>,
    /// Owner key address.
    pub owner: String,
    /// Worker key address (signs asks and deal responses, publishes deals).
    pub worker: String,
    /// Sector size in bytes.
    #[serde(default = "default_sector_size")]
    pub sector_size: u64,
}

fn default_sector_size() -> u64 {
    32 << 30
}

/// `[ask]`: prices in attoFIL per GiB per epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct AskSection {
    /// Unverified deals.
    pub price: String,
    /// Verified deals.
    pub verified_price: String,
    /// Smallest padded piece.
    pub min_piece_size: u64,
    /// Largest padded piece.
    pub max_piece_size: u64,
}

/// The library's defaults (Boost's), so the two cannot drift apart.
impl Default for AskSection {
    fn default() -> Self {
        let a = AskParams::default();
        Self {
            price: a.price.atto().to_string(),
            verified_price: a.verified_price.atto().to_string(),
            min_piece_size: a.min_piece_size.get(),
            max_piece_size: a.max_piece_size.get(),
        }
    }
}

/// `[publish]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct PublishSection {
    /// Seconds to wait for more deals before publishing a batch (0 publishes at once).
    pub period_secs: u64,
    /// Deals per PublishStorageDeals message.
    pub max_deals_per_message: usize,
}

impl Default for PublishSection {
    fn default() -> Self {
        let p = PublishConfig::default();
        Self {
            period_secs: p.publish_period.as_secs(),
            max_deals_per_message: p.max_deals_per_message,
        }
    }
}

/// `[filters]`: which proposals are considered at all, before the ask and funds are checked
/// (droplet's `ConsiderOnlineStorageDeals` and friends, a piece blocklist, an external filter
/// command).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct FilterSection {
    /// Take online deals.
    pub consider_online: bool,
    /// Take offline deals.
    pub consider_offline: bool,
    /// Take verified deals.
    pub consider_verified: bool,
    /// Take unverified deals.
    pub consider_unverified: bool,
    /// Piece CIDs always refused.
    pub piece_blocklist: Vec<String>,
    /// A Boost-compatible external filter command (deal JSON on stdin, exit 0 accepts).
    pub external_command: Option<String>,
    /// Hours a sector takes to seal (deals starting sooner are refused).
    pub expected_seal_hours: f64,
    /// Days ahead a deal may start at most.
    pub max_start_delay_days: f64,
}

impl Default for FilterSection {
    fn default() -> Self {
        let f = BasicFilter::default();
        Self {
            consider_online: f.consider_online,
            consider_offline: f.consider_offline,
            consider_verified: f.consider_verified,
            consider_unverified: f.consider_unverified,
            piece_blocklist: Vec::new(),
            external_command: None,
            expected_seal_hours: f.expected_seal_duration.as_secs_f64() / 3600.0,
            max_start_delay_days: f.max_deal_start_delay.as_secs_f64() / 86_400.0,
        }
    }
}

/// Why a config cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The TOML does not parse or has unknown keys.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl NodeConfig {
    /// Reads `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })
    }

    /// Writes `path`.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let text = toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        std::fs::write(path, text).map_err(|source| ConfigError::Io {
            path: path.into(),
            source,
        })
    }
}

/// `[[chain.upgrades]]` as the reference documents it.
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct UpgradeDoc {
    /// From this epoch on.
    epoch: i64,
    /// The network version.
    version: u32,
}

/// The JSON Schema of `config.toml` (editors validate TOML against it, e.g. taplo).
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(NodeConfig)).unwrap_or_default()
}

/// Every key of `config.toml`, generated from the config types: their doc comments, types
/// and defaults, section by section, as Markdown (`docs/config.md`).
pub fn reference() -> String {
    use serde_json::Value;
    let schema = schema();
    let defs = schema.get("$defs").cloned().unwrap_or_default();
    let resolve = |v: &Value| -> Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => defs
                .get(r.trim_start_matches("#/$defs/"))
                .cloned()
                .unwrap_or_default(),
            None => v.clone(),
        }
    };
    let defaults = serde_json::to_value(NodeConfig::default()).unwrap_or_default();
    let one_line = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let type_of = |v: &Value| -> String {
        let v = resolve(v);
        let t = match v.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => {
                ts.iter()
                    .filter_map(Value::as_str)
                    .filter(|t| *t != "null")
                    .collect::<Vec<_>>()
                    .join(" | ")
                    + " (optional)"
            }
            _ => "table".into(),
        };
        match (t.as_str(), v.get("items")) {
            ("array", Some(items)) => format!(
                "array of {}",
                resolve(items)
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or("table")
            ),
            _ => t,
        }
    };
    let mut out = String::from(
        "# config.toml reference\n\nGenerated from the config types (`node/src/config.rs`) by \
         `provider config reference`; do not edit by hand. Every key is optional: a config names \
         only what it changes, and unknown keys are refused. `provider config schema` prints \
         the same as a JSON Schema for editors.\n",
    );
    let root = schema
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (section, spec) in &root {
        let is_array = spec.get("type").and_then(Value::as_str) == Some("array");
        let body = match spec.get("items") {
            Some(items) if is_array => resolve(items),
            _ => resolve(spec),
        };
        let header = if is_array {
            format!("[[{section}]]")
        } else {
            format!("[{section}]")
        };
        out.push_str(&format!("\n## `{header}`\n\n"));
        if let Some(d) = body.get("description").and_then(Value::as_str) {
            out.push_str(&one_line(d));
            out.push_str("\n\n");
        }
        out.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
        let required: Vec<&str> = body
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        for (key, field) in body
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let default = match defaults.get(section).and_then(|s| s.get(key)) {
                _ if required.contains(&key.as_str()) => "required".to_string(),
                Some(Value::Null) | None => "unset".to_string(),
                Some(v) => format!("`{v}`"),
            };
            let meaning = field
                .get("description")
                .and_then(Value::as_str)
                .map(one_line)
                .unwrap_or_default()
                .replace('|', "\\|");
            out.push_str(&format!(
                "| `{key}` | {} | {default} | {meaning} |\n",
                type_of(field)
            ));
        }
        // An array of tagged tables (`[[storage.stores]]`): one table per kind.
        for (key, field) in body
            .get("properties")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let Some(variants) = field
                .get("items")
                .map(&resolve)
                .and_then(|i| i.get("oneOf").cloned())
                .and_then(|v| v.as_array().cloned())
            else {
                continue;
            };
            for v in variants {
                let props = v
                    .get("properties")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let Some(kind) = props.get("kind").and_then(|k| k.get("const")) else {
                    continue;
                };
                out.push_str(&format!(
                    "\n### `[[{section}.{key}]]` with `kind = {kind}`\n\n"
                ));
                if let Some(d) = v.get("description").and_then(Value::as_str) {
                    out.push_str(&one_line(d));
                    out.push_str("\n\n");
                }
                let required: Vec<&str> = v
                    .get("required")
                    .and_then(Value::as_array)
                    .map(|r| r.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                out.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
                for (k, f) in props.iter().filter(|(k, _)| *k != "kind") {
                    let default = match f.get("default") {
                        _ if required.contains(&k.as_str()) => "required".to_string(),
                        Some(Value::Null) | None => "unset".to_string(),
                        Some(d) => format!("`{d}`"),
                    };
                    let meaning = f
                        .get("description")
                        .and_then(Value::as_str)
                        .map(one_line)
                        .unwrap_or_default()
                        .replace('|', "\\|");
                    out.push_str(&format!(
                        "| `{k}` | {} | {default} | {meaning} |\n",
                        type_of(f)
                    ));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed reference is what the types generate: a new or changed key without a
    /// regenerated `docs/config.md` fails here.
    #[test]
    fn the_committed_reference_is_current() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md");
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == reference(),
            "{} is stale: run `cargo run -p examples --bin provider -- config reference > docs/config.md`",
            path.display()
        );
    }

    #[test]
    fn every_key_is_documented() {
        let text = reference();
        for key in [
            "`[ipni]`",
            "`[[miners]]`",
            "| `announce_urls` |",
            "| `public` |",
            "| `upgrades` |",
        ] {
            assert!(text.contains(key), "{key} missing");
        }
        // No key without its meaning.
        for line in text.lines().filter(|l| l.starts_with("| `")) {
            assert!(!line.trim_end().ends_with("|  |"), "undocumented: {line}");
        }
    }

    #[test]
    fn piece_stores_parse_as_droplet_operators_write_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("oss.secret"), "s3cr3t\n").unwrap();
        let c: NodeConfig = toml::from_str(
            r#"
            [[storage.stores]]
            kind = "fs"
            name = "local"
            path = "/mnt/pieces"
            priority = 1

            [[storage.stores]]
            kind = "s3"
            name = "oss"
            endpoint = "https://oss-cn-hangzhou.aliyuncs.com"
            region = "oss-cn-hangzhou"
            bucket = "deals"
            access_key = "LTAI"
            secret_key_file = "oss.secret"
            virtual_hosted = true
            prefix = "pieces/"
            priority = 10
            "#,
        )
        .unwrap();
        assert_eq!(c.storage.stores.len(), 2);
        assert_eq!(c.storage.stores[0].name(), "local");
        let PieceStoreSection::S3(oss) = &c.storage.stores[1] else {
            panic!("an s3 store");
        };
        assert_eq!(oss.part_size_mib, 16);
        let s3 = oss.to_config(dir.path()).unwrap();
        assert_eq!(s3.secret_key.as_deref(), Some("s3cr3t"));
        assert_eq!(s3.part_size, 16 << 20);
        assert!(s3.virtual_hosted);
        // A misspelt key or an unknown kind is refused, not ignored.
        for bad in [
            "[[storage.stores]]\nkind = \"s3\"\nname = \"x\"\nbucket = \"b\"\nsecretkey = \"k\"",
            "[[storage.stores]]\nkind = \"nfs\"\nname = \"x\"",
        ] {
            assert!(toml::from_str::<NodeConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trips_and_refuses_unknown_keys() {
        let mut c = NodeConfig::default();
        c.miners.push(MinerSection {
            address: None,
            owner: "f1owner".into(),
            worker: "f1worker".into(),
            sector_size: 2048,
        });
        let text = toml::to_string_pretty(&c).unwrap();
        assert_eq!(toml::from_str::<NodeConfig>(&text).unwrap(), c);
        let partial: NodeConfig = toml::from_str("[http]\nlisten = \"0.0.0.0:80\"\n").unwrap();
        assert_eq!(partial.http.listen, "0.0.0.0:80");
        assert_eq!(partial.publish, PublishSection::default());
        assert!(toml::from_str::<NodeConfig>("[http]\nlisen = \"x\"\n").is_err());
    }
}
