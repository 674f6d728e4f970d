//! What each Python operation requires of its caller: the one table
//! [`super::PythonRepositories`] authorizes by, before it looks the
//! repository up and routes the call to the hosted or the remote side.

use entrepot_domain::RepositoryName;

use crate::access::{Permission, Resource};

/// An operation of [`super::PythonRepositories`], as it is authorized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PythonOperation {
    /// Read the repository's project list.
    ProjectList,
    /// Read a project's page.
    ProjectPage,
    /// Download a file or its metadata file.
    File,
    /// Upload a distribution file.
    Upload,
    /// Yank or unyank a release.
    SetYanked,
}

impl PythonOperation {
    /// Every operation, for tables and tests.
    pub const ALL: [PythonOperation; 5] = [
        Self::ProjectList,
        Self::ProjectPage,
        Self::File,
        Self::Upload,
        Self::SetYanked,
    ];

    /// The permission the caller must hold on the repository: the one place
    /// that decides it for every Python operation.
    pub fn permission(self) -> Permission {
        match self {
            Self::ProjectList | Self::ProjectPage | Self::File => Permission::DownloadArtifacts,
            Self::Upload => Permission::UploadArtifacts,
            Self::SetYanked => Permission::DeleteArtifacts,
        }
    }
}

/// The resource of a repository name.
pub fn repository_resource(name: &RepositoryName) -> Resource {
    Resource::Repository {
        project: name.project.to_string(),
        repository: name.repository.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_need_download_uploads_upload_yanks_delete() {
        for op in PythonOperation::ALL {
            let expected = match op {
                PythonOperation::Upload => Permission::UploadArtifacts,
                PythonOperation::SetYanked => Permission::DeleteArtifacts,
                _ => Permission::DownloadArtifacts,
            };
            assert_eq!(op.permission(), expected, "{op:?}");
        }
    }
}
