//! Services of entrepot: the layer between protocol front-ends and storage.
//!
//! Front-ends parse and authenticate, then call a service; services enforce the
//! resource model's rules and use the storage edges. Nothing here knows HTTP.

pub mod access;
pub mod clock;
pub mod projects;
pub mod registry;
pub mod repositories;
pub mod secrets;

pub use access::{
    AccessControl, AllowAll, AuthError, Credentials, Permission, Principal, Resource,
};
pub use entrepot_storage::{ByteStream, ProjectRecord};
pub use projects::{ProjectError, ProjectService};
pub use registry::{Registry, RegistryError};
pub use repositories::{NewRepository, RepositoryError, RepositoryService, RepositoryUpdate};
pub use secrets::{AccessedVersion, SecretError, SecretService};
