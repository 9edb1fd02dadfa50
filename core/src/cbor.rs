//! DAG-CBOR encoding with the limits peer input needs.
//!
//! Market protocols put exactly one CBOR value in each direction of a stream, with no length
//! prefix, and Go peers do not half-close before reading the reply. So a reader has to find
//! where one CBOR item ends by parsing its headers: [`item_len`] does that without decoding,
//! bounded in size and nesting depth, before any `serde` code sees the bytes.

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Deepest nesting a market message needs is about 6 (DealParams → ClientDealProposal →
/// DealProposal → field); 32 leaves room for unknown fields while refusing stack bombs.
pub const MAX_DEPTH: usize = 32;

/// Why bytes from a peer were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The message is larger than the protocol allows.
    #[error("message of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Bytes seen so far.
        len: usize,
        /// The limit in force.
        limit: usize,
    },
    /// The input ended inside a CBOR item.
    #[error("truncated CBOR item")]
    Truncated,
    /// Bytes follow the single CBOR item.
    #[error("{0} trailing bytes after the CBOR item")]
    TrailingBytes(usize),
    /// Structurally invalid CBOR, or a feature DAG-CBOR forbids (indefinite lengths).
    #[error("malformed CBOR: {0}")]
    Malformed(String),
    /// Nesting deeper than [`MAX_DEPTH`].
    #[error("CBOR nesting deeper than {MAX_DEPTH}")]
    TooDeep,
    /// Valid CBOR that does not have the expected shape (missing field, wrong type, bad value).
    #[error("unexpected message shape: {0}")]
    Shape(String),
}

/// Returns the length of the first complete CBOR item in `buf`, `Ok(None)` if `buf` holds only
/// a prefix of one, or an error if the bytes cannot start a valid DAG-CBOR item.
pub fn item_len(buf: &[u8]) -> Result<Option<usize>, DecodeError> {
    Ok(match scan(buf)? {
        Scan::Complete(n) => Some(n),
        Scan::AtLeast(_) => None,
    })
}

/// How far a buffer goes towards one item.
enum Scan {
    /// The item ends here.
    Complete(usize),
    /// Only a prefix: the item has at least this many bytes (what its headers declare so
    /// far, one byte per item still expected), so a reader can refuse one that cannot fit
    /// its limit without buffering up to the limit first.
    AtLeast(usize),
}

fn scan(buf: &[u8]) -> Result<Scan, DecodeError> {
    // Each entry counts the items still expected inside an open array, map or tag.
    let mut pending: Vec<u64> = vec![1];
    let mut pos = 0usize;
    let at_least = |pending: &[u64], end: usize| {
        let rest = pending.iter().fold(0u64, |a, &n| a.saturating_add(n));
        Scan::AtLeast(end.saturating_add(usize::try_from(rest).unwrap_or(usize::MAX)))
    };
    while let Some(top) = pending.last_mut() {
        if *top == 0 {
            pending.pop();
            continue;
        }
        *top -= 1;
        let Some(&initial) = buf.get(pos) else {
            return Ok(at_least(&pending, pos + 1));
        };
        let major = initial >> 5;
        let info = initial & 0x1f;
        pos += 1;
        let arg: u64 = match info {
            0..=23 => u64::from(info),
            24..=27 => {
                let n = 1usize << (info - 24);
                let Some(bytes) = buf.get(pos..pos + n) else {
                    return Ok(at_least(&pending, pos + n));
                };
                pos += n;
                bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
            }
            31 => return Err(DecodeError::Malformed("indefinite length".into())),
            _ => {
                return Err(DecodeError::Malformed(format!(
                    "reserved additional info {info}"
                )));
            }
        };
        let children = match major {
            0 | 1 => 0,
            2 | 3 => {
                let Ok(len) = usize::try_from(arg) else {
                    return Err(DecodeError::Truncated);
                };
                if buf.len().saturating_sub(pos) < len {
                    return Ok(at_least(&pending, pos.saturating_add(len)));
                }
                pos += len;
                0
            }
            4 => arg,
            5 => arg
                .checked_mul(2)
                .ok_or_else(|| DecodeError::Malformed("map too large".into()))?,
            6 => 1,
            _ => match info {
                20..=23 | 25..=27 => 0,
                _ => return Err(DecodeError::Malformed(format!("simple value {info}"))),
            },
        };
        if children > 0 {
            if pending.len() >= MAX_DEPTH {
                return Err(DecodeError::TooDeep);
            }
            pending.push(children);
        }
    }
    Ok(Scan::Complete(pos))
}

/// Encodes `value` as DAG-CBOR (map keys in canonical length-first order).
pub fn to_vec<T: Serialize>(value: &T) -> Vec<u8> {
    // Every type this crate serialises is a struct of plain fields; the only failure mode of
    // the encoder is a map with non-string keys, which none of them has.
    serde_ipld_dagcbor::to_vec(value).expect("market types always encode")
}

/// Decodes exactly one CBOR item of at most `limit` bytes from `bytes`.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<T, DecodeError> {
    if bytes.len() > limit {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            limit,
        });
    }
    match item_len(bytes)? {
        None => Err(DecodeError::Truncated),
        Some(n) if n < bytes.len() => Err(DecodeError::TrailingBytes(bytes.len() - n)),
        Some(_) => {
            serde_ipld_dagcbor::from_slice(bytes).map_err(|e| DecodeError::Shape(e.to_string()))
        }
    }
}

