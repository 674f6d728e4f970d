//! Python projects, versions and files of a hosted repository.

use entrepot_domain::{Format, RepositoryName};
use entrepot_storage::{PythonCachedFileRecord, PythonPackageRecord, PythonVersionFile};

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

    /// The first upload of one of its files.
    pub fn create_time(&self) -> &str {
        self.files
            .iter()
            .map(|f| f.upload_time.as_str())
            .min()
            .unwrap_or("")
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

/// A file a remote Python repository has cached, with the version its
/// name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonCachedFile {
    /// What the store holds about it.
    pub record: PythonCachedFileRecord,
    /// The version from the file name (empty if the name does not parse).
    pub version: String,
}

impl ArtifactInventory {
    /// One page of the files a remote Python repository has cached, by
    /// (project, file name).
    pub async fn python_cached_files(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        page: &PageRequest<(String, String)>,
    ) -> Result<Page<PythonCachedFile, (String, String)>, InventoryError> {
        self.readable(caller, name, Format::Python).await?;
        let after = page.after.as_ref().map(|(n, f)| (n.as_str(), f.as_str()));
        let rows = self
            .store
            .python_cached_files(name, after, page.limit())
            .await?;
        let files = rows
            .into_iter()
            .map(|record| PythonCachedFile {
                version: crate::python::dist::parse_filename(&record.filename)
                    .map(|d| d.version)
                    .unwrap_or_default(),
                record,
            })
            .collect();
        Ok(Page::from_rows(files, page, |f: &PythonCachedFile| {
            (f.record.name.clone(), f.record.filename.clone())
        }))
    }

    /// One page of the projects of a hosted Python repository, by
    /// normalised name, with their version and file counts and sizes.
    pub async fn python_packages(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        page: &PageRequest<String>,
    ) -> Result<Page<PythonPackageRecord, String>, InventoryError> {
        self.readable(caller, name, Format::Python).await?;
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
