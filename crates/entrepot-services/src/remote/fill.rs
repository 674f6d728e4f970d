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
use entrepot_domain::{ByteRange, ContentDigest, ContentHasher, Digest};
use entrepot_storage::{BlobStore, ByteStream};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;

use super::failure::UpstreamFailure;
use crate::metrics::{ContentKind, Metrics};

const READ_CHUNK: usize = 256 * 1024;
const WRITE_BATCH: usize = 1024 * 1024;

/// Why a fill failed. Cloned to every client waiting on it.
pub type FillError = UpstreamFailure;

/// What the upstream answered when a fill opened its download.
pub struct UpstreamBody {
    /// The host that answered, for messages.
    pub host: String,
    /// Content-Length, when the upstream sent one.
    pub length: Option<u64>,
    /// The body.
    pub body: ByteStream,
}

/// Opens the upstream download of a fill.
pub type OpenUpstream = BoxFuture<'static, Result<UpstreamBody, FillError>>;

/// Content a fill verified and committed to the blob store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The blob store's name for it.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
}

/// Under which name a fill commits what it verified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreBy {
    /// Its sha256, whatever it was named by.
    Sha256,
    /// The digest it was named by (sha256 or sha512).
    NamedDigest,
}

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
type FillKey = (String, ContentDigest);

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
    /// In the blob store.
    Committed(Committed),
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
    /// scope and digest at a time). The fill hashes the bytes as they arrive,
    /// under `digest`'s algorithm and under sha256 (the blob store's name for
    /// them), and commits them only if they match `digest`. Content in the
    /// blob store but not linked to `scope` is downloaded and verified all the
    /// same: see the module documentation.
    pub async fn get_or_start(
        &self,
        scope: &str,
        digest: &ContentDigest,
        linked: impl Future<Output = Result<Option<Committed>, FillError>>,
        open: impl FnOnce() -> OpenUpstream,
        after_commit: impl FnOnce(Committed) -> AfterCommit + Send + 'static,
    ) -> Result<Cached, FillError> {
        self.get_or_start_as(scope, digest, StoreBy::Sha256, linked, open, after_commit)
            .await
    }

    /// [`Self::get_or_start`], committing the content under the name
    /// `store_by` says.
    pub async fn get_or_start_as(
        &self,
        scope: &str,
        digest: &ContentDigest,
        store_by: StoreBy,
        linked: impl Future<Output = Result<Option<Committed>, FillError>>,
        open: impl FnOnce() -> OpenUpstream,
        after_commit: impl FnOnce(Committed) -> AfterCommit + Send + 'static,
    ) -> Result<Cached, FillError> {
        let key = (scope.to_owned(), digest.clone());
        let mut running = self.running.lock().await;
        if let Some(fill) = running.get(&key) {
            self.metrics.single_flight_join();
            return Ok(Cached::Filling(fill.clone()));
        }
        // Checked under the lock: a fill links its content before it removes
        // itself, so a request that just missed the fill finds the link.
        if let Some(committed) = linked.await? {
            return Ok(Cached::Committed(committed));
        }
        self.metrics.miss(ContentKind::Blob);
        let path = self.spool.join(uuid::Uuid::new_v4().to_string());
        let writer = tokio::fs::File::create(&path)
            .await
            .map_err(FillError::storage)?;
        let reader = std::fs::File::open(&path).map_err(FillError::storage)?;
        let (tx, rx) = watch::channel(Progress::default());
        let fill = Arc::new(Fill {
            reader: Arc::new(reader),
            progress: rx,
        });
        running.insert(key.clone(), fill.clone());
        drop(running);

        let job = FillJob {
            digest: digest.clone(),
            store_by,
            path,
            blobs: self.blobs.clone(),
            metrics: self.metrics.clone(),
            tx,
        };
        let open = open();
        let forget = Forget {
            running: self.running.clone(),
            key,
        };
        tokio::spawn(job.run(open, writer, after_commit, forget));
        Ok(Cached::Filling(fill))
    }
}

/// Which fills are under way, seen from outside the remote cache (by
/// eviction, which must leave content in the middle of a fill alone).
#[derive(Clone)]
pub struct FillsInFlight {
    running: Arc<tokio::sync::Mutex<HashMap<FillKey, Arc<Fill>>>>,
}

