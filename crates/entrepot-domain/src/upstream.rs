//! Upstream registries of remote repositories: presets and validated URLs.

use std::net::IpAddr;

/// Why an upstream specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamSpecError {
    /// Neither a preset nor an http(s) URL.
    #[error(
        "upstream {0:?} is not a preset ({presets}) nor an http(s) URL",
        presets = "DOCKER-HUB, GHCR, QUAY"
    )]
    Unknown(String),
    /// Neither the Python preset nor an http(s) URL.
    #[error("upstream {0:?} is not the preset PYPI nor the http(s) URL of a simple index")]
    UnknownPython(String),
    /// Plain http to a host that is not loopback.
    #[error("upstream {0:?} uses plain http to a host that is not loopback; use https, or pass --allow-insecure-upstream if you accept credentials and content travelling unencrypted")]
    Insecure(String),
    /// The URL has parts a registry base URL must not have.
    #[error("upstream {0:?} must be a bare registry URL such as https://registry.example.com (no query, no fragment, no credentials)")]
    Shape(String),
}

/// A Docker/OCI upstream, resolved from a preset or URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerUpstream {
    /// Base URL of the registry API, without trailing slash (e.g. `https://registry-1.docker.io`).
    pub base_url: String,
    /// Docker Hub maps single-segment names such as `alpine` to `library/alpine`.
    pub library_namespace: bool,
}

impl DockerUpstream {
    /// The upstream's name for an image of the remote repository.
    pub fn image_name(&self, image: &str) -> String {
        if self.library_namespace && !image.contains('/') {
            format!("library/{image}")
        } else {
            image.to_owned()
        }
    }

    /// The upstream's host (and port), as the access policy sees it.
    pub fn host(&self) -> String {
        url::Url::parse(&self.base_url)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| u.port().map_or(h.to_owned(), |p| format!("{h}:{p}")))
            })
            .unwrap_or_default()
    }
}

fn is_loopback(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => IpAddr::V4(*ip).is_loopback(),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip).is_loopback(),
    }
}

/// Resolve `--remote-docker-repo`: a preset or a URL.
pub fn docker_upstream(
    spec: &str,
    allow_insecure: bool,
) -> Result<DockerUpstream, UpstreamSpecError> {
    let preset = |base: &str, library: bool| DockerUpstream {
        base_url: base.to_owned(),
        library_namespace: library,
    };
    match spec.to_ascii_uppercase().replace('_', "-").as_str() {
        "DOCKER-HUB" | "DOCKERHUB" => return Ok(preset("https://registry-1.docker.io", true)),
        "GHCR" => return Ok(preset("https://ghcr.io", false)),
        "QUAY" => return Ok(preset("https://quay.io", false)),
        _ => {}
    }
    let url = url::Url::parse(spec).map_err(|_| UpstreamSpecError::Unknown(spec.to_owned()))?;
    let host = url
        .host()
        .ok_or_else(|| UpstreamSpecError::Unknown(spec.to_owned()))?;
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(UpstreamSpecError::Shape(spec.to_owned()));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure || is_loopback(&host) => {}
        "http" => return Err(UpstreamSpecError::Insecure(spec.to_owned())),
        _ => return Err(UpstreamSpecError::Unknown(spec.to_owned())),
    }
    let docker_hub = matches!(&host, url::Host::Domain(d) if d.eq_ignore_ascii_case("registry-1.docker.io") || d.eq_ignore_ascii_case("docker.io"));
    Ok(DockerUpstream {
        base_url: url.as_str().trim_end_matches('/').to_owned(),
        library_namespace: docker_hub,
    })
}

/// A Python simple-index upstream, resolved from a preset or URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonUpstream {
    /// The simple index URL, with a trailing slash (e.g. `https://pypi.org/simple/`).
    pub index_url: String,
    /// Hosts (with port, if any) besides the index's own that serve its files and
    /// may receive the repository's credentials (PyPI's `files.pythonhosted.org`).
    pub file_hosts: Vec<String>,
}

