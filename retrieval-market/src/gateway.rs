//! IPFS trustless gateway requests (`/ipfs/{cid}[/path]`) and the DAG walks behind them, as
//! ipld/frisbii and go-trustless-utils define them: `dag-scope=all|entity|block`,
//! `entity-bytes=from:to`, depth-first block order, duplicates kept unless `dups=n`.

use std::collections::HashSet;
use std::str::FromStr;

use bytes::Bytes;
use market_core::Cid;
use piecestore::dagpb::{DAG_PB, PbNode, RAW, UnixFsData, UnixFsKind};
use piecestore::hamt::{self, Geometry, HamtError, ShardLink, Step};
use piecestore::unixfs::{IDENTITY, block_links, decode_node, decode_unixfs};
use tokio::sync::mpsc;

use crate::denylist::{Denylist, Verdict};
use crate::provider::{ReadShare, RetrievalProvider};

/// `application/vnd.ipld.car`.
pub const CAR_MEDIA_TYPE: &str = "application/vnd.ipld.car";
/// `application/vnd.ipld.raw`.
pub const RAW_MEDIA_TYPE: &str = "application/vnd.ipld.raw";
/// Longest path accepted, in segments.
const MAX_PATH_SEGMENTS: usize = 64;

/// How much of the DAG under the target a CAR carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DagScope {
    /// Every block reachable from the target.
    All,
    /// The target entity: a whole file (or `entity-bytes` of it), a directory's own node.
    Entity,
    /// The target block only.
    Block,
}

impl DagScope {
    /// The query-string form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Entity => "entity",
            Self::Block => "block",
        }
    }
}

impl FromStr for DagScope {
    type Err = GatewayError;
    fn from_str(s: &str) -> Result<Self, GatewayError> {
        match s {
            "all" => Ok(Self::All),
            "entity" => Ok(Self::Entity),
            "block" => Ok(Self::Block),
            _ => Err(GatewayError::BadRequest(format!(
                "dag-scope must be all, entity or block, not {:?}",
                market_core::clip(s)
            ))),
        }
    }
}

/// `entity-bytes=from:to`: inclusive, negative values count from the end, `to` may be `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntityBytes {
    /// First byte (negative: from the end).
    pub from: i64,
    /// Last byte, inclusive (negative: from the end; `None` for `*`).
    pub to: Option<i64>,
}

impl FromStr for EntityBytes {
    type Err = GatewayError;
    fn from_str(s: &str) -> Result<Self, GatewayError> {
        let bad =
            || GatewayError::BadRequest(format!("invalid entity-bytes {:?}", market_core::clip(s)));
        let (a, b) = s.split_once(':').ok_or_else(bad)?;
        let from = a.parse().map_err(|_| bad())?;
        let to = if b == "*" {
            None
        } else {
            Some(b.parse().map_err(|_| bad())?)
        };
        Ok(Self { from, to })
    }
}

impl EntityBytes {
    /// The half-open byte range of a `len`-byte entity; `None` when it selects nothing.
    pub fn resolve(&self, len: u64) -> Result<Option<(u64, u64)>, GatewayError> {
        let at = |v: i64| -> u64 {
            if v < 0 {
                len.saturating_sub(v.unsigned_abs())
            } else {
                v as u64
            }
        };
        let start = at(self.from);
        let end = match self.to {
            None => len,
            Some(t) => at(t).saturating_add(1).min(len),
        };
        if let Some(t) = self.to
            && (t >= 0) == (self.from >= 0)
            && t < self.from
        {
            return Err(GatewayError::BadRequest(
                "entity-bytes: to is before from".into(),
            ));
        }
        Ok((start < end).then_some((start, end)))
    }
}

/// What is returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Format {
    /// A CARv1 stream.
    Car,
    /// The target block's bytes.
    Raw,
}

/// A parsed trustless-gateway request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRequest {
    /// The root in the URL.
    pub root: Cid,
    /// Path segments below it.
    pub path: Vec<String>,
    /// CAR or raw block.
    pub format: Format,
    /// DAG scope (CAR only).
    pub scope: DagScope,
    /// Byte range of the target file (CAR with `entity` scope only).
    pub entity_bytes: Option<EntityBytes>,
    /// Whether repeated blocks are sent again (`dups=y`; `n` unless asked).
    pub dups: bool,
    /// `filename=` for Content-Disposition.
    pub filename: Option<String>,
}