impl FillsInFlight {
    /// Whether a fill of one of `digests` is under way for `scope` (a
    /// repository's resource name).
    pub async fn any_of(&self, scope: &str, digests: &[Digest]) -> bool {
        let running = self.running.lock().await;
        digests
            .iter()
            .any(|d| running.contains_key(&(scope.to_owned(), ContentDigest::from(d))))
    }
}

impl Fills {
    /// A view of the fills under way, which stays valid once these fills
    /// are moved into a remote cache.
    pub fn in_flight(&self) -> FillsInFlight {
        FillsInFlight {
            running: self.running.clone(),
        }
    }
}

/// Removes a fill from the fills under way.
struct Forget {
    running: Arc<tokio::sync::Mutex<HashMap<FillKey, Arc<Fill>>>>,
    key: FillKey,
}

impl Forget {
    async fn now(self) {
        self.running.lock().await.remove(&self.key);
    }
}

struct FillJob {
    digest: ContentDigest,
    store_by: StoreBy,
    path: PathBuf,
    blobs: Arc<dyn BlobStore>,
    metrics: Arc<Metrics>,
    tx: watch::Sender<Progress>,
}

impl FillJob {
    async fn run(
        self,
        open: OpenUpstream,
        mut writer: tokio::fs::File,
        after_commit: impl FnOnce(Committed) -> AfterCommit,
        forget: Forget,
    ) {
        let started = std::time::Instant::now();
        let outcome = self.download(open, &mut writer).await;
        drop(writer);
        self.metrics
            .fill_finished(started.elapsed(), outcome.as_ref().ok().map(|c| c.size));
        match outcome {
            Ok(committed) => {
                self.tx.send_modify(|p| p.outcome = Some(Ok(())));
                // Linked before the fill is forgotten: a request arriving
                // after that finds the link instead of starting another
                // download.
                after_commit(committed).await;
                forget.now().await;
            }
            Err(e) => {
                if matches!(e, FillError::DigestMismatch { .. }) {
                    tracing::error!(digest = %self.digest, error = %e, "upstream content failed verification; not cached");
                } else {
                    tracing::warn!(digest = %self.digest, error = %e, "cache fill failed");
                }
                let _ = tokio::fs::remove_file(&self.path).await;
                // Forgotten before anyone hears of the failure: a client that
                // retries at once starts a new download instead of joining
                // this failed one.
                forget.now().await;
                self.tx.send_modify(|p| p.outcome = Some(Err(e)));
            }
        }
    }

