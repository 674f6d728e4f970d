//! A remote repository's upstream as one request sees it: where it is, the
//! settings of the cache, the credentials and where they may go; and the
//! access-policy gate in front of it.

use std::sync::Arc;

use entrepot_domain::repository::RemoteConfig;
use entrepot_upstream::{Budget, CredentialSource, HopDenied, NoCredentials};
use url::Url;

use super::credentials::RepositoryCredentials;
use super::failure::{host_of, UpstreamFailure};

/// The upstream of one remote repository, resolved for a request.
pub struct Target<U> {
    /// The repository's resource name: the scope of its fills.
    pub repository: String,
    /// The upstream as the format resolved it (once per specification, see
    /// [`RemoteCache::target`](super::RemoteCache::target)).
    pub upstream: Arc<U>,
    /// The repository's remote settings.
    pub config: RemoteConfig,
    /// The upstream's URL: the access policy judges its origin, and the
    /// credentials go to it.
    pub origin: Url,
    credentials: Arc<RepositoryCredentials>,
    credential_hosts: Vec<String>,
}

impl<U> Target<U> {
    /// A target with these credentials, which go to `origin`'s origin and,
    /// over https, to `credential_hosts` (`host[:port]`).
    pub fn new(
        repository: String,
        upstream: Arc<U>,
        config: RemoteConfig,
        origin: Url,
        credentials: Arc<RepositoryCredentials>,
        credential_hosts: Vec<String>,
    ) -> Self {
        Self {
            repository,
            upstream,
            config,
            origin,
            credentials,
            credential_hosts,
        }
    }

    /// The upstream's `host[:port]`.
    pub fn host(&self) -> String {
        host_of(&self.origin)
    }

    /// How long requests to the upstream may take, from the repository's
    /// settings.
    pub fn budget(&self) -> Budget {
        let t = &self.config.timeouts;
        Budget::from_secs(
            t.connect_timeout_secs,
            t.first_byte_timeout_secs,
            t.retry_budget_secs,
            t.idle_timeout_secs,
        )
    }

    /// The secret version the credentials are read from, if any.
    pub fn secret_version(&self) -> Option<&str> {
        self.config.password_secret_version.as_deref()
    }

    /// The credentials for a request to `url`: the repository's for its
    /// upstream's origin and its declared content hosts (https only), none
    /// for anything else (a file link on an index page may point anywhere).
    pub fn credentials_for(&self, url: &Url) -> Arc<dyn CredentialSource> {
        let same_origin = self.origin.origin() == url.origin();
        let content_host = url.scheme() == "https" && self.credential_hosts.contains(&host_of(url));
        if same_origin || content_host {
            self.credentials.clone()
        } else {
            Arc::new(NoCredentials)
        }
    }
}

/// What the registry access policy says about a target's upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// The upstream may be contacted.
    Open,
    /// The upstream is blocked, and the repository serves what it cached
    /// before (`allow_cached_from_blocked`).
    CachedOnly(HopDenied),
}

impl Gate {
    /// The policy's verdict on `origin` for a repository with `config`:
    /// blocked is an error unless the repository serves cached content.
    pub fn of(
        verdict: Result<(), HopDenied>,
        config: &RemoteConfig,
    ) -> Result<Self, UpstreamFailure> {
        match verdict {
            Ok(()) => Ok(Gate::Open),
            Err(denied) if config.allow_cached_from_blocked => Ok(Gate::CachedOnly(denied)),
            Err(denied) => Err(UpstreamFailure::blocked(denied, false)),
        }
    }

    /// `Ok` if the upstream may be asked for content that is not cached.
    pub fn allows_fetch(&self) -> Result<(), UpstreamFailure> {
        match self {
            Gate::Open => Ok(()),
            Gate::CachedOnly(denied) => Err(UpstreamFailure::blocked(denied.clone(), true)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote::credentials::NoSecretReader;

    fn config(allow_cached: bool) -> RemoteConfig {
        RemoteConfig {
            upstream: "https://index.example".into(),
            username: Some("u".into()),
            password_secret_version: Some("projects/p/secrets/s/versions/1".into()),
            tag_ttl_secs: 300,
            python_index_ttl_secs: None,
            serve_stale: true,
            allow_insecure_upstream: false,
            allow_cached_from_blocked: allow_cached,
            keep_deleted_secs: None,
            negative_cache_secs: None,
            cache_max_size_bytes: None,
            timeouts: Default::default(),
            release_age: Default::default(),
        }
    }

    fn target() -> Target<()> {
        let c = config(false);
        let credentials = Arc::new(RepositoryCredentials::new(
            "projects/p/repositories/r",
            c.username.clone(),
            c.password_secret_version.clone(),
            Arc::new(NoSecretReader),
        ));
        Target::new(
            "projects/p/repositories/r".into(),
            Arc::new(()),
            c,
            Url::parse("https://index.example/simple/").unwrap(),
            credentials,
            vec!["files.example".into()],
        )
    }

    #[tokio::test]
    async fn credentials_go_to_the_origin_and_declared_hosts_only() {
        let t = target();
        let configured = |url: &str| {
            let source = t.credentials_for(&Url::parse(url).unwrap());
            async move { source.credentials(false).await.is_err() }
        };
        // NoSecretReader refuses: an error means the repository's credentials
        // were asked for, `Ok(None)` that none were.
        assert!(configured("https://index.example/simple/x/").await);
        assert!(configured("https://files.example/packages/x.whl").await);
        assert!(!configured("http://files.example/packages/x.whl").await);
        assert!(!configured("https://elsewhere.example/x.whl").await);
        assert!(!configured("https://index.example:444/simple/").await);
    }

    #[test]
    fn a_block_is_an_error_unless_cached_content_may_be_served() {
        let denied = HopDenied {
            host: "index.example".into(),
            message: "blocked".into(),
        };
        assert_eq!(Gate::of(Ok(()), &config(false)).unwrap(), Gate::Open);
        assert!(matches!(
            Gate::of(Err(denied.clone()), &config(false)),
            Err(UpstreamFailure::Blocked {
                not_cached: false,
                ..
            })
        ));
        let gate = Gate::of(Err(denied), &config(true)).unwrap();
        assert!(matches!(
            gate.allows_fetch(),
            Err(UpstreamFailure::Blocked {
                not_cached: true,
                ..
            })
        ));
        assert!(Gate::Open.allows_fetch().is_ok());
    }
}
