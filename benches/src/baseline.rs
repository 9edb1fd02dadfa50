//! The straightforward commP: fr32 then a tree hashed one node at a time with the `sha2`
//! crate. It is kept as the reference point of the benchmarks (and as an independent
//! implementation to compare results with), not used by the product.

use sha2::{Digest, Sha256};

/// commP root of `payload` zero-padded to the smallest piece, one `Sha256` per node.
pub fn naive_commp(payload: &[u8]) -> [u8; 32] {
    let padded_size = commp::PaddedPieceSize::for_payload(payload.len() as u64)
        .expect("benchmark inputs fit a piece");
    let mut unpadded = payload.to_vec();
    unpadded.resize(padded_size.unpadded().get() as usize, 0);
    let mut level = vec![0u8; padded_size.get() as usize];
    commp::fr32::pad(&unpadded, &mut level).expect("whole blocks");
    drop(unpadded);
    let mut len = level.len();
    while len > 32 {
        for i in 0..len / 64 {
            let mut d: [u8; 32] = Sha256::digest(&level[64 * i..64 * i + 64]).into();
            d[31] &= 0x3F;
            level[32 * i..32 * i + 32].copy_from_slice(&d);
        }
        len /= 2;
    }
    level[..32].try_into().expect("32 bytes")
}

/// Streaming SHA-256 over `data`: the hardware's single-stream hashing rate.
pub fn sha256_stream(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}
