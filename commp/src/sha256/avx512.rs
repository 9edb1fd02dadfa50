//! AVX-512 kernel: 16 nodes per pass, one node per 32-bit lane.
//!
//! Each zmm register holds the same SHA-256 word of 16 independent nodes, so one vector
//! instruction advances 16 hashes. Rotations and three-input boolean functions map onto
//! `vprord` and `vpternlogd`. On the AMD EPYC vCPU of our benchmarks it runs 1-3% ahead of
//! the SHA-NI kernel; published multi-buffer figures on Intel put it behind, so
//! [`crate::Backend::detect`] prefers SHA-NI and this backend is opt-in.

#[cfg(target_arch = "x86")]
use core::arch::x86::*;
#[cfg(target_arch = "x86_64")]
use core::arch::x86_64::*;

use super::{IV, K, PAD_BLOCK_WK};

/// Nodes per pass.
const LANES: usize = 16;

pub(super) fn is_supported() -> bool {
    std::is_x86_feature_detected!("avx512f") && std::is_x86_feature_detected!("avx512bw")
}

/// Hashes every pair of `input` into `out`, 16 at a time; the remainder goes to `rest`.
///
/// # Safety
/// The CPU must support `avx512f` and `avx512bw`; the slices must have the same length.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn hash_pairs(
    input: &[[u8; 64]],
    out: &mut [[u8; 32]],
    rest: impl FnOnce(&[[u8; 64]], &mut [[u8; 32]]),
) {
    let (ins, in_rest) = input.as_chunks::<LANES>();
    let (outs, out_rest) = out.as_chunks_mut::<LANES>();
    for (i, o) in ins.iter().zip(outs) {
        nodes16(i, o);
    }
    rest(in_rest, out_rest);
}

macro_rules! round {
    ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $f:ident, $g:ident, $h:ident, $wk:expr) => {{
        let s1 = _mm512_ternarylogic_epi32::<0x96>(
            _mm512_ror_epi32::<6>($e),
            _mm512_ror_epi32::<11>($e),
            _mm512_ror_epi32::<25>($e),
        );
        let ch = _mm512_ternarylogic_epi32::<0xCA>($e, $f, $g);
        let t1 = _mm512_add_epi32(_mm512_add_epi32($h, s1), _mm512_add_epi32(ch, $wk));
        let s0 = _mm512_ternarylogic_epi32::<0x96>(
            _mm512_ror_epi32::<2>($a),
            _mm512_ror_epi32::<13>($a),
            _mm512_ror_epi32::<22>($a),
        );
        let maj = _mm512_ternarylogic_epi32::<0xE8>($a, $b, $c);
        $d = _mm512_add_epi32($d, t1);
        $h = _mm512_add_epi32(t1, _mm512_add_epi32(s0, maj));
    }};
}

/// 64 rounds; `wk(t)` yields `W[t] + K[t]` for all lanes.
#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn rounds(state: [__m512i; 8], wk: impl Fn(usize) -> __m512i) -> [__m512i; 8] {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = state;
    for t in (0..64).step_by(8) {
        round!(a, b, c, d, e, f, g, h, wk(t));
        round!(h, a, b, c, d, e, f, g, wk(t + 1));
        round!(g, h, a, b, c, d, e, f, wk(t + 2));
        round!(f, g, h, a, b, c, d, e, wk(t + 3));
        round!(e, f, g, h, a, b, c, d, wk(t + 4));
        round!(d, e, f, g, h, a, b, c, wk(t + 5));
        round!(c, d, e, f, g, h, a, b, wk(t + 6));
        round!(b, c, d, e, f, g, h, a, wk(t + 7));
    }
    let next = [a, b, c, d, e, f, g, h];
    let mut out = state;
    for (o, n) in out.iter_mut().zip(next) {
        *o = _mm512_add_epi32(*o, n);
    }
    out
}

#[target_feature(enable = "avx512f,avx512bw")]
#[inline]
fn nodes16(input: &[[u8; 64]; LANES], out: &mut [[u8; 32]; LANES]) {
    // Big-endian words within each 32-bit lane.
    let bswap = _mm512_set_epi64(
        0x0c0d_0e0f_0809_0a0b,
        0x0405_0607_0001_0203,
        0x0c0d_0e0f_0809_0a0b,
        0x0405_0607_0001_0203,
        0x0c0d_0e0f_0809_0a0b,
        0x0405_0607_0001_0203,
        0x0c0d_0e0f_0809_0a0b,
        0x0405_0607_0001_0203,
    );
    // Lane i reads message i: 64 bytes = 16 dwords apart.
    let stride = _mm512_setr_epi32(
        0, 16, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240,
    );
    let base: *const i32 = input.as_ptr().cast();

    let mut w = [_mm512_setzero_si512(); 64];
    for (t, wt) in w[..16].iter_mut().enumerate() {
        // SAFETY: `input` is 16 contiguous 64-byte messages (1024 bytes); lane i reads the
        // dword at byte 64·i + 4·t with t < 16, always inside it. Gathers need no alignment.
        let v = unsafe { _mm512_i32gather_epi32::<4>(stride, base.add(t)) };
        *wt = _mm512_shuffle_epi8(v, bswap);
    }
    for t in 16..64 {
        let x = w[t - 15];
        let s0 = _mm512_ternarylogic_epi32::<0x96>(
            _mm512_ror_epi32::<7>(x),
            _mm512_ror_epi32::<18>(x),
            _mm512_srli_epi32::<3>(x),
        );
        let y = w[t - 2];
        let s1 = _mm512_ternarylogic_epi32::<0x96>(
            _mm512_ror_epi32::<17>(y),
            _mm512_ror_epi32::<19>(y),
            _mm512_srli_epi32::<10>(y),
        );
        w[t] = _mm512_add_epi32(
            _mm512_add_epi32(s0, s1),
            _mm512_add_epi32(w[t - 7], w[t - 16]),
        );
    }

    let iv = IV.map(|x| _mm512_set1_epi32(x as i32));
    let mid = rounds(iv, |t| {
        _mm512_add_epi32(w[t], _mm512_set1_epi32(K[t] as i32))
    });
    let fin = rounds(mid, |t| _mm512_set1_epi32(PAD_BLOCK_WK[t] as i32));

    // Transpose back: word k of every lane, big-endian, into each node's bytes 4k..4k+4.
    let mut words = [[0u8; 64]; 8];
    for (bytes, v) in words.iter_mut().zip(fin) {
        // SAFETY: `bytes` is 64 writable bytes; `storeu` has no alignment requirement.
        unsafe { _mm512_storeu_si512(bytes.as_mut_ptr().cast(), _mm512_shuffle_epi8(v, bswap)) };
    }
    for (lane, node) in out.iter_mut().enumerate() {
        for (k, bytes) in words.iter().enumerate() {
            node[4 * k..4 * k + 4].copy_from_slice(&bytes[4 * lane..4 * lane + 4]);
        }
        node[31] &= 0x3F;
    }
}