/// Why a gateway request fails, mapped to a status by the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GatewayError {
    /// 400: the request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// 406: the client accepts nothing a trustless gateway serves.
    #[error("{0}")]
    NotAcceptable(String),
    /// 404: the root, a path segment or a block is unknown.
    #[error("{0}")]
    NotFound(String),
    /// 501: a valid request this gateway does not serve.
    #[error("{0}")]
    Unsupported(String),
    /// 451: a block of the DAG is denylisted.
    #[error("block {0} is denylisted")]
    Denied(String),
    /// 500.
    #[error("{0}")]
    Internal(String),
}

fn percent_decode(s: &str) -> Result<String, GatewayError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| GatewayError::BadRequest("path is not UTF-8".into()))
}

/// Parses `/ipfs/` + `rest` (still percent-encoded), the raw query string and the `Accept`
/// header.
pub fn parse_request(
    rest: &str,
    query: Option<&str>,
    accept: Option<&str>,
) -> Result<GatewayRequest, GatewayError> {
    let mut segments = rest.split('/').filter(|s| !s.is_empty());
    let root_str = segments
        .next()
        .ok_or_else(|| GatewayError::BadRequest("no CID in the path".into()))?;
    let root = Cid::from_str(root_str).map_err(|e| {
        GatewayError::BadRequest(format!(
            "invalid CID {:?}: {e}",
            market_core::clip(root_str)
        ))
    })?;
    let path = segments
        .map(percent_decode)
        .collect::<Result<Vec<_>, _>>()?;
    if path.len() > MAX_PATH_SEGMENTS {
        return Err(GatewayError::BadRequest("path too deep".into()));
    }
    let mut req = GatewayRequest {
        root,
        path,
        format: Format::Car,
        scope: DagScope::All,
        entity_bytes: None,
        dups: false,
        filename: None,
    };
    let mut format = None;
    let mut scope = None;
    let mut dups = None;
    let unsupported = |what: &str| GatewayError::NotAcceptable(format!("{what} is not served"));
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        let v = v.into_owned();
        match k.as_ref() {
            // The query spells out CAR parameters too, and wins over `Accept`.
            "car-version" if v != "1" => return Err(unsupported(&format!("car-version={v}"))),
            "car-order" if !matches!(v.as_str(), "dfs" | "unk") => {
                return Err(unsupported(&format!("car-order={v}")));
            }
            "car-dups" => {
                dups = Some(match v.as_str() {
                    "y" => true,
                    "n" => false,
                    _ => return Err(unsupported(&format!("car-dups={v}"))),
                })
            }
            "format" => {
                format = Some(match v.as_str() {
                    "car" => Format::Car,
                    "raw" => Format::Raw,
                    _ => {
                        return Err(GatewayError::NotAcceptable(format!(
                            "format={v} is not served; use car or raw"
                        )));
                    }
                })
            }
            "dag-scope" => scope = Some(v.parse::<DagScope>()?),
            "entity-bytes" => req.entity_bytes = Some(v.parse()?),
            "filename" => req.filename = Some(v),
            _ => {}
        }
    }
    let (negotiated, accept_dups) = negotiate(accept)?;
    if format.is_none() && accept.is_none() {
        // A strict trustless gateway never guesses a response type (the spec's SHOULD).
        return Err(GatewayError::BadRequest(format!(
            "say what to send: ?format=car|raw or Accept: {CAR_MEDIA_TYPE} or {RAW_MEDIA_TYPE}"
        )));
    }
    req.format = format.or(negotiated).unwrap_or(Format::Car);
    // Asked for nothing, a repeated block is sent once: the spec's default when the gateway
    // controls it.
    req.dups = dups.or(accept_dups).unwrap_or(false);
    // entity-bytes implies dag-scope=entity.
    req.scope = match (scope, &req.entity_bytes) {
        (None, Some(_)) => DagScope::Entity,
        (Some(s), Some(_)) if s != DagScope::Entity => {
            return Err(GatewayError::BadRequest(format!(
                "entity-bytes needs dag-scope=entity, not {}",
                s.as_str()
            )));
        }
        (s, _) => s.unwrap_or(DagScope::All),
    };
    if req.format == Format::Raw && !req.path.is_empty() {
        return Err(GatewayError::BadRequest(
            "a raw block is asked for by its CID alone, without a path".into(),
        ));
    }
    Ok(req)
}

