//! Byte-for-byte agreement with go-libipni (what storetheindex, Boost and index-provider
//! run): the vectors in `golibipni.json` were printed by `tests/golibipni/main.go` from a
//! fixed Ed25519 seed; Ed25519 and the libp2p envelope are deterministic, so the same inputs
//! must give the same blocks, CIDs and signatures here.

use cid::Cid;
use libp2p::identity::Keypair;
use market_ipni::metadata::{self, Transport};
use market_ipni::schema::{self, Advertisement, EntryChunk, no_entries};
use market_ipni::sign::{SignedHead, sign_ad, verify_ad};
use serde_bytes::ByteBuf;
use sha2::{Digest, Sha256};

fn vectors() -> serde_json::Value {
    serde_json::from_str(include_str!("golibipni.json")).unwrap()
}

fn key(v: &serde_json::Value) -> Keypair {
    let mut seed = hex::decode(v["seed"].as_str().unwrap()).unwrap();
    Keypair::ed25519_from_bytes(&mut seed).unwrap()
}

fn s<'a>(v: &'a serde_json::Value, k: &str) -> &'a str {
    v[k].as_str().unwrap()
}

#[test]
fn entry_chunk_ad_removal_and_head_match_golibipni() {
    let v = vectors();
    let key = key(&v);
    assert_eq!(key.public().to_peer_id().to_string(), s(&v, "peer_id"));
    assert_eq!(no_entries().to_string(), s(&v, "no_entries"));
    let md = metadata::encode(&[Transport::IpfsGatewayHttp, Transport::FilecoinPieceHttp]);
    assert_eq!(hex::encode(&md), s(&v, "metadata"));

    let mhs: Vec<ByteBuf> = ["a", "b", "c"]
        .iter()
        .map(|x| {
            let mut m = vec![0x12, 0x20];
            m.extend_from_slice(&Sha256::digest(x.as_bytes()));
            ByteBuf::from(m)
        })
        .collect();
    let chunk = schema::encode(&EntryChunk::new(mhs, None)).unwrap();
    assert_eq!(std::str::from_utf8(&chunk.data).unwrap(), s(&v, "chunk"));
    assert_eq!(chunk.cid.to_string(), s(&v, "chunk_cid"));

    let addrs = vec!["/ip4/127.0.0.1/tcp/3104/http".to_string()];
    let peer = key.public().to_peer_id().to_string();
    let mut ad = Advertisement::new(
        None,
        peer.clone(),
        addrs.clone(),
        chunk.cid,
        vec![0x82, 1, 2],
        md,
        false,
    );
    let block = sign_ad(&mut ad, &key).unwrap();
    assert_eq!(std::str::from_utf8(&block.data).unwrap(), s(&v, "ad"));
    assert_eq!(block.cid.to_string(), s(&v, "ad_cid"));

    let mut rm = Advertisement::new(
        Some(block.cid),
        peer,
        addrs,
        no_entries(),
        vec![0x82, 1, 2],
        Vec::new(),
        true,
    );
    let rm_block = sign_ad(&mut rm, &key).unwrap();
    assert_eq!(std::str::from_utf8(&rm_block.data).unwrap(), s(&v, "rm"));
    assert_eq!(rm_block.cid.to_string(), s(&v, "rm_cid"));

    let head =
        SignedHead::sign(rm_block.cid, Some("/indexer/ingest/mainnet".into()), &key).unwrap();
    assert_eq!(
        std::str::from_utf8(&head.encode().unwrap()).unwrap(),
        s(&v, "head")
    );
}

#[test]
fn golibipni_blocks_decode_and_verify_here() {
    let v = vectors();
    let cid: Cid = s(&v, "ad_cid").parse().unwrap();
    let ad = schema::decode_ad(s(&v, "ad").as_bytes(), Some(&cid)).unwrap();
    assert_eq!(verify_ad(&ad).unwrap().to_string(), s(&v, "peer_id"));
    let rm_cid: Cid = s(&v, "rm_cid").parse().unwrap();
    let rm = schema::decode_ad(s(&v, "rm").as_bytes(), Some(&rm_cid)).unwrap();
    assert!(rm.is_rm);
    assert_eq!(rm.previous_id, Some(cid));
    verify_ad(&rm).unwrap();
    let chunk_cid: Cid = s(&v, "chunk_cid").parse().unwrap();
    let chunk = schema::decode_chunk(s(&v, "chunk").as_bytes(), Some(&chunk_cid)).unwrap();
    assert_eq!(chunk.entries.len(), 3);
    let (head, signer) = SignedHead::decode_verified(s(&v, "head").as_bytes()).unwrap();
    assert_eq!(head.head, rm_cid);
    assert_eq!(signer.to_string(), s(&v, "peer_id"));
}
