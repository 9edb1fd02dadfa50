//! DAG-PB nodes and the UnixFS data inside them, encoded byte for byte as go-merkledag and
//! go-unixfs do, and decoded strictly (bounded by the block, unknown fields refused), since
//! the bytes come from peers.
//!
//! A `PBNode` is `repeated PBLink Links = 2; optional bytes Data = 1;` written Links first.
//! go-merkledag always writes a link's `Name` (empty for file chunks) and `Tsize`. UnixFS
//! `Data` is `Type = 1, Data = 2, filesize = 3, repeated blocksizes = 4, hashType = 5,
//! fanout = 6, mode = 7, mtime = 8`. Fields are written in field order, as gogo-protobuf does.

use crate::car::put_varint;

use market_core::Cid;
pub use market_core::cid::MAX_DIGEST;
pub use market_core::multicodec::{DAG_CBOR, DAG_PB, RAW};

/// Why a DAG-PB node or its UnixFS data could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DagPbError {
    /// The bytes ended inside a field.
    #[error("truncated protobuf")]
    Truncated,
    /// A varint is longer than 10 bytes or overflows.
    #[error("invalid varint")]
    Varint,
    /// A field that the schema does not have, or with the wrong wire type.
    #[error("unexpected field {field} with wire type {wire}")]
    Field {
        /// Field number.
        field: u64,
        /// Wire type.
        wire: u64,
    },
    /// A link's hash is not a CID.
    #[error("invalid link CID: {0}")]
    Cid(String),
    /// A link has no hash, a name is not UTF-8, or a field repeats.
    #[error("invalid node: {0}")]
    Invalid(&'static str),
}

/// A link of a DAG-PB node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbLink {
    /// The child.
    pub cid: Cid,
    /// Entry name (empty for file chunks).
    pub name: String,
    /// Cumulative size of the child's DAG in bytes.
    pub tsize: Option<u64>,
}

/// A DAG-PB node.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PbNode {
    /// Links in order.
    pub links: Vec<PbLink>,
    /// The node's data (UnixFS).
    pub data: Option<Vec<u8>>,
}

fn put_bytes(field: u64, bytes: &[u8], out: &mut Vec<u8>) {
    put_varint(field << 3 | 2, out);
    put_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// A protobuf reader over one message.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, DagPbError> {
        let mut n = 0u64;
        for i in 0..10 {
            let (&b, rest) = self.buf.split_first().ok_or(DagPbError::Truncated)?;
            self.buf = rest;
            if i == 9 && b > 1 {
                return Err(DagPbError::Varint);
            }
            n |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(DagPbError::Varint)
    }

    fn bytes(&mut self) -> Result<&'a [u8], DagPbError> {
        let len = self.varint()?;
        if len > self.buf.len() as u64 {
            return Err(DagPbError::Truncated);
        }
        let (b, rest) = self.buf.split_at(len as usize);
        self.buf = rest;
        Ok(b)
    }

    /// `(field, wire type)` of the next key, or `None` at the end.
    fn key(&mut self) -> Result<Option<(u64, u64)>, DagPbError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let k = self.varint()?;
        Ok(Some((k >> 3, k & 7)))
    }

    fn skip(&mut self, field: u64, wire: u64) -> Result<(), DagPbError> {
        match wire {
            0 => self.varint().map(drop),
            1 | 5 => {
                let n = if wire == 1 { 8 } else { 4 };
                if self.buf.len() < n {
                    return Err(DagPbError::Truncated);
                }
                self.buf = &self.buf[n..];
                Ok(())
            }
            2 => self.bytes().map(drop),
            _ => Err(DagPbError::Field { field, wire }),
        }
    }
}

