//! The content of the redesigned suite (`conformance/testdata.go` and
//! `GenerateData` of `conformance/run.go` on `main`): images of two layers
//! and a config, indexes of two platforms, artifacts, subjects, and what the
//! referrers of each subject must list. A data set records its blobs, its
//! manifests in push order (children first), its tags and its referrers.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use crate::fixture::*;
use crate::support::*;

pub const EXAMPLE_CONF_1: &str = "application/vnd.example.oci.conformance.config1+json";
pub const EXAMPLE_CONF_2: &str = "application/vnd.example.oci.conformance.config2+json";
pub const OCTET_STREAM: &str = "application/octet-stream";
pub const LAYER_ND_GZIP: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const LAYER_ND: &str = "application/vnd.oci.image.layer.nondistributable.v1.tar";

/// A manifest of a data set.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub digest: String,
    pub media_type: &'static str,
    pub bytes: Vec<u8>,
    pub subject: Option<String>,
}

/// A data set of the redesigned suite.
#[derive(Default)]
pub struct DataSet {
    pub algorithm: &'static str,
    /// Digest → bytes.
    pub blobs: BTreeMap<String, Vec<u8>>,
    /// In push order.
    pub manifests: Vec<Manifest>,
    /// Tag → digest.
    pub tags: BTreeMap<String, String>,
    /// Subject digest → the descriptors its referrers list must hold.
    pub referrers: BTreeMap<String, Vec<Value>>,
}

/// The generator options of `testdata.go` (`genWith...`).
#[derive(Clone, Default)]
pub struct Gen {
    pub tag: Option<String>,
    pub layers: Option<usize>,
    pub uncompressed: bool,
    pub artifact_type: Option<&'static str>,
    pub config_media_type: Option<&'static str>,
    pub config_bytes: Option<Vec<u8>>,
    pub layer_media_type: Option<&'static str>,
    pub layer_bytes: Option<Vec<u8>>,
    pub annotations: BTreeMap<String, String>,
    pub unique_annotation: bool,
    pub subject: Option<Value>,
    pub platform: Option<(&'static str, &'static str)>,
    pub descriptor_data: bool,
    pub extra_field: bool,
}

impl Gen {
    pub fn tag(mut self, tag: &str) -> Gen {
        self.tag = Some(tag.to_owned());
        self
    }

    /// An artifact: `artifactType`, an empty JSON config and one layer of
    /// `layer_media_type`.
    pub fn artifact(mut self, artifact_type: &'static str, layer_media_type: &'static str) -> Gen {
        self.artifact_type = Some(artifact_type);
        self.config_media_type = Some(OCI_EMPTY);
        self.config_bytes = Some(b"{}".to_vec());
        self.layers = Some(1);
        self.layer_media_type = Some(layer_media_type);
        self
    }

    pub fn annotated(mut self) -> Gen {
        self.annotations.insert(
            "org.opencontainers.conformance".to_owned(),
            "hello conformance test".to_owned(),
        );
        self.unique_annotation = true;
        self
    }

    pub fn subject(mut self, subject: &Value) -> Gen {
        self.subject = Some(subject.clone());
        self
    }
}

fn random_text() -> String {
    hex::encode(random_bytes(13))
}

impl DataSet {
    pub fn new(algorithm: &'static str) -> DataSet {
        DataSet {
            algorithm,
            ..DataSet::default()
        }
    }

    /// `addBlob`: keep `bytes`; its descriptor.
    pub fn add_blob(&mut self, bytes: Vec<u8>, media_type: &str, gen: &Gen) -> Value {
        let digest = digest_of(self.algorithm, &bytes);
        let mut descriptor =
            json!({"mediaType": media_type, "digest": digest, "size": bytes.len()});
        if gen.descriptor_data {
            descriptor["data"] = json!(base64::engine::general_purpose::STANDARD.encode(&bytes));
        }
        self.blobs.insert(digest, bytes);
        descriptor
    }

