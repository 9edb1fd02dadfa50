//! Where a transfer's bytes come from: Boost's `http(s)://…` and `libp2p:///…/p2p/<peer>` URLs.

use std::fmt;
use std::net::IpAddr;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use reqwest::Url;

use crate::TransferError;

/// A parsed transfer URL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// Plain HTTP(S) GET.
    Http(Url),
    /// HTTP over a libp2p stream on [`crate::TRANSFER_PROTOCOL`] to `peer` at `addr`.
    Libp2p {
        /// The client's transfer peer.
        peer: PeerId,
        /// Where to dial it (without the `/p2p` part).
        addr: Multiaddr,
    },
}

impl Source {
    /// Parses a URL as Boost clients write them.
    pub fn parse(url: &str) -> Result<Self, TransferError> {
        let bad = |reason: &str| TransferError::InvalidUrl {
            url: url.chars().take(256).collect(),
            reason: reason.to_owned(),
        };
        if url.len() > 4096 {
            return Err(bad("longer than 4096 bytes"));
        }
        if let Some(rest) = url.strip_prefix("libp2p://") {
            let addr: Multiaddr = rest.parse().map_err(|e| bad(&format!("{e}")))?;
            let mut addr = addr;
            let Some(Protocol::P2p(peer)) = addr.pop() else {
                return Err(bad("a libp2p URL must end with /p2p/<peer id>"));
            };
            if addr.is_empty() {
                return Err(bad("a libp2p URL needs an address before /p2p"));
            }
            return Ok(Self::Libp2p { peer, addr });
        }
        let u = Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(u.scheme(), "http" | "https") {
            return Err(bad("scheme must be http, https or libp2p"));
        }
        if u.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host"));
        }
        Ok(Self::Http(u))
    }

    /// The host the bytes come from (for per-host limits and logs).
    pub fn host(&self) -> String {
        match self {
            Self::Http(u) => u.host_str().unwrap_or_default().to_owned(),
            Self::Libp2p { peer, .. } => peer.to_string(),
        }
    }

    /// The IP literal in the URL, if it has one (a DNS name is checked when resolved).
    pub fn ip(&self) -> Option<IpAddr> {
        match self {
            Self::Http(u) => match u.host()? {
                url::Host::Ipv4(a) => Some(a.into()),
                url::Host::Ipv6(a) => Some(a.into()),
                url::Host::Domain(_) => None,
            },
            Self::Libp2p { addr, .. } => addr.iter().find_map(|p| match p {
                Protocol::Ip4(a) => Some(a.into()),
                Protocol::Ip6(a) => Some(a.into()),
                _ => None,
            }),
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Http(u) => write!(f, "{u}"),
            Self::Libp2p { peer, addr } => write!(f, "libp2p://{addr}/p2p/{peer}"),
        }
    }
}
