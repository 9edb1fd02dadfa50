//! fr32 padding: 127 payload bytes become four 32-byte words of 254 bits each.
//!
//! Each leaf of a piece tree must be an element of the BLS12-381 scalar field, so it may use
//! at most 254 of its 256 bits. fr32 reads 127 bytes as a 1016-bit little-endian integer `X`
//! and emits word `k = (X >> 254k) mod 2^254` as 32 little-endian bytes. After every 127
//! bytes the bit stream is byte-aligned again, so blocks are independent.
//!
//! All functions work on whole blocks and never allocate.

/// Payload bytes per fr32 block.
pub const UNPADDED_BLOCK: usize = 127;
/// Padded bytes per fr32 block.
pub const PADDED_BLOCK: usize = 128;

const LOW_254: u64 = 0x3FFF_FFFF_FFFF_FFFF;

/// Why a buffer cannot be padded or unpadded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fr32Error {
    /// The input is not a whole number of blocks (127 bytes to pad, 128 to unpad).
    #[error("{len} bytes is not a whole number of {block}-byte blocks")]
    NotWholeBlocks {
        /// Length given.
        len: usize,
        /// Block size expected.
        block: usize,
    },
    /// The output buffer has the wrong length for the input.
    #[error("output buffer holds {got} bytes, {expected} are needed")]
    OutputSize {
        /// Length needed.
        expected: usize,
        /// Length given.
        got: usize,
    },
}

#[inline(always)]
fn le64(b: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(w)
}

/// Pads one 127-byte block into 128 bytes.
#[inline]
pub fn pad_block(input: &[u8; UNPADDED_BLOCK], out: &mut [u8; PADDED_BLOCK]) {
    // Word k starts at stream bit 254k: byte 0, 31, 63, 95 with bit shift 0, 6, 4, 2.
    let mut limbs = [0u64; 16];
    for (j, limb) in limbs[..4].iter_mut().enumerate() {
        *limb = le64(input, 8 * j);
    }
    for (q, (start, shift)) in [(31usize, 6u32), (63, 4), (95, 2)].into_iter().enumerate() {
        for j in 0..4 {
            let lo = le64(input, start + 8 * j) >> shift;
            // The last limb of word 3 reads past the block: those bits are zero.
            let hi = if start + 8 * j + 8 < UNPADDED_BLOCK {
                le64(input, start + 8 * j + 8) << (64 - shift)
            } else {
                0
            };
            limbs[4 * (q + 1) + j] = lo | hi;
        }
    }
    for k in 0..4 {
        limbs[4 * k + 3] &= LOW_254;
    }
    for (chunk, limb) in out.chunks_exact_mut(8).zip(limbs) {
        chunk.copy_from_slice(&limb.to_le_bytes());
    }
}

/// Unpads one 128-byte block into 127 bytes.
///
/// The two high bits of each 32-byte word carry no payload; they are ignored.
#[inline]
pub fn unpad_block(input: &[u8; PADDED_BLOCK], out: &mut [u8; UNPADDED_BLOCK]) {
    let mut x = [0u64; 16];
    for k in 0..4 {
        let word = [
            le64(input, 32 * k),
            le64(input, 32 * k + 8),
            le64(input, 32 * k + 16),
            le64(input, 32 * k + 24) & LOW_254,
        ];
        // OR the 254-bit word into X at bit offset 254k.
        let offset = 254 * k;
        let (limb, shift) = (offset / 64, (offset % 64) as u32);
        for (j, w) in word.into_iter().enumerate() {
            x[limb + j] |= w << shift;
            if shift != 0 && limb + j + 1 < 16 {
                x[limb + j + 1] |= w >> (64 - shift);
            }
        }
    }
    let mut bytes = [0u8; 128];
    for (chunk, limb) in bytes.chunks_exact_mut(8).zip(x) {
        chunk.copy_from_slice(&limb.to_le_bytes());
    }
    out.copy_from_slice(&bytes[..UNPADDED_BLOCK]);
}

/// The padded length of `unpadded_len` bytes, if they are whole blocks.
pub fn padded_len(unpadded_len: usize) -> Result<usize, Fr32Error> {
    if !unpadded_len.is_multiple_of(UNPADDED_BLOCK) {
        return Err(Fr32Error::NotWholeBlocks {
            len: unpadded_len,
            block: UNPADDED_BLOCK,
        });
    }
    Ok(unpadded_len / UNPADDED_BLOCK * PADDED_BLOCK)
}

/// The unpadded length of `padded_len` bytes, if they are whole blocks.
pub fn unpadded_len(padded_len: usize) -> Result<usize, Fr32Error> {
    if !padded_len.is_multiple_of(PADDED_BLOCK) {
        return Err(Fr32Error::NotWholeBlocks {
            len: padded_len,
            block: PADDED_BLOCK,
        });
    }
    Ok(padded_len / PADDED_BLOCK * UNPADDED_BLOCK)
}

/// Pads whole 127-byte blocks of `input` into `out`, which must be exactly 128/127 as long.
pub fn pad(input: &[u8], out: &mut [u8]) -> Result<(), Fr32Error> {
    let expected = padded_len(input.len())?;
    if out.len() != expected {
        return Err(Fr32Error::OutputSize {
            expected,
            got: out.len(),
        });
    }
    let (blocks, _) = input.as_chunks::<UNPADDED_BLOCK>();
    let (outs, _) = out.as_chunks_mut::<PADDED_BLOCK>();
    for (i, o) in blocks.iter().zip(outs) {
        pad_block(i, o);
    }
    Ok(())
}

