//! Referrers through the cache: signatures and SBOMs attached to an image
//! upstream are listed by `GET /v2/<remote>/<image>/referrers/<digest>`,
//! from the upstream's referrers API (an entrepot hosted repository) or, from
//! an upstream without it (distribution 2.8 answers 404), from the referrers
//! tag schema's `sha256-<hex>` index; cached with the tag freshness rules,
//! served stale when the upstream fails.

#![allow(clippy::unwrap_used)]

mod support;

use reqwest::blocking::Client;
use serde_json::{json, Value};
use support::*;

const SIGNATURE: &str = "application/vnd.example.signature.v1+json";
const SBOM: &str = "application/vnd.example.sbom.v1+json";

/// An artifact manifest of `artifact_type` whose subject is `subject`, and
/// its one layer.
fn artifact(artifact_type: &str, subject: &str, subject_size: usize) -> (Vec<u8>, Vec<u8>) {
    let payload = random_bytes(64);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": { "mediaType": OCI_EMPTY, "digest": sha256(b"{}"), "size": 2 },
        "layers": [{ "mediaType": "application/octet-stream", "digest": sha256(&payload), "size": payload.len() }],
        "subject": { "mediaType": OCI_MANIFEST, "digest": subject, "size": subject_size },
        "annotations": { "org.example.kind": artifact_type },
    });
    (serde_json::to_vec(&manifest).unwrap(), payload)
}

/// A descriptor of `manifest`, as a referrers index lists it.
fn descriptor(manifest: &[u8], artifact_type: &str) -> Value {
    json!({
        "mediaType": OCI_MANIFEST,
        "digest": sha256(manifest),
        "size": manifest.len(),
        "artifactType": artifact_type,
        "annotations": { "org.example.kind": artifact_type },
    })
}

/// Push a blob to a docker-registry in two steps (POST, then PUT).
fn push_blob_to(addr: &str, image: &str, bytes: &[u8]) {
    let client = Client::new();
    let started = client
        .post(format!("http://{addr}/v2/{image}/blobs/uploads/"))
        .send()
        .unwrap();
    assert_eq!(started.status(), 202, "{}", started.text().unwrap());
    let location = header(&started, "location");
    let location = if location.starts_with('/') {
        format!("http://{addr}{location}")
    } else {
        location
    };
    let separator = if location.contains('?') { '&' } else { '?' };
    let done = client
        .put(format!("{location}{separator}digest={}", sha256(bytes)))
        .header("content-type", "application/octet-stream")
        .body(bytes.to_vec())
        .send()
        .unwrap();
    assert_eq!(done.status(), 201, "{}", done.text().unwrap());
}

fn put_manifest_to(addr: &str, image: &str, reference: &str, media_type: &str, bytes: &[u8]) {
    let response = Client::new()
        .put(format!("http://{addr}/v2/{image}/manifests/{reference}"))
        .header("content-type", media_type)
        .body(bytes.to_vec())
        .send()
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().unwrap());
}

/// The manifest digest and size of `image:1.0` at a docker-registry.
fn subject_of(addr: &str, image: &str) -> (String, usize) {
    let response = Client::new()
        .get(format!("http://{addr}/v2/{image}/manifests/1.0"))
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let digest = header(&response, "docker-content-digest");
    (digest, response.bytes().unwrap().len())
}

/// A media type as a query value (`+` would be read as a space).
fn query(media_type: &str) -> String {
    media_type.replace('+', "%2B")
}

fn referrers(server: &Entrepot, path: &str) -> reqwest::blocking::Response {
    server.get(path)
}

fn manifests_of(response: reqwest::blocking::Response) -> Vec<Value> {
    assert_eq!(header(&response, "content-type"), OCI_INDEX);
    let index: Value = response.json().unwrap();
    assert_eq!(index["mediaType"], OCI_INDEX);
    index["manifests"].as_array().unwrap().clone()
}

/// A docker-registry upstream holding `app:1.0`, a signature and an SBOM
/// whose subject it is, and the referrers tag schema's index of both.
struct TagSchemaUpstream {
    _work: tempfile::TempDir,
    backend: Distribution,
    subject: String,
    signature: Value,
    sbom: Value,
}

