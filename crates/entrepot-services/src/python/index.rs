//! The simple repository API's pages: one model, read from PEP 691 JSON or
//! PEP 503 HTML, written as either.

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::dist::{normalize, version_of};

/// `application/vnd.pypi.simple.v1+json`.
pub const JSON_V1: &str = "application/vnd.pypi.simple.v1+json";
/// `application/vnd.pypi.simple.v1+html`.
pub const HTML_V1: &str = "application/vnd.pypi.simple.v1+html";
/// Plain `text/html` (PEP 503).
pub const TEXT_HTML: &str = "text/html";
/// The API version entrepot speaks (PEP 700 fields).
pub const API_VERSION: &str = "1.1";
/// The version of a project page some of whose file sizes are unknown (PEP 700
/// makes `size` mandatory in 1.1).
pub const API_VERSION_WITHOUT_SIZES: &str = "1.0";

impl ProjectPage {
    /// The API version this page can claim.
    pub fn api_version(&self) -> &'static str {
        if self.files.iter().all(|f| f.size.is_some()) {
            API_VERSION
        } else {
            API_VERSION_WITHOUT_SIZES
        }
    }
}

/// A file on a project page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexFile {
    /// The file name.
    pub filename: String,
    /// Its URL (absolute upstream URL when read, entrepot's own when served).
    pub url: String,
    /// Hashes by algorithm, lower-case hex.
    pub hashes: BTreeMap<String, String>,
    /// `Requires-Python`.
    pub requires_python: Option<String>,
    /// PEP 592: `Some(reason)` when yanked (reason may be empty).
    pub yanked: Option<String>,
    /// PEP 658/714: the metadata file exists, with these hashes (possibly none).
    pub core_metadata: Option<BTreeMap<String, String>>,
    /// PEP 700 size.
    pub size: Option<u64>,
    /// PEP 700 upload time, typed: an upstream's value that is not an
    /// RFC 3339 timestamp is dropped rather than passed on (a minimum
    /// release age must never compare against a string it cannot read).
    pub upload_time: Option<OffsetDateTime>,
}

/// A project page.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProjectPage {
    /// Normalised project name.
    pub name: String,
    /// Files.
    pub files: Vec<IndexFile>,
    /// PEP 700 versions.
    pub versions: Vec<String>,
    /// Served from the cache because the upstream failed.
    pub stale: bool,
}

/// Files one project page may list, unless configured otherwise
/// (`python_max_page_files`). PyPI's largest project pages list tens of
/// thousands of files; the cap bounds the memory and CPU one page can take.
pub const DEFAULT_MAX_PAGE_FILES: usize = 500_000;

/// Projects the project list may name (PyPI names about 600,000).
pub const MAX_PROJECTS: usize = 5_000_000;

/// Why an upstream page could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    /// Not JSON or HTML that entrepot can read.
    #[error("the upstream index page is unreadable: {0}")]
    Unreadable(String),
    /// More entries than the limit.
    #[error("the upstream index page lists more than {limit} {what}, entrepot's limit per page{setting}")]
    TooLarge {
        /// The limit.
        limit: usize,
        /// `files` or `projects`.
        what: &'static str,
        /// Which setting raises it, if one does (`" (python_max_page_files)"`).
        setting: &'static str,
    },
}

fn unreadable(e: impl std::fmt::Display) -> PageError {
    PageError::Unreadable(e.to_string())
}

fn is_json(content_type: &str) -> bool {
    let ct = content_type.split(';').next().unwrap_or("").trim();
    ct.eq_ignore_ascii_case(JSON_V1) || ct.eq_ignore_ascii_case("application/json")
}

