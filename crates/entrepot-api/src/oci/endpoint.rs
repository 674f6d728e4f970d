//! Parse `/v2/...` paths into typed OCI endpoints before any work is done.

use entrepot_domain::{Digest, ImagePath, NameError, Reference};

/// An OCI distribution endpoint, by path (the method is matched separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v2/`: API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/{name}/manifests/{reference}`.
    Manifest(ImagePath, Reference),
    /// `/v2/{name}/blobs/{digest}`.
    Blob(ImagePath, Digest),
    /// `/v2/{name}/blobs/uploads/`.
    Uploads(ImagePath),
    /// `/v2/{name}/blobs/uploads/{id}`.
    Upload(ImagePath, String),
    /// `/v2/{name}/tags/list`.
    Tags(ImagePath),
    /// `/v2/{name}/referrers/{digest}`.
    Referrers(ImagePath, Digest),
}

/// Why a path is not an OCI endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// No endpoint has this shape.
    #[error("no such endpoint")]
    NotFound,
    /// The repository/image part of the path is invalid.
    #[error("{0}; image paths are /v2/PROJECT/REPOSITORY/IMAGE")]
    Name(NameError),
    /// The reference or digest part is invalid.
    #[error("{0}")]
    Digest(NameError),
}

/// Parse the part of the path after `/v2/`.
pub fn parse(rest: &str) -> Result<Endpoint, EndpointError> {
    if rest.is_empty() {
        return Ok(Endpoint::Base);
    }
    if rest == "_catalog" {
        return Ok(Endpoint::Catalog);
    }
    let segments: Vec<&str> = rest.split('/').collect();
    let n = segments.len();
    let name = |upto: usize| -> Result<ImagePath, EndpointError> {
        segments[..upto]
            .join("/")
            .parse()
            .map_err(EndpointError::Name)
    };
    let digest = |s: &str| -> Result<Digest, EndpointError> {
        s.parse()
            .map_err(|e| EndpointError::Digest(NameError::BadDigest(e)))
    };
    if n >= 3 && segments[n - 2] == "tags" && segments[n - 1] == "list" {
        return Ok(Endpoint::Tags(name(n - 2)?));
    }
    if n >= 4 && segments[n - 3] == "blobs" && segments[n - 2] == "uploads" {
        let id = segments[n - 1];
        let path = name(n - 3)?;
        return Ok(if id.is_empty() {
            Endpoint::Uploads(path)
        } else {
            Endpoint::Upload(path, id.to_owned())
        });
    }
    if n >= 3 && segments[n - 2] == "blobs" && segments[n - 1] == "uploads" {
        return Ok(Endpoint::Uploads(name(n - 2)?));
    }
    if n >= 3 && segments[n - 2] == "blobs" {
        return Ok(Endpoint::Blob(name(n - 2)?, digest(segments[n - 1])?));
    }
    if n >= 3 && segments[n - 2] == "manifests" {
        let path = name(n - 2)?;
        let reference = segments[n - 1].parse().map_err(EndpointError::Digest)?;
        return Ok(Endpoint::Manifest(path, reference));
    }
    if n >= 3 && segments[n - 2] == "referrers" {
        return Ok(Endpoint::Referrers(name(n - 2)?, digest(segments[n - 1])?));
    }
    Err(EndpointError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_endpoints() {
        assert_eq!(parse(""), Ok(Endpoint::Base));
        assert_eq!(parse("_catalog"), Ok(Endpoint::Catalog));
        assert!(
            matches!(parse("p/r/a/b/manifests/latest"), Ok(Endpoint::Manifest(p, _)) if p.image.as_str() == "a/b")
        );
        assert!(matches!(
            parse("p/r/img/blobs/uploads/"),
            Ok(Endpoint::Uploads(_))
        ));
        assert!(matches!(
            parse("p/r/img/blobs/uploads"),
            Ok(Endpoint::Uploads(_))
        ));
        assert!(
            matches!(parse("p/r/img/blobs/uploads/abc"), Ok(Endpoint::Upload(_, id)) if id == "abc")
        );
        assert!(matches!(parse("p/r/img/tags/list"), Ok(Endpoint::Tags(_))));
        let d = Digest::of(b"");
        assert!(matches!(
            parse(&format!("p/r/img/blobs/{d}")),
            Ok(Endpoint::Blob(..))
        ));
        assert!(matches!(
            parse(&format!("p/r/img/referrers/{d}")),
            Ok(Endpoint::Referrers(..))
        ));
    }

    #[test]
    fn refuses_bad_names_and_digests() {
        assert!(matches!(
            parse("p/r/a/../b/manifests/latest"),
            Err(EndpointError::Name(_))
        ));
        assert!(matches!(
            parse("p/R/a/manifests/latest"),
            Err(EndpointError::Name(_))
        ));
        assert!(matches!(
            parse("p/r/manifests/latest"),
            Err(EndpointError::Name(_))
        ));
        assert!(matches!(
            parse("p/r/a/blobs/sha256:zz"),
            Err(EndpointError::Digest(_))
        ));
        assert!(matches!(
            parse("p/r/a/manifests/-bad"),
            Err(EndpointError::Digest(_))
        ));
        assert_eq!(parse("p/r/a/whatever"), Err(EndpointError::NotFound));
    }
}
