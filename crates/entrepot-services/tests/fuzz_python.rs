//! Property-based fuzzing of the Python parsers fed by the network: simple-index
//! pages (HTML and JSON) and project lists from upstreams, distribution file
//! names, core metadata, and the wheel/sdist archives metadata is read from.
//! `PROPTEST_CASES` sets the number of cases (256 by default, what CI runs);
//! see `docs/security.md` for long runs.

#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::LazyLock;

use entrepot_services::python::dist::{
    extract_metadata, parse_core_metadata, parse_filename, DistKind,
};
use entrepot_services::python::index::{
    escape, parse_project_list, parse_project_page, render_project_page, unescape, IndexFile,
    DEFAULT_MAX_PAGE_FILES,
};
use entrepot_services::python::{PageFormat, ProjectPage};
use proptest::prelude::*;
use regex::Regex;

const JSON: &str = "application/vnd.pypi.simple.v1+json";

/// The wheel file name grammar, as a reference for [`parse_filename`].
static WHEEL_RE: LazyLock<Regex> = LazyLock::new(|| {
    let tags = r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*";
    Regex::new(&format!(
        r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?-[A-Za-z0-9][A-Za-z0-9._+!]*(-[0-9][A-Za-z0-9_]*)?-{tags}-{tags}-{tags}\.whl$"
    ))
    .unwrap()
});

fn base() -> url::Url {
    url::Url::parse("http://127.0.0.1:9/simple/pkg/").unwrap()
}

/// Text an upstream could put anywhere: markup, entities, quotes, Unicode.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9<>&;#\"' =/-]{0,30}",
        "(&(lt|gt|amp|quot|#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|bogus);?|[<>\"' a-z]){0,12}",
        any::<String>(),
    ]
}

/// Like [`hostile_text`], without the surrounding whitespace HTML text loses.
fn hostile_name() -> impl Strategy<Value = String> {
    hostile_text()
        .prop_map(|s| s.trim().to_owned())
        .prop_filter("non-empty", |s| !s.is_empty())
}

fn hex64() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}"
}

fn index_file() -> impl Strategy<Value = IndexFile> {
    (
        hostile_name(),
        "[a-z0-9_-]{1,4}[a-z0-9_.-]{0,16}",
        proptest::option::of(hex64()),
        proptest::option::of(hostile_text()),
        proptest::option::of(hostile_text()),
        prop_oneof![
            Just(None),
            Just(Some(BTreeMap::new())),
            hex64().prop_map(|h| Some(BTreeMap::from([("sha256".to_owned(), h)]))),
        ],
    )
        .prop_map(
            |(filename, path, sha256, requires_python, yanked, core_metadata)| IndexFile {
                filename,
                url: format!("http://127.0.0.1:9/files/{path}"),
                hashes: sha256
                    .into_iter()
                    .map(|h| ("sha256".to_owned(), h))
                    .collect(),
                requires_python,
                yanked,
                core_metadata,
                size: None,
                upload_time: None,
            },
        )
}

fn page() -> impl Strategy<Value = ProjectPage> {
    proptest::collection::vec(index_file(), 0..8).prop_map(|files| {
        let versions = entrepot_services::python::index::versions_of(&files);
        ProjectPage {
            name: "pkg".to_owned(),
            files,
            versions,
            stale: false,
        }
    })
}

