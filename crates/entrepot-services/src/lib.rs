//! Services of entrepot: the layer between protocol front-ends and storage.
//!
//! Front-ends parse and authenticate, then call a service; services enforce the
//! resource model's rules and use the storage edges. Nothing here knows HTTP.

pub mod access;
pub mod access_policy;
#[cfg(test)]
mod access_testing;
pub mod authn;
pub mod cleanup;
pub mod clock;
pub mod cluster;
pub mod console_sessions;
pub mod credential_cache;
pub mod eviction;
pub mod gc;
pub mod host_needs;
pub mod iam;
pub mod inventory;
pub mod keyed_cache;
pub mod located;
pub mod metrics;
pub mod oci;
pub mod origin;
pub mod paging;
pub mod password_checks;
pub mod projects;
pub mod prometheus;
pub mod python;
pub mod quota;
pub mod remote;
pub mod repositories;
pub mod secrets;
pub mod upstream_metrics;
mod workdir;

pub use access::{
    AccessControl, AllowAll, AuthError, Credentials, DenyAll, Permission, Principal, Resource,
};
pub use access_policy::{AccessPolicyService, AccessPolicyServiceError, CurrentAccessPolicy};
pub use entrepot_storage::{AuditEntry, ServiceAccountRecord, TokenKey, TokenRecord, UserRecord};
pub use entrepot_storage::{BlobError, ByteStream, ProjectRecord, StoreError};
pub use iam::{service_agent, IamError, IamService, SecretDirectory};
pub use oci::{OciRepositories, RegistryError};
pub use paging::{Page, PageRequest, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE};
pub use projects::{ProjectError, ProjectService};
pub use repositories::{
    CreateOptions, CreateRequest, NewRepository, RepositoryError, RepositoryService,
    RepositoryUpdate, UpstreamTester,
};
pub use secrets::{AccessedVersion, Expiry, NewSecret, SecretChanges, SecretError, SecretService};