/// Unpads whole 128-byte blocks of `input` into `out`, which must be exactly 127/128 as long.
pub fn unpad(input: &[u8], out: &mut [u8]) -> Result<(), Fr32Error> {
    let expected = unpadded_len(input.len())?;
    if out.len() != expected {
        return Err(Fr32Error::OutputSize {
            expected,
            got: out.len(),
        });
    }
    let (blocks, _) = input.as_chunks::<PADDED_BLOCK>();
    let (outs, _) = out.as_chunks_mut::<UNPADDED_BLOCK>();
    for (i, o) in blocks.iter().zip(outs) {
        unpad_block(i, o);
    }
    Ok(())
}

/// Pads in place: the first `unpadded_len` bytes of `buf` (whole blocks) become the first
/// `unpadded_len · 128/127` bytes. `buf` must be at least that long.
///
/// Returns the padded length.
pub fn pad_in_place(buf: &mut [u8], unpadded_len: usize) -> Result<usize, Fr32Error> {
    let padded = padded_len(unpadded_len)?;
    if buf.len() < padded {
        return Err(Fr32Error::OutputSize {
            expected: padded,
            got: buf.len(),
        });
    }
    // Output block i lies at or after input block i, so go from the last block backwards.
    let mut block = [0u8; UNPADDED_BLOCK];
    let mut out = [0u8; PADDED_BLOCK];
    for i in (0..unpadded_len / UNPADDED_BLOCK).rev() {
        block.copy_from_slice(&buf[i * UNPADDED_BLOCK..(i + 1) * UNPADDED_BLOCK]);
        pad_block(&block, &mut out);
        buf[i * PADDED_BLOCK..(i + 1) * PADDED_BLOCK].copy_from_slice(&out);
    }
    Ok(padded)
}

/// Unpads in place: `buf` (whole 128-byte blocks) becomes its first `len · 127/128` bytes.
///
/// Returns the unpadded length; the bytes after it are unspecified.
pub fn unpad_in_place(buf: &mut [u8]) -> Result<usize, Fr32Error> {
    let unpadded = unpadded_len(buf.len())?;
    // Output block i lies at or before input block i, so go forwards.
    let mut block = [0u8; PADDED_BLOCK];
    let mut out = [0u8; UNPADDED_BLOCK];
    for i in 0..buf.len() / PADDED_BLOCK {
        block.copy_from_slice(&buf[i * PADDED_BLOCK..(i + 1) * PADDED_BLOCK]);
        unpad_block(&block, &mut out);
        buf[i * UNPADDED_BLOCK..(i + 1) * UNPADDED_BLOCK].copy_from_slice(&out);
    }
    Ok(unpadded)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit-by-bit reference: stream bit j of the input is bit (j mod 8) of byte j/8; word k
    /// takes stream bits 254k..254k+253.
    fn pad_reference(input: &[u8; 127]) -> [u8; 128] {
        let mut out = [0u8; 128];
        for k in 0..4 {
            for b in 0..254 {
                let j = 254 * k + b;
                let bit = (input[j / 8] >> (j % 8)) & 1;
                let o = 256 * k + b;
                out[o / 8] |= bit << (o % 8);
            }
        }
        out
    }

    fn sample(seed: u8) -> [u8; 127] {
        let mut b = [0u8; 127];
        let mut x = seed as u32 ^ 0x9e37_79b9;
        for v in &mut b {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            *v = x as u8;
        }
        b
    }

    #[test]
    fn matches_bit_reference() {
        for seed in 0..64 {
            let input = sample(seed);
            let mut out = [0u8; 128];
            pad_block(&input, &mut out);
            assert_eq!(out, pad_reference(&input));
            let mut back = [0u8; 127];
            unpad_block(&out, &mut back);
            assert_eq!(back, input);
        }
        let ones = [0xFFu8; 127];
        let mut out = [0u8; 128];
        pad_block(&ones, &mut out);
        assert_eq!(out, pad_reference(&ones));
        for k in 0..4 {
            assert_eq!(out[32 * k + 31], 0x3F);
        }
    }

    #[test]
    fn in_place_matches_buffers() {
        let mut data = Vec::new();
        for s in 0..5 {
            data.extend_from_slice(&sample(s));
        }
        let mut padded = vec![0u8; 640];
        pad(&data, &mut padded).unwrap();
        let mut buf = data.clone();
        buf.resize(640, 0xAA);
        assert_eq!(pad_in_place(&mut buf, 635).unwrap(), 640);
        assert_eq!(buf, padded);
        assert_eq!(unpad_in_place(&mut buf).unwrap(), 635);
        assert_eq!(&buf[..635], &data[..]);
        let mut back = vec![0u8; 635];
        unpad(&padded, &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn size_errors() {
        let mut out = [0u8; 128];
        assert_eq!(
            pad(&[0u8; 100], &mut out),
            Err(Fr32Error::NotWholeBlocks {
                len: 100,
                block: 127
            })
        );
        assert_eq!(
            pad(&[0u8; 127], &mut out[..100]),
            Err(Fr32Error::OutputSize {
                expected: 128,
                got: 100
            })
        );
        assert!(unpad(&[0u8; 129], &mut [0u8; 127]).is_err());
        assert!(pad_in_place(&mut [0u8; 127], 127).is_err());
        assert!(unpad_in_place(&mut [0u8; 100]).is_err());
    }
}
