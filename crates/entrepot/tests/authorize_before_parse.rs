//! A request that is both malformed and not allowed is answered as not
//! allowed: an anonymous caller gets the 401 challenge, a caller without the
//! permission 403, and only an authorized caller learns what is wrong with
//! the request (a bad page size, digest, chunk range or JSON body).

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use reqwest::blocking::{RequestBuilder, Response};
use reqwest::Method;
use serde_json::json;
use support::{assert_api_error, assert_oci_error, header, Entrepot};

const APP: &str = "/v2/default/images/app";
const READER: &str = "reader@example.com";
const STRANGER: &str = "stranger@example.com";

/// The registry with a Docker repository `images` that `READER` may pull
/// from, a Python repository `hosted` that `READER` may read, and
/// `STRANGER`, who may do nothing; their tokens.
struct Registry {
    server: Entrepot,
    reader: String,
    stranger: String,
}

impl Registry {
    fn start() -> Registry {
        let server = Entrepot::start();
        server.create_repository("images");
        server.create_python("hosted", None, json!({}));
        let reader = server.user_with_token(READER, false);
        let stranger = server.user_with_token(STRANGER, false);
        for repo in ["images", "hosted"] {
            server.grant(
                &format!("projects/default/repositories/{repo}"),
                &format!("user:{READER}"),
                "roles/artifactregistry.reader",
            );
        }
        Registry {
            server,
            reader,
            stranger,
        }
    }

    fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.server.bare_request(method, path)
    }

    fn reader(&self, method: Method, path: &str) -> RequestBuilder {
        self.server
            .bare_request(method, path)
            .basic_auth(READER, Some(&self.reader))
    }

    fn stranger(&self, method: Method, path: &str) -> RequestBuilder {
        self.server
            .bare_request(method, path)
            .basic_auth(STRANGER, Some(&self.stranger))
    }

    fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.server.request(method, path)
    }

    /// An upload session opened by the admin; its id.
    fn session(&self) -> String {
        let response = self
            .admin(Method::POST, &format!("{APP}/blobs/uploads/"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 202);
        let location = header(&response, "location");
        location.rsplit('/').next().unwrap().to_owned()
    }
}

/// A 401 with the registry's challenge, not the request's parse error.
fn assert_challenged(response: Response) {
    let challenge = header(&response, "www-authenticate");
    assert!(challenge.starts_with("Bearer realm="), "{challenge}");
    assert_oci_error(response, 401, "UNAUTHORIZED");
}

fn send(request: RequestBuilder) -> Response {
    request.send().unwrap()
}

#[test]
fn a_bad_page_size_is_reported_only_to_a_caller_who_may_list() {
    let r = Registry::start();
    let catalog = "/v2/_catalog?n=many";
    assert_challenged(send(r.anonymous(Method::GET, catalog)));
    // A repository reader may not list the installation's catalog.
    assert_oci_error(send(r.reader(Method::GET, catalog)), 403, "DENIED");
    assert_oci_error(
        send(r.admin(Method::GET, catalog)),
        400,
        "PAGINATION_NUMBER_INVALID",
    );

    let tags = format!("{APP}/tags/list?n=-1");
    assert_challenged(send(r.anonymous(Method::GET, &tags)));
    assert_oci_error(send(r.stranger(Method::GET, &tags)), 403, "DENIED");
    assert_oci_error(
        send(r.reader(Method::GET, &tags)),
        400,
        "PAGINATION_NUMBER_INVALID",
    );
}

#[test]
fn a_bad_digest_of_a_whole_blob_push_is_reported_only_to_a_writer() {
    let r = Registry::start();
    let path = format!("{APP}/blobs/uploads/?digest=sha256:nothex");
    let push = |request: RequestBuilder| send(request.body("layer"));
    assert_challenged(push(r.anonymous(Method::POST, &path)));
    assert_oci_error(push(r.reader(Method::POST, &path)), 403, "DENIED");
    assert_oci_error(push(r.admin(Method::POST, &path)), 400, "DIGEST_INVALID");
}

#[test]
fn a_bad_or_missing_digest_at_the_end_of_an_upload_is_reported_only_to_a_writer() {
    let r = Registry::start();
    let id = r.session();
    for query in ["?digest=md5:abc", ""] {
        let path = format!("{APP}/blobs/uploads/{id}{query}");
        assert_challenged(send(r.anonymous(Method::PUT, &path)));
        assert_oci_error(send(r.reader(Method::PUT, &path)), 403, "DENIED");
        assert_oci_error(send(r.admin(Method::PUT, &path)), 400, "DIGEST_INVALID");
    }
}

#[test]
fn a_bad_chunk_range_is_reported_only_to_a_writer() {
    let r = Registry::start();
    let id = r.session();
    let path = format!("{APP}/blobs/uploads/{id}");
    // Not a range at all, and a range of ten bytes on a body of three.
    for range in ["all of it", "0-9"] {
        let chunk = |request: RequestBuilder| {
            send(
                request
                    .header("content-range", range)
                    .header("content-type", "application/octet-stream")
                    .body("abc"),
            )
        };
        assert_challenged(chunk(r.anonymous(Method::PATCH, &path)));
        assert_oci_error(chunk(r.reader(Method::PATCH, &path)), 403, "DENIED");
        assert_oci_error(chunk(r.admin(Method::PATCH, &path)), 416, "RANGE_INVALID");
    }
    // Nothing was appended by any of them.
    let status = send(r.admin(Method::GET, &path));
    assert_eq!(status.status(), 204);
    assert_eq!(header(&status, "range"), "0-0");
}

#[test]
fn a_bad_yank_body_is_reported_only_to_a_caller_who_may_yank() {
    let r = Registry::start();
    let path = "/v1/projects/default/repositories/hosted/pythonPackages/tiny-lib/versions/1.0:yank";
    let yank = |request: RequestBuilder| {
        send(
            request
                .header("content-type", "application/json")
                .body("{not json"),
        )
    };
    assert_api_error(
        yank(r.anonymous(Method::POST, path)),
        401,
        "UNAUTHENTICATED",
    );
    // Reading the repository is not enough to yank from it.
    let reader = r
        .server
        .bare_request(Method::POST, path)
        .bearer_auth(&r.reader);
    assert_api_error(yank(reader), 403, "PERMISSION_DENIED");
    let message = assert_api_error(yank(r.admin(Method::POST, path)), 400, "INVALID_ARGUMENT");
    assert!(message.contains("bad request body"), "{message}");
}