impl PbNode {
    /// The canonical encoding: links, then data.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.links.len() * 48 + 16);
        let mut link = Vec::with_capacity(64);
        for l in &self.links {
            link.clear();
            put_bytes(1, &l.cid.to_bytes(), &mut link);
            put_bytes(2, l.name.as_bytes(), &mut link);
            if let Some(t) = l.tsize {
                put_varint(3 << 3, &mut link);
                put_varint(t, &mut link);
            }
            put_bytes(2, &link, &mut out);
        }
        if let Some(d) = &self.data {
            put_bytes(1, d, &mut out);
        }
        out
    }

    /// Decodes a node. Links and data may come in either order; anything else is refused.
    pub fn decode(bytes: &[u8]) -> Result<Self, DagPbError> {
        let mut r = Reader { buf: bytes };
        let mut node = PbNode::default();
        while let Some((field, wire)) = r.key()? {
            match (field, wire) {
                (1, 2) => {
                    if node.data.is_some() {
                        return Err(DagPbError::Invalid("Data repeats"));
                    }
                    node.data = Some(r.bytes()?.to_vec());
                }
                (2, 2) => node.links.push(decode_link(r.bytes()?)?),
                _ => return Err(DagPbError::Field { field, wire }),
            }
        }
        Ok(node)
    }
}

fn decode_link(bytes: &[u8]) -> Result<PbLink, DagPbError> {
    let mut r = Reader { buf: bytes };
    let (mut cid, mut name, mut tsize) = (None, None, None);
    while let Some((field, wire)) = r.key()? {
        match (field, wire) {
            (1, 2) if cid.is_none() => {
                let b = r.bytes()?;
                cid = Some(Cid::try_from(b).map_err(|e| DagPbError::Cid(e.to_string()))?);
            }
            (2, 2) if name.is_none() => {
                let b = r.bytes()?;
                name = Some(
                    String::from_utf8(b.to_vec())
                        .map_err(|_| DagPbError::Invalid("link name is not UTF-8"))?,
                );
            }
            (3, 0) if tsize.is_none() => tsize = Some(r.varint()?),
            _ => return Err(DagPbError::Field { field, wire }),
        }
    }
    Ok(PbLink {
        cid: cid.ok_or(DagPbError::Invalid("link without a hash"))?,
        name: name.unwrap_or_default(),
        tsize,
    })
}

/// UnixFS node kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnixFsKind {
    /// Raw bytes (old leaves).
    Raw,
    /// A directory.
    Directory,
    /// A file (root or intermediate node).
    File,
    /// Metadata.
    Metadata,
    /// A symbolic link.
    Symlink,
    /// A HAMT-sharded directory.
    HamtShard,
}

impl UnixFsKind {
    fn from_u64(n: u64) -> Result<Self, DagPbError> {
        Ok(match n {
            0 => Self::Raw,
            1 => Self::Directory,
            2 => Self::File,
            3 => Self::Metadata,
            4 => Self::Symlink,
            5 => Self::HamtShard,
            _ => return Err(DagPbError::Invalid("unknown UnixFS type")),
        })
    }

    fn code(self) -> u64 {
        match self {
            Self::Raw => 0,
            Self::Directory => 1,
            Self::File => 2,
            Self::Metadata => 3,
            Self::Symlink => 4,
            Self::HamtShard => 5,
        }
    }
}

/// The UnixFS message in a DAG-PB node's data.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnixFsData {
    /// What the node is.
    pub kind: UnixFsKind,
    /// Inline bytes (file leaves in the old layout, symlink targets).
    pub data: Option<Vec<u8>>,
    /// Bytes of file below this node.
    pub filesize: Option<u64>,
    /// File bytes under each link, in link order.
    pub blocksizes: Vec<u64>,
    /// A HAMT shard's hash function (a multicodec; murmur3-x64-64 is 0x22).
    pub hash_type: Option<u64>,
    /// A HAMT shard's width.
    pub fanout: Option<u64>,
}

impl UnixFsData {
    /// A file node over children holding `blocksizes` bytes each.
    pub fn file(blocksizes: Vec<u64>) -> Self {
        Self {
            kind: UnixFsKind::File,
            data: None,
            filesize: Some(blocksizes.iter().sum()),
            blocksizes,
            hash_type: None,
            fanout: None,
        }
    }

