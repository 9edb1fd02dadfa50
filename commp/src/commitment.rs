//! The 32-byte root of a piece tree, and what a finished hash knows about its piece.

use std::fmt;

use crate::PaddedPieceSize;

/// A piece (or unsealed sector) commitment: the root of a fr32 SHA-256 binary tree.
///
/// Its last byte always has the two high bits clear, like every node of the tree.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Commitment([u8; 32]);

impl Commitment {
    /// Wraps 32 bytes taken from a CID or another implementation.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The raw 32 bytes.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// Lowercase hex, as the vectors and most tools print it.
    pub fn to_hex(&self) -> String {
        use fmt::Write;
        let mut s = String::with_capacity(64);
        for b in self.0 {
            let _ = write!(s, "{b:02x}");
        }
        s
    }

    /// The parent of two subtrees of equal size.
    pub const fn parent(&self, right: &Commitment) -> Commitment {
        Commitment(crate::sha256::node_of(&self.0, &right.0))
    }
}

impl fmt::Debug for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Commitment({})", self.to_hex())
    }
}

impl fmt::Display for Commitment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl From<[u8; 32]> for Commitment {
    fn from(b: [u8; 32]) -> Self {
        Self(b)
    }
}

impl AsRef<[u8]> for Commitment {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A piece's commitment with its sizes: the result of hashing a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceInfo {
    /// The tree root (commP).
    pub commitment: Commitment,
    /// The padded piece size (what a deal proposal carries).
    pub padded_size: PaddedPieceSize,
    /// Payload bytes hashed; the rest of the piece is zero padding.
    pub payload_size: u64,
}

impl PieceInfo {
    /// Piece CID v1 (`baga6ea4seaq…`), the form deal proposals and the chain use.
    pub fn cid_v1(&self) -> cid::Cid {
        self.commitment.to_cid_v1()
    }

    /// Piece CID v2 (FRC-0069, `bafkzcib…`), which also encodes the payload size.
    pub fn cid_v2(&self) -> crate::PieceCidV2 {
        crate::PieceCidV2::new(self.commitment, self.padded_size, self.payload_size)
            .expect("a finished hash never has more payload than its piece holds")
    }
}
