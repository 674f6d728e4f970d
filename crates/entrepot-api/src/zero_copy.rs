//! Zero-copy response bodies: a stored blob's bytes go from its file to the
//! socket by `sendfile(2)`, never through the server's memory.
//!
//! hyper writes every body itself, from buffers, so a response body cannot
//! name a file. Instead, on a plain HTTP/1.1 connection, a handler asks the
//! connection's [`ZeroCopy`] for a body made of *placeholder* chunks: slices
//! of one shared buffer that is never written to the network. Each chunk it
//! yields is recorded, in order, as a segment of the file. hyper frames the
//! response as usual (status line, headers, `Content-Length`, keep-alive) and
//! queues the chunks for a vectored write without copying them; the socket
//! wrapper of the connection recognises a placeholder by its address and
//! sends the next segment's bytes from the file instead ([`ZeroCopy::send`]).
//!
//! Only connections whose socket wrapper does this carry a [`ZeroCopy`] (as a
//! request extension): TLS and HTTP/2 connections, whose bytes are framed
//! or encrypted by the server, have none, and their handlers stream the file
//! through memory as before. A placeholder written without its segment is an
//! error that closes the connection, never a byte sent in its place.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsFd;
use std::sync::{Arc, LazyLock, Mutex};

use axum::body::Body;
use bytes::Bytes;
use entrepot_domain::ByteRange;
use entrepot_services::located::LocatedBlob;
use entrepot_services::BlobError;
use futures::{Stream, StreamExt};

/// Length of the placeholder buffer, and so of the longest chunk: one chunk
/// per 8 MiB of a blob keeps hyper's per-chunk work negligible.
const PLACEHOLDER_LEN: usize = 8 << 20;

/// The placeholder buffer. Zeroed by the allocator (pages mapped on first
/// touch, and nothing ever reads it), so it costs address space, not memory.
static PLACEHOLDER: LazyLock<Bytes> = LazyLock::new(|| Bytes::from(vec![0u8; PLACEHOLDER_LEN]));

/// A range of a file still to be sent.
struct Segment {
    file: Arc<std::fs::File>,
    offset: u64,
    remaining: u64,
}

/// The file segments of one connection's responses, in the order hyper will
/// write their placeholders.
#[derive(Default)]
pub struct ZeroCopy {
    segments: Mutex<VecDeque<Segment>>,
}

impl std::fmt::Debug for ZeroCopy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZeroCopy")
            .field("segments", &self.lock().len())
            .finish()
    }
}

impl ZeroCopy {
    /// The segments of a new connection: none.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Segment>> {
        self.segments.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A body of `len` bytes of `file` from `offset`, sent by the
    /// connection's socket from the file. The response must say its length
    /// (`Content-Length`), as hyper then writes the chunks unframed.
    pub fn body(self: &Arc<Self>, file: std::fs::File, offset: u64, len: u64) -> Body {
        let span = futures::stream::iter([Ok((offset, len))]);
        self.spans_body(Arc::new(file), span)
    }

    /// A body of the spans `(offset, length)` of `file` that `spans` yields,
    /// in order, each sent from the file as it comes (a file still being
    /// written: a spool file that `spans` releases as it fills). An error
    /// from `spans` ends the body with that error, so hyper closes the
    /// connection. The response must say its length, as for [`Self::body`].
    pub fn spans_body(
        self: &Arc<Self>,
        file: Arc<std::fs::File>,
        spans: impl Stream<Item = io::Result<(u64, u64)>> + Send + Unpin + 'static,
    ) -> Body {
        let connection = self.clone();
        let chunks = futures::stream::unfold(
            (spans, 0u64, 0u64),
            move |(mut spans, mut offset, mut left)| {
                let file = file.clone();
                let connection = connection.clone();
                async move {
                    while left == 0 {
                        match spans.next().await? {
                            Ok(span) => (offset, left) = span,
                            Err(e) => return Some((Err(e), (spans, offset, 0))),
                        }
                    }
                    let n = left.min(PLACEHOLDER_LEN as u64);
                    connection.lock().push_back(Segment {
                        file,
                        offset,
                        remaining: n,
                    });
                    let chunk = PLACEHOLDER.slice(..n as usize);
                    Some((Ok(chunk), (spans, offset + n, left - n)))
                }
            },
        );
        Body::from_stream(chunks)
    }

    /// Whether `buf` is (part of) a placeholder chunk.
    pub fn is_placeholder(buf: &[u8]) -> bool {
        let placeholder = PLACEHOLDER.as_ptr_range();
        !buf.is_empty() && placeholder.contains(&buf.as_ptr())
    }