    async fn download(
        &self,
        open: OpenUpstream,
        writer: &mut tokio::fs::File,
    ) -> Result<Committed, FillError> {
        let storage = |e: std::io::Error| FillError::storage(e);
        let UpstreamBody { host, length, body } = open.await?;
        // Fused: the batching below may see the end before the loop does,
        // and a stream need not be polled past its end.
        let mut body = body.fuse();
        self.tx.send_modify(|p| {
            p.total = length;
            p.opened = true;
        });
        let file = Arc::new(writer.try_clone().await.map_err(storage)?.into_std().await);
        let mut hasher = ContentHasher::new(self.digest.algorithm());
        let broken = |e: std::io::Error| FillError::InvalidResponse {
            host: host.clone(),
            detail: format!("the transfer from the upstream {host} broke off: {e}"),
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
        let hashed = hasher.finish();
        let size = hashed.len;
        if hashed.asked != self.digest {
            return Err(FillError::DigestMismatch {
                expected: self.digest.clone(),
                actual: hashed.asked,
            });
        }
        if let Some(expected) = length.filter(|l| *l != size) {
            return Err(FillError::InvalidResponse {
                detail: format!("the upstream {host} announced {expected} bytes but sent {size}"),
                host,
            });
        }
        self.tx.send_modify(|p| p.total = Some(size));
        let name = match self.store_by {
            StoreBy::Sha256 => hashed.sha256,
            StoreBy::NamedDigest => hashed.asked.to_digest(),
        };
        self.blobs
            .import_verified_file(&name, &self.path)
            .await
            .map_err(FillError::storage)?;
        Ok(Committed { digest: name, size })
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
                return Err(FillError::storage(std::io::Error::other(
                    "the cache fill stopped unexpectedly",
                )));
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
                return Err(FillError::storage(std::io::Error::other(
                    "the cache fill stopped unexpectedly",
                )));
            }
        }
    }

    /// Stream the content (or a range of it) as it arrives. If the fill fails, the
    /// stream ends with an error so the client never takes a partial body for a
    /// whole one.
    pub fn stream(self: &Arc<Self>, range: Option<ByteRange>) -> ByteStream {
        let release = Release::new(&self.progress, range);
        futures::stream::unfold((self.clone(), release), |(fill, mut release)| async move {
            let (offset, len) = match release.next_span(READ_CHUNK as u64).await? {
                Ok(span) => span,
                Err(e) => return Some((Err(e), (fill, release))),
            };
            let file = fill.reader.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; len as usize];
                file.read_exact_at(&mut buf, offset)?;
                Ok::<_, std::io::Error>(buf)
            })
            .await
            .map_err(std::io::Error::other)
            .and_then(|r| r);
            match read {
                Ok(buf) => Some((Ok(Bytes::from(buf)), (fill, release))),
                Err(e) => {
                    release.done = true;
                    let e = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                        std::io::Error::other("cache spool file ended early")
                    } else {
                        e
                    };
                    Some((Err(e), (fill, release)))
                }
            }
        })
        .boxed()
    }

    /// The content (or a range of it) as spans of the spool file, released
    /// as they arrive, for a reader that sends them from the file itself
    /// (`sendfile`) instead of through memory; the same bytes, held back and
    /// failed the same way as [`Self::stream`]. The file stays readable for
    /// as long as it is held, through the commit (which moves it) and after.
    pub fn spool(self: &Arc<Self>, range: Option<ByteRange>) -> SpoolSpans {
        let release = Release::new(&self.progress, range);
        let spans = futures::stream::unfold(release, |mut release| async move {
            let span = release.next_span(u64::MAX).await?;
            Some((span, release))
        });
        SpoolSpans {
            file: self.reader.clone(),
            spans: spans.boxed(),
        }
    }
}

/// The spool file of a fill and the spans `(offset, length)` of it released
/// to one reader, in order; see [`Fill::spool`]. The stream ends once the
/// reader has every byte it asked for, or with an error if the fill failed.
pub struct SpoolSpans {
    /// The spool file, open for reading.
    pub file: Arc<std::fs::File>,
    /// The spans released, as they are.
    pub spans: futures::stream::BoxStream<'static, std::io::Result<(u64, u64)>>,
}

/// One reader's position in a fill: which bytes of the spool file it may
/// read next.
struct Release {
    rx: watch::Receiver<Progress>,
    offset: u64,
    end: Option<u64>,
    done: bool,
}

impl Release {
    fn new(progress: &watch::Receiver<Progress>, range: Option<ByteRange>) -> Self {
        Self {
            rx: progress.clone(),
            offset: range.map_or(0, |r| r.start),
            end: range.map(|r| r.end + 1),
            done: false,
        }
    }

