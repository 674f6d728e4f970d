//! The `mirror` and `[[mirrors]]` settings: which remote repository serves
//! the registry mirror endpoint for which upstream host.

use entrepot_api::oci::mirror::{Mirrors, DOCKER_HUB};
use entrepot_domain::RepositoryName;
use serde::{Deserialize, Serialize};

use super::{Config, ConfigError};

/// One `[[mirrors]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MirrorConfig {
    /// The upstream host clients name (`docker.io`, `ghcr.io`, ...).
    pub host: String,
    /// The remote repository that serves it: `projects/P/repositories/R`.
    pub repository: String,
}

impl Config {
    /// The mirrors, parsed: `mirror` is Docker Hub's, `[[mirrors]]` name
    /// their hosts. Fails, naming the key, on a repository name that is not
    /// `projects/P/repositories/R`, an empty host, or a host given twice.
    pub fn mirrors(&self) -> Result<Mirrors, ConfigError> {
        let bad = |key: &'static str, env: &'static str, message: String| ConfigError::Value {
            key,
            env,
            message,
        };
        let parse = |key, env, name: &str| {
            name.parse::<RepositoryName>().map_err(|e| {
                bad(
                    key,
                    env,
                    format!("{name:?} is not a repository name projects/PROJECT/repositories/REPOSITORY ({e})"),
                )
            })
        };
        let mut entries: Vec<(String, RepositoryName)> = Vec::new();
        if let Some(name) = self.mirror.as_deref().filter(|m| !m.is_empty()) {
            entries.push((
                DOCKER_HUB.to_owned(),
                parse("mirror", "ENTREPOT_MIRROR", name)?,
            ));
        }
        for m in &self.mirrors {
            let host = entrepot_api::oci::mirror::canonical_host(&m.host);
            if host.is_empty() || host.contains('/') {
                return Err(bad(
                    "mirrors.host",
                    "-",
                    format!("{:?} is not a host name", m.host),
                ));
            }
            if entries.iter().any(|(h, _)| *h == host) {
                return Err(bad(
                    "mirrors.host",
                    "-",
                    format!("{host} has more than one mirror (mirror = ... is docker.io's)"),
                ));
            }
            entries.push((host, parse("mirrors.repository", "-", &m.repository)?));
        }
        Ok(Mirrors::new(entries))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn mirrors_parse_and_bad_ones_name_their_key() {
        let config: Config = toml::from_str(
            "mirror = \"projects/default/repositories/docker-hub\"\n[[mirrors]]\nhost = \"ghcr.io\"\nrepository = \"projects/p/repositories/ghcr\"\n",
        )
        .unwrap();
        assert!(!config.mirrors().unwrap().is_empty());
        let bad: Config = toml::from_str("mirror = \"default/docker-hub\"\n").unwrap();
        let e = bad.mirrors().unwrap_err().to_string();
        assert!(e.starts_with("config key mirror "), "{e}");
        let twice: Config = toml::from_str(
            "mirror = \"projects/a/repositories/b\"\n[[mirrors]]\nhost = \"registry-1.docker.io\"\nrepository = \"projects/p/repositories/r\"\n",
        )
        .unwrap();
        assert!(twice.mirrors().is_err());
    }
}
