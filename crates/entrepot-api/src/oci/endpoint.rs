//! Parse a `/v2/...` request (method and path) into a typed OCI operation
//! before any work is done. What an operation requires of the caller is the
//! services' [`OciOperation`] table; [`Endpoint::operation`] maps onto it,
//! and the token scope of a challenge follows from it.

use axum::http::Method;
use entrepot_domain::{Digest, ImagePath, NameError};
use entrepot_services::oci::OciOperation;
use entrepot_services::{Permission, Resource};

/// An OCI distribution operation: what the method does on the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET|HEAD /v2/`: API version check (and the login challenge).
    Base,
    /// `GET /v2/_catalog`.
    Catalog,
    /// `GET /v2/{name}/manifests/{reference}`. References of manifests are
    /// kept as sent: the service parses them once the caller is authorized,
    /// so an anonymous caller gets its challenge whatever it asked for.
    GetManifest(ImagePath, String),
    /// `HEAD /v2/{name}/manifests/{reference}`.
    HeadManifest(ImagePath, String),
    /// `PUT /v2/{name}/manifests/{reference}`.
    PutManifest(ImagePath, String),
    /// `DELETE /v2/{name}/manifests/{reference}`.
    DeleteManifest(ImagePath, String),
    /// `GET /v2/{name}/blobs/{digest}`.
    GetBlob(ImagePath, Digest),
    /// `HEAD /v2/{name}/blobs/{digest}`.
    HeadBlob(ImagePath, Digest),
    /// `DELETE /v2/{name}/blobs/{digest}`.
    DeleteBlob(ImagePath, Digest),
    /// `POST /v2/{name}/blobs/uploads/`: open a session, push a whole blob
    /// (`?digest=`) or mount one (`?mount=&from=`).
    StartUpload(ImagePath),
    /// `GET /v2/{name}/blobs/uploads/{id}`.
    UploadStatus(ImagePath, String),
    /// `PATCH /v2/{name}/blobs/uploads/{id}`.
    AppendChunk(ImagePath, String),
    /// `PUT /v2/{name}/blobs/uploads/{id}?digest=`.
    FinishUpload(ImagePath, String),
    /// `DELETE /v2/{name}/blobs/uploads/{id}`.
    CancelUpload(ImagePath, String),
    /// `GET /v2/{name}/tags/list`.
    ListTags(ImagePath),
    /// `GET /v2/{name}/referrers/{digest}`.
    Referrers(ImagePath, Digest),
}

/// Why a request is not an OCI operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    /// No endpoint has this shape.
    #[error("no such endpoint")]
    NotFound,
    /// The repository/image part of the path is invalid.
    #[error("{0}; image paths are /v2/PROJECT/REPOSITORY/IMAGE")]
    Name(NameError),
    /// The digest part (of a blob or referrers path) is invalid.
    #[error("{0}")]
    Digest(NameError),
    /// The path is an endpoint, but not one of this method.
    #[error("{method} is not supported on {on}")]
    MethodNotAllowed {
        /// The request's method.
        method: Method,
        /// What the path names, e.g. "manifests".
        on: &'static str,
    },
}

/// What an operation requires of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// Valid credentials of any principal (anonymous too).
    Authenticated,
    /// This permission on this resource.
    Permission(Permission, Resource),
}

/// The endpoint a path names, whatever the method.
enum Route {
    Base,
    Catalog,
    Manifest(ImagePath, String),
    Blob(ImagePath, Digest),
    Uploads(ImagePath),
    Upload(ImagePath, String),
    Tags(ImagePath),
    Referrers(ImagePath, Digest),
}

