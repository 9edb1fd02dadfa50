//! The IPNI ingest schema (go-libipni `ingest/schema`): advertisements and entry chunks, as
//! DAG-JSON blocks addressed by CIDv1 sha2-256 (the link prototype indexers expect).
//!
//! Fields are declared in lexical order of their schema names because DAG-JSON writes map
//! keys sorted, as go-ipld-prime does: the bytes we hash are the bytes a Go publisher would
//! hash for the same ad.

use cid::Cid;
use multihash::Multihash;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

use crate::IpniError;

/// The DAG-JSON multicodec.
pub const DAG_JSON: u64 = 0x0129;
/// The raw multicodec.
const RAW: u64 = 0x55;
/// The sha2-256 multihash code.
pub const SHA2_256: u64 = 0x12;

/// Longest context id an indexer accepts (go-libipni `MaxContextIDLen`).
pub const MAX_CONTEXT_ID_LEN: usize = 64;
/// Longest metadata an indexer accepts (go-libipni `MaxMetadataLen`).
pub const MAX_METADATA_LEN: usize = 1024;
/// Multihashes per entry chunk, as Boost and Curio cut them.
pub const ENTRIES_PER_CHUNK: usize = 16_384;
/// Largest block this crate decodes: a full chunk of 16,384 multihashes of up to 64 bytes in
/// DAG-JSON is under 2 MiB.
pub const MAX_BLOCK_LEN: usize = 4 << 20;

/// An advertisement: `Entries` are available from `Provider` at `Addresses` under
/// `ContextID`, by the transports in `Metadata`; or, with `IsRm`, no longer are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Advertisement {
    /// Multiaddrs (text) the content is retrievable from.
    #[serde(rename = "Addresses")]
    pub addresses: Vec<String>,
    /// Groups the entries; a later ad with the same id updates or removes them.
    #[serde(rename = "ContextID", with = "serde_bytes")]
    pub context_id: Vec<u8>,
    /// The first entry chunk, or [`no_entries`] for a removal or a metadata update.
    #[serde(rename = "Entries")]
    pub entries: Cid,
    /// Whether this ad removes the context's entries.
    #[serde(rename = "IsRm")]
    pub is_rm: bool,
    /// Transports, each a varint code and its payload ([`crate::metadata`]).
    #[serde(rename = "Metadata", with = "serde_bytes")]
    pub metadata: Vec<u8>,
    /// The previous ad of the chain, absent on the first.
    #[serde(
        rename = "PreviousID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_id: Option<Cid>,
    /// The provider's libp2p peer id (text).
    #[serde(rename = "Provider")]
    pub provider: String,
    /// A libp2p signed envelope over [`crate::sign::signature_payload`].
    #[serde(rename = "Signature", with = "serde_bytes")]
    pub signature: Vec<u8>,
}

impl Advertisement {
    /// An unsigned ad (sign it with [`crate::sign::sign_ad`]).
    pub fn new(
        previous_id: Option<Cid>,
        provider: String,
        addresses: Vec<String>,
        entries: Cid,
        context_id: Vec<u8>,
        metadata: Vec<u8>,
        is_rm: bool,
    ) -> Self {
        Self {
            addresses,
            context_id,
            entries,
            is_rm,
            metadata,
            previous_id,
            provider,
            signature: Vec::new(),
        }
    }

    /// The limits an indexer enforces, checked before we sign.
    pub fn validate(&self) -> Result<(), IpniError> {
        if self.context_id.len() > MAX_CONTEXT_ID_LEN {
            return Err(IpniError::Invalid(format!(
                "context id of {} bytes (at most {MAX_CONTEXT_ID_LEN})",
                self.context_id.len()
            )));
        }
        if self.metadata.len() > MAX_METADATA_LEN {
            return Err(IpniError::Invalid(format!(
                "metadata of {} bytes (at most {MAX_METADATA_LEN})",
                self.metadata.len()
            )));
        }
        Ok(())
    }
}

/// One link of an ad's chain of multihashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct EntryChunk {
    /// Multihashes (bytes).
    #[serde(rename = "Entries")]
    pub entries: Vec<ByteBuf>,
    /// The next chunk, absent on the last.
    #[serde(rename = "Next", default, skip_serializing_if = "Option::is_none")]
    pub next: Option<Cid>,
}

impl EntryChunk {
    /// A chunk of `entries` linking to `next`.
    pub fn new(entries: Vec<ByteBuf>, next: Option<Cid>) -> Self {
        Self { entries, next }
    }
}

/// An encoded block and its CID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// CIDv1, DAG-JSON, sha2-256 of `data`.
    pub cid: Cid,
    /// The DAG-JSON bytes served to indexers.
    pub data: Vec<u8>,
}

/// Encodes `value` as a DAG-JSON block.
pub fn encode<T: Serialize>(value: &T) -> Result<Block, IpniError> {
    let data = serde_ipld_dagjson::to_vec(value).map_err(|e| IpniError::Encode(e.to_string()))?;
    Ok(Block {
        cid: dag_json_cid(&data),
        data,
    })
}

/// The CID of DAG-JSON bytes.
pub fn dag_json_cid(data: &[u8]) -> Cid {
    Cid::new_v1(DAG_JSON, sha256_multihash(data))
}

fn sha256_multihash(data: &[u8]) -> Multihash<64> {
    Multihash::wrap(SHA2_256, &Sha256::digest(data)).expect("a 32-byte digest fits")
}

