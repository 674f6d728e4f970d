//! The data sets of the redesigned suite (`TestAll` of `conformance/run.go`
//! on `main`): for each set, "push" (blobs, manifests by digest, tags),
//! "tag-list" (with `last`), "head", "pull", "referrers" (with the
//! `artifactType` filter) and "delete" (each delete seen at once), as in
//! `TestPush`, `TestList`, `TestHead`, `TestPull`, `TestReferrers` and
//! `TestDelete`. Against a hosted repository; the reads also through a
//! remote repository, the set pushed to its upstream.

use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::Value;

use crate::fixture::*;
use crate::redesign_blobs::{delete_blob, head_blob, pull_blob};
use crate::redesign_data::*;
use crate::support::*;

/// "push": each blob, each manifest by digest (`201`, a `Location` serving
/// the same bytes, type and size, `OCI-Subject` for a manifest with a
/// subject, the digest header), each tag (`?tag=` for the tag-param sets).
/// Where the writer is an upstream, only success is asserted.
fn push(t: &Target, ds: &DataSet, tag_param: bool) {
    let strict = t.kind == Kind::Hosted;
    for (digest, bytes) in &ds.blobs {
        t.push_blob_as(digest, bytes);
    }
    let mut tagged = Vec::new();
    for m in &ds.manifests {
        let mut reference = m.digest.clone();
        let mut tags = Vec::new();
        if tag_param {
            for (tag, digest) in &ds.tags {
                if digest == &m.digest {
                    reference = with_query(&reference, "tag", tag);
                    tags.push(tag.clone());
                }
            }
        }
        let response = t.put_manifest(&reference, m.media_type, &m.bytes);
        if !strict {
            assert!(
                response.status().is_success(),
                "push {}: {}",
                m.digest,
                response.status()
            );
            // Tagged by `?tag=`: not pushed again by tag below, which would
            // name the tag by the sha256 of the bytes (a push by tag).
            tagged.extend(tags);
            continue;
        }
        check_manifest_put(t, m, response, &tags);
        tagged.extend(tags);
    }
    for (tag, digest) in &ds.tags {
        if tagged.contains(tag) {
            continue;
        }
        let m = ds.manifest_bytes(digest);
        let response = t.put_manifest(tag, m.media_type, &m.bytes);
        if strict {
            check_manifest_put(t, m, response, &[]);
        } else {
            assert!(
                response.status().is_success(),
                "tag {tag}: {}",
                response.status()
            );
        }
    }
}

/// `ManifestPut` and `TestPushManifestDigest`.
fn check_manifest_put(t: &Target, m: &Manifest, response: Response, tags: &[String]) {
    let status = response.status().as_u16();
    if status != 201 {
        panic!(
            "PUT manifest {}: {status} {}",
            m.digest,
            body_text(response)
        );
    }
    if let Some(subject) = &m.subject {
        assert_eq!(
            header_opt(&response, "oci-subject").as_ref(),
            Some(subject),
            "OCI-Subject"
        );
    }
    if let Some(got) = header_opt(&response, "docker-content-digest") {
        assert_eq!(got, m.digest);
    }
    let oci_tags: Vec<String> = response
        .headers()
        .get_all("oci-tag")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_owned()))
        .collect();
    for tag in tags {
        assert!(
            oci_tags.contains(tag),
            "OCI-Tag {tag} missing: {oci_tags:?}"
        );
    }
    let at = location(&response);
    let got = t
        .at(Method::GET, &at)
        .header("accept", OCI_INDEX)
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap();
    assert_eq!(got.status(), 200, "GET {at}");
    assert_eq!(header(&got, "content-type"), m.media_type);
    assert_eq!(header(&got, "content-length"), m.bytes.len().to_string());
    assert_eq!(got.bytes().unwrap().as_ref(), m.bytes.as_slice());
}