impl Route {
    /// Parse the part of the path after `/v2/`.
    fn parse(rest: &str) -> Result<Route, EndpointError> {
        if rest.is_empty() {
            return Ok(Route::Base);
        }
        if rest == "_catalog" {
            return Ok(Route::Catalog);
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
            return Ok(Route::Tags(name(n - 2)?));
        }
        if n >= 4 && segments[n - 3] == "blobs" && segments[n - 2] == "uploads" {
            let id = segments[n - 1];
            let path = name(n - 3)?;
            return Ok(if id.is_empty() {
                Route::Uploads(path)
            } else {
                Route::Upload(path, id.to_owned())
            });
        }
        if n >= 3 && segments[n - 2] == "blobs" && segments[n - 1] == "uploads" {
            return Ok(Route::Uploads(name(n - 2)?));
        }
        if n >= 3 && segments[n - 2] == "blobs" {
            return Ok(Route::Blob(name(n - 2)?, digest(segments[n - 1])?));
        }
        if n >= 3 && segments[n - 2] == "manifests" {
            return Ok(Route::Manifest(name(n - 2)?, segments[n - 1].to_owned()));
        }
        if n >= 3 && segments[n - 2] == "referrers" {
            return Ok(Route::Referrers(name(n - 2)?, digest(segments[n - 1])?));
        }
        Err(EndpointError::NotFound)
    }

    /// What the path names, for the refusal of a method.
    fn what(&self) -> &'static str {
        match self {
            Route::Base => "/v2/",
            Route::Catalog => "the catalog",
            Route::Manifest(..) => "manifests",
            Route::Blob(..) => "blobs",
            Route::Uploads(..) | Route::Upload(..) => "blob uploads",
            Route::Tags(..) => "tag lists",
            Route::Referrers(..) => "referrers",
        }
    }
}

impl Endpoint {
    /// The operation of `method` on the part of the path after `/v2/`. The
    /// path is checked first: a malformed one is refused whatever the method.
    pub fn parse(method: &Method, rest: &str) -> Result<Endpoint, EndpointError> {
        use Endpoint as E;
        let route = Route::parse(rest)?;
        let on = route.what();
        let endpoint = match (method.clone(), route) {
            (Method::GET | Method::HEAD, Route::Base) => E::Base,
            (Method::GET, Route::Catalog) => E::Catalog,
            (Method::GET, Route::Manifest(p, r)) => E::GetManifest(p, r),
            (Method::HEAD, Route::Manifest(p, r)) => E::HeadManifest(p, r),
            (Method::PUT, Route::Manifest(p, r)) => E::PutManifest(p, r),
            (Method::DELETE, Route::Manifest(p, r)) => E::DeleteManifest(p, r),
            (Method::GET, Route::Blob(p, d)) => E::GetBlob(p, d),
            (Method::HEAD, Route::Blob(p, d)) => E::HeadBlob(p, d),
            (Method::DELETE, Route::Blob(p, d)) => E::DeleteBlob(p, d),
            (Method::POST, Route::Uploads(p)) => E::StartUpload(p),
            (Method::GET, Route::Upload(p, id)) => E::UploadStatus(p, id),
            (Method::PATCH, Route::Upload(p, id)) => E::AppendChunk(p, id),
            (Method::PUT, Route::Upload(p, id)) => E::FinishUpload(p, id),
            (Method::DELETE, Route::Upload(p, id)) => E::CancelUpload(p, id),
            (Method::GET, Route::Tags(p)) => E::ListTags(p),
            (Method::GET, Route::Referrers(p, d)) => E::Referrers(p, d),
            (method, _) => return Err(EndpointError::MethodNotAllowed { method, on }),
        };
        Ok(endpoint)
    }

    /// The image the operation is on (none for the base and the catalog).
    pub fn image(&self) -> Option<&ImagePath> {
        use Endpoint as E;
        match self {
            E::Base | E::Catalog => None,
            E::GetManifest(p, _)
            | E::HeadManifest(p, _)
            | E::PutManifest(p, _)
            | E::DeleteManifest(p, _)
            | E::GetBlob(p, _)
            | E::HeadBlob(p, _)
            | E::DeleteBlob(p, _)
            | E::StartUpload(p)
            | E::UploadStatus(p, _)
            | E::AppendChunk(p, _)
            | E::FinishUpload(p, _)
            | E::CancelUpload(p, _)
            | E::ListTags(p)
            | E::Referrers(p, _) => Some(p),
        }
    }

