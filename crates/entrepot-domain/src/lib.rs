//! Domain types of entrepot.
//!
//! Everything here is pure: parsing and validating names, digests, manifests and
//! repository resources. Nothing in this crate performs I/O, so every type can be
//! unit-tested and fuzzed in isolation. The one exception is [`clock`]'s
//! `SystemClock`, which reads the machine's clock, and is a trait object so
//! that callers can be given another.

pub mod access_policy;
pub mod byte_size;
pub mod chunk_range;
pub mod cleanup;
pub mod clock;
pub mod content_digest;
pub mod cooldown;
pub mod crc32c;
pub mod digest;
pub mod iam;
pub mod manifest;
pub mod name;
pub mod range;
pub mod repository;
pub mod resource;
pub mod secret;
pub mod secret_filter;
pub mod secret_settings;
pub mod storage_quota;
pub mod token_id;
pub mod upstream;
pub mod virtual_repository;

pub use byte_size::{ByteSize, ByteSizeError};
pub use chunk_range::{parse_chunk_range, ChunkRangeError};
pub use content_digest::{Algorithm, ContentDigest, ContentHasher};
pub use digest::{Digest, DigestError, DigestHasher, Sha256Hasher};
pub use manifest::{Manifest, ManifestError, ManifestKind};
pub use name::{ImageName, ImagePath, NameError, ProjectId, Reference, RepositoryId, Tag};
pub use range::{parse_range, parse_range_header, ByteRange, RangeError};
pub use repository::{Format, Mode, Repository, RepositoryName};
pub use secret::{
    Labels, Secret, SecretId, SecretName, SecretNameError, SecretPayload, SecretVersion,
    SecretVersionName, VersionId, VersionState,
};
pub use secret_filter::{FilterError, SecretFilter};
pub use secret_settings::{Replication, Rotation, SecretSettings};
