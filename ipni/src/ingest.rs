//! Ingest confirmation: after an announcement, ask the indexer whether it has processed the
//! ad (`GET /sync/status/ad/{cid}` on its ingest API), or, where it has no such endpoint,
//! whether a find for one advertised multihash names us. Checks back off from 5 s to 10 min,
//! so a piece that is slow to index does not hammer the indexer, and a find is never sent
//! before the status endpoint has been tried (early finds poison an indexer's negative cache).

use std::time::Duration;

use cid::Cid;
use serde::Deserialize;
use url::Url;

use crate::IpniError;

/// Longest wait between two ingest checks of an ad.
pub const MAX_CHECK_DELAY: Duration = Duration::from_secs(600);
/// Largest answer read from an indexer.
pub const MAX_ANSWER_LEN: usize = 1 << 20;

/// What the indexer says about an ad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdState {
    /// It processed the ad.
    Indexed,
    /// Not yet.
    Pending,
    /// It has no status endpoint.
    Unsupported,
}

/// The wait before check `attempts + 1` of an ad: 5 s doubling, at most [`MAX_CHECK_DELAY`].
pub fn check_delay(attempts: u32) -> Duration {
    Duration::from_secs(5u64 << attempts.min(16)).min(MAX_CHECK_DELAY)
}

/// Whether an ad found unconfirmed at its `checks`-th check makes its head announced again:
/// every third time, since an indexer that lost the announcement, or could not fetch from
/// the instance that made it (dead since), would otherwise wait for the next new ad.
pub fn reannounce_after(checks: u32) -> bool {
    checks > 0 && checks.is_multiple_of(REANNOUNCE_EVERY)
}

const REANNOUNCE_EVERY: u32 = 3;

/// The indexer's ingest API root for an announce URL: the URL without its last segment
/// (`http://host:3001/announce` → `http://host:3001/`, `…/ingest/announce` → `…/ingest/`).
pub fn ingest_base(announce: &Url) -> Url {
    let mut u = announce.clone();
    if let Ok(mut segs) = u.path_segments_mut() {
        segs.pop();
        segs.push("");
    }
    u
}

/// Asks `ingest` (an ingest API root) about `ad`.
pub async fn ad_state(
    http: &reqwest::Client,
    ingest: &Url,
    ad: &Cid,
) -> Result<AdState, IpniError> {
    match get(http, ingest, &format!("sync/status/ad/{ad}")).await? {
        (200, body) => parse_ad_state(&body).map_err(|e| indexer_err(ingest, e.to_string())),
        (404 | 405 | 501, _) => Ok(AdState::Unsupported),
        (s, _) => Err(indexer_err(ingest, format!("status {s}"))),
    }
}

/// Parses the answer of `/sync/status/ad/{cid}`: `{"Ad": "…", "Indexed": bool}`.
pub fn parse_ad_state(body: &[u8]) -> Result<AdState, IpniError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "Indexed")]
        indexed: bool,
    }
    if body.len() > MAX_ANSWER_LEN {
        return Err(IpniError::Invalid(format!(
            "answer of {} bytes",
            body.len()
        )));
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| IpniError::Decode(e.to_string()))?;
    Ok(if a.indexed {
        AdState::Indexed
    } else {
        AdState::Pending
    })
}

/// `GET base/path` for JSON: the status and (for a 200) the body, at most
/// [`MAX_ANSWER_LEN`] bytes.
pub(crate) async fn get(
    http: &reqwest::Client,
    base: &Url,
    path: &str,
) -> Result<(u16, Vec<u8>), IpniError> {
    let url = base
        .join(path)
        .map_err(|e| indexer_err(base, e.to_string()))?;
    let resp = http
        .get(url.clone())
        .header("Accept", "application/json")
        .send()
        .await
        .map_err(|e| indexer_err(&url, e.to_string()))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Ok((status, Vec::new()));
    }
    let body = read_limited(resp, MAX_ANSWER_LEN)
        .await
        .map_err(|e| indexer_err(&url, e))?;
    Ok((status, body))
}

pub(crate) async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if out.len() + chunk.len() > limit {
            return Err(format!("answer over {limit} bytes"));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

pub(crate) fn indexer_err(url: &Url, message: String) -> IpniError {
    IpniError::Indexer {
        url: url.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_third_unconfirmed_check_announces_again() {
        let again: Vec<u32> = (0..10).filter(|c| reannounce_after(*c)).collect();
        assert_eq!(again, vec![3, 6, 9]);
    }

    #[test]
    fn bases_and_answers() {
        let u: Url = "http://127.0.0.1:3001/announce".parse().unwrap();
        assert_eq!(ingest_base(&u).as_str(), "http://127.0.0.1:3001/");
        let u: Url = "https://cid.contact/ingest/announce".parse().unwrap();
        assert_eq!(ingest_base(&u).as_str(), "https://cid.contact/ingest/");
        assert_eq!(
            parse_ad_state(br#"{"Ad":"x","Indexed":true}"#).unwrap(),
            AdState::Indexed
        );
        assert_eq!(
            parse_ad_state(br#"{"Ad":"x","Indexed":false}"#).unwrap(),
            AdState::Pending
        );
        assert!(parse_ad_state(b"[").is_err());
        assert_eq!(check_delay(0), Duration::from_secs(5));
        assert_eq!(check_delay(30), MAX_CHECK_DELAY);
    }
}
