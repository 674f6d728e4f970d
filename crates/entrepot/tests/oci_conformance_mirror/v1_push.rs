//! `conformance/02_push_test.go` of distribution-spec v1.1.1 ("Push"). The
//! suite's specs build on one another (a session opened by one spec is
//! closed by the next); each case here replays the specs before it on an
//! image of its own, asserting them too, then checks its own answer. Pushes
//! are writes: hosted repositories only (a remote repository refuses them,
//! see `remote_oci.rs`).

use reqwest::blocking::Response;
use reqwest::Method;

use crate::fixture::*;
use crate::support::*;
use crate::v1_data::*;

fn patch_streamed(t: &Target, data: &V1Data) -> Response {
    let session = t.start_upload();
    t.at(Method::PATCH, &session)
        .header("content-type", "application/octet-stream")
        .body(data.blob_a.content.clone())
        .send()
        .unwrap()
}

hosted_case!(
    /// "Content Upload Streamed": PATCH request with blob in body should yield 202 response.
    streamed_patch_request_with_blob_in_body_should_yield_202,
    |t| {
        let data = V1Data::new();
        assert_eq!(patch_streamed(t, &data).status(), 202);
    }
);

hosted_case!(
    /// "Content Upload Streamed": PUT request to session URL with digest should yield 201 response.
    streamed_put_request_to_session_url_with_digest_should_yield_201,
    |t| {
        let data = V1Data::new();
        let patched = patch_streamed(t, &data);
        assert_eq!(patched.status(), 202);
        let response = t
            .at(Method::PUT, &with_query(&location(&patched), "digest", &data.blob_a.digest))
            .header("content-type", "application/octet-stream")
            .send()
            .unwrap();
        assert_eq!(response.status(), 201, "{}", body_text(response));
        location(&response);
    }
);

hosted_case!(
    /// "Content Upload Monolithic": GET nonexistent blob should result in 404 response.
    monolithic_get_nonexistent_blob_should_result_in_404,
    |t| {
        let response = t.write(Method::GET, &format!("blobs/{}", dummy_digest())).send().unwrap();
        assert_eq!(response.status(), 404);
    }
);

fn post_with_digest(t: &Target, blob: &Content) -> Response {
    t.write(
        Method::POST,
        &with_query("blobs/uploads/", "digest", &blob.digest),
    )
    .header("content-type", "application/octet-stream")
    .body(blob.content.clone())
    .send()
    .unwrap()
}

hosted_case!(
    /// "Content Upload Monolithic": POST request with digest and blob should yield a 201 or 202.
    monolithic_post_request_with_digest_and_blob_should_yield_201_or_202,
    |t| {
        let data = V1Data::new();
        let response = post_with_digest(t, &data.configs[1]);
        location(&response);
        assert!([201, 202].contains(&response.status().as_u16()), "{}", response.status());
    }
);

hosted_case!(
    /// "Content Upload Monolithic": GET request to blob URL from prior request
    /// should yield 200 or 404 based on response code.
    monolithic_get_request_to_blob_url_from_prior_request_should_yield_200_or_404,
    |t| {
        let data = V1Data::new();
        let posted = post_with_digest(t, &data.configs[1]).status().as_u16();
        let response = t
            .write(Method::GET, &format!("blobs/{}", data.configs[1].digest))
            .send()
            .unwrap();
        let expected = if posted == 202 { 404 } else { 200 };
        assert_eq!(response.status().as_u16(), expected, "POST answered {posted}");
    }
);

hosted_case!(
    /// "Content Upload Monolithic": POST request should yield a session ID.
    monolithic_post_request_should_yield_a_session_id,
    |t| {
        let response = t.write(Method::POST, "blobs/uploads/").send().unwrap();
        assert_eq!(response.status(), 202);
        location(&response);
    }
);

fn put_monolithic(t: &Target, blob: &Content) -> Response {
    let session = t.start_upload();
    t.at(Method::PUT, &with_query(&session, "digest", &blob.digest))
        .header("content-type", "application/octet-stream")
        .body(blob.content.clone())
        .send()
        .unwrap()
}

hosted_case!(
    /// "Content Upload Monolithic": PUT upload of a blob should yield a 201 Response.
    monolithic_put_upload_of_a_blob_should_yield_201,
    |t| {
        let data = V1Data::new();
        let response = put_monolithic(t, &data.configs[1]);
        location(&response);
        assert_eq!(response.status(), 201);
    }
);

