//! Commitments of all-zero pieces.
//!
//! fr32 maps zero bytes to zero bytes, so the zero padding that fills a piece is made of
//! zero subtrees whose roots are known in advance. The streaming hasher closes a partial
//! tree with them instead of hashing zeros.

use crate::{Commitment, PaddedPieceSize};

/// Highest tree level covered: a 2^63-byte piece has height 58.
pub(crate) const MAX_LEVEL: usize = 58;

/// `ZERO_LEVELS[h]` is the root of an all-zero tree of height `h` (`h = 0`: one zero leaf).
pub(crate) const ZERO_LEVELS: [[u8; 32]; MAX_LEVEL + 1] = zero_levels();

const fn zero_levels() -> [[u8; 32]; MAX_LEVEL + 1] {
    let mut t = [[0u8; 32]; MAX_LEVEL + 1];
    let mut h = 1;
    while h <= MAX_LEVEL {
        t[h] = crate::sha256::node_of(&t[h - 1], &t[h - 1]);
        h += 1;
    }
    t
}

/// The commitment of an all-zero piece of the given size.
pub const fn zero_commitment(size: PaddedPieceSize) -> Commitment {
    Commitment::from_bytes(ZERO_LEVELS[size.tree_height() as usize])
}

/// All zero-piece commitments from 128 bytes (index 0) up to 2^63 bytes (index 56), the
/// table go-commp-utils calls `PieceComms` extended to the largest `u64` size.
pub fn zero_commitments() -> impl ExactSizeIterator<Item = (PaddedPieceSize, Commitment)> {
    (2..MAX_LEVEL as u32 + 1).map(|h| {
        let size = PaddedPieceSize::from_tree_height(h).expect("2..=58 are valid heights");
        (size, zero_commitment(size))
    })
}
