//! Single-flight fills of immutable content, streamed to every waiting client
//! while the download is still running.
//!
//! The first request for uncached content starts a *fill*: a background task that
//! downloads from the upstream into a spool file, hashing as it goes, and commits
//! the file to the blob store only when the digest matches. Every request for the
//! same digest while the fill runs joins it and reads the spool file up to the
//! bytes written so far, so the upstream is asked once and the first bytes reach
//! clients immediately. The task does not depend on any client: a client that
//! disconnects does not abort the fill.
//!
//! A fill belongs to one *scope* (the repository that asked): the blob store
//! is shared by every tenant, but a repository may only serve bytes its own
//! upstream has proven to have. So a fill never answers "already in the store"
//! and never joins another repository's download: it always downloads from the
//! asking repository's upstream and verifies the digest, even when identical
//! bytes are already stored (the copy is then dropped, the stored one kept).
//! Callers serve stored content directly only when it is linked to them.

use std::collections::HashMap;
use std::future::Future;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use entrepot_domain::{ByteRange, Digest, Sha256Hasher};
use entrepot_storage::{BlobStore, ByteStream};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use crate::metrics::{ContentKind, Metrics};

const READ_CHUNK: usize = 256 * 1024;
const WRITE_BATCH: usize = 1024 * 1024;

/// Why a fill failed. Cloned to every client waiting on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FillError {
    /// The upstream does not have the content.
    #[error("{0}")]
    NotFound(String),
    /// The upstream could not be used (unreachable, refused, rate-limited).
    #[error("{message}")]
    Upstream {
        /// What went wrong, for the user.
        message: String,
        /// HTTP status the client should see.
        status: u16,
        /// `Retry-After`, passed on from a 429.
        retry_after: Option<String>,
    },
    /// The upstream sent bytes that do not match the digest.
    #[error(
        "the upstream sent content for {expected} that hashes to {actual}; nothing was cached"
    )]
    DigestMismatch {
        /// Digest asked for.
        expected: Digest,
        /// Digest of the bytes received.
        actual: Digest,
    },
    /// Local storage failed.
    #[error("cache storage failed: {0}")]
    Storage(String),
}

/// What the upstream answered when a fill opened its download.
pub struct UpstreamBody {
    /// Content-Length, when the upstream sent one.
    pub length: Option<u64>,
    /// The body.
    pub body: ByteStream,
}

/// Opens the upstream download of a fill.
pub type OpenUpstream = BoxFuture<'static, Result<UpstreamBody, FillError>>;

/// Runs after the content is committed (e.g. to link it to an image).
pub type AfterCommit = BoxFuture<'static, ()>;

#[derive(Clone, Debug, Default)]
struct Progress {
    /// Bytes in the spool file.
    written: u64,
    /// Total size, once known.
    total: Option<u64>,
    /// Set once the upstream answered.
    opened: bool,
    /// Set when the fill ends.
    outcome: Option<Result<(), FillError>>,
}

/// A fill under way.
pub struct Fill {
    reader: Arc<std::fs::File>,
    progress: watch::Receiver<Progress>,
}

/// `(scope, digest)`: a fill is shared only by requests of one repository.
type FillKey = (String, Digest);

/// The fills under way, by scope and digest.
pub struct Fills {
    spool: PathBuf,
    blobs: Arc<dyn BlobStore>,
    metrics: Arc<Metrics>,
    running: Arc<tokio::sync::Mutex<HashMap<FillKey, Arc<Fill>>>>,
}

/// Either the content is committed (and linked to the asking repository), or
/// a fill is under way.
pub enum Cached {
    /// In the blob store, of this size.
    Committed(u64),
    /// Being downloaded.
    Filling(Arc<Fill>),
}

