//! The one CID type of the workspace.
//!
//! `cid::Cid` holds digests of up to 64 bytes, but Lotus inlines blocks of up to 126 bytes
//! as identity CIDs, and `lotus client import` gives such a root to every file between
//! 1 MiB + 1 B and 2 MiB. Every CID that crosses the wire is therefore a [`Cid`] with room
//! for 128-byte multihashes. The `commp` crate keeps `cid::Cid` (piece CIDs are 32-byte
//! digests); [`widen`] and [`narrow`] convert.

/// Longest multihash digest a [`Cid`] holds.
pub const MAX_DIGEST: usize = 128;

/// A CID with room for 128-byte digests.
pub type Cid = cid::CidGeneric<MAX_DIGEST>;

/// A multihash with room for 128-byte digests.
pub type Multihash = multihash::Multihash<MAX_DIGEST>;

/// Widens a `cid::Cid` (commP's piece CIDs) to a [`Cid`].
pub fn widen(c: &cid::Cid) -> Cid {
    let hash =
        Multihash::wrap(c.hash().code(), c.hash().digest()).expect("a 64-byte digest fits in 128");
    Cid::new(c.version(), c.codec(), hash).expect("widening keeps a valid CID")
}

/// Narrows a [`Cid`] to a `cid::Cid`; `None` when its digest is over 64 bytes.
pub fn narrow(c: &Cid) -> Option<cid::Cid> {
    let hash = multihash::Multihash::<64>::wrap(c.hash().code(), c.hash().digest()).ok()?;
    cid::Cid::new(c.version(), c.codec(), hash).ok()
}

/// The v1 piece CID of a commP result as the workspace [`Cid`].
pub trait PieceCidExt {
    /// The v1 piece CID (`baga…`).
    fn piece_cid(&self) -> Cid;
}

impl PieceCidExt for commp::PieceInfo {
    fn piece_cid(&self) -> Cid {
        widen(&self.cid_v1())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_cids_of_126_bytes_fit() {
        let digest = vec![7u8; 126];
        let hash = Multihash::wrap(crate::multicodec::IDENTITY, &digest).unwrap();
        let c = Cid::new_v1(crate::multicodec::RAW, hash);
        let parsed = Cid::try_from(c.to_string().as_str()).unwrap();
        assert_eq!(parsed, c);
        assert!(narrow(&c).is_none());
        let small: cid::Cid = "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
            .parse()
            .unwrap();
        assert_eq!(narrow(&widen(&small)), Some(small));
        assert_eq!(widen(&small).to_string(), small.to_string());
    }
}
