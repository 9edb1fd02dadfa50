//! "API info": where a node listens and the token to use, in Lotus's `FULLNODE_API_INFO`
//! form `TOKEN:/ip4/127.0.0.1/tcp/1234/http`, or `TOKEN:http://host:1234`, or a bare
//! address without a token (read-only access on Lotus).

use std::str::FromStr;

use url::Url;

/// A node endpoint and its token.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiInfo {
    /// The JSON-RPC URL (`http://127.0.0.1:1234/rpc/v1`).
    pub url: Url,
    /// The bearer token, if any.
    pub token: Option<String>,
}

impl std::fmt::Debug for ApiInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiInfo")
            .field("url", &self.url.as_str())
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Why an API info string did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("api info {input:?}: {reason}")]
pub struct ApiInfoError {
    input: String,
    reason: String,
}

impl ApiInfo {
    /// Parses `s`; a multiaddr or URL without a path gets `/rpc/<version>` (`v1` for a full
    /// node, `v0` for lotus-miner and the Venus services).
    pub fn parse(s: &str, version: &str) -> Result<Self, ApiInfoError> {
        let err = |reason: &str| ApiInfoError {
            input: redact(s),
            reason: reason.to_string(),
        };
        let s = s.trim();
        let bare = s.starts_with('/')
            || ["http://", "https://", "ws://", "wss://"]
                .iter()
                .any(|p| s.starts_with(p));
        let (token, addr) = match s.split_once(':') {
            Some((t, rest)) if !bare && !t.is_empty() => (Some(t.to_string()), rest),
            _ => (None, s),
        };
        let mut url = if addr.starts_with('/') {
            multiaddr_url(addr).ok_or_else(|| {
                err("not a /ip4|ip6|dns…/tcp/PORT[/http|/https|/ws|/wss] multiaddr")
            })?
        } else {
            Url::parse(addr).map_err(|e| err(&e.to_string()))?
        };
        if !matches!(url.scheme(), "http" | "https" | "ws" | "wss") {
            return Err(err("the scheme must be http, https, ws or wss"));
        }
        // The client speaks HTTP for calls and upgrades to a websocket itself.
        let scheme = match url.scheme() {
            "ws" => Some("http"),
            "wss" => Some("https"),
            _ => None,
        };
        if let Some(scheme) = scheme {
            url.set_scheme(scheme)
                .map_err(|_| err("cannot switch the scheme"))?;
        }
        if url.path() == "/" || url.path().is_empty() {
            url.set_path(&format!("/rpc/{version}"));
        }
        Ok(Self { url, token })
    }
}

impl FromStr for ApiInfo {
    type Err = ApiInfoError;
    fn from_str(s: &str) -> Result<Self, ApiInfoError> {
        Self::parse(s, "v1")
    }
}

fn redact(s: &str) -> String {
    let bare =
        s.starts_with('/') || s.contains("://") && !s.contains(":http") && !s.contains(":ws");
    match s.split_once(':') {
        Some((_, rest)) if !bare => {
            format!("<token>:{}", rest.chars().take(200).collect::<String>())
        }
        _ => s.chars().take(200).collect(),
    }
}

fn multiaddr_url(addr: &str) -> Option<Url> {
    let parts: Vec<&str> = addr.trim_start_matches('/').split('/').collect();
    let (host, rest) = match parts.as_slice() {
        ["ip4" | "dns" | "dns4" | "dns6", h, rest @ ..] => (h.to_string(), rest),
        ["ip6", h, rest @ ..] => (format!("[{h}]"), rest),
        _ => return None,
    };
    let (port, rest) = match rest {
        ["tcp", p, rest @ ..] => (p.parse::<u16>().ok()?, rest),
        _ => return None,
    };
    let scheme = match rest {
        [] | ["http"] | ["ws"] => "http",
        ["https"] | ["wss"] | ["tls", ..] => "https",
        _ => return None,
    };
    Url::parse(&format!("{scheme}://{host}:{port}/")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lotus_forms_parse() {
        let i: ApiInfo = "eyJhbGciOiJIUzI1NiJ9.e30.sig:/ip4/127.0.0.1/tcp/1234/http"
            .parse()
            .unwrap();
        assert_eq!(i.url.as_str(), "http://127.0.0.1:1234/rpc/v1");
        assert_eq!(i.token.as_deref(), Some("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
        let i = ApiInfo::parse("tok:/dns4/node.example/tcp/443/wss", "v0").unwrap();
        assert_eq!(i.url.as_str(), "https://node.example/rpc/v0");
        let i: ApiInfo = "/ip6/::1/tcp/3453".parse().unwrap();
        assert_eq!(i.url.as_str(), "http://[::1]:3453/rpc/v1");
        assert_eq!(i.token, None);
        let i: ApiInfo = "tok:http://10.0.0.2:1234/rpc/v1".parse().unwrap();
        assert_eq!(i.url.as_str(), "http://10.0.0.2:1234/rpc/v1");
        assert_eq!(i.token.as_deref(), Some("tok"));
        let i: ApiInfo = "https://api.node.glif.io".parse().unwrap();
        assert_eq!(i.url.as_str(), "https://api.node.glif.io/rpc/v1");
    }

    #[test]
    fn bad_forms_fail_without_printing_the_token() {
        let e = "secret:/ip4/1.2.3.4/udp/1".parse::<ApiInfo>().unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
        assert!("ftp://x".parse::<ApiInfo>().is_err());
    }
}