proptest! {
    #[test]
    fn escaped_text_unescapes_to_itself(s in hostile_text()) {
        prop_assert_eq!(unescape(&escape(&s)), s);
    }

    #[test]
    fn unescape_never_panics(s in hostile_text()) {
        let _ = unescape(&s);
    }

    /// What entrepot serves as HTML reads back as the same files: no string an
    /// upstream sent can add, drop or change a link (no markup injection).
    #[test]
    fn html_pages_round_trip(page in page()) {
        let html = render_project_page(&page, PageFormat::HtmlV1);
        let again = parse_project_page("text/html", &html, &base(), "pkg", DEFAULT_MAX_PAGE_FILES).unwrap();
        prop_assert_eq!(again, page);
    }

    #[test]
    fn json_pages_round_trip(page in page(), sizes in proptest::collection::vec(any::<u64>(), 8)) {
        let mut page = page;
        for (f, size) in page.files.iter_mut().zip(sizes) {
            f.size = Some(size);
            f.upload_time = entrepot_services::python::index::parse_upload_time("2026-01-02T03:04:05.25Z");
        }
        let json = render_project_page(&page, PageFormat::Json);
        let again = parse_project_page(JSON, &json, &base(), "pkg", DEFAULT_MAX_PAGE_FILES).unwrap();
        prop_assert_eq!(again, page);
    }

    #[test]
    fn any_upstream_page_is_read_without_panic(
        json in any::<bool>(),
        max_files in 0usize..6,
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..600),
            "(<a href=\"[a-z:/.#=&;]{0,20}\"( data-[a-z-]{1,20}(=\"[^\"]{0,10}\")?){0,3}>[^<]{0,10}</a>|<[a-z/!]{0,5}|[^<]{0,10}){0,10}"
                .prop_map(String::into_bytes),
            "\\{\"files\": \\[(\\{\"filename\": \"[a-z.-]{0,10}\", \"url\": \"[a-z:/.]{0,12}\", \"hashes\": \\{\"sha256\": (1|null|\"[a-f0-9]{0,4}\")\\}, \"yanked\": (true|1|\"x\")\\},?){0,4}\\]\\}"
                .prop_map(String::into_bytes),
        ],
    ) {
        let content_type = if json { JSON } else { "text/html" };
        if let Ok(page) = parse_project_page(content_type, &body, &base(), "pkg", max_files) {
            prop_assert!(page.files.len() <= max_files);
            for f in &page.files {
                prop_assert!(url::Url::parse(&f.url).is_ok(), "{:?}", f.url);
                prop_assert!(!f.url.contains('#'), "{:?}", f.url);
            }
        }
        let _ = parse_project_list(content_type, &body);
    }

    #[test]
    fn file_names_never_carry_a_path(s in prop_oneof![
        "[a-zA-Z0-9_.+!-]{1,20}-[0-9][0-9a-z.+!_]{0,8}(-[0-9a-z]{1,4})?-[a-z0-9_.]{1,8}-[a-z0-9_.]{1,8}-[a-z0-9_.]{1,12}\\.whl",
        "[a-zA-Z0-9_./\\\\-]{1,20}-[0-9.]{1,6}\\.(tar\\.gz|zip|whl)",
        "[a-z]{1,5}-1\\.0(-[0-9a-z<]{1,3})?-[a-z0-9<>_.\"]{1,8}-(none|[a-z<>]{1,4})-[a-z0-9_.<>]{1,8}\\.whl",
        any::<String>(),
    ]) {
        if let Ok(parsed) = parse_filename(&s) {
            prop_assert!(!s.contains('/') && !s.contains('\\') && !s.starts_with('.'), "{:?}", s);
            prop_assert!(!parsed.name.is_empty() && !parsed.version.is_empty());
            prop_assert!(s.starts_with(&parsed.name), "{:?}", s);
            if parsed.kind == DistKind::Wheel {
                // PEP 427/425: NAME-VERSION(-BUILD)?-PY-ABI-PLATFORM.whl, tags
                // of letters, digits and `_` (sets joined by `.`).
                prop_assert!(WHEEL_RE.is_match(&s), "{:?}", s);
            }
        }
    }

    #[test]
    fn core_metadata_is_read_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let meta = parse_core_metadata(&bytes);
        prop_assert!(!meta.name.contains('\n') && !meta.version.contains('\n'));
    }

    #[test]
    fn core_metadata_fields_come_back(
        name in "[A-Za-z0-9][A-Za-z0-9._-]{0,20}",
        version in "[0-9]{1,3}(\\.[0-9]{1,3}){0,3}",
        requires in proptest::option::of(">=3\\.[0-9]{1,2}"),
        body in "[ -~\n]{0,80}",
    ) {
        let mut text = format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n");
        if let Some(r) = &requires {
            text.push_str(&format!("Requires-Python: {r}\n"));
        }
        text.push('\n');
        text.push_str(&body);
        let meta = parse_core_metadata(text.as_bytes());
        prop_assert_eq!(meta.name, name);
        prop_assert_eq!(meta.version, version);
        prop_assert_eq!(meta.requires_python, requires);
    }

    /// Archives an uploader or an upstream sends: random bytes, and real zip
    /// and tar.gz files with hostile entry names, never panic the reader.
    #[test]
    fn archives_are_read_without_panic(
        kind in prop_oneof![Just(DistKind::Wheel), Just(DistKind::SdistZip), Just(DistKind::SdistTarGz)],
        entries in proptest::collection::vec(
            (prop_oneof![
                Just("pkg-1.0.dist-info/METADATA".to_owned()),
                Just("pkg-1.0/PKG-INFO".to_owned()),
                "[a-zA-Z0-9./-]{1,30}",
            ], proptest::collection::vec(any::<u8>(), 0..200)),
            0..4,
        ),
        garbage in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dist");
        let bytes = match garbage {
            Some(bytes) => bytes,
            None if kind == DistKind::SdistTarGz => tar_gz(&entries),
            None => zip(&entries),
        };
        std::fs::write(&path, &bytes).unwrap();
        if let Ok(metadata) = extract_metadata(&path, kind) {
            // What was read is one entry's bytes, never more.
            prop_assert!(entries.iter().any(|(_, content)| *content == metadata), "{:?}", metadata);
        }
    }
}

fn zip(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    for (name, content) in entries {
        if zip
            .start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .is_ok()
        {
            zip.write_all(content).unwrap();
        }
    }
    zip.finish().unwrap();
    out.into_inner()
}

fn tar_gz(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    for (name, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        let _ = tar.append_data(&mut header, name, content.as_slice());
    }
    tar.into_inner().unwrap().finish().unwrap()
}