impl Fills {
    /// Fills that spool into `spool` (created if missing; ideally on the same
    /// filesystem as the blob store, so committing is a link, not a copy).
    pub fn new(
        spool: PathBuf,
        blobs: Arc<dyn BlobStore>,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Self> {
        crate::workdir::fresh_dir(&spool)?;
        Ok(Self {
            spool,
            blobs,
            metrics,
            running: Arc::new(tokio::sync::Mutex::new(HashMap::new())),
        })
    }

    /// The content if `linked` (whether it is linked to `scope`, awaited
    /// under the fills' lock) finds it, else the fill of `digest` for `scope`
    /// under way, or a new one started with `open` (called at most once per
    /// scope and digest at a time). Content in the blob store but not linked
    /// to `scope` is downloaded and verified all the same: see the module
    /// documentation.
    pub async fn get_or_start(
        &self,
        scope: &str,
        digest: &Digest,
        linked: impl Future<Output = Result<Option<u64>, FillError>>,
        open: impl FnOnce() -> OpenUpstream,
        after_commit: impl FnOnce() -> AfterCommit,
    ) -> Result<Cached, FillError> {
        let key = (scope.to_owned(), digest.clone());
        let mut running = self.running.lock().await;
        if let Some(fill) = running.get(&key) {
            self.metrics.single_flight_join();
            return Ok(Cached::Filling(fill.clone()));
        }
        // Checked under the lock: a fill links its content before it removes
        // itself, so a request that just missed the fill finds the link.
        if let Some(size) = linked.await? {
            return Ok(Cached::Committed(size));
        }
        self.metrics.miss(ContentKind::Blob);
        let path = self.spool.join(uuid::Uuid::new_v4().to_string());
        let writer = tokio::fs::File::create(&path)
            .await
            .map_err(|e| FillError::Storage(e.to_string()))?;
        let reader = std::fs::File::open(&path).map_err(|e| FillError::Storage(e.to_string()))?;
        let (tx, rx) = watch::channel(Progress::default());
        let fill = Arc::new(Fill {
            reader: Arc::new(reader),
            progress: rx,
        });
        running.insert(key.clone(), fill.clone());
        drop(running);

        let job = FillJob {
            digest: digest.clone(),
            path,
            blobs: self.blobs.clone(),
            metrics: self.metrics.clone(),
            tx,
        };
        let open = open();
        let after_commit = after_commit();
        let fills = self.running.clone();
        tokio::spawn(async move {
            let ok = job.run(open, writer).await;
            // Linked before the fill is forgotten: a request arriving after
            // that finds the link instead of starting another download.
            if ok {
                after_commit.await;
            }
            fills.lock().await.remove(&key);
        });
        Ok(Cached::Filling(fill))
    }
}

struct FillJob {
    digest: Digest,
    path: PathBuf,
    blobs: Arc<dyn BlobStore>,
    metrics: Arc<Metrics>,
    tx: watch::Sender<Progress>,
}

impl FillJob {
    async fn run(self, open: OpenUpstream, mut writer: tokio::fs::File) -> bool {
        let outcome = self.download(open, &mut writer).await;
        drop(writer);
        let ok = outcome.is_ok();
        if let Err(e) = &outcome {
            if matches!(e, FillError::DigestMismatch { .. }) {
                tracing::error!(digest = %self.digest, error = %e, "upstream content failed verification; not cached");
            } else {
                tracing::warn!(digest = %self.digest, error = %e, "cache fill failed");
            }
            let _ = tokio::fs::remove_file(&self.path).await;
        }
        self.tx.send_modify(|p| p.outcome = Some(outcome));
        ok
    }

