//! HTTP byte ranges (`Range: bytes=a-b`), as used on blob downloads.

/// A resolved, inclusive byte range within an object of known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte offset.
    pub start: u64,
    /// Last byte offset, inclusive.
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range.
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Always false: a resolved range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The `Content-Range` header value for an object of `size` bytes.
    pub fn content_range(&self, size: u64) -> String {
        format!("bytes {}-{}/{}", self.start, self.end, size)
    }
}

/// Why a `Range` header cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// The header is not `bytes=a-b`, `bytes=a-` or `bytes=-n` with a single range.
    #[error("Range header {0:?} is malformed; send a single range such as bytes=0-1023")]
    Malformed(String),
    /// The range lies outside the object.
    #[error("range {header:?} is outside the object of {size} bytes")]
    Unsatisfiable {
        /// The header as sent.
        header: String,
        /// The object size.
        size: u64,
    },
}

/// Resolve a `Range` header value against an object of `size` bytes, the way a
/// server that serves single byte ranges answers (RFC 9110, section 14.2):
/// `Ok(None)` for a header to ignore (another range unit, several ranges) so
/// that the whole object is sent; an error for a malformed or unsatisfiable
/// single byte range.
pub fn parse_range_header(header: &str, size: u64) -> Result<Option<ByteRange>, RangeError> {
    match header.trim().strip_prefix("bytes=") {
        None => Ok(None),
        Some(spec) if spec.contains(',') => Ok(None),
        Some(_) => parse_range(header, size).map(Some),
    }
}

/// Resolve a `Range` header value against an object of `size` bytes.
pub fn parse_range(header: &str, size: u64) -> Result<ByteRange, RangeError> {
    let malformed = || RangeError::Malformed(header.to_owned());
    let spec = header.trim().strip_prefix("bytes=").ok_or_else(malformed)?;
    if spec.contains(',') {
        return Err(malformed());
    }
    let (a, b) = spec.split_once('-').ok_or_else(malformed)?;
    let unsatisfiable = || RangeError::Unsatisfiable {
        header: header.to_owned(),
        size,
    };
    let (start, end) = if a.is_empty() {
        let n: u64 = b.parse().map_err(|_| malformed())?;
        if n == 0 || size == 0 {
            return Err(unsatisfiable());
        }
        (size.saturating_sub(n), size - 1)
    } else {
        let start: u64 = a.parse().map_err(|_| malformed())?;
        if start >= size {
            return Err(unsatisfiable());
        }
        let end: u64 = if b.is_empty() {
            size.saturating_sub(1)
        } else {
            b.parse().map_err(|_| malformed())?
        };
        if end < start {
            return Err(malformed());
        }
        (start, end.min(size.saturating_sub(1)))
    };
    if start >= size {
        return Err(unsatisfiable());
    }
    Ok(ByteRange { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-9", 100),
            Ok(ByteRange { start: 0, end: 9 })
        );
        assert_eq!(
            parse_range("bytes=90-", 100),
            Ok(ByteRange { start: 90, end: 99 })
        );
        assert_eq!(
            parse_range("bytes=-10", 100),
            Ok(ByteRange { start: 90, end: 99 })
        );
        assert_eq!(
            parse_range("bytes=50-500", 100),
            Ok(ByteRange { start: 50, end: 99 })
        );
        assert!(matches!(
            parse_range("bytes=100-", 100),
            Err(RangeError::Unsatisfiable { .. })
        ));
        assert!(matches!(
            parse_range("bytes=5-1", 100),
            Err(RangeError::Malformed(_))
        ));
        assert!(matches!(
            parse_range("items=0-1", 100),
            Err(RangeError::Malformed(_))
        ));
        assert_eq!(parse_range_header("bytes=0-1,3-4", 100), Ok(None));
        assert_eq!(parse_range_header("items=0-1", 100), Ok(None));
        assert_eq!(
            parse_range_header("bytes=0-9", 100),
            Ok(Some(ByteRange { start: 0, end: 9 }))
        );
        assert!(matches!(
            parse_range_header("bytes=100-", 100),
            Err(RangeError::Unsatisfiable { .. })
        ));
        assert!(matches!(
            parse_range("bytes=0-1,3-4", 100),
            Err(RangeError::Malformed(_))
        ));
    }
}
