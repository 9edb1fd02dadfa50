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
use piecestore::directory::{TreeReport, export_tree};
use piecestore::unixfs::verify_car;
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::gateway::DagScope;
use crate::network;
use crate::types::{Query, QueryParams, QueryResponse, TransportsResponse};
use crate::{ProviderFailure, RetrievalError};

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

/// A provider's HTTP retrieval endpoint, as a multi-provider fetch tries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProvider {
    /// Who it is, for errors and logs (a peer id, or the URL).
    pub id: String,
    /// Its base URL (`/piece/…` and `/ipfs/…` are joined to it).
    pub url: Url,
}

impl HttpProvider {
    /// A provider named `id` at `url`.
    pub fn new(id: impl Into<String>, url: Url) -> Self {
        Self { id: id.into(), url }
    }
}

/// A piece being downloaded, possibly from several providers in turn.
struct PieceDownload {
    out: tokio::io::BufWriter<tokio::fs::File>,
    hasher: commp::CommP,
    /// Bytes written so far (where the next provider starts).
    offset: u64,
    /// The piece's length, once a provider said it.
    total: Option<u64>,
}

impl PieceDownload {
    /// Flushes to disk and checks the bytes make `piece`.
    async fn verify(&mut self, piece: &Cid) -> Result<commp::PieceInfo, RetrievalError> {
        self.out.flush().await?;
        self.out.get_ref().sync_all().await?;
        let hasher = std::mem::replace(&mut self.hasher, new_hasher());
        let info = hasher.finish()?;
        let actual = market_core::cid::widen(&info.cid_v1());
        if actual != *piece {
            return Err(RetrievalError::CommPMismatch {
                expected: Box::new(*piece),
                actual: Box::new(actual),
            });
        }
        Ok(info)
    }

    /// Drops everything received, for a fresh start with another provider.
    async fn restart(&mut self) -> Result<(), RetrievalError> {
        use tokio::io::AsyncSeekExt;
        self.out.flush().await?;
        self.out.get_mut().set_len(0).await?;
        self.out.get_mut().seek(std::io::SeekFrom::Start(0)).await?;
        self.hasher = new_hasher();
        self.offset = 0;
        self.total = None;
        Ok(())
    }
}

/// commP over a piece's unpadded bytes, zero-padded like the provider pads it.
fn new_hasher() -> commp::CommP {
    commp::CommP::new().with_short_payload(commp::ShortPayload::ZeroPad)
}

/// The error of a fetch that tried `failures`: the one error itself when one provider was
/// tried.
fn give_up(mut failures: Vec<ProviderFailure>) -> RetrievalError {
    match failures.len() {
        0 => RetrievalError::NoProviders,
        1 => failures.remove(0).error,
        _ => RetrievalError::AllProvidersFailed(failures),
    }
}