/// Picks the first acceptable media type (`None` when the header is absent or a wildcard)
/// and the `dups` it asks for, if any.
fn negotiate(accept: Option<&str>) -> Result<(Option<Format>, Option<bool>), GatewayError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok((None, None));
    };
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or_default();
        let params: Vec<(&str, &str)> = parts.filter_map(|p| p.split_once('=')).collect();
        match media {
            CAR_MEDIA_TYPE => {
                let ok = params.iter().all(|(k, v)| match *k {
                    "version" => *v == "1",
                    "order" => matches!(*v, "dfs" | "unk"),
                    "dups" => matches!(*v, "y" | "n"),
                    _ => true,
                });
                if ok {
                    let dups = params
                        .iter()
                        .find(|(k, _)| *k == "dups")
                        .map(|(_, v)| *v == "y");
                    return Ok((Some(Format::Car), dups));
                }
            }
            RAW_MEDIA_TYPE => return Ok((Some(Format::Raw), None)),
            "*/*" | "application/*" => return Ok((None, None)),
            _ => {}
        }
    }
    Err(GatewayError::NotAcceptable(format!(
        "this is a trustless gateway: accept {CAR_MEDIA_TYPE} (version=1) or {RAW_MEDIA_TYPE}"
    )))
}

/// The target of a request and the blocks proving the path to it.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// Blocks from the root down to (not including) the target.
    pub path_blocks: Vec<(Cid, Bytes)>,
    /// The target.
    pub target: Cid,
    /// Its bytes.
    pub block: Bytes,
}

/// Blocks a walk reads ahead at most, in one index lookup and parallel reads.
const LOOKAHEAD: usize = 32;
/// Bytes a walk holds read ahead at most (beyond the one block it needs); under load its
/// share of the provider's read budget, which it shares with `/piece` streams.
const LOOKAHEAD_BYTES: u64 = 8 << 20;

/// The bytes of `cid` from the provider (identity CIDs carry their own).
async fn load(provider: &RetrievalProvider, cid: &Cid) -> Result<Bytes, GatewayError> {
    provider
        .block(cid)
        .await
        .map_err(|e| GatewayError::Internal(e.to_string()))?
        .ok_or_else(|| GatewayError::NotFound(format!("block {cid} not found")))
}

/// A block the walk will send: its CID, and its bytes once read.
trait Pending {
    fn slot(&mut self) -> (&Cid, &mut Option<Bytes>);
}

impl Pending for (Cid, Option<Bytes>) {
    fn slot(&mut self) -> (&Cid, &mut Option<Bytes>) {
        (&self.0, &mut self.1)
    }
}

impl Pending for (Cid, u64, Option<Bytes>) {
    fn slot(&mut self) -> (&Cid, &mut Option<Bytes>) {
        (&self.0, &mut self.2)
    }
}

/// Takes the next block off a depth-first `stack` (its top is the end) with its bytes. When
/// they are not read yet, reads them together with the unread blocks that follow it (up to
/// [`LOOKAHEAD`] entries and the walk's `share` of [`LOOKAHEAD_BYTES`]), so a wide node costs
/// one index lookup per batch instead of one per child.
async fn next_block<T: Pending>(
    provider: &RetrievalProvider,
    share: &ReadShare,
    stack: &mut Vec<T>,
) -> Result<Option<(T, Bytes)>, GatewayError> {
    let Some(mut entry) = stack.pop() else {
        return Ok(None);
    };
    if entry.slot().1.is_none() {
        let from = stack.len().saturating_sub(LOOKAHEAD - 1);
        let ahead: Vec<usize> = (from..stack.len())
            .rev()
            .filter(|&i| stack[i].slot().1.is_none())
            .collect();
        let mut cids = vec![*entry.slot().0];
        cids.extend(ahead.iter().map(|&i| *stack[i].slot().0));
        let mut read = provider
            .blocks(&cids, share.bytes(LOOKAHEAD_BYTES))
            .await
            .map_err(|e| GatewayError::Internal(e.to_string()))?
            .into_iter();
        *entry.slot().1 = read.next().flatten();
        // A block read ahead that is missing fails the walk only when it is reached.
        for (&i, data) in ahead.iter().zip(read) {
            *stack[i].slot().1 = data;
        }
    }
    let (cid, slot) = entry.slot();
    let data = slot
        .take()
        .ok_or_else(|| GatewayError::NotFound(format!("block {cid} not found")))?;
    Ok(Some((entry, data)))
}