    /// The next span of at most `max` bytes, once the fill has released it;
    /// `None` once the reader has all it asked for.
    async fn next_span(&mut self, max: u64) -> Option<std::io::Result<(u64, u64)>> {
        if self.done {
            return None;
        }
        loop {
            let (written, outcome) = {
                let p = self.rx.borrow_and_update();
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
            let limit = match self.end {
                Some(e) if verified => e.min(released),
                Some(e) => e.saturating_sub(1).min(released),
                None => released,
            };
            if self.offset < limit {
                let span = (self.offset, (limit - self.offset).min(max));
                self.offset += span.1;
                return Some(Ok(span));
            }
            if self.end.is_some_and(|e| self.offset >= e) {
                return None;
            }
            match outcome {
                Some(Ok(())) => return None,
                Some(Err(e)) => {
                    self.done = true;
                    return Some(Err(std::io::Error::other(e.to_string())));
                }
                None => {
                    if self.rx.changed().await.is_err() {
                        self.done = true;
                        return Some(Err(std::io::Error::other(
                            "the cache fill stopped unexpectedly",
                        )));
                    }
                }
            }
        }
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

    /// Start a fill of `digest` whose upstream answers `body` with `length`;
    /// what it committed arrives on the receiver.
    async fn fill_committing(
        fills: &Fills,
        digest: impl Into<ContentDigest>,
        length: Option<u64>,
        body: Vec<u8>,
    ) -> (Arc<Fill>, tokio::sync::oneshot::Receiver<Committed>) {
        let open = move || {
            async move {
                Ok(UpstreamBody {
                    host: "upstream.example".into(),
                    length,
                    body: futures::stream::iter([Ok(Bytes::from(body))]).boxed(),
                })
            }
            .boxed()
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let after_commit = move |committed| {
            async move {
                let _ = tx.send(committed);
            }
            .boxed()
        };
        match fills
            .get_or_start(
                "projects/p/repositories/r",
                &digest.into(),
                async { Ok(None) },
                open,
                after_commit,
            )
            .await
            .unwrap()
        {
            Cached::Filling(fill) => (fill, rx),
            Cached::Committed(_) => panic!("nothing is linked"),
        }
    }

    async fn fill_of(
        fills: &Fills,
        digest: impl Into<ContentDigest>,
        length: Option<u64>,
        body: Vec<u8>,
    ) -> Arc<Fill> {
        fill_committing(fills, digest, length, body).await.0
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
        let fill = fill_of(&fills, digest, Some(0), Vec::new()).await;
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
        let fill = fill_of(&fills, digest, Some(100), vec![7u8; 100]).await;
        // The whole body ends in an error: the fill has failed verification.
        assert!(collect(fill.stream(None)).await.is_err());
        // A range that ends early gets no complete answer either.
        let range = ByteRange { start: 0, end: 9 };
        assert!(collect(fill.stream(Some(range))).await.is_err());

        // Verified content is released whole, ranges included.
        let good = b"0123456789abcdef".to_vec();
        let fill = fill_of(&fills, Digest::of(&good), Some(16), good.clone()).await;
        assert_eq!(
            collect(fill.stream(Some(range))).await.unwrap(),
            &good[..10]
        );
        assert_eq!(collect(fill.stream(None)).await.unwrap(), good);
    }

    fn sha512(bytes: &[u8]) -> ContentDigest {
        use sha2::Digest as _;
        let hex = hex::encode(sha2::Sha512::digest(bytes));
        ContentDigest::new(entrepot_domain::Algorithm::Sha512, &hex).unwrap()
    }

    #[tokio::test]
    async fn content_named_by_sha512_is_verified_by_it_and_stored_by_sha256() {
        let dir = tempfile::tempdir().unwrap();
        let fills = fills(dir.path());
        let good = b"a file an index names by its sha512 only".to_vec();
        let (fill, committed) = fill_committing(&fills, sha512(&good), None, good.clone()).await;
        assert_eq!(collect(fill.stream(None)).await.unwrap(), good);
        let committed = committed.await.unwrap();
        assert_eq!(
            committed,
            Committed {
                digest: Digest::of(&good),
                size: good.len() as u64
            }
        );
        assert_eq!(
            fills.blobs.stat(&committed.digest).await.unwrap(),
            Some(good.len() as u64)
        );

        // Other bytes under that sha512: refused, nothing committed.
        let other = b"something else".to_vec();
        let (fill, committed) = fill_committing(&fills, sha512(&good), None, other.clone()).await;
        match fill.size().await {
            Err(FillError::DigestMismatch { expected, actual }) => {
                assert_eq!(expected, sha512(&good));
                assert_eq!(actual, sha512(&other));
            }
            other => panic!("not refused: {other:?}"),
        }
        assert!(committed.await.is_err());
        assert_eq!(fills.blobs.stat(&Digest::of(&other)).await.unwrap(), None);
    }
    /// A fill's upstream body, fed chunk by chunk by the test.
    struct Feed(tokio::sync::mpsc::UnboundedSender<std::io::Result<Bytes>>);

    impl Feed {
        fn send(&self, chunk: &[u8]) {
            self.0.send(Ok(Bytes::copy_from_slice(chunk))).unwrap();
        }

        fn fail(self) {
            self.0
                .send(Err(std::io::Error::other("connection reset")))
                .unwrap();
        }
    }

    /// What one request for `digest` got, with the body of the download it
    /// started (if it started one) fed through the returned feed, and the
    /// count of downloads opened.
    struct Request {
        fill: Arc<Fill>,
        committed: tokio::sync::oneshot::Receiver<Committed>,
    }

    async fn request(
        fills: &Fills,
        digest: &ContentDigest,
        length: Option<u64>,
        opens: &Arc<std::sync::atomic::AtomicUsize>,
    ) -> (Request, Feed) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let opens = opens.clone();
        let open = move || {
            opens.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move {
                Ok(UpstreamBody {
                    host: "upstream.example".into(),
                    length,
                    body: futures::stream::unfold(rx, |mut rx| async move {
                        rx.recv().await.map(|chunk| (chunk, rx))
                    })
                    .boxed(),
                })
            }
            .boxed()
        };
        let (done, committed) = tokio::sync::oneshot::channel();
        let after_commit = move |c| {
            async move {
                let _ = done.send(c);
            }
            .boxed()
        };
        let cached = fills
            .get_or_start(
                "projects/p/repositories/r",
                digest,
                async { Ok(None) },
                open,
                after_commit,
            )
            .await
            .unwrap();
        let Cached::Filling(fill) = cached else {
            panic!("nothing is linked")
        };
        (Request { fill, committed }, Feed(tx))
    }

    fn opens() -> Arc<std::sync::atomic::AtomicUsize> {
        Arc::default()
    }

    fn opened(opens: &Arc<std::sync::atomic::AtomicUsize>) -> usize {
        opens.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Read from `stream` until at least `n` bytes came (fewer if it ends).
    async fn read_at_least(stream: &mut ByteStream, n: usize) -> Vec<u8> {
        let mut out = Vec::new();
        while out.len() < n {
            match stream.next().await {
                Some(chunk) => out.extend_from_slice(&chunk.unwrap()),
                None => break,
            }
        }
        out
    }

    fn content() -> Vec<u8> {
        (0..3000u32).map(|i| (i % 251) as u8).collect()
    }

    #[tokio::test]
    async fn two_requests_for_one_blob_share_one_download_and_both_get_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        let fills = fills(dir.path());
        let good = content();
        let digest = ContentDigest::from(Digest::of(&good));
        let opens = opens();
        let (first, feed) = request(&fills, &digest, Some(3000), &opens).await;
        let (second, _unused) = request(&fills, &digest, Some(3000), &opens).await;
        assert_eq!(opened(&opens), 1, "the second request opened a download");
        assert!(Arc::ptr_eq(&first.fill, &second.fill));

        let (mut a, mut b) = (first.fill.stream(None), second.fill.stream(None));
        feed.send(&good[..1000]);
        // Both readers have bytes while the download is still running; the
        // last byte written is held back until the digest is checked.
        let early_a = read_at_least(&mut a, 999).await;
        let early_b = read_at_least(&mut b, 999).await;
        assert_eq!(early_a, &good[..999]);
        assert_eq!(early_b, &good[..999]);
        feed.send(&good[1000..]);
        drop(feed);
        let rest_a = collect(a).await.unwrap();
        let rest_b = collect(b).await.unwrap();
        assert_eq!([early_a, rest_a].concat(), good);
        assert_eq!([early_b, rest_b].concat(), good);
        let committed = first.committed.await.unwrap();
        assert_eq!(committed.digest, Digest::of(&good));
        assert_eq!(opened(&opens), 1);
    }

    #[tokio::test]
    async fn a_transfer_broken_mid_stream_leaves_nothing_and_the_next_request_downloads_again() {
        let dir = tempfile::tempdir().unwrap();
        let fills = fills(dir.path());
        let good = content();
        let digest = ContentDigest::from(Digest::of(&good));
        let opens = opens();
        let (broken, feed) = request(&fills, &digest, Some(3000), &opens).await;
        let mut reader = broken.fill.stream(None);
        feed.send(&good[..1000]);
        assert_eq!(read_at_least(&mut reader, 999).await, &good[..999]);
        feed.fail();
        // The reader's body ends in an error, never as if it were whole.
        assert!(collect(reader).await.is_err());
        // The failed fill is forgotten before anyone hears of it: a retry
        // made the moment the error arrives downloads again.
        let (retry, feed) = request(&fills, &digest, Some(3000), &opens).await;
        assert_eq!(opened(&opens), 2, "the retry joined the failed fill");
        assert!(matches!(
            broken.fill.size().await,
            Err(FillError::InvalidResponse { .. })
        ));
        assert!(broken.committed.await.is_err(), "a broken fill committed");
        assert_eq!(fills.blobs.stat(&Digest::of(&good)).await.unwrap(), None);
        // Only the retry's spool file is left.
        assert_eq!(
            std::fs::read_dir(dir.path().join("spool")).unwrap().count(),
            1,
            "the broken fill's spool file survived"
        );

        feed.send(&good);
        drop(feed);
        assert_eq!(collect(retry.fill.stream(None)).await.unwrap(), good);
        assert!(retry.committed.await.is_ok());
    }

    #[tokio::test]
    async fn a_range_asked_while_filling_gets_exactly_its_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let fills = fills(dir.path());
        let good = content();
        let digest = ContentDigest::from(Digest::of(&good));
        let (filling, feed) = request(&fills, &digest, Some(3000), &opens()).await;
        feed.send(&good[..1000]);
        let mut whole = filling.fill.stream(None);
        read_at_least(&mut whole, 999).await;
        // A range across what has arrived and what has not, and one that
        // ends at the last byte.
        let across = filling.fill.stream(Some(ByteRange {
            start: 500,
            end: 1499,
        }));
        let tail = filling.fill.stream(Some(ByteRange {
            start: 2990,
            end: 2999,
        }));
        let (across, tail) = (tokio::spawn(collect(across)), tokio::spawn(collect(tail)));
        feed.send(&good[1000..2000]);
        feed.send(&good[2000..]);
        drop(feed);
        assert_eq!(across.await.unwrap().unwrap(), &good[500..1500]);
        assert_eq!(tail.await.unwrap().unwrap(), &good[2990..]);
    }

    #[tokio::test]
    async fn a_reader_that_goes_away_does_not_stop_the_download_for_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let fills = fills(dir.path());
        let good = content();
        let digest = ContentDigest::from(Digest::of(&good));
        let opens = opens();
        let (first, feed) = request(&fills, &digest, Some(3000), &opens).await;
        let (second, _) = request(&fills, &digest, Some(3000), &opens).await;
        let mut leaving = first.fill.stream(None);
        feed.send(&good[..1000]);
        read_at_least(&mut leaving, 999).await;
        // The client disconnects: its body stream and its handle are dropped.
        drop(leaving);
        drop(first.fill);
        feed.send(&good[1000..]);
        drop(feed);
        assert_eq!(collect(second.fill.stream(None)).await.unwrap(), good);
        // The download ran to its end and was committed for later requests.
        assert_eq!(first.committed.await.unwrap().size, 3000);
        assert_eq!(
            fills.blobs.stat(&Digest::of(&good)).await.unwrap(),
            Some(3000)
        );
        assert_eq!(opened(&opens), 1);
    }

