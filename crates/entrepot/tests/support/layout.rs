//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/`), as
//! skopeo reads and writes them: built with random layers, compared byte for
//! byte after a round trip.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::registry::{
    random_bytes, sha256, LAYER_GZIP, LAYER_TAR, OCI_CONFIG, OCI_INDEX, OCI_MANIFEST,
};

/// How a generated layer is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerKind {
    /// `application/vnd.oci.image.layer.v1.tar`.
    Tar,
    /// `application/vnd.oci.image.layer.v1.tar+gzip`.
    Gzip,
}

/// A descriptor of content in a layout.
#[derive(Debug, Clone)]
pub struct Blob {
    pub media_type: String,
    pub digest: String,
    pub size: usize,
}

impl Blob {
    pub fn descriptor(&self) -> Value {
        json!({"mediaType": self.media_type, "digest": self.digest, "size": self.size})
    }
}

/// An OCI image layout being written (`oci-layout`, `index.json`, `blobs/`).
pub struct OciLayout {
    pub dir: PathBuf,
    refs: Vec<Value>,
}

impl OciLayout {
    /// A new empty layout in `dir`.
    pub fn create(dir: &Path) -> OciLayout {
        fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
        fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
        let layout = OciLayout {
            dir: dir.to_owned(),
            refs: Vec::new(),
        };
        layout.write_index();
        layout
    }

    fn write_index(&self) {
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": self.refs});
        fs::write(
            self.dir.join("index.json"),
            serde_json::to_vec_pretty(&index).unwrap(),
        )
        .unwrap();
    }

    /// Store bytes as a blob.
    pub fn add_blob(&mut self, media_type: &str, bytes: &[u8]) -> Blob {
        let digest = sha256(bytes);
        let hex = digest.trim_start_matches("sha256:");
        fs::write(self.dir.join("blobs/sha256").join(hex), bytes).unwrap();
        Blob {
            media_type: media_type.to_owned(),
            digest,
            size: bytes.len(),
        }
    }

    /// Build a layer: a tar archive holding one file of `size` random bytes,
    /// gzipped or not. Returns the blob and its diff id.
    pub fn add_layer(&mut self, size: usize, kind: LayerKind) -> (Blob, String) {
        let mut builder = tar::Builder::new(Vec::new());
        let data = random_bytes(size);
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        let name = format!("data-{}.bin", &sha256(&data)[7..19]);
        builder
            .append_data(&mut header, &name, data.as_slice())
            .unwrap();
        let tar = builder.into_inner().unwrap();
        let diff_id = sha256(&tar);
        let blob = match kind {
            LayerKind::Tar => self.add_blob(LAYER_TAR, &tar),
            LayerKind::Gzip => {
                let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                gz.write_all(&tar).unwrap();
                let gz = gz.finish().unwrap();
                self.add_blob(LAYER_GZIP, &gz)
            }
        };
        (blob, diff_id)
    }

    /// Build an image of the given layers for `linux/{arch}`; returns its manifest blob.
    pub fn add_image(&mut self, layers: &[(usize, LayerKind)], arch: &str) -> Blob {
        let mut descriptors = Vec::new();
        let mut diff_ids = Vec::new();
        for (size, kind) in layers {
            let (blob, diff_id) = self.add_layer(*size, *kind);
            descriptors.push(blob.descriptor());
            diff_ids.push(diff_id);
        }
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/data.bin"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        });
        let config = self.add_blob(OCI_CONFIG, &serde_json::to_vec(&config).unwrap());
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config.descriptor(),
            "layers": descriptors,
        });
        self.add_blob(OCI_MANIFEST, &serde_json::to_vec(&manifest).unwrap())
    }

    /// Build an index of `(manifest, arch)` entries; returns its blob.
    pub fn add_index(&mut self, entries: &[(&Blob, &str)]) -> Blob {
        let manifests: Vec<Value> = entries
            .iter()
            .map(|(m, arch)| {
                let mut d = m.descriptor();
                d["platform"] = json!({"architecture": arch, "os": "linux"});
                d
            })
            .collect();
        let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests});
        self.add_blob(OCI_INDEX, &serde_json::to_vec(&index).unwrap())
    }

    /// Name `blob` (a manifest or index) `tag` in `index.json`.
    pub fn tag(&mut self, blob: &Blob, tag: &str) {
        let mut d = blob.descriptor();
        d["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
        self.refs.push(d);
        self.write_index();
    }
}

