//! The retrieval client: asks providers what they hold, then fetches over HTTP and verifies
//! everything before it is kept. A piece is hashed while it streams and must make the asked
//! piece CID; a CAR must have every block match its CID and, unless only a block was asked
//! for, every block reachable from the root present.

use std::path::{Path, PathBuf};

use futures::StreamExt;
use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;
use market_core::Cid;
use market_core::host::{Host, PeerAddr};
use piecestore::unixfs::{ExportReport, export_car, verify_car};
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::RetrievalError;
use crate::gateway::DagScope;
use crate::network;
use crate::types::{Query, QueryParams, QueryResponse, TransportsResponse};

/// Default cap on one response (a 64 GiB sector's worth).
pub const DEFAULT_MAX_BYTES: u64 = 64 << 30;

/// A fetched piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceFetch {
    /// Where it was written.
    pub path: PathBuf,
    /// Bytes received (the unpadded piece).
    pub bytes: u64,
    /// Its piece, as computed.
    pub piece: commp::PieceInfo,
}

/// A fetched CAR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarFetch {
    /// Where it was written.
    pub path: PathBuf,
    /// Bytes received.
    pub bytes: u64,
    /// Blocks in it, all verified.
    pub blocks: u64,
}

/// The HTTP base URL of a multiaddr such as `/ip4/1.2.3.4/tcp/7777/http` or
/// `/dns/example.com/tcp/443/https`.
pub fn multiaddr_to_url(ma: &Multiaddr) -> Option<Url> {
    let mut host = None;
    let mut port = None;
    let mut scheme = None;
    for p in ma.iter() {
        match p {
            Protocol::Ip4(ip) => host = Some(ip.to_string()),
            Protocol::Ip6(ip) => host = Some(format!("[{ip}]")),
            Protocol::Dns(d) | Protocol::Dns4(d) | Protocol::Dns6(d) => host = Some(d.to_string()),
            Protocol::Tcp(p) => port = Some(p),
            Protocol::Http => scheme = Some("http"),
            Protocol::Https => scheme = Some("https"),
            Protocol::Tls => scheme = Some("https"),
            _ => {}
        }
    }
    Url::parse(&format!("{}://{}:{}/", scheme?, host?, port?)).ok()
}

/// The multiaddr of an `http(s)://host:port` URL, for the transports answer.
pub fn url_to_multiaddr(url: &Url) -> Option<Multiaddr> {
    let mut ma = Multiaddr::empty();
    match url.host()? {
        url::Host::Ipv4(ip) => ma.push(Protocol::Ip4(ip)),
        url::Host::Ipv6(ip) => ma.push(Protocol::Ip6(ip)),
        url::Host::Domain(d) => ma.push(Protocol::Dns(d.to_string().into())),
    }
    ma.push(Protocol::Tcp(url.port_or_known_default()?));
    ma.push(match url.scheme() {
        "http" => Protocol::Http,
        "https" => Protocol::Https,
        _ => return None,
    });
    Some(ma)
}

/// Moves `tmp` to `dest` if `result` is good, deletes it otherwise: nothing unverified is
/// left where the caller looks.
async fn keep_if_verified<T>(
    tmp: &Path,
    dest: &Path,
    result: Result<T, RetrievalError>,
) -> Result<T, RetrievalError> {
    match result {
        Ok(v) => {
            tokio::fs::rename(tmp, dest).await?;
            Ok(v)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(tmp).await;
            Err(e)
        }
    }
}

/// The retrieval client. Cheap to clone.
#[derive(Clone)]
pub struct RetrievalClient {
    host: Option<Host>,
    http: reqwest::Client,
    max_bytes: u64,
}

fn partial(dest: &Path) -> PathBuf {
    let mut p = dest.as_os_str().to_owned();
    p.push(".partial");
    PathBuf::from(p)
}

impl RetrievalClient {
    /// A client; `host` is needed only for queries over libp2p.
    pub fn new(host: Option<Host>) -> Result<Self, RetrievalError> {
        let http = reqwest::Client::builder().build()?;
        Ok(Self {
            host,
            http,
            max_bytes: DEFAULT_MAX_BYTES,
        })
    }

    /// Caps every response at `max` bytes.
    pub fn with_max_bytes(mut self, max: u64) -> Self {
        self.max_bytes = max;
        self
    }

    fn host(&self) -> Result<&Host, RetrievalError> {
        self.host.as_ref().ok_or(RetrievalError::NoLibp2pHost)
    }

    /// Asks `peer` whether it can serve `payload` (optionally from `piece`).
    pub async fn query(
        &self,
        peer: &PeerAddr,
        payload: Cid,
        piece: Option<Cid>,
    ) -> Result<QueryResponse, RetrievalError> {
        let q = Query {
            payload_cid: payload,
            params: QueryParams { piece_cid: piece },
        };
        network::query(self.host()?, peer, &q).await
    }

    /// Asks `peer` for its retrieval transports.
    pub async fn transports(&self, peer: &PeerAddr) -> Result<TransportsResponse, RetrievalError> {
        network::transports(self.host()?, peer).await
    }