    #[tokio::test]
    async fn content_that_fails_verification_mid_read_is_discarded_and_fetched_again() {
        let dir = tempfile::tempdir().unwrap();
        let fills = fills(dir.path());
        let good = content();
        let mut bad = good.clone();
        bad[2500] ^= 0xff;
        let digest = ContentDigest::from(Digest::of(&good));
        let opens = opens();
        let (first, feed) = request(&fills, &digest, Some(3000), &opens).await;
        let mut reader = first.fill.stream(None);
        feed.send(&bad[..1000]);
        read_at_least(&mut reader, 999).await;
        feed.send(&bad[1000..]);
        drop(feed);
        // The reader got every byte but the last, then an error.
        let mut got = 999;
        let mut failed = false;
        while let Some(chunk) = reader.next().await {
            match chunk {
                Ok(c) => got += c.len(),
                Err(_) => failed = true,
            }
        }
        assert!(
            failed && got < bad.len(),
            "unverified content was served whole"
        );
        assert!(matches!(
            first.fill.size().await,
            Err(FillError::DigestMismatch { .. })
        ));
        assert_eq!(fills.blobs.stat(&Digest::of(&bad)).await.unwrap(), None);
        assert_eq!(fills.blobs.stat(&Digest::of(&good)).await.unwrap(), None);

        let (retry, feed) = request(&fills, &digest, Some(3000), &opens).await;
        assert_eq!(opened(&opens), 2);
        feed.send(&good);
        drop(feed);
        assert_eq!(collect(retry.fill.stream(None)).await.unwrap(), good);
    }
}
