//! Python distribution files: project name normalisation (PEP 503), file names
//! (PEP 427 wheels, sdists) and core metadata (`METADATA` / `PKG-INFO`).

use std::io::Read;
use std::path::Path;

/// PEP 503 normalisation: lower case, runs of `-`, `_`, `.` become one `-`.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut separator = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            separator = true;
        } else {
            if separator && !out.is_empty() {
                out.push('-');
            }
            separator = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Whether `name` is a valid project name (PEP 508: letters, digits, `-_.`,
/// starting and ending with a letter or digit).
pub fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 200
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Whether `version` only has the characters PEP 440 versions are written with.
fn is_plausible_version(version: &str) -> bool {
    !version.is_empty()
        && version.len() <= 128
        && version.starts_with(|c: char| c.is_ascii_alphanumeric())
        && version
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'+' | b'!'))
}

/// A wheel's build tag (PEP 427): a digit, then letters, digits and `_`.
fn is_build_tag(tag: &str) -> bool {
    tag.len() <= 64
        && tag.starts_with(|c: char| c.is_ascii_digit())
        && tag.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A wheel's python, abi or platform tag (PEP 425), or a compressed set of
/// them joined by `.` (`py2.py3`): letters, digits and `_`, no empty member.
fn is_tag_set(tags: &str) -> bool {
    tags.len() <= 256
        && tags.split('.').all(|tag| {
            !tag.is_empty() && tag.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        })
}

/// The kind of a distribution file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistKind {
    /// A wheel (`.whl`, a zip).
    Wheel,
    /// A source distribution as `.tar.gz`.
    SdistTarGz,
    /// A source distribution as `.zip`.
    SdistZip,
}

/// A parsed distribution file name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistFilename {
    /// The project name as written in the file name.
    pub name: String,
    /// The version.
    pub version: String,
    /// Wheel or sdist.
    pub kind: DistKind,
}

/// Why a file name is not a distribution.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a valid distribution file name: {1}")]
pub struct FilenameError(pub String, pub &'static str);

/// Parse a wheel (`{name}-{version}(-{build})?-{py}-{abi}-{platform}.whl`) or
/// sdist (`{name}-{version}.tar.gz` / `.zip`) file name.
pub fn parse_filename(filename: &str) -> Result<DistFilename, FilenameError> {
    parse_filename_parts(filename)
        .map(|(name, version, kind)| DistFilename {
            name: name.to_owned(),
            version: version.to_owned(),
            kind,
        })
        .map_err(|why| FilenameError(filename.to_owned(), why))
}

/// The version a distribution file name gives, borrowed: `None` where
/// [`parse_filename`] fails. Allocates nothing, for pages of 300,000 files.
pub fn version_of(filename: &str) -> Option<&str> {
    parse_filename_parts(filename)
        .ok()
        .map(|(_, version, _)| version)
}

/// [`parse_filename`] on borrowed parts: name, version, kind, or why not.
fn parse_filename_parts(filename: &str) -> Result<(&str, &str, DistKind), &'static str> {
    if filename.contains('/') || filename.contains('\\') || filename.starts_with('.') {
        return Err("it contains a path");
    }
    if let Some(stem) = filename.strip_suffix(".whl") {
        // At most six parts; a seventh only says there are too many.
        let mut parts = [""; 7];
        let mut count = 0;
        for part in stem.split('-') {
            if count == parts.len() {
                break;
            }
            parts[count] = part;
            count += 1;
        }
        if count != 5 && count != 6 {
            return Err("a wheel is named NAME-VERSION(-BUILD)-PYTHON-ABI-PLATFORM.whl");
        }
        let parts = &parts[..count];
        if parts.iter().any(|p| p.is_empty())
            || !is_valid_name(parts[0])
            || !is_plausible_version(parts[1])
        {
            return Err("empty or invalid part");
        }
        if count == 6 && !is_build_tag(parts[2]) {
            return Err(
                "a wheel's build tag starts with a digit and has only letters, digits and _",
            );
        }
        if !parts[count - 3..].iter().all(|t| is_tag_set(t)) {
            return Err(
                "a wheel's python, abi and platform tags have only letters, digits and _ (sets of them joined by .)",
            );
        }
        return Ok((parts[0], parts[1], DistKind::Wheel));
    }
    let (stem, kind) = if let Some(s) = filename.strip_suffix(".tar.gz") {
        (s, DistKind::SdistTarGz)
    } else if let Some(s) = filename.strip_suffix(".zip") {
        (s, DistKind::SdistZip)
    } else {
        return Err("only .whl, .tar.gz and .zip files are accepted");
    };
    // The version starts after the last '-' that is followed by a digit.
    let split = stem
        .match_indices('-')
        .filter(|(i, _)| stem[i + 1..].starts_with(|c: char| c.is_ascii_digit()))
        .map(|(i, _)| i)
        .next_back()
        .ok_or("an sdist is named NAME-VERSION.tar.gz")?;
    let (name, version) = (&stem[..split], &stem[split + 1..]);
    if !is_valid_name(name) || !is_plausible_version(version) {
        return Err("an sdist is named NAME-VERSION.tar.gz");
    }
    Ok((name, version, kind))
}

