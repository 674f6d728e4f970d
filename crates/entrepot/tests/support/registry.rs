//! The OCI registry API (`/v2`) by plain HTTP: media types, digests, small
//! images built in memory, pushes by raw requests, error and header checks,
//! and where a blob lives in the data directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rand::RngCore;
use reqwest::blocking::Response;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};

use super::server::Entrepot;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// `sha256:<hex>` of some bytes.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Random bytes.
pub fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// Where the blob store keeps a committed blob in a data directory.
pub fn blob_path(data_dir: &Path, digest: &str) -> PathBuf {
    let hex = digest.trim_start_matches("sha256:");
    data_dir
        .join("blobs/blobs/sha256")
        .join(&hex[..2])
        .join(hex)
}

impl Entrepot {
    /// Where this server keeps a committed blob.
    pub fn blob_file(&self, digest: &str) -> PathBuf {
        blob_path(&self.data_dir, digest)
    }

    /// Push a blob in one request (`POST ...?digest=`); returns its digest.
    pub fn push_blob(&self, image: &str, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        let response = self
            .request(
                Method::POST,
                &format!("/v2/{image}/blobs/uploads/?digest={digest}"),
            )
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .unwrap();
        assert_eq!(
            response.status(),
            201,
            "push blob: {}",
            response.text().unwrap()
        );
        digest
    }

    /// Put a manifest; returns the response.
    pub fn put_manifest(
        &self,
        image: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Response {
        self.request(Method::PUT, &format!("/v2/{image}/manifests/{reference}"))
            .header("content-type", media_type)
            .body(bytes.to_vec())
            .send()
            .unwrap()
    }

    /// Push a small image's blobs and its manifest under `reference` by raw
    /// HTTP; asserts 201.
    pub fn push_image(&self, image: &str, reference: &str, img: &SmallImage) {
        for blob in &img.blobs {
            self.push_blob(image, blob);
        }
        let response = self.put_manifest(image, reference, OCI_MANIFEST, &img.manifest);
        assert_eq!(
            response.status(),
            201,
            "put manifest: {}",
            response.text().unwrap()
        );
        assert_eq!(header(&response, "docker-content-digest"), img.digest);
    }

    /// Push a new random small image tagged `tag`; returns it.
    pub fn push_small_image(&self, image: &str, tag: &str) -> SmallImage {
        let img = SmallImage::random();
        self.push_image(image, tag, &img);
        img
    }

    /// Push to `image` an artifact of `artifact_type` (one layer holding
    /// `payload`, the empty config, annotated `org.example.kind`) whose
    /// subject is `subject`; asserts 201 with `OCI-Subject`. Its digest and
    /// manifest size.
    pub fn push_artifact(
        &self,
        image: &str,
        subject: &SmallImage,
        artifact_type: &str,
        payload: &[u8],
    ) -> (String, usize) {
        let empty = self.push_blob(image, b"{}");
        let layer = self.push_blob(image, payload);
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": {"mediaType": OCI_EMPTY, "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": payload.len()}],
            "subject": {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": subject.manifest.len()},
            "annotations": {"org.example.kind": artifact_type},
        })
        .to_string()
        .into_bytes();
        let digest = sha256(&manifest);
        let response = self.put_manifest(image, &digest, OCI_MANIFEST, &manifest);
        assert_eq!(response.status(), 201, "{}", response.text().unwrap());
        assert_eq!(header(&response, "oci-subject"), subject.digest);
        (digest, manifest.len())
    }
}

/// A small image (config + one layer) built in memory.
#[derive(Debug, Clone)]
pub struct SmallImage {
    /// Manifest digest.
    pub digest: String,
    /// Manifest bytes.
    pub manifest: Vec<u8>,
    /// Layer then config bytes.
    pub blobs: Vec<Vec<u8>>,
}

impl SmallImage {
    /// A new image with a random 1 KiB layer.
    pub fn random() -> SmallImage {
        let layer = random_bytes(1024);
        let layer_digest = sha256(&layer);
        let config = json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer_digest]}})
            .to_string()
            .into_bytes();
        let manifest = image_manifest(&config, &layer).to_string().into_bytes();
        SmallImage {
            digest: sha256(&manifest),
            manifest,
            blobs: vec![layer, config],
        }
    }

    /// Digest of the layer.
    pub fn layer_digest(&self) -> String {
        sha256(&self.blobs[0])
    }
}

/// An OCI image manifest of one config and one uncompressed layer.
pub fn image_manifest(config: &[u8], layer: &[u8]) -> Value {
    json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha256(config), "size": config.len()},
        "layers": [{"mediaType": LAYER_TAR, "digest": sha256(layer), "size": layer.len()}],
    })
}

/// Assert an OCI error answer: status and `errors[0].code`. Returns the body.
pub fn assert_oci_error(response: Response, status: u16, code: &str) -> Value {
    let got_status = response.status().as_u16();
    let text = response.text().unwrap();
    assert_eq!(
        got_status, status,
        "expected {status} {code}, got {got_status}: {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("error body is not JSON: {text}"));
    assert_eq!(body["errors"][0]["code"], code, "body: {text}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "error without a message: {text}"
    );
    body
}

/// A header as text.
pub fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("response has no {name} header: {:?}", response.headers()))
        .to_str()
        .unwrap()
        .to_owned()
}

/// The `Link` header's next URL, if any.
pub fn next_link(response: &Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    let start = link.find('<')? + 1;
    let end = link.find('>')?;
    Some(link[start..end].to_owned())
}

/// Parse a query string into a map (for Link URLs).
pub fn query_of(url: &str) -> HashMap<String, String> {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}
