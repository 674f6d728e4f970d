//! The repository resource: `projects/{project}/repositories/{repository}`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::cooldown::ReleaseAgePolicy;
use crate::name::{NameError, ProjectId, RepositoryId};

/// The canonical name of a repository.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct RepositoryName {
    /// The project the repository lives in.
    pub project: ProjectId,
    /// The repository id within the project.
    pub repository: RepositoryId,
}

impl RepositoryName {
    /// Build a name from its parts.
    pub fn new(project: ProjectId, repository: RepositoryId) -> Self {
        Self {
            project,
            repository,
        }
    }
}

impl fmt::Display for RepositoryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "projects/{}/repositories/{}",
            self.project, self.repository
        )
    }
}

impl crate::name::ImagePath {
    /// The repository the image lives in.
    pub fn repository_name(&self) -> RepositoryName {
        RepositoryName::new(self.project.clone(), self.repository.clone())
    }
}

/// Why a repository resource name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepositoryNameError {
    /// Not of the form `projects/P/repositories/R`.
    #[error("{0:?} is not a repository name; use projects/PROJECT/repositories/REPOSITORY")]
    Shape(String),
    /// A part of the name is invalid.
    #[error(transparent)]
    Part(#[from] NameError),
}

impl FromStr for RepositoryName {
    type Err = RepositoryNameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            ["projects", p, "repositories", r] => Ok(Self::new(p.parse()?, r.parse()?)),
            _ => Err(RepositoryNameError::Shape(s.to_owned())),
        }
    }
}

/// What kind of packages a repository holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Format {
    /// Container images and OCI artifacts.
    Docker,
    /// Python packages.
    Python,
}

impl Format {
    /// The lower-case name used on the command line and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Docker => "docker",
            Format::Python => "python",
        }
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "docker" => Ok(Format::Docker),
            "python" => Ok(Format::Python),
            other => Err(format!(
                "repository format {other:?} is not supported; use docker or python"
            )),
        }
    }
}

/// How a repository gets its content.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    /// Hosted: clients push content into it.
    StandardRepository,
    /// Pull-through cache of an upstream registry.
    RemoteRepository,
    /// Ordered union of other repositories.
    VirtualRepository,
}

impl Mode {
    /// The lower-case name used on the command line and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::StandardRepository => "standard-repository",
            Mode::RemoteRepository => "remote-repository",
            Mode::VirtualRepository => "virtual-repository",
        }
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().replace('_', "-").as_str() {
            "standard-repository" | "standard" => Ok(Mode::StandardRepository),
            "remote-repository" | "remote" => Ok(Mode::RemoteRepository),
            "virtual-repository" | "virtual" => Ok(Mode::VirtualRepository),
            other => Err(format!(
                "repository mode {other:?} is not supported; use standard-repository, remote-repository or virtual-repository"
            )),
        }
    }
}

/// Settings of a remote (pull-through) repository.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteConfig {
    /// A preset (`DOCKER-HUB`, `GHCR`, `QUAY`, `PYPI`) or an upstream URL.
    pub upstream: String,
    /// Username for upstream authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Secret version holding the upstream password or token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret_version: Option<String>,
    /// Seconds a cached tag is answered without asking the upstream.
    #[serde(default = "default_tag_ttl")]
    pub tag_ttl_secs: u64,
    /// Seconds a cached Python index page (a project's page or the project
    /// list) is answered without asking the upstream; without it, the tag
    /// window applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_index_ttl_secs: Option<u64>,
    /// Serve cached tags and index pages when the upstream fails.
    #[serde(default = "default_true")]
    pub serve_stale: bool,
    /// Plain http to a host that is not loopback was explicitly allowed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_insecure_upstream: bool,
    /// Serve cached content even while the registry access policy blocks the
    /// upstream host (by default the block applies to cached content too).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_cached_from_blocked: bool,
    /// Seconds a cached tag or index page the upstream now reports missing
    /// (404) is still served stale, counted from the upstream's last
    /// confirmation; `None` is [`DEFAULT_KEEP_DELETED_SECS`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_deleted_secs: Option<u64>,
    /// Seconds an upstream 404 for a tag or project that is not cached is
    /// remembered, so a storm of pulls of a missing name asks the upstream
    /// once; `None` is [`DEFAULT_NEGATIVE_CACHE_SECS`], 0 turns it off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_cache_secs: Option<u64>,
    /// Most bytes of blobs the cache may hold; past it the least recently
    /// pulled images are evicted (see `docs/lifecycle.md`). `None`: no cap
    /// of its own (the store-wide cap, if any, still applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_max_size_bytes: Option<u64>,
    /// Time limits of upstream requests; unset ones take the defaults.
    #[serde(flatten)]
    pub timeouts: UpstreamTimeouts,
    /// The minimum release age ("cooldown"): upstream content newer than it
    /// is held back (see [`crate::cooldown`]).
    #[serde(default, skip_serializing_if = "ReleaseAgePolicy::is_off")]
    pub release_age: ReleaseAgePolicy,
}

