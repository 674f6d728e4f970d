//! The repository resource in the shape of Google's
//! `google.devtools.artifactregistry.v1.Repository`, both ways: rendered from
//! entrepot's [`Repository`], and read from a request body into what the
//! repository service takes.
//!
//! One shape serves both the `projects/{p}/repositories` and the
//! `projects/{p}/locations/{l}/repositories` paths: entrepot's own fields
//! (`remoteRepositoryConfig.upstream`, `username`, `passwordSecretVersion`,
//! `tagTtlSecs`, `serveStale`) stay next to Google's (`dockerRepository`,
//! `pythonRepository`, `upstreamCredentials`), so clients of either keep
//! working. Google's clients ignore fields they do not know.

use entrepot_domain::repository::{
    RemoteConfig, UpstreamTimeouts, DEFAULT_KEEP_DELETED_SECS, DEFAULT_NEGATIVE_CACHE_SECS,
    DEFAULT_TAG_TTL_SECS,
};
use entrepot_domain::virtual_repository::VirtualConfig;
use entrepot_domain::{Format, Mode, Repository};
use entrepot_services::repositories::CreateRequest;
use entrepot_services::RepositoryUpdate;
use serde::Deserialize;
use serde_json::{json, Value};

use super::cleanup_fields::CleanupChange;
use crate::admin::ApiError;

/// How enum values are written: Google's REST clients ask for numbers with
/// `$alt=json;enum-encoding=int`; everyone else gets names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EnumEncoding {
    /// `"DOCKER"`.
    Names,
    /// `1`.
    Numbers,
}

impl EnumEncoding {
    /// The encoding a query asks for (`$alt` or `alt` holding `enum-encoding=int`).
    pub fn of_query(query: &std::collections::HashMap<String, String>) -> Self {
        let numbers = ["$alt", "alt"].iter().any(|k| {
            query
                .get(*k)
                .is_some_and(|v| v.split(';').any(|p| p.trim() == "enum-encoding=int"))
        });
        if numbers {
            Self::Numbers
        } else {
            Self::Names
        }
    }

    fn value(self, name: &str, number: i64) -> Value {
        match self {
            Self::Names => Value::String(name.to_owned()),
            Self::Numbers => Value::from(number),
        }
    }
}

/// Google's numbers for the repository formats entrepot serves.
const FORMATS: &[(&str, i64)] = &[("DOCKER", 1), ("PYTHON", 8)];
/// Google's numbers for the repository modes.
const MODES: &[(&str, i64)] = &[
    ("STANDARD_REPOSITORY", 1),
    ("VIRTUAL_REPOSITORY", 2),
    ("REMOTE_REPOSITORY", 3),
];
/// `DockerRepository.PublicRepository.DOCKER_HUB` and
/// `PythonRepository.PublicRepository.PYPI` are both 1.
const PUBLIC_REPOSITORY_NUMBER: i64 = 1;

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Docker => "DOCKER",
        Format::Python => "PYTHON",
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::StandardRepository => "STANDARD_REPOSITORY",
        Mode::RemoteRepository => "REMOTE_REPOSITORY",
        Mode::VirtualRepository => "VIRTUAL_REPOSITORY",
    }
}

fn number_of(table: &[(&str, i64)], name: &str) -> i64 {
    table
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(0, |(_, v)| *v)
}

/// Render a repository. `name` is the resource name to show (with or
/// without a location).
pub(crate) fn render(repo: &Repository, name: &str, enums: EnumEncoding) -> Value {
    let mut value = serde_json::to_value(repo).unwrap_or_else(|_| json!({}));
    value["name"] = Value::String(name.to_owned());
    let format = format_name(repo.format);
    let mode = mode_name(repo.mode);
    value["format"] = enums.value(format, number_of(FORMATS, format));
    value["mode"] = enums.value(mode, number_of(MODES, mode));
    if let (Some(remote), Some(config)) = (
        repo.remote_repository_config.as_ref(),
        value.get_mut("remoteRepositoryConfig"),
    ) {
        add_google_remote_fields(repo.format, remote, config, enums);
    }
    value
}

