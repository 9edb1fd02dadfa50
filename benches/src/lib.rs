//! Shared input generators and baselines for the workspace's criterion benchmarks.
//!
//! The benchmarks themselves live in `benches/`; run them with
//! `cargo bench -p benches --bench commp`.

pub mod baseline;

/// SplitMix64 bytes (the generator of the spec's benchmark vectors), `len` bytes from `seed`.
pub fn splitmix64_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 8);
    let mut s = seed;
    while out.len() < len {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}
