//! The OCI distribution protocol spoken by hand: chunked uploads, mounts, tag
//! and catalog pagination, deletion, referrers and upload expiry.

#![allow(missing_docs, clippy::unwrap_used)]

mod support;

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use support::{
    assert_oci_error, eventually, header, next_link, query_of, random_bytes, sha256, Entrepot,
    SmallImage, OCI_INDEX, OCI_MANIFEST,
};

const APP: &str = "default/images/app";

fn with_digest(location: &str, digest: &str) -> String {
    let sep = if location.contains('?') { '&' } else { '?' };
    format!("{location}{sep}digest={digest}")
}

fn start_upload(server: &Entrepot, image: &str) -> String {
    let response = server
        .request(Method::POST, &format!("/v2/{image}/blobs/uploads/"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().unwrap());
    let location = header(&response, "location");
    assert!(
        location.starts_with(&format!("/v2/{image}/blobs/uploads/")),
        "{location}"
    );
    assert!(!header(&response, "docker-upload-uuid").is_empty());
    location
}

fn patch(
    server: &Entrepot,
    location: &str,
    start: usize,
    chunk: &[u8],
) -> reqwest::blocking::Response {
    server
        .request(Method::PATCH, location)
        .header("content-type", "application/octet-stream")
        .header(
            "content-range",
            format!("{start}-{}", start + chunk.len() - 1),
        )
        .body(chunk.to_vec())
        .send()
        .unwrap()
}

#[test]
fn chunked_upload_keeps_range_bookkeeping_and_refuses_out_of_order_chunks() {
    let server = Entrepot::start();
    server.create_repository("images");
    let blob = random_bytes(300_000);
    let digest = sha256(&blob);
    let mut location = start_upload(&server, APP);

    let mut offset = 0;
    for size in [100_000, 120_000] {
        let response = patch(&server, &location, offset, &blob[offset..offset + size]);
        assert_eq!(response.status(), 202, "{}", response.text().unwrap());
        offset += size;
        assert_eq!(header(&response, "range"), format!("0-{}", offset - 1));
        location = header(&response, "location");
    }

    // A chunk that does not start where the upload ends is refused with 416,
    // and the Range header tells where to resume.
    let response = patch(
        &server,
        &location,
        offset + 5000,
        &blob[offset..offset + 1000],
    );
    assert_eq!(response.status(), 416);
    assert_eq!(header(&response, "range"), format!("0-{}", offset - 1));
    let response = patch(&server, &location, 0, &blob[..1000]);
    assert_eq!(response.status(), 416);

    // The session still stands where it was.
    let status = server.request(Method::GET, &location).send().unwrap();
    assert_eq!(status.status(), 204);
    assert_eq!(header(&status, "range"), format!("0-{}", offset - 1));
    assert!(header(&status, "location").ends_with(location.rsplit('/').next().unwrap()));

    // Third chunk by PATCH, the rest with the closing PUT.
    let response = patch(&server, &location, offset, &blob[offset..offset + 50_000]);
    assert_eq!(response.status(), 202);
    offset += 50_000;
    let location = header(&response, "location");
    let response = server
        .request(Method::PUT, &with_digest(&location, &digest))
        .header("content-type", "application/octet-stream")
        .header("content-range", format!("{offset}-{}", blob.len() - 1))
        .body(blob[offset..].to_vec())
        .send()
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
    assert_eq!(
        header(&response, "location"),
        format!("/v2/{APP}/blobs/{digest}")
    );
    assert_eq!(header(&response, "docker-content-digest"), digest);

    let got = server.get(&format!("/v2/{APP}/blobs/{digest}"));
    assert_eq!(got.status(), 200);
    assert_eq!(header(&got, "docker-content-digest"), digest);
    assert_eq!(got.bytes().unwrap().as_ref(), blob.as_slice());

    let head = server
        .request(Method::HEAD, &format!("/v2/{APP}/blobs/{digest}"))
        .send()
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(header(&head, "content-length"), blob.len().to_string());

    let part = server
        .request(Method::GET, &format!("/v2/{APP}/blobs/{digest}"))
        .header("range", "bytes=1000-1999")
        .send()
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 1000-1999/{}", blob.len())
    );
    assert_eq!(part.bytes().unwrap().as_ref(), &blob[1000..2000]);

    // The finished session is gone.
    assert_oci_error(
        server.request(Method::GET, &location).send().unwrap(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    );
}

#[test]
fn upload_finished_by_put_without_patches_and_cancelled_upload() {
    let server = Entrepot::start();
    server.create_repository("images");
    let blob = random_bytes(4096);
    let digest = sha256(&blob);
    let location = start_upload(&server, APP);
    let response = server
        .request(Method::PUT, &with_digest(&location, &digest))
        .header("content-type", "application/octet-stream")
        .body(blob.clone())
        .send()
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
    assert_eq!(
        server
            .get(&format!("/v2/{APP}/blobs/{digest}"))
            .bytes()
            .unwrap()
            .as_ref(),
        blob.as_slice()
    );

    let location = start_upload(&server, APP);
    assert_eq!(patch(&server, &location, 0, b"abandoned").status(), 202);
    let response = server.request(Method::DELETE, &location).send().unwrap();
    assert_eq!(response.status(), 204);
    assert_oci_error(
        server.request(Method::GET, &location).send().unwrap(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    );
}

#[test]
fn blobs_mount_across_repositories_of_a_project() {
    let server = Entrepot::start();
    server.create_repository("images");
    server.create_repository("mirror");
    let blob = random_bytes(10_000);
    let digest = server.push_blob(APP, &blob);

    let response = server
        .request(
            Method::POST,
            &format!("/v2/default/mirror/copy/blobs/uploads/?mount={digest}&from={APP}"),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
    assert_eq!(
        header(&response, "location"),
        format!("/v2/default/mirror/copy/blobs/{digest}")
    );
    assert_eq!(header(&response, "docker-content-digest"), digest);
    let got = server.get(&format!("/v2/default/mirror/copy/blobs/{digest}"));
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().unwrap().as_ref(), blob.as_slice());

    // Within the same repository, to another image.
    let response = server
        .request(
            Method::POST,
            &format!("/v2/default/images/other/blobs/uploads/?mount={digest}&from={APP}"),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);

    // The source does not have this blob: an ordinary upload session instead.
    let absent = sha256(b"not pushed anywhere");
    let response = server
        .request(
            Method::POST,
            &format!("/v2/default/mirror/copy/blobs/uploads/?mount={absent}&from={APP}"),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    let location = header(&response, "location");
    assert!(
        location.starts_with("/v2/default/mirror/copy/blobs/uploads/"),
        "{location}"
    );
    assert_eq!(
        server
            .request(Method::GET, &location)
            .send()
            .unwrap()
            .status(),
        204
    );
    // And the blob did not appear.
    assert_oci_error(
        server.get(&format!("/v2/default/mirror/copy/blobs/{absent}")),
        404,
        "BLOB_UNKNOWN",
    );
}

#[test]
fn tags_and_catalog_paginate_with_n_last_and_link() {
    let server = Entrepot::start();
    server.create_repository("images");
    let img = SmallImage::random();
    let tags = ["1.0", "1.1", "2.0", "latest", "stable"];
    for tag in tags {
        server.push_image(APP, tag, &img);
    }
    server.push_small_image("default/images/zeta", "1");
    server.push_small_image("default/images/alpha", "1");

    let all: Value = server.get(&format!("/v2/{APP}/tags/list")).json().unwrap();
    assert_eq!(all, json!({"name": APP, "tags": tags}));

    let mut seen = Vec::new();
    let mut url = format!("/v2/{APP}/tags/list?n=2");
    let mut pages = 0;
    loop {
        let response = server.get(&url);
        assert_eq!(response.status(), 200);
        let link = next_link(&response);
        let page: Value = response.json().unwrap();
        let names: Vec<String> = serde_json::from_value(page["tags"].clone()).unwrap();
        assert!(names.len() <= 2);
        seen.extend(names);
        pages += 1;
        match link {
            Some(next) => {
                let q = query_of(&next);
                assert_eq!(q.get("n").map(String::as_str), Some("2"));
                assert_eq!(q.get("last"), seen.last());
                url = next;
            }
            None => break,
        }
    }
    assert_eq!(seen, tags);
    assert_eq!(pages, 3);

    let page: Value = server
        .get(&format!("/v2/{APP}/tags/list?n=10&last=2.0"))
        .json()
        .unwrap();
    assert_eq!(page["tags"], json!(["latest", "stable"]));

    let catalog = server.get("/v2/_catalog");
    assert_eq!(catalog.status(), 200);
    let catalog: Value = catalog.json().unwrap();
    assert_eq!(
        catalog["repositories"],
        json!([
            "default/images/alpha",
            "default/images/app",
            "default/images/zeta"
        ])
    );
    let first = server.get("/v2/_catalog?n=2");
    let link = next_link(&first).expect("a Link header on a full catalog page");
    let first: Value = first.json().unwrap();
    assert_eq!(
        first["repositories"],
        json!(["default/images/alpha", "default/images/app"])
    );
    let rest: Value = server.get(&link).json().unwrap();
    assert_eq!(rest["repositories"], json!(["default/images/zeta"]));
}

#[test]
fn manifests_tags_and_blobs_can_be_deleted_and_pushed_again() {
    let server = Entrepot::start();
    server.create_repository("images");
    let img = SmallImage::random();
    server.push_image(APP, "1.0", &img);
    server.push_image(APP, "keep", &img);

    // Deleting a tag leaves the manifest and the other tag.
    let response = server
        .request(Method::DELETE, &format!("/v2/{APP}/manifests/keep"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_oci_error(
        server.get(&format!("/v2/{APP}/manifests/keep")),
        404,
        "MANIFEST_UNKNOWN",
    );
    assert_eq!(
        server.get(&format!("/v2/{APP}/manifests/1.0")).status(),
        200
    );

    // Deleting by digest removes the manifest and the tags that name it.
    let response = server
        .request(
            Method::DELETE,
            &format!("/v2/{APP}/manifests/{}", img.digest),
        )
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_oci_error(
        server.get(&format!("/v2/{APP}/manifests/{}", img.digest)),
        404,
        "MANIFEST_UNKNOWN",
    );
    assert_oci_error(
        server.get(&format!("/v2/{APP}/manifests/1.0")),
        404,
        "MANIFEST_UNKNOWN",
    );
    // With no manifest left, the image is gone from the tag and catalog listings.
    assert_oci_error(
        server.get(&format!("/v2/{APP}/tags/list")),
        404,
        "NAME_UNKNOWN",
    );
    let catalog: Value = server.get("/v2/_catalog").json().unwrap();
    assert_eq!(catalog["repositories"], json!([]));

    // Deleting a blob.
    let layer = img.layer_digest();
    let response = server
        .request(Method::DELETE, &format!("/v2/{APP}/blobs/{layer}"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_oci_error(
        server.get(&format!("/v2/{APP}/blobs/{layer}")),
        404,
        "BLOB_UNKNOWN",
    );
    // A manifest that needs it is refused until it is pushed again.
    let response = server.put_manifest(APP, "1.0", OCI_MANIFEST, &img.manifest);
    assert_oci_error(response, 400, "MANIFEST_BLOB_UNKNOWN");

    // Pushing everything again works, byte for byte.
    server.push_image(APP, "1.0", &img);
    let got = server.get(&format!("/v2/{APP}/manifests/1.0"));
    assert_eq!(got.status(), 200);
    assert_eq!(header(&got, "docker-content-digest"), img.digest);
    assert_eq!(header(&got, "content-type"), OCI_MANIFEST);
    assert_eq!(got.bytes().unwrap().as_ref(), img.manifest.as_slice());
    assert_eq!(
        server
            .get(&format!("/v2/{APP}/blobs/{layer}"))
            .bytes()
            .unwrap()
            .as_ref(),
        img.blobs[0].as_slice()
    );
}

fn artifact(
    server: &Entrepot,
    subject: &SmallImage,
    artifact_type: &str,
    payload: &[u8],
) -> (String, usize) {
    server.push_artifact(APP, subject, artifact_type, payload)
}

#[test]
fn referrers_list_artifacts_that_name_a_subject_and_filter_by_type() {
    let server = Entrepot::start();
    server.create_repository("images");
    let subject = server.push_small_image(APP, "1.0");
    let sbom_type = "application/vnd.example.sbom.v1";
    let sig_type = "application/vnd.example.signature.v1";
    let (sbom, sbom_size) = artifact(&server, &subject, sbom_type, br#"{"packages":[]}"#);
    let (sig, _) = artifact(&server, &subject, sig_type, b"signature bytes");

    let response = server.get(&format!("/v2/{APP}/referrers/{}", subject.digest));
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), OCI_INDEX);
    assert!(response.headers().get("oci-filters-applied").is_none());
    let index: Value = response.json().unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["mediaType"], OCI_INDEX);
    let entries = index["manifests"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    let mut digests: Vec<&str> = entries
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    digests.sort();
    let mut want = vec![sbom.as_str(), sig.as_str()];
    want.sort();
    assert_eq!(digests, want);
    let sbom_entry = entries
        .iter()
        .find(|e| e["digest"] == sbom.as_str())
        .unwrap();
    assert_eq!(sbom_entry["artifactType"], sbom_type);
    assert_eq!(sbom_entry["mediaType"], OCI_MANIFEST);
    assert_eq!(sbom_entry["size"], sbom_size);
    assert_eq!(sbom_entry["annotations"]["org.example.kind"], sbom_type);

    let filtered = server.get(&format!(
        "/v2/{APP}/referrers/{}?artifactType={sig_type}",
        subject.digest
    ));
    assert_eq!(filtered.status(), 200);
    assert_eq!(header(&filtered, "oci-filters-applied"), "artifactType");
    let filtered: Value = filtered.json().unwrap();
    assert_eq!(filtered["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["manifests"][0]["digest"], sig.as_str());

    // A manifest nobody refers to has an empty list, not an error.
    let lonely = sha256(b"no referrers");
    let empty: Value = server
        .get(&format!("/v2/{APP}/referrers/{lonely}"))
        .json()
        .unwrap();
    assert_eq!(empty["manifests"], json!([]));
}

#[test]
fn abandoned_upload_sessions_are_removed_after_the_timeout() {
    let server = Entrepot::builder()
        .env("ENTREPOT_UPLOAD_TIMEOUT_SECS", "1")
        .start();
    server.create_repository("images");
    let location = start_upload(&server, APP);
    assert_eq!(patch(&server, &location, 0, b"left behind").status(), 202);
    let id = location.rsplit('/').next().unwrap().to_owned();

    let expired = eventually(Duration::from_secs(60), || {
        server
            .request(Method::GET, &location)
            .send()
            .unwrap()
            .status()
            == 404
    });
    assert!(
        expired,
        "the session was not removed; log:\n{}",
        server.log_text()
    );
    assert_oci_error(
        server.request(Method::GET, &location).send().unwrap(),
        404,
        "BLOB_UPLOAD_UNKNOWN",
    );
    assert!(
        !server.data_dir.join("blobs/uploads").join(&id).exists(),
        "the session's bytes were left on disk"
    );
}