    /// A plain directory's data: just its type.
    pub fn directory() -> Self {
        Self {
            kind: UnixFsKind::Directory,
            data: None,
            filesize: None,
            blocksizes: Vec::new(),
            hash_type: None,
            fanout: None,
        }
    }

    /// A HAMT shard's data: its bitfield (big-endian, leading zero bytes dropped), hash
    /// function and width.
    pub fn hamt_shard(bitfield: Vec<u8>, hash_type: u64, fanout: u64) -> Self {
        Self {
            kind: UnixFsKind::HamtShard,
            data: Some(bitfield),
            filesize: None,
            blocksizes: Vec::new(),
            hash_type: Some(hash_type),
            fanout: Some(fanout),
        }
    }

    /// The protobuf encoding go-unixfs writes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.blocksizes.len() * 4);
        put_varint(1 << 3, &mut out);
        put_varint(self.kind.code(), &mut out);
        if let Some(d) = &self.data {
            put_bytes(2, d, &mut out);
        }
        if let Some(s) = self.filesize {
            put_varint(3 << 3, &mut out);
            put_varint(s, &mut out);
        }
        for b in &self.blocksizes {
            put_varint(4 << 3, &mut out);
            put_varint(*b, &mut out);
        }
        for (field, v) in [(5, self.hash_type), (6, self.fanout)] {
            if let Some(v) = v {
                put_varint(field << 3, &mut out);
                put_varint(v, &mut out);
            }
        }
        out
    }

    /// Decodes the message; mode and mtime are skipped.
    pub fn decode(bytes: &[u8]) -> Result<Self, DagPbError> {
        let mut r = Reader { buf: bytes };
        let (mut kind, mut data, mut filesize, mut blocksizes) = (None, None, None, Vec::new());
        let (mut hash_type, mut fanout) = (None, None);
        while let Some((field, wire)) = r.key()? {
            match (field, wire) {
                (1, 0) => kind = Some(UnixFsKind::from_u64(r.varint()?)?),
                (2, 2) => data = Some(r.bytes()?.to_vec()),
                (3, 0) => filesize = Some(r.varint()?),
                (4, 0) => blocksizes.push(r.varint()?),
                (4, 2) => {
                    let mut packed = Reader { buf: r.bytes()? };
                    while !packed.buf.is_empty() {
                        blocksizes.push(packed.varint()?);
                    }
                }
                (5, 0) => hash_type = Some(r.varint()?),
                (6, 0) => fanout = Some(r.varint()?),
                (5..=8, _) => r.skip(field, wire)?,
                _ => return Err(DagPbError::Field { field, wire }),
            }
        }
        Ok(Self {
            kind: kind.ok_or(DagPbError::Invalid("UnixFS data without a type"))?,
            data,
            filesize,
            blocksizes,
            hash_type,
            fanout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_junk() {
        let child =
            Cid::try_from("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku").unwrap();
        let node = PbNode {
            links: vec![PbLink {
                cid: child,
                name: String::new(),
                tsize: Some(0),
            }],
            data: Some(UnixFsData::file(vec![0]).encode()),
        };
        let bytes = node.encode();
        // Link (field 2) first, with an empty name written out.
        assert_eq!(bytes[0], 0x12);
        assert_eq!(PbNode::decode(&bytes).unwrap(), node);
        let fs = UnixFsData::decode(node.data.as_ref().unwrap()).unwrap();
        assert_eq!(fs.kind, UnixFsKind::File);
        assert_eq!(fs.blocksizes, vec![0]);
        assert!(PbNode::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(PbNode::decode(&[0x18, 0x01]).is_err());
        assert!(
            PbNode::decode(&[0x12, 0x02, 0x12, 0x00]).is_err(),
            "link without hash"
        );
        assert!(UnixFsData::decode(&[0x18, 0x01]).is_err(), "no type");
        assert!(PbNode::decode(&[0xff; 11]).is_err());
    }
}