fn hashes_of(value: &Value) -> BTreeMap<String, String> {
    value
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| {
                    v.as_str()
                        .map(|v| (k.to_ascii_lowercase(), v.to_ascii_lowercase()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `true`, `false`, or a hash object (PEP 691 `core-metadata`).
fn metadata_of(value: Option<&Value>) -> Option<BTreeMap<String, String>> {
    match value? {
        Value::Bool(true) => Some(BTreeMap::new()),
        v @ Value::Object(_) => Some(hashes_of(v)),
        _ => None,
    }
}

/// `name=hex` (PEP 658 attribute value), or `true`.
fn metadata_attr(value: &str) -> Option<BTreeMap<String, String>> {
    if value.eq_ignore_ascii_case("false") {
        return None;
    }
    Some(
        value
            .split_once('=')
            .map(|(k, v)| {
                BTreeMap::from([(k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase())])
            })
            .unwrap_or_default(),
    )
}

/// Resolve `href` against the page URL; split off `#algo=hex`.
fn resolve(base: &url::Url, href: &str) -> Option<(String, BTreeMap<String, String>)> {
    let mut url = base.join(href).ok()?;
    let mut hashes = BTreeMap::new();
    if let Some(fragment) = url.fragment() {
        if let Some((algo, hex)) = fragment.split_once('=') {
            hashes.insert(algo.to_ascii_lowercase(), hex.to_ascii_lowercase());
        }
    }
    url.set_fragment(None);
    Some((url.into(), hashes))
}

/// Decode the HTML character references attribute values and text may hold.
pub fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let entity = &rest[1..e];
            let c = match entity {
                "lt" => Some('<'),
                "gt" => Some('>'),
                "amp" => Some('&'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                _ => entity.strip_prefix('#').and_then(|n| {
                    let code = match n.strip_prefix(['x', 'X']) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => n.parse().ok(),
                    };
                    code.and_then(char::from_u32)
                }),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Escape text for an HTML attribute value or element content.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An anchor: the attributes entrepot reads (decoded; an attribute without
/// a value is `""`; the last of a repeated one counts) and its text.
#[derive(Default)]
struct Anchor {
    href: Option<String>,
    requires_python: Option<String>,
    yanked: Option<String>,
    core_metadata: Option<String>,
    dist_info_metadata: Option<String>,
    text: String,
}

/// The anchors of a page, with their attributes when `with_attributes`;
/// `too_many` once there are more than `limit`. Only the attributes read are
/// decoded: a page may hold 300,000 anchors.
fn anchors(
    html: &str,
    limit: usize,
    too_many: PageError,
    with_attributes: bool,
) -> Result<Vec<Anchor>, PageError> {
    let dom = tl::parse(html, tl::ParserOptions::default()).map_err(unreadable)?;
    let parser = dom.parser();
    let mut out = Vec::new();
    for node in dom.nodes() {
        let Some(tag) = node.as_tag() else { continue };
        if !tag.name().as_bytes().eq_ignore_ascii_case(b"a") {
            continue;
        }
        if out.len() == limit {
            return Err(too_many);
        }
        let mut anchor = Anchor::default();
        if with_attributes {
            for (k, v) in tag.attributes().iter() {
                let slot = if k.eq_ignore_ascii_case("href") {
                    &mut anchor.href
                } else if k.eq_ignore_ascii_case("data-requires-python") {
                    &mut anchor.requires_python
                } else if k.eq_ignore_ascii_case("data-yanked") {
                    &mut anchor.yanked
                } else if k.eq_ignore_ascii_case("data-core-metadata") {
                    &mut anchor.core_metadata
                } else if k.eq_ignore_ascii_case("data-dist-info-metadata") {
                    &mut anchor.dist_info_metadata
                } else {
                    continue;
                };
                *slot = Some(v.map(|v| unescape(&v)).unwrap_or_default());
            }
        }
        anchor.text = unescape(tag.inner_text(parser).trim());
        out.push(anchor);
    }
    Ok(out)
}

/// The page as text; invalid UTF-8 replaced (checked first: the common,
/// valid page is borrowed as it is).
fn text_of(content: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(content) {
        Ok(text) => text.into(),
        Err(_) => String::from_utf8_lossy(content),
    }
}

/// The form an upstream page was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageSource {
    /// PEP 691 JSON.
    Json,
    /// PEP 503 HTML.
    Html,
}

impl PageSource {
    /// `json` or `html`.
    pub fn as_str(self) -> &'static str {
        match self {
            PageSource::Json => "json",
            PageSource::Html => "html",
        }
    }
}

/// What an upstream project page says of itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageMeta {
    /// `meta.api-version` (JSON) or the `pypi:repository-version` meta tag
    /// (HTML, PEP 629), if the page gives one.
    pub api_version: Option<String>,
    /// The form it was read from.
    pub source: PageSource,
}

/// The `content` of PEP 629's `<meta name="pypi:repository-version">`, found
/// by a scan of the head of the page (it comes before any anchor).
fn html_repository_version(html: &str) -> Option<String> {
    let at = html.find("pypi:repository-version")?;
    let start = html[..at].rfind('<')?;
    let end = at + html[at..].find('>')?;
    let tag = &html[start..end];
    let lower = tag.to_ascii_lowercase();
    let i = lower.find("content=")? + "content=".len();
    let value = tag[i..].trim_start();
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
    let value = match quote {
        Some(q) => value[1..].split(q).next()?,
        None => value.split([' ', '/']).next()?,
    };
    Some(unescape(value.trim()))
}

/// Read a project page the upstream sent as JSON or HTML; `page_url` resolves
/// relative links. Linear in the page's size; refuses a page of more than
/// `max_files` files. CPU-heavy for large pages: call it off the async runtime.
pub fn parse_project_page(
    content_type: &str,
    content: &[u8],
    page_url: &url::Url,
    name: &str,
    max_files: usize,
) -> Result<ProjectPage, PageError> {
    parse_project_page_with_meta(content_type, content, page_url, name, max_files)
        .map(|(page, _)| page)
}

/// [`parse_project_page`], and what the page says of itself.
pub fn parse_project_page_with_meta(
    content_type: &str,
    content: &[u8],
    page_url: &url::Url,
    name: &str,
    max_files: usize,
) -> Result<(ProjectPage, PageMeta), PageError> {
    let too_many = PageError::TooLarge {
        limit: max_files,
        what: "files",
        setting: " (python_max_page_files)",
    };
    let mut page = ProjectPage {
        name: normalize(name),
        ..Default::default()
    };
    let meta;
    if is_json(content_type) {
        let v: Value = serde_json::from_slice(content).map_err(unreadable)?;
        meta = PageMeta {
            api_version: v["meta"]["api-version"].as_str().map(str::to_owned),
            source: PageSource::Json,
        };
        let files = v["files"].as_array().map_or(&[][..], Vec::as_slice);
        if files.len() > max_files {
            return Err(too_many);
        }
        for f in files {
            let (Some(filename), Some(href)) = (f["filename"].as_str(), f["url"].as_str()) else {
                continue;
            };
            let Some((url, _)) = resolve(page_url, href) else {
                continue;
            };
            let yanked = match &f["yanked"] {
                Value::Bool(true) => Some(String::new()),
                Value::String(reason) => Some(reason.clone()),
                _ => None,
            };
            page.files.push(IndexFile {
                filename: filename.to_owned(),
                url,
                hashes: hashes_of(&f["hashes"]),
                requires_python: f["requires-python"].as_str().map(str::to_owned),
                yanked,
                core_metadata: metadata_of(
                    f.get("core-metadata")
                        .or_else(|| f.get("dist-info-metadata"))
                        .or_else(|| f.get("data-dist-info-metadata")),
                ),
                size: f["size"].as_u64(),
                upload_time: f["upload-time"].as_str().and_then(parse_upload_time),
            });
        }
        page.versions = v["versions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
    } else {
        let html = text_of(content);
        meta = PageMeta {
            api_version: html_repository_version(&html),
            source: PageSource::Html,
        };
        for anchor in anchors(&html, max_files, too_many, true)? {
            let Some(href) = &anchor.href else {
                continue;
            };
            let Some((url, hashes)) = resolve(page_url, href) else {
                continue;
            };
            let filename = if anchor.text.is_empty() {
                url.rsplit('/').next().unwrap_or_default().to_owned()
            } else {
                anchor.text
            };
            page.files.push(IndexFile {
                filename,
                url,
                hashes,
                requires_python: anchor.requires_python,
                yanked: anchor.yanked,
                core_metadata: anchor
                    .core_metadata
                    .or(anchor.dist_info_metadata)
                    .and_then(|v| metadata_attr(&v)),
                size: None,
                upload_time: None,
            });
        }
    }
    if page.versions.is_empty() {
        page.versions = versions_of(&page.files);
    }
    Ok((page, meta))
}

/// Versions named by the files' names, in first-seen order. Linear: a page
/// may list hundreds of thousands of files.
pub fn versions_of(files: &[IndexFile]) -> Vec<String> {
    // Borrowed until known to be new: most files repeat a version.
    let mut seen = HashSet::with_capacity(files.len());
    let mut out = Vec::new();
    for version in files.iter().filter_map(|f| version_of(&f.filename)) {
        if seen.insert(version) {
            out.push(version.to_owned());
        }
    }
    out
}

/// The distinct items, in first-seen order, in linear time.
pub fn first_seen(items: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for item in items {
        if !seen.contains(item.as_str()) {
            seen.insert(item.clone());
            out.push(item);
        }
    }
    out
}

/// Read the project list the upstream sent as JSON or HTML: names as written.
/// CPU-heavy for PyPI's list: call it off the async runtime.
pub fn parse_project_list(content_type: &str, content: &[u8]) -> Result<Vec<String>, PageError> {
    let too_many = PageError::TooLarge {
        limit: MAX_PROJECTS,
        what: "projects",
        setting: "",
    };
    if is_json(content_type) {
        let v: Value = serde_json::from_slice(content).map_err(unreadable)?;
        let projects = v["projects"].as_array().map_or(&[][..], Vec::as_slice);
        if projects.len() > MAX_PROJECTS {
            return Err(too_many);
        }
        Ok(projects
            .iter()
            .filter_map(|p| p["name"].as_str().map(str::to_owned))
            .collect())
    } else {
        let html = text_of(content);
        Ok(anchors(&html, MAX_PROJECTS, too_many, false)?
            .into_iter()
            .map(|a| a.text)
            .filter(|t| !t.is_empty())
            .collect())
    }
}

/// The form a page is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFormat {
    /// PEP 691 JSON.
    Json,
    /// PEP 503 HTML, labelled `application/vnd.pypi.simple.v1+html`.
    HtmlV1,
    /// PEP 503 HTML, labelled `text/html`.
    TextHtml,
}

impl PageFormat {
    /// The Content-Type of a page in this form.
    pub fn content_type(self) -> &'static str {
        match self {
            PageFormat::Json => JSON_V1,
            PageFormat::HtmlV1 => HTML_V1,
            PageFormat::TextHtml => "text/html; charset=utf-8",
        }
    }
}

/// A project page in PEP 691 JSON.
#[derive(serde::Serialize)]
struct JsonPage<'a> {
    meta: JsonMeta,
    name: &'a str,
    versions: &'a [String],
    files: Vec<JsonFile<'a>>,
}

#[derive(serde::Serialize)]
struct JsonMeta {
    #[serde(rename = "api-version")]
    api_version: &'static str,
}

#[derive(serde::Serialize)]
struct JsonFile<'a> {
    filename: &'a str,
    url: &'a str,
    hashes: &'a BTreeMap<String, String>,
    #[serde(rename = "requires-python", skip_serializing_if = "Option::is_none")]
    requires_python: Option<&'a str>,
    #[serde(rename = "core-metadata", skip_serializing_if = "Option::is_none")]
    core_metadata: Option<JsonMetadata<'a>>,
    #[serde(rename = "dist-info-metadata", skip_serializing_if = "Option::is_none")]
    dist_info_metadata: Option<JsonMetadata<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    yanked: Option<JsonYanked<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    #[serde(rename = "upload-time", skip_serializing_if = "Option::is_none")]
    upload_time: Option<String>,
}