hosted_case!(
    /// "Content Upload Monolithic": GET request to existing blob should yield 200 response.
    monolithic_get_request_to_existing_blob_should_yield_200,
    |t| {
        let data = V1Data::new();
        assert_eq!(put_monolithic(t, &data.configs[1]).status(), 201);
        let response = t
            .write(Method::GET, &format!("blobs/{}", data.configs[1].digest))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.bytes().unwrap().as_ref(), data.configs[1].content.as_slice());
    }
);

hosted_case!(
    /// "Content Upload Monolithic": PUT upload of a layer blob should yield a 201 Response.
    monolithic_put_upload_of_a_layer_blob_should_yield_201,
    |t| {
        let data = V1Data::new();
        let response = put_monolithic(t, &data.layer);
        location(&response);
        assert_eq!(response.status(), 201);
    }
);

hosted_case!(
    /// "Content Upload Monolithic": GET request to existing layer should yield 200 response.
    monolithic_get_request_to_existing_layer_should_yield_200,
    |t| {
        let data = V1Data::new();
        assert_eq!(put_monolithic(t, &data.layer).status(), 201);
        let response = t
            .write(Method::GET, &format!("blobs/{}", data.layer.digest))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
    }
);

fn patch_chunk(t: &Target, at: &str, chunk: &(Vec<u8>, String)) -> Response {
    t.at(Method::PATCH, at)
        .header("content-type", "application/octet-stream")
        .header("content-range", &chunk.1)
        .body(chunk.0.clone())
        .send()
        .unwrap()
}

/// `POST` with `Content-Length: 0`: the session (`prevResponse`).
fn chunked_session(t: &Target) -> String {
    let response = t
        .write(Method::POST, "blobs/uploads/")
        .header("content-length", "0")
        .send()
        .unwrap();
    assert_eq!(response.status(), 202);
    location(&response)
}

/// The "Content Upload Chunked" specs up to "PATCH request with first chunk";
/// the session location (`prevResponse`) and the first PATCH's answer.
fn first_chunk(t: &Target, data: &V1Data) -> (String, Response) {
    let session = chunked_session(t);
    let [first, _] = data.chunks();
    let response = patch_chunk(t, &session, &first);
    (session, response)
}

hosted_case!(
    /// "Content Upload Chunked": Out-of-order blob upload should return 416.
    chunked_out_of_order_blob_upload_should_return_416,
    |t| {
        let data = V1Data::new();
        let session = chunked_session(t);
        let [_, second] = data.chunks();
        let response = patch_chunk(t, &session, &second);
        assert_eq!(response.status(), 416);
    }
);

hosted_case!(
    /// "Content Upload Chunked": PATCH request with first chunk should return 202.
    chunked_patch_request_with_first_chunk_should_return_202,
    |t| {
        let data = V1Data::new();
        let (_, response) = first_chunk(t, &data);
        assert_eq!(response.status(), 202);
        assert_eq!(header(&response, "range"), data.chunks()[0].1);
    }
);

hosted_case!(
    /// "Content Upload Chunked": Retry previous blob chunk should return 416.
    chunked_retry_previous_blob_chunk_should_return_416,
    |t| {
        let data = V1Data::new();
        let (session, first) = first_chunk(t, &data);
        assert_eq!(first.status(), 202);
        let response = patch_chunk(t, &session, &data.chunks()[0]);
        assert_eq!(response.status(), 416);
    }
);

/// The chunked specs up to "Get on stale blob upload"; its answer.
fn stale_get(t: &Target, data: &V1Data) -> Response {
    let (session, first) = first_chunk(t, data);
    assert_eq!(first.status(), 202);
    assert_eq!(patch_chunk(t, &session, &data.chunks()[0]).status(), 416);
    t.at(Method::GET, &session).send().unwrap()
}

hosted_case!(
    /// "Content Upload Chunked": Get on stale blob upload should return 204 with a range and location.
    chunked_get_on_stale_blob_upload_should_return_204_with_a_range_and_location,
    |t| {
        let data = V1Data::new();
        let response = stale_get(t, &data);
        assert_eq!(response.status(), 204);
        location(&response);
        assert_eq!(header(&response, "range"), data.chunks()[0].1);
    }
);