    async fn download(
        &self,
        open: OpenUpstream,
        writer: &mut tokio::fs::File,
    ) -> Result<(), FillError> {
        let storage = |e: std::io::Error| FillError::Storage(e.to_string());
        let UpstreamBody { length, mut body } = open.await?;
        self.tx.send_modify(|p| {
            p.total = length;
            p.opened = true;
        });
        let file = Arc::new(writer.try_clone().await.map_err(storage)?.into_std().await);
        let mut hasher = Sha256Hasher::new();
        let broken = |e: std::io::Error| FillError::Upstream {
            message: format!("the upstream transfer broke off: {e}"),
            status: 502,
            retry_after: None,
        };
        while let Some(first) = body.next().await {
            // Take whatever else has already arrived too, so the disk sees few
            // large writes while clients still get bytes as soon as they land.
            let mut batch = BytesMut::from(first.map_err(broken)?.as_ref());
            while batch.len() < WRITE_BATCH {
                match body.next().now_or_never() {
                    Some(Some(chunk)) => batch.extend_from_slice(&chunk.map_err(broken)?),
                    _ => break,
                }
            }
            hasher.update(&batch);
            let offset = hasher.len() - batch.len() as u64;
            let target = file.clone();
            let batch = batch.freeze();
            let len = batch.len() as u64;
            // Positional writes from a blocking thread: the bytes are in the file
            // (page cache) before the watermark moves, so readers can pread them.
            tokio::task::spawn_blocking(move || target.write_all_at(&batch, offset))
                .await
                .map_err(std::io::Error::other)
                .and_then(|r| r)
                .map_err(storage)?;
            self.metrics.upstream_bytes(len);
            let written = hasher.len();
            self.tx.send_modify(|p| p.written = written);
        }
        let size = hasher.len();
        let actual = hasher.finish();
        if actual != self.digest {
            return Err(FillError::DigestMismatch {
                expected: self.digest.clone(),
                actual,
            });
        }
        if let Some(expected) = length.filter(|l| *l != size) {
            return Err(FillError::Upstream {
                message: format!("the upstream announced {expected} bytes but sent {size}"),
                status: 502,
                retry_after: None,
            });
        }
        self.tx.send_modify(|p| p.total = Some(size));
        self.blobs
            .import_verified_file(&self.digest, &self.path)
            .await
            .map_err(|e| FillError::Storage(e.to_string()))
    }
}

impl Fill {
    /// Wait until the total size is known (the upstream sent its headers with a
    /// length, or the download finished). An announced length of zero waits
    /// for the verdict: an empty answer would be complete at once, so nothing
    /// would hold it back while the digest is checked.
    pub async fn size(&self) -> Result<u64, FillError> {
        let mut rx = self.progress.clone();
        loop {
            {
                let p = rx.borrow_and_update();
                match (&p.outcome, p.total) {
                    (Some(Err(e)), _) => return Err(e.clone()),
                    (None, Some(0)) => {}
                    (_, Some(total)) => return Ok(total),
                    (Some(Ok(())), None) => return Ok(p.written),
                    _ => {}
                }
            }
            if rx.changed().await.is_err() {
                return Err(FillError::Storage(
                    "the cache fill stopped unexpectedly".into(),
                ));
            }
        }
    }

    /// Wait until the upstream answered, so errors (not found, refused) surface
    /// before a response is committed to.
    pub async fn opened(&self) -> Result<(), FillError> {
        let mut rx = self.progress.clone();
        loop {
            {
                let p = rx.borrow_and_update();
                if let Some(Err(e)) = &p.outcome {
                    return Err(e.clone());
                }
                if p.opened || p.outcome.is_some() {
                    return Ok(());
                }
            }
            if rx.changed().await.is_err() {
                return Err(FillError::Storage(
                    "the cache fill stopped unexpectedly".into(),
                ));
            }
        }
    }