/// `bytes start-end/total` → (start, total when known).
fn parse_content_range(v: &str) -> Option<(u64, Option<u64>)> {
    let (range, total) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let (start, end): (u64, u64) = (start.parse().ok()?, end.parse().ok()?);
    let total = match total {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    (end >= start && total.is_none_or(|t| end < t)).then_some((start, total))
}

/// The response if it succeeded, else its status and (the start of) what the server said.
async fn check_status(resp: reqwest::Response) -> Result<reqwest::Response, RetrievalError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(RetrievalError::Http {
        status: status.as_u16(),
        body: body
            .chars()
            .take(500)
            .collect::<String>()
            .trim()
            .to_string(),
    })
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
        let resp = check_status(resp).await?;
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
        let one = [HttpProvider::new(base.as_str(), base.clone())];
        self.fetch_piece_from(&one, piece, dest, progress)
            .await
            .map(|(f, _)| f)
    }

    /// Fetches the piece `piece` (v1 CID) from the first of `providers` that delivers it:
    /// when one fails part way, the next continues from the byte where it stopped (a
    /// `Range` request), so a large piece is not downloaded twice. The whole piece is hashed
    /// as it arrives and must make `piece`; nothing is left at `dest` otherwise. Returns the
    /// fetch and the index of the provider that finished it.
    pub async fn fetch_piece_from(
        &self,
        providers: &[HttpProvider],
        piece: &Cid,
        dest: &Path,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<(PieceFetch, usize), RetrievalError> {
        let tmp = partial(dest);
        let mut dl = PieceDownload {
            out: tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::create(&tmp).await?),
            hasher: new_hasher(),
            offset: 0,
            total: None,
        };
        let mut failures = Vec::new();
        let mut finished = None;
        for (i, p) in providers.iter().enumerate() {
            let fetched = match self.piece_from(&p.url, piece, &mut dl, progress).await {
                Ok(()) => dl.verify(piece).await,
                Err(e) => Err(e),
            };
            match fetched {
                Ok(info) => {
                    finished = Some((dl.offset, info, i));
                    break;
                }
                // Our own disk failed: another provider would not help.
                Err(e @ RetrievalError::Io(_)) => {
                    failures = vec![ProviderFailure {
                        provider: p.id.clone(),
                        error: e,
                    }];
                    break;
                }
                Err(error) => {
                    tracing::info!(provider = %p.id, at = dl.offset, error = %market_core::report(&error), "piece fetch failed; trying the next provider");
                    // Wrong bytes somewhere: the next provider starts over.
                    let restart = matches!(error, RetrievalError::CommPMismatch { .. });
                    failures.push(ProviderFailure {
                        provider: p.id.clone(),
                        error,
                    });
                    if restart && let Err(e) = dl.restart().await {
                        failures = vec![ProviderFailure {
                            provider: p.id.clone(),
                            error: e,
                        }];
                        break;
                    }
                }
            }
        }
        let result = finished.ok_or_else(|| give_up(failures));
        let (bytes, info, used) = keep_if_verified(&tmp, dest, result).await?;
        Ok((
            PieceFetch {
                path: dest.to_path_buf(),
                bytes,
                piece: info,
            },
            used,
        ))
    }

    /// Appends the piece from `base` to `dl`, starting at `dl.offset`.
    async fn piece_from(
        &self,
        base: &Url,
        piece: &Cid,
        dl: &mut PieceDownload,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<(), RetrievalError> {
        let url = base
            .join(&format!("piece/{piece}"))
            .map_err(|e| RetrievalError::Address(e.to_string()))?;
        let mut req = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/piece");
        if dl.offset > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={}-", dl.offset));
        }
        let resp = check_status(req.send().await?).await?;
        // How many leading bytes of the body we already have, and the piece's length.
        let (mut skip, total) = if resp.status() == reqwest::StatusCode::PARTIAL_CONTENT {
            let range = resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            match parse_content_range(&range) {
                Some((start, total)) if start == dl.offset => (0, total),
                _ => {
                    return Err(RetrievalError::WrongRange {
                        asked: dl.offset,
                        got: range,
                    });
                }
            }
        } else {
            (dl.offset, resp.content_length())
        };
        if let (Some(seen), Some(now)) = (dl.total, total)
            && seen != now
        {
            return Err(RetrievalError::ShortBody {
                got: now,
                announced: seen,
            });
        }
        dl.total = dl.total.or(total);
        if dl.total.is_some_and(|n| n > self.max_bytes) {
            return Err(RetrievalError::TooLarge(self.max_bytes));
        }
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk?;
            let skipped = skip.min(chunk.len() as u64) as usize;
            skip -= skipped as u64;
            let chunk = &chunk[skipped..];
            if dl.offset + chunk.len() as u64 > self.max_bytes {
                return Err(RetrievalError::TooLarge(self.max_bytes));
            }
            dl.hasher.update(chunk);
            dl.out.write_all(chunk).await?;
            dl.offset += chunk.len() as u64;
            progress(dl.offset, dl.total);
        }
        match dl.total {
            Some(t) if t != dl.offset => Err(RetrievalError::ShortBody {
                got: dl.offset,
                announced: t,
            }),
            _ => Ok(()),
        }
    }

    /// Fetches the DAG under `root` from the first of `providers` whose CAR verifies
    /// ([`Self::fetch_car`] for each in turn). Returns the fetch and the provider's index.
    pub async fn fetch_car_from(
        &self,
        providers: &[HttpProvider],
        root: &Cid,
        scope: DagScope,
        dest: &Path,
        progress: &mut (dyn FnMut(u64, Option<u64>) + Send),
    ) -> Result<(CarFetch, usize), RetrievalError> {
        let mut failures = Vec::new();
        for (i, p) in providers.iter().enumerate() {
            match self.fetch_car(&p.url, root, scope, dest, progress).await {
                Ok(f) => return Ok((f, i)),
                Err(e @ RetrievalError::Io(_)) => {
                    return Err(e);
                }
                Err(error) => {
                    tracing::info!(provider = %p.id, error = %market_core::report(&error), "CAR fetch failed; trying the next provider");
                    failures.push(ProviderFailure {
                        provider: p.id.clone(),
                        error,
                    });
                }
            }
        }
        Err(give_up(failures))
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

    /// Writes what `root` holds in the CAR at `car` to `out` (verifying every block again):
    /// a UnixFS file, or a directory tree (plain or HAMT-sharded). It is written beside `out`
    /// and renamed into place only once complete; an existing directory at `out` is not
    /// merged into.
    pub async fn export(car: &Path, root: &Cid, out: &Path) -> Result<TreeReport, RetrievalError> {
        let (car, root, out) = (car.to_path_buf(), *root, out.to_path_buf());
        tokio::task::spawn_blocking(move || {
            let tmp = partial(&out);
            let clear = |p: &Path| match std::fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
                Ok(_) => std::fs::remove_file(p),
                Err(_) => Ok(()),
            };
            clear(&tmp)?;
            match export_tree(&car, Some(root), &tmp) {
                Ok(r) => {
                    std::fs::rename(&tmp, &out)?;
                    Ok(r)
                }
                Err(e) => {
                    let _ = clear(&tmp);
                    Err(e.into())
                }
            }
        })
        .await
        .map_err(|e| RetrievalError::Io(std::io::Error::other(e)))?
    }
}
