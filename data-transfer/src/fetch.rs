//! One ranged GET against a transfer source, over HTTP(S) or HTTP over libp2p.

use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::BodyExt;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use libp2p::{Multiaddr, PeerId};

use market_core::host::Host;

use crate::{Source, TransferError};

pub(crate) type Body = Pin<Box<dyn Stream<Item = Result<Bytes, String>> + Send>>;

/// Why a request got no response.
pub(crate) enum FetchError {
    /// A connection-level failure, worth retrying.
    Retry(String),
    /// The address policy refused what the name resolved to.
    Forbidden(String),
}

/// The policy's refusal, if that is what broke the request.
fn forbidden(e: &reqwest::Error) -> Option<String> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(TransferError::ForbiddenAddress(a)) = s.downcast_ref::<TransferError>() {
            return Some(a.clone());
        }
        source = s.source();
    }
    None
}

/// The head of a response and its body.
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) content_length: Option<u64>,
    /// The `/total` of a `Content-Range` header.
    pub(crate) range_total: Option<u64>,
    pub(crate) body: Body,
}

/// Issues GETs to one source with the client's headers.
#[derive(Clone)]
pub(crate) enum Fetcher {
    Http {
        client: reqwest::Client,
        url: reqwest::Url,
        headers: HeaderMap,
    },
    P2p {
        host: Host,
        peer: PeerId,
        addr: Multiaddr,
        headers: HeaderMap,
    },
}

pub(crate) fn header_map(headers: &[(String, String)]) -> Result<HeaderMap, TransferError> {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        let bad = |e: &dyn std::fmt::Display| TransferError::InvalidUrl {
            url: format!("header {k}"),
            reason: e.to_string(),
        };
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| bad(&e))?;
        let value = HeaderValue::from_str(v).map_err(|e| bad(&e))?;
        map.insert(name, value);
    }
    Ok(map)
}

fn range_total(h: &HeaderMap) -> Option<u64> {
    let v = h.get(header::CONTENT_RANGE)?.to_str().ok()?;
    v.rsplit_once('/')?.1.trim().parse().ok()
}

fn content_length(h: &HeaderMap) -> Option<u64> {
    h.get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

impl Fetcher {
    pub(crate) fn new(
        source: &Source,
        headers: HeaderMap,
        client: &reqwest::Client,
        host: Option<&Host>,
        addr: Option<Multiaddr>,
    ) -> Result<Self, TransferError> {
        Ok(match source {
            Source::Http(url) => Self::Http {
                client: client.clone(),
                url: url.clone(),
                headers,
            },
            Source::Libp2p { peer, addr: a } => Self::P2p {
                host: host.ok_or(TransferError::NoLibp2pHost)?.clone(),
                peer: *peer,
                addr: addr.unwrap_or_else(|| a.clone()),
                headers,
            },
        })
    }

    /// GETs bytes `start..end` of a `total`-byte source. A range header is sent only when
    /// it is not the whole file, so servers without range support still work from zero.
    /// A connection-level failure is worth retrying, unless the address policy refused the
    /// resolved address.
    pub(crate) async fn get(&self, start: u64, end: u64, total: u64) -> Result<Reply, FetchError> {
        let range = (start > 0 || end < total).then(|| format!("bytes={start}-{}", end - 1));
        match self {
            Self::Http {
                client,
                url,
                headers,
            } => {
                let mut req = client.get(url.clone()).headers(headers.clone());
                if let Some(r) = range {
                    req = req.header(header::RANGE, r);
                }
                let resp = req.send().await.map_err(|e| {
                    if let Some(forbidden) = forbidden(&e) {
                        return FetchError::Forbidden(forbidden);
                    }
                    FetchError::Retry(format!("GET {url}: {e}"))
                })?;
                let h = resp.headers();
                Ok(Reply {
                    status: resp.status().as_u16(),
                    content_length: content_length(h),
                    range_total: range_total(h),
                    body: Box::pin(resp.bytes_stream().map(|r| r.map_err(|e| e.to_string()))),
                })
            }
            Self::P2p {
                host,
                peer,
                addr,
                headers,
            } => {
                let stream = crate::p2p::open(host, *peer, addr.clone())
                    .await
                    .map_err(|e| FetchError::Retry(e.to_string()))?;
                let io = hyper_util::rt::TokioIo::new(stream);
                let (mut send, conn) = hyper::client::conn::http1::handshake(io)
                    .await
                    .map_err(|e| FetchError::Retry(format!("HTTP over libp2p to {peer}: {e}")))?;
                tokio::spawn(async move {
                    let _ = conn.await;
                });
                let mut req = hyper::Request::get("/")
                    .header(header::HOST, peer.to_string())
                    .body(http_body_util::Empty::<Bytes>::new())
                    .map_err(|e| FetchError::Retry(e.to_string()))?;
                req.headers_mut().extend(headers.clone());
                if let Some(r) = range
                    && let Ok(v) = HeaderValue::from_str(&r)
                {
                    req.headers_mut().insert(header::RANGE, v);
                }
                let resp = send
                    .send_request(req)
                    .await
                    .map_err(|e| FetchError::Retry(format!("HTTP over libp2p to {peer}: {e}")))?;
                let (parts, body) = resp.into_parts();
                let body = body
                    .into_data_stream()
                    .map(|r| r.map_err(|e| e.to_string()));
                Ok(Reply {
                    status: parts.status.as_u16(),
                    content_length: content_length(&parts.headers),
                    range_total: range_total(&parts.headers),
                    body: Box::pin(body),
                })
            }
        }
    }
}
