//! Piece CIDs: v1 (`fil-commitment-unsealed` + `sha2-256-trunc254-padded`, the on-chain form)
//! and v2 (FRC-0069: raw + `fr32-sha256-trunc254-padbintree`, which also carries the size).
//!
//! A v1 CID holds only the root; the padded size travels beside it. A v2 CID's digest is
//! `uvarint(padding) ‖ height ‖ root`, where `padding` is the number of zero bytes appended
//! to the payload before fr32 and `height = log2(padded / 32)`.

use std::fmt;
use std::str::FromStr;

use cid::Cid;
use multihash::Multihash;

use crate::{Commitment, PaddedPieceSize};

/// Multicodec `fil-commitment-unsealed`.
pub const FIL_COMMITMENT_UNSEALED: u64 = 0xf101;
/// Multihash `sha2-256-trunc254-padded`.
pub const SHA2_256_TRUNC254_PADDED: u64 = 0x1012;
/// Multihash `fr32-sha256-trunc254-padbintree` (FRC-0069).
pub const FR32_SHA256_TRUNC254_PADBINTREE: u64 = 0x1011;
/// Multicodec `raw`.
pub const RAW: u64 = 0x55;

/// Longest CID text accepted by the parsers (a v2 CID is at most 42 + 4 bytes, ~75 chars).
pub const MAX_CID_STR_LEN: usize = 128;

/// Why a CID is not a piece CID of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidError {
    /// Not a CID at all.
    #[error("not a CID: {0}")]
    Malformed(String),
    /// CID text longer than [`MAX_CID_STR_LEN`].
    #[error("CID text of {0} characters is too long")]
    TooLong(usize),
    /// A CIDv0, which cannot be a piece CID.
    #[error("CIDv0 cannot be a piece CID")]
    Version0,
    /// The codec / multihash pair is not that of a piece CID.
    #[error("codec {codec:#x} with multihash {multihash:#x} is not a piece CID")]
    NotPieceCid {
        /// The CID's codec.
        codec: u64,
        /// The CID's multihash code.
        multihash: u64,
    },
    /// The digest has the wrong shape.
    #[error("bad piece CID digest: {0}")]
    BadDigest(&'static str),
    /// The payload is larger than the piece can hold.
    #[error("payload of {payload} bytes exceeds the {capacity}-byte capacity of the piece")]
    PayloadTooLarge {
        /// Payload size given.
        payload: u64,
        /// Unpadded capacity of the piece (0 when no piece is large enough).
        capacity: u64,
    },
    /// The v2 padding is larger than the piece's capacity.
    #[error("padding {padding} exceeds the {capacity}-byte capacity of the piece")]
    PaddingTooLarge {
        /// Padding in the CID.
        padding: u64,
        /// Unpadded capacity of the piece.
        capacity: u64,
    },
}

impl Commitment {
    /// Piece CID v1 of this commitment (also the unsealed sector CID form of commD).
    pub fn to_cid_v1(&self) -> Cid {
        let mh = Multihash::wrap(SHA2_256_TRUNC254_PADDED, self.as_bytes())
            .expect("32 bytes fit a 64-byte multihash");
        Cid::new_v1(FIL_COMMITMENT_UNSEALED, mh)
    }

    /// The commitment inside a piece CID v1.
    pub fn from_cid_v1<const S: usize>(cid: &cid::CidGeneric<S>) -> Result<Self, CidError> {
        check_version(cid)?;
        let mh = cid.hash();
        if cid.codec() != FIL_COMMITMENT_UNSEALED || mh.code() != SHA2_256_TRUNC254_PADDED {
            return Err(CidError::NotPieceCid {
                codec: cid.codec(),
                multihash: mh.code(),
            });
        }
        let root: [u8; 32] = mh
            .digest()
            .try_into()
            .map_err(|_| CidError::BadDigest("a v1 digest is 32 bytes"))?;
        Ok(Commitment::from_bytes(root))
    }
}

fn check_version<const S: usize>(cid: &cid::CidGeneric<S>) -> Result<(), CidError> {
    if cid.version() == cid::Version::V0 {
        Err(CidError::Version0)
    } else {
        Ok(())
    }
}

/// Parses CID text with a length limit (peer input).
pub fn parse_cid(s: &str) -> Result<Cid, CidError> {
    if s.len() > MAX_CID_STR_LEN {
        return Err(CidError::TooLong(s.len()));
    }
    Cid::from_str(s).map_err(|e| CidError::Malformed(e.to_string()))
}

