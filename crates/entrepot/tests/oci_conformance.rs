//! The edges of the OCI distribution spec, checked the way its conformance
//! suite checks them, against the real binary over HTTP: malformed
//! references, sha512 digests, a closing PUT out of order, mounts without
//! `from=`, `?tag=` pushes, foreign layers and index children.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use reqwest::Method;
use serde_json::json;
use sha2::{Digest as _, Sha512};
use support::*;

const APP: &str = "default/images/app";

fn server() -> Entrepot {
    let server = Entrepot::start();
    server.create_repository("images");
    server
}

fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(bytes)))
}

fn start_upload(server: &Entrepot, image: &str) -> String {
    let response = server
        .request(Method::POST, &format!("/v2/{image}/blobs/uploads/"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    header(&response, "location")
}

#[test]
fn malformed_references_are_unknown_on_reads_and_invalid_on_push_after_authentication() {
    let server = server();
    let path = format!("/v2/{APP}/manifests/.INVALID_MANIFEST_NAME");
    let anonymous = server.bare_request(Method::GET, &path).send().unwrap();
    assert_eq!(anonymous.status(), 401);
    assert!(anonymous.headers().get("www-authenticate").is_some());
    assert_oci_error(server.get(&path), 404, "MANIFEST_UNKNOWN");
    let head = server.request(Method::HEAD, &path).send().unwrap();
    assert_eq!(head.status(), 404);
    assert_oci_error(
        server.request(Method::DELETE, &path).send().unwrap(),
        404,
        "MANIFEST_UNKNOWN",
    );
    let img = SmallImage::random();
    for blob in &img.blobs {
        server.push_blob(APP, blob);
    }
    assert_oci_error(
        server.put_manifest(APP, ".INVALID_MANIFEST_NAME", OCI_MANIFEST, &img.manifest),
        400,
        "TAG_INVALID",
    );
    assert_oci_error(
        server.get(&format!("/v2/{APP}/manifests/sha384:00")),
        400,
        "DIGEST_INVALID",
    );
}

#[test]
fn a_closing_put_out_of_order_is_416_and_the_upload_resumes() {
    let server = server();
    let blob = random_bytes(100);
    let location = start_upload(&server, APP);
    let first = server
        .request(Method::PATCH, &location)
        .header("content-range", "0-49")
        .header("content-length", "50")
        .body(blob[..50].to_vec())
        .send()
        .unwrap();
    assert_eq!(first.status(), 202);
    let digest = sha256(&blob);
    let wrong = server
        .request(Method::PUT, &format!("{location}?digest={digest}"))
        .header("content-range", "60-99")
        .header("content-length", "40")
        .body(blob[60..].to_vec())
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 416);
    assert_eq!(header(&wrong, "range"), "0-49");
    assert_eq!(header(&wrong, "location"), location);
    let status = server.request(Method::GET, &location).send().unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(header(&status, "range"), "0-49");
    let done = server
        .request(Method::PUT, &format!("{location}?digest={digest}"))
        .header("content-range", "50-99")
        .header("content-length", "50")
        .body(blob[50..].to_vec())
        .send()
        .unwrap();
    assert_eq!(done.status(), 201, "{}", done.text().unwrap());
    let got = server.get(&format!("/v2/{APP}/blobs/{digest}"));
    assert_eq!(got.bytes().unwrap().as_ref(), blob.as_slice());
}

#[test]
fn sha512_blobs_and_manifests_push_pull_mount_and_delete() {
    let server = server();
    let layer = random_bytes(2000);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    for blob in [&layer, &config] {
        let digest = sha512(blob);
        let response = server
            .request(
                Method::POST,
                &format!("/v2/{APP}/blobs/uploads/?digest={digest}"),
            )
            .body(blob.clone())
            .send()
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().unwrap());
        assert_eq!(header(&response, "docker-content-digest"), digest);
        let head = server
            .request(Method::HEAD, &format!("/v2/{APP}/blobs/{digest}"))
            .send()
            .unwrap();
        assert_eq!(head.status(), 200);
        assert_eq!(header(&head, "docker-content-digest"), digest);
    }
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha512(&config), "size": config.len()},
        "layers": [{"mediaType": LAYER_TAR, "digest": sha512(&layer), "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let digest = sha512(&manifest);
    let pushed = server.put_manifest(APP, &digest, OCI_MANIFEST, &manifest);
    assert_eq!(pushed.status(), 201, "{}", pushed.text().unwrap());
    assert_eq!(header(&pushed, "docker-content-digest"), digest);
    let got = server.get(&format!("/v2/{APP}/manifests/{digest}"));
    assert_eq!(got.status(), 200);
    assert_eq!(header(&got, "docker-content-digest"), digest);
    assert_eq!(got.bytes().unwrap().as_ref(), manifest.as_slice());

    let mounted = server
        .request(
            Method::POST,
            &format!(
                "/v2/default/images/other/blobs/uploads/?mount={}&from={APP}",
                sha512(&layer)
            ),
        )
        .send()
        .unwrap();
    assert_eq!(mounted.status(), 201);

    // A whole-blob push whose bytes do not match the sha512 is refused.
    let response = server
        .request(
            Method::POST,
            &format!("/v2/{APP}/blobs/uploads/?digest={}", sha512(b"other")),
        )
        .body(layer.clone())
        .send()
        .unwrap();
    assert_oci_error(response, 400, "DIGEST_INVALID");

    let deleted = server
        .request(Method::DELETE, &format!("/v2/{APP}/manifests/{digest}"))
        .send()
        .unwrap();
    assert_eq!(deleted.status(), 202);
    assert_oci_error(
        server.get(&format!("/v2/{APP}/manifests/{digest}")),
        404,
        "MANIFEST_UNKNOWN",
    );
}

#[test]
fn a_mount_without_from_finds_a_readable_repository_of_the_project() {
    let server = server();
    server.create_repository("private");
    let blob = server.push_blob("default/private/app", &random_bytes(500));
    let reader = server.user_with_token("reader@example.com", false);
    server.grant(
        "projects/default/repositories/images",
        "user:reader@example.com",
        "roles/artifactregistry.writer",
    );
    // The reader may not pull `private`: no mount, a session.
    let response = server
        .bare_request(
            Method::POST,
            &format!("/v2/default/images/app/blobs/uploads/?mount={blob}"),
        )
        .basic_auth("reader@example.com", Some(&reader))
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    // The admin may: mounted.
    let response = server
        .request(
            Method::POST,
            &format!("/v2/default/images/app/blobs/uploads/?mount={blob}"),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(
        header(&response, "location"),
        format!("/v2/default/images/app/blobs/{blob}")
    );
    // An unknown blob: a session.
    let response = server
        .request(
            Method::POST,
            &format!(
                "/v2/default/images/app/blobs/uploads/?mount={}",
                sha256(b"hello world")
            ),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
}

#[test]
fn a_push_by_digest_takes_every_tag_and_foreign_layers_need_not_be_here() {
    let server = server();
    let config = br#"{"architecture":"amd64","os":"windows"}"#.to_vec();
    server.push_blob(APP, &config);
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(&config), "size": config.len()},
        "layers": [
            {"mediaType": "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
             "digest": sha256(b"foreign"), "size": 7},
            {"mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
             "digest": sha256(b"nondistributable"), "size": 16},
            {"mediaType": LAYER_GZIP, "digest": sha256(b"elsewhere"), "size": 9,
             "urls": ["https://example.com/layer"]},
        ],
    })
    .to_string()
    .into_bytes();
    let digest = sha256(&manifest);
    let pushed = server
        .request(
            Method::PUT,
            &format!("/v2/{APP}/manifests/{digest}?tag=1.2.3&tag=1.2&tag=latest"),
        )
        .header("content-type", OCI_MANIFEST)
        .body(manifest.clone())
        .send()
        .unwrap();
    assert_eq!(pushed.status(), 201, "{}", pushed.text().unwrap());
    let tags: Vec<&str> = pushed
        .headers()
        .get_all("oci-tag")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(tags, ["1.2.3", "1.2", "latest"]);
    for tag in ["1.2.3", "1.2", "latest"] {
        let got = server.get(&format!("/v2/{APP}/manifests/{tag}"));
        assert_eq!(header(&got, "docker-content-digest"), digest);
    }
    let bad = server
        .request(
            Method::PUT,
            &format!("/v2/{APP}/manifests/{digest}?tag=-bad"),
        )
        .header("content-type", OCI_MANIFEST)
        .body(manifest)
        .send()
        .unwrap();
    assert_oci_error(bad, 400, "TAG_INVALID");
}

#[test]
fn a_manifest_an_index_references_is_deleted_only_with_force() {
    let server = server();
    let img = server.push_small_image(APP, "amd64");
    let index = json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": img.digest, "size": img.manifest.len()}],
    })
    .to_string()
    .into_bytes();
    let response = server.put_manifest(APP, "multi", OCI_INDEX, &index);
    assert_eq!(response.status(), 201);
    let index_digest = sha256(&index);
    let path = format!("/v2/{APP}/manifests/{}", img.digest);
    let refused = assert_oci_error(
        server.request(Method::DELETE, &path).send().unwrap(),
        403,
        "DENIED",
    );
    let message = refused["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&index_digest), "{message}");
    assert!(message.contains("force=true"), "{message}");
    assert_eq!(server.get(&path).status(), 200);
    let forced = server
        .request(Method::DELETE, &format!("{path}?force=true"))
        .send()
        .unwrap();
    assert_eq!(forced.status(), 202);
    assert_eq!(server.get(&path).status(), 404);
}
