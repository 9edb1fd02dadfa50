//! Input generators of `commp_vectors.json` (see `generators` in that file).

#![allow(dead_code, unreachable_pub)]

use sha2::{Digest, Sha512};

/// Streams the bytes of a generator in chunks, so gigabyte inputs never sit in memory.
pub trait ByteSource {
    /// Fills `buf` with the next bytes of the stream.
    fn fill(&mut self, buf: &mut [u8]);
}

/// Turns a generator of fixed-size words into a byte stream (words emitted in order).
pub struct WordBytes<G, const N: usize> {
    next: G,
    pending: [u8; N],
    used: usize,
}

impl<G: FnMut() -> [u8; N], const N: usize> WordBytes<G, N> {
    fn new(next: G) -> Self {
        Self {
            next,
            pending: [0; N],
            used: N,
        }
    }
}

impl<G: FnMut() -> [u8; N], const N: usize> ByteSource for WordBytes<G, N> {
    fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            if self.used == N {
                self.pending = (self.next)();
                self.used = 0;
            }
            *b = self.pending[self.used];
            self.used += 1;
        }
    }
}

/// SplitMix64 with wrapping arithmetic, 8 little-endian bytes per step.
pub fn splitmix64(seed: u64) -> impl ByteSource {
    let mut state = seed;
    WordBytes::new(move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).to_le_bytes()
    })
}

/// Go's `math/rand` source (an additive lagged Fibonacci generator, lags 607 and 273),
/// emitting `Uint32()` values as 4 little-endian bytes each.
pub struct GoMathRand {
    vec: [u64; LEN],
    tap: usize,
    feed: usize,
}

/// The byte stream of `rand.New(rand.NewSource(seed)).Uint32()` values.
pub fn go_math_rand(seed: i64) -> impl ByteSource {
    let mut rng = GoMathRand::new(seed);
    WordBytes::new(move || rng.uint32().to_le_bytes())
}

const LEN: usize = 607;
const TAP: usize = 273;
const INT32_MAX: i64 = (1 << 31) - 1;

/// One step of the Park-Miller generator Go uses to seed its source.
fn seedrand(x: i64) -> i64 {
    const A: i64 = 48271;
    const Q: i64 = 44488;
    const R: i64 = 3399;
    let (hi, lo) = (x / Q, x % Q);
    let x = A * lo - R * hi;
    if x < 0 { x + INT32_MAX } else { x }
}

/// Fills a register from Park-Miller outputs after 20 discarded ones: entry i is three
/// consecutive outputs combined as `a << hi ^ b << lo ^ c` (Go's seeding shape; `gen_cooked.go`
/// uses shifts 20/10, `rng.go` 40/20).
fn seed_register(seed: i64, hi: u32, lo: u32) -> [u64; LEN] {
    let mut x = seed;
    for _ in 0..20 {
        x = seedrand(x);
    }
    let mut register = [0u64; LEN];
    for r in &mut register {
        let a = seedrand(x);
        let b = seedrand(a);
        x = seedrand(b);
        *r = (a as u64) << hi ^ (b as u64) << lo ^ x as u64;
    }
    register
}

/// Multiplies two polynomials over Z/2^64 modulo `x^607 - x^334 - 1`.
fn mul_mod(a: &[u64], b: &[u64]) -> Vec<u64> {
    let mut prod = vec![0u64; 2 * LEN - 1];
    for (i, &ai) in a.iter().enumerate() {
        if ai == 0 {
            continue;
        }
        for (j, &bj) in b.iter().enumerate() {
            prod[i + j] = prod[i + j].wrapping_add(ai.wrapping_mul(bj));
        }
    }
    reduce(prod)
}

fn reduce(mut p: Vec<u64>) -> Vec<u64> {
    for d in (LEN..p.len()).rev() {
        let c = std::mem::take(&mut p[d]);
        p[d - TAP] = p[d - TAP].wrapping_add(c);
        p[d - LEN] = p[d - LEN].wrapping_add(c);
    }
    p.truncate(LEN);
    p
}

/// Go's seed table (`rngCooked`): the generator's register after 7.8e12 steps from
/// `srand(1)`, as Go's `gen_cooked.go` describes it. Running that many steps would take
/// hours, so this jumps ahead: the outputs obey `s[t] = s[t-607] + s[t-273]`, hence
/// `s[t]` is the initial register combined with the coefficients of `x^(t+606)` modulo
/// `x^607 - x^334 - 1`.
fn cooked() -> [u64; LEN] {
    // srand(1) of gen_cooked.go.
    let init = seed_register(1, 20, 10);
    // With feed starting at 334 and tap at 0, step t writes position (334 - t) mod 607 and
    // the basis element x^i stands for s[i - 606] = init[(940 - i) mod 607].
    const STEPS: u64 = 7_800_000_000_000;
    let mut result = vec![0u64; LEN];
    result[0] = 1;
    let mut base = vec![0u64; LEN];
    base[1] = 1;
    let mut e = STEPS; // x^(t + 606) for t = STEPS - 606
    while e > 0 {
        if e & 1 == 1 {
            result = mul_mod(&result, &base);
        }
        base = mul_mod(&base, &base);
        e >>= 1;
    }
    let mut out = [0u64; LEN];
    for t in STEPS - 606..=STEPS {
        let value = result.iter().enumerate().fold(0u64, |acc, (i, &c)| {
            acc.wrapping_add(c.wrapping_mul(init[(940 - i) % LEN]))
        });
        out[((334 + LEN as u64 * 20_000_000_000 - t) % LEN as u64) as usize] = value;
        let mut shifted = vec![0u64; LEN + 1];
        shifted[1..].copy_from_slice(&result);
        result = reduce(shifted);
    }
    out
}

impl GoMathRand {
    /// `rand.New(rand.NewSource(seed))`.
    pub fn new(seed: i64) -> Self {
        let cooked = cooked();
        let mut seed = seed % INT32_MAX;
        if seed < 0 {
            seed += INT32_MAX;
        }
        if seed == 0 {
            seed = 89_482_311;
        }
        let mut vec = seed_register(seed, 40, 20);
        for (v, c) in vec.iter_mut().zip(cooked) {
            *v ^= c;
        }
        Self {
            vec,
            tap: 0,
            feed: LEN - TAP,
        }
    }

    fn uint32(&mut self) -> u32 {
        self.tap = if self.tap == 0 { LEN - 1 } else { self.tap - 1 };
        self.feed = if self.feed == 0 {
            LEN - 1
        } else {
            self.feed - 1
        };
        let x = self.vec[self.feed].wrapping_add(self.vec[self.tap]);
        self.vec[self.feed] = x;
        ((x & ((1 << 63) - 1)) >> 31) as u32
    }
}

/// data-segment's `deriveBuffer`: SHA-512 of the empty string, then SHA-512 of each
/// previous 64-byte block.
pub fn sha512_chain(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 64);
    let mut block: [u8; 64] = Sha512::digest([]).into();
    while out.len() < len {
        out.extend_from_slice(&block);
        block = Sha512::digest(block).into();
    }
    out.truncate(len);
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
