//! HTTP front-ends of entrepot.
//!
//! Each front-end parses a request into a typed endpoint, authenticates the
//! caller through the one [`AccessControl`] hook, calls a service, and maps
//! the service's error to its protocol's error body. Every service
//! authorizes the caller's principal itself, so no front-end holds a
//! permission of its own.

pub mod admin;
pub mod credentials;
pub mod forwarded;
pub mod observe;
pub mod oci;
pub mod ops;
pub mod pypi;
mod status_line;
mod upstream_failure;
pub mod zero_copy;

use std::sync::Arc;

use axum::Router;
use entrepot_services::metrics::Metrics;
use entrepot_services::python::PythonRepositories;
use entrepot_services::{
    AccessControl, AccessPolicyService, IamService, OciRepositories, ProjectService,
    RepositoryService, SecretService,
};

/// Everything the handlers need, built once at start-up.
#[derive(Clone)]
pub struct AppState {
    /// OCI content.
    pub registry: Arc<OciRepositories>,
    /// Repository resources.
    pub repositories: RepositoryService,
    /// Project resources.
    pub projects: ProjectService,
    /// Authentication and authorization.
    pub access: Arc<dyn AccessControl>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Python repositories.
    pub python: Arc<PythonRepositories>,
    /// IAM: principals, tokens, policies (the same object as `access` when IAM
    /// is enforced).
    pub iam: Arc<IamService>,
    /// The secret manager; it authorizes through the same `access` hook.
    pub secrets: SecretService,
    /// The registry access policy (also the upstream client's hop check).
    pub access_policy: Arc<AccessPolicyService>,
    /// What repositories hold: images, tags, packages, versions, sizes.
    pub inventory: entrepot_services::inventory::ArtifactInventory,
    /// The garbage collector of the blob store.
    pub gc: Arc<entrepot_services::gc::GarbageCollector>,
    /// Cleanup policies of repositories.
    pub cleanup: Arc<entrepot_services::cleanup::CleanupService>,
    /// Storage quotas of hosted repositories and projects.
    pub quotas: Arc<entrepot_services::quota::StorageQuotas>,
    /// Reverse proxies whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: forwarded::TrustedProxies,
    /// The registry mirror endpoint's repositories, by upstream host.
    pub mirrors: Arc<oci::mirror::Mirrors>,
    /// HTTP request metrics for `/metrics`.
    pub http_metrics: Arc<observe::HttpMetrics>,
}

/// The complete HTTP application.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// The HTTP application with `extra` routes (the web console) behind the
/// same client-origin, metrics and error layers.
pub fn router_with(state: AppState, extra: Router) -> Router {
    Router::new()
        .merge(oci::routes())
        .merge(admin::routes())
        .merge(ops::routes())
        .merge(pypi::routes())
        .with_state(state.clone())
        .merge(extra)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            admin::iam::iam_verbs,
        ))
        .layer(axum::middleware::from_fn(admin::json_errors))
        .layer(axum::middleware::from_fn_with_state(
            state.trusted_proxies.clone(),
            forwarded::client_origin,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.http_metrics.clone(),
            observe::observe,
        ))
}