/// `true`, or the metadata file's hashes.
#[derive(serde::Serialize, Clone)]
#[serde(untagged)]
enum JsonMetadata<'a> {
    Present(bool),
    Hashes(&'a BTreeMap<String, String>),
}

/// `true`, or the reason.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum JsonYanked<'a> {
    Yanked(bool),
    Reason(&'a str),
}

/// A project page ready to serve, rendered once per form it is asked in.
#[derive(Debug, Default)]
pub struct ServedPage {
    page: ProjectPage,
    rendered: [OnceLock<(Bytes, String)>; 3],
}

impl ServedPage {
    /// Serve `page`.
    pub fn new(page: ProjectPage) -> Self {
        Self {
            page,
            rendered: Default::default(),
        }
    }

    /// The page.
    pub fn page(&self) -> &ProjectPage {
        &self.page
    }

    /// The page written in `format`.
    pub fn render(&self, format: PageFormat) -> Bytes {
        self.rendered(format).0.clone()
    }

    /// The entity tag of the page written in `format` (quoted, as sent in
    /// `ETag`): the sha256 of those bytes, so it changes exactly when what a
    /// client would read changes, and differs between the forms.
    pub fn etag(&self, format: PageFormat) -> String {
        self.rendered(format).1.clone()
    }

    fn rendered(&self, format: PageFormat) -> &(Bytes, String) {
        let slot = match format {
            PageFormat::Json => 0,
            PageFormat::HtmlV1 => 1,
            PageFormat::TextHtml => 2,
        };
        self.rendered[slot].get_or_init(|| {
            let bytes = Bytes::from(render_project_page(&self.page, format));
            let etag = entity_tag(&bytes);
            (bytes, etag)
        })
    }
}

