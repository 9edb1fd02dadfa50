//! Importing a file into a UnixFS DAG written as a CARv1, and exporting it back.
//!
//! The DAG is built exactly as go-unixfs's balanced layout does (the code behind
//! `lotus client import` and `ipfs add`), so root CIDs equal those tools' for the same
//! settings ([`ImportProfile::LOTUS`], [`ImportProfile::KUBO`]): fixed-size chunks become raw
//! leaves (CIDv1), a file of one chunk is its own root, and each new level puts the previous
//! root first under a new node that is filled up to `max_links` children.
//!
//! Import makes two passes over the file. The first hashes every chunk and keeps only the
//! interior nodes (about 50 bytes per chunk); the second writes the CAR in depth-first order
//! (root first, as `ipfs dag export` and Lotus's CAR generation do), re-reading the chunks in
//! file order. Repeated blocks are written once; blocks inlined in identity CIDs are written
//! (once) only where the profile says so, as Lotus's CARs carry them. Export verifies every block of the CAR against its CID before writing a byte, then
//! walks the DAG from the root, so a missing or corrupt block fails the export.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use cid::multihash::Multihash;
use market_core::Cid;
use sha2::Digest;

use crate::car::{CarError, CarIndexer, CarWriter};
use crate::dagpb::{
    DAG_CBOR, DAG_PB, DagPbError, MAX_DIGEST, PbLink, PbNode, RAW, UnixFsData, UnixFsKind,
};

pub use market_core::multicodec::{BLAKE2B_256, IDENTITY, SHA2_256};

/// Largest chunk accepted: go-unixfs refuses chunks over 1 MiB plus change, and bitswap
/// cannot move blocks over 2 MiB.
pub const MAX_CHUNK: usize = 1 << 20;

/// The hash function of a DAG's blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DagHash {
    /// blake2b-256 (Lotus, Filecoin).
    Blake2b256,
    /// sha2-256 (Kubo, ipfs-car).
    Sha256,
}

impl DagHash {
    fn code(self) -> u64 {
        match self {
            Self::Blake2b256 => BLAKE2B_256,
            Self::Sha256 => SHA2_256,
        }
    }
}

/// How a file is cut and linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportProfile {
    /// Block hash.
    pub hash: DagHash,
    /// Bytes per leaf.
    pub chunk_size: usize,
    /// Links per interior node.
    pub max_links: usize,
    /// Blocks of at most this many bytes get identity CIDs (0 disables inlining).
    pub inline_limit: usize,
    /// Whether identity blocks get CAR sections too. go-car's `SelectiveCar`, which makes
    /// Lotus's online-deal CAR, writes every block its traversal loads, identity ones
    /// included (each CID once), so the CAR and its piece CID match Lotus's only with them,
    /// and a CAR whose root is inline still starts with its root.
    pub write_identity_blocks: bool,
    /// A directory whose links' names and CIDs add up to more bytes than this becomes a
    /// HAMT shard tree (boxo's `HAMTShardingSize` with its default links estimate); 0
    /// never shards.
    pub shard_above: usize,
}

impl ImportProfile {
    /// `lotus client import` and venus-market's market-client: blake2b-256, 1 MiB chunks, 1024
    /// links, blocks of ≤126 bytes inlined.
    pub const LOTUS: Self = Self {
        hash: DagHash::Blake2b256,
        chunk_size: 1 << 20,
        max_links: 1024,
        inline_limit: 126,
        write_identity_blocks: true,
        shard_above: 256 << 10,
    };

    /// Kubo `ipfs add --cid-version=1` (raw leaves): sha2-256, 256 KiB chunks, 174 links.
    pub const KUBO: Self = Self {
        hash: DagHash::Sha256,
        chunk_size: 256 << 10,
        max_links: 174,
        inline_limit: 0,
        write_identity_blocks: false,
        shard_above: 256 << 10,
    };