    /// `genLayer`: a small tar (compressed unless `uncompressed`); its
    /// descriptor and the digest of the uncompressed tar (the diff id).
    fn layer(&mut self, n: usize, gen: &Gen) -> (Value, String) {
        let tar = tar_of(&format!("layer-{n}.txt"), random_text().as_bytes());
        let diff_id = digest_of(self.algorithm, &tar);
        if gen.uncompressed {
            let d = self.add_blob(tar, LAYER_TAR, gen);
            return (d, diff_id);
        }
        let d = self.add_blob(gzip(&tar), LAYER_GZIP, gen);
        (d, diff_id)
    }

    /// `genManifestFull`: layers, config and manifest; the manifest's
    /// descriptor (with its platform, if any).
    pub fn image(&mut self, gen: &Gen) -> Value {
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for n in 0..gen.layers.unwrap_or(2) {
            match gen.layer_media_type {
                Some(mt) if !mt.starts_with("application/vnd.oci.image.layer.") => {
                    let bytes = gen
                        .layer_bytes
                        .clone()
                        .unwrap_or_else(|| random_bytes(2048));
                    let d = self.add_blob(bytes, mt, gen);
                    diff_ids.push(d["digest"].clone());
                    layers.push(d);
                }
                _ => {
                    let (d, diff_id) = self.layer(n, gen);
                    diff_ids.push(json!(diff_id));
                    layers.push(d);
                }
            }
        }
        let platform = gen.platform.unwrap_or(("linux", "amd64"));
        let config = match gen.config_media_type {
            None | Some(OCI_CONFIG) => {
                let mut c = json!({
                    "architecture": platform.1,
                    "os": platform.0,
                    "rootfs": {"type": "layers", "diff_ids": diff_ids},
                });
                if gen.extra_field {
                    c[format!("org.example.{}", random_text())] = json!(random_text());
                }
                self.add_blob(serde_json::to_vec(&c).unwrap(), OCI_CONFIG, gen)
            }
            Some(mt) => self.add_blob(gen.config_bytes.clone().unwrap_or_default(), mt, gen),
        };
        self.manifest(config, layers, gen)
    }

    /// `genManifest`.
    pub fn manifest(&mut self, config: Value, layers: Vec<Value>, gen: &Gen) -> Value {
        let mut m = json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST});
        if let Some(at) = gen.artifact_type {
            m["artifactType"] = json!(at);
        }
        m["config"] = config.clone();
        m["layers"] = json!(layers);
        let annotations = annotations_of(gen);
        if !annotations.is_empty() {
            m["annotations"] = Value::Object(annotations);
        }
        if let Some(subject) = &gen.subject {
            m["subject"] = subject.clone();
        }
        if gen.extra_field {
            m[format!("org.example.{}", random_text())] = json!(random_text());
        }
        let artifact_type = gen.artifact_type.map(str::to_owned).unwrap_or_else(|| {
            config["mediaType"]
                .as_str()
                .unwrap_or(OCI_CONFIG)
                .to_owned()
        });
        let platform = gen
            .platform
            .map(|(os, arch)| json!({"os": os, "architecture": arch}));
        self.add_manifest(m, OCI_MANIFEST, gen, &artifact_type, platform)
    }

    /// `genIndexFull`: an image for each platform (every option but the tag
    /// applies to the images too, as in `testdata.go`), then the index.
    pub fn index_full(&mut self, platforms: &[(&'static str, &'static str)], gen: &Gen) -> Value {
        let child_gen = Gen {
            tag: None,
            ..gen.clone()
        };
        let children: Vec<Value> = platforms
            .iter()
            .map(|p| {
                self.image(&Gen {
                    platform: Some(*p),
                    ..child_gen.clone()
                })
            })
            .collect();
        self.index(children, gen)
    }

    /// `genIndex` of the given children descriptors.
    pub fn index(&mut self, children: Vec<Value>, gen: &Gen) -> Value {
        let mut m = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children});
        if let Some(at) = gen.artifact_type {
            m["artifactType"] = json!(at);
        }
        let annotations = annotations_of(gen);
        if !annotations.is_empty() {
            m["annotations"] = Value::Object(annotations);
        }
        if let Some(subject) = &gen.subject {
            m["subject"] = subject.clone();
        }
        if gen.extra_field {
            m[format!("org.example.{}", random_text())] = json!(random_text());
        }
        let artifact_type = gen.artifact_type.unwrap_or("").to_owned();
        self.add_manifest(m, OCI_INDEX, gen, &artifact_type, None)
    }

    fn add_manifest(
        &mut self,
        m: Value,
        media_type: &'static str,
        gen: &Gen,
        artifact_type: &str,
        platform: Option<Value>,
    ) -> Value {
        let bytes = serde_json::to_vec(&m).unwrap();
        let digest = digest_of(self.algorithm, &bytes);
        let mut descriptor =
            json!({"mediaType": media_type, "digest": digest, "size": bytes.len()});
        if let Some(platform) = platform {
            descriptor["platform"] = platform;
        }
        let subject = m["subject"]["digest"].as_str().map(str::to_owned);
        if let Some(subject) = &subject {
            let mut referrer =
                json!({"mediaType": media_type, "digest": digest, "size": bytes.len()});
            if !artifact_type.is_empty() {
                referrer["artifactType"] = json!(artifact_type);
            }
            if let Some(annotations) = m.get("annotations") {
                referrer["annotations"] = annotations.clone();
            }
            self.referrers
                .entry(subject.clone())
                .or_default()
                .push(referrer);
        }
        if let Some(tag) = &gen.tag {
            self.tags.insert(tag.clone(), digest.clone());
        }
        self.manifests.push(Manifest {
            digest,
            media_type,
            bytes,
            subject,
        });
        descriptor
    }

    /// The descriptor of a manifest of this set (a subject), without platform.
    pub fn descriptor_of(&self, descriptor: &Value) -> Value {
        json!({
            "mediaType": descriptor["mediaType"],
            "digest": descriptor["digest"],
            "size": descriptor["size"],
        })
    }

    pub fn manifest_bytes(&self, digest: &str) -> &Manifest {
        self.manifests
            .iter()
            .find(|m| m.digest == digest)
            .expect("a manifest of the set")
    }
}