    /// The service operation this endpoint runs (none for the base, which
    /// only authenticates).
    pub fn operation(&self) -> Option<OciOperation> {
        use Endpoint as E;
        use OciOperation as O;
        Some(match self {
            E::Base => return None,
            E::Catalog => O::Catalog,
            E::GetManifest(..) | E::HeadManifest(..) => O::GetManifest,
            E::PutManifest(..) => O::PutManifest,
            E::DeleteManifest(..) => O::DeleteManifest,
            E::GetBlob(..) | E::HeadBlob(..) => O::GetBlob,
            E::DeleteBlob(..) => O::DeleteBlob,
            // A whole-blob push (`?digest=`) is the service's `PutBlob`,
            // which requires the same.
            E::StartUpload(..) => O::StartUpload,
            E::UploadStatus(..) => O::UploadStatus,
            E::AppendChunk(..) => O::AppendChunk,
            E::FinishUpload(..) => O::FinishUpload,
            E::CancelUpload(..) => O::CancelUpload,
            E::ListTags(..) => O::ListTags,
            E::Referrers(..) => O::Referrers,
        })
    }

    /// What the caller must hold for this operation, as the service decides
    /// it ([`OciOperation::permission`]). (Mounting a blob also reads its
    /// source image, named in the query: the service checks that too.)
    pub fn permission(&self) -> Requirement {
        match self.operation() {
            Some(op) => Requirement::Permission(op.permission(), op.resource(self.image())),
            None => Requirement::Authenticated,
        }
    }

