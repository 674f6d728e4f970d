//! The accept loop: HTTP/1.1 connections (and, over TLS, HTTP/2 when the
//! client offers it by ALPN) with a bounded count, a deadline for each
//! request head and for each TLS handshake, and a timeout for idle
//! connections.
//!
//! Without these, idle or slow-header connections pile up until the process
//! runs out of file descriptors and new clients time out (slowloris). A body
//! that keeps moving is never cut: only request heads have a deadline, and
//! only connections with no request in flight and no byte moving count as
//! idle.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::ConnectInfo;
use axum::Router;
use entrepot_api::zero_copy::ZeroCopy;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tower::ServiceExt as _;

/// How connections are bounded.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time allowed to receive a complete request head.
    pub header_read_timeout: Duration,
    /// Time a connection may sit with no request in flight and no byte moving.
    pub idle_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// Whether plain HTTP/1.1 connections send stored files by `sendfile`.
    pub sendfile: bool,
}

/// File descriptors kept free for the database, blob files and upstream
/// connections when the connection limit is checked against the process's.
const RESERVED_FDS: u64 = 256;

/// How far hyper may grow a connection's read buffer. It also bounds request
/// heads: hyper answers 431 and closes the connection once an unfinished head
/// fills it (its allocations round up, so heads of up to about twice this
/// size may still pass).
///
/// hyper keeps a connection's buffer at the size it grew to until the
/// connection closes, and it grows while a body streams in: with hyper's
/// default (about 400 KiB) an idle keep-alive connection that had pushed a
/// few MiB held 90 to 400 KiB; with 64 KiB, 91 KiB; with 32 KiB, 69 KiB
/// (bench/idle-connections.sh, 300 connections of a 4 MiB push each; see
/// bench/RESULTS.md). Uploads are as fast with reads of this size
/// (bench/compare-builds.sh), and no client sends a head anywhere near it.
const MAX_BUFFER_BYTES: usize = 32 * 1024;

/// Unsent bytes a connection's socket may hold before it stops being
/// writable (`TCP_NOTSENT_LOWAT`). Without a limit the kernel lets a socket
/// queue up to its whole send buffer (several MiB once autotuned), so a large
/// body (`sendfile` of a blob) is pushed far ahead of what the peer reads, in
/// long bursts that compete with a client on the same cores. With at most
/// 1 MiB queued the socket is refilled in steps the peer keeps up with
/// (bench/RESULTS.md: a warm pull through a remote repository). Each step
/// is a wake-up and a `sendfile` call: 128 KiB cost 2.3 times nginx's CPU
/// per GiB sent, 1 MiB 1.25 times.
const NOTSENT_LOWAT_BYTES: u32 = 1024 * 1024;

/// Time a client has to complete its TLS handshake: a caller that opens a
/// connection and stalls cannot keep it past this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Most TLS handshakes in progress at once; connections beyond are closed at
/// once, so a flood of handshakes cannot take all the CPU or all the
/// connection slots from clients that have one.
const MAX_HANDSHAKES: usize = 256;

/// Most requests in flight on one HTTP/2 connection.
const MAX_STREAMS_PER_CONNECTION: u32 = 128;

/// How often the "limit reached" warning may repeat.
const WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Raise the soft open-files limit to the hard one, and lower the connection
/// limit if the process still could not hold that many connections: past the
/// descriptor limit, `accept` fails and new clients wait in the backlog.
pub fn fit_to_fd_limit(max_connections: usize) -> usize {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            tracing::debug!(error = %e, "could not raise the open-files limit");
        }
        limit = getrlimit(Resource::Nofile);
    }
    let Some(fds) = limit.current else {
        return max_connections;
    };
    let fit = fds.saturating_sub(RESERVED_FDS).max(1);
    if (max_connections as u64) > fit {
        tracing::warn!(
            max_connections,
            open_files_limit = fds,
            effective = fit,
            "max_connections is above what the open-files limit (ulimit -n) allows; serving at most {fit} connections"
        );
        return fit as usize;
    }
    max_connections
}

