//! SHA-256 of 64-byte tree nodes, specialised for commP.
//!
//! Every internal node of a piece tree is `SHA-256(left ‖ right)` with the two high bits of
//! the digest's last byte cleared. A 64-byte message is two compression blocks, and the
//! second one (the length padding) is the same for every node, so its message schedule plus
//! round constants is computed once at compile time. All nodes of one tree level are
//! independent, which lets the SHA-NI kernel run several nodes interleaved and keep the SHA
//! unit busy while each chain waits on its own latency.

#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
mod avx512;
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
mod x86;

/// SHA-256 round constants.
const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// SHA-256 initial hash value.
const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// `W[t] + K[t]` for the second block of every 64-byte message: `0x80`, zeros, and the
/// message length (512 bits) in the last word.
const PAD_BLOCK_WK: [u32; 64] = pad_block_wk();

const fn small_sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}

const fn small_sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

/// Extends 16 message words to the 64-word schedule and adds the round constants.
const fn schedule_wk(mut w: [u32; 64]) -> [u32; 64] {
    let mut t = 16;
    while t < 64 {
        w[t] = small_sigma1(w[t - 2])
            .wrapping_add(w[t - 7])
            .wrapping_add(small_sigma0(w[t - 15]))
            .wrapping_add(w[t - 16]);
        t += 1;
    }
    let mut t = 0;
    while t < 64 {
        w[t] = w[t].wrapping_add(K[t]);
        t += 1;
    }
    w
}

const fn pad_block_wk() -> [u32; 64] {
    let mut w = [0u32; 64];
    w[0] = 0x8000_0000;
    w[15] = 512;
    schedule_wk(w)
}

/// 64 rounds over a precomputed `W + K`, then the feed-forward addition.
const fn compress_wk(state: [u32; 8], wk: &[u32; 64]) -> [u32; 8] {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = state;
    let mut t = 0;
    while t < 64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(wk[t]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
        t += 1;
    }
    [
        state[0].wrapping_add(a),
        state[1].wrapping_add(b),
        state[2].wrapping_add(c),
        state[3].wrapping_add(d),
        state[4].wrapping_add(e),
        state[5].wrapping_add(f),
        state[6].wrapping_add(g),
        state[7].wrapping_add(h),
    ]
}

/// One tree node with plain Rust: usable in `const` context and on every target.
pub(crate) const fn node_portable(message: &[u8; 64]) -> [u8; 32] {
    let mut w = [0u32; 64];
    let mut i = 0;
    while i < 16 {
        w[i] = u32::from_be_bytes([
            message[4 * i],
            message[4 * i + 1],
            message[4 * i + 2],
            message[4 * i + 3],
        ]);
        i += 1;
    }
    let state = compress_wk(IV, &schedule_wk(w));
    let state = compress_wk(state, &PAD_BLOCK_WK);
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 8 {
        let b = state[i].to_be_bytes();
        out[4 * i] = b[0];
        out[4 * i + 1] = b[1];
        out[4 * i + 2] = b[2];
        out[4 * i + 3] = b[3];
        i += 1;
    }
    out[31] &= 0x3F;
    out
}

/// `node(left, right)`: the parent of two 32-byte nodes.
pub(crate) const fn node_of(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut m = [0u8; 64];
    let mut i = 0;
    while i < 32 {
        m[i] = left[i];
        m[32 + i] = right[i];
        i += 1;
    }
    node_portable(&m)
}

/// Which implementation hashes tree nodes.
///
/// All backends give identical output; [`Backend::detect`] picks the fastest one the CPU
/// supports, and the others stay available for comparison and testing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Backend {
    /// Plain Rust, one node at a time; runs everywhere.
    Portable,
    /// x86 SHA extensions, several independent nodes interleaved.
    ShaNi,
    /// AVX-512, 16 nodes per pass in vector lanes (leftovers go to SHA-NI if present).
    Avx512,
}

impl Backend {
    /// The fastest backend on this CPU, measured once per process and cached: every
    /// supported one hashes the same 256 KiB of node pairs a few times and the quickest
    /// wins (about a millisecond in all). Measuring beats a fixed rule because the order
    /// changes between CPUs: SHA-NI is ahead where its throughput exceeds its latency,
    /// AVX-512 (16 nodes in vector lanes) where it does not.
    pub fn detect() -> Self {
        use std::sync::OnceLock;
        static DETECTED: OnceLock<Backend> = OnceLock::new();
        *DETECTED.get_or_init(|| {
            let candidates: Vec<Backend> = [Backend::ShaNi, Backend::Avx512]
                .into_iter()
                .filter(|b| b.is_supported())
                .collect();
            match candidates.as_slice() {
                [] => Backend::Portable,
                [one] => *one,
                many => fastest(many),
            }
        })
    }

