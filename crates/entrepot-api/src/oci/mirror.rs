//! The registry mirror endpoint: `/v2/<name>/...` without a project prefix,
//! served from one configured remote repository per upstream host, so that
//! the Docker daemon's `registry-mirrors`, containerd's `hosts.toml` and
//! podman's `[[registry.mirror]]` work unchanged.
//!
//! Which requests are mirror requests:
//! - a request carrying `?ns=HOST` (containerd names the registry it mirrors
//!   that way) is served from `HOST`'s mirror, unless its name already starts
//!   with that mirror's `PROJECT/REPOSITORY/` (a `hosts.toml` with
//!   `override_path` pointing at the repository itself);
//! - without `ns`, a name of one or two components (every Docker Hub name:
//!   `alpine`, `library/alpine`, `user/app`) is served from Docker Hub's
//!   mirror. Names of three components or more are project paths
//!   (`PROJECT/REPOSITORY/IMAGE`) as before.
//!
//! Docker Hub's rule applies on its mirror: a one-component name is
//! `library/NAME`. The rewritten request is an ordinary request on the
//! repository, so authentication, IAM and the access policy are the
//! repository's own. Mirrors are read-only: anything but `GET` and `HEAD` is
//! refused, naming the repository path to push to instead.

use axum::http::{Method, StatusCode};
use entrepot_domain::RepositoryName;

use super::OciError;

/// The host Docker Hub's images are named under.
pub const DOCKER_HUB: &str = "docker.io";

/// The configured mirrors: upstream host -> remote repository.
#[derive(Debug, Clone, Default)]
pub struct Mirrors {
    by_host: Vec<(String, RepositoryName)>,
}

/// Where a request on `/v2/...` goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MirrorRoute {
    /// Not a mirror request: the path as it came.
    Direct,
    /// A mirror request: the path after `/v2/` on the repository, and the
    /// repository.
    Mirrored {
        /// `PROJECT/REPOSITORY/IMAGE/...`.
        rest: String,
        /// The mirror's repository.
        repository: RepositoryName,
    },
}

/// The canonical form of an upstream host name: lower case, Docker Hub's
/// aliases folded into `docker.io`.
pub fn canonical_host(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_owned()
        }
        _ => host,
    }
}

impl Mirrors {
    /// Mirrors of these upstream hosts (later entries for a host already
    /// named are ignored).
    pub fn new(entries: impl IntoIterator<Item = (String, RepositoryName)>) -> Self {
        let mut by_host: Vec<(String, RepositoryName)> = Vec::new();
        for (host, repository) in entries {
            let host = canonical_host(&host);
            if !by_host.iter().any(|(h, _)| *h == host) {
                by_host.push((host, repository));
            }
        }
        Self { by_host }
    }

    /// Whether any mirror is configured.
    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }

    fn of(&self, host: &str) -> Option<&RepositoryName> {
        let host = canonical_host(host);
        self.by_host
            .iter()
            .find(|(h, _)| *h == host)
            .map(|(_, r)| r)
    }

    /// Route a request: `rest` is the path after `/v2/`, `ns` the `ns` query
    /// parameter. Fails for a write on a mirror path, and for a short name
    /// whose `ns` names a host no mirror is configured for.
    pub fn route(
        &self,
        method: &Method,
        rest: &str,
        ns: Option<&str>,
    ) -> Result<MirrorRoute, OciError> {
        if self.is_empty() {
            return Ok(MirrorRoute::Direct);
        }
        let Some((name, suffix)) = split_name(rest) else {
            return Ok(MirrorRoute::Direct);
        };
        let components = name.split('/').count();
        let (host, repository) = match ns.filter(|n| !n.is_empty()) {
            Some(ns) => match self.of(ns) {
                Some(repository) => {
                    let prefix = format!("{}/{}/", repository.project, repository.repository);
                    if name.starts_with(&prefix) {
                        return Ok(MirrorRoute::Direct);
                    }
                    (canonical_host(ns), repository)
                }
                None if components < 3 => {
                    return Err(OciError::new(
                        StatusCode::NOT_FOUND,
                        "NAME_UNKNOWN",
                        format!(
                            "no registry mirror is configured for {ns}; configure one (mirrors) or pull /v2/PROJECT/REPOSITORY/{name}"
                        ),
                    ))
                }
                None => return Ok(MirrorRoute::Direct),
            },
            None if components < 3 => match self.of(DOCKER_HUB) {
                Some(repository) => (DOCKER_HUB.to_owned(), repository),
                None => return Ok(MirrorRoute::Direct),
            },
            None => return Ok(MirrorRoute::Direct),
        };
        let image = upstream_name(&host, name);
        if !matches!(*method, Method::GET | Method::HEAD) {
            return Err(OciError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "UNSUPPORTED",
                format!(
                    "the registry mirror of {host} is read-only; push to /v2/{}/REPOSITORY/{image} instead",
                    repository.project
                ),
            ));
        }
        Ok(MirrorRoute::Mirrored {
            rest: format!(
                "{}/{}/{image}/{suffix}",
                repository.project, repository.repository
            ),
            repository: repository.clone(),
        })
    }

    /// The name a token scope means: a one- or two-component name (which no
    /// project path has) is an image of Docker Hub's mirror, as the mirror
    /// endpoint serves it; anything else is returned unchanged.
    pub fn scope_name(&self, name: &str) -> String {
        if name.split('/').count() < 3 {
            if let Some(repository) = self.of(DOCKER_HUB) {
                return format!(
                    "{}/{}/{}",
                    repository.project,
                    repository.repository,
                    upstream_name(DOCKER_HUB, name)
                );
            }
        }
        name.to_owned()
    }
}

