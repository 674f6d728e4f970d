//! How Python content is named and checked, for the remote cache engine.
//!
//! Index pages are the mutable documents: a page is kept only if it parses
//! (as PEP 691 JSON or PEP 503 HTML). Files are immutable, named by the hash
//! the index page gives for them.

use std::sync::Arc;

use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::upstream::{python_upstream, PythonUpstream, UpstreamSpecError};
use entrepot_domain::{Algorithm, ContentDigest};
use entrepot_upstream::http::header::ACCEPT;
use entrepot_upstream::{redact, UpstreamRequest};
use url::Url;

use super::dist::normalize;
use super::index::{self, PageMeta, ProjectPage};
use crate::metrics::Metrics;
use crate::remote::{ContentSource, FetchedDocument, RemoteFormat, Target, UpstreamFailure};

/// What entrepot asks the upstream for: JSON first, HTML accepted.
const UPSTREAM_ACCEPT: &str =
    "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01";

/// An upstream page read when it was fetched, so it is parsed once per fetch.
pub enum Parsed {
    /// The project list, names normalised.
    List(Arc<Vec<String>>),
    /// A project's page, and what it says of itself.
    Project(ProjectPage, PageMeta),
}

/// An index page fetched from the upstream that parses.
pub struct FetchedPage {
    /// Its Content-Type.
    pub content_type: String,
    /// Its exact bytes.
    pub content: Vec<u8>,
    /// What it parsed to.
    pub parsed: Parsed,
}

/// A file an index page links: where it is and the sha256 the page gives.
pub struct IndexedFile {
    /// The file's URL at the upstream (or wherever the page points).
    pub url: String,
    /// The lower-case hex sha256 the page gives.
    pub sha256: String,
    /// The file name (`.metadata` for a PEP 658 metadata file).
    pub filename: String,
}

/// The Python naming and checking rules.
pub struct PythonFormat {
    metrics: Arc<Metrics>,
    max_page_files: usize,
}

impl PythonFormat {
    /// Rules that refuse pages of more than `max_page_files` files.
    pub fn new(metrics: Arc<Metrics>, max_page_files: usize) -> Self {
        Self {
            metrics,
            max_page_files,
        }
    }

    /// Refuse upstream project pages listing more than `max` files.
    pub fn set_max_page_files(&mut self, max: usize) {
        self.max_page_files = max;
    }

    /// Parse a page (`name` normalised; `""` is the project list) on the
    /// blocking pool: a large page is seconds of CPU that must not stall the
    /// async runtime. The content comes back.
    pub async fn parse(
        &self,
        content_type: String,
        content: Vec<u8>,
        url: Url,
        name: String,
    ) -> (Vec<u8>, Result<Parsed, index::PageError>) {
        let max_files = self.max_page_files;
        self.metrics.index_page_parse();
        let parsed = tokio::task::spawn_blocking(move || {
            let parsed = if name.is_empty() {
                index::parse_project_list(&content_type, &content).map(|names| {
                    Parsed::List(Arc::new(names.iter().map(|n| normalize(n)).collect()))
                })
            } else {
                index::parse_project_page_with_meta(&content_type, &content, &url, &name, max_files)
                    .map(|(page, meta)| Parsed::Project(page, meta))
            };
            (content, parsed)
        })
        .await;
        match parsed {
            Ok(done) => done,
            Err(e) => (
                Vec::new(),
                Err(index::PageError::Unreadable(format!(
                    "the parser failed: {e}"
                ))),
            ),
        }
    }
}

/// The URL of an index page of `upstream` (`name` as for [`PythonFormat::parse`]).
pub fn page_url(target: &Target<PythonUpstream>, name: &str) -> Result<Url, UpstreamFailure> {
    let misconfigured = || UpstreamFailure::Misconfigured {
        repository: target.repository.clone(),
        cause: UpstreamSpecError::UnknownPython(target.upstream.index_url().to_string()),
    };
    if name.is_empty() {
        return Ok(target.origin.clone());
    }
    target
        .origin
        .join(&format!("{name}/"))
        .map_err(|_| misconfigured())
}