/// "tag-list": every tag listed; with `last` set to the middle tag, the
/// first half is gone and the second half is there.
fn tag_list(t: &Target, ds: &DataSet) {
    let (status, tags) = t.tags("");
    assert!(
        status == 200 || (status == 404 && ds.tags.is_empty()),
        "tags/list: {status}"
    );
    for tag in ds.tags.keys() {
        assert!(tags.contains(tag), "{tag} not in {tags:?}");
    }
    if tags.len() >= 2 {
        let mut sorted = tags.clone();
        sorted.sort();
        let end = sorted.len() / 2;
        let last = &sorted[end - 1];
        let (status, partial) = t.tags(&format!("?last={last}"));
        assert_eq!(status, 200);
        for tag in &sorted[..end] {
            assert!(!partial.contains(tag), "{tag} listed after last={last}");
        }
        for tag in &sorted[end..] {
            assert!(partial.contains(tag), "{tag} missing after last={last}");
        }
    }
}

fn manifest_request(t: &Target, method: Method, reference: &str) -> Response {
    t.read(method, &format!("manifests/{reference}"))
        .header("accept", OCI_INDEX)
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap()
}

/// `ManifestHeadExists` / `ManifestGetExists`.
fn check_manifest(t: &Target, method: Method, reference: &str, m: &Manifest) {
    let head = method == Method::HEAD;
    let response = manifest_request(t, method, reference);
    assert_eq!(response.status(), 200, "manifest {reference}");
    assert_eq!(
        header(&response, "content-type"),
        m.media_type,
        "{reference}"
    );
    assert_eq!(
        header(&response, "content-length"),
        m.bytes.len().to_string(),
        "{reference}"
    );
    if let Some(got) = header_opt(&response, "docker-content-digest") {
        assert_eq!(got, m.digest, "{reference}");
    }
    let body = response.bytes().unwrap();
    if head {
        assert!(body.is_empty(), "HEAD with a body");
    } else {
        assert_eq!(body.as_ref(), m.bytes.as_slice(), "{reference}");
    }
}

/// "head" and "pull": by tag, by digest, each blob.
fn head_and_pull(t: &Target, ds: &DataSet) {
    for method in [Method::HEAD, Method::GET] {
        for (tag, digest) in &ds.tags {
            check_manifest(t, method.clone(), tag, ds.manifest_bytes(digest));
        }
        for m in &ds.manifests {
            check_manifest(t, method.clone(), &m.digest, m);
        }
    }
    for (digest, bytes) in &ds.blobs {
        head_blob(t, digest, bytes);
        pull_blob(t, digest, bytes);
    }
}

fn entry_matches(entry: &Value, goal: &Value) -> bool {
    let same = |k: &str| entry[k] == goal[k];
    let annotations_ok = goal["annotations"]
        .as_object()
        .is_none_or(|want| want.iter().all(|(k, v)| entry["annotations"][k] == *v));
    same("digest") && same("mediaType") && same("size") && same("artifactType") && annotations_ok
}

/// "referrers": each subject lists its referrers; filtered by each
/// artifact type, `OCI-Filters-Applied: artifactType` and only that type.
fn referrers(t: &Target, ds: &DataSet) {
    for (subject, goals) in &ds.referrers {
        let list = |query: &str| {
            let response = t
                .read(Method::GET, &format!("referrers/{subject}{query}"))
                .send()
                .unwrap();
            assert_eq!(response.status(), 200, "referrers of {subject}");
            assert_eq!(header(&response, "content-type"), OCI_INDEX);
            let filters = header_opt(&response, "oci-filters-applied").unwrap_or_default();
            let index: Value = serde_json::from_str(&body_text(response)).unwrap();
            assert_eq!(index["mediaType"], OCI_INDEX);
            assert_eq!(index["schemaVersion"], 2);
            (
                filters,
                index["manifests"].as_array().cloned().unwrap_or_default(),
            )
        };
        let (_, all) = list("");
        for goal in goals {
            assert!(
                all.iter().any(|e| entry_matches(e, goal)),
                "{goal} missing from {all:?}"
            );
        }
        let mut types: Vec<&str> = goals
            .iter()
            .filter_map(|g| g["artifactType"].as_str())
            .collect();
        types.dedup();
        for artifact_type in types {
            let encoded: String =
                url::form_urlencoded::byte_serialize(artifact_type.as_bytes()).collect();
            let (filters, filtered) = list(&format!("?artifactType={encoded}"));
            assert!(
                filters.split(',').any(|f| f.trim() == "artifactType"),
                "OCI-Filters-Applied: {filters:?}"
            );
            for goal in goals.iter().filter(|g| g["artifactType"] == artifact_type) {
                assert!(
                    filtered.iter().any(|e| entry_matches(e, goal)),
                    "{goal} missing"
                );
            }
            for entry in &filtered {
                assert_eq!(
                    entry["artifactType"], artifact_type,
                    "filter let {entry} through"
                );
            }
        }
    }
}

