//! For the services' own tests of who may do what: the real IAM service
//! over in-memory stores, and an upstream on loopback that counts the
//! connections it is sent and closes each at once.
#![allow(clippy::unwrap_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use entrepot_domain::iam::Member;
use entrepot_domain::repository::RemoteConfig;
use entrepot_domain::{Format, Mode, RepositoryName};
use entrepot_storage::testing::memory_stores;
use entrepot_storage::Stores;

use crate::access::{AccessControl, Principal, Resource};
use crate::iam::IamService;
use crate::repositories::{NewRepository, RepositoryService};

/// Stores with the project `demo`, and IAM enforcing their policies.
pub(crate) struct Fixture {
    pub(crate) stores: Stores,
    pub(crate) iam: Arc<IamService>,
    pub(crate) repositories: RepositoryService,
}

impl Fixture {
    pub(crate) async fn new() -> Self {
        let stores = memory_stores().await.unwrap();
        stores
            .metadata
            .create_project(&"demo".parse().unwrap())
            .await
            .unwrap();
        let iam = Arc::new(IamService::new(
            stores.iam.clone(),
            stores.metadata.clone(),
            &[7u8; 32],
        ));
        let repositories = RepositoryService::new(stores.metadata.clone());
        Self {
            stores,
            iam,
            repositories,
        }
    }

    /// IAM as the services' access hook.
    pub(crate) fn access(&self) -> Arc<dyn AccessControl> {
        self.iam.clone()
    }

    /// Create `projects/demo/repositories/{id}`; a remote one pulls through
    /// `upstream`.
    pub(crate) async fn repository(&self, id: &str, format: Format, upstream: Option<&str>) {
        let name: RepositoryName = format!("projects/demo/repositories/{id}").parse().unwrap();
        let remote = upstream.map(|u| RemoteConfig {
            upstream: u.to_owned(),
            username: None,
            password_secret_version: None,
            tag_ttl_secs: 60,
            python_index_ttl_secs: None,
            serve_stale: false,
            allow_insecure_upstream: false,
            allow_cached_from_blocked: false,
            keep_deleted_secs: None,
            negative_cache_secs: None,
            cache_max_size_bytes: None,
            timeouts: Default::default(),
            release_age: Default::default(),
        });
        let mode = if remote.is_some() {
            Mode::RemoteRepository
        } else {
            Mode::StandardRepository
        };
        self.repositories
            .create(
                &name,
                NewRepository {
                    format,
                    mode,
                    description: String::new(),
                    remote,
                    virtual_config: None,
                },
            )
            .await
            .unwrap();
    }

    /// Grant `role` on the repository `id` to `user:{email}`.
    pub(crate) async fn grant(&self, id: &str, role: &str, email: &str) {
        let repo = Resource::Repository {
            project: "demo".into(),
            repository: id.into(),
        };
        self.iam
            .grant(&repo, role, Member::User(email.into()))
            .await
            .unwrap();
    }
}

/// `user:{email}`.
pub(crate) fn user(email: &str) -> Principal {
    Principal::User(email.into())
}

/// A loopback upstream that accepts connections, counts them and closes
/// them unanswered: whoever reaches it gets an upstream failure.
pub(crate) struct CountingUpstream {
    /// `http://127.0.0.1:PORT`.
    pub(crate) url: String,
    connections: Arc<AtomicUsize>,
}

impl CountingUpstream {
    pub(crate) async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Self { url, connections }
    }

    /// Connections accepted so far.
    pub(crate) fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}
