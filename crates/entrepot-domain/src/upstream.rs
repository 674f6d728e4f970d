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
}