impl RemoteFormat for PythonFormat {
    type Upstream = PythonUpstream;
    /// A normalised project name; `""` is the project list.
    type Document = String;
    type Valid = FetchedPage;
    type Content = IndexedFile;

    /// PyPI's full project list is ~30 MiB.
    const MAX_DOCUMENT_BYTES: usize = 128 * 1024 * 1024;

    fn upstream(&self, config: &RemoteConfig) -> Result<PythonUpstream, UpstreamSpecError> {
        python_upstream(&config.upstream, config.allow_insecure_upstream)
    }

    fn origin<'u>(&self, upstream: &'u PythonUpstream) -> &'u Url {
        upstream.index_url()
    }

    fn credential_hosts<'u>(&self, upstream: &'u PythonUpstream) -> &'u [String] {
        upstream.file_hosts()
    }

    /// A HEAD of the index: PyPI's project list is tens of megabytes.
    fn probe(&self, target: &Target<PythonUpstream>) -> Result<UpstreamRequest, UpstreamFailure> {
        Ok(UpstreamRequest::head(target.origin.clone()))
    }

    fn describe(&self, name: &String) -> String {
        if name.is_empty() {
            "the project list".into()
        } else {
            format!("project {name:?}")
        }
    }

    fn document_request(
        &self,
        target: &Target<PythonUpstream>,
        name: &String,
        _head: bool,
    ) -> Result<UpstreamRequest, UpstreamFailure> {
        Ok(UpstreamRequest::get(page_url(target, name)?).header(ACCEPT, UPSTREAM_ACCEPT))
    }

    /// Parsed now, so an unreadable page is never cached, and only once: the
    /// parsed page is what the caller serves.
    async fn validate(
        &self,
        target: &Target<PythonUpstream>,
        name: &String,
        fetched: FetchedDocument,
    ) -> Result<FetchedPage, UpstreamFailure> {
        let host = target.host();
        let url = redact::url(&fetched.url);
        let content_type = fetched.content_type.unwrap_or_else(|| "text/html".into());
        let ct = content_type.to_ascii_lowercase();
        if !(ct.contains("json") || ct.contains("html")) {
            return Err(UpstreamFailure::InvalidResponse {
                detail: format!(
                    "the upstream {host} answered with an unreadable index page for {url}: its Content-Type is neither JSON nor HTML"
                ),
                host,
            });
        }
        let (content, parsed) = self
            .parse(
                content_type.clone(),
                fetched.content,
                fetched.url,
                name.clone(),
            )
            .await;
        let parsed = parsed.map_err(|e| UpstreamFailure::InvalidResponse {
            detail: format!(
                "the upstream {host} answered with an unusable index page for {url}: {e}"
            ),
            host: host.clone(),
        })?;
        Ok(FetchedPage {
            content_type,
            content,
            parsed,
        })
    }

    fn content(
        &self,
        target: &Target<PythonUpstream>,
        file: &IndexedFile,
    ) -> Result<ContentSource, UpstreamFailure> {
        let broken = |detail| UpstreamFailure::InvalidResponse {
            host: target.host(),
            detail,
        };
        let url = Url::parse(&file.url).map_err(|e| {
            broken(format!(
                "the upstream file URL {:?} is invalid: {e}",
                redact::capped(&file.url)
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            // Not a host for the access policy to allow: a broken page.
            return Err(broken(format!(
                "the upstream page links {} with a non-http(s) URL (scheme {}); entrepot fetches files over http and https only",
                file.filename,
                url.scheme()
            )));
        }
        let digest = ContentDigest::new(Algorithm::Sha256, &file.sha256)
            .map_err(|e| broken(format!("the upstream page gives {}: {e}", file.filename)))?;
        Ok(ContentSource {
            request: UpstreamRequest::get(url),
            digest,
            what: file.filename.clone(),
        })
    }
}
