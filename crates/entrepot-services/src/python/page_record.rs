//! The stored record of a remote project page: what the upstream's page
//! says, parsed once when it is fetched and kept typed, so that serving it
//! (JSON or HTML) never parses the upstream's bytes again and both forms are
//! written from the same fields.
//!
//! A record is stored in the index page row with its own Content-Type
//! ([`RECORD_CONTENT_TYPE`]); a row of an older version holds the upstream's
//! bytes under the upstream's Content-Type, and is parsed once and rewritten
//! as a record (see `RemotePython`). Its encoding is deterministic (fields in
//! a fixed order, hashes in a sorted map), so the same upstream page gives the
//! same record bytes, and the same rendered page and `ETag`, after a restart.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::index::{
    format_upload_time, parse_upload_time, IndexFile, PageMeta, PageSource, ProjectPage,
};

/// The Content-Type of a stored record (version 1 of its encoding).
pub const RECORD_CONTENT_TYPE: &str = "application/vnd.entrepot.python-page-record.v1+json";

/// Whether a stored row holds a record (rather than an upstream's bytes).
pub fn is_record(content_type: &str) -> bool {
    content_type == RECORD_CONTENT_TYPE
}

/// Why a stored record could not be read back.
#[derive(Debug, thiserror::Error)]
#[error("the stored record of the page is unreadable: {0}")]
pub struct RecordError(String);

/// A project page as the upstream gave it: its files with absolute upstream
/// URLs, the versions, and what the page said of itself.
#[derive(Debug, Serialize, Deserialize)]
struct PageRecord {
    meta: RecordMeta,
    name: String,
    versions: Vec<String>,
    files: Vec<FileRecord>,
}

/// What the upstream's page said of itself.
#[derive(Debug, Serialize, Deserialize)]
struct RecordMeta {
    /// `meta.api-version` (JSON) or `pypi:repository-version` (HTML).
    #[serde(rename = "api-version", skip_serializing_if = "Option::is_none")]
    api_version: Option<String>,
    /// The form it was read from: `json` or `html`.
    source: String,
}

/// A file of the page, every field the simple API carries.
#[derive(Debug, Serialize, Deserialize)]
struct FileRecord {
    filename: String,
    url: String,
    hashes: BTreeMap<String, String>,
    #[serde(rename = "requires-python", skip_serializing_if = "Option::is_none")]
    requires_python: Option<String>,
    /// `Some("")` when yanked without a reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    yanked: Option<String>,
    /// PEP 658/714: present (with these hashes, possibly none) or absent.
    #[serde(rename = "core-metadata", skip_serializing_if = "Option::is_none")]
    core_metadata: Option<BTreeMap<String, String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<u64>,
    /// RFC 3339, UTC.
    #[serde(rename = "upload-time", skip_serializing_if = "Option::is_none")]
    upload_time: Option<String>,
}

/// The record of `page`, as stored. CPU-heavy for a large page: call it off
/// the async runtime.
pub fn encode(page: &ProjectPage, meta: &PageMeta) -> Vec<u8> {
    let record = PageRecord {
        meta: RecordMeta {
            api_version: meta.api_version.clone(),
            source: meta.source.as_str().to_owned(),
        },
        name: page.name.clone(),
        versions: page.versions.clone(),
        files: page
            .files
            .iter()
            .map(|f| FileRecord {
                filename: f.filename.clone(),
                url: f.url.clone(),
                hashes: f.hashes.clone(),
                requires_python: f.requires_python.clone(),
                yanked: f.yanked.clone(),
                core_metadata: f.core_metadata.clone(),
                size: f.size,
                upload_time: f.upload_time.map(format_upload_time),
            })
            .collect(),
    };
    // Plain data with string keys: serialising cannot fail.
    serde_json::to_vec(&record).unwrap_or_default()
}

