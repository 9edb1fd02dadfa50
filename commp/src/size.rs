//! Piece sizes: the padded size Filecoin puts on chain and the unpadded payload capacity.
//!
//! fr32 turns every 127 bytes of payload into 128 bytes, so a piece whose padded size is
//! `P = 128 · 2^k` carries at most `U = P · 127/128` payload bytes. Both newtypes can only
//! hold valid sizes; every constructor checks.

use std::fmt;

/// Why a number is not a valid piece size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SizeError {
    /// A padded size must be a power of two of at least 128 bytes.
    #[error("padded piece size {0} is not a power of two of at least 128 bytes")]
    InvalidPadded(u64),
    /// An unpadded size must be `127 · 2^k`.
    #[error("unpadded piece size {0} is not 127 · 2^k bytes")]
    InvalidUnpadded(u64),
    /// A tree height outside 2..=58 (128 bytes to 2^63 bytes).
    #[error("tree height {0} is outside 2..=58")]
    InvalidHeight(u32),
    /// The payload needs a piece larger than the largest padded size a `u64` can express.
    #[error("a payload of {0} bytes does not fit any piece")]
    PayloadTooLarge(u64),
}

/// A piece's size after fr32 padding: a power of two, at least 128 bytes.
///
/// This is the `PieceInfo.Size` / `DealProposal.PieceSize` of the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PaddedPieceSize(u64);

/// A piece's payload capacity before fr32 padding: `127 · 2^k` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnpaddedPieceSize(u64);

impl PaddedPieceSize {
    /// The smallest piece: four 32-byte leaves.
    pub const MIN: Self = Self(128);
    /// The largest padded size representable in a `u64` (`2^63`).
    pub const MAX: Self = Self(1 << 63);

    /// Checks that `size` is a power of two of at least 128 bytes.
    pub const fn new(size: u64) -> Result<Self, SizeError> {
        if size >= 128 && size.is_power_of_two() {
            Ok(Self(size))
        } else {
            Err(SizeError::InvalidPadded(size))
        }
    }

    /// The smallest padded size whose payload capacity holds `payload_len` bytes.
    ///
    /// A zero-byte payload gets the smallest piece. Whether very short payloads are
    /// acceptable at all is a policy of [`crate::CommP`], not of the size arithmetic.
    pub const fn for_payload(payload_len: u64) -> Result<Self, SizeError> {
        let blocks = payload_len.div_ceil(127);
        let blocks = if blocks == 0 { 1 } else { blocks };
        match blocks.checked_next_power_of_two() {
            Some(b) if b <= (1 << 56) => Ok(Self(b * 128)),
            _ => Err(SizeError::PayloadTooLarge(payload_len)),
        }
    }

    /// Bytes.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The payload capacity of this piece.
    pub const fn unpadded(self) -> UnpaddedPieceSize {
        UnpaddedPieceSize(self.0 - self.0 / 128)
    }

    /// Height of the piece's merkle tree: `log2(size / 32)` (2 for 128 bytes).
    pub const fn tree_height(self) -> u32 {
        self.0.trailing_zeros() - 5
    }

    /// Number of 32-byte leaves.
    pub const fn leaves(self) -> u64 {
        self.0 / 32
    }

    /// The padded size of a tree of the given height, if it is a valid piece (height 2..=58).
    pub const fn from_tree_height(height: u32) -> Result<Self, SizeError> {
        if height < 2 || height > 58 {
            return Err(SizeError::InvalidHeight(height));
        }
        Ok(Self(32u64 << height))
    }
}

impl UnpaddedPieceSize {
    /// The smallest piece's capacity.
    pub const MIN: Self = Self(127);

    /// Checks that `size` is `127 · 2^k`.
    pub const fn new(size: u64) -> Result<Self, SizeError> {
        if size >= 127
            && size.is_multiple_of(127)
            && (size / 127).is_power_of_two()
            && size / 127 <= 1 << 56
        {
            Ok(Self(size))
        } else {
            Err(SizeError::InvalidUnpadded(size))
        }
    }

    /// Bytes.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The fr32-padded size of a piece with this capacity.
    pub const fn padded(self) -> PaddedPieceSize {
        PaddedPieceSize(self.0 + self.0 / 127)
    }
}

impl From<PaddedPieceSize> for u64 {
    fn from(s: PaddedPieceSize) -> u64 {
        s.0
    }
}

impl From<UnpaddedPieceSize> for u64 {
    fn from(s: UnpaddedPieceSize) -> u64 {
        s.0
    }
}

impl TryFrom<u64> for PaddedPieceSize {
    type Error = SizeError;
    fn try_from(v: u64) -> Result<Self, SizeError> {
        Self::new(v)
    }
}

impl TryFrom<u64> for UnpaddedPieceSize {
    type Error = SizeError;
    fn try_from(v: u64) -> Result<Self, SizeError> {
        Self::new(v)
    }
}

impl fmt::Display for PaddedPieceSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} B (padded)", self.0)
    }
}

impl fmt::Display for UnpaddedPieceSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} B (unpadded)", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_checks() {
        assert!(PaddedPieceSize::new(128).is_ok());
        assert!(PaddedPieceSize::new(1 << 35).is_ok());
        for bad in [0, 1, 64, 127, 129, 192, 1000, u64::MAX] {
            assert_eq!(
                PaddedPieceSize::new(bad),
                Err(SizeError::InvalidPadded(bad))
            );
        }
    }

    #[test]
    fn unpadded_checks_and_round_trip() {
        for k in 0..=56 {
            let u = UnpaddedPieceSize::new(127u64 << k).unwrap();
            assert_eq!(u.padded().get(), 128u64 << k);
            assert_eq!(u.padded().unpadded(), u);
        }
        for bad in [0, 126, 128, 254 + 127, 127 * 3] {
            assert!(UnpaddedPieceSize::new(bad).is_err());
        }
    }

    #[test]
    fn for_payload_picks_smallest_fit() {
        let cases = [
            (0, 128),
            (1, 128),
            (127, 128),
            (128, 256),
            (254, 256),
            (255, 512),
            (1016, 1024),
            (1017, 2048),
            (34_091_302_912, 34_359_738_368),
        ];
        for (n, p) in cases {
            assert_eq!(
                PaddedPieceSize::for_payload(n).unwrap().get(),
                p,
                "payload {n}"
            );
        }
        assert!(PaddedPieceSize::for_payload(u64::MAX).is_err());
    }

    #[test]
    fn heights() {
        assert_eq!(PaddedPieceSize::MIN.tree_height(), 2);
        assert_eq!(PaddedPieceSize::new(1 << 35).unwrap().tree_height(), 30);
        assert_eq!(
            PaddedPieceSize::from_tree_height(31).unwrap().get(),
            1 << 36
        );
        assert!(PaddedPieceSize::from_tree_height(1).is_err());
        assert!(PaddedPieceSize::from_tree_height(59).is_err());
    }
}