/// A DAG-PB block and its UnixFS data.
fn unixfs(cid: &Cid, block: &[u8]) -> Result<(PbNode, UnixFsData), GatewayError> {
    let bad = |e: piecestore::unixfs::UnixFsError| GatewayError::Internal(e.to_string());
    let node = decode_node(cid, block).map_err(bad)?;
    let fs = decode_unixfs(cid, &node).map_err(bad)?;
    Ok((node, fs))
}

/// A shard that cannot be read: a malformed block in the store.
fn shard_error(cid: &Cid, e: HamtError) -> GatewayError {
    GatewayError::Internal(format!("HAMT shard {cid}: {e}"))
}

/// Follows `path` from `root` through UnixFS directories, plain or HAMT-sharded (the shard
/// nodes on the way are path blocks, as the trustless-gateway spec asks).
pub async fn resolve(
    provider: &RetrievalProvider,
    root: &Cid,
    path: &[String],
) -> Result<Resolved, GatewayError> {
    let mut cid = *root;
    let mut block = load(provider, &cid).await?;
    let mut path_blocks = Vec::new();
    for seg in path {
        if cid.codec() != DAG_PB {
            return Err(GatewayError::NotFound(format!(
                "{cid} is not a directory; cannot resolve {seg:?}"
            )));
        }
        let (node, fs) = unixfs(&cid, &block)?;
        let absent =
            || GatewayError::NotFound(format!("no {:?} under {root}", market_core::clip(seg)));
        let next = match fs.kind {
            UnixFsKind::Directory => {
                let link = node
                    .links
                    .iter()
                    .find(|l| &l.name == seg)
                    .ok_or_else(absent)?;
                path_blocks.push((cid, block));
                link.cid
            }
            UnixFsKind::HamtShard => {
                let geom = Geometry::of(&fs).map_err(|e| shard_error(&cid, e))?;
                let (mut node, mut depth) = (node, 0);
                loop {
                    let step =
                        hamt::lookup(&geom, &node, seg, depth).map_err(|e| shard_error(&cid, e))?;
                    path_blocks.push((cid, block));
                    match step {
                        Step::Found(c) => break c,
                        Step::Absent => return Err(absent()),
                        Step::Descend(c) => {
                            block = load(provider, &c).await?;
                            let (n, fs) = unixfs(&c, &block)?;
                            if Geometry::of(&fs).ok() != Some(geom) {
                                return Err(shard_error(&c, HamtError::NotAShard));
                            }
                            (cid, node, depth) = (c, n, depth + 1);
                        }
                    }
                }
            }
            _ => {
                return Err(GatewayError::NotFound(format!(
                    "{cid} is not a directory; cannot resolve {seg:?}"
                )));
            }
        };
        block = load(provider, &next).await?;
        cid = next;
    }
    Ok(Resolved {
        path_blocks,
        target: cid,
        block,
    })
}

/// Where CAR bytes go: a bounded channel to the HTTP body.
pub struct CarSink {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    seen: Option<HashSet<Cid>>,
    deny: Option<Denylist>,
    /// Blocks sent.
    pub blocks: u64,
}

impl CarSink {
    /// Starts a CAR rooted at `root` on `tx`.
    pub async fn start(
        tx: mpsc::Sender<std::io::Result<Bytes>>,
        root: &Cid,
        dups: bool,
    ) -> Result<Self, GatewayError> {
        let header = piecestore::CarWriter::new(Vec::new(), &[*root])
            .and_then(|w| w.finish())
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
        let sink = Self {
            tx,
            seen: (!dups).then(HashSet::new),
            deny: None,
            blocks: 0,
        };
        sink.send(Bytes::from(header)).await?;
        Ok(sink)
    }

    /// Refuses to send any block `list` names (interior nodes and leaves too, as Curio's
    /// filtered blockstore does): the walk stops with [`GatewayError::Denied`].
    pub fn with_denylist(mut self, list: Option<Denylist>) -> Self {
        self.deny = list;
        self
    }

