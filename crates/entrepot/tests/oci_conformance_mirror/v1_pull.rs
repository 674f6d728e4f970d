//! `conformance/01_pull_test.go` of distribution-spec v1.1.1 ("Pull"). Its
//! setup pushes configs[0..2], the layer, manifests[0] under `tagtest0` and
//! manifests[1] by digest; each case here runs that setup on an image of its
//! own, then the case's requests, against a hosted repository and through a
//! remote repository in front of docker-registry.

use reqwest::Method;

use crate::fixture::*;
use crate::support::*;
use crate::v1_data::*;

/// 01_pull_test.go "Setup": the five "Populate registry with test ..." specs.
fn setup(t: &Target) -> V1Data {
    let data = V1Data::new();
    t.push_blob(&data.configs[0].content);
    t.push_blob(&data.configs[1].content);
    t.push_blob(&data.layer.content);
    t.put_manifest_ok(TEST_TAG, OCI_MANIFEST, &data.manifests[0].content);
    t.put_manifest_ok(
        &data.manifests[1].digest,
        OCI_MANIFEST,
        &data.manifests[1].content,
    );
    data
}

fn digest_header_is(response: &reqwest::blocking::Response, digest: &str) {
    if let Some(got) = header_opt(response, "docker-content-digest") {
        assert_eq!(got, digest, "Docker-Content-Digest");
    }
}

read_case!(
    /// "Pull blobs": HEAD request to nonexistent blob should result in 404 response.
    head_request_to_nonexistent_blob_should_result_in_404,
    |t| {
        setup(t);
        let response = t.read(Method::HEAD, &format!("blobs/{}", dummy_digest())).send().unwrap();
        assert_eq!(response.status(), 404);
    }
);

read_case!(
    /// "Pull blobs": HEAD request to existing blob should yield 200.
    head_request_to_existing_blob_should_yield_200,
    |t| {
        let data = setup(t);
        let response = t
            .read(Method::HEAD, &format!("blobs/{}", data.configs[0].digest))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        digest_header_is(&response, &data.configs[0].digest);
    }
);

read_case!(
    /// "Pull blobs": GET nonexistent blob should result in 404 response.
    get_nonexistent_blob_should_result_in_404,
    |t| {
        setup(t);
        let response = t.read(Method::GET, &format!("blobs/{}", dummy_digest())).send().unwrap();
        assert_eq!(response.status(), 404);
    }
);

read_case!(
    /// "Pull blobs": GET request to existing blob URL should yield 200.
    get_request_to_existing_blob_url_should_yield_200,
    |t| {
        let data = setup(t);
        let response = t
            .read(Method::GET, &format!("blobs/{}", data.configs[0].digest))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.bytes().unwrap().as_ref(), data.configs[0].content.as_slice());
    }
);