    fn check(&self) -> Result<(), UnixFsError> {
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK {
            return Err(UnixFsError::Profile(format!(
                "chunk size {} is outside 1..={MAX_CHUNK}",
                self.chunk_size
            )));
        }
        if !(2..=1 << 16).contains(&self.max_links) {
            return Err(UnixFsError::Profile(format!(
                "{} links per node is outside 2..=65536",
                self.max_links
            )));
        }
        if self.inline_limit > MAX_DIGEST - 2 {
            return Err(UnixFsError::Profile(format!(
                "inline limit {} is over {}",
                self.inline_limit,
                MAX_DIGEST - 2
            )));
        }
        Ok(())
    }
}

/// Why an import or export failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnixFsError {
    /// Reading or writing failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The import settings are unusable.
    #[error("invalid import profile: {0}")]
    Profile(String),
    /// The file changed between the two import passes.
    #[error("the file changed while it was being imported")]
    Changed,
    /// The CAR is malformed.
    #[error("CAR: {0}")]
    Car(#[from] CarError),
    /// The CAR names no single root and none was given.
    #[error("CAR has {0} roots; name the one to export")]
    Roots(usize),
    /// A block's bytes do not hash to its CID.
    #[error("block {0} does not match its CID")]
    HashMismatch(String),
    /// A block the DAG links to is not there.
    #[error("block {0} is missing")]
    MissingBlock(String),
    /// A CID uses a hash function this crate does not verify.
    #[error("unsupported multihash 0x{0:x}")]
    UnsupportedHash(u64),
    /// A block uses a codec that cannot be part of this DAG.
    #[error("block {cid} has unsupported codec 0x{codec:x}")]
    Codec {
        /// The block.
        cid: String,
        /// Its codec.
        codec: u64,
    },
    /// A DAG-PB node or its UnixFS data is malformed.
    #[error("block {cid}: {reason}")]
    Node {
        /// The block.
        cid: String,
        /// What is wrong.
        reason: DagPbError,
    },
    /// The DAG is not a single file (a directory, a symlink).
    #[error("block {cid} is a {kind:?}, not a file")]
    NotAFile {
        /// The block.
        cid: String,
        /// What it is.
        kind: UnixFsKind,
    },
    /// A directory entry cannot be imported or exported (a symlink, a name that is not
    /// UTF-8 or would leave the output directory).
    #[error("{path}: {reason}")]
    Entry {
        /// The entry.
        path: String,
        /// Why.
        reason: &'static str,
    },
    /// A HAMT shard is malformed.
    #[error("block {cid}: {reason}")]
    Shard {
        /// The block.
        cid: String,
        /// What is wrong.
        reason: crate::hamt::HamtError,
    },
    /// A node's sizes do not add up to its children.
    #[error("block {0}: sizes do not match its children")]
    SizeMismatch(String),
}

/// A block's CID under `hash`, inlined when it is at most `inline_limit` bytes.
pub fn block_cid(codec: u64, hash: DagHash, inline_limit: usize, data: &[u8]) -> Cid {
    // go-cid's InlineBuilder: anything not over the limit is inlined.
    let mh = if inline_limit > 0 && data.len() <= inline_limit {
        Multihash::<MAX_DIGEST>::wrap(IDENTITY, data)
    } else {
        Multihash::wrap(hash.code(), &digest(hash.code(), data).unwrap_or_default())
    };
    Cid::new_v1(
        codec,
        mh.expect("digests and inlined blocks fit MAX_DIGEST"),
    )
}

fn digest(code: u64, data: &[u8]) -> Option<Vec<u8>> {
    match code {
        SHA2_256 => Some(sha2::Sha256::digest(data).to_vec()),
        BLAKE2B_256 => Some(
            blake2b_simd::Params::new()
                .hash_length(32)
                .hash(data)
                .as_bytes()
                .to_vec(),
        ),
        IDENTITY => Some(data.to_vec()),
        _ => None,
    }
}