    async fn send(&self, bytes: Bytes) -> Result<(), GatewayError> {
        self.tx
            .send(Ok(bytes))
            .await
            .map_err(|_| GatewayError::Internal("client went away".into()))
    }

    /// Appends a block (identity blocks are carried by their CIDs and skipped). The bytes go
    /// to the body as they are, after their section head: no copy.
    pub async fn block(&mut self, cid: &Cid, data: &Bytes) -> Result<(), GatewayError> {
        if cid.hash().code() == IDENTITY {
            return Ok(());
        }
        if let Some(list) = &self.deny
            && list.check(&[cid]) != Verdict::Allowed
        {
            return Err(GatewayError::Denied(cid.to_string()));
        }
        if let Some(seen) = &mut self.seen
            && !seen.insert(*cid)
        {
            return Ok(());
        }
        let head = piecestore::section_head(&cid.to_bytes(), data.len());
        self.blocks += 1;
        self.send(Bytes::from(head)).await?;
        self.send(data.clone()).await
    }

    /// Ends the body abnormally, so the client sees a broken response rather than a short
    /// CAR that looks complete.
    pub async fn abort(self, why: &GatewayError) {
        let _ = self
            .tx
            .send(Err(std::io::Error::other(why.to_string())))
            .await;
    }
}

/// Whether `cid` is a file's root: raw bytes or a UnixFS file node.
fn is_file(cid: &Cid, block: &[u8]) -> bool {
    cid.codec() == RAW
        || unixfs(cid, block)
            .is_ok_and(|(_, fs)| matches!(fs.kind, UnixFsKind::File | UnixFsKind::Raw))
}

fn entity_len(cid: &Cid, block: &[u8]) -> Result<u64, GatewayError> {
    if cid.codec() == RAW {
        return Ok(block.len() as u64);
    }
    let (_, fs) = unixfs(cid, block)?;
    Ok(fs
        .filesize
        .unwrap_or_else(|| fs.data.map_or(0, |d| d.len() as u64)))
}

/// Sends the path blocks, then the target's blocks for `scope`, depth first.
pub async fn walk(
    provider: &RetrievalProvider,
    resolved: Resolved,
    scope: DagScope,
    entity_bytes: Option<EntityBytes>,
    sink: &mut CarSink,
) -> Result<(), GatewayError> {
    for (cid, block) in &resolved.path_blocks {
        sink.block(cid, block).await?;
    }
    let Resolved { target, block, .. } = resolved;
    let share = provider.read_share();
    match scope {
        DagScope::Block => sink.block(&target, &block).await,
        DagScope::All => {
            let mut stack = vec![(target, Some(block))];
            while let Some(((cid, _), data)) = next_block(provider, &share, &mut stack).await? {
                sink.block(&cid, &data).await?;
                let links =
                    block_links(&cid, &data).map_err(|e| GatewayError::Internal(e.to_string()))?;
                stack.extend(links.into_iter().rev().map(|l| (l, None)));
            }
            Ok(())
        }
        DagScope::Entity => {
            // On anything but a file (a directory, say) entity-bytes means nothing and is
            // ignored, as the spec asks.
            let range = match entity_bytes.filter(|_| is_file(&target, &block)) {
                Some(eb) => match eb.resolve(entity_len(&target, &block)?)? {
                    Some(r) => Some(r),
                    None => return sink.block(&target, &block).await,
                },
                None => None,
            };
            walk_file(provider, &share, target, block, range, sink).await
        }
    }
}

