//! The cases of the redesigned suite outside the blob APIs and the data
//! sets (`conformance/run.go` on `main`): "ping", "empty" (tag list and
//! referrers of an image with nothing in it) and the manifest errors
//! ("missing-manifest", "invalid-digest-format").

use reqwest::Method;

use crate::fixture::*;
use crate::redesign_data::*;
use crate::support::*;

hosted_case!(
    /// "ping": `GET /v2/` with credentials is 200.
    ping,
    |t| {
        let response = t.reader().request(Method::GET, "/v2/").send().unwrap();
        assert_eq!(response.status(), 200);
    }
);

read_case!(
    /// "empty" / "tag list": the tags of an image with nothing pushed are
    /// an empty list or 404 (`TagList` accepts both).
    empty_tag_list,
    |t| {
        let (status, tags) = t.tags("");
        assert!(status == 404 || (status == 200 && tags.is_empty()), "{status} {tags:?}");
    }
);

read_case!(
    /// "empty" / "referrers": the referrers of a random subject are an
    /// empty OCI index (content type, `mediaType`, `schemaVersion: 2`).
    empty_referrers,
    remote = RemoteEntrepot,
    |t| {
        let subject = sha256(&random_bytes(32));
        let response = t.read(Method::GET, &format!("referrers/{subject}")).send().unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "content-type"), OCI_INDEX);
        let index: serde_json::Value = serde_json::from_str(&body_text(response)).unwrap();
        assert_eq!(index["mediaType"], OCI_INDEX);
        assert_eq!(index["schemaVersion"], 2);
        assert_eq!(index["manifests"], serde_json::json!([]));
    }
);

read_case!(
    /// "missing-manifest" / "by-digest": 404.
    missing_manifest_by_digest,
    |t| {
        let digest = sha256(&random_bytes(1024));
        let response = t
            .read(Method::GET, &format!("manifests/{digest}"))
            .header("accept", OCI_INDEX)
            .header("accept", OCI_MANIFEST)
            .send()
            .unwrap();
        assert_eq!(response.status(), 404);
    }
);

read_case!(
    /// "missing-manifest" / "by-tag": 404.
    missing_manifest_by_tag,
    |t| {
        let tag = format!("missing-{}", &hex::encode(random_bytes(10))[..20]);
        let response = t
            .read(Method::GET, &format!("manifests/{tag}"))
            .header("accept", OCI_INDEX)
            .header("accept", OCI_MANIFEST)
            .send()
            .unwrap();
        assert_eq!(response.status(), 404);
    }
);

/// "invalid-digest-format": the blobs of an image of one layer.
fn invalid_digest_setup(t: &Target) -> DataSet {
    let mut ds = DataSet::new("sha256");
    ds.image(&Gen {
        layers: Some(1),
        ..Gen::default()
    });
    for (digest, bytes) in &ds.blobs {
        t.push_blob_as(digest, bytes);
    }
    ds
}

hosted_case!(
    /// "invalid-digest-format" / "manifest-put": `PUT manifests/sha256:baddigeststring` is 400.
    invalid_digest_format_manifest_put,
    |t| {
        let ds = invalid_digest_setup(t);
        let m = &ds.manifests[0];
        let response = t.put_manifest("sha256:baddigeststring", m.media_type, &m.bytes);
        assert_eq!(response.status(), 400);
        assert!(ERROR_CODES.contains(&first_error_code(&body_text(response)).as_str()));
    }
);

read_case!(
    /// "invalid-digest-format" / "manifest-get": `GET manifests/sha256:baddigeststring` is 404 or 400.
    invalid_digest_format_manifest_get,
    |t| {
        invalid_digest_setup(t);
        let response = t
            .read(Method::GET, "manifests/sha256:baddigeststring")
            .header("accept", OCI_INDEX)
            .header("accept", OCI_MANIFEST)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        assert!(status == 404 || status == 400, "{status}");
    }
);

hosted_case!(
    /// "sparse" (`OCI_DATA_SPARSE`, off by default in the suite, which then
    /// expects the pushes to succeed): an image whose first layer was never
    /// pushed, and an index naming a manifest never pushed. The spec lets a
    /// registry refuse a manifest whose descriptors it lacks; entrepot
    /// refuses both with `400 MANIFEST_BLOB_UNKNOWN` (docs/oci-conformance.md).
    sparse_manifests_are_refused,
    |t| {
        let mut ds = DataSet::new("sha256");
        ds.image(&Gen::default());
        let image = ds.manifests[0].clone();
        let skipped: Vec<String> = ds.blobs.keys().cloned().collect();
        let mut pushed_one_layer_less = false;
        for (digest, bytes) in &ds.blobs {
            let layer = image_layers(&image).contains(digest);
            if layer && !pushed_one_layer_less {
                pushed_one_layer_less = true;
                continue;
            }
            t.push_blob_as(digest, bytes);
        }
        assert!(pushed_one_layer_less && skipped.len() == 3);
        let response = t.put_manifest(&image.digest, image.media_type, &image.bytes);
        assert_eq!(response.status(), 400);
        assert_eq!(first_error_code(&body_text(response)), "MANIFEST_BLOB_UNKNOWN");

        let mut full = DataSet::new("sha256");
        let present = full.image(&Gen::default());
        for (digest, bytes) in &full.blobs {
            t.push_blob_as(digest, bytes);
        }
        let m = &full.manifests[0];
        t.put_manifest_ok(&m.digest, m.media_type, &m.bytes);
        let missing = serde_json::json!({
            "mediaType": OCI_MANIFEST,
            "digest": sha256(&random_bytes(1024)),
            "size": 1024,
            "platform": {"os": "linux", "architecture": "arm64"},
        });
        full.index(vec![present, missing], &Gen::default());
        let index = full.manifests.last().unwrap();
        let response = t.put_manifest(&index.digest, index.media_type, &index.bytes);
        assert_eq!(response.status(), 400);
        assert_eq!(first_error_code(&body_text(response)), "MANIFEST_BLOB_UNKNOWN");
    }
);

fn image_layers(m: &Manifest) -> Vec<String> {
    let value: serde_json::Value = serde_json::from_slice(&m.bytes).unwrap();
    value["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["digest"].as_str().map(str::to_owned))
        .collect()
}
