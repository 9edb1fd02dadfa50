//! Directory trees as UnixFS: importing a directory into one CARv1 with the root CID Kubo's
//! `ipfs add -r --cid-version=1` gives, and writing a tree (plain or HAMT-sharded
//! directories, files) back out.
//!
//! Import walks the tree twice, as file import reads a file twice. The first walk builds
//! every file's DAG (keeping only its interior nodes) and every directory node: links sorted
//! by name bytes, and a HAMT shard tree ([`crate::hamt`]) instead of a plain node once the
//! links' names and CIDs add up to more than [`ImportProfile::shard_above`], as boxo
//! estimates it. The second walk writes the CAR depth-first from the root, each directory
//! block before its entries and each file's blocks in file order, every block once. A file
//! that changes between the walks fails the import.
//!
//! Only regular files and directories are imported: symbolic links, devices and names that
//! are not UTF-8 are refused with [`UnixFsError::Entry`] rather than silently left out.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use market_core::Cid;

use crate::car::CarWriter;
use crate::dagpb::{DAG_PB, PbLink, PbNode, RAW, UnixFsData, UnixFsKind};
use crate::hamt::{self, Geometry, ShardLink};
use crate::unixfs::{
    Child, IDENTITY, ImportProfile, Nodes, UnixFsError, VerifiedCar, Writer, block_cid, build,
    decode_node, decode_unixfs, write_file,
};

/// Deepest directory nesting written out: a DAG from a peer could nest far deeper than any
/// filesystem allows.
pub const MAX_DEPTH: usize = 1024;

/// The outcome of a directory import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirImportReport {
    /// The root directory's CID.
    pub root: Cid,
    /// Regular files imported.
    pub files: u64,
    /// Directories imported, the root included.
    pub directories: u64,
    /// Bytes of file content.
    pub bytes: u64,
    /// Blocks written to the CAR.
    pub blocks: u64,
    /// Bytes of CAR written.
    pub car_size: u64,
}

/// The outcome of writing a tree out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeReport {
    /// The root written.
    pub root: Cid,
    /// Files written.
    pub files: u64,
    /// Directories created, the root included when it is one.
    pub directories: u64,
    /// Bytes of file content written.
    pub bytes: u64,
    /// Blocks in the CAR (all verified), when written from a CAR.
    pub blocks: u64,
}

/// The bytes of file content under `dir` (what import progress counts, twice).
pub fn tree_bytes(dir: &Path) -> Result<u64, UnixFsError> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if meta.is_dir() {
            total += tree_bytes(&entry.path())?;
        } else if meta.is_file() {
            total += meta.len();
        }
    }
    Ok(total)
}

/// Imports the tree under `dir` and writes it to `out` as a CARv1 rooted at the root
/// directory. `progress` sees bytes processed out of twice [`tree_bytes`] (two walks).
pub fn import_dir(
    dir: &Path,
    profile: ImportProfile,
    out: impl Write,
    progress: &mut dyn FnMut(u64),
) -> Result<DirImportReport, UnixFsError> {
    let mut tree = Tree {
        profile,
        dirs: HashMap::new(),
        files: HashMap::new(),
        file_count: 0,
        dir_count: 0,
        bytes: 0,
    };
    let root = tree.add_dir(dir, progress)?.cid;
    let mut car = CarWriter::new(BufWriter::with_capacity(1 << 20, out), &[root])?;
    let mut emit = Emit {
        tree: &tree,
        written: HashSet::new(),
        blocks: 0,
        done: tree.bytes,
    };
    emit.block(&root, &mut car, progress)?;
    let blocks = emit.blocks;
    let car_size = car.position();
    car.finish()?.flush()?;
    Ok(DirImportReport {
        root,
        files: tree.file_count,
        directories: tree.dir_count,
        bytes: tree.bytes,
        blocks,
        car_size,
    })
}

/// A file whose DAG was built in the first walk, to re-read in the second.
struct FileDag {
    path: PathBuf,
    nodes: Nodes,
    len: u64,
    modified: Option<SystemTime>,
}

/// What the first walk found: every directory block and every file's DAG, by CID.
struct Tree {
    profile: ImportProfile,
    dirs: HashMap<Cid, Vec<u8>>,
    files: HashMap<Cid, FileDag>,
    file_count: u64,
    dir_count: u64,
    bytes: u64,
}

fn entry_error(path: &Path, reason: &'static str) -> UnixFsError {
    UnixFsError::Entry {
        path: path.display().to_string(),
        reason,
    }
}

impl Tree {
    fn cid_of(&self, bytes: &[u8]) -> Cid {
        block_cid(DAG_PB, self.profile.hash, self.profile.inline_limit, bytes)
    }

