//! Upstream registries of remote repositories: presets and validated URLs.

use std::net::IpAddr;

/// Why an upstream specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamSpecError {
    /// Neither a preset nor an http(s) URL.
    #[error(
        "upstream {0:?} is not a preset ({presets}) nor an http(s) URL",
        presets = "DOCKER-HUB, GHCR, QUAY, K8S, ECR-PUBLIC, GITLAB, MCR"
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

/// A Docker/OCI upstream known by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DockerPreset {
    /// The preset's name, as `--remote-docker-repo` takes it.
    pub name: &'static str,
    /// Base URL of the registry API.
    pub base_url: &'static str,
    /// Whether single-segment image names live under `library/`.
    pub library_namespace: bool,
    /// Every host (or `*.domain` pattern) a pull through this upstream
    /// contacts: the registry API, its token service and its blob CDN.
    /// Suggested for the registry access policy, never allowed by default.
    pub hosts: &'static [&'static str],
}

/// The Docker/OCI presets. The hosts are those the registries redirect to
/// today (token services and blob storage); `entrepot access-policy
/// suggest` shows what dry-run mode saw actually needed.
pub const DOCKER_PRESETS: &[DockerPreset] = &[
    DockerPreset {
        name: "DOCKER-HUB",
        base_url: "https://registry-1.docker.io",
        library_namespace: true,
        hosts: &[
            "registry-1.docker.io",
            "auth.docker.io",
            "production.cloudflare.docker.com",
            "docker-images-prod.6aa30f8b08e16409b46e0173d6de2f56.r2.cloudflarestorage.com",
        ],
    },
    DockerPreset {
        name: "GHCR",
        base_url: "https://ghcr.io",
        library_namespace: false,
        hosts: &["ghcr.io", "pkg-containers.githubusercontent.com"],
    },
    DockerPreset {
        name: "QUAY",
        base_url: "https://quay.io",
        library_namespace: false,
        hosts: &["quay.io", "*.quay.io"],
    },
    // registry.k8s.io redirects blob downloads to Artifact Registry
    // (REGION-docker.pkg.dev) or to S3 buckets
    // (prod-registry-k8s-io-REGION.s3.dualstack.REGION.amazonaws.com),
    // picked by the client's address.
    DockerPreset {
        name: "K8S",
        base_url: "https://registry.k8s.io",
        library_namespace: false,
        hosts: &["registry.k8s.io", "*.pkg.dev", "*.amazonaws.com"],
    },
    // Anonymous tokens at public.ecr.aws/token; layers from CloudFront.
    DockerPreset {
        name: "ECR-PUBLIC",
        base_url: "https://public.ecr.aws",
        library_namespace: false,
        hosts: &["public.ecr.aws", "*.cloudfront.net"],
    },
    // Tokens at gitlab.com/jwt/auth; layers from GitLab's CDN or Google
    // Cloud Storage.
    DockerPreset {
        name: "GITLAB",
        base_url: "https://registry.gitlab.com",
        library_namespace: false,
        hosts: &[
            "registry.gitlab.com",
            "gitlab.com",
            "cdn.registry.gitlab-static.net",
            "storage.googleapis.com",
        ],
    },
    // Anonymous; layers from REGION.data.mcr.microsoft.com.
    DockerPreset {
        name: "MCR",
        base_url: "https://mcr.microsoft.com",
        library_namespace: false,
        hosts: &["mcr.microsoft.com", "*.data.mcr.microsoft.com"],
    },
];

/// The preset `spec` names (case-insensitive, `_` for `-`), if any.
pub fn docker_preset(spec: &str) -> Option<&'static DockerPreset> {
    let wanted = spec.trim().to_ascii_uppercase().replace('_', "-");
    let wanted = match wanted.as_str() {
        "DOCKERHUB" => "DOCKER-HUB",
        "ECRPUBLIC" => "ECR-PUBLIC",
        other => other,
    };
    DOCKER_PRESETS.iter().find(|p| p.name == wanted)
}

/// Hosts a pull through the preset `PYPI` contacts.
pub const PYPI_HOSTS: &[&str] = &["pypi.org", "files.pythonhosted.org"];

/// `host[:port]` of a URL, as the access policy sees it.
fn host_port(url: &url::Url) -> String {
    url.host_str()
        .map(|h| url.port().map_or(h.to_owned(), |p| format!("{h}:{p}")))
        .unwrap_or_default()
}

/// A Docker/OCI upstream, resolved from a preset or URL: parsed once, when
/// the specification is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerUpstream {
    base_url: url::Url,
    host: String,
    library_namespace: bool,
}

impl DockerUpstream {
    fn new(base_url: url::Url, library_namespace: bool) -> Self {
        Self {
            host: host_port(&base_url),
            base_url,
            library_namespace,
        }
    }

    /// Base URL of the registry API (e.g. `https://registry-1.docker.io/`).
    pub fn base_url(&self) -> &url::Url {
        &self.base_url
    }

    /// Docker Hub maps single-segment names such as `alpine` to `library/alpine`.
    pub fn library_namespace(&self) -> bool {
        self.library_namespace
    }

