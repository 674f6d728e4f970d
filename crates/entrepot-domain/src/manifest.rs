//! Manifest validation: OCI image manifest and index, Docker schema2 manifest and
//! manifest list.
//!
//! The stored bytes are the truth; parsing here only checks the document and pulls
//! out what the registry needs to know (what it references, its subject, its
//! artifact type). The bytes themselves are kept exactly as received.

use serde::Deserialize;

use crate::digest::Digest;

/// OCI image manifest media type.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index media type.
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// Docker schema2 manifest media type.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list media type.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// OCI empty descriptor media type, used as config of artifacts.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";

/// The largest manifest entrepot accepts, in bytes.
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// Media types entrepot accepts for manifests.
pub const MANIFEST_MEDIA_TYPES: [&str; 4] = [
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

/// Why a manifest was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// Larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest is {0} bytes; the limit is 4 MiB (4194304 bytes)")]
    TooLarge(usize),
    /// Neither the header nor the document names a supported media type.
    #[error("manifest media type {0:?} is not supported; use one of: {list}", list = MANIFEST_MEDIA_TYPES.join(", "))]
    UnsupportedMediaType(String),
    /// The Content-Type header and the document's mediaType disagree.
    #[error("Content-Type {header:?} does not match the manifest's mediaType {body:?}")]
    MediaTypeMismatch {
        /// From the Content-Type header.
        header: String,
        /// From the document.
        body: String,
    },
    /// Not valid JSON, or fields of the wrong shape.
    #[error("manifest is not a valid {media_type} document: {reason}")]
    Invalid {
        /// The media type it was read as.
        media_type: String,
        /// What the JSON parser or the checks said.
        reason: String,
    },
}

/// A content descriptor, as found in manifests.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the referenced content.
    pub media_type: String,
    /// Digest of the referenced content.
    pub digest: Digest,
    /// Size of the referenced content in bytes.
    pub size: u64,
    /// Artifact type, on index entries and referrers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
    /// Platform, on index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<serde_json::Value>,
    /// Where else the content may be fetched from (non-distributable layers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urls: Option<Vec<String>>,
}

/// Media type prefix of OCI non-distributable layers (deprecated in
/// image-spec 1.1, still found in Windows images).
pub const OCI_NONDISTRIBUTABLE_PREFIX: &str = "application/vnd.oci.image.layer.nondistributable.";
/// Docker's foreign layer media type (Windows base layers).
pub const DOCKER_FOREIGN_LAYER: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";

impl Descriptor {
    /// Whether the registry need not hold the content: a non-distributable
    /// (foreign) layer, or one that names `urls` to fetch it from. The
    /// image-spec lets such a layer be absent from the registry, so a
    /// manifest referencing it is accepted without it.
    pub fn is_non_distributable(&self) -> bool {
        self.media_type.starts_with(OCI_NONDISTRIBUTABLE_PREFIX)
            || self.media_type == DOCKER_FOREIGN_LAYER
            || self.urls.as_ref().is_some_and(|u| !u.is_empty())
    }
}

/// Whether the manifest describes one image/artifact or a list of manifests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ManifestKind {
    /// An image manifest: config and layers are blobs.
    Image,
    /// An index or manifest list: entries are manifests.
    Index,
}

