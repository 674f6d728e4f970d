//! Blobs in an S3-compatible bucket: where the bucket is
//! (`s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME`) and the credentials that
//! open it.
//!
//! On S3 the store keeps the path every backend takes through
//! [`ObjectBlobStore`]: each upload part (a PATCH, a monolithic PUT) is
//! streamed into its own object as an S3 multipart upload, 8 MiB parts sent
//! as they fill, so neither memory nor local disk ever holds a blob. A commit
//! of one part whose hash ran while it was written is a server-side copy of
//! that object to the blob's address; a commit of several parts streams them,
//! hashing, into one staging object (S3 refuses parts under 5 MiB but the
//! last, so client chunks cannot become parts of the final object as they
//! are) and copies that. Every copy to a blob address is create-only: a
//! multipart copy completed with `If-None-Match: *`, which a store that
//! implements conditional writes (Amazon S3, MinIO, R2) refuses with 412
//! when another node published first.

use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, S3ConditionalPut, S3CopyIfNotExists};
use object_store::prefix::PrefixStore;
use object_store::ObjectStore;

use super::{BlobError, ObjectBlobStore};

/// An S3 bucket (and an optional key prefix inside it) that holds the blobs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    /// The bucket.
    pub bucket: String,
    /// Keys start with this prefix (no leading or trailing `/`), if any.
    pub prefix: Option<String>,
    /// The S3 API's base URL (`http://127.0.0.1:3900`); Amazon S3 when unset.
    pub endpoint: Option<String>,
    /// The region the bucket's requests are signed for (`garage`, `us-east-1`).
    pub region: Option<String>,
}

/// Why an `s3://` location cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum S3LocationError {
    /// Not an `s3://` URL.
    #[error("{0:?} is not an s3://BUCKET?endpoint=URL&region=NAME location")]
    Scheme(String),
    /// A user or password in the URL; not echoed, as it may be a secret.
    #[error("the s3:// location must not hold credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the config file's keys")]
    CredentialsInUrl,
    /// No bucket name.
    #[error("{0:?} names no bucket")]
    NoBucket(String),
    /// A query parameter this store does not know.
    #[error("unknown parameter {0:?} (known: endpoint, region)")]
    Parameter(String),
    /// The endpoint is not an http(s) URL.
    #[error("endpoint {0:?} is not an http:// or https:// URL")]
    Endpoint(String),
}

impl std::str::FromStr for S3Location {
    type Err = S3LocationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let url = url::Url::parse(s).map_err(|_| S3LocationError::Scheme(s.to_owned()))?;
        if url.scheme() != "s3" {
            return Err(S3LocationError::Scheme(s.to_owned()));
        }
        if !url.username().is_empty() || url.password().is_some() {
            // Credentials never travel in the location: it is printed.
            return Err(S3LocationError::CredentialsInUrl);
        }
        let bucket = url
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| S3LocationError::NoBucket(s.to_owned()))?
            .to_owned();
        let prefix = Some(url.path().trim_matches('/').to_owned()).filter(|p| !p.is_empty());
        let mut location = Self {
            bucket,
            prefix,
            endpoint: None,
            region: None,
        };
        for (key, value) in url.query_pairs() {
            match &*key {
                "endpoint" => {
                    if !(value.starts_with("http://") || value.starts_with("https://")) {
                        return Err(S3LocationError::Endpoint(value.into_owned()));
                    }
                    location.endpoint = Some(value.trim_end_matches('/').to_owned());
                }
                "region" => location.region = Some(value.into_owned()),
                other => return Err(S3LocationError::Parameter(other.to_owned())),
            }
        }
        Ok(location)
    }
}

/// An access key of the bucket. Its secret never prints itself.
#[derive(Clone)]
pub struct S3Credentials {
    /// The access key id (`AWS_ACCESS_KEY_ID`).
    pub access_key_id: String,
    /// The secret access key (`AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

impl ObjectBlobStore {
    /// A blob store in an S3-compatible bucket. Without `credentials`, the
    /// standard `AWS_*` environment (access key, session token, web
    /// identity, instance metadata) is used. Fails when the location cannot
    /// be turned into a client; a wrong key or a missing bucket shows at the
    /// first request ([`super::BlobStore::check_writable`]).
    pub fn s3(
        location: &S3Location,
        credentials: Option<&S3Credentials>,
    ) -> Result<Self, BlobError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&location.bucket)
            // Every commit publishes create-only; see the module docs.
            .with_copy_if_not_exists(S3CopyIfNotExists::Multipart)
            .with_conditional_put(S3ConditionalPut::ETagMatch);
        if let Some(endpoint) = &location.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                // Self-hosted stores (Garage, MinIO) address buckets by path.
                .with_virtual_hosted_style_request(false);
        }
        if let Some(region) = &location.region {
            builder = builder.with_region(region);
        }
        if let Some(credentials) = credentials {
            builder = builder
                .with_access_key_id(&credentials.access_key_id)
                .with_secret_access_key(&credentials.secret_access_key);
        }
        let s3: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
        let store = match &location.prefix {
            Some(prefix) => Arc::new(PrefixStore::new(s3, prefix.as_str())) as Arc<dyn ObjectStore>,
            None => s3,
        };
        // Nodes sharing the bucket commit while this one starts; a commit
        // lasts seconds, so an hour-old staging object is a crash's leftover.
        Ok(Self::new(store).with_staging_leftover_age(3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_garage_location_parses() {
        let l: S3Location = "s3://blobs?endpoint=http://127.0.0.1:3900&region=garage"
            .parse()
            .unwrap();
        assert_eq!(
            l,
            S3Location {
                bucket: "blobs".into(),
                prefix: None,
                endpoint: Some("http://127.0.0.1:3900".into()),
                region: Some("garage".into()),
            }
        );
        let l: S3Location = "s3://b/team/registry/".parse().unwrap();
        assert_eq!(l.prefix.as_deref(), Some("team/registry"));
        assert_eq!(l.endpoint, None);
    }

    #[test]
    fn bad_locations_say_what_is_wrong() {
        for (s, e) in [
            (
                "/var/lib/blobs",
                S3LocationError::Scheme("/var/lib/blobs".into()),
            ),
            ("s3://key:secret@b", S3LocationError::CredentialsInUrl),
            (
                "s3://b?endpoint=127.0.0.1:3900",
                S3LocationError::Endpoint("127.0.0.1:3900".into()),
            ),
            (
                "s3://b?bucket=x",
                S3LocationError::Parameter("bucket".into()),
            ),
        ] {
            assert_eq!(s.parse::<S3Location>(), Err(e), "{s}");
        }
    }

    #[test]
    fn credentials_hide_their_secret() {
        let c = S3Credentials {
            access_key_id: "GK1".into(),
            secret_access_key: "very-secret".into(),
        };
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
