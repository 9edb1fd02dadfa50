//! A bad-bits denylist for the HTTP server (FRC-0066 asks a piece gateway to refuse
//! denylisted content with 451): lists in the badbits format (a JSON array of
//! `{"anchor": hex}` entries, each anchor the SHA-256 of a base32 CIDv1 followed by `/`, a
//! CIDv0 taken as its dag-pb CIDv1), loaded from files or URLs and refreshed, swapped in
//! whole. Until the first load the server answers 503: serving denied content because the
//! list was late would defeat it.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use market_core::Cid;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Largest list read (the public badbits list is a few tens of MB).
pub const MAX_LIST_LEN: usize = 512 << 20;

/// The DAG-PB multicodec.
const DAG_PB: u64 = 0x70;

/// Why a list could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DenylistError {
    /// Not a JSON array of anchors.
    #[error("denylist {source_name}: {message}")]
    Invalid {
        /// The file or URL.
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// The file or URL could not be read.
    #[error("denylist {source_name}: {message}")]
    Unreachable {
        /// The file or URL.
        source_name: String,
        /// Why.
        message: String,
    },
}

/// What the list says about a CID.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// Not listed.
    Allowed,
    /// Listed: answer 451.
    Denied,
    /// No list loaded yet: answer 503.
    NotLoaded,
}

/// A set of anchors.
type Anchors = Arc<HashSet<[u8; 32]>>;

/// The anchors in force, shared by the server and the refresher.
#[derive(Debug, Clone, Default)]
pub struct Denylist {
    anchors: Arc<RwLock<Option<Anchors>>>,
}

impl Denylist {
    /// A list not loaded yet (everything is [`Verdict::NotLoaded`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// A list holding `anchors`.
    pub fn with_anchors(anchors: HashSet<[u8; 32]>) -> Self {
        let l = Self::new();
        l.replace(anchors);
        l
    }

    /// Swaps in a new set of anchors.
    pub fn replace(&self, anchors: HashSet<[u8; 32]>) {
        *self.anchors.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(anchors));
    }

    /// How many anchors are in force, `None` before the first load.
    pub fn anchor_count(&self) -> Option<usize> {
        self.current().map(|a| a.len())
    }

    fn current(&self) -> Option<Anchors> {
        self.anchors
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether any of `cids` is listed.
    pub fn check(&self, cids: &[&Cid]) -> Verdict {
        let Some(set) = self.current() else {
            return Verdict::NotLoaded;
        };
        if cids.iter().any(|c| set.contains(&anchor(c))) {
            Verdict::Denied
        } else {
            Verdict::Allowed
        }
    }

    /// Loads every source and swaps in their union; on any failure the anchors in force
    /// stay. Returns how many anchors are in force.
    pub async fn load(
        &self,
        http: &reqwest::Client,
        sources: &[String],
    ) -> Result<usize, DenylistError> {
        let mut all = HashSet::new();
        for s in sources {
            let data = fetch(http, s).await?;
            let (set, skipped) = parse(&data).map_err(|message| DenylistError::Invalid {
                source_name: s.clone(),
                message,
            })?;
            if skipped > 0 {
                tracing::warn!(source = %s, skipped, "denylist entries that are not anchors");
            }
            all.extend(set);
        }
        let n = all.len();
        self.replace(all);
        Ok(n)
    }

    /// Loads `sources` now and every `every` until the task is aborted, retrying a failed
    /// first load every 30 s.
    pub fn spawn_refresh(
        &self,
        sources: Vec<String>,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let list = self.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            loop {
                let wait = match list.load(&http, &sources).await {
                    Ok(n) => {
                        tracing::info!(anchors = n, "denylist loaded");
                        every
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "denylist not refreshed");
                        if list.anchor_count().is_none() {
                            Duration::from_secs(30).min(every)
                        } else {
                            every
                        }
                    }
                };
                tokio::time::sleep(wait).await;
            }
        })
    }
}

/// The anchor of a CID: SHA-256 of its base32 CIDv1 text and `/`.
pub fn anchor(cid: &Cid) -> [u8; 32] {
    let v1 = if cid.version() == cid::Version::V0 {
        Cid::new_v1(DAG_PB, *cid.hash())
    } else {
        *cid
    };
    let mut h = Sha256::new();
    h.update(v1.to_string().as_bytes());
    h.update(b"/");
    h.finalize().into()
}

/// Parses a badbits list; returns the anchors and how many entries were not anchors.
pub fn parse(data: &[u8]) -> Result<(HashSet<[u8; 32]>, usize), String> {
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        anchor: Option<String>,
    }
    if data.len() > MAX_LIST_LEN {
        return Err(format!(
            "list of {} bytes (at most {MAX_LIST_LEN})",
            data.len()
        ));
    }
    let entries: Vec<Entry> = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    let mut set = HashSet::with_capacity(entries.len());
    let mut skipped = 0;
    for e in entries {
        let mut a = [0u8; 32];
        match e.anchor.map(|s| hex::decode_to_slice(s.trim(), &mut a)) {
            Some(Ok(())) => {
                set.insert(a);
            }
            _ => skipped += 1,
        }
    }
    Ok((set, skipped))
}

async fn fetch(http: &reqwest::Client, source: &str) -> Result<Vec<u8>, DenylistError> {
    let err = |message: String| DenylistError::Unreachable {
        source_name: source.to_string(),
        message,
    };
    if source.starts_with("http://") || source.starts_with("https://") {
        let mut resp = http
            .get(source)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|e| err(e.to_string()))?;
        let mut out = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| err(e.to_string()))? {
            if out.len() + chunk.len() > MAX_LIST_LEN {
                return Err(err(format!("over {MAX_LIST_LEN} bytes")));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    } else {
        let meta = tokio::fs::metadata(source)
            .await
            .map_err(|e| err(e.to_string()))?;
        if meta.len() > MAX_LIST_LEN as u64 {
            return Err(err(format!("over {MAX_LIST_LEN} bytes")));
        }
        tokio::fs::read(source)
            .await
            .map_err(|e| err(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    #[test]
    fn anchors_take_v0_as_dag_pb_v1() {
        let v0 = Cid::from_str("QmbWqxBEKC3P8tqsKc98xmWNzrzDtRLMiMPL8wBuTGsMnR").unwrap();
        let v1 = Cid::new_v1(DAG_PB, *v0.hash());
        assert_eq!(anchor(&v0), anchor(&v1));
        let want: [u8; 32] = Sha256::digest(format!("{v1}/").as_bytes()).into();
        assert_eq!(anchor(&v1), want);
        let json = format!(
            r#"[{{"anchor":"{}"}},{{"anchor":"zz"}},{{"other":1}}]"#,
            hex::encode(want)
        );
        let (set, skipped) = parse(json.as_bytes()).unwrap();
        assert_eq!((set.len(), skipped), (1, 2));
        let list = Denylist::new();
        assert_eq!(list.check(&[&v0]), Verdict::NotLoaded);
        list.replace(set);
        assert_eq!(list.check(&[&v0]), Verdict::Denied);
        let other = Cid::new_v1(0x55, *v0.hash());
        assert_eq!(list.check(&[&other]), Verdict::Allowed);
        assert!(parse(b"{").is_err());
    }
}
