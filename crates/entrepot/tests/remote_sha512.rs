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

/// An upstream entrepot whose public repository `images` holds an image
/// named by sha512 only, tagged `tag` when given (pushed by digest with
/// `?tag=`): the server, the manifest, its digest, the layer and config.
fn sha512_upstream(tag: Option<&str>) -> (Entrepot, Vec<u8>, String, Vec<u8>, Vec<u8>) {
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
    let reference = match tag {
        Some(tag) => format!("{digest}?tag={tag}"),
        None => digest.clone(),
    };
    let pushed = upstream.put_manifest(UPSTREAM_IMAGE, &reference, OCI_MANIFEST, &manifest);
    assert_eq!(pushed.status(), 201, "{}", pushed.text().unwrap());
    (upstream, manifest, digest, layer, config)
}

#[test]
fn sha512_blobs_and_manifests_pass_through_and_are_cached() {
    let (upstream, manifest, digest, layer, config) = sha512_upstream(None);
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
fn a_tag_the_upstream_names_by_sha512_is_served_under_that_digest() {
    let (upstream, manifest, digest, _, _) = sha512_upstream(Some("1.0"));
    let announced = get(&upstream, &format!("/v2/{UPSTREAM_IMAGE}/manifests/1.0"));
    assert_eq!(header(&announced, "docker-content-digest"), digest);

    let server = Entrepot::start();
    // Every pull by tag asks the upstream again.
    server.create_remote_docker(
        "hub",
        &format!("http://{}", upstream.addr),
        json!({ "tagTtlSecs": 0 }),
    );
    let by_tag = format!("/v2/{IMAGE}/manifests/1.0");
    let got = get(&server, &by_tag);
    assert_eq!(got.status(), 200, "{}", server.log_text());
    assert_eq!(header(&got, "x-cache"), "MISS");
    assert_eq!(header(&got, "docker-content-digest"), digest);
    assert_eq!(got.bytes().unwrap().as_ref(), manifest.as_slice());
    // Revalidated by a HEAD whose digest is the sha512 kept.
    let head = server
        .request(Method::HEAD, &by_tag)
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "x-cache"), "REVALIDATED");
    assert_eq!(header(&head, "docker-content-digest"), digest);
    // The same manifest by its digest, from the cache.
    let by_digest = get(&server, &format!("/v2/{IMAGE}/manifests/{digest}"));
    assert_eq!(header(&by_digest, "x-cache"), "HIT");
    // The tag lists the digest in the refresh report too.
    let out = server.cli_ok(&["repositories", "refresh", "hub", "default/images/app:1.0"]);
    assert!(out.contains(&format!("UNCHANGED  {digest}")), "{out}");

    upstream.stop();
    let stale = get(&server, &by_tag);
    assert_eq!(stale.status(), 200);
    assert_eq!(header(&stale, "x-cache"), "STALE");
    assert_eq!(header(&stale, "docker-content-digest"), digest);
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
