//! `conformance/03_discovery_test.go` of distribution-spec v1.1.1 ("Content
//! Discovery"): tags (`n`, `last`) and referrers (unknown subject, five
//! referrers of one subject, the `artifactType` filter, a subject never
//! pushed). Its setup runs on an image of each case. Tag listings are read
//! through a remote repository in front of docker-registry; referrers
//! through one in front of a second entrepot (docker-registry 2.8 has no
//! referrers API).

use reqwest::Method;
use serde_json::Value;

use crate::fixture::*;
use crate::support::*;
use crate::v1_data::*;

const NUM_TAGS: usize = 4;

/// "Setup": the test blob, the layer and the tags test0..test3 of
/// manifests[2].
fn setup_tags(t: &Target) -> V1Data {
    let data = V1Data::new();
    t.push_blob(&data.configs[2].content);
    t.push_blob(&data.layer.content);
    for i in 0..NUM_TAGS {
        t.put_manifest_ok(
            &format!("test{i}"),
            OCI_MANIFEST,
            &data.manifests[2].content,
        );
    }
    data
}

/// "References setup": the empty JSON blob, reference blob A, the A
/// artifacts and the index pushed before their subject (manifests[4],
/// tagged `tagtest0`), then blob B, the B artifacts, and C whose subject
/// (manifests[3]) is never pushed. Every push of a manifest with a subject
/// answers `OCI-Subject`.
fn setup_references(t: &Target, data: &V1Data) -> Referrers {
    let refs = Referrers::new(data);
    let subject_is = |response: reqwest::blocking::Response, subject: &Content| {
        if t.kind == Kind::Hosted {
            assert_eq!(
                header_opt(&response, "oci-subject").as_deref(),
                Some(subject.digest.as_str())
            );
        }
    };
    t.push_blob(&refs.empty_json.content);
    t.push_blob(&refs.ref_blob_a.content);
    for artifact in [&refs.a_config, &refs.a_layer] {
        subject_is(
            t.put_manifest_ok(&artifact.digest, OCI_MANIFEST, &artifact.content),
            &data.manifests[4],
        );
    }
    subject_is(
        t.put_manifest_ok(&refs.index.digest, OCI_INDEX, &refs.index.content),
        &data.manifests[4],
    );
    t.push_blob(&data.configs[4].content);
    t.push_blob(&data.layer.content);
    t.put_manifest_ok(TEST_TAG, OCI_MANIFEST, &data.manifests[4].content);
    t.push_blob(&refs.ref_blob_b.content);
    for artifact in [&refs.b_config, &refs.b_layer] {
        subject_is(
            t.put_manifest_ok(&artifact.digest, OCI_MANIFEST, &artifact.content),
            &data.manifests[4],
        );
    }
    subject_is(
        t.put_manifest_ok(&refs.c_layer.digest, OCI_MANIFEST, &refs.c_layer.content),
        &data.manifests[3],
    );
    refs
}

fn setup(t: &Target) -> (V1Data, Referrers) {
    let data = setup_tags(t);
    let refs = setup_references(t, &data);
    (data, refs)
}

hosted_case!(
    /// "Setup": References setup (the pushes of manifests with a subject
    /// answer `OCI-Subject: <subject digest>`, also for a subject not pushed).
    references_setup_answers_oci_subject,
    |t| {
        setup(t);
    }
);

read_case!(
    /// "listing tags": GET request to list tags should yield 200 response.
    get_request_to_list_tags_should_yield_200,
    |t| {
        setup(t);
        let (status, tags) = t.tags("");
        assert_eq!(status, 200);
        assert_eq!(tags, ["tagtest0", "test0", "test1", "test2", "test3"]);
    }
);

read_case!(
    /// "listing tags": GET number of tags should be limitable by `n` query parameter.
    get_number_of_tags_should_be_limitable_by_n_query_parameter,
    |t| {
        setup(t);
        let num_tags = t.tags("").1.len();
        let (status, tags) = t.tags(&format!("?n={}", num_tags / 2));
        assert_eq!(status, 200);
        assert_eq!(tags.len(), num_tags / 2, "{tags:?}");
    }
);

read_case!(
    /// "listing tags": GET start of tag is set by `last` query parameter.
    get_start_of_tag_is_set_by_last_query_parameter,
    |t| {
        setup(t);
        let num_results = t.tags("").1.len() / 2;
        let (_, first) = t.tags(&format!("?n={num_results}"));
        let last = &first[num_results - 1];
        let (status, next) = t.tags(&format!("?n={num_results}&last={last}"));
        assert_eq!(status, 200);
        assert!(next.len() <= num_results, "{next:?}");
        // Stricter than the suite (which checks its first page again): the
        // page after `last` holds none of the first page.
        assert!(next.iter().all(|tag| !first.contains(tag)), "{first:?} then {next:?}");
    }
);

