//! `sha512:` content through a remote repository: an upstream (another
//! entrepot's hosted repository) holds blobs and a manifest named by sha512;
//! pulled through the cache by those digests they are verified by them,
//! cached, and served from the cache once the upstream is gone.

#![allow(clippy::unwrap_used)]

mod support;

use reqwest::Method;
use serde_json::json;
use sha2::{Digest as _, Sha512};
use support::*;

fn sha512(bytes: &[u8]) -> String {
    format!("sha512:{}", hex::encode(Sha512::digest(bytes)))
}

const UPSTREAM_IMAGE: &str = "default/images/app";
/// The image through the remote repository `hub`.
const IMAGE: &str = "default/hub/default/images/app";

fn get(server: &Entrepot, path: &str) -> reqwest::blocking::Response {
    server
        .request(Method::GET, path)
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap()
}

#[test]
fn sha512_blobs_and_manifests_pass_through_and_are_cached() {
    let upstream = Entrepot::start();
    upstream.create_repository("images");
    upstream.grant(
        "projects/default/repositories/images",
        "allUsers",
        "roles/artifactregistry.reader",
    );
    let layer = random_bytes(3000);
    let config = br#"{"architecture":"amd64","os":"linux"}"#.to_vec();
    for blob in [&layer, &config] {
        let pushed = upstream
            .request(
                Method::POST,
                &format!(
                    "/v2/{UPSTREAM_IMAGE}/blobs/uploads/?digest={}",
                    sha512(blob)
                ),
            )
            .body(blob.clone())
            .send()
            .unwrap();
        assert_eq!(pushed.status(), 201, "{}", pushed.text().unwrap());
    }
    let manifest = json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha512(&config), "size": config.len()},
        "layers": [{"mediaType": LAYER_TAR, "digest": sha512(&layer), "size": layer.len()}],
    })
    .to_string()
    .into_bytes();
    let digest = sha512(&manifest);
    let pushed = upstream.put_manifest(UPSTREAM_IMAGE, &digest, OCI_MANIFEST, &manifest);
    assert_eq!(pushed.status(), 201, "{}", pushed.text().unwrap());

    let server = Entrepot::start();
    server.create_remote_docker("hub", &format!("http://{}", upstream.addr), json!({}));
    let got = get(&server, &format!("/v2/{IMAGE}/manifests/{digest}"));
    assert_eq!(got.status(), 200, "{}", server.log_text());
    assert_eq!(header(&got, "docker-content-digest"), digest);
    assert_eq!(header(&got, "x-cache"), "MISS");
    assert_eq!(got.bytes().unwrap().as_ref(), manifest.as_slice());
    for blob in [&layer, &config] {
        let got = get(&server, &format!("/v2/{IMAGE}/blobs/{}", sha512(blob)));
        assert_eq!(got.status(), 200, "{}", server.log_text());
        assert_eq!(header(&got, "docker-content-digest"), sha512(blob));
        assert_eq!(got.bytes().unwrap().as_ref(), blob.as_slice());
    }

    // Cached under its sha512: served with the upstream gone.
    upstream.stop();
    let again = get(&server, &format!("/v2/{IMAGE}/manifests/{digest}"));
    assert_eq!(again.status(), 200);
    assert_eq!(header(&again, "x-cache"), "HIT");
    let head = server
        .request(
            Method::HEAD,
            &format!("/v2/{IMAGE}/blobs/{}", sha512(&layer)),
        )
        .send()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "x-cache"), "HIT");
    assert_eq!(header(&head, "content-length"), layer.len().to_string());
    let blob = get(&server, &format!("/v2/{IMAGE}/blobs/{}", sha512(&layer)));
    assert_eq!(header(&blob, "x-cache"), "HIT");
    assert_eq!(blob.bytes().unwrap().as_ref(), layer.as_slice());
}

#[test]
fn sha512_content_the_upstream_does_not_have_is_unknown_and_other_algorithms_invalid() {
    let upstream = Entrepot::start();
    upstream.create_repository("images");
    upstream.grant(
        "projects/default/repositories/images",
        "allUsers",
        "roles/artifactregistry.reader",
    );
    let server = Entrepot::start();
    server.create_remote_docker("hub", &format!("http://{}", upstream.addr), json!({}));
    let missing = sha512(b"not there");
    assert_oci_error(
        get(&server, &format!("/v2/{IMAGE}/blobs/{missing}")),
        404,
        "BLOB_UNKNOWN",
    );
    assert_oci_error(
        get(&server, &format!("/v2/{IMAGE}/manifests/{missing}")),
        404,
        "MANIFEST_UNKNOWN",
    );
    let md5 = "md5:0123456789abcdef0123456789abcdef";
    assert_oci_error(
        get(&server, &format!("/v2/{IMAGE}/blobs/{md5}")),
        400,
        "DIGEST_INVALID",
    );
}
