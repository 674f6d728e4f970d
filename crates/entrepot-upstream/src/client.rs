//! The HTTP client for upstream registries and indexes.
//!
//! # Where credentials go
//!
//! A request is sent to its *upstream*: the origin (scheme, host, port) of the
//! request's URL, which the caller built from the repository's configuration.
//! The repository's credentials go to exactly two places:
//!
//! 1. the upstream itself, as Basic credentials, when the upstream's own 401
//!    asked for Basic;
//! 2. the token service of a Bearer challenge *that the upstream itself sent*
//!    (its realm), to obtain a token; the token then goes to the upstream.
//!
//! Nothing else gets a credential, in particular not a redirect target (a CDN
//! host a blob request is redirected to): redirects are followed without an
//! `Authorization` header, and a 401 from a redirect target is an error, never
//! a challenge to answer. Challenges are remembered per origin *of the hop
//! that sent them*, so a redirect target's challenge can neither send the
//! upstream's credentials to a realm that host names nor replace the scheme
//! the upstream asked for. A redirect whose `Location` carries the
//! credentials that were just sent is not followed, and no error message
//! quotes an upstream-sent header value (see [`crate::redact`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine as _;
use futures::{StreamExt, TryStreamExt};
use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use http::{Method, StatusCode};
use serde::Deserialize;
use url::Url;

use crate::budget::Budget;
use crate::challenge::{self, Challenge};
use crate::credentials::{CredentialError, CredentialSource, UpstreamCredentials};
use crate::hop::{HopCheck, HopDenied};
use crate::redact;
use crate::response::{BodyError, UpstreamResponse};
use crate::transport::UpstreamTransport;

/// How many redirects one request may follow.
const MAX_REDIRECTS: usize = 5;
/// Attempts for idempotent requests that fail before a response arrives.
const ATTEMPTS: u32 = 3;
/// Tokens without `expires_in` live this long (the Docker token spec's default).
const DEFAULT_TOKEN_SECS: u64 = 60;

/// Why an upstream request failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// A hop was refused by the access policy.
    #[error(transparent)]
    Blocked(#[from] HopDenied),
    /// Credentials could not be obtained (e.g. the service agent lacks access).
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// The upstream refused the credentials.
    #[error("the upstream refused the credentials: {0}")]
    Unauthorized(String),
    /// No connection, a timeout, or a broken transfer.
    #[error("the upstream {host} is unreachable: {reason}")]
    Unreachable {
        /// Host that failed.
        host: String,
        /// What failed.
        reason: String,
    },
    /// Redirect loop or malformed redirect.
    #[error("the upstream sent a bad redirect: {0}")]
    Redirect(String),
    /// The upstream answered something that breaks its protocol.
    #[error("the upstream broke protocol: {0}")]
    Protocol(String),
}

/// One request to an upstream.
#[derive(Debug, Clone)]
pub struct UpstreamRequest {
    /// GET or HEAD (only idempotent requests are sent upstream).
    pub method: Method,
    /// Absolute URL.
    pub url: Url,
    /// Docker token scope for this request, e.g. `repository:library/alpine:pull`.
    pub scope: Option<String>,
    /// Extra headers (Accept, Range).
    pub headers: HeaderMap,
    /// How long the exchange may take.
    pub budget: Budget,
    /// Read the credentials afresh and fetch a new token, bypassing the
    /// caches (a check right after a rotation must see the new secret).
    pub fresh_credentials: bool,
    /// When the budget of all attempts runs out; set when sending.
    deadline: Option<Instant>,
}

impl UpstreamRequest {
    /// A GET of `url`.
    pub fn get(url: Url) -> Self {
        Self {
            method: Method::GET,
            url,
            scope: None,
            headers: HeaderMap::new(),
            budget: Budget::default(),
            fresh_credentials: false,
            deadline: None,
        }
    }

    /// Set the time budget.
    pub fn budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// Bypass the credential and token caches.
    pub fn fresh_credentials(mut self) -> Self {
        self.fresh_credentials = true;
        self
    }

    /// A HEAD of `url`.
    pub fn head(url: Url) -> Self {
        Self {
            method: Method::HEAD,
            ..Self::get(url)
        }
    }