/// Reads one CBOR item of at most `limit` bytes from an async stream without waiting for EOF.
pub async fn read_item<R>(io: &mut R, limit: usize) -> std::io::Result<Vec<u8>>
where
    R: futures::AsyncRead + Unpin,
{
    use futures::AsyncReadExt;
    let mut buf = Vec::with_capacity(256);
    let mut chunk = [0u8; 4096];
    loop {
        match scan(&buf).map_err(invalid_data)? {
            Scan::Complete(n) if n == buf.len() => return Ok(buf),
            Scan::Complete(n) => {
                return Err(invalid_data(DecodeError::TrailingBytes(buf.len() - n)));
            }
            // Refused from its headers: a declared 1 GiB string is not buffered first.
            Scan::AtLeast(n) if n > limit => {
                return Err(invalid_data(DecodeError::TooLarge { len: n, limit }));
            }
            Scan::AtLeast(_) => {}
        }
        // Read no further than the limit allows (plus one byte to detect overflow).
        let room = (limit + 1).saturating_sub(buf.len()).min(chunk.len());
        if room == 0 {
            return Err(invalid_data(DecodeError::TooLarge {
                len: buf.len(),
                limit,
            }));
        }
        let n = io.read(&mut chunk[..room]).await?;
        if n == 0 {
            return Err(invalid_data(DecodeError::Truncated));
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > limit {
            return Err(invalid_data(DecodeError::TooLarge {
                len: buf.len(),
                limit,
            }));
        }
    }
}

/// Wraps a [`DecodeError`] as an `io::Error` for codec traits that speak `io::Result`.
pub fn invalid_data(e: DecodeError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_len_finds_the_end_of_one_item() {
        // {"a": [1, h'0102', "x"]} followed by junk.
        let item = [0xa1, 0x61, b'a', 0x83, 0x01, 0x42, 1, 2, 0x61, b'x'];
        for cut in 0..item.len() {
            assert_eq!(item_len(&item[..cut]), Ok(None), "prefix of {cut}");
        }
        assert_eq!(item_len(&item), Ok(Some(item.len())));
        let mut more = item.to_vec();
        more.extend_from_slice(&[0xff, 0xff]);
        assert_eq!(item_len(&more), Ok(Some(item.len())));
        assert!(matches!(
            from_slice::<serde::de::IgnoredAny>(&more, 100),
            Err(DecodeError::TrailingBytes(2))
        ));
    }

    #[test]
    fn item_len_refuses_bombs() {
        assert_eq!(
            item_len(&[0x9f]),
            Err(DecodeError::Malformed("indefinite length".into()))
        );
        assert_eq!(item_len(&[0x81; 100]), Err(DecodeError::TooDeep));
        // A byte string claiming 2^64 − 1 bytes is just incomplete, never an allocation.
        assert_eq!(
            item_len(&[0x5b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
            Ok(None)
        );
        assert!(matches!(
            from_slice::<serde::de::IgnoredAny>(&[0x40; 10], 4),
            Err(DecodeError::TooLarge { .. })
        ));
    }

    #[test]
    fn read_item_stops_at_the_item_boundary() {
        let item = [0x82, 0x01, 0x02];
        let mut cursor = futures::io::Cursor::new(item.to_vec());
        let got = futures::executor::block_on(read_item(&mut cursor, 16)).unwrap();
        assert_eq!(got, item);
        let mut big = futures::io::Cursor::new(vec![0x5a, 0, 0, 1, 0]);
        assert!(futures::executor::block_on(read_item(&mut big, 16)).is_err());
    }

    /// A reader that hands out `prefix`, then never ends: what a peer that declares a huge
    /// item and stalls looks like.
    struct Stalls(Vec<u8>);

    impl futures::AsyncRead for Stalls {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            out: &mut [u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            if self.0.is_empty() {
                return std::task::Poll::Pending;
            }
            let n = out.len().min(self.0.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0.drain(..n);
            std::task::Poll::Ready(Ok(n))
        }
    }

    #[test]
    fn items_declared_too_large_are_refused_from_their_headers() {
        use futures::FutureExt;
        let too_large = |prefix: Vec<u8>| {
            let mut r = Stalls(prefix);
            // Ready at once, without the declared bytes ever arriving.
            match read_item(&mut r, 1024).now_or_never() {
                Some(Err(e)) => matches!(
                    e.downcast::<DecodeError>(),
                    Ok(DecodeError::TooLarge { .. })
                ),
                _ => false,
            }
        };
        // A 1 GiB byte string, a 2 KiB text string inside a map, an array of 2^32 items.
        assert!(too_large(vec![0x5a, 0x40, 0, 0, 0]));
        assert!(too_large(vec![0xa1, 0x61, b'k', 0x79, 0x08, 0x00]));
        assert!(too_large(vec![0x9a, 0xff, 0xff, 0xff, 0xff]));
        // What fits its limit is waited for.
        assert!(!too_large(vec![0x59, 0x02, 0x00]));
        for (bytes, at_least) in [
            (vec![0x82, 0x01], 3),
            (vec![0x59, 0x01], 3),
            (vec![0x43, 0x01], 4),
        ] {
            assert!(
                matches!(scan(&bytes), Ok(Scan::AtLeast(n)) if n == at_least),
                "{bytes:?}"
            );
        }
    }
}