read_case!(
    /// "Pull manifests": HEAD request to nonexistent manifest should return 404.
    head_request_to_nonexistent_manifest_should_return_404,
    |t| {
        setup(t);
        let response = t
            .read(Method::HEAD, &format!("manifests/{NONEXISTENT_MANIFEST}"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 404);
    }
);

fn head_manifest(t: &Target, reference: &str, digest: &str) {
    let response = t
        .read(Method::HEAD, &format!("manifests/{reference}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "HEAD manifests/{reference}");
    digest_header_is(&response, digest);
}

read_case!(
    /// "Pull manifests": HEAD request to manifest[0] path (digest) should yield 200 response.
    head_request_to_manifest_0_path_digest_should_yield_200,
    |t| {
        let data = setup(t);
        head_manifest(t, &data.manifests[0].digest, &data.manifests[0].digest);
    }
);

read_case!(
    /// "Pull manifests": HEAD request to manifest[1] path (digest) should yield 200 response.
    head_request_to_manifest_1_path_digest_should_yield_200,
    |t| {
        let data = setup(t);
        head_manifest(t, &data.manifests[1].digest, &data.manifests[1].digest);
    }
);

read_case!(
    /// "Pull manifests": HEAD request to manifest path (tag) should yield 200 response.
    head_request_to_manifest_path_tag_should_yield_200,
    |t| {
        let data = setup(t);
        head_manifest(t, TEST_TAG, &data.manifests[0].digest);
    }
);

read_case!(
    /// "Pull manifests": GET nonexistent manifest should return 404.
    get_nonexistent_manifest_should_return_404,
    |t| {
        setup(t);
        let response = t
            .read(Method::GET, &format!("manifests/{NONEXISTENT_MANIFEST}"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 404);
    }
);

fn get_manifest(t: &Target, reference: &str, expected: &Content) {
    let response = t
        .read(Method::GET, &format!("manifests/{reference}"))
        .header("accept", OCI_MANIFEST)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200, "GET manifests/{reference}");
    assert_eq!(
        response.bytes().unwrap().as_ref(),
        expected.content.as_slice()
    );
}

read_case!(
    /// "Pull manifests": GET request to manifest[0] path (digest) should yield 200 response.
    get_request_to_manifest_0_path_digest_should_yield_200,
    |t| {
        let data = setup(t);
        get_manifest(t, &data.manifests[0].digest, &data.manifests[0]);
    }
);

read_case!(
    /// "Pull manifests": GET request to manifest[1] path (digest) should yield 200 response.
    get_request_to_manifest_1_path_digest_should_yield_200,
    |t| {
        let data = setup(t);
        get_manifest(t, &data.manifests[1].digest, &data.manifests[1]);
    }
);

read_case!(
    /// "Pull manifests": GET request to manifest path (tag) should yield 200 response.
    get_request_to_manifest_path_tag_should_yield_200,
    |t| {
        let data = setup(t);
        get_manifest(t, TEST_TAG, &data.manifests[0]);
    }
);

read_case!(
    /// "Error codes": 400 response body should contain OCI-conforming JSON message.
    /// (`GET manifests/sha256:totallywrong` is 400 with a spec error code, or 404.)
    error_400_response_body_should_contain_oci_conforming_json_message,
    |t| {
        setup(t);
        let response = t
            .read(Method::GET, "manifests/sha256:totallywrong")
            .header("content-type", OCI_MANIFEST)
            .body("blablabla")
            .send()
            .unwrap();
        let status = response.status().as_u16();
        assert!(status == 400 || status == 404, "got {status}");
        if status == 400 {
            let code = first_error_code(&body_text(response));
            assert!(ERROR_CODES.contains(&code.as_str()), "{code}");
        }
    }
);

hosted_case!(
    /// "Teardown": Delete manifest[0] and manifest[1] created in setup
    /// (`OCI_DELETE_MANIFEST_BEFORE_BLOBS` is true by default): 2xx or 405.
    teardown_delete_manifests_created_in_setup,
    |t| {
        let data = setup(t);
        for manifest in &data.manifests[..2] {
            let response = t
                .write(Method::DELETE, &format!("manifests/{}", manifest.digest))
                .send()
                .unwrap();
            assert_status_in(&response, true, &[405], "delete manifest");
        }
    }
);

hosted_case!(
    /// "Teardown": Delete config[0], config[1] and the layer blob created in
    /// setup, after the manifests: 2xx, 404 or 405.
    teardown_delete_blobs_created_in_setup,
    |t| {
        let data = setup(t);
        for manifest in &data.manifests[..2] {
            t.write(Method::DELETE, &format!("manifests/{}", manifest.digest))
                .send()
                .unwrap();
        }
        for blob in [&data.configs[0], &data.configs[1], &data.layer] {
            let response = t
                .write(Method::DELETE, &format!("blobs/{}", blob.digest))
                .send()
                .unwrap();
            assert_status_in(&response, true, &[404, 405], "delete blob");
        }
    }
);
