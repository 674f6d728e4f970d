//! What the tests of the IAM modules share.

use std::sync::Arc;

use entrepot_storage::testing::memory_stores;
use entrepot_storage::MetadataStore;

use super::IamService;
use crate::access::{Principal, Resource};

/// A service over fresh in-memory stores, with the metadata store beside it.
pub(super) async fn service() -> (IamService, Arc<dyn MetadataStore>) {
    let store = memory_stores().await.unwrap();
    let iam = IamService::new(store.iam, store.metadata.clone(), &[7u8; 32]);
    (iam, store.metadata)
}

/// The secret `s` of project `demo`.
pub(super) fn secret(s: &str) -> Resource {
    Resource::Secret {
        project: "demo".into(),
        secret: s.into(),
    }
}

/// The user `e`.
pub(super) fn user(e: &str) -> Principal {
    Principal::User(e.into())
}
