//! HAMT-sharded UnixFS directories, laid out as boxo's `hamt` package (behind Kubo) lays
//! them out, so that looking a name up, listing a directory and building one give the same
//! blocks and CIDs as Kubo.
//!
//! A name's murmur3-x64-64 hash is read `log2(fanout)` bits at a time from its most
//! significant end. At each level the bucket index, in upper-case hex padded to the width of
//! `fanout - 1` ("%02X" for 256), starts the link's name: the prefix alone links a
//! sub-shard, the prefix followed by the entry's name links the entry itself. A bucket with
//! one entry holds it; two or more make a sub-shard one level down. Without deletions the
//! layout depends only on the set of names. A shard's UnixFS data carries the bitfield of
//! used buckets (big-endian, leading zero bytes dropped), the hash function and the fanout.

use std::collections::BTreeMap;

use market_core::Cid;

use crate::dagpb::{PbLink, PbNode, UnixFsData, UnixFsKind};

/// The multicodec of murmur3-x64-64, the only hash UnixFS shards use.
pub const MURMUR3_X64_64: u64 = 0x22;
/// Kubo's shard width.
pub const DEFAULT_FANOUT: u64 = 256;
/// Widest shard accepted from a peer (boxo allows up to 1024).
pub const MAX_FANOUT: u64 = 1024;

/// Why a shard cannot be read or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HamtError {
    /// The node is not a HAMT shard.
    #[error("not a HAMT shard")]
    NotAShard,
    /// A hash function other than murmur3-x64-64.
    #[error("unsupported shard hash 0x{0:x}")]
    Hash(u64),
    /// A fanout that is not a power of two from 8 to [`MAX_FANOUT`].
    #[error("invalid shard fanout {0}")]
    Fanout(u64),
    /// A link name shorter than the bucket prefix, or a prefix that is not hex.
    #[error("invalid shard link name {0:?}")]
    LinkName(String),
    /// The names' hashes agree in all their bits: no deeper level can tell them apart.
    #[error("shard too deep: names collide in all 64 hash bits")]
    TooDeep,
}

/// The first 64 bits of the name's murmur3-x64-128 (seed 0), big-endian, as Go's
/// `murmur3.New64().Sum(nil)` gives them.
pub fn name_hash(name: &str) -> [u8; 8] {
    let h = murmur3::murmur3_x64_128(&mut name.as_bytes(), 0).expect("reading a slice");
    (h as u64).to_be_bytes()
}

/// A shard's width and what follows from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    fanout: u64,
    bits: u32,
    pad: usize,
}

impl Geometry {
    /// The geometry of shards `fanout` wide.
    pub fn new(fanout: u64) -> Result<Self, HamtError> {
        if !fanout.is_power_of_two() || !(8..=MAX_FANOUT).contains(&fanout) {
            return Err(HamtError::Fanout(fanout));
        }
        Ok(Self {
            fanout,
            bits: fanout.trailing_zeros(),
            pad: format!("{:X}", fanout - 1).len(),
        })
    }

    /// The geometry a shard node's UnixFS data declares.
    pub fn of(fs: &UnixFsData) -> Result<Self, HamtError> {
        if fs.kind != UnixFsKind::HamtShard {
            return Err(HamtError::NotAShard);
        }
        match fs.hash_type {
            Some(MURMUR3_X64_64) => {}
            other => return Err(HamtError::Hash(other.unwrap_or_default())),
        }
        Self::new(fs.fanout.unwrap_or_default())
    }

    /// The shard width.
    pub fn fanout(&self) -> u64 {
        self.fanout
    }

    /// The bucket of `hash` at `depth` (0 at the root), or `None` past the hash's end.
    pub fn bucket(&self, hash: &[u8; 8], depth: usize) -> Option<usize> {
        let from = depth.checked_mul(self.bits as usize)?;
        if from + self.bits as usize > 64 {
            return None;
        }
        let v = u64::from_be_bytes(*hash);
        Some(((v << from) >> (64 - self.bits)) as usize)
    }

    /// The link-name prefix of bucket `i`.
    pub fn prefix(&self, i: usize) -> String {
        format!("{i:0width$X}", width = self.pad)
    }
}

/// What a link of a shard node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShardLink<'a> {
    /// A sub-shard in `bucket`.
    Shard {
        /// Its bucket.
        bucket: usize,
    },
    /// The directory entry `name`, in `bucket`.
    Entry {
        /// Its bucket.
        bucket: usize,
        /// The entry's name.
        name: &'a str,
    },
}

/// Reads a shard link's name.
pub fn classify<'a>(geom: &Geometry, link: &'a PbLink) -> Result<ShardLink<'a>, HamtError> {
    let bad = || HamtError::LinkName(market_core::clip(&link.name).to_string());
    let (prefix, name) = link
        .name
        .split_at_checked(geom.pad)
        .filter(|(p, _)| p.len() == geom.pad)
        .ok_or_else(bad)?;
    let bucket = usize::from_str_radix(prefix, 16).map_err(|_| bad())?;
    if bucket as u64 >= geom.fanout || prefix != geom.prefix(bucket) {
        return Err(bad());
    }
    Ok(if name.is_empty() {
        ShardLink::Shard { bucket }
    } else {
        ShardLink::Entry { bucket, name }
    })
}

