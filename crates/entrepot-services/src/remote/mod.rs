//! The remote (pull-through) cache engine.
//!
//! `fill` is format-agnostic: single-flight downloads of immutable content,
//! verified and committed atomically. `credentials` resolves upstream credentials
//! from the secret manager as the project's service agent. `docker` adds the OCI
//! naming and checking rules.

pub mod credentials;
pub mod docker;
pub mod fill;

pub use credentials::{NoSecretReader, RepositoryCredentials, SecretPayload, SecretReader};
pub use docker::{RateLimit, RemoteDocker, UpstreamReport};
pub use fill::{FillError, Fills};
