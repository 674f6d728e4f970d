//! The members of a virtual repository, checked against the store when it
//! is created or its list changes: each exists, has the virtual
//! repository's format and is not virtual itself (so that no cycle can
//! form and a request fans out one level only).

use entrepot_domain::virtual_repository::{parse_member, VirtualConfig};
use entrepot_domain::{Format, Mode, RepositoryName};

use super::{RepositoryError, RepositoryService};

impl RepositoryService {
    /// `config` checked for the virtual repository `name` of `format`, in
    /// its stored form; refused with a message naming the bad member.
    pub(super) async fn checked_members(
        &self,
        name: &RepositoryName,
        format: Format,
        config: VirtualConfig,
    ) -> Result<VirtualConfig, RepositoryError> {
        let config = config
            .validated(name)
            .map_err(|e| RepositoryError::Invalid(e.to_string()))?;
        if format != Format::Python && !config.allow_remote_shadowing.is_empty() {
            return Err(RepositoryError::Invalid(
                "allowRemoteShadowing names Python projects; it applies to Python virtual repositories only".into(),
            ));
        }
        for policy in &config.upstream_policies {
            let Some(member) = parse_member(&policy.repository) else {
                continue; // `validated` refused it already
            };
            let repo = self.store.get_repository(&member).await?.ok_or_else(|| {
                RepositoryError::Invalid(format!(
                    "upstream policy {:?}: repository {member} does not exist; create it first",
                    policy.id
                ))
            })?;
            if repo.format != format {
                return Err(RepositoryError::Invalid(format!(
                    "upstream policy {:?}: {member} is a {} repository; the members of a {} virtual repository must all be {} repositories",
                    policy.id,
                    repo.format.as_str(),
                    format.as_str(),
                    format.as_str()
                )));
            }
            if repo.mode == Mode::VirtualRepository {
                return Err(RepositoryError::Invalid(format!(
                    "upstream policy {:?}: {member} is itself a virtual repository; virtual repositories cannot be members (no nesting, no cycles): name its standard and remote members instead",
                    policy.id
                )));
            }
        }
        Ok(config)
    }
}