/// Entrepot's own fields of `remoteRepositoryConfig`, which Google's
/// message does not have.
const ENTREPOT_REMOTE_FIELDS: &[&str] = &[
    "upstream",
    "username",
    "passwordSecretVersion",
    "tagTtlSecs",
    "serveStale",
    "allowInsecureUpstream",
    "allowCachedFromBlocked",
    "releaseAge",
    "cacheMaxSizeBytes",
];

/// Render a repository with Google's fields only: what the `locations`
/// paths answer. Google's clients parse a repository inside an `Operation`
/// strictly, refusing fields they do not know.
pub(crate) fn render_google(repo: &Repository, name: &str, enums: EnumEncoding) -> Value {
    let mut value = render(repo, name, enums);
    if let Some(config) = value
        .get_mut("remoteRepositoryConfig")
        .and_then(Value::as_object_mut)
    {
        for field in ENTREPOT_REMOTE_FIELDS {
            config.remove(*field);
        }
    }
    if let Some(config) = value
        .get_mut("virtualRepositoryConfig")
        .and_then(Value::as_object_mut)
    {
        config.remove("allowRemoteShadowing");
        config.remove("releaseAge");
    }
    value
}

fn add_google_remote_fields(
    format: Format,
    remote: &RemoteConfig,
    config: &mut Value,
    enums: EnumEncoding,
) {
    let upstream = remote.upstream.to_ascii_uppercase();
    let (field, public) = match format {
        Format::Docker => (
            "dockerRepository",
            matches!(upstream.as_str(), "DOCKER-HUB" | "DOCKERHUB" | "DOCKER_HUB")
                .then_some("DOCKER_HUB"),
        ),
        Format::Python => ("pythonRepository", (upstream == "PYPI").then_some("PYPI")),
    };
    config[field] = match public {
        Some(name) => json!({ "publicRepository": enums.value(name, PUBLIC_REPOSITORY_NUMBER) }),
        None => json!({ "customRepository": { "uri": custom_uri(&remote.upstream) } }),
    };
    if remote.username.is_some() || remote.password_secret_version.is_some() {
        let mut credentials = json!({});
        if let Some(username) = &remote.username {
            credentials["username"] = Value::String(username.clone());
        }
        if let Some(version) = &remote.password_secret_version {
            credentials["passwordSecretVersion"] = Value::String(version.clone());
        }
        config["upstreamCredentials"] = json!({ "usernamePasswordCredentials": credentials });
    }
}

/// The URI of a preset that is not one of Google's public repositories.
fn custom_uri(upstream: &str) -> String {
    match upstream.to_ascii_uppercase().as_str() {
        "GHCR" => "https://ghcr.io".to_owned(),
        "QUAY" => "https://quay.io".to_owned(),
        _ => upstream.to_owned(),
    }
}

/// An enum field as sent: a name (any case) or Google's number.
fn enum_name(value: &Value, table: &[(&str, i64)], what: &str) -> Result<Option<String>, ApiError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() || s.ends_with("_UNSPECIFIED") => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        Value::Number(n) if n.as_i64() == Some(0) => Ok(None),
        Value::Number(n) => table
            .iter()
            .find(|(_, v)| Some(*v) == n.as_i64())
            .map(|(name, _)| Some((*name).to_owned()))
            .ok_or_else(|| ApiError::invalid(format!("{what} {n} is not supported here"))),
        other => Err(ApiError::invalid(format!(
            "{what} must be a name or a number, not {other}"
        ))),
    }
}