fn annotations_of(gen: &Gen) -> Map<String, Value> {
    let mut annotations: Map<String, Value> = gen
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    if gen.unique_annotation {
        annotations.insert(
            format!("org.example.{}", random_text()),
            json!(random_text()),
        );
    }
    annotations
}

/// A tar holding one file.
pub fn tar_of(name: &str, content: &[u8]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(content.len() as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, name, content).unwrap();
    builder.into_inner().unwrap()
}

/// Gzip of some bytes.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

const TWO_PLATFORMS: &[(&str, &str)] = &[("linux", "amd64"), ("linux", "arm64")];

/// The data sets of `GenerateData`, by name.
pub fn data_set(name: &str) -> DataSet {
    let mut ds = DataSet::new("sha256");
    match name {
        "image" => {
            ds.image(&Gen::default().tag("image"));
        }
        "image-uncompressed" => {
            ds.image(&Gen {
                uncompressed: true,
                ..Gen::default().tag("image-uncompressed")
            });
        }
        "large-manifest" => {
            let mut gen = Gen::default().tag("large-manifest");
            for i in 0..390 {
                gen.annotations
                    .insert(format!("large-annotation-{i}"), "A".repeat(10000));
            }
            ds.image(&gen);
        }
        "index" => {
            ds.index_full(TWO_PLATFORMS, &Gen::default().tag("index"));
        }
        "nested-index" => {
            let one = ds.index_full(TWO_PLATFORMS, &Gen::default());
            let two = ds.index_full(TWO_PLATFORMS, &Gen::default());
            ds.index(vec![one, two], &Gen::default().tag("index-of-index"));
        }
        "empty-index" => {
            ds.index_full(&[], &Gen::default().tag("index"));
        }
        "artifact" => {
            ds.image(
                &Gen::default()
                    .tag("artifact")
                    .artifact(EXAMPLE_CONF_1, EXAMPLE_CONF_1),
            );
        }
        "artifact-index" => {
            ds.index_full(
                TWO_PLATFORMS,
                &Gen::default()
                    .tag("artifact-index")
                    .artifact(EXAMPLE_CONF_1, EXAMPLE_CONF_1),
            );
        }
        "artifact-without-layers" => {
            let mut gen = Gen::default()
                .tag("artifact-without-layers")
                .artifact(EXAMPLE_CONF_1, OCI_EMPTY);
            gen.layer_bytes = Some(b"{}".to_vec());
            ds.image(&gen);
        }
        "artifacts-with-subject" => {
            let subject = ds.image(&Gen::default().tag("image"));
            let subject = ds.descriptor_of(&subject);
            ds.image(&Gen::default().subject(&subject));
            ds.image(
                &Gen::default()
                    .artifact(EXAMPLE_CONF_1, EXAMPLE_CONF_1)
                    .annotated()
                    .subject(&subject)
                    .tag("tagged-artifact1"),
            );
            ds.image(
                &Gen::default()
                    .artifact(EXAMPLE_CONF_2, OCTET_STREAM)
                    .annotated()
                    .subject(&subject)
                    .tag("tagged-artifact2"),
            );
        }
        "index-with-subject" => {
            let subject = ds.index_full(TWO_PLATFORMS, &Gen::default().tag("index"));
            let subject = ds.descriptor_of(&subject);
            ds.index_full(
                TWO_PLATFORMS,
                &Gen::default()
                    .artifact(EXAMPLE_CONF_1, EXAMPLE_CONF_1)
                    .annotated()
                    .subject(&subject)
                    .tag("tagged-artifact"),
            );
        }
        "missing-subject" => {
            let subject = json!({
                "mediaType": OCI_MANIFEST,
                "size": 123,
                "digest": sha256(b"missing content"),
            });
            ds.image(
                &Gen::default()
                    .artifact(EXAMPLE_CONF_1, EXAMPLE_CONF_1)
                    .annotated()
                    .subject(&subject)
                    .tag("tagged-artifact"),
            );
        }
        "data-field" => {
            ds.image(&Gen {
                descriptor_data: true,
                ..Gen::default().tag("data-field")
            });
        }
        "non-distributable-layers" => {
            let gen = Gen::default();
            let foreign = |media_type: &str, size: u64| {
                let digest = sha256(&random_bytes(256));
                json!({
                    "mediaType": media_type,
                    "digest": digest,
                    "size": size,
                    "urls": [format!("https://store.example.com/blobs/sha256/{}", &digest[7..])],
                })
            };
            let first = foreign(LAYER_ND_GZIP, 123_456);
            let second = foreign(LAYER_ND, 12_345);
            let (third, third_diff) = ds.layer(1, &gen);
            let config = json!({
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [sha256(&random_bytes(256)), second["digest"], third_diff]},
            });
            let config = ds.add_blob(serde_json::to_vec(&config).unwrap(), OCI_CONFIG, &gen);
            ds.manifest(
                config,
                vec![first, second, third],
                &gen.tag("non-distributable-image"),
            );
        }
        "custom-fields" => {
            ds.index_full(
                TWO_PLATFORMS,
                &Gen {
                    extra_field: true,
                    ..Gen::default().tag("custom-fields")
                },
            );
        }
        "no-layers" => {
            ds.image(&Gen {
                layers: Some(0),
                ..Gen::default().tag("no-layers")
            });
        }
        "sha512" => {
            ds = DataSet::new("sha512");
            ds.index_full(TWO_PLATFORMS, &Gen::default());
        }
        "tag-param-sha256" | "tag-param-sha512" => {
            ds = DataSet::new(if name.ends_with("512") {
                "sha512"
            } else {
                "sha256"
            });
            ds.index_full(TWO_PLATFORMS, &Gen::default().tag(name));
            let digests: Vec<String> = ds.manifests.iter().map(|m| m.digest.clone()).collect();
            for (i, digest) in digests.into_iter().enumerate() {
                ds.tags.insert(format!("{name}-{i}"), digest);
            }
        }
        "bad-digest-image" => {
            ds.image(&Gen::default());
            // Whitespace after the bytes the digest was computed over.
            if let Some(last) = ds.manifests.last_mut() {
                last.bytes.extend_from_slice(b"  ");
            }
        }
        other => panic!("no data set {other}"),
    }
    ds
}