    /// The token scope the operation needs, e.g.
    /// `repository:default/images/app:pull`, for the `Bearer` challenge:
    /// the token action of the permission the operation requires.
    pub fn scope(&self) -> Option<String> {
        let operation = self.operation()?;
        let actions = match operation.permission() {
            Permission::RepositoriesList => return Some("registry:catalog:*".to_owned()),
            Permission::UploadArtifacts => "pull,push",
            Permission::DeleteArtifacts => "delete",
            Permission::DownloadArtifacts => "pull",
            _ => return None,
        };
        let path = self.image()?;
        Some(format!("repository:{path}:{actions}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrepot_services::Permission::{
        DeleteArtifacts, DownloadArtifacts, RepositoriesList, UploadArtifacts,
    };

    const METHODS: [Method; 7] = [
        Method::GET,
        Method::HEAD,
        Method::PUT,
        Method::POST,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];

    /// The operation's name, to compare with the table below.
    fn name(e: &Endpoint) -> &'static str {
        use Endpoint as E;
        match e {
            E::Base => "Base",
            E::Catalog => "Catalog",
            E::GetManifest(..) => "GetManifest",
            E::HeadManifest(..) => "HeadManifest",
            E::PutManifest(..) => "PutManifest",
            E::DeleteManifest(..) => "DeleteManifest",
            E::GetBlob(..) => "GetBlob",
            E::HeadBlob(..) => "HeadBlob",
            E::DeleteBlob(..) => "DeleteBlob",
            E::StartUpload(..) => "StartUpload",
            E::UploadStatus(..) => "UploadStatus",
            E::AppendChunk(..) => "AppendChunk",
            E::FinishUpload(..) => "FinishUpload",
            E::CancelUpload(..) => "CancelUpload",
            E::ListTags(..) => "ListTags",
            E::Referrers(..) => "Referrers",
        }
    }

    fn images() -> Resource {
        Resource::Repository {
            project: "p".into(),
            repository: "r".into(),
        }
    }

    /// Every method on every path shape: the operation and what it requires,
    /// or the 405 naming what the path is.
    #[test]
    fn every_method_on_every_path_shape() {
        let d = Digest::of(b"");
        let manifest = "p/r/a/b/manifests/latest".to_owned();
        let blob = format!("p/r/a/b/blobs/{d}");
        let referrers = format!("p/r/a/b/referrers/{d}");
        type Row = (&'static str, Option<(&'static str, Option<Permission>)>);
        let table: Vec<(&str, &str, [Row; 7])> = vec![
            (
                "",
                "/v2/",
                [
                    ("GET", Some(("Base", None))),
                    ("HEAD", Some(("Base", None))),
                    ("PUT", None),
                    ("POST", None),
                    ("PATCH", None),
                    ("DELETE", None),
                    ("OPTIONS", None),
                ],
            ),
            (
                "_catalog",
                "the catalog",
                [
                    ("GET", Some(("Catalog", Some(RepositoriesList)))),
                    ("HEAD", None),
                    ("PUT", None),
                    ("POST", None),
                    ("PATCH", None),
                    ("DELETE", None),
                    ("OPTIONS", None),
                ],
            ),
            (
                &manifest,
                "manifests",
                [
                    ("GET", Some(("GetManifest", Some(DownloadArtifacts)))),
                    ("HEAD", Some(("HeadManifest", Some(DownloadArtifacts)))),
                    ("PUT", Some(("PutManifest", Some(UploadArtifacts)))),
                    ("POST", None),
                    ("PATCH", None),
                    ("DELETE", Some(("DeleteManifest", Some(DeleteArtifacts)))),
                    ("OPTIONS", None),
                ],
            ),
            (
                &blob,
                "blobs",
                [
                    ("GET", Some(("GetBlob", Some(DownloadArtifacts)))),
                    ("HEAD", Some(("HeadBlob", Some(DownloadArtifacts)))),
                    ("PUT", None),
                    ("POST", None),
                    ("PATCH", None),
                    ("DELETE", Some(("DeleteBlob", Some(DeleteArtifacts)))),
                    ("OPTIONS", None),
                ],
            ),
            (
                "p/r/a/b/blobs/uploads/",
                "blob uploads",
                [
                    ("GET", None),
                    ("HEAD", None),
                    ("PUT", None),
                    ("POST", Some(("StartUpload", Some(UploadArtifacts)))),
                    ("PATCH", None),
                    ("DELETE", None),
                    ("OPTIONS", None),
                ],
            ),
            (
                "p/r/a/b/blobs/uploads/0f3e",
                "blob uploads",
                [
                    ("GET", Some(("UploadStatus", Some(UploadArtifacts)))),
                    ("HEAD", None),
                    ("PUT", Some(("FinishUpload", Some(UploadArtifacts)))),
                    ("POST", None),
                    ("PATCH", Some(("AppendChunk", Some(UploadArtifacts)))),
                    ("DELETE", Some(("CancelUpload", Some(UploadArtifacts)))),
                    ("OPTIONS", None),
                ],
            ),
            (
                "p/r/a/b/tags/list",
                "tag lists",
                [
                    ("GET", Some(("ListTags", Some(DownloadArtifacts)))),
                    ("HEAD", None),
                    ("PUT", None),
                    ("POST", None),
                    ("PATCH", None),
                    ("DELETE", None),
                    ("OPTIONS", None),
                ],
            ),
            (
                &referrers,
                "referrers",
                [
                    ("GET", Some(("Referrers", Some(DownloadArtifacts)))),
                    ("HEAD", None),
                    ("PUT", None),
                    ("POST", None),
                    ("PATCH", None),
                    ("DELETE", None),
                    ("OPTIONS", None),
                ],
            ),
        ];
        for (path, what, rows) in &table {
            for (method, (row_method, expected)) in METHODS.iter().zip(rows) {
                assert_eq!(method.as_str(), *row_method);
                let got = Endpoint::parse(method, path);
                match expected {
                    Some((operation, permission)) => {
                        let endpoint = got.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
                        assert_eq!(name(&endpoint), *operation, "{method} {path}");
                        let requirement = match permission {
                            None => Requirement::Authenticated,
                            Some(RepositoriesList) => {
                                Requirement::Permission(RepositoriesList, Resource::Organization)
                            }
                            Some(p) => Requirement::Permission(*p, images()),
                        };
                        assert_eq!(endpoint.permission(), requirement, "{method} {path}");
                        if let Some(image) = endpoint.image() {
                            assert_eq!(image.image.as_str(), "a/b");
                        }
                    }
                    None => {
                        let refused = got.expect_err(&format!("{method} {path}"));
                        assert_eq!(
                            refused,
                            EndpointError::MethodNotAllowed {
                                method: method.clone(),
                                on: what,
                            }
                        );
                        assert_eq!(
                            refused.to_string(),
                            format!("{method} is not supported on {what}")
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn uploads_without_the_trailing_slash_and_ids_are_kept() {
        let start = Endpoint::parse(&Method::POST, "p/r/img/blobs/uploads").unwrap();
        assert_eq!(name(&start), "StartUpload");
        match Endpoint::parse(&Method::PATCH, "p/r/img/blobs/uploads/abc").unwrap() {
            Endpoint::AppendChunk(path, id) => {
                assert_eq!(path.to_string(), "p/r/img");
                assert_eq!(id, "abc");
            }
            other => panic!("parsed as {other:?}"),
        }
        match Endpoint::parse(&Method::GET, "p/r/a/b/manifests/latest").unwrap() {
            Endpoint::GetManifest(path, reference) => {
                assert_eq!(path.image.as_str(), "a/b");
                assert_eq!(reference, "latest");
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    /// Paths of no endpoint are 404 whatever the method; bad names and
    /// digests are refused whatever the method, before it is looked at.
    #[test]
    fn unknown_and_malformed_paths_whatever_the_method() {
        for method in &METHODS {
            for path in [
                "p/r/a/whatever",
                "p/r/a/blobs",
                "p/r/tags",
                "_catalog/x",
                "x",
            ] {
                assert_eq!(
                    Endpoint::parse(method, path),
                    Err(EndpointError::NotFound),
                    "{method} {path}"
                );
            }
            for path in [
                "p/r/a/../b/manifests/latest",
                "p/R/a/manifests/latest",
                "p/r/manifests/latest",
                "p/r/tags/list",
                "p/r/blobs/uploads/",
            ] {
                assert!(
                    matches!(Endpoint::parse(method, path), Err(EndpointError::Name(_))),
                    "{method} {path}"
                );
            }
            for path in ["p/r/a/blobs/sha256:zz", "p/r/a/referrers/latest"] {
                assert!(
                    matches!(Endpoint::parse(method, path), Err(EndpointError::Digest(_))),
                    "{method} {path}"
                );
            }
        }
    }

    /// A malformed manifest reference is the service's to refuse, after it
    /// has authorized the caller: the endpoint keeps it as sent.
    #[test]
    fn manifest_references_are_kept_as_sent() {
        for reference in [".INVALID_MANIFEST_NAME", "-bad", "sha256:zz", "sha999:00"] {
            let path = format!("p/r/a/manifests/{reference}");
            match Endpoint::parse(&Method::PUT, &path).unwrap() {
                Endpoint::PutManifest(_, got) => assert_eq!(got, reference),
                other => panic!("parsed as {other:?}"),
            }
        }
    }

    #[test]
    fn scopes_follow_the_operation() {
        let scope = |m: Method, p: &str| Endpoint::parse(&m, p).unwrap().scope();
        let d = Digest::of(b"");
        assert_eq!(scope(Method::GET, ""), None);
        assert_eq!(
            scope(Method::GET, "_catalog").as_deref(),
            Some("registry:catalog:*")
        );
        let image = "repository:p/r/a";
        for (m, p, actions) in [
            (Method::GET, "p/r/a/manifests/v1".to_owned(), "pull"),
            (Method::HEAD, format!("p/r/a/blobs/{d}"), "pull"),
            (Method::PUT, "p/r/a/manifests/v1".to_owned(), "pull,push"),
            (Method::DELETE, "p/r/a/manifests/v1".to_owned(), "delete"),
            (Method::DELETE, format!("p/r/a/blobs/{d}"), "delete"),
            (Method::POST, "p/r/a/blobs/uploads/".to_owned(), "pull,push"),
            (
                Method::PATCH,
                "p/r/a/blobs/uploads/x".to_owned(),
                "pull,push",
            ),
            (Method::GET, "p/r/a/tags/list".to_owned(), "pull"),
            (Method::GET, format!("p/r/a/referrers/{d}"), "pull"),
        ] {
            assert_eq!(scope(m, &p), Some(format!("{image}:{actions}")), "{p}");
        }
    }
}
