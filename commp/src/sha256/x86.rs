//! SHA-NI kernel: `LANES` independent nodes per pass.
//!
//! `sha256rnds2` has a latency of several cycles and a single SHA-256 is one long dependency
//! chain, so one stream leaves the SHA unit idle most of the time. Interleaving independent
//! nodes of the same tree level fills those slots. The SHA instructions only address
//! xmm0-xmm15, which bounds the useful number of lanes (each needs two state and four
//! message registers).

#[cfg(target_arch = "x86")]
use core::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

use super::{IV, K, PAD_BLOCK_WK};

/// Nodes hashed per pass. Measured with `cargo bench -p benches --bench commp` on a 32 MiB
/// piece (AMD EPYC vCPU): 2 lanes 673 MiB/s, 3 lanes 716, 4 lanes 718. Three keep the
/// registers of all lanes inside xmm0-xmm15.
pub(super) const LANES: usize = 3;

pub(super) fn is_supported() -> bool {
    std::is_x86_feature_detected!("sha")
        && std::is_x86_feature_detected!("sse2")
        && std::is_x86_feature_detected!("ssse3")
        && std::is_x86_feature_detected!("sse4.1")
}

/// Hashes every pair of `input` into `out`, `LANES` at a time.
///
/// # Safety
/// The CPU must support `sha`, `sse2`, `ssse3` and `sse4.1`; `input` and `out` must have the
/// same length.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub(super) unsafe fn hash_pairs(input: &[[u8; 64]], out: &mut [[u8; 32]]) {
    let (ins, in_rest) = input.as_chunks::<LANES>();
    let (outs, out_rest) = out.as_chunks_mut::<LANES>();
    for (i, o) in ins.iter().zip(outs) {
        nodes::<LANES>(i, o);
    }
    for (i, o) in in_rest.iter().zip(out_rest) {
        nodes::<1>(core::array::from_ref(i), core::array::from_mut(o));
    }
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
#[inline]
fn load(bytes: &[u8; 64], at: usize) -> __m128i {
    let chunk: &[u8; 16] = bytes[at..at + 16].try_into().expect("16 bytes inside 64");
    // SAFETY: `chunk` is 16 readable bytes; `loadu` has no alignment requirement.
    unsafe { _mm_loadu_si128(chunk.as_ptr().cast()) }
}

#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
#[inline]
fn store(out: &mut [u8; 32], at: usize, v: __m128i) {
    let chunk: &mut [u8; 16] = (&mut out[at..at + 16])
        .try_into()
        .expect("16 bytes inside 32");
    // SAFETY: `chunk` is 16 writable bytes; `storeu` has no alignment requirement.
    unsafe { _mm_storeu_si128(chunk.as_mut_ptr().cast(), v) }
}

/// `[w0, w1, w2, w3]` as lanes 0..3.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
#[inline]
fn set4(w: [u32; 4]) -> __m128i {
    _mm_set_epi32(w[3] as i32, w[2] as i32, w[1] as i32, w[0] as i32)
}

/// Runs 4 rounds: the low two dwords of `wk` first, then the high two.
macro_rules! rounds4 {
    ($s0:expr, $s1:expr, $wk_lo:expr, $wk_hi:expr) => {{
        $s1 = _mm_sha256rnds2_epu32($s1, $s0, $wk_lo);
        $s0 = _mm_sha256rnds2_epu32($s0, $s1, $wk_hi);
    }};
}

/// Rounds `4g..4g+4` of the first block for every lane; for `g >= 4` the message words
/// are extended first (`w[g % 4]` holds `W[4g-16..4g]` and becomes `W[4g..4g+4]`).
macro_rules! message_group {
    ($n:expr, $s0:ident, $s1:ident, $w:ident, $g:literal) => {{
        let k = set4([K[4 * $g], K[4 * $g + 1], K[4 * $g + 2], K[4 * $g + 3]]);
        for l in 0..$n {
            if $g >= 4 {
                let t = _mm_add_epi32(
                    _mm_sha256msg1_epu32($w[l][$g % 4], $w[l][($g + 1) % 4]),
                    _mm_alignr_epi8($w[l][($g + 3) % 4], $w[l][($g + 2) % 4], 4),
                );
                $w[l][$g % 4] = _mm_sha256msg2_epu32(t, $w[l][($g + 3) % 4]);
            }
            let wk = _mm_add_epi32($w[l][$g % 4], k);
            rounds4!($s0[l], $s1[l], wk, _mm_shuffle_epi32(wk, 0x0E));
        }
    }};
}

