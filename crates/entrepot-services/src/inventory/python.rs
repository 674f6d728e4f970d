//! Python projects, versions and files of a hosted repository.

use entrepot_domain::{Format, RepositoryName};
use entrepot_storage::{PythonPackageRecord, PythonVersionFile};

use super::{ArtifactInventory, InventoryError};
use crate::access::Principal;
use crate::paging::{Page, PageRequest};

/// One version of a Python project, with its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonVersion {
    /// The version, as uploaded.
    pub version: String,
    /// Its files, by file name.
    pub files: Vec<PythonVersionFile>,
}

impl PythonVersion {
    /// Bytes of its files.
    pub fn size_bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Whether every file is yanked (PEP 592 yanks files; a version is
    /// yanked when all of its files are).
    pub fn yanked(&self) -> bool {
        !self.files.is_empty() && self.files.iter().all(|f| f.yanked)
    }

    /// The first upload of one of its files (empty if none is known).
    pub fn create_time(&self) -> &str {
        self.files
            .iter()
            .map(|f| f.upload_time.as_str())
            .filter(|t| !t.is_empty())
            .min()
            .unwrap_or("")
    }

    /// The latest recorded download of one of its files (unix ms).
    pub fn last_pull_ms(&self) -> Option<i64> {
        self.files.iter().filter_map(|f| f.last_pull_ms).max()
    }

    /// The last upload of one of its files.
    pub fn update_time(&self) -> &str {
        self.files
            .iter()
            .map(|f| f.upload_time.as_str())
            .max()
            .unwrap_or("")
    }
}

impl ArtifactInventory {
    /// One page of the projects of a hosted Python repository, by
    /// normalised name, with their version and file counts and sizes.
    pub async fn python_packages(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        page: &PageRequest<String>,
    ) -> Result<Page<PythonPackageRecord, String>, InventoryError> {
        self.readable(caller, name, Format::Python).await?;
        self.flush_pulls().await;
        let rows = self
            .store
            .python_packages(name, page.after.as_deref(), page.limit())
            .await?;
        Ok(Page::from_rows(rows, page, |p: &PythonPackageRecord| {
            p.name.clone()
        }))
    }

    /// One page of the versions of a Python project (lexical order of the
    /// version strings), each with its files.
    pub async fn python_versions(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        package: &str,
        page: &PageRequest<String>,
    ) -> Result<Page<PythonVersion, String>, InventoryError> {
        self.readable(caller, name, Format::Python).await?;
        let project = crate::python::dist::normalize(package);
        if project.is_empty() {
            return Err(InventoryError::Invalid(format!(
                "{package:?} is not a Python project name"
            )));
        }
        self.flush_pulls().await;
        let files = self
            .store
            .python_version_files(name, &project, page.after.as_deref(), page.limit())
            .await?;
        let mut versions: Vec<PythonVersion> = Vec::new();
        for file in files {
            match versions.last_mut() {
                Some(v) if v.version == file.version => v.files.push(file),
                _ => versions.push(PythonVersion {
                    version: file.version.clone(),
                    files: vec![file],
                }),
            }
        }
        Ok(Page::from_rows(versions, page, |v: &PythonVersion| {
            v.version.clone()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_yanked_when_all_its_files_are() {
        let file = |yanked| PythonVersionFile {
            version: "1.0".into(),
            filename: "f".into(),
            sha256: String::new(),
            size: 3,
            upload_time: "2026-01-01T00:00:00Z".into(),
            yanked,
            yanked_reason: None,
            last_pull_ms: None,
        };
        let mixed = PythonVersion {
            version: "1.0".into(),
            files: vec![file(true), file(false)],
        };
        assert!(!mixed.yanked());
        assert_eq!(mixed.size_bytes(), 6);
        let all = PythonVersion {
            version: "1.0".into(),
            files: vec![file(true)],
        };
        assert!(all.yanked());
    }
}
