//! Test payloads: small CARv1 files built by hand.
#![allow(dead_code, unreachable_pub)]

use piecestore::{BlockEntry, Cid};

pub fn varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A raw-codec CID whose digest is the first 32 bytes of `seed` (the indexer does not verify
/// digests, so any distinct digest will do).
pub fn raw_cid(seed: &[u8]) -> Cid {
    let mut digest = [0u8; 32];
    let n = seed.len().min(32);
    digest[..n].copy_from_slice(&seed[..n]);
    digest[31] ^= seed.len() as u8;
    Cid::new_v1(
        0x55,
        cid::multihash::Multihash::wrap(0x12, &digest).unwrap(),
    )
}

/// A CARv1 with `blocks` under one root; returns its bytes and where each block's data is.
pub fn car(blocks: &[Vec<u8>]) -> (Vec<u8>, Vec<BlockEntry>) {
    let mut w = piecestore::CarWriter::new(Vec::new(), &[raw_cid(b"root")]).unwrap();
    let entries = blocks
        .iter()
        .map(|b| w.write_block(&raw_cid(b), b).unwrap())
        .collect();
    (w.finish().unwrap(), entries)
}