/// How long a remote repository waits for its upstream, in seconds; `None`
/// (or 0) is the default: connect 5, first byte 15, all retries 30, a pause
/// mid-body 15.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamTimeouts {
    /// Opening a connection (TCP and TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_timeout_secs: Option<u64>,
    /// From sending a request to the answer's headers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_byte_timeout_secs: Option<u64>,
    /// All attempts of one request together, back-off included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_budget_secs: Option<u64>,
    /// The longest pause in a body before the transfer is aborted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_secs: Option<u64>,
}

/// Default grace period of a tag the upstream deleted: 24 hours.
pub const DEFAULT_KEEP_DELETED_SECS: u64 = 86_400;

/// Default time an upstream 404 for a tag or project is remembered: 60 s.
pub const DEFAULT_NEGATIVE_CACHE_SECS: u64 = 60;

impl RemoteConfig {
    /// How long an upstream 404 for a tag or project is remembered, in seconds.
    pub fn negative_cache_secs(&self) -> u64 {
        self.negative_cache_secs
            .unwrap_or(DEFAULT_NEGATIVE_CACHE_SECS)
    }

    /// The grace period of a tag the upstream deleted, in seconds.
    pub fn keep_deleted_secs(&self) -> u64 {
        self.keep_deleted_secs.unwrap_or(DEFAULT_KEEP_DELETED_SECS)
    }
}

impl RemoteConfig {
    /// Seconds a cached Python index page is fresh: its own setting, else
    /// the tag window.
    pub fn index_ttl_secs(&self) -> u64 {
        self.python_index_ttl_secs.unwrap_or(self.tag_ttl_secs)
    }
}

/// Default tag freshness window: 5 minutes.
pub const DEFAULT_TAG_TTL_SECS: u64 = 300;

fn default_tag_ttl() -> u64 {
    DEFAULT_TAG_TTL_SECS
}

fn default_true() -> bool {
    true
}

/// A repository resource.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Repository {
    /// `projects/{p}/repositories/{r}`.
    pub name: String,
    /// Package format.
    pub format: Format,
    /// Hosted, remote or virtual.
    pub mode: Mode,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Remote settings, for remote repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_repository_config: Option<RemoteConfig>,
    /// Members and rules, for virtual repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub virtual_repository_config: Option<crate::virtual_repository::VirtualConfig>,
    /// RFC 3339 creation time.
    pub create_time: String,
    /// RFC 3339 time of the last change.
    pub update_time: String,
}

impl Repository {
    /// The typed name of the repository, parsed from [`Repository::name`].
    pub fn repository_name(&self) -> Result<RepositoryName, RepositoryNameError> {
        self.name.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_names_round_trip() {
        let n: RepositoryName = "projects/default/repositories/docker-hub".parse().unwrap();
        assert_eq!(n.to_string(), "projects/default/repositories/docker-hub");
        assert!("projects/default/repos/x"
            .parse::<RepositoryName>()
            .is_err());
        assert!("projects/../repositories/x"
            .parse::<RepositoryName>()
            .is_err());
    }

    #[test]
    fn a_repository_names_itself_typed() {
        let mut repo = Repository {
            name: "projects/default/repositories/pypi".into(),
            format: Format::Python,
            mode: Mode::RemoteRepository,
            description: String::new(),
            remote_repository_config: None,
            virtual_repository_config: None,
            create_time: String::new(),
            update_time: String::new(),
        };
        let name = repo.repository_name().unwrap();
        assert_eq!(name.project.as_str(), "default");
        assert_eq!(name.repository.as_str(), "pypi");
        repo.name = "projects/default/pypi".into();
        assert!(matches!(
            repo.repository_name(),
            Err(RepositoryNameError::Shape(_))
        ));
    }

    #[test]
    fn formats_and_modes() {
        assert_eq!("DOCKER".parse::<Format>(), Ok(Format::Docker));
        assert_eq!(
            "standard-repository".parse::<Mode>(),
            Ok(Mode::StandardRepository)
        );
        assert!("maven".parse::<Format>().is_err());
    }
}
