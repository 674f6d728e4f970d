//! Repositories: create, read, update and delete `projects/{p}/repositories/{r}`.
//!
//! The methods callers reach (the admin API, the console) take the caller's
//! [`Principal`](crate::access::Principal) and authorize inside (`callers.rs`); `upstream_test.rs`
//! sends `testUpstream` to the remote engine of the repository's format.
//! The methods without a principal are for the server itself (start-up) and
//! for front-ends that authorized the request already.

mod callers;
mod release_age;
mod upstream_test;
mod virtual_members;

use std::sync::Arc;

use entrepot_domain::cooldown::ReleaseAgeUpdate;
use entrepot_domain::repository::{RemoteConfig, UpstreamTimeouts};
use entrepot_domain::upstream::{docker_upstream, python_upstream};
use entrepot_domain::virtual_repository::VirtualConfig;
use entrepot_domain::{
    Format, Mode, ProjectId, Repository, RepositoryId, RepositoryName, SecretVersionName,
};
use entrepot_storage::{MetadataStore, SecretStore, StoreError};
use entrepot_upstream::HopCheck;

use crate::access::{AccessControl, AuthError, DenyAll};
use crate::clock::now_rfc3339;
use crate::paging::{Page, PageRequest};
use crate::remote::UpstreamFailure;
use crate::secrets::{SecretError, SecretService};

pub use callers::CreateRequest;
pub use upstream_test::UpstreamTester;