/// Checks that `data` hashes to `cid` (sha2-256, blake2b-256 or identity).
pub fn verify_block(cid: &Cid, data: &[u8]) -> Result<(), UnixFsError> {
    let code = cid.hash().code();
    let d = digest(code, data).ok_or(UnixFsError::UnsupportedHash(code))?;
    if d.as_slice() != cid.hash().digest() {
        return Err(UnixFsError::HashMismatch(cid.to_string()));
    }
    Ok(())
}

/// The CIDs a block links to, for DAG-PB, raw and DAG-CBOR blocks.
pub fn block_links(cid: &Cid, data: &[u8]) -> Result<Vec<Cid>, UnixFsError> {
    match cid.codec() {
        RAW => Ok(Vec::new()),
        DAG_PB => Ok(decode_node(cid, data)?
            .links
            .into_iter()
            .map(|l| l.cid)
            .collect()),
        DAG_CBOR => {
            let ipld: ipld_core::ipld::Ipld =
                serde_ipld_dagcbor::from_slice(data).map_err(|e| UnixFsError::Codec {
                    cid: format!("{cid} ({e})"),
                    codec: DAG_CBOR,
                })?;
            let mut out = Vec::new();
            let mut stack = vec![&ipld];
            while let Some(v) = stack.pop() {
                use ipld_core::ipld::Ipld;
                match v {
                    Ipld::Link(c) => out.push(market_core::cid::widen(c)),
                    Ipld::List(l) => stack.extend(l.iter().rev()),
                    Ipld::Map(m) => stack.extend(m.values().rev()),
                    _ => {}
                }
            }
            Ok(out)
        }
        codec => Err(UnixFsError::Codec {
            cid: cid.to_string(),
            codec,
        }),
    }
}

/// Decodes a DAG-PB block, naming it in errors.
pub fn decode_node(cid: &Cid, data: &[u8]) -> Result<PbNode, UnixFsError> {
    PbNode::decode(data).map_err(|reason| UnixFsError::Node {
        cid: cid.to_string(),
        reason,
    })
}

/// Decodes the UnixFS data of a DAG-PB node.
pub fn decode_unixfs(cid: &Cid, node: &PbNode) -> Result<UnixFsData, UnixFsError> {
    UnixFsData::decode(node.data.as_deref().unwrap_or_default()).map_err(|reason| {
        UnixFsError::Node {
            cid: cid.to_string(),
            reason,
        }
    })
}

/// The outcome of an import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// The DAG's root.
    pub root: Cid,
    /// Bytes of file.
    pub file_size: u64,
    /// Blocks written to the CAR.
    pub blocks: u64,
    /// Bytes of CAR written.
    pub car_size: u64,
}

#[derive(Clone, Copy)]
pub(crate) struct Child {
    pub(crate) cid: Cid,
    pub(crate) tsize: u64,
    pub(crate) filesize: u64,
}

impl Child {
    /// A directory (or shard) node: no file bytes of its own.
    pub(crate) fn dir(cid: Cid, tsize: u64) -> Self {
        Self {
            cid,
            tsize,
            filesize: 0,
        }
    }
}

/// The first pass: chunks, hashes and links, keeping interior nodes.
struct Builder<'a, R: Read> {
    input: R,
    profile: ImportProfile,
    /// The chunk read ahead (go-unixfs decides "done" by reading ahead).
    next: Vec<u8>,
    nodes: Nodes,
    read: u64,
    progress: &'a mut dyn FnMut(u64),
}

fn read_full(r: &mut impl Read, buf: &mut Vec<u8>, len: usize) -> std::io::Result<()> {
    buf.clear();
    r.take(len as u64).read_to_end(buf)?;
    Ok(())
}

