//! Announcements: telling indexers that a provider's chain has a new head, with an HTTP
//! `PUT /announce` of the message go-libipni's `httpsender` sends, and the retry pace.

use std::time::Duration;

use base64::Engine;
use cid::Cid;
use libp2p::{Multiaddr, PeerId, multiaddr::Protocol};
use serde::Serialize;
use url::Url;

use crate::IpniError;

/// Longest wait between two attempts at a failing announcement.
pub const MAX_ANNOUNCE_BACKOFF: Duration = Duration::from_secs(600);

/// The announce message: the head, and where to fetch it (multiaddrs ending in our `/p2p`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    /// The new head.
    pub head: Cid,
    /// Publisher multiaddrs, each with `/p2p/<provider>` appended.
    pub addrs: Vec<Multiaddr>,
}

impl Announcement {
    /// An announcement of `head` of `provider` published at `publisher` addresses.
    pub fn new(head: Cid, provider: PeerId, publisher: &[Multiaddr]) -> Self {
        let addrs = publisher
            .iter()
            .map(|a| {
                let mut a = a.clone();
                if !matches!(a.iter().last(), Some(Protocol::P2p(_))) {
                    a.push(Protocol::P2p(provider));
                }
                a
            })
            .collect();
        Self { head, addrs }
    }

    /// The JSON body (`{"Cid": {"/": …}, "Addrs": [base64 multiaddr bytes]}`), the form the
    /// indexer's `/announce` reads when the content type is JSON.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Link {
            #[serde(rename = "/")]
            cid: String,
        }
        #[derive(Serialize)]
        struct Message {
            #[serde(rename = "Cid")]
            cid: Link,
            #[serde(rename = "Addrs")]
            addrs: Vec<String>,
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        serde_json::to_vec(&Message {
            cid: Link {
                cid: self.head.to_string(),
            },
            addrs: self.addrs.iter().map(|a| b64.encode(a.to_vec())).collect(),
        })
        .expect("strings serialise")
    }
}

/// Sends `announcement` to one indexer's announce URL.
pub async fn send(
    http: &reqwest::Client,
    url: &Url,
    announcement: &Announcement,
) -> Result<(), IpniError> {
    let err = |message: String| IpniError::Indexer {
        url: url.to_string(),
        message,
    };
    let resp = http
        .put(url.clone())
        .header("Content-Type", "application/json")
        .body(announcement.to_json())
        .send()
        .await
        .map_err(|e| err(e.to_string()))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(());
    }
    let body = crate::ingest::read_limited(resp, 4 << 10)
        .await
        .unwrap_or_default();
    Err(err(format!(
        "{status}: {}",
        String::from_utf8_lossy(&body).trim()
    )))
}

/// How long to wait before attempt `attempts + 1` of a failing announcement: doubling from
/// one second, at most [`MAX_ANNOUNCE_BACKOFF`].
pub fn retry_after(attempts: u32) -> Duration {
    Duration::from_secs(1u64 << attempts.min(16)).min(MAX_ANNOUNCE_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_carries_p2p_addresses() {
        let peer = PeerId::random();
        let head = crate::schema::no_entries();
        let a = Announcement::new(head, peer, &["/ip4/127.0.0.1/tcp/80/http".parse().unwrap()]);
        assert_eq!(
            a.addrs[0].to_string(),
            format!("/ip4/127.0.0.1/tcp/80/http/p2p/{peer}")
        );
        let v: serde_json::Value = serde_json::from_slice(&a.to_json()).unwrap();
        assert_eq!(v["Cid"]["/"], head.to_string());
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v["Addrs"][0].as_str().unwrap())
            .unwrap();
        assert_eq!(Multiaddr::try_from(bytes).unwrap(), a.addrs[0]);
    }

    #[test]
    fn backoff_doubles_to_a_cap() {
        assert_eq!(retry_after(0), Duration::from_secs(1));
        assert_eq!(retry_after(3), Duration::from_secs(8));
        assert_eq!(retry_after(40), MAX_ANNOUNCE_BACKOFF);
    }
}
