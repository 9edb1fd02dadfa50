//! Finding the blocks of a CARv1 payload as its bytes stream past.
//!
//! A CARv1 is `varint(len) header` followed by sections `varint(len) cid block`. The header is
//! DAG-CBOR `{roots: [cid], version: 1}`. [`CarIndexer`] is a push parser: feed it chunks of
//! any size and it reports each block's CID, the offset of its data in the payload and its
//! length, keeping only one header or CID in memory. A zero-length section ends the CAR (the
//! rest is taken as padding), as go-car does.

use market_core::Cid;
use serde::Deserialize;

/// Largest CAR header accepted.
pub const MAX_CAR_HEADER: u64 = 1 << 20;
/// Largest section (CID + block) accepted. Blocks over 2 MiB cannot travel over bitswap, so
/// anything far larger is a malformed or hostile CAR.
pub const MAX_SECTION: u64 = 32 << 20;
/// Longest CID parsed (an identity multihash can inline data).
const MAX_CID: u64 = 4096;

/// Why a payload is not a CARv1 we can index.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CarError {
    /// A length varint is longer than 9 bytes.
    #[error("invalid varint at byte {0}")]
    Varint(u64),
    /// The header is empty or larger than [`MAX_CAR_HEADER`].
    #[error("CAR header of {0} bytes is out of bounds")]
    HeaderSize(u64),
    /// The header is not `{roots, version: 1}`.
    #[error("invalid CAR header: {0}")]
    Header(String),
    /// A section is larger than [`MAX_SECTION`].
    #[error("CAR section at byte {offset} declares {len} bytes")]
    SectionSize {
        /// Where the section starts.
        offset: u64,
        /// The length it declares.
        len: u64,
    },
    /// A section does not start with a valid CID.
    #[error("invalid CID in the section at byte {offset}: {reason}")]
    Cid {
        /// Where the section's CID starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The payload ended inside a header or section.
    #[error("CAR truncated at byte {0}")]
    Truncated(u64),
}

/// A block's place in the payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockEntry {
    /// The block's CID.
    pub cid: Cid,
    /// Offset of the block's data (after its CID) in the payload.
    pub offset: u64,
    /// Length of the block's data.
    pub size: u64,
}

#[derive(Debug)]
enum State {
    HeaderLen,
    Header(u64),
    SectionLen,
    Cid { len: u64, start: u64 },
    Data(u64),
    End,
}

#[derive(Deserialize)]
struct Header {
    #[serde(default)]
    roots: Vec<Cid>,
    version: u64,
}

/// Incremental CARv1 block finder. See the [module docs](self).
#[derive(Debug)]
pub struct CarIndexer {
    state: State,
    pos: u64,
    varint: u64,
    shift: u32,
    buf: Vec<u8>,
    roots: Vec<Cid>,
    blocks: u64,
    failed: Option<CarError>,
}

impl Default for CarIndexer {
    fn default() -> Self {
        Self::new()
    }
}

impl CarIndexer {
    /// A parser at the start of a payload.
    pub fn new() -> Self {
        Self {
            state: State::HeaderLen,
            pos: 0,
            varint: 0,
            shift: 0,
            buf: Vec::new(),
            roots: Vec::new(),
            blocks: 0,
            failed: None,
        }
    }

    /// The header's roots (empty until the header is parsed).
    pub fn roots(&self) -> &[Cid] {
        &self.roots
    }

    /// Blocks found so far.
    pub fn blocks(&self) -> u64 {
        self.blocks
    }