/// A PEP 700 `upload-time` (ISO 8601 as RFC 3339 profiles it), or `None`.
pub fn parse_upload_time(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok()
}

/// An upload time as PEP 700 writes it: UTC, `Z`, fractions only when there
/// are some.
pub fn format_upload_time(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// The quoted entity tag of a rendered page: its sha256.
pub fn entity_tag(body: &[u8]) -> String {
    format!("\"{}\"", entrepot_domain::Digest::of(body).hex())
}

/// Write a project page.
pub fn render_project_page(page: &ProjectPage, format: PageFormat) -> Vec<u8> {
    match format {
        PageFormat::Json => {
            let files = page
                .files
                .iter()
                .map(|f| {
                    let metadata = f.core_metadata.as_ref().map(|m| {
                        if m.is_empty() {
                            JsonMetadata::Present(true)
                        } else {
                            JsonMetadata::Hashes(m)
                        }
                    });
                    JsonFile {
                        filename: &f.filename,
                        url: &f.url,
                        hashes: &f.hashes,
                        requires_python: f.requires_python.as_deref(),
                        core_metadata: metadata.clone(),
                        dist_info_metadata: metadata,
                        yanked: f.yanked.as_deref().map(|reason| {
                            if reason.is_empty() {
                                JsonYanked::Yanked(true)
                            } else {
                                JsonYanked::Reason(reason)
                            }
                        }),
                        size: f.size,
                        upload_time: f.upload_time.map(format_upload_time),
                    }
                })
                .collect();
            let body = JsonPage {
                meta: JsonMeta {
                    api_version: page.api_version(),
                },
                name: &page.name,
                versions: &page.versions,
                files,
            };
            // Written from borrowed fields, not built as a `Value`: a page of
            // 300,000 files is one pass and no copy of its strings.
            serde_json::to_vec(&body).unwrap_or_default()
        }
        PageFormat::HtmlV1 | PageFormat::TextHtml => {
            let name = escape(&page.name);
            let version = page.api_version();
            let mut html = format!(
                "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"{version}\">\n    <title>Links for {name}</title>\n  </head>\n  <body>\n    <h1>Links for {name}</h1>\n"
            );
            for f in &page.files {
                let mut href = f.url.clone();
                if let Some(hex) = f.hashes.get("sha256") {
                    href.push_str(&format!("#sha256={hex}"));
                }
                html.push_str(&format!("    <a href=\"{}\"", escape(&href)));
                if let Some(rp) = &f.requires_python {
                    html.push_str(&format!(" data-requires-python=\"{}\"", escape(rp)));
                }
                if let Some(meta) = &f.core_metadata {
                    let value = meta
                        .get("sha256")
                        .map(|h| format!("sha256={h}"))
                        .or_else(|| meta.iter().next().map(|(k, v)| format!("{k}={v}")))
                        .unwrap_or_else(|| "true".into());
                    let value = escape(&value);
                    html.push_str(&format!(
                        " data-core-metadata=\"{value}\" data-dist-info-metadata=\"{value}\""
                    ));
                }
                if let Some(reason) = &f.yanked {
                    html.push_str(&format!(" data-yanked=\"{}\"", escape(reason)));
                }
                html.push_str(&format!(">{}</a><br/>\n", escape(&f.filename)));
            }
            html.push_str("  </body>\n</html>\n");
            html.into_bytes()
        }
    }
}

/// Write the project list; `href` gives each project's page link.
pub fn render_project_list(
    names: &[String],
    format: PageFormat,
    href: impl Fn(&str) -> String,
) -> Vec<u8> {
    match format {
        PageFormat::Json => {
            #[derive(serde::Serialize)]
            struct Project<'a> {
                name: &'a str,
            }
            #[derive(serde::Serialize)]
            struct List<'a> {
                meta: JsonMeta,
                projects: Vec<Project<'a>>,
            }
            // Borrowed, not built as a `Value`: PyPI's list has 600,000 names.
            serde_json::to_vec(&List {
                meta: JsonMeta {
                    api_version: API_VERSION,
                },
                projects: names.iter().map(|n| Project { name: n }).collect(),
            })
            .unwrap_or_default()
        }
        PageFormat::HtmlV1 | PageFormat::TextHtml => {
            let mut html = format!(
                "<!DOCTYPE html>\n<html>\n  <head>\n    <meta name=\"pypi:repository-version\" content=\"{API_VERSION}\">\n    <title>Simple index</title>\n  </head>\n  <body>\n"
            );
            for n in names {
                html.push_str(&format!(
                    "    <a href=\"{}\">{}</a><br/>\n",
                    escape(&href(n)),
                    escape(n)
                ));
            }
            html.push_str("  </body>\n</html>\n");
            html.into_bytes()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HTML: &str = r#"<!DOCTYPE html><html><body>
<a href="../../packages/tiny_pkg-1.0-py3-none-any.whl#sha256=AABB" data-requires-python="&gt;=3.8" data-dist-info-metadata="sha256=ccdd">tiny_pkg-1.0-py3-none-any.whl</a><br/>
<a href="https://files.example.org/tiny-pkg-0.9.tar.gz#sha256=eeff" data-yanked="broken &amp; bad">tiny-pkg-0.9.tar.gz</a>
</body></html>"#;

    #[test]
    fn reads_html_pages() {
        let base = url::Url::parse("http://127.0.0.1:1/simple/tiny-pkg/").unwrap();
        let page = parse_project_page("text/html", HTML.as_bytes(), &base, "Tiny_Pkg", 10).unwrap();
        assert_eq!(page.name, "tiny-pkg");
        assert_eq!(page.files.len(), 2);
        let w = &page.files[0];
        assert_eq!(
            w.url,
            "http://127.0.0.1:1/packages/tiny_pkg-1.0-py3-none-any.whl"
        );
        assert_eq!(w.hashes["sha256"], "aabb");
        assert_eq!(w.requires_python.as_deref(), Some(">=3.8"));
        assert_eq!(w.core_metadata.as_ref().unwrap()["sha256"], "ccdd");
        assert_eq!(page.files[1].yanked.as_deref(), Some("broken & bad"));
        assert_eq!(page.versions, vec!["1.0".to_owned(), "0.9".to_owned()]);
    }

    #[test]
    fn json_and_html_round_trip() {
        let base = url::Url::parse("http://127.0.0.1:1/simple/tiny-pkg/").unwrap();
        let page = parse_project_page("text/html", HTML.as_bytes(), &base, "tiny-pkg", 10).unwrap();
        for format in [PageFormat::Json, PageFormat::HtmlV1] {
            let bytes = render_project_page(&page, format);
            let again =
                parse_project_page(format.content_type(), &bytes, &base, "tiny-pkg", 10).unwrap();
            assert_eq!(again, page, "{format:?}");
        }
        let html = String::from_utf8(render_project_page(&page, PageFormat::TextHtml)).unwrap();
        assert!(html.contains("data-requires-python=\"&gt;=3.8\""));
        assert!(html.contains("pypi:repository-version"));
    }

    #[test]
    fn reads_project_lists() {
        let names =
            parse_project_list("text/html", b"<a href='a/'>A_b</a><a href='c/'>c</a>").unwrap();
        assert_eq!(names, vec!["A_b".to_owned(), "c".to_owned()]);
        let names = parse_project_list(JSON_V1, br#"{"projects":[{"name":"x"}]}"#).unwrap();
        assert_eq!(names, vec!["x".to_owned()]);
    }

    #[test]
    fn pages_over_the_file_limit_are_refused() {
        let base = url::Url::parse("http://127.0.0.1:1/simple/tiny-pkg/").unwrap();
        let err = parse_project_page("text/html", HTML.as_bytes(), &base, "tiny-pkg", 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than 1 files"), "{err}");
        assert!(err.contains("python_max_page_files"), "{err}");
        assert!(parse_project_page("text/html", HTML.as_bytes(), &base, "tiny-pkg", 2).is_ok());
        let json = br#"{"files":[{"filename":"a-1.0.tar.gz","url":"a-1.0.tar.gz"},{"filename":"a-2.0.tar.gz","url":"a-2.0.tar.gz"}]}"#;
        assert!(parse_project_page(JSON_V1, json, &base, "a", 1).is_err());
        assert_eq!(
            parse_project_page(JSON_V1, json, &base, "a", 2)
                .unwrap()
                .versions,
            vec!["1.0".to_owned(), "2.0".to_owned()]
        );
    }

    #[test]
    fn versions_are_deduplicated_in_first_seen_order() {
        let file = |name: &str| IndexFile {
            filename: name.to_owned(),
            ..Default::default()
        };
        let files = vec![
            file("a-2.0-py3-none-any.whl"),
            file("a-1.0.tar.gz"),
            file("a-2.0.tar.gz"),
            file("not a distribution"),
            file("a-1.0-py3-none-any.whl"),
        ];
        assert_eq!(
            versions_of(&files),
            vec!["2.0".to_owned(), "1.0".to_owned()]
        );
        assert_eq!(
            first_seen(["b", "a", "b", "c", "a"].map(str::to_owned)),
            vec!["b".to_owned(), "a".to_owned(), "c".to_owned()]
        );
    }

    #[test]
    fn large_pages_are_read_in_linear_time() {
        // 200,000 distinct versions: quadratic deduplication would make
        // 2 * 10^10 comparisons here; linear work finishes at once. Checked
        // by the result, not by a clock.
        let files: Vec<IndexFile> = (0..200_000)
            .map(|i| IndexFile {
                filename: format!("big-{i}.0.tar.gz"),
                ..Default::default()
            })
            .collect();
        let versions = versions_of(&files);
        assert_eq!(versions.len(), 200_000);
        assert_eq!(versions[199_999], "199999.0");
    }

    #[test]
    fn anchor_attributes_are_read_in_any_case_the_last_of_a_repeated_one_counting() {
        let base = url::Url::parse("http://127.0.0.1:1/simple/a/").unwrap();
        let html = r#"<A HREF="a-1.0.tar.gz#SHA256=AB" Data-Requires-Python="&gt;=3" data-core-metadata="false" data-dist-info-metadata="sha256=cd" data-yanked>a-1.0.tar.gz</A>
<a href="a-2.0.tar.gz#sha256=01" data-requires-python="&lt;2" data-requires-python="&gt;=3.9" data-dist-info-metadata="sha256=EF">a-2.0.tar.gz</a>
<a name="no-href">a-3.0.tar.gz</a>"#;
        let page = parse_project_page("text/html", html.as_bytes(), &base, "a", 10).unwrap();
        assert_eq!(page.files.len(), 2);
        let (one, two) = (&page.files[0], &page.files[1]);
        assert_eq!(one.url, "http://127.0.0.1:1/simple/a/a-1.0.tar.gz");
        assert_eq!(one.hashes["sha256"], "ab");
        assert_eq!(one.requires_python.as_deref(), Some(">=3"));
        assert_eq!(one.yanked.as_deref(), Some(""));
        // data-core-metadata="false" wins over the older attribute.
        assert_eq!(one.core_metadata, None);
        assert_eq!(two.requires_python.as_deref(), Some(">=3.9"));
        assert_eq!(two.core_metadata.as_ref().unwrap()["sha256"], "ef");
        // Invalid UTF-8 is read as replacement characters, not refused.
        let mut bytes = html.as_bytes().to_vec();
        bytes.extend_from_slice(b"<a href=\"a-4.0.tar.gz#sha256=02\">a-4.0\xff.tar.gz</a>");
        let page = parse_project_page("text/html", &bytes, &base, "a", 10).unwrap();
        assert_eq!(page.files[2].filename, "a-4.0\u{fffd}.tar.gz");
    }

    #[test]
    fn json_fields_survive_into_both_forms() {
        let base = url::Url::parse("http://127.0.0.1:1/simple/a/").unwrap();
        let json = br#"{"meta":{"api-version":"1.1"},"name":"a","versions":["1.0","2.0"],"files":[
{"filename":"a-1.0.tar.gz","url":"a-1.0.tar.gz","hashes":{"sha256":"AB"},"requires-python":">=3.9","yanked":"bad build","core-metadata":{"sha256":"cd"},"size":12,"upload-time":"2026-01-02T03:04:05.123456Z"},
{"filename":"a-2.0.tar.gz","url":"a-2.0.tar.gz","hashes":{"sha256":"ef"},"size":3,"upload-time":"not a time"}]}"#;
        let page = parse_project_page(JSON_V1, json, &base, "a", 10).unwrap();
        let one = &page.files[0];
        assert_eq!(
            one.upload_time.map(|t| t.unix_timestamp()),
            Some(1_767_323_045)
        );
        assert_eq!(page.files[1].upload_time, None);
        assert_eq!(page.versions, vec!["1.0".to_owned(), "2.0".to_owned()]);
        let out: Value =
            serde_json::from_slice(&render_project_page(&page, PageFormat::Json)).unwrap();
        let f = &out["files"][0];
        assert_eq!(f["upload-time"], "2026-01-02T03:04:05.123456Z");
        assert_eq!(f["requires-python"], ">=3.9");
        assert_eq!(f["yanked"], "bad build");
        assert_eq!(f["core-metadata"]["sha256"], "cd");
        assert_eq!(f["dist-info-metadata"]["sha256"], "cd");
        assert_eq!(f["size"], 12);
        assert_eq!(out["meta"]["api-version"], "1.1");
        let html = String::from_utf8(render_project_page(&page, PageFormat::HtmlV1)).unwrap();
        assert!(
            html.contains(r#"data-requires-python="&gt;=3.9""#),
            "{html}"
        );
        assert!(html.contains(r#"data-yanked="bad build""#), "{html}");
        assert!(html.contains(r#"data-core-metadata="sha256=cd""#), "{html}");
    }

    #[test]
    fn served_pages_tag_each_form_by_its_bytes() {
        let page = ServedPage::new(ProjectPage {
            name: "a".into(),
            ..Default::default()
        });
        let (json, html) = (page.etag(PageFormat::Json), page.etag(PageFormat::HtmlV1));
        assert_ne!(json, html);
        assert_eq!(json, entity_tag(&page.render(PageFormat::Json)));
        assert!(json.starts_with('"') && json.ends_with('"'));
    }

    #[test]
    fn the_page_meta_is_read_from_either_form() {
        let base = url::Url::parse("http://127.0.0.1:1/simple/a/").unwrap();
        let html = "<html><head><META NAME=\"pypi:repository-version\" content='1.0'></head><body><a href=\"a-1.0.tar.gz\">a-1.0.tar.gz</a></body></html>";
        let (_, meta) =
            parse_project_page_with_meta("text/html", html.as_bytes(), &base, "a", 10).unwrap();
        assert_eq!(meta.api_version.as_deref(), Some("1.0"));
        assert_eq!(meta.source, PageSource::Html);
        let (_, meta) =
            parse_project_page_with_meta("text/html", HTML.as_bytes(), &base, "a", 10).unwrap();
        assert_eq!(meta.api_version, None);
        let rendered = render_project_page(
            &parse_project_page("text/html", HTML.as_bytes(), &base, "a", 10).unwrap(),
            PageFormat::HtmlV1,
        );
        let (_, meta) = parse_project_page_with_meta(HTML_V1, &rendered, &base, "a", 10).unwrap();
        assert_eq!(meta.api_version.as_deref(), Some("1.0"));
        let (_, meta) = parse_project_page_with_meta(
            JSON_V1,
            br#"{"meta":{"api-version":"1.3"}}"#,
            &base,
            "a",
            10,
        )
        .unwrap();
        assert_eq!(meta.api_version.as_deref(), Some("1.3"));
        assert_eq!(meta.source, PageSource::Json);
    }

    #[test]
    fn unescapes() {
        assert_eq!(unescape("&lt;3&#44;&#x3e;=1 & x"), "<3,>=1 & x");
    }
}