    fn add_dir(&mut self, dir: &Path, progress: &mut dyn FnMut(u64)) -> Result<Child, UnixFsError> {
        let mut entries = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let path = entry.path();
            let name = entry
                .file_name()
                .into_string()
                .map_err(|_| entry_error(&path, "name is not UTF-8"))?;
            entries.push((name, path, entry.file_type()?));
        }
        // UnixFS orders a directory's links by name bytes.
        entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut links = Vec::with_capacity(entries.len());
        for (name, path, kind) in entries {
            let child = if kind.is_dir() {
                self.add_dir(&path, progress)?
            } else if kind.is_file() {
                self.add_file(&path, progress)?
            } else if kind.is_symlink() {
                return Err(entry_error(&path, "symbolic links are not imported"));
            } else {
                return Err(entry_error(&path, "neither a file nor a directory"));
            };
            links.push(PbLink {
                cid: child.cid,
                name,
                tsize: Some(child.tsize),
            });
        }
        self.dir_count += 1;
        let estimate: usize = links
            .iter()
            .map(|l| l.name.len() + l.cid.encoded_len())
            .sum();
        let shard_above = self.profile.shard_above;
        if shard_above > 0 && estimate > shard_above {
            let entries = links
                .into_iter()
                .map(|l| hamt::Entry {
                    name: l.name,
                    cid: l.cid,
                    tsize: l.tsize.unwrap_or_default(),
                })
                .collect();
            let built = hamt::build(entries, hamt::DEFAULT_FANOUT, &|b| self.cid_of(b)).map_err(
                |reason| UnixFsError::Shard {
                    cid: dir.display().to_string(),
                    reason,
                },
            )?;
            self.dirs.extend(built.nodes);
            return Ok(Child::dir(built.root, built.tsize));
        }
        let tsize_links: u64 = links.iter().filter_map(|l| l.tsize).sum();
        let bytes = PbNode {
            links,
            data: Some(UnixFsData::directory().encode()),
        }
        .encode();
        let cid = self.cid_of(&bytes);
        let tsize = bytes.len() as u64 + tsize_links;
        self.dirs.insert(cid, bytes);
        Ok(Child::dir(cid, tsize))
    }

    fn add_file(
        &mut self,
        path: &Path,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Child, UnixFsError> {
        let f = File::open(path)?;
        let meta = f.metadata()?;
        let base = self.bytes;
        let (child, nodes) = build(&f, self.profile, &mut |n| progress(base + n))?;
        if child.filesize != meta.len() {
            return Err(UnixFsError::Changed);
        }
        self.file_count += 1;
        self.bytes += meta.len();
        self.files.entry(child.cid).or_insert(FileDag {
            path: path.to_path_buf(),
            nodes,
            len: meta.len(),
            modified: meta.modified().ok(),
        });
        Ok(child)
    }
}

/// The second walk: blocks depth-first from the root, each once.
struct Emit<'a> {
    tree: &'a Tree,
    written: HashSet<Cid>,
    blocks: u64,
    /// Bytes processed so far (the first walk's count, then the files re-read).
    done: u64,
}

impl Emit<'_> {
    fn block<W: Write>(
        &mut self,
        cid: &Cid,
        car: &mut CarWriter<W>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<(), UnixFsError> {
        if self.written.contains(cid) {
            return Ok(());
        }
        let tree = self.tree;
        if let Some(bytes) = tree.dirs.get(cid) {
            if cid.hash().code() != IDENTITY || tree.profile.write_identity_blocks {
                self.written.insert(*cid);
                car.write_section(&cid.to_bytes(), bytes)?;
                self.blocks += 1;
            }
            for link in decode_node(cid, bytes)?.links {
                self.block(&link.cid, car, progress)?;
            }
            return Ok(());
        }
        let Some(file) = tree.files.get(cid) else {
            return Err(UnixFsError::MissingBlock(cid.to_string()));
        };
        let f = File::open(&file.path)?;
        let unchanged =
            |m: &std::fs::Metadata| m.len() == file.len && m.modified().ok() == file.modified;
        if !unchanged(&f.metadata()?) {
            return Err(UnixFsError::Changed);
        }
        let base = self.done;
        let mut w = Writer {
            car,
            input: std::io::BufReader::with_capacity(1 << 20, &f),
            nodes: &file.nodes,
            chunk_size: tree.profile.chunk_size,
            buf: Vec::with_capacity(tree.profile.chunk_size),
            written: &mut self.written,
            write_identity: tree.profile.write_identity_blocks,
            blocks: 0,
            read: 0,
            base,
            progress,
        };
        w.emit(cid)?;
        let (blocks, read) = (w.blocks, w.read);
        if read != file.len || !unchanged(&File::open(&file.path)?.metadata()?) {
            return Err(UnixFsError::Changed);
        }
        self.blocks += blocks;
        self.done += read;
        Ok(())
    }
}

/// Verifies every block of the CAR at `car` and writes what `root` (or the CAR's only root)
/// holds to `out`: a file, or a directory tree created at `out` (which must not exist).
pub fn export_tree(car: &Path, root: Option<Cid>, out: &Path) -> Result<TreeReport, UnixFsError> {
    let mut car = VerifiedCar::open(car)?;
    let root = car.root(root)?;
    let blocks = car.block_count();
    let mut report = write_tree(&root, &mut |cid| car.get(cid), out)?;
    report.blocks = blocks;
    Ok(report)
}