/// A UnixFS file's blocks overlapping `range` (all of them without one); for a HAMT-sharded
/// directory, every shard node (what listing it needs, not its entries); for anything else,
/// just the target block.
async fn walk_file(
    provider: &RetrievalProvider,
    share: &ReadShare,
    target: Cid,
    block: Bytes,
    range: Option<(u64, u64)>,
    sink: &mut CarSink,
) -> Result<(), GatewayError> {
    let mut stack = vec![(target, 0u64, Some(block))];
    while let Some(((cid, start, _), data)) = next_block(provider, share, &mut stack).await? {
        sink.block(&cid, &data).await?;
        if cid.codec() != DAG_PB {
            continue;
        }
        let (node, fs) = unixfs(&cid, &data)?;
        if fs.kind == UnixFsKind::HamtShard {
            let geom = Geometry::of(&fs).map_err(|e| shard_error(&cid, e))?;
            let mut shards = Vec::new();
            for l in &node.links {
                if let ShardLink::Shard { .. } =
                    hamt::classify(&geom, l).map_err(|e| shard_error(&cid, e))?
                {
                    shards.push((l.cid, 0, None));
                }
            }
            stack.extend(shards.into_iter().rev());
            continue;
        }
        if !matches!(fs.kind, UnixFsKind::File | UnixFsKind::Raw) {
            continue;
        }
        let mut offset = start + fs.data.as_ref().map_or(0, |d| d.len() as u64);
        let mut children = Vec::new();
        for (i, l) in node.links.iter().enumerate() {
            let Some(&size) = fs.blocksizes.get(i) else {
                children.push((l.cid, offset, None));
                continue;
            };
            let (s, e) = (offset, offset + size);
            if range.is_none_or(|(from, to)| s < to && from < e) {
                children.push((l.cid, s, None));
            }
            offset = e;
        }
        stack.extend(children.into_iter().rev());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_requests() {
        let cid = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
        let r = parse_request(
            &format!("{cid}/a%20b/c"),
            Some("dag-scope=entity&entity-bytes=10:-5"),
            Some("application/vnd.ipld.car; version=1; dups=n"),
        )
        .unwrap();
        assert_eq!(r.path, vec!["a b", "c"]);
        assert_eq!(r.scope, DagScope::Entity);
        assert!(!r.dups);
        assert_eq!(
            r.entity_bytes.unwrap().resolve(100).unwrap(),
            Some((10, 96))
        );
        assert_eq!(
            parse_request(cid, Some("format=raw"), None).unwrap().format,
            Format::Raw
        );
        assert!(matches!(
            parse_request("nope", None, None),
            Err(GatewayError::BadRequest(_))
        ));
        assert!(matches!(
            parse_request(cid, None, Some("text/html")),
            Err(GatewayError::NotAcceptable(_))
        ));
        assert!(matches!(
            parse_request(cid, Some("dag-scope=everything"), None),
            Err(GatewayError::BadRequest(_))
        ));
        let car = Some("application/vnd.ipld.car");
        // entity-bytes implies entity; any other explicit scope contradicts it.
        assert_eq!(
            parse_request(cid, Some("entity-bytes=0:10"), car)
                .unwrap()
                .scope,
            DagScope::Entity
        );
        assert!(matches!(
            parse_request(cid, Some("entity-bytes=0:10&dag-scope=all"), car),
            Err(GatewayError::BadRequest(_))
        ));
        // Nothing said about the format: 400; a wildcard: a CAR.
        assert!(matches!(
            parse_request(cid, None, None),
            Err(GatewayError::BadRequest(_))
        ));
        assert_eq!(
            parse_request(cid, None, Some("*/*")).unwrap().format,
            Format::Car
        );
        // dups: n unless asked; the query's car-* parameters win over Accept.
        assert!(!parse_request(cid, None, car).unwrap().dups);
        assert!(
            parse_request(cid, None, Some("application/vnd.ipld.car;dups=y"))
                .unwrap()
                .dups
        );
        assert!(
            !parse_request(
                cid,
                Some("car-dups=n"),
                Some("application/vnd.ipld.car;dups=y")
            )
            .unwrap()
            .dups
        );
        assert!(matches!(
            parse_request(cid, Some("format=car&car-version=2"), None),
            Err(GatewayError::NotAcceptable(_))
        ));
        assert!(matches!(
            parse_request(cid, Some("format=car&car-order=bfs"), None),
            Err(GatewayError::NotAcceptable(_))
        ));
        // A raw block has no path.
        assert!(matches!(
            parse_request(&format!("{cid}/a"), Some("format=raw"), None),
            Err(GatewayError::BadRequest(_))
        ));
        let eb = |s: &str| s.parse::<EntityBytes>().unwrap();
        assert_eq!(eb("0:*").resolve(10).unwrap(), Some((0, 10)));
        assert_eq!(eb("-3:*").resolve(10).unwrap(), Some((7, 10)));
        assert_eq!(eb("20:30").resolve(10).unwrap(), None);
        assert!(eb("5:2").resolve(10).is_err());
        assert!("5".parse::<EntityBytes>().is_err());
    }
}