/// What the registry needs to know about a validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The effective media type.
    pub media_type: String,
    /// Image or index.
    pub kind: ManifestKind,
    /// Blobs this manifest references (config and layers), for image
    /// manifests; the config first.
    pub blobs: Vec<Descriptor>,
    /// Manifests this index references.
    pub manifests: Vec<Descriptor>,
    /// The subject, for artifacts that refer to another manifest.
    pub subject: Option<Descriptor>,
    /// `artifactType`, or the config media type of an image manifest.
    pub artifact_type: Option<String>,
    /// Manifest annotations.
    pub annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope {
    schema_version: Option<i64>,
    media_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageDoc {
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
    subject: Option<Descriptor>,
    artifact_type: Option<String>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct IndexDoc {
    manifests: Vec<Descriptor>,
    subject: Option<Descriptor>,
    artifact_type: Option<String>,
    annotations: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Manifest {
    /// Validate `bytes` as a manifest, given the request's Content-Type (if any).
    pub fn parse(content_type: Option<&str>, bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let header = content_type
            .map(|c| c.split(';').next().unwrap_or(c).trim().to_owned())
            .filter(|c| {
                !c.is_empty() && c != "application/json" && c != "application/octet-stream"
            });
        let envelope: Envelope =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid {
                media_type: header.clone().unwrap_or_else(|| "manifest".into()),
                reason: e.to_string(),
            })?;
        let media_type = match (&header, &envelope.media_type) {
            (Some(h), Some(b)) if h != b => {
                return Err(ManifestError::MediaTypeMismatch {
                    header: h.clone(),
                    body: b.clone(),
                })
            }
            (Some(h), _) => h.clone(),
            (None, Some(b)) => b.clone(),
            (None, None) => sniff(bytes),
        };
        if !MANIFEST_MEDIA_TYPES.contains(&media_type.as_str()) {
            return Err(ManifestError::UnsupportedMediaType(media_type));
        }
        let invalid = |reason: String| ManifestError::Invalid {
            media_type: media_type.clone(),
            reason,
        };
        if envelope.schema_version != Some(2) {
            return Err(invalid("schemaVersion must be 2".into()));
        }
        if media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST {
            let doc: IndexDoc =
                serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
            Ok(Manifest {
                media_type,
                kind: ManifestKind::Index,
                blobs: Vec::new(),
                manifests: doc.manifests,
                subject: doc.subject,
                artifact_type: doc.artifact_type,
                annotations: doc.annotations,
            })
        } else {
            let doc: ImageDoc =
                serde_json::from_slice(bytes).map_err(|e| invalid(e.to_string()))?;
            let artifact_type = doc
                .artifact_type
                .clone()
                .or_else(|| Some(doc.config.media_type.clone()));
            let mut blobs = vec![doc.config];
            blobs.extend(doc.layers);
            Ok(Manifest {
                media_type,
                kind: ManifestKind::Image,
                blobs,
                manifests: Vec::new(),
                subject: doc.subject,
                artifact_type,
                annotations: doc.annotations,
            })
        }
    }
}

/// Guess the media type of a document without `mediaType`: an index has `manifests`.
fn sniff(bytes: &[u8]) -> String {
    #[derive(Deserialize)]
    struct Probe {
        manifests: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Probe>(bytes) {
        Ok(Probe { manifests: Some(_) }) => OCI_INDEX.to_owned(),
        _ => OCI_MANIFEST.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(layers: usize) -> String {
        let d = Digest::of(b"x");
        let layer = format!(
            r#"{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{d}","size":1}}"#
        );
        format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{d}","size":1}},"layers":[{}]}}"#,
            vec![layer; layers].join(",")
        )
    }

    #[test]
    fn parses_image_manifest() {
        let m = Manifest::parse(Some(OCI_MANIFEST), image(2).as_bytes()).unwrap();
        assert_eq!(m.kind, ManifestKind::Image);
        assert_eq!(m.blobs.len(), 3);
        assert_eq!(
            m.artifact_type.as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn refuses_bad_documents() {
        assert!(matches!(
            Manifest::parse(Some(OCI_MANIFEST), b"{"),
            Err(ManifestError::Invalid { .. })
        ));
        assert!(matches!(
            Manifest::parse(Some(OCI_INDEX), image(1).as_bytes()),
            Err(ManifestError::MediaTypeMismatch { .. })
        ));
        assert!(matches!(
            Manifest::parse(Some("text/plain"), br#"{"schemaVersion":2}"#),
            Err(ManifestError::UnsupportedMediaType(_))
        ));
        let huge = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert!(matches!(
            Manifest::parse(None, &huge),
            Err(ManifestError::TooLarge(_))
        ));
        let bad_digest = image(1).replace("sha256:", "sha256:zz");
        assert!(matches!(
            Manifest::parse(Some(OCI_MANIFEST), bad_digest.as_bytes()),
            Err(ManifestError::Invalid { .. })
        ));
    }

    #[test]
    fn foreign_and_non_distributable_layers_are_told_apart() {
        let d = Digest::of(b"x");
        let doc = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{d}","size":1}},"layers":[
              {{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":1}},
              {{"mediaType":"application/vnd.oci.image.layer.nondistributable.v1.tar+gzip","digest":"{d}","size":1}},
              {{"mediaType":"{DOCKER_FOREIGN_LAYER}","digest":"{d}","size":1}},
              {{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"{d}","size":1,"urls":["https://example.com/l"]}}]}}"#
        );
        let m = Manifest::parse(Some(OCI_MANIFEST), doc.as_bytes()).unwrap();
        let foreign: Vec<bool> = m
            .blobs
            .iter()
            .map(Descriptor::is_non_distributable)
            .collect();
        assert_eq!(foreign, [false, false, true, true, true]);
    }

    #[test]
    fn sha512_descriptors_parse() {
        let d = Digest::of_algorithm(crate::Algorithm::Sha512, b"x");
        let doc = image(1).replace(&Digest::of(b"x").to_string(), &d.to_string());
        let m = Manifest::parse(Some(OCI_MANIFEST), doc.as_bytes()).unwrap();
        assert_eq!(m.blobs[0].digest, d);
    }
}
