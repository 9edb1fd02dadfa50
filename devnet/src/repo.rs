//! A devnet on disk, run like a lotus daemon: `init` makes the repo (config, wallet, JWT
//! secret, admin token); `start` loads the saved chain, serves the Lotus API, writes the
//! `api` file (listen multiaddr) and mines and seals on its clock.
//!
//! Repo layout: `devnet.toml`, `chain.db` (the chain state), `keys/` (the devnet wallet, which
//! `MpoolPushMessage` and `WalletSign` use), `jwt.secret`, `token` (admin), `api`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use market_core::chain::DealPolicy;
use market_core::jwt;
use market_core::types::{ChainEpoch, NetworkVersion, TokenAmount};
use market_core::wallet::KeyStore;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::{DevChain, DevChainConfig, DevSealer};

/// Deal terms short enough for a demo to see deals start and end.
pub const SHORT_TERMS: DealPolicy = DealPolicy {
    min_duration: 100,
    max_duration: 10_000,
    max_end_offset: 20_000,
};

/// `devnet.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct DevnetConfig {
    /// Where the Lotus API listens; loopback unless you mean otherwise.
    pub listen: String,
    /// Epoch duration, ms.
    pub block_time_ms: u64,
    /// How often the dev sealer pre-commits and proves the sectors it holds, ms.
    pub sealing_period_ms: u64,
    /// Short deal terms (100 to 10 000 epochs) instead of mainnet's.
    pub short_deal_terms: bool,
    /// The network version at genesis.
    pub network_version: u32,
    /// Upgrades: `[[upgrades]] epoch = 1200, version = 29`.
    pub upgrades: Vec<Upgrade>,
    /// The most the faucet pays one address over the chain's life, whole FIL.
    pub faucet_cap_fil: u64,
    /// `StateNetworkName`.
    pub network_name: String,
}

/// One scheduled network upgrade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upgrade {
    /// From this epoch on.
    pub epoch: i64,
    /// The network version.
    pub version: u32,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:1234".into(),
            block_time_ms: 1000,
            sealing_period_ms: 2000,
            short_deal_terms: false,
            network_version: 28,
            upgrades: Vec::new(),
            faucet_cap_fil: 10_000,
            network_name: "devnet".into(),
        }
    }
}

impl DevnetConfig {
    /// The chain parameters this config describes.
    pub fn chain_config(&self) -> DevChainConfig {
        let policy = if self.short_deal_terms {
            SHORT_TERMS
        } else {
            DealPolicy::MAINNET
        };
        let mut c = DevChainConfig::default()
            .with_policy(policy)
            .with_network_version(NetworkVersion(self.network_version));
        c.network_name = self.network_name.clone();
        for u in &self.upgrades {
            c = c.with_upgrade(ChainEpoch::new(u.epoch), NetworkVersion(u.version));
        }
        c
    }
}

/// Why the devnet could not be set up or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DevnetError {
    /// Repo files.
    #[error("devnet repo i/o")]
    Io(#[from] std::io::Error),
    /// `devnet.toml` is invalid.
    #[error("devnet.toml: {0}")]
    Config(String),
    /// `init` found an existing repo.
    #[error("{0} is already initialised")]
    Exists(PathBuf),
    /// The wallet.
    #[error("devnet wallet")]
    Wallet(#[from] market_core::wallet::WalletError),
    /// The chain state.
    #[error(transparent)]
    Chain(#[from] crate::chain::DevChainError),
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// Creates a devnet repo at `dir`.
pub fn init(dir: &Path, config: &DevnetConfig) -> Result<(), DevnetError> {
    let toml_path = dir.join("devnet.toml");
    if toml_path.exists() {
        return Err(DevnetError::Exists(dir.to_path_buf()));
    }
    std::fs::create_dir_all(dir)?;
    KeyStore::open(dir.join("keys"))?;
    let secret: [u8; 32] = rand::random();
    write_private(&dir.join("jwt.secret"), hex::encode(secret).as_bytes())?;
    let token = jwt::sign(&secret, jwt::ALL).map_err(|e| DevnetError::Config(e.to_string()))?;
    write_private(&dir.join("token"), token.as_bytes())?;
    let text = toml::to_string_pretty(config).map_err(|e| DevnetError::Config(e.to_string()))?;
    std::fs::write(toml_path, text)?;
    Ok(())
}

/// A running devnet.
pub struct Devnet {
    /// The chain.
    pub chain: DevChain,
    /// The devnet's wallet.
    pub wallet: KeyStore,
    /// The Lotus API URL (`http://127.0.0.1:1234/rpc/v1`).
    pub url: Url,
    /// The admin token.
    pub token: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Devnet {
    /// Loads and serves the devnet at `dir`; `listen` overrides the config's address.
    pub async fn start(dir: &Path, listen: Option<&str>) -> Result<Self, DevnetError> {
        let text = std::fs::read_to_string(dir.join("devnet.toml"))?;
        let config: DevnetConfig =
            toml::from_str(&text).map_err(|e| DevnetError::Config(e.to_string()))?;
        let secret = hex::decode(std::fs::read_to_string(dir.join("jwt.secret"))?.trim())
            .map_err(|e| DevnetError::Config(format!("jwt.secret: {e}")))?;
        let token = std::fs::read_to_string(dir.join("token"))?
            .trim()
            .to_string();
        let wallet = KeyStore::open(dir.join("keys"))?;
        let chain = DevChain::open(&dir.join("chain.db"), config.chain_config())?;
        let listener = tokio::net::TcpListener::bind(listen.unwrap_or(&config.listen)).await?;
        let bound = listener.local_addr()?;
        let url = Url::parse(&format!("http://{bound}/rpc/v1"))
            .map_err(|e| DevnetError::Config(e.to_string()))?;
        let ip = match bound.ip() {
            std::net::IpAddr::V4(ip) => format!("/ip4/{ip}"),
            std::net::IpAddr::V6(ip) => format!("/ip6/{ip}"),
        };
        std::fs::write(dir.join("api"), format!("{ip}/tcp/{}/http", bound.port()))?;
        let block_time = Duration::from_millis(config.block_time_ms.max(1));
        let app = crate::api::router(crate::api::ApiState::new(
            chain.clone(),
            wallet.clone(),
            secret,
            TokenAmount::from_whole(config.faucet_cap_fil),
            block_time.as_secs().max(1),
        ));
        let limits = market_core::http::ServerLimits::default();
        let server = tokio::spawn(market_core::http::serve(listener, app, limits));
        chain.start_clock(block_time);
        let sealing = DevSealer::new(chain.clone())
            .run(Duration::from_millis(config.sealing_period_ms.max(1)));
        tracing::info!(api = %url, epoch = %chain.epoch(), version = %chain.version(), "devnet running");
        Ok(Self {
            chain,
            wallet,
            url,
            token,
            tasks: vec![server, sealing],
        })
    }

    /// `FULLNODE_API_INFO` for this devnet with its admin token.
    pub fn api_info(&self) -> String {
        let host = self.url.host_str().unwrap_or("127.0.0.1");
        let port = self.url.port().unwrap_or(1234);
        format!("{}:/ip4/{host}/tcp/{port}/http", self.token)
    }

    /// Stops mining and serving.
    pub fn stop(&self) {
        self.chain.stop_clock();
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Devnet {
    fn drop(&mut self) {
        self.stop();
    }
}