/// Writes what `root` holds to `out`, fetching blocks through `get`: a file, or a directory
/// (plain or HAMT-sharded, nested) created at `out`, which must not exist. Entry names that
/// could leave `out` (empty, `.`, `..`, containing `/` or NUL) are refused.
pub fn write_tree(
    root: &Cid,
    get: &mut dyn FnMut(&Cid) -> Result<Vec<u8>, UnixFsError>,
    out: &Path,
) -> Result<TreeReport, UnixFsError> {
    let mut report = TreeReport {
        root: *root,
        files: 0,
        directories: 0,
        bytes: 0,
        blocks: 0,
    };
    write_entry(root, get, out, 0, &mut report)?;
    Ok(report)
}

fn write_entry(
    cid: &Cid,
    get: &mut dyn FnMut(&Cid) -> Result<Vec<u8>, UnixFsError>,
    out: &Path,
    depth: usize,
    report: &mut TreeReport,
) -> Result<(), UnixFsError> {
    if depth > MAX_DEPTH {
        return Err(entry_error(out, "directories nested too deep"));
    }
    let kind = match cid.codec() {
        RAW => UnixFsKind::File,
        DAG_PB => {
            let data = get(cid)?;
            let node = decode_node(cid, &data)?;
            let fs = decode_unixfs(cid, &node)?;
            match fs.kind {
                UnixFsKind::Directory => {
                    std::fs::create_dir(out)?;
                    report.directories += 1;
                    for link in &node.links {
                        let path = entry_path(out, &link.name)?;
                        write_entry(&link.cid, get, &path, depth + 1, report)?;
                    }
                    return Ok(());
                }
                UnixFsKind::HamtShard => {
                    std::fs::create_dir(out)?;
                    report.directories += 1;
                    let geom = geometry(cid, &fs)?;
                    return write_shard(cid, &node, geom, 0, get, out, depth, report);
                }
                kind => kind,
            }
        }
        _ => UnixFsKind::File,
    };
    if !matches!(kind, UnixFsKind::File | UnixFsKind::Raw) {
        return Err(UnixFsError::NotAFile {
            cid: cid.to_string(),
            kind,
        });
    }
    let mut f = BufWriter::with_capacity(1 << 20, File::create_new(out)?);
    report.bytes += write_file(cid, get, &mut f)?;
    f.flush()?;
    report.files += 1;
    Ok(())
}

fn geometry(cid: &Cid, fs: &UnixFsData) -> Result<Geometry, UnixFsError> {
    Geometry::of(fs).map_err(|reason| UnixFsError::Shard {
        cid: cid.to_string(),
        reason,
    })
}

/// The entries of one shard node (at `level` in its tree), sub-shards followed.
#[allow(clippy::too_many_arguments)]
fn write_shard(
    cid: &Cid,
    node: &PbNode,
    geom: Geometry,
    level: usize,
    get: &mut dyn FnMut(&Cid) -> Result<Vec<u8>, UnixFsError>,
    out: &Path,
    depth: usize,
    report: &mut TreeReport,
) -> Result<(), UnixFsError> {
    let shard_error = |reason| UnixFsError::Shard {
        cid: cid.to_string(),
        reason,
    };
    for link in &node.links {
        match hamt::classify(&geom, link).map_err(shard_error)? {
            ShardLink::Entry { name, .. } => {
                let path = entry_path(out, name)?;
                write_entry(&link.cid, get, &path, depth + 1, report)?;
            }
            ShardLink::Shard { .. } => {
                // A level deeper than the hash has bits for cannot hold anything new.
                if (level + 2) * geom.fanout().trailing_zeros() as usize > 64 {
                    return Err(shard_error(hamt::HamtError::TooDeep));
                }
                let data = get(&link.cid)?;
                let sub = decode_node(&link.cid, &data)?;
                let fs = decode_unixfs(&link.cid, &sub)?;
                if geometry(&link.cid, &fs)? != geom {
                    return Err(UnixFsError::Shard {
                        cid: link.cid.to_string(),
                        reason: hamt::HamtError::Fanout(fs.fanout.unwrap_or_default()),
                    });
                }
                write_shard(&link.cid, &sub, geom, level + 1, get, out, depth, report)?;
            }
        }
    }
    Ok(())
}

/// `dir/name`, for a name that stays inside `dir`.
fn entry_path(dir: &Path, name: &str) -> Result<PathBuf, UnixFsError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\0']) {
        return Err(UnixFsError::Entry {
            path: format!("{}/{}", dir.display(), market_core::clip(name)),
            reason: "entry name would leave its directory",
        });
    }
    Ok(dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_directory_are_refused() {
        let dir = Path::new("/out");
        for bad in ["", ".", "..", "a/b", "../x", "nul\0"] {
            assert!(
                matches!(entry_path(dir, bad), Err(UnixFsError::Entry { .. })),
                "{bad:?}"
            );
        }
        assert_eq!(entry_path(dir, "a.txt").unwrap(), Path::new("/out/a.txt"));
        assert_eq!(entry_path(dir, "..a").unwrap(), Path::new("/out/..a"));
    }
}