impl<R: Read> Builder<'_, R> {
    fn advance(&mut self) -> std::io::Result<()> {
        read_full(&mut self.input, &mut self.next, self.profile.chunk_size)?;
        self.read += self.next.len() as u64;
        (self.progress)(self.read);
        Ok(())
    }

    fn done(&self) -> bool {
        self.next.is_empty()
    }

    fn leaf(&mut self) -> std::io::Result<Child> {
        let p = self.profile;
        let child = Child {
            cid: block_cid(RAW, p.hash, p.inline_limit, &self.next),
            tsize: self.next.len() as u64,
            filesize: self.next.len() as u64,
        };
        self.advance()?;
        Ok(child)
    }

    fn fill(&mut self, depth: u32, first: Option<Child>) -> std::io::Result<Child> {
        let mut children: Vec<Child> = first.into_iter().collect();
        while children.len() < self.profile.max_links && !self.done() {
            let c = if depth == 1 {
                self.leaf()?
            } else {
                self.fill(depth - 1, None)?
            };
            children.push(c);
        }
        let node = PbNode {
            links: children
                .iter()
                .map(|c| PbLink {
                    cid: c.cid,
                    name: String::new(),
                    tsize: Some(c.tsize),
                })
                .collect(),
            data: Some(UnixFsData::file(children.iter().map(|c| c.filesize).collect()).encode()),
        };
        let bytes = node.encode();
        let p = self.profile;
        let cid = block_cid(DAG_PB, p.hash, p.inline_limit, &bytes);
        let child = Child {
            cid,
            tsize: bytes.len() as u64 + children.iter().map(|c| c.tsize).sum::<u64>(),
            filesize: children.iter().map(|c| c.filesize).sum(),
        };
        self.nodes
            .insert(cid, (bytes, children.iter().map(|c| c.cid).collect()));
        Ok(child)
    }

    fn layout(&mut self) -> std::io::Result<Child> {
        self.advance()?;
        let mut root = self.leaf()?;
        let mut depth = 1;
        while !self.done() {
            root = self.fill(depth, Some(root))?;
            depth += 1;
        }
        Ok(root)
    }
}

/// Interior nodes by CID: their bytes and their children.
pub(crate) type Nodes = HashMap<Cid, (Vec<u8>, Vec<Cid>)>;

/// The first pass over `input`: the root and the interior nodes.
pub(crate) fn build(
    input: impl Read,
    profile: ImportProfile,
    progress: &mut dyn FnMut(u64),
) -> Result<(Child, Nodes), UnixFsError> {
    profile.check()?;
    let mut b = Builder {
        input: std::io::BufReader::with_capacity(1 << 20, input),
        profile,
        next: Vec::with_capacity(profile.chunk_size),
        nodes: HashMap::new(),
        read: 0,
        progress,
    };
    let root = b.layout()?;
    Ok((root, b.nodes))
}

/// The root CID `file` would import to, without writing anything.
pub fn dag_root(file: &Path, profile: ImportProfile) -> Result<Cid, UnixFsError> {
    Ok(build(File::open(file)?, profile, &mut |_| {})?.0.cid)
}

