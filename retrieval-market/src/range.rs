//! HTTP `Range: bytes=` requests (RFC 9110 §14), with the choices Go's `http.ServeContent`
//! makes, since booster-http clients expect them: ranges starting past the end are dropped,
//! a suffix range longer than the content means all of it, and overlapping ranges are kept
//! as asked.

use piecestore::ByteRange;

/// Most ranges honoured in one request; more is an abuse of multipart responses.
pub const MAX_RANGES: usize = 64;

/// Why a `Range` header cannot be honoured (answered with 416).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RangeError {
    /// Not `bytes=` ranges, or a range does not parse.
    #[error("invalid range: {0}")]
    Malformed(String),
    /// Every range lies past the end of the content.
    #[error("no range overlaps the {0} bytes of content")]
    Unsatisfiable(u64),
    /// More than [`MAX_RANGES`] ranges.
    #[error("more than {MAX_RANGES} ranges")]
    TooMany,
}

/// Parses `header` against content of `len` bytes into half-open ranges.
pub fn parse_ranges(header: &str, len: u64) -> Result<Vec<ByteRange>, RangeError> {
    let bad = || RangeError::Malformed(header.chars().take(100).collect());
    let spec = header.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let mut out = Vec::new();
    for part in spec.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (a, b) = part.split_once('-').ok_or_else(bad)?;
        let (a, b) = (a.trim(), b.trim());
        let num = |s: &str| -> Result<u64, RangeError> {
            if s.is_empty() || !s.bytes().all(|c| c.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse().map_err(|_| bad())
        };
        let range = if a.is_empty() {
            let n = num(b)?;
            if n == 0 {
                continue;
            }
            ByteRange::new(len.saturating_sub(n), len)
        } else {
            let start = num(a)?;
            let end = if b.is_empty() {
                len
            } else {
                let last = num(b)?;
                if last < start {
                    return Err(bad());
                }
                last.saturating_add(1).min(len)
            };
            if start >= len {
                continue;
            }
            ByteRange::new(start, end)
        };
        out.push(range);
        if out.len() > MAX_RANGES {
            return Err(RangeError::TooMany);
        }
    }
    if out.is_empty() {
        return Err(RangeError::Unsatisfiable(len));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_go() {
        let r = |s, len| parse_ranges(s, len);
        assert_eq!(r("bytes=0-9", 100), Ok(vec![ByteRange::new(0, 10)]));
        assert_eq!(r("bytes=90-", 100), Ok(vec![ByteRange::new(90, 100)]));
        assert_eq!(r("bytes=-10", 100), Ok(vec![ByteRange::new(90, 100)]));
        assert_eq!(r("bytes=-1000", 100), Ok(vec![ByteRange::new(0, 100)]));
        assert_eq!(r("bytes=50-1000", 100), Ok(vec![ByteRange::new(50, 100)]));
        assert_eq!(
            r("bytes=0-0, 5-6,200-300", 100),
            Ok(vec![ByteRange::new(0, 1), ByteRange::new(5, 7)])
        );
        assert_eq!(r("bytes=100-", 100), Err(RangeError::Unsatisfiable(100)));
        for bad in [
            "bytes=5-1",
            "items=0-1",
            "bytes=a-b",
            "bytes=1",
            "bytes=+1-2",
            "0-1",
        ] {
            assert!(
                matches!(r(bad, 100), Err(RangeError::Malformed(_))),
                "{bad}"
            );
        }
        let many = format!("bytes={}", vec!["0-1"; 65].join(","));
        assert_eq!(r(&many, 100), Err(RangeError::TooMany));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_stays_in_bounds(s in "bytes=[-0-9, ]{0,40}", len in 0u64..1000) {
            if let Ok(rs) = parse_ranges(&s, len) {
                for r in rs {
                    proptest::prop_assert!(r.start < r.end && r.end <= len);
                }
            }
        }
    }
}