impl PythonUpstream {
    /// The index's host (and port), as the access policy sees it.
    pub fn host(&self) -> String {
        url::Url::parse(&self.index_url)
            .ok()
            .and_then(|u| {
                u.host_str()
                    .map(|h| u.port().map_or(h.to_owned(), |p| format!("{h}:{p}")))
            })
            .unwrap_or_default()
    }
}

/// Resolve `--remote-python-repo`: the preset `PYPI` or the URL of a simple index.
pub fn python_upstream(
    spec: &str,
    allow_insecure: bool,
) -> Result<PythonUpstream, UpstreamSpecError> {
    if spec.eq_ignore_ascii_case("PYPI") {
        return Ok(PythonUpstream {
            index_url: "https://pypi.org/simple/".into(),
            file_hosts: vec!["files.pythonhosted.org".into()],
        });
    }
    let unknown = || UpstreamSpecError::UnknownPython(spec.to_owned());
    let url = url::Url::parse(spec).map_err(|_| unknown())?;
    let host = url.host().ok_or_else(unknown)?;
    if url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(UpstreamSpecError::Shape(spec.to_owned()));
    }
    match url.scheme() {
        "https" => {}
        "http" if allow_insecure || is_loopback(&host) => {}
        "http" => return Err(UpstreamSpecError::Insecure(spec.to_owned())),
        _ => return Err(unknown()),
    }
    let mut index_url = url.to_string();
    if !index_url.ends_with('/') {
        index_url.push('/');
    }
    Ok(PythonUpstream {
        index_url,
        file_hosts: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_urls() {
        let hub = docker_upstream("DOCKER-HUB", false).unwrap();
        assert_eq!(hub.image_name("alpine"), "library/alpine");
        assert_eq!(hub.image_name("grafana/grafana"), "grafana/grafana");
        assert_eq!(hub.host(), "registry-1.docker.io");
        assert_eq!(
            docker_upstream("ghcr", false).unwrap().base_url,
            "https://ghcr.io"
        );
        let local = docker_upstream("http://127.0.0.1:5000/", false).unwrap();
        assert_eq!(local.base_url, "http://127.0.0.1:5000");
        assert_eq!(local.host(), "127.0.0.1:5000");
        assert_eq!(local.image_name("alpine"), "alpine");
        assert!(matches!(
            docker_upstream("http://registry.example.com", false),
            Err(UpstreamSpecError::Insecure(_))
        ));
        assert!(docker_upstream("http://registry.example.com", true).is_ok());
        assert!(matches!(
            docker_upstream("ftp://x", false),
            Err(UpstreamSpecError::Unknown(_))
        ));
        assert!(matches!(
            docker_upstream("https://u:p@x.io", false),
            Err(UpstreamSpecError::Shape(_))
        ));
        assert!(matches!(
            docker_upstream("nonsense", false),
            Err(UpstreamSpecError::Unknown(_))
        ));
    }

    #[test]
    fn python_presets_and_urls() {
        let pypi = python_upstream("pypi", false).unwrap();
        assert_eq!(pypi.index_url, "https://pypi.org/simple/");
        assert_eq!(pypi.file_hosts, vec!["files.pythonhosted.org".to_owned()]);
        let local = python_upstream("http://127.0.0.1:8081/simple", false).unwrap();
        assert_eq!(local.index_url, "http://127.0.0.1:8081/simple/");
        assert_eq!(local.host(), "127.0.0.1:8081");
        assert!(matches!(
            python_upstream("http://pypi.example.com/simple/", false),
            Err(UpstreamSpecError::Insecure(_))
        ));
        assert!(python_upstream("http://pypi.example.com/simple/", true).is_ok());
        assert!(matches!(
            python_upstream("DOCKER-HUB", false),
            Err(UpstreamSpecError::UnknownPython(_))
        ));
    }
}