/// Serve `app` on `listener` until `shutdown` resolves, then stop accepting,
/// let every connection finish its request in flight, and return.
///
/// With `tls`, every connection first completes a TLS handshake (bounded in
/// time and in number at once), then speaks HTTP/2 if it chose `h2` by ALPN,
/// else HTTP/1.1.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    tls: Option<Arc<crate::tls::ReloadableTls>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let refusals = Arc::new(Refusals::default());
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept:
                    // pause briefly instead of spinning, and keep serving.
                    refusals.accept_failed(&e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refuse(stream);
            refusals.refused(limits.max_connections);
            continue;
        };
        // Without TCP_NODELAY a small response on a reused connection waits for
        // the client's delayed ACK (about 40 ms): pip fetches files one after
        // another.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        if let Err(e) = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(NOTSENT_LOWAT_BYTES) {
            tracing::debug!(error = %e, "could not set TCP_NOTSENT_LOWAT");
        }
        let app = app.clone();
        let stopping = stopping.clone();
        let activity = Arc::new(Activity::new());
        let Some(tls) = &tls else {
            // In the clear, stored blobs go from their files to the socket
            // by sendfile (see entrepot_api::zero_copy).
            let zero_copy = limits.sendfile.then(ZeroCopy::new);
            let stream = Tracked {
                inner: stream,
                activity: activity.clone(),
                zero_copy: zero_copy.clone(),
            };
            tokio::spawn(async move {
                let connection = Connection {
                    protocol: Protocol::Http1,
                    peer,
                    activity,
                    zero_copy,
                };
                serve_connection(stream, connection, app, limits, stopping).await;
                drop(permit);
            });
            continue;
        };
        let Ok(handshake) = handshakes.clone().try_acquire_owned() else {
            refusals.handshakes_refused();
            continue;
        };
        let acceptor = tls.acceptor();
        let stream = Tracked {
            inner: stream,
            activity: activity.clone(),
            zero_copy: None,
        };
        tokio::spawn(async move {
            let accepted = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            drop(handshake);
            let stream = match accepted {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let protocol = match stream.get_ref().1.alpn_protocol() {
                Some(b"h2") => Protocol::Http2Tls,
                _ => Protocol::Http1Tls,
            };
            let connection = Connection {
                protocol,
                peer,
                activity,
                zero_copy: None,
            };
            serve_connection(stream, connection, app, limits, stopping).await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a permit until it is closed.
    let _ = permits.acquire_many(limits.max_connections as u32).await;
    Ok(())
}

/// Answer a connection over the limit with a 503 if the socket takes it at
/// once, and close it: never wait on a client the server cannot serve.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(REFUSAL);
}

/// The whole answer to a connection over the limit, sent in one write.
const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 44\r\n\r\nthe server has too many connections; retry\r\n";

/// What a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// HTTP/1.1 in the clear.
    Http1,
    /// HTTP/1.1 over TLS.
    Http1Tls,
    /// HTTP/2 over TLS (chosen by ALPN).
    Http2Tls,
}

/// What the accept loop knows of a connection it hands to
/// [`serve_connection`].
struct Connection {
    protocol: Protocol,
    peer: SocketAddr,
    activity: Arc<Activity>,
    /// The zero-copy writer of a plain HTTP/1.1 connection's socket.
    zero_copy: Option<Arc<ZeroCopy>>,
}