    /// Set the token scope.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Add a header.
    pub fn header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.append(name, v);
        }
        self
    }
}

/// How one authenticated try ended.
enum Attempt {
    /// The upstream answered (anything but 401).
    Answered(reqwest::Response),
    /// The upstream or its token service refused; why.
    Refused(String),
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct TokenKey {
    realm: String,
    service: String,
    scope: String,
    credential_version: String,
}

struct CachedToken {
    token: String,
    valid_until: Instant,
}

#[derive(Deserialize)]
struct TokenResponse {
    token: Option<String>,
    access_token: Option<String>,
    expires_in: Option<u64>,
}

/// The upstream client. Cheap to share; holds the connection pool and caches.
pub struct UpstreamClient {
    /// One connection pool per connect timeout (reqwest sets it per client);
    /// repositories rarely choose their own, so this holds one or two.
    http: Mutex<HashMap<Duration, reqwest::Client>>,
    hops: Arc<dyn HopCheck>,
    /// What each origin asked for last time, so the next request authenticates
    /// up front instead of collecting a 401 first. Keyed by the origin of the
    /// hop that sent the challenge.
    challenges: Mutex<HashMap<String, Challenge>>,
    tokens: Mutex<HashMap<TokenKey, CachedToken>>,
}

fn origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => url.to_string(),
    }
}

fn basic(credentials: &UpstreamCredentials) -> String {
    let raw = format!("{}:{}", credentials.username, credentials.password);
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

fn build_http(connect: Duration) -> Result<reqwest::Client, UpstreamError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("entrepot/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| UpstreamError::Protocol(format!("cannot build the HTTP client: {e}")))
}

/// What went wrong before an answer, in words, without the URL (its query is
/// not for error messages): the innermost cause says "connection refused",
/// "failed to lookup address", or what the TLS handshake objected to.
fn describe(e: reqwest::Error, budget: &Budget) -> String {
    if e.is_timeout() && e.is_connect() {
        return format!("connect timed out after {} s", budget.connect.as_secs());
    }
    if e.is_timeout() {
        return "timed out".into();
    }
    let e = e.without_url();
    let mut innermost: &dyn std::error::Error = &e;
    while let Some(next) = innermost.source() {
        innermost = next;
    }
    let cause = innermost.to_string();
    if e.is_connect() {
        format!("connection failed: {cause}")
    } else {
        let own = e.to_string();
        if own.contains(&cause) {
            own
        } else {
            format!("{own}: {cause}")
        }
    }
}

fn is_retryable(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE | StatusCode::GATEWAY_TIMEOUT
    )
}

