//! Paths of the Python front-end, parsed before any work.

use entrepot_domain::{ProjectId, RepositoryId, RepositoryName};
use entrepot_services::python::dist::{is_valid_name, normalize};

/// What a request under `/pypi/` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/pypi/{p}/{r}/simple/`: the project list.
    Index(RepositoryName),
    /// `/pypi/{p}/{r}/simple/{name}/`, `name` normalised.
    Project(RepositoryName, String),
    /// `/pypi/{p}/{r}/files/{sha256}/{filename}` (a `.metadata` name included).
    File {
        /// The repository.
        repo: RepositoryName,
        /// Lower-case hex sha256 of the file.
        sha256: String,
        /// The file name.
        filename: String,
    },
    /// `/pypi/{p}/{r}/legacy/` (or the repository root): twine uploads.
    Upload(RepositoryName),
    /// The canonical location of a non-canonical path (301).
    Redirect(String),
}

/// Why a path is not a Python endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// Nothing is served at this path.
    #[error("not found: {0} is not a path of the Python repository API (use /pypi/PROJECT/REPOSITORY/simple/)")]
    Unknown(String),
    /// A part of the path is invalid.
    #[error("{0}")]
    Invalid(String),
}

fn repo(p: &str, r: &str) -> Result<RepositoryName, EndpointError> {
    let project: ProjectId = p
        .parse()
        .map_err(|e: entrepot_domain::NameError| EndpointError::Invalid(e.to_string()))?;
    let repository: RepositoryId = r
        .parse()
        .map_err(|e: entrepot_domain::NameError| EndpointError::Invalid(e.to_string()))?;
    Ok(RepositoryName::new(project, repository))
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Parse the path after `/pypi/`.
pub fn parse(rest: &str) -> Result<Endpoint, EndpointError> {
    let unknown = || EndpointError::Unknown(format!("/pypi/{rest}"));
    let segments: Vec<&str> = rest.split('/').collect();
    match segments.as_slice() {
        [p, r, "simple"] => {
            repo(p, r)?;
            Ok(Endpoint::Redirect(format!("/pypi/{p}/{r}/simple/")))
        }
        [p, r, "simple", ""] => Ok(Endpoint::Index(repo(p, r)?)),
        [p, r, "simple", name] | [p, r, "simple", name, ""] => {
            let repo = repo(p, r)?;
            let decoded = percent_decode(name).ok_or_else(unknown)?;
            if !is_valid_name(&decoded) {
                return Err(EndpointError::Invalid(format!(
                    "{decoded:?} is not a valid Python project name"
                )));
            }
            let normal = normalize(&decoded);
            if segments.len() == 5 && normal == *name {
                Ok(Endpoint::Project(repo, normal))
            } else {
                Ok(Endpoint::Redirect(format!(
                    "/pypi/{p}/{r}/simple/{normal}/"
                )))
            }
        }
        [p, r, "files", sha256, filename] => {
            let repo = repo(p, r)?;
            if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(EndpointError::Invalid(format!(
                    "{sha256:?} is not a sha256 digest"
                )));
            }
            let filename = percent_decode(filename).ok_or_else(unknown)?;
            if filename.is_empty() || filename.contains('/') || filename.starts_with('.') {
                return Err(unknown());
            }
            Ok(Endpoint::File {
                repo,
                sha256: sha256.to_ascii_lowercase(),
                filename,
            })
        }
        [p, r, "legacy"] | [p, r, "legacy", ""] | [p, r] | [p, r, ""] => {
            Ok(Endpoint::Upload(repo(p, r)?))
        }
        _ => Err(unknown()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths() {
        let r: RepositoryName = "projects/default/repositories/up".parse().unwrap();
        assert_eq!(parse("default/up/simple/"), Ok(Endpoint::Index(r.clone())));
        assert_eq!(
            parse("default/up/simple"),
            Ok(Endpoint::Redirect("/pypi/default/up/simple/".into()))
        );
        assert_eq!(
            parse("default/up/simple/tiny-pkg/"),
            Ok(Endpoint::Project(r.clone(), "tiny-pkg".into()))
        );
        assert_eq!(
            parse("default/up/simple/Tiny_Pkg/"),
            Ok(Endpoint::Redirect(
                "/pypi/default/up/simple/tiny-pkg/".into()
            ))
        );
        assert_eq!(
            parse("default/up/simple/tiny-pkg"),
            Ok(Endpoint::Redirect(
                "/pypi/default/up/simple/tiny-pkg/".into()
            ))
        );
        let sha = "a".repeat(64);
        assert_eq!(
            parse(&format!("default/up/files/{sha}/x-1.0.tar.gz")),
            Ok(Endpoint::File {
                repo: r.clone(),
                sha256: sha.clone(),
                filename: "x-1.0.tar.gz".into()
            })
        );
        assert!(parse("default/up/files/abc/x-1.0.tar.gz").is_err());
        assert!(parse(&format!("default/up/files/{sha}/..")).is_err());
        assert_eq!(parse("default/up/legacy/"), Ok(Endpoint::Upload(r)));
        assert!(parse("default/up/simple/../../x/").is_err());
        assert!(parse("default/Bad Repo/simple/").is_err());
    }

    #[test]
    fn odd_paths_never_panic_and_never_escape() {
        let alphabet: Vec<char> = "abc/._-%2F%2e%ZZé\\:?#0123456789ABCDEF".chars().collect();
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (seed >> 58) as usize;
            let mut path = String::from("p/r/");
            let mut x = seed;
            for _ in 0..len {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                path.push(alphabet[(x >> 33) as usize % alphabet.len()]);
            }
            if let Ok(Endpoint::File { filename, .. }) = parse(&path) {
                assert!(
                    !filename.contains('/') && !filename.starts_with('.'),
                    "{path}"
                );
            }
            if let Ok(Endpoint::Redirect(location)) = parse(&path) {
                assert!(location.starts_with("/pypi/p/r/simple/"), "{path}");
                assert!(!location.contains(".."), "{path}");
            }
        }
    }
}