/// Rounds `4g..4g+4` of the constant second block for every lane.
macro_rules! pad_group {
    ($n:expr, $s0:ident, $s1:ident, $g:literal) => {{
        let lo = set4([PAD_BLOCK_WK[4 * $g], PAD_BLOCK_WK[4 * $g + 1], 0, 0]);
        let hi = set4([PAD_BLOCK_WK[4 * $g + 2], PAD_BLOCK_WK[4 * $g + 3], 0, 0]);
        for l in 0..$n {
            rounds4!($s0[l], $s1[l], lo, hi);
        }
    }};
}

/// Hashes `N` independent 64-byte messages.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
#[inline]
fn nodes<const N: usize>(input: &[[u8; 64]; N], out: &mut [[u8; 32]; N]) {
    // Big-endian words within each 32-bit lane.
    let bswap = _mm_set_epi64x(0x0c0d_0e0f_0809_0a0b, 0x0405_0607_0001_0203);

    // The SHA-NI state layout: ABEF and CDGH (lane 0 first: F E B A / H G D C).
    let abcd = _mm_shuffle_epi32(set4([IV[0], IV[1], IV[2], IV[3]]), 0xB1);
    let hgfe = _mm_shuffle_epi32(set4([IV[4], IV[5], IV[6], IV[7]]), 0x1B);
    let iv_abef = _mm_alignr_epi8(abcd, hgfe, 8);
    let iv_cdgh = _mm_blend_epi16(hgfe, abcd, 0xF0);

    let mut s0 = [iv_abef; N];
    let mut s1 = [iv_cdgh; N];
    let mut w = [[_mm_setzero_si128(); 4]; N];
    for l in 0..N {
        for (j, wj) in w[l].iter_mut().enumerate() {
            *wj = _mm_shuffle_epi8(load(&input[l], 16 * j), bswap);
        }
    }

    message_group!(N, s0, s1, w, 0);
    message_group!(N, s0, s1, w, 1);
    message_group!(N, s0, s1, w, 2);
    message_group!(N, s0, s1, w, 3);
    message_group!(N, s0, s1, w, 4);
    message_group!(N, s0, s1, w, 5);
    message_group!(N, s0, s1, w, 6);
    message_group!(N, s0, s1, w, 7);
    message_group!(N, s0, s1, w, 8);
    message_group!(N, s0, s1, w, 9);
    message_group!(N, s0, s1, w, 10);
    message_group!(N, s0, s1, w, 11);
    message_group!(N, s0, s1, w, 12);
    message_group!(N, s0, s1, w, 13);
    message_group!(N, s0, s1, w, 14);
    message_group!(N, s0, s1, w, 15);

    let mut mid0 = [iv_abef; N];
    let mut mid1 = [iv_cdgh; N];
    for l in 0..N {
        s0[l] = _mm_add_epi32(s0[l], iv_abef);
        s1[l] = _mm_add_epi32(s1[l], iv_cdgh);
        mid0[l] = s0[l];
        mid1[l] = s1[l];
    }

    pad_group!(N, s0, s1, 0);
    pad_group!(N, s0, s1, 1);
    pad_group!(N, s0, s1, 2);
    pad_group!(N, s0, s1, 3);
    pad_group!(N, s0, s1, 4);
    pad_group!(N, s0, s1, 5);
    pad_group!(N, s0, s1, 6);
    pad_group!(N, s0, s1, 7);
    pad_group!(N, s0, s1, 8);
    pad_group!(N, s0, s1, 9);
    pad_group!(N, s0, s1, 10);
    pad_group!(N, s0, s1, 11);
    pad_group!(N, s0, s1, 12);
    pad_group!(N, s0, s1, 13);
    pad_group!(N, s0, s1, 14);
    pad_group!(N, s0, s1, 15);

    // Clears the two high bits of the digest's last byte (byte 15 of the second half).
    let trim = _mm_set_epi64x(0x3FFF_FFFF_FFFF_FFFF, -1);
    for l in 0..N {
        let abef = _mm_add_epi32(s0[l], mid0[l]);
        let cdgh = _mm_add_epi32(s1[l], mid1[l]);
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let abcd = _mm_blend_epi16(feba, dchg, 0xF0);
        let efgh = _mm_alignr_epi8(dchg, feba, 8);
        store(&mut out[l], 0, _mm_shuffle_epi8(abcd, bswap));
        store(
            &mut out[l],
            16,
            _mm_and_si128(_mm_shuffle_epi8(efgh, bswap), trim),
        );
    }
}