/// "delete": tags (then `HEAD` of the tag is 404), manifests in reverse
/// push order (then `HEAD` is 404), blobs (then `HEAD` is 404).
fn delete(t: &Target, ds: &DataSet) {
    let delete_manifest = |reference: &str| {
        let response = t
            .write(Method::DELETE, &format!("manifests/{reference}"))
            .send()
            .unwrap();
        let status = response.status().as_u16();
        if ![202, 404].contains(&status) {
            panic!(
                "DELETE manifests/{reference}: {status} {}",
                body_text(response)
            );
        }
        let head = manifest_request(t, Method::HEAD, reference);
        assert_eq!(
            head.status(),
            404,
            "HEAD manifests/{reference} after DELETE"
        );
    };
    for tag in ds.tags.keys() {
        delete_manifest(tag);
    }
    for m in ds.manifests.iter().rev() {
        delete_manifest(&m.digest);
    }
    for digest in ds.blobs.keys() {
        delete_blob(t, &t.write_name(), digest);
    }
}

/// A data set against a hosted repository, every step.
fn hosted(t: &Target, name: &str) {
    let ds = data_set(name);
    let tag_param = name.starts_with("tag-param");
    if name == "bad-digest-image" {
        for (digest, bytes) in &ds.blobs {
            t.push_blob_as(digest, bytes);
        }
        let m = &ds.manifests[0];
        let response = t.put_manifest(&m.digest, m.media_type, &m.bytes);
        assert_eq!(
            response.status(),
            400,
            "a manifest that does not match its digest"
        );
        assert_eq!(first_error_code(&body_text(response)), "DIGEST_INVALID");
        return;
    }
    push(t, &ds, tag_param);
    tag_list(t, &ds);
    head_and_pull(t, &ds);
    referrers(t, &ds);
    delete(t, &ds);
}

/// A data set through a remote repository: pushed upstream (the tag-param
/// sets with `?tag=` where the upstream takes it, another entrepot: it then
/// names their tags by the digest they were pushed by, `sha512:` included;
/// docker-registry ignores `?tag=`, so it is given each tag by name), then
/// listed, `HEAD` and `GET` through entrepot; referrers too when
/// `with_referrers`.
fn remote(t: &Target, name: &str, with_referrers: bool) {
    let ds = data_set(name);
    push(
        t,
        &ds,
        name.starts_with("tag-param") && t.kind == Kind::RemoteEntrepot,
    );
    tag_list(t, &ds);
    head_and_pull(t, &ds);
    if with_referrers {
        referrers(t, &ds);
    }
}