    /// Feeds the next bytes of the payload; `found` receives each block as soon as its CID is
    /// read. After an error every further call returns it again.
    pub fn update(
        &mut self,
        data: &[u8],
        found: &mut impl FnMut(BlockEntry),
    ) -> Result<(), CarError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let r = self.step(data, found);
        if let Err(e) = &r {
            self.failed = Some(e.clone());
        }
        r
    }

    /// Ends the payload: the CAR must end on a section boundary. Returns the roots.
    pub fn finish(self) -> Result<Vec<Cid>, CarError> {
        if let Some(e) = self.failed {
            return Err(e);
        }
        match self.state {
            State::SectionLen if self.shift == 0 => Ok(self.roots),
            State::End => Ok(self.roots),
            _ => Err(CarError::Truncated(self.pos)),
        }
    }

    fn step(
        &mut self,
        mut data: &[u8],
        found: &mut impl FnMut(BlockEntry),
    ) -> Result<(), CarError> {
        while !data.is_empty() {
            match self.state {
                State::HeaderLen | State::SectionLen => {
                    let b = data[0];
                    data = &data[1..];
                    self.pos += 1;
                    if self.shift >= 63 {
                        return Err(CarError::Varint(self.pos - 1));
                    }
                    self.varint |= u64::from(b & 0x7f) << self.shift;
                    self.shift += 7;
                    if b & 0x80 != 0 {
                        continue;
                    }
                    let len = std::mem::take(&mut self.varint);
                    self.shift = 0;
                    self.state = match self.state {
                        State::HeaderLen if len == 0 || len > MAX_CAR_HEADER => {
                            return Err(CarError::HeaderSize(len));
                        }
                        State::HeaderLen => State::Header(len),
                        _ if len == 0 => State::End,
                        _ if len > MAX_SECTION => {
                            return Err(CarError::SectionSize {
                                offset: self.pos,
                                len,
                            });
                        }
                        _ => State::Cid {
                            len,
                            start: self.pos,
                        },
                    };
                }
                State::Header(len) => {
                    let take = ((len - self.buf.len() as u64) as usize).min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    self.pos += take as u64;
                    if self.buf.len() as u64 == len {
                        let h: Header = serde_ipld_dagcbor::from_slice(&self.buf)
                            .map_err(|e| CarError::Header(e.to_string()))?;
                        if h.version != 1 {
                            return Err(CarError::Header(format!(
                                "version {} (only CARv1 payloads are indexed)",
                                h.version
                            )));
                        }
                        self.roots = h.roots;
                        self.buf = Vec::new();
                        self.state = State::SectionLen;
                    }
                }
                State::Cid { len, start } => {
                    let want = len.min(MAX_CID) as usize;
                    let take = (want - self.buf.len()).min(data.len());
                    self.buf.extend_from_slice(&data[..take]);
                    data = &data[take..];
                    self.pos += take as u64;
                    if self.buf.len() < want {
                        continue;
                    }
                    let mut cursor = std::io::Cursor::new(&self.buf[..]);
                    let cid = Cid::read_bytes(&mut cursor).map_err(|e| CarError::Cid {
                        offset: start,
                        reason: e.to_string(),
                    })?;
                    let cid_len = cursor.position();
                    found(BlockEntry {
                        cid,
                        offset: start + cid_len,
                        size: len - cid_len,
                    });
                    self.blocks += 1;
                    let consumed = self.buf.len() as u64;
                    self.buf.clear();
                    self.state = State::Data(len - consumed);
                }
                State::Data(remaining) => {
                    let take = remaining.min(data.len() as u64);
                    data = &data[take as usize..];
                    self.pos += take;
                    self.state = State::Data(remaining - take);
                }
                State::End => {
                    self.pos += data.len() as u64;
                    return Ok(());
                }
            }
            if let State::Data(0) = self.state {
                self.state = State::SectionLen;
            }
        }
        Ok(())
    }
}

/// The bytes before a block's data in a CAR section: `varint(len) cid`.
pub fn section_head(cid: &[u8], data_len: usize) -> Vec<u8> {
    let mut head = Vec::with_capacity(cid.len() + 10);
    put_varint((cid.len() + data_len) as u64, &mut head);
    head.extend_from_slice(cid);
    head
}

/// Writes a CARv1 stream: the header at creation, then one section per block.
#[derive(Debug)]
pub struct CarWriter<W: std::io::Write> {
    out: W,
    pos: u64,
}

/// Appends `n` as an unsigned LEB128 varint (CAR lengths, multiformats, protobuf).
pub(crate) fn put_varint(mut n: u64, out: &mut Vec<u8>) {
    loop {
        let b = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

impl<W: std::io::Write> CarWriter<W> {
    /// Writes the header naming `roots`.
    pub fn new<const S: usize>(mut out: W, roots: &[cid::CidGeneric<S>]) -> std::io::Result<Self> {
        #[derive(serde::Serialize)]
        struct Header<'a, const S: usize> {
            roots: &'a [cid::CidGeneric<S>],
            version: u64,
        }
        let header = serde_ipld_dagcbor::to_vec(&Header { roots, version: 1 })
            .map_err(std::io::Error::other)?;
        let mut buf = Vec::with_capacity(header.len() + 10);
        put_varint(header.len() as u64, &mut buf);
        buf.extend_from_slice(&header);
        out.write_all(&buf)?;
        Ok(Self {
            out,
            pos: buf.len() as u64,
        })
    }

    /// Appends a block; returns where its data landed.
    pub fn write_block(&mut self, cid: &Cid, data: &[u8]) -> std::io::Result<BlockEntry> {
        let offset = self.write_section(&cid.to_bytes(), data)?;
        Ok(BlockEntry {
            cid: *cid,
            offset,
            size: data.len() as u64,
        })
    }

    /// Appends a section from an encoded CID (of any digest length); returns the offset of
    /// the block's data.
    pub fn write_section(&mut self, cid: &[u8], data: &[u8]) -> std::io::Result<u64> {
        let head = section_head(cid, data.len());
        self.out.write_all(&head)?;
        self.out.write_all(data)?;
        let offset = self.pos + head.len() as u64;
        self.pos = offset + data.len() as u64;
        Ok(offset)
    }

    /// Bytes written so far.
    pub fn position(&self) -> u64 {
        self.pos
    }

    /// Flushes and returns the writer.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}
