//! Which addresses a provider may fetch from.
//!
//! Deal URLs come from clients, so a provider that fetched anything would let any client make
//! it probe its own network (SSRF). By default only public unicast addresses are allowed; IP
//! literals are checked when a transfer is admitted, DNS names every time they are resolved
//! (so a name cannot be re-pointed after the check), and redirects are checked too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

use crate::TransferError;

/// The address policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddressPolicy {
    /// Allow loopback, private, link-local and other non-public addresses (tests, LANs).
    pub allow_private: bool,
}

impl AddressPolicy {
    /// A policy that also allows loopback and private addresses (tests, private networks).
    pub const fn allowing_private() -> Self {
        Self {
            allow_private: true,
        }
    }
}

impl AddressPolicy {
    /// Whether `ip` may be contacted.
    pub fn allows(&self, ip: IpAddr) -> bool {
        self.allow_private || is_public(ip)
    }

    /// Fails with [`TransferError::ForbiddenAddress`] unless `ip` may be contacted.
    pub fn check(&self, ip: IpAddr) -> Result<(), TransferError> {
        if self.allows(ip) {
            Ok(())
        } else {
            Err(TransferError::ForbiddenAddress(ip.to_string()))
        }
    }

    /// Resolves DNS parts of a libp2p address and checks every IP, returning an address
    /// with IPs only, so the dial goes where the check looked.
    pub async fn resolve_multiaddr(&self, addr: &Multiaddr) -> Result<Multiaddr, TransferError> {
        let mut out = Multiaddr::empty();
        let mut iter = addr.iter().peekable();
        while let Some(p) = iter.next() {
            match p {
                Protocol::Ip4(a) => {
                    self.check(a.into())?;
                    out.push(p);
                }
                Protocol::Ip6(a) => {
                    self.check(a.into())?;
                    out.push(p);
                }
                Protocol::Dns(ref name) | Protocol::Dns4(ref name) | Protocol::Dns6(ref name) => {
                    let port = match iter.peek() {
                        Some(Protocol::Tcp(port)) => *port,
                        _ => 0,
                    };
                    let want4 = !matches!(p, Protocol::Dns6(_));
                    let want6 = !matches!(p, Protocol::Dns4(_));
                    let ip = tokio::net::lookup_host((name.as_ref(), port))
                        .await?
                        .map(|s| s.ip())
                        .find(|ip| (ip.is_ipv4() && want4) || (ip.is_ipv6() && want6))
                        .ok_or_else(|| TransferError::InvalidUrl {
                            url: addr.to_string(),
                            reason: format!("{name} does not resolve"),
                        })?;
                    self.check(ip)?;
                    out.push(match ip {
                        IpAddr::V4(a) => Protocol::Ip4(a),
                        IpAddr::V6(a) => Protocol::Ip6(a),
                    });
                }
                other => out.push(other),
            }
        }
        Ok(out)
    }
}

/// Public unicast: not loopback, private, shared (CGNAT), link-local, unspecified, multicast,
/// broadcast, documentation, benchmarking or reserved; IPv6 also not unique-local, and an IPv4
/// address carried inside an IPv6 one (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64
/// `64:ff9b::/96`, 6to4 `2002::/16`) is judged as that IPv4 address, so none of them reaches a
/// private network by another spelling. Teredo and local-use NAT64 are never public.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_public_v4(a),
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(a),
        },
    }
}

fn is_public_v4(a: Ipv4Addr) -> bool {
    let [o0, o1, ..] = a.octets();
    !(a.is_loopback()
        || a.is_private()
        || a.is_link_local()
        || a.is_unspecified()
        || a.is_multicast()
        || a.is_broadcast()
        || a.is_documentation()
        || o0 == 0
        || (o0 == 100 && (64..128).contains(&o1))
        || (o0 == 198 && (18..20).contains(&o1))
        || o0 >= 240)
}

fn is_public_v6(a: Ipv6Addr) -> bool {
    let s = a.segments();
    let o = a.octets();
    let embedded = |i: usize| Ipv4Addr::new(o[i], o[i + 1], o[i + 2], o[i + 3]);
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return is_public_v4(embedded(12));
    }
    if s[0] == 0x2002 {
        return is_public_v4(embedded(2));
    }
    !(a.is_loopback()
        || a.is_unspecified()
        || a.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00
        || (s[0] & 0xffc0) == 0xfe80
        || s[0] == 0x2001 && s[1] == 0x0db8
        || s[0] == 0x2001 && s[1] == 0
        || s[..3] == [0x64, 0xff9b, 1]
        || s[..6] == [0; 6] && !is_public_v4(embedded(12)))
}

/// A DNS resolver for reqwest that drops addresses the policy forbids.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    pub(crate) policy: AddressPolicy,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if addrs.is_empty() {
                let e: Box<dyn std::error::Error + Send + Sync> =
                    Box::new(TransferError::ForbiddenAddress(host));
                return Err(e);
            }
            let it: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(it)
        })
    }
}

/// The reqwest client used for HTTP transfers: policy-checked DNS and redirects.
pub(crate) fn http_client(policy: AddressPolicy) -> Result<reqwest::Client, TransferError> {
    let redirect = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= 5 {
            return attempt.error("too many redirects");
        }
        let ip = match attempt.url().host() {
            Some(url::Host::Ipv4(a)) => Some(IpAddr::from(a)),
            Some(url::Host::Ipv6(a)) => Some(IpAddr::from(a)),
            _ => None,
        };
        match ip {
            Some(ip) if !policy.allows(ip) => {
                attempt.error(TransferError::ForbiddenAddress(ip.to_string()))
            }
            _ => attempt.follow(),
        }
    });
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(redirect)
        .connect_timeout(std::time::Duration::from_secs(30))
        .build()
        .map_err(TransferError::HttpClient)
}