/// A piece CID v2 (FRC-0069): the commitment plus the tree height and payload padding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PieceCidV2 {
    commitment: Commitment,
    size: PaddedPieceSize,
    padding: u64,
}

impl PieceCidV2 {
    /// A v2 CID for a payload of `payload_size` bytes in a piece of `size`.
    pub fn new(
        commitment: Commitment,
        size: PaddedPieceSize,
        payload_size: u64,
    ) -> Result<Self, CidError> {
        let capacity = size.unpadded().get();
        let padding = capacity
            .checked_sub(payload_size)
            .ok_or(CidError::PayloadTooLarge {
                payload: payload_size,
                capacity,
            })?;
        Ok(Self {
            commitment,
            size,
            padding,
        })
    }

    /// Converts a v1 CID and its payload size to v2, in the smallest piece that fits.
    pub fn from_v1<const S: usize>(
        cid_v1: &cid::CidGeneric<S>,
        payload_size: u64,
    ) -> Result<Self, CidError> {
        let commitment = Commitment::from_cid_v1(cid_v1)?;
        let size =
            PaddedPieceSize::for_payload(payload_size).map_err(|_| CidError::PayloadTooLarge {
                payload: payload_size,
                capacity: 0,
            })?;
        Self::new(commitment, size, payload_size)
    }

    /// The v1 CID (the payload size is [`PieceCidV2::payload_size`]).
    pub fn to_v1(&self) -> Cid {
        self.commitment.to_cid_v1()
    }

    /// The tree root.
    pub fn commitment(&self) -> Commitment {
        self.commitment
    }

    /// The padded piece size.
    pub fn padded_size(&self) -> PaddedPieceSize {
        self.size
    }

    /// Tree height, `log2(padded / 32)`.
    pub fn height(&self) -> u8 {
        self.size.tree_height() as u8
    }

    /// Zero bytes appended to the payload to fill the piece's capacity.
    pub fn padding(&self) -> u64 {
        self.padding
    }

    /// Payload bytes: the piece's capacity minus the padding.
    pub fn payload_size(&self) -> u64 {
        self.size.unpadded().get() - self.padding
    }

    /// Whether this is the smallest piece for its payload, the extra rule go-fil-commcid's
    /// parser applies (`padding < capacity / 2`, i.e. payloads of at least 65 bytes in the
    /// smallest piece). FRC-0069 itself does not require it.
    pub fn is_minimal(&self) -> bool {
        self.padding < self.size.unpadded().get() / 2
    }

    /// The CID.
    pub fn to_cid(&self) -> Cid {
        let mut digest = Vec::with_capacity(42);
        write_uvarint(&mut digest, self.padding);
        digest.push(self.height());
        digest.extend_from_slice(self.commitment.as_bytes());
        let mh = Multihash::wrap(FR32_SHA256_TRUNC254_PADBINTREE, &digest)
            .expect("at most 42 bytes fit a 64-byte multihash");
        Cid::new_v1(RAW, mh)
    }

    /// Parses a v2 CID, checking the digest length, the height and the padding.
    pub fn from_cid<const S: usize>(cid: &cid::CidGeneric<S>) -> Result<Self, CidError> {
        check_version(cid)?;
        let mh = cid.hash();
        if cid.codec() != RAW || mh.code() != FR32_SHA256_TRUNC254_PADBINTREE {
            return Err(CidError::NotPieceCid {
                codec: cid.codec(),
                multihash: mh.code(),
            });
        }
        let digest = mh.digest();
        let (padding, used) = read_uvarint(digest)?;
        let rest = &digest[used..];
        if rest.len() != 33 {
            return Err(CidError::BadDigest(
                "a v2 digest ends with a height byte and 32 bytes",
            ));
        }
        let size = PaddedPieceSize::from_tree_height(u32::from(rest[0]))
            .map_err(|_| CidError::BadDigest("tree height outside 2..=58"))?;
        let capacity = size.unpadded().get();
        if padding > capacity {
            return Err(CidError::PaddingTooLarge { padding, capacity });
        }
        let root: [u8; 32] = rest[1..].try_into().expect("33 - 1 bytes");
        Ok(Self {
            commitment: Commitment::from_bytes(root),
            size,
            padding,
        })
    }
}

