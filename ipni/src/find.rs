//! The indexer's find API, as retrieval clients and ingest checks use it: which providers
//! hold a multihash, at which addresses, over which transports (`GET /cid/{cid}` with
//! `Accept: application/json`; 404 means nobody).

use base64::Engine;
use libp2p::Multiaddr;
use serde::Deserialize;
use url::Url;

use crate::IpniError;
use crate::ingest::{MAX_ANSWER_LEN, get, indexer_err};
use crate::metadata::{self, Transport};

/// One provider record of a find answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderRecord {
    /// The provider's peer id.
    pub provider: String,
    /// Its retrieval multiaddrs.
    pub addrs: Vec<String>,
    /// The ad's context id.
    pub context_id: Vec<u8>,
    /// The ad's metadata.
    pub metadata: Vec<u8>,
}

impl ProviderRecord {
    /// The transports its metadata names; unreadable metadata names none.
    pub fn transports(&self) -> Vec<Transport> {
        metadata::decode(&self.metadata).unwrap_or_default()
    }

    /// Whether it serves `code` (a transport multicodec such as
    /// [`metadata::IPFS_GATEWAY_HTTP`]).
    pub fn serves(&self, code: u64) -> bool {
        self.transports().iter().any(|t| t.code() == code)
    }

    /// Its addresses that parse as multiaddrs.
    pub fn multiaddrs(&self) -> Vec<Multiaddr> {
        self.addrs.iter().filter_map(|a| a.parse().ok()).collect()
    }

    /// The piece of a Filecoin ad (padded size, piece CID), from its FRC context id.
    pub fn piece(&self) -> Option<(u64, cid::Cid)> {
        crate::context::parse_piece_context_id(&self.context_id).ok()
    }
}

/// Finds the providers of `multihash` at `find` (a find API root); none when it answers 404.
pub async fn find(
    http: &reqwest::Client,
    find: &Url,
    multihash: &[u8],
) -> Result<Vec<ProviderRecord>, IpniError> {
    let mh = market_core::cid::Multihash::from_bytes(multihash)
        .map_err(|e| IpniError::Invalid(format!("multihash: {e}")))?;
    let cid = market_core::Cid::new_v1(0x55, mh);
    match get(http, find, &format!("cid/{cid}")).await? {
        (200, body) => parse_find(&body).map_err(|e| indexer_err(find, e.to_string())),
        (404, _) => Ok(Vec::new()),
        (s, _) => Err(indexer_err(find, format!("status {s}"))),
    }
}

/// Parses a find answer (`{"MultihashResults": [{"Multihash", "ProviderResults": [...]}]}`)
/// into its provider records, of every multihash.
pub fn parse_find(body: &[u8]) -> Result<Vec<ProviderRecord>, IpniError> {
    #[derive(Deserialize)]
    struct Answer {
        #[serde(rename = "MultihashResults", default)]
        results: Vec<MhResult>,
    }
    #[derive(Deserialize)]
    struct MhResult {
        #[serde(rename = "ProviderResults", default)]
        providers: Vec<Record>,
    }
    #[derive(Deserialize)]
    struct Record {
        #[serde(rename = "ContextID", default)]
        context_id: Option<String>,
        #[serde(rename = "Metadata", default)]
        metadata: Option<String>,
        #[serde(rename = "Provider")]
        provider: Option<AddrInfo>,
    }
    #[derive(Deserialize)]
    struct AddrInfo {
        #[serde(rename = "ID")]
        id: String,
        #[serde(rename = "Addrs", default)]
        addrs: Option<Vec<String>>,
    }
    if body.len() > MAX_ANSWER_LEN {
        return Err(IpniError::Invalid(format!(
            "answer of {} bytes",
            body.len()
        )));
    }
    let a: Answer = serde_json::from_slice(body).map_err(|e| IpniError::Decode(e.to_string()))?;
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = |s: Option<String>| -> Result<Vec<u8>, IpniError> {
        s.map(|s| b64.decode(s))
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(|e| IpniError::Decode(format!("base64: {e}")))
    };
    let mut out = Vec::new();
    for r in a.results {
        for p in r.providers {
            let Some(info) = p.provider else { continue };
            out.push(ProviderRecord {
                provider: info.id,
                addrs: info.addrs.unwrap_or_default(),
                context_id: bytes(p.context_id)?,
                metadata: bytes(p.metadata)?,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_answers() {
        let recs = parse_find(
            br#"{"MultihashResults":[{"Multihash":"EiA=","ProviderResults":[
            {"ContextID":"AQI=","Metadata":"oBIA","Provider":{"ID":"12D3Koo","Addrs":["/ip4/1.2.3.4/tcp/80/http"]}}]}]}"#,
        )
        .unwrap();
        assert_eq!(recs[0].provider, "12D3Koo");
        assert_eq!(recs[0].context_id, [1, 2]);
        assert_eq!(recs[0].metadata, [0xa0, 0x12, 0]);
        assert!(recs[0].serves(metadata::IPFS_GATEWAY_HTTP));
        assert!(!recs[0].serves(metadata::FILECOIN_PIECE_HTTP));
        assert_eq!(recs[0].multiaddrs().len(), 1);
        assert_eq!(recs[0].piece(), None);
        assert!(
            parse_find(br#"{"MultihashResults":[{"ProviderResults":[{"ContextID":"!!"}]}]}"#)
                .is_ok()
        );
        assert!(parse_find(br#"{"MultihashResults":[{"ProviderResults":[{"ContextID":"!!","Provider":{"ID":"x"}}]}]}"#).is_err());
    }
}
