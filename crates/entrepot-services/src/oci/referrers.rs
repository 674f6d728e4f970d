//! The referrers index (`GET /v2/{name}/referrers/{digest}`) as every kind of
//! repository answers it: what is served, and how an index document is read
//! and filtered by artifact type.

use entrepot_domain::manifest::OCI_INDEX;
use entrepot_domain::Digest;

use super::content::CacheStatus;

/// A referrers index ready to serve.
#[derive(Debug, Clone)]
pub struct ServedReferrers {
    /// The index document (`application/vnd.oci.image.index.v1+json`).
    pub content: Vec<u8>,
    /// How a remote repository answered (`None` for the others).
    pub cache: Option<CacheStatus>,
    /// Seconds since the upstream last confirmed a stale answer.
    pub age_secs: Option<u64>,
}

impl ServedReferrers {
    /// Served from the cache because the upstream failed.
    pub fn stale(&self) -> bool {
        self.cache == Some(CacheStatus::Stale)
    }
}

/// Why an upstream's referrers index was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferrersIndexError {
    /// Not a JSON object with a `manifests` array.
    #[error("it is not an image index with a manifests list")]
    NotAnIndex,
    /// A descriptor without a valid `digest`, `mediaType` or `size`.
    #[error("descriptor {0} of its manifests list is not a valid descriptor")]
    BadDescriptor(usize),
}

/// The descriptors of an index document, each as a JSON object, checked to
/// carry a digest, a media type and a size.
pub fn descriptors(content: &[u8]) -> Result<Vec<serde_json::Value>, ReferrersIndexError> {
    let index: serde_json::Value =
        serde_json::from_slice(content).map_err(|_| ReferrersIndexError::NotAnIndex)?;
    let manifests = match index.get("manifests") {
        Some(serde_json::Value::Array(m)) => m.clone(),
        // An index without referrers may leave the list out.
        None if index.is_object() => Vec::new(),
        _ => return Err(ReferrersIndexError::NotAnIndex),
    };
    for (i, d) in manifests.iter().enumerate() {
        let valid = d
            .get("digest")
            .and_then(|v| v.as_str())
            .is_some_and(|v| v.parse::<Digest>().is_ok())
            && d.get("mediaType").is_some_and(|v| v.is_string())
            && d.get("size").is_some_and(|v| v.is_u64());
        if !valid {
            return Err(ReferrersIndexError::BadDescriptor(i));
        }
    }
    Ok(manifests)
}

/// The referrers index of `descriptors`, keeping those of `artifact_type`
/// when given.
pub fn render(descriptors: Vec<serde_json::Value>, artifact_type: Option<&str>) -> Vec<u8> {
    let manifests: Vec<serde_json::Value> = descriptors
        .into_iter()
        .filter(|d| {
            artifact_type.is_none()
                || d.get("artifactType").and_then(|v| v.as_str()) == artifact_type
        })
        .collect();
    serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    })
    .to_string()
    .into_bytes()
}

/// The tag the referrers tag schema keeps the referrers of `subject` under:
/// `<algorithm>-<hex>`, cut to the 128 characters a tag may have.
pub fn fallback_tag(subject: &Digest) -> String {
    let mut tag = format!("{}-{}", subject.algorithm().name(), subject.hex());
    tag.truncate(128);
    tag
}

#[cfg(test)]
mod tests {
    use super::*;
    use entrepot_domain::Algorithm;

    fn descriptor(artifact_type: Option<&str>) -> serde_json::Value {
        let mut d = serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": Digest::of(b"x").to_string(),
            "size": 12,
        });
        if let Some(t) = artifact_type {
            d["artifactType"] = t.into();
        }
        d
    }

    #[test]
    fn indexes_are_read_and_filtered_by_artifact_type() {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [descriptor(Some("application/sig")), descriptor(Some("application/sbom")), descriptor(None)],
        })
        .to_string();
        let found = descriptors(index.as_bytes()).unwrap();
        assert_eq!(found.len(), 3);
        let all: serde_json::Value = serde_json::from_slice(&render(found.clone(), None)).unwrap();
        assert_eq!(all["manifests"].as_array().unwrap().len(), 3);
        assert_eq!(all["mediaType"], OCI_INDEX);
        let sigs: serde_json::Value =
            serde_json::from_slice(&render(found, Some("application/sig"))).unwrap();
        assert_eq!(
            sigs["manifests"],
            serde_json::json!([descriptor(Some("application/sig"))])
        );
        assert_eq!(
            descriptors(b"{\"schemaVersion\":2}").unwrap(),
            Vec::<serde_json::Value>::new()
        );
    }

    #[test]
    fn documents_that_are_no_index_are_refused() {
        assert_eq!(descriptors(b"[]"), Err(ReferrersIndexError::NotAnIndex));
        assert_eq!(
            descriptors(b"not json"),
            Err(ReferrersIndexError::NotAnIndex)
        );
        assert_eq!(
            descriptors(b"{\"manifests\": {}}"),
            Err(ReferrersIndexError::NotAnIndex)
        );
        let bad = serde_json::json!({"manifests": [descriptor(None), {"digest": "sha256:zz", "mediaType": "x", "size": 1}]});
        assert_eq!(
            descriptors(bad.to_string().as_bytes()),
            Err(ReferrersIndexError::BadDescriptor(1))
        );
    }

    #[test]
    fn the_fallback_tag_replaces_the_colon_and_fits_a_tag() {
        let d = Digest::of(b"subject");
        assert_eq!(fallback_tag(&d), format!("sha256-{}", d.hex()));
        let long = Digest::of_algorithm(Algorithm::Sha512, b"subject");
        let tag = fallback_tag(&long);
        assert_eq!(tag.len(), 128);
        assert!(tag.starts_with("sha512-"));
        assert!(tag.parse::<entrepot_domain::Tag>().is_ok());
    }
}