impl UpstreamClient {
    /// A client whose every hop passes `hops`.
    pub fn new(hops: Arc<dyn HopCheck>) -> Result<Self, UpstreamError> {
        let connect = Budget::default().connect;
        let http = build_http(connect)?;
        Ok(Self {
            http: Mutex::new(HashMap::from([(connect, http)])),
            hops,
            challenges: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// Send a request with the credentials of `source`, answering auth challenges
    /// and following redirects. A 401 after presenting cached credentials or a
    /// cached token is retried once with fresh ones.
    async fn send_authenticated(
        &self,
        request: &UpstreamRequest,
        source: &dyn CredentialSource,
    ) -> Result<reqwest::Response, UpstreamError> {
        if !matches!(request.url.scheme(), "http" | "https") {
            return Err(UpstreamError::Protocol(format!(
                "a URL with the scheme {} cannot be fetched; only http and https are",
                request.url.scheme()
            )));
        }
        let fresh = request.fresh_credentials;
        let credentials = source.credentials(fresh).await?;
        if let Attempt::Answered(response) =
            self.attempt(request, credentials.as_ref(), fresh).await?
        {
            return Ok(response);
        }
        // What was presented went stale (token expired, credentials rotated):
        // once more with fresh credentials and a fresh token.
        self.forget_tokens(credentials.as_ref());
        let credentials = source.credentials(true).await?;
        match self.attempt(request, credentials.as_ref(), true).await? {
            Attempt::Answered(response) => Ok(response),
            Attempt::Refused(reason) => Err(UpstreamError::Unauthorized(match credentials {
                Some(_) => format!("{reason}; check the username and the token stored in the secret"),
                None => format!(
                    "{reason}; configure --remote-username and --remote-password-secret-version on the repository"
                ),
            })),
        }
    }

    /// One try with the given credentials: answer a challenge the origin has not
    /// sent before, and report a refusal (401, or a token service saying no)
    /// instead of failing, so the caller can retry with fresh credentials.
    async fn attempt(
        &self,
        request: &UpstreamRequest,
        credentials: Option<&UpstreamCredentials>,
        fresh: bool,
    ) -> Result<Attempt, UpstreamError> {
        let mut auth = match self.authorization(request, credentials, fresh).await {
            Ok(auth) => auth,
            Err(UpstreamError::Unauthorized(reason)) => return Ok(Attempt::Refused(reason)),
            Err(e) => return Err(e),
        };
        let mut learned = false;
        loop {
            let response = self
                .send_following_redirects(request, auth.as_deref())
                .await?;
            if response.status() != StatusCode::UNAUTHORIZED {
                return Ok(Attempt::Answered(response));
            }
            let challenge = response
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .and_then(challenge::parse);
            if origin(response.url()) != origin(&request.url) {
                // A redirect target asked for credentials. Its challenge is its
                // own (kept under its origin, for a repository whose upstream
                // it is), never the upstream's: answering it would send the
                // upstream's credentials where they were not configured to go.
                if let Some(challenge) = challenge {
                    self.lock_challenges()
                        .insert(origin(response.url()), challenge);
                }
                return Err(UpstreamError::Unauthorized(format!(
                    "{} redirected to {}, which asked for credentials (HTTP 401); entrepot sends an upstream's credentials only to the upstream and to the token service it names, never to a redirect target",
                    host_of(&request.url),
                    host_of(response.url())
                )));
            }
            let challenge = challenge.ok_or_else(|| {
                UpstreamError::Unauthorized(format!(
                    "{} answered 401 without a challenge entrepot understands",
                    host_of(&request.url)
                ))
            })?;
            self.lock_challenges()
                .insert(origin(&request.url), challenge);
            let refused = Attempt::Refused(format!(
                "{} refused the {} (HTTP 401)",
                host_of(&request.url),
                if credentials.is_some() {
                    "configured credentials"
                } else {
                    "anonymous request"
                }
            ));
            if auth.is_some() || learned {
                return Ok(refused);
            }
            // Now we know how this origin authenticates: answer the challenge.
            learned = true;
            auth = match self.authorization(request, credentials, fresh).await {
                Ok(auth) => auth,
                Err(UpstreamError::Unauthorized(reason)) => return Ok(Attempt::Refused(reason)),
                Err(e) => return Err(e),
            };
            if auth.is_none() {
                return Ok(refused);
            }
        }
    }

    fn lock_challenges(&self) -> std::sync::MutexGuard<'_, HashMap<String, Challenge>> {
        self.challenges.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_tokens(&self) -> std::sync::MutexGuard<'_, HashMap<TokenKey, CachedToken>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn forget_tokens(&self, credentials: Option<&UpstreamCredentials>) {
        let version = credentials.map(|c| c.version.clone()).unwrap_or_default();
        self.lock_tokens()
            .retain(|k, _| k.credential_version != version);
    }

    /// The Authorization header for a request, per what its origin asked for.
    async fn authorization(
        &self,
        request: &UpstreamRequest,
        credentials: Option<&UpstreamCredentials>,
        fresh: bool,
    ) -> Result<Option<String>, UpstreamError> {
        let challenge = self.lock_challenges().get(&origin(&request.url)).cloned();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(credentials.map(basic)),
            Some(Challenge::Bearer {
                realm,
                service,
                scope,
            }) => {
                let scope = request.scope.clone().or(scope).unwrap_or_default();
                let key = TokenKey {
                    realm,
                    service: service.unwrap_or_default(),
                    scope,
                    credential_version: credentials.map(|c| c.version.clone()).unwrap_or_default(),
                };
                if !fresh {
                    if let Some(t) = self.lock_tokens().get(&key) {
                        if t.valid_until > Instant::now() {
                            return Ok(Some(format!("Bearer {}", t.token)));
                        }
                    }
                }
                let token = self.fetch_token(request, &key, credentials).await?;
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// Ask a token service for a bearer token (Docker token spec).
    async fn fetch_token(
        &self,
        on_behalf_of: &UpstreamRequest,
        key: &TokenKey,
        credentials: Option<&UpstreamCredentials>,
    ) -> Result<String, UpstreamError> {
        let mut url = Url::parse(&key.realm).map_err(|_| {
            UpstreamError::Protocol("the token realm the upstream named is not a URL".into())
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(UpstreamError::Protocol(format!(
                "the token realm the upstream named has the scheme {}; only http and https are used",
                url.scheme()
            )));
        }
        {
            let mut q = url.query_pairs_mut();
            if !key.service.is_empty() {
                q.append_pair("service", &key.service);
            }
            if !key.scope.is_empty() {
                q.append_pair("scope", &key.scope);
            }
        }
        let mut request = UpstreamRequest::get(url.clone()).budget(on_behalf_of.budget);
        request.deadline = on_behalf_of.deadline;
        let auth = credentials.map(basic);
        let response = self
            .send_following_redirects(&request, auth.as_deref())
            .await?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(UpstreamError::Unauthorized(format!(
                "the token service {} refused the configured credentials (HTTP {})",
                host_of(&url),
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(UpstreamError::Protocol(format!(
                "the token service {} answered HTTP {}",
                host_of(&url),
                status.as_u16()
            )));
        }
        // Not the parser's message: it quotes what the token service sent.
        let body: TokenResponse = response.json().await.map_err(|_| {
            UpstreamError::Protocol(format!(
                "the answer of the token service {} is not a token",
                host_of(&url)
            ))
        })?;
        let token = body
            .token
            .or(body.access_token)
            .ok_or_else(|| UpstreamError::Protocol("token service answer has no token".into()))?;
        let lifetime = body.expires_in.unwrap_or(DEFAULT_TOKEN_SECS);
        // Renew shortly before expiry so no request carries a token that dies in flight.
        let margin = (lifetime / 10).clamp(1, 30);
        let valid_until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(margin));
        self.lock_tokens().insert(
            key.clone(),
            CachedToken {
                token: token.clone(),
                valid_until,
            },
        );
        Ok(token)
    }

    /// Send, following redirects hop by hop; each hop passes the hop check, and
    /// the Authorization header only goes to the origin it was meant for.
    /// `Location` values never appear in errors, and one that carries the
    /// credentials just sent is not followed.
    async fn send_following_redirects(
        &self,
        request: &UpstreamRequest,
        authorization: Option<&str>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let first_origin = origin(&request.url);
        let secrets = authorization.map(redact::secrets_of).unwrap_or_default();
        let mut url = request.url.clone();
        for _ in 0..=MAX_REDIRECTS {
            self.hops.check(&url).await?;
            let auth = authorization.filter(|_| origin(&url) == first_origin);
            let response = self.send_with_retries(request, &url, auth).await?;
            if !response.status().is_redirection() || response.status() == StatusCode::NOT_MODIFIED
            {
                return Ok(response);
            }
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| {
                    UpstreamError::Redirect(format!(
                        "{} redirected without a Location",
                        host_of(&url)
                    ))
                })?;
            if redact::mentions_any(location, &secrets) {
                tracing::warn!(host = %host_of(&url), "an upstream redirect carried the credentials sent to it; not followed");
                return Err(UpstreamError::Redirect(format!(
                    "{} redirected to a URL that carries the credentials entrepot sent it; the redirect was not followed",
                    host_of(&url)
                )));
            }
            let from = host_of(&url);
            url = url.join(location).map_err(|_| {
                UpstreamError::Redirect(format!(
                    "{from} redirected to a Location that is not a URL"
                ))
            })?;
            if url.scheme() != "http" && url.scheme() != "https" {
                return Err(UpstreamError::Redirect(format!(
                    "{from} redirected to the unsupported scheme {}",
                    url.scheme()
                )));
            }
        }
        Err(UpstreamError::Redirect(format!(
            "more than {MAX_REDIRECTS} redirects"
        )))
    }

    fn http_for(&self, connect: Duration) -> Result<reqwest::Client, UpstreamError> {
        let mut pools = self.http.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(http) = pools.get(&connect) {
            return Ok(http.clone());
        }
        let http = build_http(connect)?;
        pools.insert(connect, http.clone());
        Ok(http)
    }

    /// Send one hop, retrying what failed before an answer (and 502/503/504)
    /// while the request's budget lasts: each try waits at most the time to
    /// first byte, all tries together at most the total budget.
    async fn send_with_retries(
        &self,
        request: &UpstreamRequest,
        url: &Url,
        authorization: Option<&str>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let budget = &request.budget;
        let deadline = request
            .deadline
            .unwrap_or_else(|| Instant::now() + budget.total);
        let http = self.http_for(budget.connect)?;
        let unreachable = |reason: String| UpstreamError::Unreachable {
            host: host_of(url),
            reason,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Err(unreachable(format!(
                    "no answer within the retry budget of {} s",
                    budget.total.as_secs()
                )));
            }
            let limit = budget.first_byte.min(remaining);
            let mut builder = http
                .request(request.method.clone(), url.clone())
                .headers(request.headers.clone());
            if let Some(auth) = authorization {
                builder = builder.header(AUTHORIZATION, auth);
            }
            let result = match tokio::time::timeout(limit, builder.send()).await {
                Ok(Ok(response)) => Ok(response),
                Ok(Err(e)) => Err((
                    e.is_connect() || e.is_timeout() || e.is_request(),
                    describe(e, budget),
                )),
                Err(_) => Err((
                    true,
                    format!(
                        "timed out: no response within {} s",
                        limit.as_secs_f64().ceil() as u64
                    ),
                )),
            };
            let retry = match &result {
                Ok(r) => is_retryable(r.status()),
                Err((retryable, _)) => *retryable,
            };
            let backoff = Duration::from_millis(200 * 4u64.pow(attempt - 1));
            let out_of_budget = Instant::now() + backoff >= deadline;
            if !retry || attempt >= ATTEMPTS || out_of_budget {
                return result.map_err(|(_, reason)| unreachable(reason));
            }
            tracing::debug!(url = %url, attempt, "upstream request failed; retrying");
            tokio::time::sleep(backoff).await;
        }
    }
}

#[async_trait]
impl UpstreamTransport for UpstreamClient {
    async fn check_origin(&self, url: &Url) -> Result<(), HopDenied> {
        self.hops.check(url).await
    }

    async fn send(
        &self,
        request: &UpstreamRequest,
        source: &dyn CredentialSource,
    ) -> Result<UpstreamResponse, UpstreamError> {
        let mut request = request.clone();
        request.deadline = Some(Instant::now() + request.budget.total);
        let response = self.send_authenticated(&request, source).await?;
        Ok(into_response(response, request.budget.idle))
    }
}

/// The client library's answer in entrepot's terms. A body that pauses for
/// longer than `idle` fails: the fill it feeds aborts, and so does the
/// client's transfer, instead of hanging with the upstream.
fn into_response(response: reqwest::Response, idle: Duration) -> UpstreamResponse {
    let status = response.status();
    let url = response.url().clone();
    let headers = response.headers().clone();
    let chunks = response
        .bytes_stream()
        .map_err(|e| {
            BodyError::new(if e.is_timeout() {
                "timed out".to_owned()
            } else {
                // Without the URL: its query is not for error messages.
                e.without_url().to_string()
            })
        })
        .boxed();
    let body = futures::stream::unfold(Some(chunks), move |state| async move {
        let mut chunks = state?;
        match tokio::time::timeout(idle, chunks.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(chunks))),
            Ok(Some(Err(e))) => Some((Err(e), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(BodyError::new(format!(
                    "the transfer stalled: no data for {} s",
                    idle.as_secs()
                ))),
                None,
            )),
        }
    })
    .boxed();
    UpstreamResponse::new(status, headers, url, body)
}