/// `GET referrers/<digest>` (optionally filtered): status 200, the OCI index
/// content type, and the index.
fn referrers(t: &Target, digest: &str, artifact_type: Option<&str>) -> (Option<String>, Value) {
    let mut rest = format!("referrers/{digest}");
    if let Some(artifact_type) = artifact_type {
        rest = with_query(&rest, "artifactType", artifact_type);
    }
    let response = t.read(Method::GET, &rest).send().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), OCI_INDEX);
    let filters = header_opt(&response, "oci-filters-applied");
    (filters, serde_json::from_str(&body_text(response)).unwrap())
}

fn manifests(index: &Value) -> &Vec<Value> {
    index["manifests"]
        .as_array()
        .expect("manifests is an array")
}

fn check_annotations(refs: &Referrers, index: &Value) {
    for entry in manifests(index) {
        let annotations = entry["annotations"].as_object().expect("annotations");
        assert_eq!(annotations.len(), 1, "{entry}");
        let digest = entry["digest"].as_str().unwrap();
        assert_eq!(
            annotations[ANNOTATION].as_str(),
            refs.annotation_of(digest),
            "{entry}"
        );
    }
}

read_case!(
    /// "listing references": GET request to nonexistent blob should result in empty 200 response.
    referrers_get_request_to_nonexistent_blob_should_result_in_empty_200,
    remote = RemoteEntrepot,
    |t| {
        setup(t);
        let (_, index) = referrers(t, &dummy_digest(), None);
        assert!(manifests(&index).is_empty(), "{index}");
    }
);

read_case!(
    /// "listing references": GET request to existing blob should yield 200
    /// (five referrers, distinct, each with its one annotation).
    referrers_get_request_to_existing_blob_should_yield_200,
    remote = RemoteEntrepot,
    |t| {
        let (data, refs) = setup(t);
        let (_, index) = referrers(t, &data.manifests[4].digest, None);
        assert_eq!(manifests(&index).len(), 5, "{index}");
        assert_ne!(manifests(&index)[0]["digest"], manifests(&index)[1]["digest"]);
        check_annotations(&refs, &index);
    }
);

read_case!(
    /// "listing references": GET request to existing blob with filter should
    /// yield 200 (with `OCI-Filters-Applied: artifactType`, the two of type A).
    referrers_get_request_to_existing_blob_with_filter_should_yield_200,
    remote = RemoteEntrepot,
    |t| {
        let (data, refs) = setup(t);
        let (filters, index) = referrers(t, &data.manifests[4].digest, Some(ARTIFACT_TYPE_A));
        // The suite accepts an unfiltered answer with a warning; entrepot filters.
        assert_eq!(filters.as_deref(), Some("artifactType"));
        assert_eq!(manifests(&index).len(), 2, "{index}");
        check_annotations(&refs, &index);
    }
);

read_case!(
    /// "listing references": GET request to missing manifest should yield 200
    /// (the one referrer of a subject never pushed).
    referrers_get_request_to_missing_manifest_should_yield_200,
    remote = RemoteEntrepot,
    |t| {
        let (data, refs) = setup(t);
        let (_, index) = referrers(t, &data.manifests[3].digest, None);
        assert_eq!(manifests(&index).len(), 1, "{index}");
        assert_eq!(manifests(&index)[0]["digest"], refs.c_layer.digest.as_str());
    }
);

hosted_case!(
    /// "Teardown": Delete created manifest & associated tags, the config and
    /// layer blobs, and the references (manifests before blobs): each 2xx,
    /// 404 or 405.
    discovery_teardown_deletes_manifests_blobs_and_references,
    |t| {
        let (data, refs) = setup(t);
        for digest in [
            &refs.index.digest,
            &data.manifests[2].digest,
            &data.manifests[4].digest,
            &refs.a_config.digest,
            &refs.a_layer.digest,
            &refs.b_config.digest,
            &refs.b_layer.digest,
            &refs.c_layer.digest,
        ] {
            let response = t.write(Method::DELETE, &format!("manifests/{digest}")).send().unwrap();
            assert_status_in(&response, true, &[404, 405], "delete manifest");
        }
        for blob in [
            &data.configs[2],
            &data.layer,
            &data.configs[4],
            &refs.ref_blob_a,
            &refs.ref_blob_b,
            &refs.empty_json,
        ] {
            let response = t.write(Method::DELETE, &format!("blobs/{}", blob.digest)).send().unwrap();
            assert_status_in(&response, true, &[404, 405], "delete blob");
        }
    }
);