impl fmt::Display for PieceCidV2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.to_cid().fmt(f)
    }
}

impl FromStr for PieceCidV2 {
    type Err = CidError;
    fn from_str(s: &str) -> Result<Self, CidError> {
        Self::from_cid(&parse_cid(s)?)
    }
}

/// Either kind of piece CID, as found in URLs and API calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PieceCid {
    /// A v1 CID: the root only.
    V1(Commitment),
    /// A v2 CID: root, size and payload size.
    V2(PieceCidV2),
}

impl PieceCid {
    /// Classifies and checks a CID (of any digest capacity).
    pub fn from_cid<const S: usize>(cid: &cid::CidGeneric<S>) -> Result<Self, CidError> {
        match (cid.codec(), cid.hash().code()) {
            (FIL_COMMITMENT_UNSEALED, _) => Commitment::from_cid_v1(cid).map(PieceCid::V1),
            (RAW, FR32_SHA256_TRUNC254_PADBINTREE) => PieceCidV2::from_cid(cid).map(PieceCid::V2),
            (codec, multihash) => {
                check_version(cid)?;
                Err(CidError::NotPieceCid { codec, multihash })
            }
        }
    }

    /// The tree root.
    pub fn commitment(&self) -> Commitment {
        match self {
            PieceCid::V1(c) => *c,
            PieceCid::V2(v2) => v2.commitment(),
        }
    }
}

impl FromStr for PieceCid {
    type Err = CidError;
    fn from_str(s: &str) -> Result<Self, CidError> {
        Self::from_cid(&parse_cid(s)?)
    }
}

fn write_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a minimally encoded unsigned varint (at most 9 bytes, as multiformats requires).
fn read_uvarint(b: &[u8]) -> Result<(u64, usize), CidError> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().enumerate().take(9) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            if byte == 0 && i > 0 {
                return Err(CidError::BadDigest("padding varint is not minimal"));
            }
            return Ok((v, i + 1));
        }
    }
    Err(CidError::BadDigest(
        "padding varint is truncated or longer than 9 bytes",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uvarint_round_trip() {
        for v in [
            0u64,
            1,
            127,
            128,
            300,
            16383,
            16384,
            u32::MAX as u64,
            (1 << 63) - 1,
        ] {
            let mut b = Vec::new();
            write_uvarint(&mut b, v);
            assert_eq!(read_uvarint(&b).unwrap(), (v, b.len()));
        }
        assert!(read_uvarint(&[0x80, 0x00]).is_err());
        assert!(read_uvarint(&[0x80]).is_err());
        assert!(read_uvarint(&[0xff; 10]).is_err());
    }

    #[test]
    fn rejects_other_cids() {
        let other =
            Cid::from_str("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy").unwrap();
        assert!(matches!(
            PieceCid::from_cid(&other),
            Err(CidError::NotPieceCid { .. })
        ));
        assert!(matches!(
            Commitment::from_cid_v1(&other),
            Err(CidError::NotPieceCid { .. })
        ));
        assert!(matches!(
            "not a cid".parse::<PieceCid>(),
            Err(CidError::Malformed(_))
        ));
        assert!(matches!(
            "b".repeat(500).parse::<PieceCid>(),
            Err(CidError::TooLong(500))
        ));
        let v0 = Cid::from_str("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n").unwrap();
        assert_eq!(PieceCid::from_cid(&v0), Err(CidError::Version0));
    }

    #[test]
    fn rejects_bad_v2_digests() {
        let mk = |digest: &[u8]| {
            Cid::new_v1(
                RAW,
                Multihash::wrap(FR32_SHA256_TRUNC254_PADBINTREE, digest).unwrap(),
            )
        };
        let mut ok = vec![0u8, 2];
        ok.extend([0u8; 32]);
        assert!(PieceCidV2::from_cid(&mk(&ok)).is_ok());
        assert!(PieceCidV2::from_cid(&mk(&ok[..20])).is_err());
        let mut high = ok.clone();
        high[1] = 59;
        assert!(PieceCidV2::from_cid(&mk(&high)).is_err());
        let mut pad = vec![128u8, 1, 2]; // padding 128 > capacity 127
        pad.extend([0u8; 32]);
        assert!(matches!(
            PieceCidV2::from_cid(&mk(&pad)),
            Err(CidError::PaddingTooLarge {
                padding: 128,
                capacity: 127
            })
        ));
    }
}