    /// `{base}/v2/{path}` at the upstream.
    pub fn api_url(&self, path: &str) -> Result<url::Url, url::ParseError> {
        url::Url::parse(&format!(
            "{}/v2/{path}",
            self.base_url.as_str().trim_end_matches('/')
        ))
    }

    /// The upstream's name for an image of the remote repository.
    pub fn image_name(&self, image: &str) -> String {
        if self.library_namespace && !image.contains('/') {
            format!("library/{image}")
        } else {
            image.to_owned()
        }
    }

    /// The upstream's host (and port), as the access policy sees it.
    pub fn host(&self) -> &str {
        &self.host
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
    let preset = |base: &str, library: bool| {
        url::Url::parse(base)
            .map(|url| DockerUpstream::new(url, library))
            .map_err(|_| UpstreamSpecError::Unknown(spec.to_owned()))
    };
    if let Some(p) = docker_preset(spec) {
        return preset(p.base_url, p.library_namespace);
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
    Ok(DockerUpstream::new(url, docker_hub))
}

/// A Python simple-index upstream, resolved from a preset or URL: parsed
/// once, when the specification is resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonUpstream {
    index_url: url::Url,
    host: String,
    file_hosts: Vec<String>,
}

impl PythonUpstream {
    fn new(index_url: url::Url, file_hosts: Vec<String>) -> Self {
        Self {
            host: host_port(&index_url),
            index_url,
            file_hosts,
        }
    }

    /// The simple index URL, with a trailing slash (e.g. `https://pypi.org/simple/`).
    pub fn index_url(&self) -> &url::Url {
        &self.index_url
    }

    /// Hosts (with port, if any) besides the index's own that serve its files and
    /// may receive the repository's credentials (PyPI's `files.pythonhosted.org`).
    pub fn file_hosts(&self) -> &[String] {
        &self.file_hosts
    }

    /// The index's host (and port), as the access policy sees it.
    pub fn host(&self) -> &str {
        &self.host
    }
}

/// Resolve `--remote-python-repo`: the preset `PYPI` or the URL of a simple index.
pub fn python_upstream(
    spec: &str,
    allow_insecure: bool,
) -> Result<PythonUpstream, UpstreamSpecError> {
    let unknown = || UpstreamSpecError::UnknownPython(spec.to_owned());
    if spec.eq_ignore_ascii_case("PYPI") {
        let index = url::Url::parse("https://pypi.org/simple/").map_err(|_| unknown())?;
        return Ok(PythonUpstream::new(
            index,
            vec!["files.pythonhosted.org".into()],
        ));
    }
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
    let mut url = url;
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(PythonUpstream::new(url, Vec::new()))
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
            docker_upstream("ghcr", false).unwrap().base_url().as_str(),
            "https://ghcr.io/"
        );
        let local = docker_upstream("http://127.0.0.1:5000/", false).unwrap();
        assert_eq!(
            local.api_url("alpine/tags/list").unwrap().as_str(),
            "http://127.0.0.1:5000/v2/alpine/tags/list"
        );
        let under = docker_upstream("https://mirror.example.com/hub/", false).unwrap();
        assert_eq!(
            under.api_url("").unwrap().as_str(),
            "https://mirror.example.com/hub/v2/"
        );
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
    fn the_managed_registries_are_presets_with_the_hosts_they_need() {
        for (spec, base, host) in [
            ("K8S", "https://registry.k8s.io/", "registry.k8s.io"),
            ("ecr-public", "https://public.ecr.aws/", "public.ecr.aws"),
            ("ECR_PUBLIC", "https://public.ecr.aws/", "public.ecr.aws"),
            (
                "GITLAB",
                "https://registry.gitlab.com/",
                "registry.gitlab.com",
            ),
            ("mcr", "https://mcr.microsoft.com/", "mcr.microsoft.com"),
        ] {
            let up = docker_upstream(spec, false).unwrap();
            assert_eq!(up.base_url().as_str(), base);
            assert_eq!(up.host(), host);
            assert!(!up.library_namespace());
            assert!(docker_preset(spec).unwrap().hosts.contains(&host));
        }
        assert!(docker_preset("GITLAB")
            .unwrap()
            .hosts
            .contains(&"gitlab.com"));
        assert!(docker_preset("MCR")
            .unwrap()
            .hosts
            .contains(&"*.data.mcr.microsoft.com"));
        assert!(docker_preset("https://ghcr.io").is_none());
        // The preset names are what the error lists.
        let message = docker_upstream("nonsense", false).unwrap_err().to_string();
        for p in DOCKER_PRESETS {
            assert!(message.contains(p.name), "{message}");
        }
    }

    #[test]
    fn python_presets_and_urls() {
        let pypi = python_upstream("pypi", false).unwrap();
        assert_eq!(pypi.index_url().as_str(), "https://pypi.org/simple/");
        assert_eq!(pypi.host(), "pypi.org");
        assert_eq!(pypi.file_hosts(), ["files.pythonhosted.org".to_owned()]);
        let local = python_upstream("http://127.0.0.1:8081/simple", false).unwrap();
        assert_eq!(local.index_url().as_str(), "http://127.0.0.1:8081/simple/");
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