/// Where looking `name` up in one shard node (at `depth`) leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The entry.
    Found(Cid),
    /// The sub-shard to look in next.
    Descend(Cid),
    /// There is no such entry.
    Absent,
}

/// One step of a lookup: the bucket of `name` at `depth` in `node`.
pub fn lookup(geom: &Geometry, node: &PbNode, name: &str, depth: usize) -> Result<Step, HamtError> {
    let bucket = geom
        .bucket(&name_hash(name), depth)
        .ok_or(HamtError::TooDeep)?;
    for link in &node.links {
        match classify(geom, link)? {
            ShardLink::Shard { bucket: b } if b == bucket => return Ok(Step::Descend(link.cid)),
            ShardLink::Entry { bucket: b, name: n } if b == bucket && n == name => {
                return Ok(Step::Found(link.cid));
            }
            _ => {}
        }
    }
    Ok(Step::Absent)
}

/// A directory entry to put in a shard: its name, CID and cumulative size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name.
    pub name: String,
    /// The child.
    pub cid: Cid,
    /// The child's cumulative size (its link's `Tsize`).
    pub tsize: u64,
}

/// A built shard tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Built {
    /// The root shard.
    pub root: Cid,
    /// Its cumulative size (blocks of shards and entries).
    pub tsize: u64,
    /// Every shard node by CID, with its bytes.
    pub nodes: Vec<(Cid, Vec<u8>)>,
}

/// Builds the shard tree of `entries` (names unique), `fanout` wide, naming each node with
/// `cid_of` (the import's CID settings).
pub fn build(
    entries: Vec<Entry>,
    fanout: u64,
    cid_of: &dyn Fn(&[u8]) -> Cid,
) -> Result<Built, HamtError> {
    let geom = Geometry::new(fanout)?;
    let hashed = entries
        .into_iter()
        .map(|e| (name_hash(&e.name), e))
        .collect();
    let mut nodes = Vec::new();
    let (root, tsize) = level(&geom, hashed, 0, cid_of, &mut nodes)?;
    Ok(Built { root, tsize, nodes })
}

fn level(
    geom: &Geometry,
    entries: Vec<([u8; 8], Entry)>,
    depth: usize,
    cid_of: &dyn Fn(&[u8]) -> Cid,
    nodes: &mut Vec<(Cid, Vec<u8>)>,
) -> Result<(Cid, u64), HamtError> {
    let mut buckets: BTreeMap<usize, Vec<([u8; 8], Entry)>> = BTreeMap::new();
    for (h, e) in entries {
        let b = geom.bucket(&h, depth).ok_or(HamtError::TooDeep)?;
        buckets.entry(b).or_default().push((h, e));
    }
    let mut bitfield = vec![0u8; (geom.fanout / 8) as usize];
    let mut links = Vec::with_capacity(buckets.len());
    for (b, mut bucket) in buckets {
        let len = bitfield.len();
        bitfield[len - 1 - b / 8] |= 1 << (b % 8);
        let prefix = geom.prefix(b);
        if bucket.len() == 1 {
            let (_, e) = bucket.remove(0);
            links.push(PbLink {
                cid: e.cid,
                name: prefix + &e.name,
                tsize: Some(e.tsize),
            });
        } else {
            let (cid, tsize) = level(geom, bucket, depth + 1, cid_of, nodes)?;
            links.push(PbLink {
                cid,
                name: prefix,
                tsize: Some(tsize),
            });
        }
    }
    let first = bitfield
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(bitfield.len());
    let data = UnixFsData::hamt_shard(bitfield[first..].to_vec(), MURMUR3_X64_64, geom.fanout);
    let tsize_links: u64 = links.iter().filter_map(|l| l.tsize).sum();
    let bytes = PbNode {
        links,
        data: Some(data.encode()),
    }
    .encode();
    let cid = cid_of(&bytes);
    let tsize = bytes.len() as u64 + tsize_links;
    nodes.push((cid, bytes));
    Ok((cid, tsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_and_names() {
        let g = Geometry::new(256).unwrap();
        assert_eq!(g.prefix(10), "0A");
        let h = [0xAB, 0xCD, 0, 0, 0, 0, 0, 0x12];
        assert_eq!(g.bucket(&h, 0), Some(0xAB));
        assert_eq!(g.bucket(&h, 1), Some(0xCD));
        assert_eq!(g.bucket(&h, 7), Some(0x12));
        assert_eq!(g.bucket(&h, 8), None);
        let g16 = Geometry::new(16).unwrap();
        assert_eq!(g16.bucket(&h, 1), Some(0xB));
        assert_eq!(g16.prefix(11), "B");
        assert!(Geometry::new(100).is_err());
        assert!(Geometry::new(1 << 20).is_err());
        let cid = Cid::default();
        let link = |name: &str| PbLink {
            cid,
            name: name.into(),
            tsize: None,
        };
        assert_eq!(
            classify(&g, &link("0Afoo")).unwrap(),
            ShardLink::Entry {
                bucket: 10,
                name: "foo"
            }
        );
        assert_eq!(
            classify(&g, &link("FF")).unwrap(),
            ShardLink::Shard { bucket: 255 }
        );
        for bad in ["", "A", "0a", "ZZx", "é"] {
            assert!(classify(&g, &link(bad)).is_err(), "{bad:?}");
        }
    }
}
