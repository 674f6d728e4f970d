//! `conformance/04_management_test.go` of distribution-spec v1.1.1 ("Content
//! Management"): deleting a tag, a manifest and blobs, and what reads see
//! afterwards. Its specs run in order; each case replays those before it on
//! an image of its own. Deletes are writes: hosted repositories only.

use reqwest::blocking::Response;
use reqwest::Method;

use crate::fixture::*;
use crate::support::*;
use crate::v1_data::*;

const TAG: &str = "tagtest0";

/// "Setup": config[3], the layer, manifests[3] tagged `tagtest0`; the tag
/// count before anything is deleted.
fn setup(t: &Target) -> (V1Data, usize) {
    let data = V1Data::new();
    t.push_blob(&data.configs[3].content);
    t.push_blob(&data.layer.content);
    t.put_manifest_ok(TAG, OCI_MANIFEST, &data.manifests[3].content);
    let (status, tags) = t.tags("");
    assert_eq!(status, 200);
    (data, tags.len())
}

fn delete(t: &Target, rest: &str) -> Response {
    t.write(Method::DELETE, rest).send().unwrap()
}

/// "Manifest delete" up to the delete by digest.
fn delete_tag_and_manifest(t: &Target, data: &V1Data) {
    delete(t, &format!("manifests/{TAG}"));
    delete(t, &format!("manifests/{}", data.manifests[3].digest));
}

hosted_case!(
    /// "Manifest delete": DELETE request to manifest tag should return 202,
    /// unless tag deletion is disallowed (400 UNSUPPORTED/405).
    delete_request_to_manifest_tag_should_return_202,
    |t| {
        setup(t);
        let response = delete(t, &format!("manifests/{TAG}"));
        let status = response.status().as_u16();
        assert!([202, 400, 405].contains(&status), "{status}");
        if status == 400 {
            assert_eq!(first_error_code(&body_text(response)), "UNSUPPORTED");
        }
    }
);

hosted_case!(
    /// "Manifest delete": DELETE request to manifest (digest) should yield
    /// 202 response unless already deleted.
    delete_request_to_manifest_digest_should_yield_202_unless_already_deleted,
    |t| {
        let (data, _) = setup(t);
        delete(t, &format!("manifests/{TAG}"));
        let response = delete(t, &format!("manifests/{}", data.manifests[3].digest));
        let status = response.status().as_u16();
        assert!([202, 404].contains(&status), "{status}");
    }
);

hosted_case!(
    /// "Manifest delete": GET request to deleted manifest URL should yield
    /// 404 response, unless delete is disallowed (entrepot allows it: 404).
    get_request_to_deleted_manifest_url_should_yield_404,
    |t| {
        let (data, _) = setup(t);
        delete_tag_and_manifest(t, &data);
        let response = t
            .write(Method::GET, &format!("manifests/{}", data.manifests[3].digest))
            .send()
            .unwrap();
        assert_eq!(response.status(), 404);
    }
);

hosted_case!(
    /// "Manifest delete": GET request to tags list should reflect manifest
    /// deletion (one tag fewer; a 404 only when none is left).
    get_request_to_tags_list_should_reflect_manifest_deletion,
    |t| {
        let (data, before) = setup(t);
        delete_tag_and_manifest(t, &data);
        let (status, tags) = t.tags("");
        assert!([200, 404].contains(&status), "{status}");
        if status == 200 {
            assert_eq!(tags.len(), before - 1, "{tags:?}");
        } else {
            assert_eq!(before - 1, 0);
        }
    }
);

hosted_case!(
    /// "Content delete": DELETE request to blob URL should yield 202 response
    /// (config then layer; 404 and 405 allowed).
    delete_request_to_blob_url_should_yield_202,
    |t| {
        let (data, _) = setup(t);
        delete_tag_and_manifest(t, &data);
        for blob in [&data.configs[3], &data.layer] {
            let response = delete(t, &format!("blobs/{}", blob.digest));
            let status = response.status().as_u16();
            assert!([202, 404, 405].contains(&status), "{status}");
        }
    }
);

hosted_case!(
    /// "Content delete": GET request to deleted blob URL should yield 404 response.
    get_request_to_deleted_blob_url_should_yield_404,
    |t| {
        let (data, _) = setup(t);
        delete_tag_and_manifest(t, &data);
        let deleted = delete(t, &format!("blobs/{}", data.configs[3].digest));
        assert_eq!(deleted.status(), 202, "entrepot deletes blobs");
        delete(t, &format!("blobs/{}", data.layer.digest));
        let response = t
            .write(Method::GET, &format!("blobs/{}", data.configs[3].digest))
            .send()
            .unwrap();
        assert_eq!(response.status(), 404);
    }
);
