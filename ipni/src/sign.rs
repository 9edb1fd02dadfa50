//! Signatures: an ad is signed inside a libp2p signed envelope (domain `indexer`, payload
//! type `/indexer/ingest/adSignature`) over a sha2-256 multihash of its fields; the head a
//! publisher serves is signed with the same key over the head CID and the topic.

use cid::Cid;
use libp2p::core::SignedEnvelope;
use libp2p::identity::{Keypair, PeerId, PublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::IpniError;
use crate::schema::{self, Advertisement, Block, SHA2_256};

/// The envelope's domain for ad signatures.
pub const AD_SIGNATURE_DOMAIN: &str = "indexer";
/// The envelope's payload type for ad signatures.
pub const AD_SIGNATURE_CODEC: &[u8] = b"/indexer/ingest/adSignature";

/// What an ad's signature covers: the sha2-256 multihash of previous id, entries link,
/// provider, addresses, metadata and the removal flag, concatenated. The context id is not
/// covered, as in go-libipni.
pub fn signature_payload(ad: &Advertisement) -> Vec<u8> {
    let mut h = Sha256::new();
    if let Some(prev) = &ad.previous_id {
        h.update(prev.to_bytes());
    }
    h.update(ad.entries.to_bytes());
    h.update(ad.provider.as_bytes());
    for a in &ad.addresses {
        h.update(a.as_bytes());
    }
    h.update(&ad.metadata);
    h.update([u8::from(ad.is_rm)]);
    let digest = h.finalize();
    let mut out = Vec::with_capacity(34);
    out.push(SHA2_256 as u8);
    out.push(32);
    out.extend_from_slice(&digest);
    out
}

/// Signs `ad` with `key` (which must be the provider's) and returns its block.
pub fn sign_ad(ad: &mut Advertisement, key: &Keypair) -> Result<Block, IpniError> {
    ad.validate()?;
    let envelope = SignedEnvelope::new(
        key,
        AD_SIGNATURE_DOMAIN.to_string(),
        AD_SIGNATURE_CODEC.to_vec(),
        signature_payload(ad),
    )
    .map_err(|e| IpniError::Sign(e.to_string()))?;
    ad.signature = envelope.into_protobuf_encoding();
    schema::encode(ad)
}

/// Checks an ad's signature and returns the signer, which the caller compares with the
/// provider (a publisher may sign for others only with extended providers, which we do not
/// write).
pub fn verify_ad(ad: &Advertisement) -> Result<PeerId, IpniError> {
    let envelope = SignedEnvelope::from_protobuf_encoding(&ad.signature)
        .map_err(|e| IpniError::BadSignature(format!("envelope: {e}")))?;
    let (payload, key) = envelope
        .payload_and_signing_key(AD_SIGNATURE_DOMAIN.to_string(), AD_SIGNATURE_CODEC)
        .map_err(|e| IpniError::BadSignature(e.to_string()))?;
    if payload != signature_payload(ad).as_slice() {
        return Err(IpniError::BadSignature(
            "the signature covers other fields".into(),
        ));
    }
    Ok(key.to_peer_id())
}

/// The head of a chain as a publisher serves it (`GET /ipni/v1/ad/head`), DAG-JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SignedHead {
    /// The newest ad.
    pub head: Cid,
    /// The signer's public key, libp2p protobuf encoding.
    #[serde(with = "serde_bytes")]
    pub pubkey: Vec<u8>,
    /// Signature over the head CID's bytes followed by the topic.
    #[serde(with = "serde_bytes")]
    pub sig: Vec<u8>,
    /// The gossipsub topic the chain belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
}

impl SignedHead {
    /// Signs `head` for `topic`.
    pub fn sign(head: Cid, topic: Option<String>, key: &Keypair) -> Result<Self, IpniError> {
        let sig = key
            .sign(&head_payload(&head, topic.as_deref()))
            .map_err(|e| IpniError::Sign(e.to_string()))?;
        Ok(Self {
            head,
            pubkey: key.public().encode_protobuf(),
            sig,
            topic,
        })
    }

    /// The DAG-JSON bytes served.
    pub fn encode(&self) -> Result<Vec<u8>, IpniError> {
        serde_ipld_dagjson::to_vec(self).map_err(|e| IpniError::Encode(e.to_string()))
    }

    /// Decodes (at most 8 KiB) and verifies a signed head; returns it and the signer.
    pub fn decode_verified(data: &[u8]) -> Result<(Self, PeerId), IpniError> {
        if data.len() > 8 << 10 {
            return Err(IpniError::Invalid(format!("head of {} bytes", data.len())));
        }
        let head: Self =
            serde_ipld_dagjson::from_slice(data).map_err(|e| IpniError::Decode(e.to_string()))?;
        let key = PublicKey::try_decode_protobuf(&head.pubkey)
            .map_err(|e| IpniError::BadSignature(format!("public key: {e}")))?;
        if !key.verify(&head_payload(&head.head, head.topic.as_deref()), &head.sig) {
            return Err(IpniError::BadSignature("head signature".into()));
        }
        let signer = key.to_peer_id();
        Ok((head, signer))
    }
}

fn head_payload(head: &Cid, topic: Option<&str>) -> Vec<u8> {
    let mut out = head.to_bytes();
    out.extend_from_slice(topic.unwrap_or_default().as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::no_entries;

    #[test]
    fn signed_ads_verify_and_tampering_is_caught() {
        let key = Keypair::generate_ed25519();
        let mut ad = Advertisement::new(
            None,
            key.public().to_peer_id().to_string(),
            vec!["/ip4/127.0.0.1/tcp/80/http".into()],
            no_entries(),
            vec![7],
            vec![0xa0, 0x12, 0],
            false,
        );
        sign_ad(&mut ad, &key).unwrap();
        assert_eq!(verify_ad(&ad).unwrap(), key.public().to_peer_id());
        let mut other = ad.clone();
        other.addresses.push("/ip4/10.0.0.1/tcp/80/http".into());
        assert!(matches!(verify_ad(&other), Err(IpniError::BadSignature(_))));
        let mut garbage = ad.clone();
        garbage.signature = vec![1, 2, 3];
        assert!(verify_ad(&garbage).is_err());
    }

    #[test]
    fn heads_verify() {
        let key = Keypair::generate_ed25519();
        let head =
            SignedHead::sign(no_entries(), Some("/indexer/ingest/mainnet".into()), &key).unwrap();
        let bytes = head.encode().unwrap();
        let (back, signer) = SignedHead::decode_verified(&bytes).unwrap();
        assert_eq!(back, head);
        assert_eq!(signer, key.public().to_peer_id());
        let mut forged = head.clone();
        forged.topic = Some("/indexer/ingest/other".into());
        assert!(SignedHead::decode_verified(&forged.encode().unwrap()).is_err());
    }
}
