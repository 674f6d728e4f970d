//! What a registry token may grant its holder: the requested actions the
//! caller could perform now, decided by the same table as the operations
//! themselves ([`OciOperation`]).

use entrepot_domain::ImagePath;

use super::{OciOperation, OciRepositories};
use crate::access::Principal;

impl OciRepositories {
    /// Which of the requested token `actions` on `image` (`pull`, `push`,
    /// `delete`, `*`) `principal` may perform; an action it may not, or
    /// does not know, is left out rather than refused.
    pub async fn granted_actions(
        &self,
        principal: &Principal,
        image: &ImagePath,
        actions: &[String],
    ) -> Vec<String> {
        let mut granted = Vec::new();
        for action in actions {
            let Some(operations) = OciOperation::of_token_action(action) else {
                continue;
            };
            if self.may_all(principal, operations, Some(image)).await {
                granted.push(action.clone());
            }
        }
        granted
    }

    /// Which of the requested catalog `actions` (only `*` exists) `principal`
    /// may perform.
    pub async fn granted_catalog_actions(
        &self,
        principal: &Principal,
        actions: &[String],
    ) -> Vec<String> {
        if !self
            .may_all(principal, &[OciOperation::Catalog], None)
            .await
        {
            return Vec::new();
        }
        actions.iter().filter(|a| *a == "*").cloned().collect()
    }

    /// Whether `principal` may perform every one of `operations`.
    async fn may_all(
        &self,
        principal: &Principal,
        operations: &[OciOperation],
        image: Option<&ImagePath>,
    ) -> bool {
        for operation in operations {
            if self.authorize(principal, *operation, image).await.is_err() {
                return false;
            }
        }
        true
    }
}
