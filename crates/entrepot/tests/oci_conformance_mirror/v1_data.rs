//! The content of the v1.1.1 suite (`conformance/setup.go`), made afresh for
//! each case: five configs (one a workflow, each unique by a random author),
//! one gzip layer, five manifests whose config descriptor carries `data` and
//! an unspecified field, the blobs of the chunked and streamed pushes, and
//! the referrers of `03_discovery_test.go`.

use serde_json::{json, Value};

use crate::support::*;

/// `dummyDigest`: `sha256` of "hello world", never pushed.
pub fn dummy_digest() -> String {
    sha256(b"hello world")
}

/// `nonexistentManifest`.
pub const NONEXISTENT_MANIFEST: &str = ".INVALID_MANIFEST_NAME";
/// `testTagName`.
pub const TEST_TAG: &str = "tagtest0";
/// `emptyLayerTestTag`.
pub const EMPTY_LAYER_TAG: &str = "emptylayer";
/// `testRefArtifactTypeA` / `B` / `Index`.
pub const ARTIFACT_TYPE_A: &str = "application/vnd.nhl.peanut.butter.bagel";
pub const ARTIFACT_TYPE_B: &str = "application/vnd.nba.strawberry.jam.croissant";
pub const ARTIFACT_TYPE_INDEX: &str = "application/vnd.food.stand";
/// `testAnnotationKey`.
pub const ANNOTATION: &str = "org.opencontainers.conformance.test";

/// A blob and what the suite sends with it.
#[derive(Clone)]
pub struct Content {
    pub content: Vec<u8>,
    pub digest: String,
}

impl Content {
    pub fn new(content: Vec<u8>) -> Content {
        Content {
            digest: sha256(&content),
            content,
        }
    }
}

/// The suite's generated content.
pub struct V1Data {
    pub configs: Vec<Content>,
    pub layer: Content,
    pub manifests: Vec<Content>,
    /// `testBlobA` (42 random bytes, the streamed push).
    pub blob_a: Content,
    /// `testBlobB` (42 random bytes pushed in two chunks).
    pub blob_b: Content,
    /// The manifest with no layers (`emptyLayerManifestContent`).
    pub empty_layer_manifest: Content,
}

fn random_author() -> String {
    const LETTERS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-";
    random_bytes(16)
        .iter()
        .map(|b| LETTERS[usize::from(*b) % LETTERS.len()] as char)
        .collect()
}

fn pretty(value: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(value).unwrap()
}

fn manifest_of(config: &Content, layers: Value) -> Content {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    Content::new(pretty(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": config.digest,
            "size": config.content.len(),
            "data": b64.encode(&config.content),
            "newUnspecifiedField": b64.encode(b"hello world"),
        },
        "layers": layers,
    })))
}

impl V1Data {
    pub fn new() -> V1Data {
        let configs: Vec<Content> = (0..5)
            .map(|_| {
                Content::new(pretty(&json!({
                    "author": random_author(),
                    "architecture": "amd64",
                    "os": "linux",
                    "rootfs": {"type": "layers", "diff_ids": []},
                })))
            })
            .collect();
        let layer = Content::new(gzip(&random_bytes(1024)));
        let layers = json!([{
            "mediaType": LAYER_GZIP,
            "size": layer.content.len(),
            "digest": layer.digest,
            "newUnspecifiedField": null,
        }]);
        let manifests = configs
            .iter()
            .map(|config| manifest_of(config, layers.clone()))
            .collect();
        let empty_layer_manifest = manifest_of(&configs[1], json!([]));
        V1Data {
            configs,
            layer,
            manifests,
            blob_a: Content::new(random_bytes(42)),
            blob_b: Content::new(random_bytes(42)),
            empty_layer_manifest,
        }
    }