/// The link an ad carries when it has no entries (removals, metadata updates): the raw CID
/// of a 16-byte sha2-256 of nothing, as go-libipni defines `NoEntries`.
pub fn no_entries() -> Cid {
    let digest = Sha256::digest([]);
    let mh = Multihash::<64>::wrap(SHA2_256, &digest[..16]).expect("16 bytes fit");
    Cid::new_v1(RAW, mh)
}

/// Decodes an advertisement block, checking its size first and its CID when given.
pub fn decode_ad(data: &[u8], cid: Option<&Cid>) -> Result<Advertisement, IpniError> {
    let ad: Advertisement = decode(data, cid)?;
    ad.validate()?;
    Ok(ad)
}

/// Decodes an entry chunk block, checking its size first and its CID when given.
pub fn decode_chunk(data: &[u8], cid: Option<&Cid>) -> Result<EntryChunk, IpniError> {
    let chunk: EntryChunk = decode(data, cid)?;
    if chunk.entries.len() > ENTRIES_PER_CHUNK * 4 {
        return Err(IpniError::Invalid(format!(
            "entry chunk of {} multihashes",
            chunk.entries.len()
        )));
    }
    Ok(chunk)
}

fn decode<T: serde::de::DeserializeOwned>(data: &[u8], cid: Option<&Cid>) -> Result<T, IpniError> {
    if data.len() > MAX_BLOCK_LEN {
        return Err(IpniError::Invalid(format!(
            "block of {} bytes (at most {MAX_BLOCK_LEN})",
            data.len()
        )));
    }
    if let Some(cid) = cid {
        let expect = match cid.hash().code() {
            SHA2_256 => sha256_multihash(data),
            code => {
                return Err(IpniError::Invalid(format!(
                    "block hashed with code {code:#x}"
                )));
            }
        };
        if expect.digest() != cid.hash().digest() {
            return Err(IpniError::Invalid(format!("block does not hash to {cid}")));
        }
    }
    serde_ipld_dagjson::from_slice(data).map_err(|e| IpniError::Decode(e.to_string()))
}

/// Cuts `multihashes` (sorted and deduplicated here, as Curio does, so the same piece always
/// gives the same chunks) into a chain of entry chunks. Returns the link for the ad (the
/// first chunk, or [`no_entries`] when there are none) and the blocks to serve.
pub fn entry_chunks(
    mut multihashes: Vec<Vec<u8>>,
    per_chunk: usize,
) -> Result<(Cid, Vec<Block>), IpniError> {
    multihashes.sort_unstable();
    multihashes.dedup();
    if multihashes.is_empty() {
        return Ok((no_entries(), Vec::new()));
    }
    let per_chunk = per_chunk.max(1);
    let mut blocks = Vec::with_capacity(multihashes.len().div_ceil(per_chunk));
    let mut next = None;
    // Built from the last chunk back, since each links to the one after it.
    for part in multihashes.chunks(per_chunk).rev() {
        let chunk = EntryChunk {
            entries: part.iter().map(|m| ByteBuf::from(m.clone())).collect(),
            next,
        };
        let block = encode(&chunk)?;
        next = Some(block.cid);
        blocks.push(block);
    }
    blocks.reverse();
    Ok((next.expect("at least one chunk"), blocks))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_entries_is_golibipnis() {
        // go-libipni: cid.NewCidV1(cid.Raw, multihash.Sum(nil, SHA2_256, 16)).
        assert_eq!(
            no_entries().to_string(),
            "bafkreehdwdcefgh4dqkjv67uzcmw7oje"
        );
    }

    #[test]
    fn ad_round_trips_with_sorted_keys() {
        let ad = Advertisement::new(
            None,
            "12D3KooWQawafUswwQUzm2J8hGFNoAyF4YdQqbjnrDP8oNAxobu7".into(),
            vec!["/ip4/127.0.0.1/tcp/80/http".into()],
            no_entries(),
            vec![1, 2],
            vec![0xa0, 0x12, 0],
            true,
        );
        let block = encode(&ad).unwrap();
        let text = std::str::from_utf8(&block.data).unwrap();
        let keys: Vec<usize> = [
            "Addresses",
            "ContextID",
            "Entries",
            "IsRm",
            "Metadata",
            "Provider",
            "Signature",
        ]
        .iter()
        .map(|k| text.find(&format!("\"{k}\"")).unwrap())
        .collect();
        assert!(keys.windows(2).all(|w| w[0] < w[1]), "{text}");
        assert!(!text.contains("PreviousID"), "{text}");
        assert!(
            text.contains(r#""ContextID":{"/":{"bytes":"AQI"}}"#),
            "{text}"
        );
        assert_eq!(decode_ad(&block.data, Some(&block.cid)).unwrap(), ad);
        let mut bad = block.data.clone();
        bad[3] ^= 1;
        assert!(decode_ad(&bad, Some(&block.cid)).is_err());
    }

    #[test]
    fn chunks_link_in_order_and_cover_every_multihash() {
        let mhs: Vec<Vec<u8>> = (0..10u8).rev().map(|i| vec![0x12, 1, i]).collect();
        let (first, blocks) = entry_chunks(mhs.clone(), 4).unwrap();
        assert_eq!(blocks.len(), 3);
        assert_eq!(first, blocks[0].cid);
        let mut seen = Vec::new();
        let mut at = Some(first);
        for b in &blocks {
            assert_eq!(at, Some(b.cid));
            let c = decode_chunk(&b.data, Some(&b.cid)).unwrap();
            seen.extend(c.entries.iter().map(|e| e.to_vec()));
            at = c.next;
        }
        assert_eq!(at, None);
        let mut want = mhs;
        want.sort();
        assert_eq!(seen, want);
        assert_eq!(entry_chunks(Vec::new(), 4).unwrap().0, no_entries());
    }
}