/// Path of a blob in a layout directory.
pub fn layout_blob(dir: &Path, digest: &str) -> PathBuf {
    dir.join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

/// The digest that `tag` names in a layout's `index.json`.
pub fn layout_ref(dir: &Path, tag: &str) -> String {
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("{tag} is not in {}/index.json: {index}", dir.display()))
        ["digest"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Assert that the manifest `digest` and everything it references (config,
/// layers, child manifests) are byte for byte the same in both layouts, and
/// that each pulled file hashes to its name. Returns how many blobs were compared.
pub fn assert_same_content(original: &Path, pulled: &Path, digest: &str) -> usize {
    let want = fs::read(layout_blob(original, digest)).unwrap();
    let got = fs::read(layout_blob(pulled, digest))
        .unwrap_or_else(|e| panic!("{digest} is missing from the pulled layout: {e}"));
    assert_eq!(
        sha256(&got),
        digest,
        "pulled file {digest} has other content"
    );
    assert!(
        want == got,
        "{digest} differs between the pushed and pulled layouts"
    );
    let doc: Value = serde_json::from_slice(&want).unwrap();
    let mut compared = 1;
    if let Some(children) = doc["manifests"].as_array() {
        for child in children {
            compared += assert_same_content(original, pulled, child["digest"].as_str().unwrap());
        }
        return compared;
    }
    let mut blobs = vec![doc["config"].clone()];
    blobs.extend(doc["layers"].as_array().cloned().unwrap_or_default());
    for blob in blobs {
        let d = blob["digest"].as_str().unwrap();
        let want = fs::read(layout_blob(original, d)).unwrap();
        let got = fs::read(layout_blob(pulled, d))
            .unwrap_or_else(|e| panic!("blob {d} was not pulled: {e}"));
        assert_eq!(sha256(&got), d, "pulled blob {d} has other content");
        assert!(want == got, "blob {d} differs");
        assert_eq!(blob["size"].as_u64(), Some(got.len() as u64));
        compared += 1;
    }
    compared
}

/// The digest of the image [`write_layout`] tagged `1.0`.
pub fn manifest_digest(layout: &Path) -> String {
    layout_ref(layout, "1.0")
}

/// An OCI layout in `dir` with one image of gzipped random layers of the
/// given sizes for `linux/amd64`, tagged `tag`; returns the manifest digest.
pub fn image_layout(dir: &Path, tag: &str, layers: &[usize]) -> String {
    let mut layout = OciLayout::create(dir);
    let layers: Vec<(usize, LayerKind)> = layers.iter().map(|s| (*s, LayerKind::Gzip)).collect();
    let manifest = layout.add_image(&layers, "amd64");
    layout.tag(&manifest, tag);
    manifest.digest
}

/// Write an OCI image layout holding one small image (one fixed layer, so
/// the same digests every time) tagged `1.0`.
pub fn write_layout(dir: &Path) {
    let mut layout = OciLayout::create(dir);
    let layer = layout.add_blob(LAYER_TAR, &b"entrepot IAM test layer\n".repeat(64));
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": { "type": "layers", "diff_ids": [layer.digest] },
        "config": {}
    }))
    .unwrap();
    let config = layout.add_blob(OCI_CONFIG, &config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [layer.descriptor()],
    }))
    .unwrap();
    let manifest = layout.add_blob(OCI_MANIFEST, &manifest);
    layout.tag(&manifest, "1.0");
}
