//! The `Content-Range` of an upload chunk (`START-END`, the OCI spec's form,
//! also accepted with a `bytes ` or `bytes=` prefix and a `/TOTAL` suffix).

use crate::ByteRange;

/// Why a chunk's `Content-Range` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkRangeError {
    /// The value is not `START-END` in bytes with `START <= END`.
    #[error("Content-Range must be START-END in bytes, e.g. 0-1023")]
    Malformed,
    /// The request's `Content-Length` disagrees with the range.
    #[error("Content-Range {start}-{end} covers {declared} bytes but Content-Length is {length}")]
    LengthMismatch {
        /// First byte of the range.
        start: u64,
        /// Last byte of the range, inclusive.
        end: u64,
        /// Bytes the range covers.
        declared: u64,
        /// The request's `Content-Length`.
        length: u64,
    },
}

/// Parse a chunk's `Content-Range` value into its inclusive byte range. A
/// `content_length` that disagrees with the range is refused, so that no
/// byte of such a chunk is read.
pub fn parse_chunk_range(
    value: &str,
    content_length: Option<u64>,
) -> Result<ByteRange, ChunkRangeError> {
    let text = value
        .trim()
        .trim_start_matches("bytes ")
        .trim_start_matches("bytes=");
    let (start, end) = text.split_once('-').ok_or(ChunkRangeError::Malformed)?;
    let start: u64 = start
        .trim()
        .parse()
        .map_err(|_| ChunkRangeError::Malformed)?;
    let end: u64 = end
        .split('/')
        .next()
        .unwrap_or("")
        .trim()
        .parse()
        .map_err(|_| ChunkRangeError::Malformed)?;
    if end < start {
        return Err(ChunkRangeError::Malformed);
    }
    // 0-18446744073709551615 would cover one byte more than a u64 counts.
    let declared = (end - start)
        .checked_add(1)
        .ok_or(ChunkRangeError::Malformed)?;
    if let Some(length) = content_length.filter(|l| *l != declared) {
        return Err(ChunkRangeError::LengthMismatch {
            start,
            end,
            declared,
            length,
        });
    }
    Ok(ByteRange { start, end })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_spec_form_and_the_http_forms() {
        for value in ["0-9", "bytes 0-9", "bytes=0-9", "0-9/10", " 0 - 9 "] {
            assert_eq!(
                parse_chunk_range(value, None),
                Ok(ByteRange { start: 0, end: 9 }),
                "{value}"
            );
        }
        assert_eq!(
            parse_chunk_range("10-19", Some(10)),
            Ok(ByteRange { start: 10, end: 19 })
        );
    }

    #[test]
    fn refuses_malformed_and_mismatched_ranges() {
        for value in [
            "",
            "0",
            "a-b",
            "9-0",
            "-9",
            "0-",
            "\u{fffd}",
            "0-18446744073709551615",
        ] {
            assert_eq!(
                parse_chunk_range(value, None),
                Err(ChunkRangeError::Malformed),
                "{value}"
            );
        }
        assert_eq!(
            parse_chunk_range("0-9", Some(3)),
            Err(ChunkRangeError::LengthMismatch {
                start: 0,
                end: 9,
                declared: 10,
                length: 3
            })
        );
    }
}