/// `{"publicRepository": ...}` or `{"customRepository": {"uri": ...}}`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpstreamRepository {
    #[serde(default)]
    public_repository: Value,
    #[serde(default)]
    custom_repository: Option<CustomRepository>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CustomRepository {
    uri: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpstreamCredentials {
    #[serde(default)]
    username_password_credentials: Option<UsernamePassword>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UsernamePassword {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_secret_version: Option<String>,
}

/// `remoteRepositoryConfig` as sent, in entrepot's fields or Google's.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RemoteConfigBody {
    #[serde(default)]
    upstream: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password_secret_version: Option<String>,
    #[serde(default)]
    tag_ttl_secs: Option<u64>,
    #[serde(default)]
    python_index_ttl_secs: Option<u64>,
    #[serde(default)]
    serve_stale: Option<bool>,
    #[serde(default)]
    allow_insecure_upstream: bool,
    #[serde(default)]
    allow_cached_from_blocked: bool,
    #[serde(default)]
    keep_deleted_secs: Option<u64>,
    #[serde(default)]
    negative_cache_secs: Option<u64>,
    #[serde(default)]
    cache_max_size_bytes: Option<u64>,
    #[serde(default)]
    connect_timeout_secs: Option<u64>,
    #[serde(default)]
    first_byte_timeout_secs: Option<u64>,
    #[serde(default)]
    retry_budget_secs: Option<u64>,
    #[serde(default)]
    idle_timeout_secs: Option<u64>,
    /// Google's; entrepot keeps one description, on the repository.
    #[serde(default)]
    #[allow(dead_code)]
    description: Option<String>,
    #[serde(default)]
    docker_repository: Option<UpstreamRepository>,
    #[serde(default)]
    python_repository: Option<UpstreamRepository>,
    #[serde(default)]
    upstream_credentials: Option<UpstreamCredentials>,
    /// Google's: store the repository without checking its upstream, which
    /// entrepot reads as "even if the access policy blocks it".
    #[serde(default)]
    pub disable_upstream_validation: bool,
    /// The minimum release age (entrepot's; set at creation here, changed
    /// by `PATCH /v1/projects/P/repositories/R` with `releaseAge`).
    #[serde(default)]
    release_age: entrepot_domain::cooldown::ReleaseAgePolicy,
}

impl RemoteConfigBody {
    /// The upstream (a preset or a URL), from whichever field names it.
    fn upstream(&self) -> Result<Option<String>, ApiError> {
        if let Some(upstream) = &self.upstream {
            return Ok(Some(upstream.clone()));
        }
        let google = match (&self.docker_repository, &self.python_repository) {
            (Some(d), None) => Some((d, "DOCKER_HUB", "DOCKER-HUB")),
            (None, Some(p)) => Some((p, "PYPI", "PYPI")),
            (None, None) => None,
            (Some(_), Some(_)) => return Err(ApiError::invalid(
                "remoteRepositoryConfig names both dockerRepository and pythonRepository; give one",
            )),
        };
        let Some((repository, public_name, preset)) = google else {
            return Ok(None);
        };
        if let Some(custom) = &repository.custom_repository {
            return Ok(Some(custom.uri.clone()));
        }
        let table = [(public_name, PUBLIC_REPOSITORY_NUMBER)];
        match enum_name(&repository.public_repository, &table, "publicRepository")? {
            Some(name) if name == public_name => Ok(Some(preset.to_owned())),
            Some(name) => Err(ApiError::invalid(format!(
                "publicRepository {name:?} is not supported; use {public_name} or customRepository"
            ))),
            None => Err(ApiError::invalid(
                "remoteRepositoryConfig needs a publicRepository or a customRepository uri",
            )),
        }
    }

    fn credentials(&self) -> (Option<String>, Option<String>) {
        let google = self
            .upstream_credentials
            .as_ref()
            .and_then(|c| c.username_password_credentials.as_ref());
        (
            self.username
                .clone()
                .or_else(|| google.and_then(|g| g.username.clone())),
            self.password_secret_version
                .clone()
                .or_else(|| google.and_then(|g| g.password_secret_version.clone())),
        )
    }

    /// Entrepot's remote settings.
    pub fn into_remote_config(self) -> Result<RemoteConfig, ApiError> {
        let upstream = self.upstream()?.ok_or_else(|| {
            ApiError::invalid(
                "remoteRepositoryConfig needs an upstream: dockerRepository, pythonRepository or upstream",
            )
        })?;
        let (username, password_secret_version) = self.credentials();
        Ok(RemoteConfig {
            upstream,
            username,
            password_secret_version,
            tag_ttl_secs: self.tag_ttl_secs.unwrap_or(DEFAULT_TAG_TTL_SECS),
            python_index_ttl_secs: self.python_index_ttl_secs,
            serve_stale: self.serve_stale.unwrap_or(true),
            allow_insecure_upstream: self.allow_insecure_upstream,
            allow_cached_from_blocked: self.allow_cached_from_blocked,
            keep_deleted_secs: self.keep_deleted_secs,
            negative_cache_secs: self.negative_cache_secs,
            cache_max_size_bytes: self.cache_max_size_bytes.filter(|b| *b > 0),
            timeouts: self.timeouts(),
            release_age: self.release_age,
        })
    }

    /// The upstream time limits the body sets (0 is the default).
    fn timeouts(&self) -> UpstreamTimeouts {
        UpstreamTimeouts {
            connect_timeout_secs: self.connect_timeout_secs.filter(|s| *s > 0),
            first_byte_timeout_secs: self.first_byte_timeout_secs.filter(|s| *s > 0),
            retry_budget_secs: self.retry_budget_secs.filter(|s| *s > 0),
            idle_timeout_secs: self.idle_timeout_secs.filter(|s| *s > 0),
        }
    }

    /// Whether the body sets upstream credentials, and to what (username,
    /// password secret version); `Some((None, None))` clears them.
    pub fn credentials_given(&self) -> Option<(Option<String>, Option<String>)> {
        let given = self.upstream_credentials.is_some()
            || self.username.is_some()
            || self.password_secret_version.is_some();
        given.then(|| self.credentials())
    }
}

/// A repository as a create or patch request sends it.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RepositoryBody {
    /// Output only in Google's API; ignored.
    #[serde(default)]
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    format: Value,
    #[serde(default)]
    mode: Value,
    /// Free text.
    #[serde(default)]
    pub description: Option<String>,
    /// Remote settings.
    #[serde(default)]
    pub remote_repository_config: Option<RemoteConfigBody>,
    /// Store a remote repository even if the access policy blocks its upstream.
    #[serde(default)]
    pub force: bool,
    /// Google's map of policy id to cleanup policy (a list is accepted
    /// too); set through the cleanup service.
    #[serde(default)]
    cleanup_policies: Option<Value>,
    /// Google's: cleanup runs only report.
    #[serde(default)]
    cleanup_policy_dry_run: Option<bool>,
    /// Google's; accepted when empty (entrepot has no labels).
    #[serde(default)]
    labels: serde_json::Map<String, Value>,
    /// Members and rules of a virtual repository (Google's field, with
    /// entrepot's `allowRemoteShadowing`).
    #[serde(default)]
    pub virtual_repository_config: Option<VirtualConfig>,
    /// Output only (what the repository holds); ignored, so a repository
    /// read and sent back is accepted.
    #[serde(default)]
    #[allow(dead_code)]
    size_bytes: Option<Value>,
    /// Output only; ignored.
    #[serde(default)]
    #[allow(dead_code)]
    create_time: Option<Value>,
    /// Output only; ignored.
    #[serde(default)]
    #[allow(dead_code)]
    update_time: Option<Value>,
}