    /// Whether this CPU can run the backend.
    pub fn is_supported(self) -> bool {
        match self {
            Backend::Portable => true,
            #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
            Backend::ShaNi => x86::is_supported(),
            #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
            Backend::Avx512 => avx512::is_supported(),
            #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
            Backend::ShaNi | Backend::Avx512 => false,
        }
    }

    /// Every backend, slowest first.
    pub const ALL: [Backend; 3] = [Backend::Portable, Backend::ShaNi, Backend::Avx512];

    /// Hashes `input[i]` (a `left ‖ right` pair) into `out[i]` for every `i`.
    ///
    /// # Panics
    /// If the slices differ in length, or the backend is not supported by this CPU (a
    /// [`crate::CommP`] only ever holds a supported one).
    pub(crate) fn hash_pairs(self, input: &[[u8; 64]], out: &mut [[u8; 32]]) {
        assert_eq!(input.len(), out.len(), "one output per pair");
        match self {
            Backend::Portable => {
                for (i, o) in input.iter().zip(out.iter_mut()) {
                    *o = node_portable(i);
                }
            }
            #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
            Backend::ShaNi => {
                assert!(
                    x86::is_supported(),
                    "SHA-NI backend used on a CPU without it"
                );
                // SAFETY: the CPU supports the `sha`, `sse2`, `ssse3` and `sse4.1`
                // features the kernel is compiled for (checked just above).
                unsafe { x86::hash_pairs(input, out) }
            }
            #[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
            Backend::Avx512 => {
                assert!(
                    avx512::is_supported(),
                    "AVX-512 backend used on a CPU without it"
                );
                let rest = |i: &[[u8; 64]], o: &mut [[u8; 32]]| {
                    let tail = if x86::is_supported() {
                        Backend::ShaNi
                    } else {
                        Backend::Portable
                    };
                    tail.hash_pairs(i, o)
                };
                // SAFETY: the CPU supports `avx512f` and `avx512bw` (checked just above).
                unsafe { avx512::hash_pairs(input, out, rest) }
            }
            #[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
            Backend::ShaNi | Backend::Avx512 => unreachable!("x86 backend on another target"),
        }
    }
}

/// The backend of `candidates` that hashes a fixed run of pairs fastest (best of 5).
fn fastest(candidates: &[Backend]) -> Backend {
    let input = vec![[0x5au8; 64]; 4096];
    let mut out = vec![[0u8; 32]; 4096];
    let mut best = (candidates[0], std::time::Duration::MAX);
    for &backend in candidates {
        backend.hash_pairs(&input, &mut out); // warm up
        for _ in 0..5 {
            let t = std::time::Instant::now();
            backend.hash_pairs(&input, &mut out);
            let took = t.elapsed();
            if took < best.1 {
                best = (backend, took);
            }
        }
    }
    best.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portable_node_is_trimmed_sha256() {
        use sha2::Digest;
        let mut m = [0u8; 64];
        for (i, b) in m.iter_mut().enumerate() {
            *b = (i * 7 + 3) as u8;
        }
        let mut expected: [u8; 32] = sha2::Sha256::digest(m).into();
        expected[31] &= 0x3F;
        assert_eq!(node_portable(&m), expected);
    }

    #[test]
    fn backends_agree() {
        let mut input = vec![[0u8; 64]; 53];
        let mut x = 0x1234_5678_u32;
        for m in input.iter_mut() {
            for b in m.iter_mut() {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                *b = x as u8;
            }
        }
        let mut expected = vec![[0u8; 32]; input.len()];
        Backend::Portable.hash_pairs(&input, &mut expected);
        for backend in Backend::ALL {
            if !backend.is_supported() {
                continue;
            }
            for n in 0..input.len() {
                let mut out = vec![[0u8; 32]; n];
                backend.hash_pairs(&input[..n], &mut out);
                assert_eq!(out, expected[..n], "{backend:?} with {n} pairs");
            }
        }
    }
}