/// One data set: `hosted` runs every step on a hosted repository, `remote`
/// the reads through a remote repository (in front of docker-registry
/// unless another kind is named); `referrers_remote` where the set has
/// referrers, through a remote repository in front of a second entrepot,
/// after the set was pulled through it (it lists the referrers it holds; it
/// does not ask the upstream's referrers API yet).
macro_rules! data_set_case {
    ($(#[$meta:meta])* $module:ident, $name:literal
     $(, remote = $kind:ident)? $(, ignore_remote = $why:literal)?
     $(, referrers_remote = $referrers:literal)?) => {
        $(#[$meta])*
        mod $module {
            #[allow(unused_imports)]
            use super::*;

            #[test]
            fn hosted() {
                super::hosted(&Target::new(Kind::Hosted, module_path!()), $name);
            }

            #[test]
            $(#[ignore = $why])?
            fn remote() {
                #[allow(unused_variables)]
                let kind = Kind::Remote;
                $(let kind = Kind::$kind;)?
                super::remote(&Target::new(kind, module_path!()), $name, false);
            }

            $(
                #[test]
                #[doc = $referrers]
                fn referrers_remote() {
                    super::remote(&Target::new(Kind::RemoteEntrepot, module_path!()), $name, true);
                }
            )?
        }
    };
}

data_set_case!(
    /// "image": an image of two gzip layers, tagged.
    image, "image"
);
data_set_case!(
    /// "image-uncompressed": layers as plain tar.
    image_uncompressed, "image-uncompressed"
);
data_set_case!(
    /// "large-manifest": 390 annotations of 10 000 bytes (3.9 MB).
    large_manifest, "large-manifest"
);
data_set_case!(
    /// "index": an index of two platforms.
    index, "index"
);
data_set_case!(
    /// "nested-index": an index of two indexes.
    nested_index, "nested-index"
);
data_set_case!(
    /// "empty-index": an index with no manifests.
    empty_index, "empty-index"
);
data_set_case!(
    /// "artifact": `artifactType`, an empty config, one layer of that type.
    artifact, "artifact"
);
data_set_case!(
    /// "artifact-index": an index of artifacts.
    artifact_index, "artifact-index"
);
data_set_case!(
    /// "artifact-without-layers": the one layer is `{}`.
    artifact_without_layers, "artifact-without-layers"
);
data_set_case!(
    /// "artifacts-with-subject": an image, an image and two tagged
    /// artifacts whose subject it is.
    artifacts_with_subject, "artifacts-with-subject",
    referrers_remote = "The referrers the remote repository lists once it has pulled the set."
);
data_set_case!(
    /// "index-with-subject": an artifact index (and its images) whose
    /// subject is an index.
    index_with_subject, "index-with-subject",
    referrers_remote = "The referrers the remote repository lists once it has pulled the set."
);
data_set_case!(
    /// "missing-subject": an artifact whose subject was never pushed.
    missing_subject, "missing-subject",
    referrers_remote = "The referrers the remote repository lists once it has pulled the set."
);
data_set_case!(
    /// "data-field": descriptors carrying `data`.
    data_field, "data-field"
);
data_set_case!(
    /// "non-distributable-layers": two layers with `urls`, not pushed
    /// (docker-registry refuses manifests with URLs unless configured to
    /// allow them, so the remote reads go through a second entrepot).
    non_distributable_layers, "non-distributable-layers", remote = RemoteEntrepot
);
data_set_case!(
    /// "custom-fields": unknown fields in the index, manifests and configs.
    custom_fields, "custom-fields"
);
data_set_case!(
    /// "no-layers": an image manifest with an empty layer list.
    no_layers, "no-layers"
);
data_set_case!(
    /// "sha512": an index and its images pushed by sha512 digests only.
    sha512, "sha512", remote = RemoteEntrepot
);
data_set_case!(
    /// "tag-param-sha256": pushed by digest with `?tag=` for every tag
    /// (`OCI_API_MANIFESTS_TAG_PARAM`, off by default in the suite).
    tag_param_sha256, "tag-param-sha256"
);
data_set_case!(
    /// "tag-param-sha512".
    tag_param_sha512, "tag-param-sha512", remote = RemoteEntrepot
);
/// "bad-digest-image": a manifest whose bytes do not match the digest it
/// is pushed by is `400 DIGEST_INVALID`. A write refused by design: there is
/// nothing to read through a remote repository.
mod bad_digest_image {
    #[test]
    fn hosted() {
        super::hosted(
            &super::Target::new(super::Kind::Hosted, module_path!()),
            "bad-digest-image",
        );
    }
}
