//! Every OCI error code entrepot sends, provoked by a raw request, with its
//! status; and bad input changes nothing.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use reqwest::Method;
use serde_json::{json, Value};
use support::{
    assert_oci_error, header, random_bytes, raw_http, sha256, Entrepot, SmallImage, OCI_INDEX,
    OCI_MANIFEST,
};

const APP: &str = "default/images/app";

fn server() -> Entrepot {
    let server = Entrepot::start();
    server.create_repository("images");
    server
}

#[test]
fn name_invalid_for_bad_image_paths() {
    let server = server();
    assert_oci_error(
        server.get("/v2/default/Images/app/tags/list"),
        400,
        "NAME_INVALID",
    );
    assert_oci_error(
        server.get("/v2/default/images/App/manifests/latest"),
        400,
        "NAME_INVALID",
    );
    assert_oci_error(
        server.get("/v2/default/images/a___b/manifests/latest"),
        400,
        "NAME_INVALID",
    );
    // A project and repository but no image.
    assert_oci_error(
        server.get("/v2/default/images/manifests/latest"),
        400,
        "NAME_INVALID",
    );
    let response = server
        .request(Method::POST, "/v2/default/images/UP/blobs/uploads/")
        .send()
        .unwrap();
    assert_oci_error(response, 400, "NAME_INVALID");

    // Path tricks, sent byte for byte (HTTP clients would resolve them).
    for path in [
        "/v2/default/images/a/../b/manifests/latest",
        "/v2/default/images/../images/app/manifests/latest",
        "/v2/default/images/./app/tags/list",
    ] {
        let (status, body) = raw_http(&server.addr, "GET", path);
        assert_eq!(status, 400, "{path}: {body}");
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["errors"][0]["code"], "NAME_INVALID", "{path}");
    }
}

#[test]
fn digest_invalid_for_malformed_and_mismatching_digests() {
    let server = server();
    let blob = random_bytes(2048);

    // Malformed digest in the URL.
    assert_oci_error(
        server.get(&format!("/v2/{APP}/blobs/sha256:zz")),
        400,
        "DIGEST_INVALID",
    );
    assert_oci_error(
        server.get(&format!("/v2/{APP}/blobs/md5:abc")),
        400,
        "DIGEST_INVALID",
    );

    // Malformed digest to finish an upload.
    let location = start_upload(&server);
    let response = server
        .request(Method::PUT, &format!("{location}?digest=sha256:not-hex"))
        .body(blob.clone())
        .send()
        .unwrap();
    assert_oci_error(response, 400, "DIGEST_INVALID");
    let response = server
        .request(Method::PUT, &location)
        .body(blob.clone())
        .send()
        .unwrap();
    assert_oci_error(response, 400, "DIGEST_INVALID");

    // Content that does not hash to the announced digest.
    let location = start_upload(&server);
    let wrong = sha256(b"something else");
    let response = server
        .request(Method::PUT, &format!("{location}?digest={wrong}"))
        .header("content-type", "application/octet-stream")
        .body(blob.clone())
        .send()
        .unwrap();
    assert_oci_error(response, 400, "DIGEST_INVALID");
    // Nothing became visible under either digest.
    assert_oci_error(
        server.get(&format!("/v2/{APP}/blobs/{wrong}")),
        404,
        "BLOB_UNKNOWN",
    );
    assert_oci_error(
        server.get(&format!("/v2/{APP}/blobs/{}", sha256(&blob))),
        404,
        "BLOB_UNKNOWN",
    );

    // The same, monolithic.
    let response = server
        .request(
            Method::POST,
            &format!("/v2/{APP}/blobs/uploads/?digest={wrong}"),
        )
        .body(blob.clone())
        .send()
        .unwrap();
    assert_oci_error(response, 400, "DIGEST_INVALID");
    assert_oci_error(
        server.get(&format!("/v2/{APP}/blobs/{wrong}")),
        404,
        "BLOB_UNKNOWN",
    );

    // A manifest pushed by a digest that is not its own.
    let img = SmallImage::random();
    for b in &img.blobs {
        server.push_blob(APP, b);
    }
    let response = server.put_manifest(APP, &sha256(b"other"), OCI_MANIFEST, &img.manifest);
    assert_oci_error(response, 400, "DIGEST_INVALID");
}