/// The page a stored record holds, and what it said of itself. CPU-heavy
/// for a large page: call it off the async runtime.
pub fn decode(content: &[u8]) -> Result<(ProjectPage, PageMeta), RecordError> {
    let record: PageRecord =
        serde_json::from_slice(content).map_err(|e| RecordError(e.to_string()))?;
    let source = match record.meta.source.as_str() {
        "json" => PageSource::Json,
        "html" => PageSource::Html,
        other => return Err(RecordError(format!("unknown source {other:?}"))),
    };
    let meta = PageMeta {
        api_version: record.meta.api_version,
        source,
    };
    let page = ProjectPage {
        name: record.name,
        versions: record.versions,
        files: record
            .files
            .into_iter()
            .map(|f| IndexFile {
                filename: f.filename,
                url: f.url,
                hashes: f.hashes,
                requires_python: f.requires_python,
                yanked: f.yanked,
                core_metadata: f.core_metadata,
                size: f.size,
                upload_time: f.upload_time.as_deref().and_then(parse_upload_time),
            })
            .collect(),
        stale: false,
    };
    Ok((page, meta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::python::index::{parse_project_page_with_meta, PageFormat, ServedPage, JSON_V1};

    const JSON: &[u8] = br#"{"meta":{"api-version":"1.1"},"name":"a","versions":["1.0","2.0"],"files":[
{"filename":"a-1.0.tar.gz","url":"a-1.0.tar.gz","hashes":{"sha256":"ab","md5":"01"},"requires-python":">=3.9","yanked":"bad <build>","dist-info-metadata":{"sha256":"cd"},"size":12,"upload-time":"2026-01-02T05:04:05.123456+02:00"},
{"filename":"a-2.0-py3-none-any.whl","url":"https://files.example/a-2.0-py3-none-any.whl","hashes":{"sha256":"ef"},"yanked":true,"core-metadata":true,"upload-time":"2026-01-03T00:00:00Z"},
{"filename":"a-3.0.tar.gz","url":"a-3.0.tar.gz","hashes":{"sha256":"12"}}]}"#;

    fn parsed() -> (ProjectPage, PageMeta) {
        let base = url::Url::parse("http://127.0.0.1:1/simple/a/").unwrap();
        parse_project_page_with_meta(JSON_V1, JSON, &base, "a", 10).unwrap()
    }

    #[test]
    fn every_field_survives_the_record_and_renders_the_same_bytes() {
        let (page, meta) = parsed();
        assert_eq!(meta.api_version.as_deref(), Some("1.1"));
        let record = encode(&page, &meta);
        let (back, meta_back) = decode(&record).unwrap();
        assert_eq!(back, page);
        assert_eq!(meta_back, meta);
        // The same record again: stable bytes, stable entity tags.
        assert_eq!(encode(&back, &meta), record);
        let (a, b) = (ServedPage::new(page), ServedPage::new(back));
        for format in [PageFormat::Json, PageFormat::HtmlV1, PageFormat::TextHtml] {
            assert_eq!(a.render(format), b.render(format), "{format:?}");
            assert_eq!(a.etag(format), b.etag(format));
        }
        let f = &b.page().files[0];
        assert_eq!(f.url, "http://127.0.0.1:1/simple/a/a-1.0.tar.gz");
        assert_eq!(f.hashes["md5"], "01");
        assert_eq!(f.yanked.as_deref(), Some("bad <build>"));
        assert_eq!(f.core_metadata.as_ref().unwrap()["sha256"], "cd");
        assert_eq!(
            f.upload_time.map(format_upload_time).as_deref(),
            Some("2026-01-02T03:04:05.123456Z")
        );
        let w = &b.page().files[1];
        assert_eq!(w.yanked.as_deref(), Some(""));
        assert_eq!(w.core_metadata, Some(BTreeMap::new()));
        assert_eq!(b.page().files[2].core_metadata, None);
    }

    fn any_file() -> impl proptest::strategy::Strategy<Value = IndexFile> {
        use proptest::prelude::*;
        let hashes = proptest::collection::btree_map("[a-z0-9]{1,8}", any::<String>(), 0..3);
        (
            (any::<String>(), any::<String>(), hashes.clone()),
            proptest::option::of(any::<String>()),
            proptest::option::of(any::<String>()),
            proptest::option::of(hashes),
            proptest::option::of(any::<u64>()),
            // Upload times from 1970 to 2100, to the nanosecond.
            proptest::option::of(0i128..4_102_444_800_000_000_000),
        )
            .prop_map(
                |((filename, url, hashes), requires_python, yanked, core_metadata, size, at)| {
                    IndexFile {
                        filename,
                        url,
                        hashes,
                        requires_python,
                        yanked,
                        core_metadata,
                        size,
                        upload_time: at
                            .and_then(|n| time::OffsetDateTime::from_unix_timestamp_nanos(n).ok()),
                    }
                },
            )
    }

    proptest::proptest! {
        /// Whatever an upstream page held reads back from its record the
        /// same, and encodes to the same bytes again.
        #[test]
        fn any_page_survives_its_record(
            files in proptest::collection::vec(any_file(), 0..6),
            versions in proptest::collection::vec(proptest::prelude::any::<String>(), 0..4),
            api_version in proptest::option::of(proptest::prelude::any::<String>()),
            json in proptest::prelude::any::<bool>(),
        ) {
            let page = ProjectPage { name: "pkg".into(), files, versions, stale: false };
            let source = if json { PageSource::Json } else { PageSource::Html };
            let meta = PageMeta { api_version, source };
            let record = encode(&page, &meta);
            let (back, meta_back) = decode(&record).unwrap();
            proptest::prop_assert_eq!(&back, &page);
            proptest::prop_assert_eq!(&meta_back, &meta);
            proptest::prop_assert_eq!(encode(&back, &meta_back), record);
        }
    }

    #[test]
    fn a_record_is_told_from_an_upstream_page_and_garbage_is_an_error() {
        assert!(is_record(RECORD_CONTENT_TYPE));
        assert!(!is_record(JSON_V1));
        assert!(!is_record("text/html"));
        assert!(decode(b"<html>").is_err());
    }
}