async fn serve_connection<S>(
    stream: S,
    connection: Connection,
    app: Router,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Connection {
        protocol,
        peer,
        activity,
        zero_copy,
    } = connection;
    let io = TokioIo::new(stream);
    let in_flight = activity.clone();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        if let Some(zero_copy) = &zero_copy {
            request.extensions_mut().insert(zero_copy.clone());
        }
        if protocol != Protocol::Http1 {
            request
                .extensions_mut()
                .insert(entrepot_api::forwarded::TlsConnection);
        }
        if protocol == Protocol::Http2Tls {
            host_from_authority(&mut request);
        }
        let guard = InFlight::enter(&in_flight);
        let app = app.clone();
        async move {
            let response = app.oneshot(request.map(axum::body::Body::new)).await;
            drop(guard);
            response
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    match protocol {
        Protocol::Http1 | Protocol::Http1Tls => {
            builder = builder.http1_only();
            builder
                .http1()
                // Body chunks are queued and written as they are, never
                // copied into one buffer: the zero-copy writer relies on it.
                .writev(true)
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .max_buf_size(MAX_BUFFER_BYTES);
        }
        Protocol::Http2Tls => {
            builder = builder.http2_only();
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION);
        }
    }
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        // With a request in flight the connection is not idle: look again one
        // timeout later (the request's end counts as activity).
        let idle_deadline = if activity.in_flight.load(Ordering::Relaxed) > 0 {
            Instant::now() + limits.idle_timeout
        } else {
            activity.last() + limits.idle_timeout
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    // Header timeouts, resets, clients that went away: theirs.
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            changed = stopping.changed(), if !closing => {
                if changed.is_err() || *stopping.borrow() {
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            () = tokio::time::sleep_until(idle_deadline), if !closing => {
                if activity.idle_for(limits.idle_timeout) {
                    // Finishes a request that would start meanwhile, then closes.
                    tracing::debug!(%peer, "closing idle connection");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

/// HTTP/2 carries the host in the `:authority` pseudo-header, which hyper
/// puts in the URI, not in `Host`: copy it there, so that handlers read the
/// host one way whatever the version (the token realm names it).
fn host_from_authority<B>(request: &mut hyper::Request<B>) {
    if request.headers().contains_key(hyper::header::HOST) {
        return;
    }
    let Some(authority) = request.uri().authority() else {
        return;
    };
    if let Ok(value) = hyper::header::HeaderValue::from_str(authority.as_str()) {
        request.headers_mut().insert(hyper::header::HOST, value);
    }
}

/// When a connection last moved a byte, and how many requests it has in flight.
struct Activity {
    start: Instant,
    /// Milliseconds after `start`.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed))
    }

    fn idle_for(&self, timeout: Duration) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0 && self.last().elapsed() >= timeout
    }
}

/// Counts a request in flight until dropped.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::Relaxed);
        Self(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A socket that records when it last moved a byte and, with `zero_copy`,
/// sends placeholder body chunks from their files (see
/// [`entrepot_api::zero_copy`]).
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
    zero_copy: Option<Arc<ZeroCopy>>,
}

impl Tracked {
    /// Send up to `max` bytes of the next file segment in place of a
    /// placeholder, when the socket takes them.
    fn poll_send_file(
        &mut self,
        cx: &mut Context<'_>,
        zero_copy: &ZeroCopy,
        max: usize,
    ) -> Poll<io::Result<usize>> {
        loop {
            std::task::ready!(self.inner.poll_write_ready(cx))?;
            match self
                .inner
                .try_io(Interest::WRITABLE, || zero_copy.send(&self.inner, max))
            {
                Ok(n) => {
                    self.activity.touch();
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(zero_copy) = self.zero_copy.clone() {
            if ZeroCopy::is_placeholder(buf) {
                return self.poll_send_file(cx, &zero_copy, buf.len());
            }
        }
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(zero_copy) = self.zero_copy.clone() {
            // A placeholder first: its file's bytes. Before one: the buffers
            // up to it (the response head), written as usual.
            if let Some(first) = bufs.iter().find(|b| !b.is_empty()) {
                if ZeroCopy::is_placeholder(first) {
                    return self.poll_send_file(cx, &zero_copy, first.len());
                }
            }
            if let Some(at) = bufs.iter().position(|b| ZeroCopy::is_placeholder(b)) {
                bufs = &bufs[..at];
            }
        }
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Connections refused or failed to accept, logged at most once per
/// [`WARN_INTERVAL`] so that a flood does not flood the log too.
#[derive(Default)]
struct Refusals {
    refused: AtomicU64,
    last_warning: Mutex<Option<Instant>>,
}

impl Refusals {
    fn due(&self) -> bool {
        let mut last = self.last_warning.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < WARN_INTERVAL) {
            return false;
        }
        *last = Some(now);
        true
    }

    fn refused(&self, max_connections: usize) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        if self.due() {
            let refused = self.refused.swap(0, Ordering::Relaxed);
            tracing::warn!(
                max_connections,
                refused,
                "connection limit reached: refusing new connections (raise max_connections / ENTREPOT_MAX_CONNECTIONS if this is legitimate load)"
            );
        }
    }

    fn handshakes_refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        if self.due() {
            let refused = self.refused.swap(0, Ordering::Relaxed);
            tracing::warn!(
                max_handshakes = MAX_HANDSHAKES,
                refused,
                "too many TLS handshakes in progress: closing new connections"
            );
        }
    }

    fn accept_failed(&self, error: &io::Error) {
        if self.due() {
            tracing::warn!(%error, "cannot accept connections");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_complete_http_answer() {
        let text = std::str::from_utf8(REFUSAL).unwrap_or_default();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 503 "));
        assert!(head.contains(&format!("Content-Length: {}", body.len())));
    }
}