    /// Send up to `max` bytes of the next segment to `socket` (non-blocking:
    /// `WouldBlock` when the socket is full) in place of a placeholder of
    /// `max` bytes; returns how many were sent.
    ///
    /// Fails, so that hyper closes the connection, when there is no segment
    /// (a placeholder that is not this connection's) or the file ended early
    /// (a blob file truncated under the server).
    pub fn send(&self, socket: impl AsFd, max: usize) -> io::Result<usize> {
        let mut segments = self.lock();
        let Some(segment) = segments.front_mut() else {
            return Err(io::Error::other(
                "zero-copy body chunk without its file segment",
            ));
        };
        let count = max.min(usize::try_from(segment.remaining).unwrap_or(usize::MAX));
        let mut offset = segment.offset;
        let sent = rustix::fs::sendfile(socket, &*segment.file, Some(&mut offset), count)?;
        if sent == 0 && count > 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "blob file is shorter than its recorded size",
            ));
        }
        segment.offset += sent as u64;
        segment.remaining -= sent as u64;
        if segment.remaining == 0 {
            segments.pop_front();
        }
        Ok(sent)
    }
}

/// The body of `blob` (or of its `range`): from its file by `sendfile` when
/// the connection has a [`ZeroCopy`] and the blob is a committed local file
/// or still being downloaded (from the spool file, as the download releases
/// it), else streamed through memory.
pub async fn blob_body(
    zero_copy: Option<&Arc<ZeroCopy>>,
    blob: LocatedBlob,
    range: Option<ByteRange>,
) -> Result<Body, BlobError> {
    if let Some(zero_copy) = zero_copy {
        if let Some(local) = blob.open_local().await? {
            let (offset, len) = range.map_or((0, local.len), |r| (r.start, r.len()));
            return Ok(zero_copy.body(local.file, offset, len));
        }
        if let Some(spool) = blob.spool(range) {
            return Ok(zero_copy.spans_body(spool.file, spool.spans));
        }
    }
    let served = blob.open(range).await?;
    Ok(Body::from_stream(served.body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn file_with(bytes: &[u8]) -> std::fs::File {
        let mut file = tempfile::tempfile().expect("temp file");
        file.write_all(bytes).expect("write");
        file
    }

    #[tokio::test]
    async fn a_body_is_placeholders_sent_from_the_file() {
        let content: Vec<u8> = (0..(PLACEHOLDER_LEN + 1000))
            .map(|i| (i % 251) as u8)
            .collect();
        let zero_copy = ZeroCopy::new();
        let body = zero_copy.body(file_with(&content), 10, content.len() as u64 - 10);
        let mut frames = body.into_data_stream();
        let (mut reader, mut writer) = std::os::unix::net::UnixStream::pair().expect("pair");
        let receiver = std::thread::spawn(move || {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).expect("read");
            got
        });
        let mut placeholder_bytes = 0;
        while let Some(chunk) = frames.next().await {
            let chunk = chunk.expect("chunk");
            assert!(ZeroCopy::is_placeholder(&chunk));
            let mut left = chunk.len();
            while left > 0 {
                left -= zero_copy.send(&writer, left).expect("send");
            }
            placeholder_bytes += chunk.len();
        }
        writer.flush().expect("flush");
        drop(writer);
        assert_eq!(placeholder_bytes, content.len() - 10);
        assert_eq!(receiver.join().expect("receiver"), &content[10..]);
    }

    #[tokio::test]
    async fn a_body_of_spans_sends_each_span_then_ends_with_their_error() {
        let content: Vec<u8> = (0..1000).map(|i| (i % 251) as u8).collect();
        let zero_copy = ZeroCopy::new();
        let spans = futures::stream::iter([
            Ok((0, 300)),
            Ok((300, 0)),
            Ok((300, 200)),
            Err(io::Error::other("the fill failed")),
        ]);
        let body = zero_copy.spans_body(Arc::new(file_with(&content)), spans);
        let mut frames = body.into_data_stream();
        let (mut reader, mut writer) = std::os::unix::net::UnixStream::pair().expect("pair");
        let mut lens = Vec::new();
        let mut failed = false;
        while let Some(chunk) = frames.next().await {
            let Ok(chunk) = chunk else {
                failed = true;
                break;
            };
            assert!(ZeroCopy::is_placeholder(&chunk));
            let mut left = chunk.len();
            while left > 0 {
                left -= zero_copy.send(&writer, left).expect("send");
            }
            lens.push(chunk.len());
        }
        writer.flush().expect("flush");
        drop(writer);
        let mut got = Vec::new();
        reader.read_to_end(&mut got).expect("read");
        assert_eq!(lens, [300, 200]);
        assert!(failed, "the spans' error did not end the body");
        assert_eq!(got, &content[..500]);
    }

    #[test]
    fn a_placeholder_without_a_segment_is_an_error() {
        let (_reader, writer) = std::os::unix::net::UnixStream::pair().expect("pair");
        assert!(ZeroCopy::new().send(&writer, 10).is_err());
        assert!(!ZeroCopy::is_placeholder(b"bytes"));
    }

    #[tokio::test]
    async fn a_truncated_file_is_an_error_not_a_short_body() {
        let zero_copy = ZeroCopy::new();
        let body = zero_copy.body(file_with(b"short"), 0, 100);
        let chunk = axum::body::to_bytes(body, 1000).await.expect("body");
        assert_eq!(chunk.len(), 100);
        let (_reader, writer) = std::os::unix::net::UnixStream::pair().expect("pair");
        assert_eq!(zero_copy.send(&writer, 100).expect("first bytes"), 5);
        let error = zero_copy.send(&writer, 95).expect_err("end of file");
        assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
    }
}