/// The chunked specs up to "PATCH request with second chunk"; its answer.
fn second_chunk(t: &Target, data: &V1Data) -> Response {
    let stale = stale_get(t, data);
    assert_eq!(stale.status(), 204);
    patch_chunk(t, &location(&stale), &data.chunks()[1])
}

hosted_case!(
    /// "Content Upload Chunked": PATCH request with second chunk should return 202.
    chunked_patch_request_with_second_chunk_should_return_202,
    |t| {
        let data = V1Data::new();
        let response = second_chunk(t, &data);
        assert_eq!(response.status(), 202);
        location(&response);
    }
);

hosted_case!(
    /// "Content Upload Chunked": PUT request with digest should return 201.
    chunked_put_request_with_digest_should_return_201,
    |t| {
        let data = V1Data::new();
        let second = second_chunk(t, &data);
        assert_eq!(second.status(), 202);
        let response = t
            .at(Method::PUT, &with_query(&location(&second), "digest", &data.blob_b.digest))
            .header("content-length", "0")
            .header("content-type", "application/octet-stream")
            .send()
            .unwrap();
        assert_eq!(response.status(), 201, "{}", body_text(response));
        let got = t
            .write(Method::GET, &format!("blobs/{}", data.blob_b.digest))
            .send()
            .unwrap();
        assert_eq!(got.bytes().unwrap().as_ref(), data.blob_b.content.as_slice());
    }
);

fn mount(t: &Target, digest: &str, from: Option<&str>) -> Response {
    let mut path = format!("/v2/{}/blobs/uploads/?mount={digest}", t.other_name());
    if let Some(from) = from {
        path = with_query(&path, "from", from);
    }
    t.writer().request(Method::POST, &path).send().unwrap()
}

/// The streamed push of `testBlobA` to `<name>`, which the mount specs
/// mount from.
fn push_blob_a(t: &Target, data: &V1Data) {
    t.push_blob(&data.blob_a.content);
}

hosted_case!(
    /// "Cross-Repository Content Mount": Cross-mounting of a blob without the
    /// from argument should yield session id.
    cross_mounting_of_a_blob_without_the_from_argument_should_yield_session_id,
    |t| {
        let response = mount(t, &dummy_digest(), None);
        assert_eq!(response.status(), 202);
        location(&response);
    }
);

hosted_case!(
    /// "Cross-Repository Content Mount": POST request to mount another
    /// repository's blob should return 201 or 202.
    post_request_to_mount_another_repositorys_blob_should_return_201_or_202,
    |t| {
        let data = V1Data::new();
        push_blob_a(t, &data);
        let response = mount(t, &data.blob_a.digest, Some(&t.write_name()));
        assert!([201, 202].contains(&response.status().as_u16()), "{}", response.status());
    }
);

hosted_case!(
    /// "Cross-Repository Content Mount": GET request to test digest within
    /// cross-mount namespace should return 200 (when the mount was 201, at
    /// the Location it answered).
    get_request_to_test_digest_within_cross_mount_namespace_should_return_200,
    |t| {
        let data = V1Data::new();
        push_blob_a(t, &data);
        let mounted = mount(t, &data.blob_a.digest, Some(&t.write_name()));
        assert_eq!(mounted.status(), 201, "entrepot mounts within a project");
        let at = location(&mounted);
        assert_eq!(
            at.trim_start_matches(&t.writer().base),
            format!("/v2/{}/blobs/{}", t.other_name(), data.blob_a.digest)
        );
        let response = t.at(Method::GET, &at).send().unwrap();
        assert_eq!(response.status(), 200);
    }
);

hosted_case!(
    /// "Cross-Repository Content Mount": Cross-mounting of nonexistent blob
    /// should yield session id (when the mount is 202, its Location is an
    /// upload of the cross-mount namespace).
    cross_mounting_of_nonexistent_blob_should_yield_session_id,
    |t| {
        let response = mount(t, &dummy_digest(), Some(&t.write_name()));
        assert_eq!(response.status(), 202);
        let at = location(&response);
        assert!(
            at.trim_start_matches(&t.writer().base)
                .starts_with(&format!("/v2/{}/blobs/uploads/", t.other_name())),
            "{at}"
        );
    }
);