    /// Stream the content (or a range of it) as it arrives. If the fill fails, the
    /// stream ends with an error so the client never takes a partial body for a
    /// whole one.
    pub fn stream(self: &Arc<Self>, range: Option<ByteRange>) -> ByteStream {
        struct State {
            fill: Arc<Fill>,
            rx: watch::Receiver<Progress>,
            offset: u64,
            end: Option<u64>,
            done: bool,
        }
        let state = State {
            fill: self.clone(),
            rx: self.progress.clone(),
            offset: range.map_or(0, |r| r.start),
            end: range.map(|r| r.end + 1),
            done: false,
        };
        futures::stream::unfold(state, |mut s| async move {
            if s.done {
                return None;
            }
            loop {
                let (written, outcome) = {
                    let p = s.rx.borrow_and_update();
                    (p.written, p.outcome.clone())
                };
                // The last byte is held back until the content is verified, so a
                // client never receives a whole body of unverified bytes. A range
                // that ends before the last byte holds back its own last byte:
                // no response is complete before the digest is checked.
                let verified = matches!(outcome, Some(Ok(())));
                let released = if verified {
                    written
                } else {
                    written.saturating_sub(1)
                };
                let limit = match s.end {
                    Some(e) if verified => e.min(released),
                    Some(e) => e.saturating_sub(1).min(released),
                    None => released,
                };
                if s.offset < limit {
                    let len = ((limit - s.offset) as usize).min(READ_CHUNK);
                    let file = s.fill.reader.clone();
                    let offset = s.offset;
                    let read = tokio::task::spawn_blocking(move || {
                        let mut buf = vec![0u8; len];
                        let n = file.read_at(&mut buf, offset)?;
                        buf.truncate(n);
                        Ok::<_, std::io::Error>(buf)
                    })
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|r| r);
                    return match read {
                        Ok(buf) if buf.is_empty() => {
                            s.done = true;
                            Some((
                                Err(std::io::Error::other("cache spool file ended early")),
                                s,
                            ))
                        }
                        Ok(buf) => {
                            s.offset += buf.len() as u64;
                            Some((Ok(Bytes::from(buf)), s))
                        }
                        Err(e) => {
                            s.done = true;
                            Some((Err(e), s))
                        }
                    };
                }
                if s.end.is_some_and(|e| s.offset >= e) {
                    return None;
                }
                match outcome {
                    Some(Ok(())) => return None,
                    Some(Err(e)) => {
                        s.done = true;
                        return Some((Err(std::io::Error::other(e.to_string())), s));
                    }
                    None => {
                        if s.rx.changed().await.is_err() {
                            s.done = true;
                            return Some((
                                Err(std::io::Error::other("the cache fill stopped unexpectedly")),
                                s,
                            ));
                        }
                    }
                }
            }
        })
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrepot_storage::ObjectBlobStore;

    fn fills(dir: &std::path::Path) -> Fills {
        let blobs: Arc<dyn BlobStore> =
            Arc::new(ObjectBlobStore::local(dir.join("blobs")).unwrap());
        Fills::new(dir.join("spool"), blobs, Arc::new(Metrics::default())).unwrap()
    }

    /// Start a fill of `digest` whose upstream answers `body` with `length`.
    async fn fill_of(
        fills: &Fills,
        digest: &Digest,
        length: Option<u64>,
        body: Vec<u8>,
    ) -> Arc<Fill> {
        let open = move || {
            async move {
                Ok(UpstreamBody {
                    length,
                    body: futures::stream::iter([Ok(Bytes::from(body))]).boxed(),
                })
            }
            .boxed()
        };
        match fills
            .get_or_start(
                "projects/p/repositories/r",
                digest,
                async { Ok(None) },
                open,
                || async {}.boxed(),
            )
            .await
            .unwrap()
        {
            Cached::Filling(fill) => fill,
            Cached::Committed(_) => panic!("nothing is linked"),
        }
    }

    async fn collect(stream: ByteStream) -> Result<Vec<u8>, std::io::Error> {
        let mut out = Vec::new();
        let mut stream = stream;
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    #[tokio::test]
    async fn an_empty_answer_waits_for_the_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let fills = fills(dir.path());
        let digest = Digest::of(b"not empty");
        let fill = fill_of(&fills, &digest, Some(0), Vec::new()).await;
        assert!(matches!(
            fill.size().await,
            Err(FillError::DigestMismatch { .. })
        ));
    }

    #[tokio::test]
    async fn a_range_ending_before_the_last_byte_waits_for_the_verdict() {
        let dir = tempfile::tempdir().unwrap();
        let fills = fills(dir.path());
        let digest = Digest::of(b"the real bytes");
        let fill = fill_of(&fills, &digest, Some(100), vec![7u8; 100]).await;
        // The whole body ends in an error: the fill has failed verification.
        assert!(collect(fill.stream(None)).await.is_err());
        // A range that ends early gets no complete answer either.
        let range = ByteRange { start: 0, end: 9 };
        assert!(collect(fill.stream(Some(range))).await.is_err());

        // Verified content is released whole, ranges included.
        let good = b"0123456789abcdef".to_vec();
        let fill = fill_of(&fills, &Digest::of(&good), Some(16), good.clone()).await;
        assert_eq!(
            collect(fill.stream(Some(range))).await.unwrap(),
            &good[..10]
        );
        assert_eq!(collect(fill.stream(None)).await.unwrap(), good);
    }
}