fn start_upload(server: &Entrepot) -> String {
    let response = server
        .request(Method::POST, &format!("/v2/{APP}/blobs/uploads/"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    header(&response, "location")
}

#[test]
fn manifest_invalid_for_bad_json_wrong_media_type_and_oversize() {
    let server = server();
    let img = SmallImage::random();
    for b in &img.blobs {
        server.push_blob(APP, b);
    }
    assert_oci_error(
        server.put_manifest(APP, "bad", OCI_MANIFEST, b"{not json"),
        400,
        "MANIFEST_INVALID",
    );
    assert_oci_error(
        server.put_manifest(APP, "bad", OCI_MANIFEST, br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#),
        400,
        "MANIFEST_INVALID",
    );
    assert_oci_error(
        server.put_manifest(APP, "bad", "text/plain", &img.manifest),
        400,
        "MANIFEST_INVALID",
    );
    // Content-Type and the document's mediaType disagree.
    assert_oci_error(
        server.put_manifest(APP, "bad", OCI_INDEX, &img.manifest),
        400,
        "MANIFEST_INVALID",
    );
    let v1 = json!({"schemaVersion": 1, "name": "app", "tag": "bad", "fsLayers": []}).to_string();
    assert_oci_error(
        server.put_manifest(
            APP,
            "bad",
            "application/vnd.docker.distribution.manifest.v1+json",
            v1.as_bytes(),
        ),
        400,
        "MANIFEST_INVALID",
    );

    // Larger than 4 MiB: padded with whitespace so it is otherwise valid JSON.
    let mut huge = img.manifest.clone();
    huge.resize(4 * 1024 * 1024 + 1, b' ');
    let response = server.put_manifest(APP, "bad", OCI_MANIFEST, &huge);
    assert_oci_error(response, 413, "MANIFEST_INVALID");

    // None of it was stored.
    assert_oci_error(
        server.get(&format!("/v2/{APP}/manifests/bad")),
        404,
        "MANIFEST_UNKNOWN",
    );
    // While the same manifest, correctly sent, is accepted.
    let response = server.put_manifest(APP, "good", OCI_MANIFEST, &img.manifest);
    assert_eq!(response.status(), 201);
}

#[test]
fn manifest_blob_unknown_when_references_are_missing() {
    let server = server();
    let img = SmallImage::random();
    // Only the config: the layer is missing.
    server.push_blob(APP, &img.blobs[1]);
    let body = assert_oci_error(
        server.put_manifest(APP, "1.0", OCI_MANIFEST, &img.manifest),
        400,
        "MANIFEST_BLOB_UNKNOWN",
    );
    assert!(body.to_string().contains(&img.layer_digest()), "{body}");

    // An index whose child manifest is not in the image.
    let index = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": img.digest, "size": img.manifest.len()}],
    })
    .to_string();
    assert_oci_error(
        server.put_manifest(APP, "multi", OCI_INDEX, index.as_bytes()),
        400,
        "MANIFEST_BLOB_UNKNOWN",
    );
    assert_oci_error(
        server.get(&format!("/v2/{APP}/manifests/1.0")),
        404,
        "MANIFEST_UNKNOWN",
    );
}

#[test]
fn blob_unknown_manifest_unknown_and_upload_unknown() {
    let server = server();
    server.push_small_image(APP, "1.0");
    let absent = sha256(b"absent");
    assert_oci_error(
        server.get(&format!("/v2/{APP}/blobs/{absent}")),
        404,
        "BLOB_UNKNOWN",
    );
    let head = server
        .request(Method::HEAD, &format!("/v2/{APP}/blobs/{absent}"))
        .send()
        .unwrap();
    assert_eq!(head.status(), 404);
    let response = server
        .request(Method::DELETE, &format!("/v2/{APP}/blobs/{absent}"))
        .send()
        .unwrap();
    assert_oci_error(response, 404, "BLOB_UNKNOWN");

    assert_oci_error(
        server.get(&format!("/v2/{APP}/manifests/nope")),
        404,
        "MANIFEST_UNKNOWN",
    );
    assert_oci_error(
        server.get(&format!("/v2/{APP}/manifests/{absent}")),
        404,
        "MANIFEST_UNKNOWN",
    );
    let head = server
        .request(Method::HEAD, &format!("/v2/{APP}/manifests/nope"))
        .send()
        .unwrap();
    assert_eq!(head.status(), 404);
    let response = server
        .request(Method::DELETE, &format!("/v2/{APP}/manifests/nope"))
        .send()
        .unwrap();
    assert_oci_error(response, 404, "MANIFEST_UNKNOWN");

    let unknown = "/v2/default/images/app/blobs/uploads/0b0c5a3e-9d8f-4b4e-8a55-5c1f1b1f1f1f";
    assert_oci_error(server.get(unknown), 404, "BLOB_UPLOAD_UNKNOWN");
    let response = server
        .request(Method::PATCH, unknown)
        .body(b"x".to_vec())
        .send()
        .unwrap();
    assert_oci_error(response, 404, "BLOB_UPLOAD_UNKNOWN");
    let response = server
        .request(Method::PUT, &format!("{unknown}?digest={absent}"))
        .send()
        .unwrap();
    assert_oci_error(response, 404, "BLOB_UPLOAD_UNKNOWN");
    assert_oci_error(
        server.get("/v2/default/images/app/blobs/uploads/not-a-session"),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    );

    // A session belongs to the image it was opened for.
    let location = start_upload(&server);
    let id = location.rsplit('/').next().unwrap();
    assert_oci_error(
        server.get(&format!("/v2/default/images/other/blobs/uploads/{id}")),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    );
}

#[test]
fn unsupported_methods() {
    let server = server();
    let img = server.push_small_image(APP, "1.0");
    let cases = [
        (Method::POST, format!("/v2/{APP}/manifests/1.0")),
        (Method::PATCH, format!("/v2/{APP}/manifests/1.0")),
        (
            Method::PUT,
            format!("/v2/{APP}/blobs/{}", img.layer_digest()),
        ),
        (Method::DELETE, format!("/v2/{APP}/tags/list")),
        (Method::PUT, "/v2/_catalog".to_owned()),
        (Method::POST, format!("/v2/{APP}/referrers/{}", img.digest)),
    ];
    for (method, path) in cases {
        let response = server.request(method.clone(), &path).send().unwrap();
        let body = assert_oci_error(response, 405, "UNSUPPORTED");
        assert!(
            body.to_string().contains(method.as_str()),
            "{method} {path}: {body}"
        );
    }
    // Nothing changed.
    assert_eq!(
        server.get(&format!("/v2/{APP}/manifests/1.0")).status(),
        200
    );
}

#[test]
fn unsatisfiable_blob_range_is_416() {
    let server = server();
    let blob = random_bytes(1024);
    let digest = server.push_blob(APP, &blob);
    for range in ["bytes=5000-6000", "bytes=1024-", "bytes=abc"] {
        let response = server
            .request(Method::GET, &format!("/v2/{APP}/blobs/{digest}"))
            .header("range", range)
            .send()
            .unwrap();
        assert_eq!(response.status(), 416, "{range}");
        assert_eq!(
            header(&response, "content-range"),
            "bytes */1024",
            "{range}"
        );
    }
    // A satisfiable suffix range still works.
    let response = server
        .request(Method::GET, &format!("/v2/{APP}/blobs/{digest}"))
        .header("range", "bytes=-10")
        .send()
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().unwrap().as_ref(), &blob[1014..]);
}