/// Docker Hub's rule: an official image's one-component name is
/// `library/NAME`.
fn upstream_name(host: &str, name: &str) -> String {
    if host == DOCKER_HUB && !name.contains('/') {
        format!("library/{name}")
    } else {
        name.to_owned()
    }
}

/// Split `NAME/manifests/REF` (blobs, tags/list, referrers, blobs/uploads)
/// into the name and the rest; `None` for `_catalog`, the base and paths of
/// no endpoint.
fn split_name(rest: &str) -> Option<(&str, &str)> {
    let segments: Vec<&str> = rest.split('/').collect();
    let n = segments.len();
    // The last marker wins, as in the endpoint parser: a name may itself
    // contain "manifests" as a component.
    let at = (1..n).rev().find(|&i| {
        let after = n - i;
        match segments[i] {
            "manifests" | "referrers" => after == 2,
            "tags" => after == 2 && segments[i + 1] == "list",
            "blobs" => after == 2 || (after == 3 && segments[i + 1] == "uploads"),
            _ => false,
        }
    })?;
    let name_len: usize = segments[..at].iter().map(|s| s.len() + 1).sum::<usize>() - 1;
    Some((&rest[..name_len], &rest[name_len + 1..]))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mirrors() -> Mirrors {
        Mirrors::new([
            (
                "registry-1.docker.io".to_owned(),
                "projects/default/repositories/docker-hub".parse().unwrap(),
            ),
            (
                "ghcr.io".to_owned(),
                "projects/p/repositories/ghcr".parse().unwrap(),
            ),
        ])
    }

    fn rest_of(route: MirrorRoute) -> String {
        match route {
            MirrorRoute::Mirrored { rest, .. } => rest,
            MirrorRoute::Direct => "direct".into(),
        }
    }

    #[test]
    fn docker_hub_names_map_onto_the_mirror_repository() {
        let m = mirrors();
        let get = |rest: &str, ns: Option<&str>| rest_of(m.route(&Method::GET, rest, ns).unwrap());
        assert_eq!(
            get("alpine/manifests/3.20", None),
            "default/docker-hub/library/alpine/manifests/3.20"
        );
        assert_eq!(
            get("library/alpine/blobs/sha256:00", None),
            "default/docker-hub/library/alpine/blobs/sha256:00"
        );
        assert_eq!(
            get("user/app/tags/list", Some("docker.io")),
            "default/docker-hub/user/app/tags/list"
        );
        assert_eq!(
            get("org/team/app/manifests/1", Some("ghcr.io")),
            "p/ghcr/org/team/app/manifests/1"
        );
        assert_eq!(
            get("app/manifests/1", Some("ghcr.io")),
            "p/ghcr/app/manifests/1",
            "library/ is Docker Hub's rule only"
        );
    }

    #[test]
    fn project_paths_are_left_alone() {
        let m = mirrors();
        for (rest, ns) in [
            ("default/images/app/manifests/1", None),
            (
                "default/docker-hub/library/app/manifests/1",
                Some("docker.io"),
            ),
            ("default/images/app/manifests/1", Some("quay.io")),
            ("", None),
            ("_catalog", None),
            ("alpine/nonsense", None),
        ] {
            assert_eq!(
                m.route(&Method::GET, rest, ns).unwrap(),
                MirrorRoute::Direct,
                "{rest} {ns:?}"
            );
        }
        assert_eq!(
            Mirrors::default()
                .route(&Method::GET, "alpine/manifests/1", None)
                .unwrap(),
            MirrorRoute::Direct
        );
    }

    #[test]
    fn writes_and_unknown_hosts_are_refused() {
        let m = mirrors();
        let e = m
            .route(&Method::POST, "library/app/blobs/uploads/", None)
            .unwrap_err();
        assert_eq!(e.code(), "UNSUPPORTED");
        let e = m.route(&Method::PUT, "app/manifests/1", None).unwrap_err();
        assert_eq!(e.code(), "UNSUPPORTED");
        let e = m
            .route(&Method::GET, "app/manifests/1", Some("quay.io"))
            .unwrap_err();
        assert_eq!(e.code(), "NAME_UNKNOWN");
    }

    #[test]
    fn token_scopes_follow_the_same_rule() {
        let m = mirrors();
        assert_eq!(m.scope_name("alpine"), "default/docker-hub/library/alpine");
        assert_eq!(m.scope_name("user/app"), "default/docker-hub/user/app");
        assert_eq!(m.scope_name("default/images/app"), "default/images/app");
        assert_eq!(Mirrors::default().scope_name("alpine"), "alpine");
    }
}