impl RepositoryBody {
    /// Refuse what Google's API has and entrepot does not, saying so.
    fn refuse_unsupported(&self) -> Result<(), ApiError> {
        if !self.labels.is_empty() {
            return Err(ApiError::invalid(
                "labels are not supported by this registry; send none",
            ));
        }
        Ok(())
    }

    /// The format's name, if given.
    pub fn format(&self) -> Result<Option<String>, ApiError> {
        enum_name(&self.format, FORMATS, "format")
    }

    /// The mode's name, if given.
    pub fn mode(&self) -> Result<Option<String>, ApiError> {
        enum_name(&self.mode, MODES, "mode")
    }
}

impl RepositoryBody {
    /// The cleanup settings the body sets (`cleanupPolicies`,
    /// `cleanupPolicyDryRun`), checked; `None` when it sets neither. A
    /// create takes them this way, the request itself left without them.
    pub fn take_cleanup(&mut self) -> Result<Option<CleanupChange>, ApiError> {
        let (policies, dry_run) = (
            self.cleanup_policies.take(),
            self.cleanup_policy_dry_run.take(),
        );
        if policies.is_none() && dry_run.is_none() {
            return Ok(None);
        }
        CleanupChange::new(policies, dry_run).map(Some)
    }

    /// What the repository service is asked to create.
    pub fn into_create_request(self) -> Result<CreateRequest, ApiError> {
        self.refuse_unsupported()?;
        let sets_cleanup = CleanupChange::new(self.cleanup_policies.clone(), None)?.sets_policies()
            || self.cleanup_policy_dry_run == Some(true);
        if sets_cleanup {
            return Err(ApiError::invalid(
                "create the repository first, then set its cleanup policies: PUT /v1/projects/P/repositories/R/cleanupPolicies (entrepot repositories set-cleanup-policies), or create it on projects/P/locations/L/repositories",
            ));
        }
        let format = self
            .format()?
            .ok_or_else(|| ApiError::invalid("a repository needs a format: DOCKER or PYTHON"))?;
        let mode = self.mode()?;
        let mut force = self.force;
        let remote = match self.remote_repository_config {
            Some(config) => {
                force |= config.disable_upstream_validation;
                Some(config.into_remote_config()?)
            }
            None => None,
        };
        Ok(CreateRequest {
            format,
            mode,
            description: self.description.unwrap_or_default(),
            remote,
            virtual_config: self.virtual_repository_config,
            force,
        })
    }