/// Imports `file` as a UnixFS DAG and writes it to `out` as a CARv1 rooted at the DAG's root.
/// `progress` sees bytes processed out of twice the file size (two passes).
pub fn import_file(
    file: &Path,
    profile: ImportProfile,
    out: impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<ImportReport, UnixFsError> {
    let f = File::open(file)?;
    let before = f.metadata()?;
    let size = before.len();
    let (root, nodes) = build(&f, profile, progress)?;
    let root = root.cid;
    let mut input = &f;
    input.seek(SeekFrom::Start(0))?;
    let mut car = CarWriter::new(BufWriter::with_capacity(1 << 20, out), &[root])?;
    let mut written = HashSet::new();
    let mut w = Writer {
        car: &mut car,
        input: std::io::BufReader::with_capacity(1 << 20, input),
        nodes: &nodes,
        chunk_size: profile.chunk_size,
        buf: Vec::with_capacity(profile.chunk_size),
        written: &mut written,
        write_identity: profile.write_identity_blocks,
        blocks: 0,
        read: 0,
        base: size,
        progress,
    };
    w.emit(&root)?;
    let (blocks, read) = (w.blocks, w.read);
    let car_size = car.position();
    car.finish()?.flush()?;
    let after = File::open(file)?.metadata()?;
    if read != size || after.len() != size || after.modified().ok() != before.modified().ok() {
        return Err(UnixFsError::Changed);
    }
    Ok(ImportReport {
        root,
        file_size: size,
        blocks,
        car_size,
    })
}

/// The second pass: depth-first, root first, leaves re-read in file order.
pub(crate) struct Writer<'a, W: Write, R: Read> {
    pub(crate) car: &'a mut CarWriter<W>,
    pub(crate) input: R,
    pub(crate) nodes: &'a Nodes,
    pub(crate) chunk_size: usize,
    pub(crate) buf: Vec<u8>,
    pub(crate) written: &'a mut HashSet<Cid>,
    pub(crate) write_identity: bool,
    pub(crate) blocks: u64,
    pub(crate) read: u64,
    pub(crate) base: u64,
    pub(crate) progress: &'a mut dyn FnMut(u64),
}

impl<W: Write, R: Read> Writer<'_, W, R> {
    pub(crate) fn emit(&mut self, cid: &Cid) -> Result<(), UnixFsError> {
        let nodes = self.nodes;
        if cid.codec() == DAG_PB
            && let Some((bytes, links)) = nodes.get(cid)
        {
            self.put(cid, bytes)?;
            for l in links {
                self.emit(l)?;
            }
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.buf);
        read_full(&mut self.input, &mut buf, self.chunk_size)?;
        self.read += buf.len() as u64;
        (self.progress)(self.base + self.read);
        let expected = if cid.hash().code() == IDENTITY {
            cid.hash().size() as usize
        } else {
            buf.len()
        };
        if buf.len() != expected {
            return Err(UnixFsError::Changed);
        }
        self.put(cid, &buf)?;
        self.buf = buf;
        Ok(())
    }

    pub(crate) fn put(&mut self, cid: &Cid, data: &[u8]) -> Result<(), UnixFsError> {
        if (cid.hash().code() == IDENTITY && !self.write_identity) || !self.written.insert(*cid) {
            return Ok(());
        }
        self.car.write_section(&cid.to_bytes(), data)?;
        self.blocks += 1;
        Ok(())
    }
}

/// The outcome of an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// The root exported.
    pub root: Cid,
    /// Bytes of file written.
    pub file_size: u64,
    /// Blocks in the CAR (all verified).
    pub blocks: u64,
}

/// A CAR file's blocks, every one verified against its CID.
pub(crate) struct VerifiedCar {
    file: File,
    blocks: HashMap<Cid, (u64, u64)>,
    roots: Vec<Cid>,
}

impl VerifiedCar {
    pub(crate) fn open(car: &Path) -> Result<Self, UnixFsError> {
        let mut file = File::open(car)?;
        let mut indexer = CarIndexer::new();
        let mut blocks = HashMap::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            indexer.update(&buf[..n], &mut |e| {
                blocks.insert(e.cid, (e.offset, e.size));
            })?;
        }
        let roots = indexer.finish()?;
        let mut this = Self {
            file,
            blocks,
            roots,
        };
        let all: Vec<_> = this.blocks.iter().map(|(c, at)| (*c, *at)).collect();
        for (cid, at) in all {
            verify_block(&cid, &this.read(at)?)?;
        }
        Ok(this)
    }

    pub(crate) fn block_count(&self) -> u64 {
        self.blocks.len() as u64
    }

    pub(crate) fn root(&self, root: Option<Cid>) -> Result<Cid, UnixFsError> {
        match (root, self.roots.as_slice()) {
            (Some(r), _) => Ok(r),
            (None, [r]) => Ok(*r),
            (None, rs) => Err(UnixFsError::Roots(rs.len())),
        }
    }

    fn read(&mut self, (offset, size): (u64, u64)) -> std::io::Result<Vec<u8>> {
        let mut data = vec![0u8; size as usize];
        self.file.seek(SeekFrom::Start(offset))?;
        self.file.read_exact(&mut data)?;
        Ok(data)
    }

    pub(crate) fn get(&mut self, cid: &Cid) -> Result<Vec<u8>, UnixFsError> {
        if cid.hash().code() == IDENTITY {
            return Ok(cid.hash().digest().to_vec());
        }
        match self.blocks.get(cid) {
            Some(at) => Ok(self.read(*at)?),
            None => Err(UnixFsError::MissingBlock(cid.to_string())),
        }
    }
}