    /// `testBlobBChunk1` and `testBlobBChunk2` with their ranges.
    pub fn chunks(&self) -> [(Vec<u8>, String); 2] {
        let content = &self.blob_b.content;
        let split = content.len() / 2 + 1;
        [
            (content[..split].to_vec(), format!("0-{}", split - 1)),
            (
                content[split..].to_vec(),
                format!("{split}-{}", content.len() - 1),
            ),
        ]
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// The referrers content of `03_discovery_test.go`: artifacts whose subject
/// is `manifests[4]` (two by config media type, two by `artifactType`, one
/// index) and one whose subject (`manifests[3]`) is never pushed.
pub struct Referrers {
    pub empty_json: Content,
    pub ref_blob_a: Content,
    pub ref_blob_b: Content,
    pub a_config: Content,
    pub a_layer: Content,
    pub b_config: Content,
    pub b_layer: Content,
    pub c_layer: Content,
    pub index: Content,
}

impl Referrers {
    pub fn new(data: &V1Data) -> Referrers {
        let empty_json = Content::new(b"{}".to_vec());
        let empty_desc = json!({"mediaType": OCI_EMPTY, "size": 2, "digest": empty_json.digest});
        let ref_blob_a = Content::new(b"NHL Peanut Butter on my NHL bagel".to_vec());
        let ref_blob_b = Content::new(b"NBA Strawberry Jam on my NBA croissant".to_vec());
        let subject = |m: &Content| json!({"mediaType": OCI_MANIFEST, "size": m.content.len(), "digest": m.digest});
        let by_config = |blob: &Content, artifact_type: &str, note: &str| {
            Content::new(pretty(&json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": artifact_type, "size": blob.content.len(), "digest": blob.digest},
                "subject": subject(&data.manifests[4]),
                "layers": [empty_desc.clone()],
                "annotations": {ANNOTATION: note},
            })))
        };
        let by_layer = |blob: &Content, artifact_type: &str, subj: &Content, note: Option<&str>| {
            let mut m = json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": empty_desc.clone(),
                "subject": subject(subj),
                "layers": [{"mediaType": artifact_type, "size": blob.content.len(), "digest": blob.digest}],
            });
            if let Some(note) = note {
                m["annotations"] = json!({ ANNOTATION: note });
            }
            Content::new(pretty(&m))
        };
        let a_config = by_config(&ref_blob_a, ARTIFACT_TYPE_A, "test config a");
        let b_config = by_config(&ref_blob_b, ARTIFACT_TYPE_B, "test config b");
        let a_layer = by_layer(
            &ref_blob_a,
            ARTIFACT_TYPE_A,
            &data.manifests[4],
            Some("test layer a"),
        );
        let b_layer = by_layer(
            &ref_blob_b,
            ARTIFACT_TYPE_B,
            &data.manifests[4],
            Some("test layer b"),
        );
        let c_layer = by_layer(&ref_blob_b, ARTIFACT_TYPE_B, &data.manifests[3], None);
        let index = Content::new(pretty(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "artifactType": ARTIFACT_TYPE_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "size": a_config.content.len(), "digest": a_config.digest},
                {"mediaType": OCI_MANIFEST, "size": a_layer.content.len(), "digest": a_layer.digest},
            ],
            "subject": subject(&data.manifests[4]),
            "annotations": {ANNOTATION: "test index"},
        })));
        Referrers {
            empty_json,
            ref_blob_a,
            ref_blob_b,
            a_config,
            a_layer,
            b_config,
            b_layer,
            c_layer,
            index,
        }
    }

    /// `testAnnotationValues`: the annotation each referrer of
    /// `manifests[4]` carries.
    pub fn annotation_of(&self, digest: &str) -> Option<&'static str> {
        [
            (&self.a_config, "test config a"),
            (&self.b_config, "test config b"),
            (&self.a_layer, "test layer a"),
            (&self.b_layer, "test layer b"),
            (&self.index, "test index"),
        ]
        .into_iter()
        .find(|(blob, _)| blob.digest == digest)
        .map(|(_, note)| note)
    }
}