    /// What a patch changes: the fields `update_mask` names (comma-separated,
    /// camelCase or snake_case), or, without a mask, the fields the body sets.
    pub fn into_update(self, update_mask: Option<&str>) -> Result<Patch, ApiError> {
        self.refuse_unsupported()?;
        let remote = self.remote_repository_config.unwrap_or_default();
        if !remote.release_age.is_off() {
            return Err(ApiError::invalid(
                "change releaseAge with PATCH /v1/projects/PROJECT/repositories/REPOSITORY {\"releaseAge\": {...}} (entrepot repositories update --min-release-age=...)",
            ));
        }
        let mut update = RepositoryUpdate {
            force: self.force || remote.disable_upstream_validation,
            ..RepositoryUpdate::default()
        };
        let paths: Vec<String> = match update_mask.filter(|m| !m.trim().is_empty()) {
            Some(mask) => mask.split(',').map(|p| camel_case(p.trim())).collect(),
            None => {
                let mut present = Vec::new();
                if self.description.is_some() {
                    present.push("description".to_owned());
                }
                if self.virtual_repository_config.is_some() {
                    present.push("virtualRepositoryConfig".to_owned());
                }
                if self.cleanup_policies.is_some() {
                    present.push("cleanupPolicies".to_owned());
                }
                if self.cleanup_policy_dry_run.is_some() {
                    present.push("cleanupPolicyDryRun".to_owned());
                }
                if remote.credentials_given().is_some() {
                    present.push("remoteRepositoryConfig.upstreamCredentials".to_owned());
                }
                for (field, set) in [
                    ("tagTtlSecs", remote.tag_ttl_secs.is_some()),
                    ("pythonIndexTtlSecs", remote.python_index_ttl_secs.is_some()),
                    ("serveStale", remote.serve_stale.is_some()),
                    ("allowCachedFromBlocked", remote.allow_cached_from_blocked),
                    ("keepDeletedSecs", remote.keep_deleted_secs.is_some()),
                    ("negativeCacheSecs", remote.negative_cache_secs.is_some()),
                    ("cacheMaxSizeBytes", remote.cache_max_size_bytes.is_some()),
                    ("connectTimeoutSecs", remote.connect_timeout_secs.is_some()),
                    (
                        "firstByteTimeoutSecs",
                        remote.first_byte_timeout_secs.is_some(),
                    ),
                    ("retryBudgetSecs", remote.retry_budget_secs.is_some()),
                    ("idleTimeoutSecs", remote.idle_timeout_secs.is_some()),
                ] {
                    if set {
                        present.push(format!("remoteRepositoryConfig.{field}"));
                    }
                }
                present
            }
        };
        let (mut policies, mut dry_run, mut repository_fields) = (None, None, false);
        for path in paths {
            repository_fields |=
                !matches!(path.as_str(), "cleanupPolicies" | "cleanupPolicyDryRun");
            match path.as_str() {
                // Absent under a mask: no policies, or not a dry run.
                "cleanupPolicies" => {
                    policies = Some(self.cleanup_policies.clone().unwrap_or_else(|| json!({})));
                }
                "cleanupPolicyDryRun" => {
                    dry_run = Some(self.cleanup_policy_dry_run.unwrap_or(false));
                }
                "description" => update.description = Some(self.description.clone().unwrap_or_default()),
                "virtualRepositoryConfig" | "virtualRepositoryConfig.upstreamPolicies" => {
                    update.virtual_config = Some(self.virtual_repository_config.clone().ok_or_else(|| {
                        ApiError::invalid("updateMask names virtualRepositoryConfig but the body has none")
                    })?);
                }
                "remoteRepositoryConfig.upstreamCredentials"
                | "remoteRepositoryConfig.upstreamCredentials.usernamePasswordCredentials" => {
                    let (username, version) = remote.credentials();
                    if username.is_none() && version.is_none() {
                        update.clear_remote_credentials = true;
                    }
                    update.remote_username = username;
                    update.remote_password_secret_version = version;
                }
                "remoteRepositoryConfig.tagTtlSecs" => {
                    update.remote_tag_ttl_secs =
                        Some(remote.tag_ttl_secs.unwrap_or(DEFAULT_TAG_TTL_SECS));
                }
                "remoteRepositoryConfig.pythonIndexTtlSecs" => {
                    update.remote_python_index_ttl_secs = remote.python_index_ttl_secs;
                }
                "remoteRepositoryConfig.serveStale" => {
                    update.serve_stale = Some(remote.serve_stale.unwrap_or(true));
                }
                "remoteRepositoryConfig.allowCachedFromBlocked" => {
                    update.allow_cached_from_blocked = Some(remote.allow_cached_from_blocked);
                }
                "remoteRepositoryConfig.keepDeletedSecs" => {
                    update.remote_keep_deleted_secs = Some(
                        remote
                            .keep_deleted_secs
                            .unwrap_or(DEFAULT_KEEP_DELETED_SECS),
                    );
                }
                "remoteRepositoryConfig.negativeCacheSecs" => {
                    update.remote_negative_cache_secs = Some(
                        remote
                            .negative_cache_secs
                            .unwrap_or(DEFAULT_NEGATIVE_CACHE_SECS),
                    );
                }
                // 0 (or absent under a mask) removes the repository's cap.
                "remoteRepositoryConfig.cacheMaxSizeBytes" => {
                    update.remote_cache_max_size_bytes =
                        Some(remote.cache_max_size_bytes.unwrap_or(0));
                }
                // 0 (or absent under a mask) puts the default back.
                "remoteRepositoryConfig.connectTimeoutSecs" => {
                    update.remote_timeouts.connect_timeout_secs =
                        Some(remote.connect_timeout_secs.unwrap_or(0));
                }
                "remoteRepositoryConfig.firstByteTimeoutSecs" => {
                    update.remote_timeouts.first_byte_timeout_secs =
                        Some(remote.first_byte_timeout_secs.unwrap_or(0));
                }
                "remoteRepositoryConfig.retryBudgetSecs" => {
                    update.remote_timeouts.retry_budget_secs =
                        Some(remote.retry_budget_secs.unwrap_or(0));
                }
                "remoteRepositoryConfig.idleTimeoutSecs" => {
                    update.remote_timeouts.idle_timeout_secs =
                        Some(remote.idle_timeout_secs.unwrap_or(0));
                }
                other => {
                    return Err(ApiError::invalid(format!(
                        "updateMask names {other:?}, which cannot be changed; changeable: description, cleanupPolicies, cleanupPolicyDryRun, virtualRepositoryConfig, remoteRepositoryConfig.upstreamCredentials, remoteRepositoryConfig.tagTtlSecs, remoteRepositoryConfig.serveStale, remoteRepositoryConfig.allowCachedFromBlocked, remoteRepositoryConfig.keepDeletedSecs, remoteRepositoryConfig.negativeCacheSecs, remoteRepositoryConfig.cacheMaxSizeBytes, remoteRepositoryConfig.connectTimeoutSecs, remoteRepositoryConfig.firstByteTimeoutSecs, remoteRepositoryConfig.retryBudgetSecs, remoteRepositoryConfig.idleTimeoutSecs"
                    )))
                }
            }
        }
        let cleanup = if policies.is_some() || dry_run.is_some() {
            Some(CleanupChange::new(policies, dry_run)?)
        } else {
            None
        };
        Ok(Patch {
            repository: (repository_fields || cleanup.is_none()).then_some(update),
            cleanup,
        })
    }
}