/// Verifies every block of the CAR at `car` and writes the UnixFS file under `root` (or the
/// CAR's only root) to `out`. Fails on any block that does not match its CID, any missing
/// block, and any node whose sizes disagree with its children.
pub fn export_car(
    car: &Path,
    root: Option<Cid>,
    out: impl Write,
) -> Result<ExportReport, UnixFsError> {
    let mut car = VerifiedCar::open(car)?;
    let root = car.root(root)?;
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let file_size = write_file(&root, &mut |cid| car.get(cid), &mut out)?;
    out.flush()?;
    Ok(ExportReport {
        root,
        file_size,
        blocks: car.blocks.len() as u64,
    })
}

/// Verifies every block of the CAR at `car` and, with `complete`, that every block reachable
/// from `root` (through DAG-PB, raw and DAG-CBOR links) is present. Returns the block count.
pub fn verify_car(car: &Path, root: &Cid, complete: bool) -> Result<u64, UnixFsError> {
    let mut car = VerifiedCar::open(car)?;
    let data = car.get(root)?;
    if complete {
        let mut seen = HashSet::new();
        let mut stack = block_links(root, &data)?;
        while let Some(cid) = stack.pop() {
            if !seen.insert(cid) {
                continue;
            }
            let data = car.get(&cid)?;
            stack.extend(block_links(&cid, &data)?);
        }
    }
    Ok(car.blocks.len() as u64)
}

/// Writes the file under `root` to `out`, fetching blocks (identity CIDs included) through
/// `get`. Returns the bytes written.
pub fn write_file(
    root: &Cid,
    get: &mut dyn FnMut(&Cid) -> Result<Vec<u8>, UnixFsError>,
    out: &mut dyn Write,
) -> Result<u64, UnixFsError> {
    let data = get(root)?;
    match root.codec() {
        RAW => {
            out.write_all(&data)?;
            Ok(data.len() as u64)
        }
        DAG_PB => {
            let node = decode_node(root, &data)?;
            let fs = decode_unixfs(root, &node)?;
            if !matches!(fs.kind, UnixFsKind::File | UnixFsKind::Raw) {
                return Err(UnixFsError::NotAFile {
                    cid: root.to_string(),
                    kind: fs.kind,
                });
            }
            let mismatch = || UnixFsError::SizeMismatch(root.to_string());
            if !fs.blocksizes.is_empty() && fs.blocksizes.len() != node.links.len() {
                return Err(mismatch());
            }
            let mut written = 0u64;
            if let Some(d) = &fs.data {
                out.write_all(d)?;
                written += d.len() as u64;
            }
            for (i, l) in node.links.iter().enumerate() {
                let n = write_file(&l.cid, get, out)?;
                if fs.blocksizes.get(i).is_some_and(|b| *b != n) {
                    return Err(mismatch());
                }
                written += n;
            }
            if fs.filesize.is_some_and(|s| s != written) {
                return Err(mismatch());
            }
            Ok(written)
        }
        codec => Err(UnixFsError::Codec {
            cid: root.to_string(),
            codec,
        }),
    }
}
