//! The remote (pull-through) cache engine, the same for every format.
//!
//! [`cache`] runs a request: it resolves the repository's upstream
//! ([`target`]), asks the access policy, decides whether a mutable document is
//! fresh or served stale ([`freshness`]), one request at a time per document
//! ([`locks`]), and downloads immutable content once, verified ([`fill`]),
//! once across servers that share a database ([`lease`]).
//! What went wrong is an [`UpstreamFailure`] ([`failure`]); front-ends choose
//! the status. `credentials` reads upstream credentials from the secret
//! manager as the project's service agent. A format says only where its
//! upstream is and how content is named and checked
//! ([`format`]): `crate::oci::remote` for OCI, `crate::python::remote` for
//! Python.

pub mod cache;
pub mod cache_status;
pub mod credentials;
pub mod failure;
pub mod fill;
pub mod format;
pub mod freshness;
pub mod lease;
pub mod locks;
pub mod refresh;
#[cfg(test)]
pub(crate) mod scripted;
pub mod target;

pub use cache::{Answer, CachedCopy, RateLimit, RemoteCache, UpstreamReport};
pub use cache_status::CacheStatus;
pub use credentials::{NoSecretReader, RepositoryCredentials, SecretPayload, SecretReader};
pub use failure::UpstreamFailure;
pub use fill::{Committed, FillError, Fills, FillsInFlight};
pub use format::{ContentSource, FetchedDocument, RemoteFormat};
pub use lease::FillLeases;
pub use refresh::{
    diff_files, ListedFile, RefreshOutcome, RefreshReport, Refreshed, VersionRefreshed,
};
pub use target::{Gate, Target};