    /// The provider's HTTP retrieval base URL, from its transports answer.
    pub async fn http_url(&self, peer: &PeerAddr) -> Result<Url, RetrievalError> {
        self.transports(peer)
            .await?
            .protocols
            .iter()
            .filter(|p| p.name == "http")
            .flat_map(|p| p.multiaddrs())
            .find_map(|m| multiaddr_to_url(&m))
            .ok_or(RetrievalError::NoHttp)
    }

    async fn get(
        &self,
        url: Url,
        accept: &str,
        dest: &Path,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
        mut on_chunk: impl FnMut(&[u8]),
    ) -> Result<u64, RetrievalError> {
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, accept)
            .send()
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(RetrievalError::Http {
                status: status.as_u16(),
                body: body
                    .chars()
                    .take(500)
                    .collect::<String>()
                    .trim()
                    .to_string(),
            });
        }
        let total = resp.content_length();
        if total.is_some_and(|n| n > self.max_bytes) {
            return Err(RetrievalError::TooLarge(self.max_bytes));
        }
        let mut out =
            tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(dest).await?);
        let mut body = resp.bytes_stream();
        let mut n = 0u64;
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            n += chunk.len() as u64;
            if n > self.max_bytes {
                return Err(RetrievalError::TooLarge(self.max_bytes));
            }
            on_chunk(&chunk);
            out.write_all(&chunk).await?;
            progress(n, total);
        }
        if total.is_some_and(|t| t != n) {
            return Err(RetrievalError::ShortBody {
                got: n,
                announced: total.unwrap_or_default(),
            });
        }
        out.flush().await?;
        out.into_inner().sync_all().await?;
        Ok(n)
    }

    /// Fetches the piece `piece` (v1 CID) from `base` into `dest`, hashing while it streams.
    /// Nothing is left at `dest` unless the bytes make exactly that piece.
    pub async fn fetch_piece(
        &self,
        base: &Url,
        piece: &Cid,
        dest: &Path,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<PieceFetch, RetrievalError> {
        let url = base
            .join(&format!("piece/{piece}"))
            .map_err(|e| RetrievalError::Address(e.to_string()))?;
        let tmp = partial(dest);
        let mut hasher = commp::CommP::new().with_short_payload(commp::ShortPayload::ZeroPad);
        let got = self
            .get(url, "application/piece", &tmp, progress, |c| {
                hasher.update(c)
            })
            .await;
        let result = got.and_then(|bytes| {
            let info = hasher.finish()?;
            let actual = market_core::cid::widen(&info.cid_v1());
            if actual != *piece {
                return Err(RetrievalError::CommPMismatch {
                    expected: Box::new(*piece),
                    actual: Box::new(actual),
                });
            }
            Ok((bytes, info))
        });
        let (bytes, piece) = keep_if_verified(&tmp, dest, result).await?;
        Ok(PieceFetch {
            path: dest.to_path_buf(),
            bytes,
            piece,
        })
    }

    /// Fetches the DAG under `root` as a CAR from `base`'s trustless gateway into `dest`,
    /// then verifies every block and (for `all` and `entity`) that the DAG is complete.
    pub async fn fetch_car(
        &self,
        base: &Url,
        root: &Cid,
        scope: DagScope,
        dest: &Path,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<CarFetch, RetrievalError> {
        let url = base
            .join(&format!("ipfs/{root}?dag-scope={}", scope.as_str()))
            .map_err(|e| RetrievalError::Address(e.to_string()))?;
        let tmp = partial(dest);
        let accept = "application/vnd.ipld.car;version=1;order=dfs;dups=y";
        let result = async {
            let bytes = self.get(url, accept, &tmp, progress, |_| {}).await?;
            let (path, root) = (tmp.clone(), *root);
            let complete = scope != DagScope::Block;
            let blocks = tokio::task::spawn_blocking(move || verify_car(&path, &root, complete))
                .await
                .map_err(|e| RetrievalError::Io(std::io::Error::other(e)))??;
            Ok::<_, RetrievalError>((bytes, blocks))
        }
        .await;
        let (bytes, blocks) = keep_if_verified(&tmp, dest, result).await?;
        Ok(CarFetch {
            path: dest.to_path_buf(),
            bytes,
            blocks,
        })
    }

    /// Writes the UnixFS file under `root` in the CAR at `car` to `out` (verifying again).
    pub async fn export(
        car: &Path,
        root: &Cid,
        out: &Path,
    ) -> Result<ExportReport, RetrievalError> {
        let (car, root, out) = (car.to_path_buf(), *root, out.to_path_buf());
        tokio::task::spawn_blocking(move || {
            let tmp = partial(&out);
            let report = export_car(&car, Some(root), std::fs::File::create(&tmp)?);
            match report {
                Ok(r) => {
                    std::fs::rename(&tmp, &out)?;
                    Ok(r)
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(e.into())
                }
            }
        })
        .await
        .map_err(|e| RetrievalError::Io(std::io::Error::other(e)))?
    }
}