/// The fields of core metadata entrepot reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoreMetadata {
    /// `Name`.
    pub name: String,
    /// `Version`.
    pub version: String,
    /// `Requires-Python`.
    pub requires_python: Option<String>,
}

/// Read the header fields of a core metadata file (RFC 822 style).
pub fn parse_core_metadata(bytes: &[u8]) -> CoreMetadata {
    let text = String::from_utf8_lossy(bytes);
    let mut meta = CoreMetadata::default();
    for line in text.lines() {
        if line.is_empty() {
            break; // the body (description) follows
        }
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_owned();
        match key.trim().to_ascii_lowercase().as_str() {
            "name" => meta.name = value,
            "version" => meta.version = value,
            "requires-python" => meta.requires_python = Some(value).filter(|v| !v.is_empty()),
            _ => {}
        }
    }
    meta
}

/// Why core metadata could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The archive is unreadable.
    #[error("the file is not a readable {0} archive: {1}")]
    Archive(&'static str, String),
    /// The archive has no metadata file.
    #[error("the file has no {0}")]
    Missing(&'static str),
    /// The metadata file is larger than entrepot reads.
    #[error("the file's {what} is larger than {limit} bytes, the most entrepot reads")]
    TooLarge {
        /// `dist-info/METADATA` or `PKG-INFO`.
        what: &'static str,
        /// The limit in bytes.
        limit: u64,
    },
}

/// Largest metadata file entrepot extracts (16 MiB); a larger one is refused,
/// never cut short.
pub const MAX_METADATA: u64 = 16 * 1024 * 1024;

/// Read at most [`MAX_METADATA`] bytes of a metadata file; more is an error.
fn read_metadata(
    entry: impl Read,
    what: &'static str,
    archive: &'static str,
) -> Result<Vec<u8>, ExtractError> {
    let mut out = Vec::new();
    entry
        .take(MAX_METADATA + 1)
        .read_to_end(&mut out)
        .map_err(|e| ExtractError::Archive(archive, e.to_string()))?;
    if out.len() as u64 > MAX_METADATA {
        return Err(ExtractError::TooLarge {
            what,
            limit: MAX_METADATA,
        });
    }
    Ok(out)
}

/// Extract the core metadata file of a distribution on disk: the wheel's
/// `{name}-{version}.dist-info/METADATA`, or the sdist's top-level `PKG-INFO`.
pub fn extract_metadata(path: &Path, kind: DistKind) -> Result<Vec<u8>, ExtractError> {
    match kind {
        DistKind::Wheel | DistKind::SdistZip => {
            let what = if kind == DistKind::Wheel {
                "wheel"
            } else {
                "zip"
            };
            let file = std::fs::File::open(path)
                .map_err(|e| ExtractError::Archive(what, e.to_string()))?;
            let mut zip = zip::ZipArchive::new(file)
                .map_err(|e| ExtractError::Archive(what, e.to_string()))?;
            let wanted = (0..zip.len()).find(|&i| {
                zip.name_for_index(i).is_some_and(|n| {
                    let parts: Vec<&str> = n.split('/').collect();
                    match kind {
                        DistKind::Wheel => {
                            parts.len() == 2
                                && parts[0].ends_with(".dist-info")
                                && parts[1] == "METADATA"
                        }
                        _ => parts.len() == 2 && parts[1] == "PKG-INFO",
                    }
                })
            });
            let missing = if kind == DistKind::Wheel {
                "dist-info/METADATA"
            } else {
                "PKG-INFO"
            };
            let index = wanted.ok_or(ExtractError::Missing(missing))?;
            let entry = zip
                .by_index(index)
                .map_err(|e| ExtractError::Archive(what, e.to_string()))?;
            read_metadata(entry, missing, what)
        }
        DistKind::SdistTarGz => {
            let file = std::fs::File::open(path)
                .map_err(|e| ExtractError::Archive("tar.gz", e.to_string()))?;
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
            let entries = archive
                .entries()
                .map_err(|e| ExtractError::Archive("tar.gz", e.to_string()))?;
            for entry in entries {
                let entry = entry.map_err(|e| ExtractError::Archive("tar.gz", e.to_string()))?;
                let path = entry
                    .path()
                    .map_err(|e| ExtractError::Archive("tar.gz", e.to_string()))?;
                let parts: Vec<String> = path
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect();
                if parts.len() == 2 && parts[1] == "PKG-INFO" {
                    return read_metadata(entry, "PKG-INFO", "tar.gz");
                }
            }
            Err(ExtractError::Missing("PKG-INFO"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_versions_agree_with_parsed_file_names() {
        for name in [
            "a-1.0.tar.gz",
            "a_b-2.0rc1-py3-none-any.whl",
            "a-1.0-1-py2.py3-none-any.whl",
            "a-1.0-x-py3-none-any.whl",
            "a-1.0-1-2-py3-none-any.whl",
            "a-1.0-py3-none.whl",
            "a--1.0-py3-none-any.whl",
            "my-pkg-1.0.zip",
            "pkg.tar.gz",
            "../a-1.0.tar.gz",
            "a-1.0.exe",
        ] {
            assert_eq!(
                version_of(name),
                parse_filename(name).ok().map(|d| d.version).as_deref(),
                "{name}"
            );
        }
    }

    #[test]
    fn normalises_names() {
        assert_eq!(normalize("Foo_Bar"), "foo-bar");
        assert_eq!(normalize("foo.-_bar"), "foo-bar");
        assert_eq!(normalize("Django"), "django");
        assert!(is_valid_name("zope.interface"));
        assert!(!is_valid_name("-x"));
        assert!(!is_valid_name("a/b"));
    }

    #[test]
    fn parses_file_names() {
        let w = parse_filename("tiny_pkg-1.0-py3-none-any.whl").unwrap();
        assert_eq!(
            (w.name.as_str(), w.version.as_str(), w.kind),
            ("tiny_pkg", "1.0", DistKind::Wheel)
        );
        let w = parse_filename("pkg-2.0-1-cp312-cp312-manylinux_2_17_x86_64.whl").unwrap();
        assert_eq!(w.version, "2.0");
        let s = parse_filename("my-pkg-0.3.1.tar.gz").unwrap();
        assert_eq!((s.name.as_str(), s.version.as_str()), ("my-pkg", "0.3.1"));
        assert!(parse_filename("pkg-1.0.exe").is_err());
        assert!(parse_filename("../pkg-1.0.tar.gz").is_err());
        assert!(parse_filename("pkg-py3-none-any.whl").is_err());
        assert!(parse_filename("pkg-1.0%20x.tar.gz").is_err());
        assert!(parse_filename("pkg-1.0+local.7-py3-none-any.whl").is_ok());
    }

    #[test]
    fn wheel_tags_follow_the_wheel_spec() {
        for ok in [
            "pkg-1.0-py2.py3-none-any.whl",
            "pkg-1.0-1_a-cp312-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            "pkg-1.0-cp39-cp39-macosx_10_9_universal2.whl",
            "pkg-1.0-cp311-cp311-win_amd64.whl",
        ] {
            assert!(parse_filename(ok).is_ok(), "{ok}");
        }
        for bad in [
            "pkg-1.0-py3-none-<script>.whl",
            "pkg-1.0-py3-none-any\"x.whl",
            "pkg-1.0-py3-none-a%20y.whl",
            "pkg-1.0-py3..py2-none-any.whl",
            "pkg-1.0-py3-none-.any.whl",
            "pkg-1.0-b1-py3-none-any.whl",
            "pkg-1.0-1<x>-py3-none-any.whl",
            "pkg-1.0-py3-no ne-any.whl",
        ] {
            assert!(parse_filename(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn oversized_metadata_is_refused_not_cut_short() {
        let big = vec![b'x'; MAX_METADATA as usize + 1];
        let err = read_metadata(big.as_slice(), "dist-info/METADATA", "wheel").unwrap_err();
        assert!(
            err.to_string().contains("larger than 16777216 bytes"),
            "{err}"
        );
        let fits = vec![b'x'; 1000];
        assert_eq!(
            read_metadata(fits.as_slice(), "dist-info/METADATA", "wheel")
                .unwrap()
                .len(),
            1000
        );
    }

    #[test]
    fn reads_metadata_headers() {
        let m = parse_core_metadata(
            b"Metadata-Version: 2.1\nName: Tiny_Pkg\nVersion: 1.0\nRequires-Python: >=3.8\n\nName: not this\n",
        );
        assert_eq!(m.name, "Tiny_Pkg");
        assert_eq!(m.version, "1.0");
        assert_eq!(m.requires_python.as_deref(), Some(">=3.8"));
    }
}