/// What a patch changes: the repository's own fields (`None` when the mask
/// names none of them), and its cleanup settings.
pub(crate) struct Patch {
    /// For the repository service.
    pub repository: Option<RepositoryUpdate>,
    /// For the cleanup service.
    pub cleanup: Option<CleanupChange>,
}

/// `remote_repository_config.upstream_credentials` as
/// `remoteRepositoryConfig.upstreamCredentials`; camelCase is left as it is.
fn camel_case(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut upper = false;
    for c in path.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(upstream: &str) -> Repository {
        Repository {
            name: "projects/p/repositories/r".into(),
            format: Format::Docker,
            mode: Mode::RemoteRepository,
            description: String::new(),
            remote_repository_config: Some(RemoteConfig {
                upstream: upstream.into(),
                username: Some("bob".into()),
                password_secret_version: Some("projects/p/secrets/s/versions/1".into()),
                tag_ttl_secs: 300,
                python_index_ttl_secs: None,
                serve_stale: true,
                allow_insecure_upstream: false,
                allow_cached_from_blocked: false,
                keep_deleted_secs: None,
                negative_cache_secs: None,
                cache_max_size_bytes: None,
                timeouts: Default::default(),
                release_age: Default::default(),
            }),
            virtual_repository_config: None,
            create_time: "t".into(),
            update_time: "t".into(),
        }
    }

    #[test]
    fn renders_google_fields_next_to_entrepot_ones() {
        let v = render(
            &remote("DOCKER-HUB"),
            "projects/p/locations/l/repositories/r",
            EnumEncoding::Numbers,
        );
        assert_eq!(v["format"], 1);
        assert_eq!(v["mode"], 3);
        let c = &v["remoteRepositoryConfig"];
        assert_eq!(c["upstream"], "DOCKER-HUB");
        assert_eq!(c["dockerRepository"]["publicRepository"], 1);
        assert_eq!(
            c["upstreamCredentials"]["usernamePasswordCredentials"]["username"],
            "bob"
        );
        let v = render_google(&remote("http://h:5000"), "n", EnumEncoding::Names);
        assert!(v["remoteRepositoryConfig"].get("upstream").is_none());
        assert_eq!(v["mode"], "REMOTE_REPOSITORY");
        assert_eq!(
            v["remoteRepositoryConfig"]["dockerRepository"]["customRepository"]["uri"],
            "http://h:5000"
        );
    }

    #[test]
    fn reads_google_bodies_with_numeric_enums() {
        let body: RepositoryBody = serde_json::from_value(json!({
            "format": 1, "mode": 3,
            "remoteRepositoryConfig": {
                "dockerRepository": {"customRepository": {"uri": "http://h:5000"}},
                "upstreamCredentials": {"usernamePasswordCredentials": {
                    "username": "bob", "passwordSecretVersion": "projects/p/secrets/s/versions/1"}}
            }
        }))
        .unwrap();
        assert_eq!(body.format().unwrap().as_deref(), Some("DOCKER"));
        assert_eq!(body.mode().unwrap().as_deref(), Some("REMOTE_REPOSITORY"));
        let config = body
            .remote_repository_config
            .unwrap()
            .into_remote_config()
            .unwrap();
        assert_eq!(config.upstream, "http://h:5000");
        assert_eq!(config.username.as_deref(), Some("bob"));
        let body: RepositoryBody = serde_json::from_value(json!({
            "format": "PYTHON",
            "remoteRepositoryConfig": {"pythonRepository": {"publicRepository": "PYPI"}}
        }))
        .unwrap();
        let config = body
            .remote_repository_config
            .unwrap()
            .into_remote_config()
            .unwrap();
        assert_eq!(config.upstream, "PYPI");
        let bad: RepositoryBody = serde_json::from_value(json!({"format": 2})).unwrap();
        assert!(bad.format().is_err());
    }

    #[test]
    fn update_masks_choose_the_fields() {
        let body: RepositoryBody = serde_json::from_value(json!({
            "description": "d",
            "remoteRepositoryConfig": {"upstreamCredentials": {"usernamePasswordCredentials": {"username": "u"}}}
        }))
        .unwrap();
        let update = body.into_update(Some("description")).unwrap();
        assert!(update.cleanup.is_none());
        let update = update.repository.unwrap();
        assert_eq!(update.description.as_deref(), Some("d"));
        assert!(update.remote_username.is_none());
        let body: RepositoryBody = serde_json::from_value(json!({})).unwrap();
        let update = body
            .into_update(Some("remote_repository_config.upstream_credentials"))
            .unwrap()
            .repository
            .unwrap();
        assert!(update.clear_remote_credentials);
        let body: RepositoryBody = serde_json::from_value(json!({})).unwrap();
        assert!(body.into_update(Some("labels")).is_err());
    }

    #[test]
    fn cleanup_fields_patch_apart_from_the_repository() {
        let body: RepositoryBody = serde_json::from_value(json!({
            "description": "d",
            "cleanupPolicies": {"old": {"id": "old", "action": "DELETE", "condition": {"tagState": "UNTAGGED"}}}
        }))
        .unwrap();
        let patch = body.into_update(Some("cleanup_policies")).unwrap();
        assert!(patch.repository.is_none());
        let cleanup = patch.cleanup.unwrap();
        assert!(cleanup.sets_policies());
        assert_eq!(cleanup.dry_run, None);
        // Without a mask, what the body holds; an empty map clears.
        let body: RepositoryBody =
            serde_json::from_value(json!({"cleanupPolicies": {}, "cleanupPolicyDryRun": true}))
                .unwrap();
        let cleanup = body.into_update(None).unwrap().cleanup.unwrap();
        assert!(!cleanup.sets_policies());
        assert_eq!(cleanup.dry_run, Some(true));
        let bad: RepositoryBody =
            serde_json::from_value(json!({"cleanupPolicies": {"x": {"action": "DELETE"}}}))
                .unwrap();
        assert!(bad.into_update(None).is_err());
    }
}