fn tag_schema_upstream() -> TagSchemaUpstream {
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("app");
    image_layout(&layout, "1.0", &[2000]);
    let backend = Distribution::start();
    backend.push(&layout, "1.0", "app:1.0", None);
    let (subject, size) = subject_of(&backend.addr, "app");
    push_blob_to(&backend.addr, "app", b"{}");
    let mut listed = Vec::new();
    for kind in [SIGNATURE, SBOM] {
        let (manifest, payload) = artifact(kind, &subject, size);
        push_blob_to(&backend.addr, "app", &payload);
        put_manifest_to(
            &backend.addr,
            "app",
            &sha256(&manifest),
            OCI_MANIFEST,
            &manifest,
        );
        listed.push(descriptor(&manifest, kind));
    }
    let index = json!({ "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed });
    let tag = subject.replace(':', "-");
    put_manifest_to(
        &backend.addr,
        "app",
        &tag,
        OCI_INDEX,
        &serde_json::to_vec(&index).unwrap(),
    );
    TagSchemaUpstream {
        _work: work,
        backend,
        subject,
        signature: listed[0].clone(),
        sbom: listed[1].clone(),
    }
}

#[test]
fn referrers_of_an_upstream_without_the_api_come_from_the_tag_schema_and_are_cached() {
    let up = tag_schema_upstream();
    let server = Entrepot::start();
    let upstream = format!("http://{}", up.backend.addr);
    server.create_remote_docker("hub", &upstream, json!({ "tagTtlSecs": 3600 }));
    let path = format!("/v2/default/hub/app/referrers/{}", up.subject);

    let first = referrers(&server, &path);
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-cache"), "MISS");
    assert_eq!(
        manifests_of(first),
        vec![up.signature.clone(), up.sbom.clone()]
    );
    // The API was asked first, and answered 404; then the tag.
    let api = format!("/v2/app/referrers/{}", up.subject);
    let tag = format!("/v2/app/manifests/{}", up.subject.replace(':', "-"));
    assert_eq!(up.backend.gets_of(&api), 1, "{}", up.backend.log_text());
    assert_eq!(up.backend.gets_of(&tag), 1);

    // Within the freshness window: from the cache, for every filter.
    let again = referrers(&server, &path);
    assert_eq!(header(&again, "x-cache"), "HIT");
    assert_eq!(manifests_of(again).len(), 2);
    let signatures = referrers(
        &server,
        &format!("{path}?artifactType={}", query(SIGNATURE)),
    );
    assert_eq!(header(&signatures, "oci-filters-applied"), "artifactType");
    assert_eq!(manifests_of(signatures), vec![up.signature.clone()]);
    assert_eq!(up.backend.gets_of(&api), 1);
    assert_eq!(up.backend.gets_of(&tag), 1);

    // The referrers themselves pull through by digest.
    let digest = up.sbom["digest"].as_str().unwrap();
    let sbom = server
        .request(
            reqwest::Method::GET,
            &format!("/v2/default/hub/app/manifests/{digest}"),
        )
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap();
    assert_eq!(sbom.status(), 200);
    assert_eq!(sha256(&sbom.bytes().unwrap()), digest);

    // A subject nothing refers to: an empty index, not an error.
    let lonely = sha256(b"nothing refers to this");
    let none = referrers(&server, &format!("/v2/default/hub/app/referrers/{lonely}"));
    assert_eq!(none.status(), 200);
    assert_eq!(manifests_of(none), Vec::<Value>::new());
    // Not kept (it is about nothing the cache holds): asked again.
    let again = referrers(&server, &format!("/v2/default/hub/app/referrers/{lonely}"));
    assert_eq!(header(&again, "x-cache"), "MISS");
    // About a manifest the cache holds, an empty index is kept.
    let pulled = server
        .request(reqwest::Method::GET, "/v2/default/hub/app/manifests/1.0")
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap();
    assert_eq!(pulled.status(), 200);
    let sbom_referrers = format!("/v2/default/hub/app/referrers/{digest}");
    assert_eq!(
        header(&referrers(&server, &sbom_referrers), "x-cache"),
        "MISS"
    );
    let kept = referrers(&server, &sbom_referrers);
    assert_eq!(header(&kept, "x-cache"), "HIT");
    assert_eq!(manifests_of(kept), Vec::<Value>::new());
}

#[test]
fn referrers_are_revalidated_after_the_window_and_served_stale_when_the_upstream_is_down() {
    let mut up = tag_schema_upstream();
    let server = Entrepot::start();
    let upstream = format!("http://{}", up.backend.addr);
    server.create_remote_docker(
        "hub",
        &upstream,
        json!({ "tagTtlSecs": 0, "connectTimeoutSecs": 1, "retryBudgetSecs": 2 }),
    );
    let path = format!("/v2/default/hub/app/referrers/{}", up.subject);
    assert_eq!(header(&referrers(&server, &path), "x-cache"), "MISS");
    let confirmed = referrers(&server, &path);
    assert_eq!(header(&confirmed, "x-cache"), "REVALIDATED");
    assert!(confirmed.headers().get("warning").is_none());

    up.backend.stop();
    let stale = referrers(&server, &format!("{path}?artifactType={}", query(SBOM)));
    assert_eq!(stale.status(), 200, "{}", server.log_text());
    assert_eq!(header(&stale, "x-cache"), "STALE");
    assert!(header(&stale, "warning").starts_with("110 "));
    assert!(header(&stale, "age").parse::<u64>().is_ok());
    assert_eq!(manifests_of(stale), vec![up.sbom.clone()]);

    // Never cached: the upstream's failure, with its reason.
    let lonely = sha256(b"never asked");
    let failed = referrers(&server, &format!("/v2/default/hub/app/referrers/{lonely}"));
    assert_eq!(failed.status(), 503);
    assert!(failed.text().unwrap().contains(&up.backend.addr));
}

#[test]
fn referrers_of_an_upstream_with_the_api_come_from_it() {
    // The upstream is another entrepot, whose hosted repository has the API
    // (and no `sha256-<hex>` tag).
    let upstream = Entrepot::start();
    upstream.create_repository("images");
    upstream.grant(
        "projects/default/repositories/images",
        "allUsers",
        "roles/artifactregistry.reader",
    );
    let image = SmallImage::random();
    upstream.push_image("default/images/app", "1.0", &image);
    upstream.push_blob("default/images/app", b"{}");
    let mut listed = Vec::new();
    for kind in [SIGNATURE, SBOM] {
        let (manifest, payload) = artifact(kind, &image.digest, image.manifest.len());
        upstream.push_blob("default/images/app", &payload);
        let pushed = upstream.put_manifest(
            "default/images/app",
            &sha256(&manifest),
            OCI_MANIFEST,
            &manifest,
        );
        assert_eq!(pushed.status(), 201);
        listed.push(descriptor(&manifest, kind));
    }

    let server = Entrepot::start();
    server.create_remote_docker(
        "hub",
        &format!("http://{}", upstream.addr),
        json!({ "tagTtlSecs": 3600 }),
    );
    let path = format!(
        "/v2/default/hub/default/images/app/referrers/{}",
        image.digest
    );
    let first = referrers(&server, &path);
    assert_eq!(first.status(), 200, "{}", server.log_text());
    assert_eq!(header(&first, "x-cache"), "MISS");
    let mut found = manifests_of(first);
    found.sort_by_key(|d| d["artifactType"].as_str().unwrap().to_owned());
    let mut expected = listed.clone();
    expected.sort_by_key(|d| d["artifactType"].as_str().unwrap().to_owned());
    assert_eq!(found, expected);
    let signatures = referrers(
        &server,
        &format!("{path}?artifactType={}", query(SIGNATURE)),
    );
    assert_eq!(header(&signatures, "x-cache"), "HIT");
    assert_eq!(manifests_of(signatures), vec![listed[0].clone()]);
}