/// Errors of the repository service.
#[derive(Debug, thiserror::Error)]
pub enum RepositoryError {
    /// No such repository.
    #[error("repository {0} not found")]
    NotFound(String),
    /// No such project.
    #[error("project {0:?} not found; create it first or use an existing project")]
    ProjectNotFound(String),
    /// The repository exists already.
    #[error("repository {0} already exists")]
    AlreadyExists(String),
    /// The request is not acceptable; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The caller may not do this.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// The secret a remote repository is pointed at cannot be attached by
    /// the caller.
    #[error(transparent)]
    Secret(#[from] SecretError),
    /// `testUpstream` could not reach or use the upstream.
    #[error(transparent)]
    Upstream(#[from] UpstreamFailure),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a client asks for when creating a repository.
#[derive(Debug, Clone)]
pub struct NewRepository {
    /// Package format.
    pub format: Format,
    /// Hosted, remote or virtual.
    pub mode: Mode,
    /// Free text.
    pub description: String,
    /// Upstream settings, required for remote repositories.
    pub remote: Option<RemoteConfig>,
    /// Members and rules, required for virtual repositories.
    pub virtual_config: Option<VirtualConfig>,
}

/// The fields a client may change on an existing repository.
#[derive(Debug, Clone, Default)]
pub struct RepositoryUpdate {
    /// New description, if given.
    pub description: Option<String>,
    /// New upstream username, if given.
    pub remote_username: Option<String>,
    /// New password secret version, if given.
    pub remote_password_secret_version: Option<String>,
    /// Remove username and password secret.
    pub clear_remote_credentials: bool,
    /// New tag freshness window in seconds.
    pub remote_tag_ttl_secs: Option<u64>,
    /// New Python index page freshness window in seconds.
    pub remote_python_index_ttl_secs: Option<u64>,
    /// Serve stale content when the upstream fails.
    pub serve_stale: Option<bool>,
    /// Serve cached content while the access policy blocks the upstream.
    pub allow_cached_from_blocked: Option<bool>,
    /// New grace period of tags the upstream deleted, in seconds.
    pub remote_keep_deleted_secs: Option<u64>,
    /// New time an upstream 404 is remembered, in seconds (0: not at all).
    pub remote_negative_cache_secs: Option<u64>,
    /// New cap of the remote cache in bytes (0: no cap of its own).
    pub remote_cache_max_size_bytes: Option<u64>,
    /// New upstream time limits: each given one replaces the repository's,
    /// 0 puts the default back.
    pub remote_timeouts: UpstreamTimeouts,
    /// Set upstream credentials even if the registry access policy blocks the
    /// upstream.
    pub force: bool,
    /// Changes of the minimum release age (audited).
    pub release_age: ReleaseAgeUpdate,
    /// New members and rules of a virtual repository (replacing the whole
    /// list).
    pub virtual_config: Option<VirtualConfig>,
}

/// Options of creating a repository ([`CreateRequest::force`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct CreateOptions {
    /// Store a remote repository even if the registry access policy blocks its
    /// upstream (pulls stay blocked until the host is allowed).
    pub force: bool,
}

/// The base URL of a remote repository's upstream, as the access policy sees it.
pub fn upstream_url(format: Format, remote: &RemoteConfig) -> Option<url::Url> {
    resolve_upstream(format, remote).ok()
}

/// The upstream of a remote repository's settings, resolved by the rule of
/// its format: the one place a specification is read here.
fn resolve_upstream(
    format: Format,
    remote: &RemoteConfig,
) -> Result<url::Url, entrepot_domain::upstream::UpstreamSpecError> {
    match format {
        Format::Docker => docker_upstream(&remote.upstream, remote.allow_insecure_upstream)
            .map(|u| u.base_url().clone()),
        Format::Python => python_upstream(&remote.upstream, remote.allow_insecure_upstream)
            .map(|u| u.index_url().clone()),
    }
}

/// Check a secret version name: `projects/P/secrets/S/versions/V`, V a number or `latest`.
pub fn validate_secret_version(name: &str) -> Result<(), RepositoryError> {
    match name.parse::<SecretVersionName>() {
        Ok(_) => Ok(()),
        Err(_) => Err(RepositoryError::Invalid(format!(
            "{name:?} is not a secret version; use projects/PROJECT/secrets/SECRET/versions/VERSION (VERSION a number or latest)"
        ))),
    }
}

fn validate_remote(format: Format, remote: &RemoteConfig) -> Result<(), RepositoryError> {
    resolve_upstream(format, remote).map_err(|e| RepositoryError::Invalid(e.to_string()))?;
    if let Some(v) = &remote.password_secret_version {
        validate_secret_version(v)?;
    }
    remote
        .release_age
        .validate()
        .map_err(|e| RepositoryError::Invalid(e.to_string()))?;
    if remote.tag_ttl_secs > 365 * 24 * 3600 {
        return Err(RepositoryError::Invalid(
            "the tag freshness window may be at most one year".into(),
        ));
    }
    if remote
        .python_index_ttl_secs
        .is_some_and(|t| t > 365 * 24 * 3600)
    {
        return Err(RepositoryError::Invalid(
            "the Python index freshness window may be at most one year".into(),
        ));
    }
    Ok(())
}

/// Manages repository resources.
#[derive(Clone)]
pub struct RepositoryService {
    store: Arc<dyn MetadataStore>,
    upstream_check: Option<Arc<dyn HopCheck>>,
    access: Arc<dyn AccessControl>,
    secrets: Option<SecretService>,
    upstream_testers: Vec<(Format, Arc<dyn UpstreamTester>)>,
    audit: Option<Arc<dyn SecretStore>>,
}

impl RepositoryService {
    /// A service over the given store.
    pub fn new(store: Arc<dyn MetadataStore>) -> Self {
        Self {
            store,
            upstream_check: None,
            access: Arc::new(DenyAll),
            secrets: None,
            upstream_testers: Vec::new(),
            audit: None,
        }
    }

    /// Record changes of release-age settings in `audit`.
    pub fn with_audit_log(mut self, audit: Arc<dyn SecretStore>) -> Self {
        self.audit = Some(audit);
        self
    }

    /// Authorize callers through `access` (until then every caller is
    /// refused).
    pub fn with_access_control(mut self, access: Arc<dyn AccessControl>) -> Self {
        self.access = access;
        self
    }

    /// Check, through the secret manager, that a caller pointing a remote
    /// repository at a secret may read it (until then such requests are
    /// refused).
    pub fn with_secrets(mut self, secrets: SecretService) -> Self {
        self.secrets = Some(secrets);
        self
    }

    /// Send `testUpstream` for remote repositories of `format` to `tester`.
    pub fn with_upstream_tester(mut self, format: Format, tester: Arc<dyn UpstreamTester>) -> Self {
        self.upstream_testers.retain(|(f, _)| *f != format);
        self.upstream_testers.push((format, tester));
        self
    }

    /// Refuse remote repositories whose upstream host `check` refuses (the
    /// registry access policy), unless the caller forces it.
    pub fn with_upstream_check(mut self, check: Arc<dyn HopCheck>) -> Self {
        self.upstream_check = Some(check);
        self
    }

    async fn check_upstream(
        &self,
        format: Format,
        remote: &RemoteConfig,
    ) -> Result<(), RepositoryError> {
        let (Some(check), Some(url)) = (&self.upstream_check, upstream_url(format, remote)) else {
            return Ok(());
        };
        check.check(&url).await.map_err(|denied| {
            RepositoryError::Invalid(format!(
                "{}; or pass --force (\"force\": true) to store the repository settings anyway (pulls stay blocked until the host is allowed)",
                denied.message
            ))
        })
    }

    /// Create a repository in an existing project, without a permission
    /// check: for the server itself (the repositories made on first start).
    pub async fn create(
        &self,
        name: &RepositoryName,
        new: NewRepository,
    ) -> Result<Repository, RepositoryError> {
        self.insert(name, new, CreateOptions::default()).await
    }

    /// Create a repository in an existing project, with options.
    async fn insert(
        &self,
        name: &RepositoryName,
        new: NewRepository,
        options: CreateOptions,
    ) -> Result<Repository, RepositoryError> {
        self.require_project(&name.project).await?;
        let virtual_config = match (new.mode, new.virtual_config) {
            (Mode::VirtualRepository, Some(config)) => {
                Some(self.checked_members(name, new.format, config).await?)
            }
            (Mode::VirtualRepository, None) => {
                return Err(RepositoryError::Invalid(
                    "a virtual repository needs its members: pass --upstream-policy-file=FILE (virtualRepositoryConfig.upstreamPolicies)".into(),
                ))
            }
            (_, Some(_)) => {
                return Err(RepositoryError::Invalid(
                    "upstream policies are only for virtual repositories; pass --mode=virtual-repository".into(),
                ))
            }
            (_, None) => None,
        };
        match (new.mode, &new.remote) {
            (Mode::StandardRepository, None) => {}
            (Mode::StandardRepository, Some(_)) => {
                return Err(RepositoryError::Invalid(
                    "upstream settings are only for remote repositories; pass --mode=remote-repository".into(),
                ))
            }
            (Mode::RemoteRepository, Some(remote)) => validate_remote(new.format, remote)?,
            (Mode::RemoteRepository, None) => {
                return Err(RepositoryError::Invalid(
                    "a remote repository needs an upstream: pass --remote-docker-repo=DOCKER-HUB|GHCR|QUAY|K8S|ECR-PUBLIC|GITLAB|MCR|URL or --remote-python-repo=PYPI|URL".into(),
                ))
            }
            (Mode::VirtualRepository, None) => {}
            (Mode::VirtualRepository, Some(_)) => {
                return Err(RepositoryError::Invalid(
                    "upstream settings are only for remote repositories; a virtual repository reads its members".into(),
                ))
            }
        }
        if let (Some(remote), false) = (&new.remote, options.force) {
            self.check_upstream(new.format, remote).await?;
        }
        if new.description.len() > 2048 {
            return Err(RepositoryError::Invalid(
                "description is longer than 2048 characters".into(),
            ));
        }
        let now = now_rfc3339();
        let repo = Repository {
            name: name.to_string(),
            format: new.format,
            mode: new.mode,
            description: new.description,
            remote_repository_config: new.remote,
            virtual_repository_config: virtual_config,
            create_time: now.clone(),
            update_time: now,
        };
        match self.store.create_repository(name, &repo).await {
            Ok(()) => Ok(repo),
            Err(StoreError::AlreadyExists) => Err(RepositoryError::AlreadyExists(name.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// Look a repository up, without a permission check: for front-ends that
    /// authorized the request already.
    pub async fn get(&self, name: &RepositoryName) -> Result<Repository, RepositoryError> {
        self.store
            .get_repository(name)
            .await?
            .ok_or_else(|| RepositoryError::NotFound(name.to_string()))
    }

    /// One page of the repositories of a project, by id; the cursor is a
    /// repository id.
    async fn page(
        &self,
        project: &ProjectId,
        page: &PageRequest<RepositoryId>,
    ) -> Result<Page<Repository, RepositoryId>, RepositoryError> {
        self.require_project(project).await?;
        let rows = self
            .store
            .list_repositories(project, page.after.as_ref(), page.limit())
            .await?;
        // Only the last row's name is parsed: it is the next page's cursor.
        let page = Page::from_rows(rows, page, Repository::repository_name);
        let next = page
            .next
            .transpose()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?
            .map(|name| name.repository);
        Ok(Page {
            items: page.items,
            next,
        })
    }

    /// Change a repository's mutable fields.
    async fn change(
        &self,
        name: &RepositoryName,
        update: RepositoryUpdate,
    ) -> Result<Repository, RepositoryError> {
        let mut repo = self.get(name).await?;
        // Pointing credentials at an upstream is configuring entrepot to contact
        // it: say now that the policy blocks it, not at the next pull. Cache
        // settings stay changeable, allowCachedFromBlocked above all.
        let sets_credentials = update
            .remote_username
            .as_deref()
            .is_some_and(|u| !u.is_empty())
            || update
                .remote_password_secret_version
                .as_deref()
                .is_some_and(|v| !v.is_empty());
        if let Some(description) = update.description {
            repo.description = description;
        }
        let touches_remote = update.remote_username.is_some()
            || update.remote_password_secret_version.is_some()
            || update.clear_remote_credentials
            || update.remote_tag_ttl_secs.is_some()
            || update.remote_python_index_ttl_secs.is_some()
            || update.serve_stale.is_some()
            || update.allow_cached_from_blocked.is_some()
            || update.remote_keep_deleted_secs.is_some()
            || update.remote_negative_cache_secs.is_some()
            || update.remote_cache_max_size_bytes.is_some()
            || update.remote_timeouts != UpstreamTimeouts::default()
            || (!update.release_age.is_empty() && repo.mode != Mode::VirtualRepository);
        if touches_remote {
            let format = repo.format;
            let remote = repo.remote_repository_config.as_mut().ok_or_else(|| {
                RepositoryError::Invalid(format!(
                    "{} is not a remote repository; upstream settings do not apply",
                    name
                ))
            })?;
            if update.clear_remote_credentials {
                remote.username = None;
                remote.password_secret_version = None;
            }
            if let Some(u) = update.remote_username {
                remote.username = Some(u).filter(|u| !u.is_empty());
            }
            if let Some(v) = update.remote_password_secret_version {
                remote.password_secret_version = Some(v).filter(|v| !v.is_empty());
            }
            if let Some(ttl) = update.remote_tag_ttl_secs {
                remote.tag_ttl_secs = ttl;
            }
            if let Some(ttl) = update.remote_python_index_ttl_secs {
                remote.python_index_ttl_secs = Some(ttl);
            }
            if let Some(stale) = update.serve_stale {
                remote.serve_stale = stale;
            }
            if let Some(allow) = update.allow_cached_from_blocked {
                remote.allow_cached_from_blocked = allow;
            }
            if let Some(secs) = update.remote_keep_deleted_secs {
                remote.keep_deleted_secs = Some(secs);
            }
            if let Some(secs) = update.remote_negative_cache_secs {
                remote.negative_cache_secs = Some(secs);
            }
            if let Some(bytes) = update.remote_cache_max_size_bytes {
                remote.cache_max_size_bytes = Some(bytes).filter(|b| *b > 0);
            }
            let (given, kept) = (update.remote_timeouts, &mut remote.timeouts);
            for (given, kept) in [
                (given.connect_timeout_secs, &mut kept.connect_timeout_secs),
                (
                    given.first_byte_timeout_secs,
                    &mut kept.first_byte_timeout_secs,
                ),
                (given.retry_budget_secs, &mut kept.retry_budget_secs),
                (given.idle_timeout_secs, &mut kept.idle_timeout_secs),
            ] {
                if let Some(secs) = given {
                    *kept = Some(secs).filter(|s| *s > 0);
                }
            }
            update
                .release_age
                .apply(&mut remote.release_age)
                .map_err(|e| RepositoryError::Invalid(e.to_string()))?;
            validate_remote(format, remote)?;
            if sets_credentials && !update.force {
                self.check_upstream(format, remote).await?;
            }
        }
        if let Some(config) = update.virtual_config {
            if repo.mode != Mode::VirtualRepository {
                return Err(RepositoryError::Invalid(format!(
                    "{name} is not a virtual repository; upstream policies do not apply"
                )));
            }
            let mut config = self.checked_members(name, repo.format, config).await?;
            // A new member list keeps the release age unless it brings one:
            // the age is changed through `releaseAge` (audited).
            if config.release_age.is_off() {
                if let Some(kept) = &repo.virtual_repository_config {
                    config.release_age = kept.release_age.clone();
                }
            }
            repo.virtual_repository_config = Some(config);
        }
        if repo.mode == Mode::VirtualRepository && !update.release_age.is_empty() {
            let config = repo.virtual_repository_config.as_mut().ok_or_else(|| {
                RepositoryError::Invalid(format!("{name} has no upstream policies"))
            })?;
            update
                .release_age
                .apply(&mut config.release_age)
                .map_err(|e| RepositoryError::Invalid(e.to_string()))?;
        }
        repo.update_time = now_rfc3339();
        if !self.store.update_repository(name, &repo).await? {
            return Err(RepositoryError::NotFound(name.to_string()));
        }
        Ok(repo)
    }

    /// Delete a repository, everything in it and its IAM policy (one store
    /// transaction removes the repository and the policy together, so that
    /// a new repository of the same name never inherits its grants).
    async fn remove(&self, name: &RepositoryName) -> Result<(), RepositoryError> {
        if self.store.delete_repository_with_policy(name).await? {
            Ok(())
        } else {
            Err(RepositoryError::NotFound(name.to_string()))
        }
    }

    async fn require_project(&self, project: &ProjectId) -> Result<(), RepositoryError> {
        match self.store.get_project(project).await? {
            Some(_) => Ok(()),
            None => Err(RepositoryError::ProjectNotFound(project.to_string())),
        }
    }

    /// The id of a repository, for callers holding only strings.
    pub fn name(project: &ProjectId, repository: &RepositoryId) -> RepositoryName {
        RepositoryName::new(project.clone(), repository.clone())
    }
}
