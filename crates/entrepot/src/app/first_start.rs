//! What a new data directory starts with: a private database file and the
//! `default` project with its pull-through caches.

use entrepot_domain::repository::{RemoteConfig, DEFAULT_TAG_TTL_SECS};
use entrepot_domain::{Format, Mode, ProjectId, RepositoryName};
use entrepot_services::{NewRepository, ProjectError, ProjectService, RepositoryService};

/// The project every installation starts with.
pub const DEFAULT_PROJECT: &str = "default";

/// Freshness window of the `pypi` repository's index pages: 10 minutes.
const PYTHON_INDEX_TTL_SECS: u64 = 600;

/// On first start: the `default` project with a Docker Hub pull-through cache.
pub(super) async fn default_project(
    projects: &ProjectService,
    repositories: &RepositoryService,
) -> anyhow::Result<()> {
    let default_project: ProjectId = DEFAULT_PROJECT.parse()?;
    match projects.create(&default_project).await {
        Ok(_) => {}
        Err(ProjectError::AlreadyExists(_)) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let name = RepositoryName::new(default_project, "docker-hub".parse()?);
    let docker_hub = NewRepository {
        format: Format::Docker,
        mode: Mode::RemoteRepository,
        description: "Pull-through cache of Docker Hub".into(),
        remote: Some(RemoteConfig {
            upstream: "DOCKER-HUB".into(),
            username: None,
            password_secret_version: None,
            tag_ttl_secs: DEFAULT_TAG_TTL_SECS,
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
        virtual_config: None,
    };
    repositories.create(&name, docker_hub).await?;
    let name = RepositoryName::new(DEFAULT_PROJECT.parse()?, "pypi".parse()?);
    let pypi = NewRepository {
        format: Format::Python,
        mode: Mode::RemoteRepository,
        description: "Pull-through cache of PyPI".into(),
        remote: Some(RemoteConfig {
            upstream: "PYPI".into(),
            username: None,
            password_secret_version: None,
            tag_ttl_secs: PYTHON_INDEX_TTL_SECS,
            python_index_ttl_secs: Some(PYTHON_INDEX_TTL_SECS),
            serve_stale: true,
            allow_insecure_upstream: false,
            allow_cached_from_blocked: false,
            keep_deleted_secs: None,
            negative_cache_secs: None,
            cache_max_size_bytes: None,
            timeouts: Default::default(),
            release_age: Default::default(),
        }),
        virtual_config: None,
    };
    repositories.create(&name, pypi).await?;
    tracing::info!(
        "first start: created project default with remote repositories docker-hub and pypi"
    );
    Ok(())
}

/// Create the metadata database file with mode 0600 before SQLite does (it
/// would use 0644), or tighten an existing one: SQLite gives its `-wal` and
/// `-shm` files the mode of the database file.
pub(super) fn private_database_file(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        for suffix in ["-wal", "-shm"] {
            let mut side = path.as_os_str().to_owned();
            side.push(suffix);
            match std::fs::set_permissions(&side, std::fs::Permissions::from_mode(0o600)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
    }
    Ok(())
}