hosted_case!(
    /// "Cross-Repository Content Mount": Cross-mounting without from, and
    /// automatic content discovery enabled should return a 201
    /// (`OCI_AUTOMATIC_CROSSMOUNT=true`: entrepot looks for the blob in the
    /// project's repositories the caller may pull).
    cross_mounting_without_from_and_automatic_content_discovery_enabled_should_return_201,
    |t| {
        let data = V1Data::new();
        push_blob_a(t, &data);
        assert_eq!(mount(t, &data.blob_a.digest, Some(&t.write_name())).status(), 201);
        let response = mount(t, &data.blob_a.digest, None);
        assert_eq!(response.status(), 201);
    }
);

hosted_case!(
    /// "Cross-Repository Content Mount": Cross-mounting without from, and
    /// automatic content discovery disabled should return a 202. Entrepot
    /// has automatic discovery within a project; across projects (where it
    /// never looks) the answer is the 202 this case expects.
    cross_mounting_without_from_and_automatic_content_discovery_disabled_should_return_202,
    |t| {
        let data = V1Data::new();
        push_blob_a(t, &data);
        let server = &t.fixture().server;
        // Only this case uses the project.
        let project = "elsewhere";
        server.create_project(project);
        server.create_repository_in(project, "conf");
        let path = format!("/v2/{project}/conf/img/blobs/uploads/?mount={}", data.blob_a.digest);
        let response = t.writer().request(Method::POST, &path).send().unwrap();
        assert_eq!(response.status(), 202);
    }
);

hosted_case!(
    /// "Manifest Upload": GET nonexistent manifest should return 404.
    manifest_upload_get_nonexistent_manifest_should_return_404,
    |t| {
        let response = t
            .write(Method::GET, &format!("manifests/{NONEXISTENT_MANIFEST}"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 404);
    }
);

/// The blobs manifests[1] needs (pushed by the monolithic specs).
fn push_manifest_1_blobs(t: &Target, data: &V1Data) {
    t.push_blob(&data.configs[1].content);
    t.push_blob(&data.layer.content);
}

hosted_case!(
    /// "Manifest Upload": PUT should accept a manifest upload (under tags test0..test3).
    put_should_accept_a_manifest_upload,
    |t| {
        let data = V1Data::new();
        push_manifest_1_blobs(t, &data);
        for i in 0..4 {
            let response = t.put_manifest(&format!("test{i}"), OCI_MANIFEST, &data.manifests[1].content);
            location(&response);
            assert_eq!(response.status(), 201);
        }
    }
);

hosted_case!(
    /// "Manifest Upload": Registry should accept a manifest upload with no
    /// layers (the suite only warns when it does not; entrepot must accept).
    registry_should_accept_a_manifest_upload_with_no_layers,
    |t| {
        let data = V1Data::new();
        push_manifest_1_blobs(t, &data);
        let response = t.put_manifest(EMPTY_LAYER_TAG, OCI_MANIFEST, &data.empty_layer_manifest.content);
        assert_eq!(response.status(), 201);
        location(&response);
    }
);

hosted_case!(
    /// "Manifest Upload": GET request to manifest URL (digest) should yield 200 response.
    manifest_upload_get_request_to_manifest_url_digest_should_yield_200,
    |t| {
        let data = V1Data::new();
        push_manifest_1_blobs(t, &data);
        t.put_manifest_ok("test0", OCI_MANIFEST, &data.manifests[1].content);
        let response = t
            .write(Method::GET, &format!("manifests/{}", data.manifests[1].digest))
            .header("accept", OCI_MANIFEST)
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
    }
);

hosted_case!(
    /// "Teardown": Delete manifest created in tests (and the one with no
    /// layers), then the config and layer blobs: 2xx/405, then 2xx/404/405.
    push_teardown_deletes_manifests_then_blobs,
    |t| {
        let data = V1Data::new();
        push_manifest_1_blobs(t, &data);
        t.put_manifest_ok("test0", OCI_MANIFEST, &data.manifests[1].content);
        t.put_manifest_ok(EMPTY_LAYER_TAG, OCI_MANIFEST, &data.empty_layer_manifest.content);
        for digest in [&data.manifests[1].digest, &data.empty_layer_manifest.digest] {
            let response = t.write(Method::DELETE, &format!("manifests/{digest}")).send().unwrap();
            assert_status_in(&response, true, &[405], "delete manifest");
        }
        for blob in [&data.configs[1], &data.layer] {
            let response = t.write(Method::DELETE, &format!("blobs/{}", blob.digest)).send().unwrap();
            assert_status_in(&response, true, &[404, 405], "delete blob");
        }
    }
);
