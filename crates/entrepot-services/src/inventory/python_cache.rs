//! What a remote Python repository's cache holds, in the inventory's
//! shapes: its files, and the projects and versions they belong to, each
//! with sizes, digests, when it was cached and when it was last downloaded.
//!
//! Read from the cached files in (project, file name) order, a chunk at a
//! time: a page of projects reads the files of the projects on it, a page
//! of versions the files of its project. That is what was downloaded
//! through the repository, never the upstream's whole history.

use std::collections::{BTreeMap, BTreeSet};

use entrepot_domain::{Format, RepositoryName};
use entrepot_storage::{PythonCachedFileRecord, PythonPackageRecord, PythonVersionFile};

use super::{ArtifactInventory, InventoryError, PythonVersion};
use crate::access::Principal;
use crate::paging::{Page, PageRequest};

/// Cached files read per store call while projects or versions are grouped.
const CHUNK: u32 = 500;

/// A file name that sorts after every other (names are bytes in UTF-8,
/// compared bytewise): a page of projects starts after every file of the
/// last project of the page before.
const AFTER_EVERY_FILE: &str = "\u{10FFFF}";

/// A file a remote Python repository has cached, with the version its
/// name says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PythonCachedFile {
    /// What the store holds about it.
    pub record: PythonCachedFileRecord,
    /// The version from the file name (empty if the name does not parse).
    pub version: String,
}

impl PythonCachedFile {
    fn new(record: PythonCachedFileRecord) -> Self {
        Self {
            version: crate::python::dist::parse_filename(&record.filename)
                .map(|d| d.version)
                .unwrap_or_default(),
            record,
        }
    }

    /// The file as a file of its version: the time it was cached stands
    /// for its upload time, and it is never yanked (whether the upstream
    /// yanked it is on the upstream's page, not in the cache).
    fn version_file(&self) -> PythonVersionFile {
        PythonVersionFile {
            version: self.version.clone(),
            filename: self.record.filename.clone(),
            sha256: self.record.sha256.clone(),
            size: self.record.size,
            upload_time: self.record.cache_time.clone().unwrap_or_default(),
            yanked: false,
            yanked_reason: None,
            last_pull_ms: self.record.last_pull_ms,
        }
    }
}

/// A project of the cache, as its files are read.
struct CachedProject {
    name: String,
    versions: BTreeSet<String>,
    files: u64,
    size: u64,
    first_cached: Option<String>,
    last_cached: Option<String>,
    last_pull_ms: Option<i64>,
}

impl CachedProject {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            versions: BTreeSet::new(),
            files: 0,
            size: 0,
            first_cached: None,
            last_cached: None,
            last_pull_ms: None,
        }
    }

    fn add(&mut self, file: &PythonCachedFile) {
        self.versions.insert(file.version.clone());
        self.files += 1;
        self.size += file.record.size;
        if let Some(t) = &file.record.cache_time {
            if self.first_cached.as_ref().is_none_or(|f| t < f) {
                self.first_cached = Some(t.clone());
            }
            if self.last_cached.as_ref().is_none_or(|l| t > l) {
                self.last_cached = Some(t.clone());
            }
        }
        self.last_pull_ms = self.last_pull_ms.max(file.record.last_pull_ms);
    }

    /// As a package: created when its first file was cached, updated when
    /// its last one was (empty when the links are older than link times).
    fn record(self) -> PythonPackageRecord {
        PythonPackageRecord {
            name: self.name,
            versions: self.versions.len() as u64,
            files: self.files,
            size: self.size,
            create_time: self.first_cached.unwrap_or_default(),
            update_time: self.last_cached.unwrap_or_default(),
            last_pull_ms: self.last_pull_ms,
        }
    }
}

impl ArtifactInventory {
    /// At most [`CHUNK`] cached files of `name` after `after`, and whether
    /// more may follow.
    async fn cached_chunk(
        &self,
        name: &RepositoryName,
        after: (&str, &str),
    ) -> Result<(Vec<PythonCachedFile>, bool), InventoryError> {
        let rows = self
            .store
            .python_cached_files(name, Some(after), CHUNK)
            .await?;
        let more = rows.len() >= CHUNK as usize;
        Ok((rows.into_iter().map(PythonCachedFile::new).collect(), more))
    }

    /// One page of the files a remote Python repository has cached, by
    /// (project, file name).
    pub async fn python_cached_files(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        page: &PageRequest<(String, String)>,
    ) -> Result<Page<PythonCachedFile, (String, String)>, InventoryError> {
        self.readable(caller, name, Format::Python).await?;
        self.flush_pulls().await;
        let after = page.after.as_ref().map(|(n, f)| (n.as_str(), f.as_str()));
        let rows = self
            .store
            .python_cached_files(name, after, page.limit())
            .await?;
        let files = rows.into_iter().map(PythonCachedFile::new).collect();
        Ok(Page::from_rows(files, page, |f: &PythonCachedFile| {
            (f.record.name.clone(), f.record.filename.clone())
        }))
    }

    /// One page of the projects a remote Python repository holds files of,
    /// by normalised name, with their version and file counts, sizes, when
    /// first and last cached and last downloaded.
    pub async fn python_cached_packages(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        page: &PageRequest<String>,
    ) -> Result<Page<PythonPackageRecord, String>, InventoryError> {
        self.readable(caller, name, Format::Python).await?;
        self.flush_pulls().await;
        let wanted = page.limit() as usize;
        let mut projects: Vec<CachedProject> = Vec::new();
        let mut after = (
            page.after.clone().unwrap_or_default(),
            AFTER_EVERY_FILE.to_owned(),
        );
        'read: loop {
            let (files, more) = self.cached_chunk(name, (&after.0, &after.1)).await?;
            if let Some(last) = files.last() {
                after = (last.record.name.clone(), last.record.filename.clone());
            }
            for file in &files {
                if projects.last().is_none_or(|p| p.name != file.record.name) {
                    projects.push(CachedProject::new(&file.record.name));
                    // The project past the page only says that one follows.
                    if projects.len() == wanted {
                        break 'read;
                    }
                }
                if let Some(project) = projects.last_mut() {
                    project.add(file);
                }
            }
            if !more {
                break;
            }
        }
        let rows = projects.into_iter().map(CachedProject::record).collect();
        Ok(Page::from_rows(rows, page, |p: &PythonPackageRecord| {
            p.name.clone()
        }))
    }

    /// One page of the versions of a project a remote Python repository
    /// holds files of (lexical order of the version strings, as for hosted
    /// ones), each with its cached files.
    pub async fn python_cached_versions(
        &self,
        caller: &Principal,
        name: &RepositoryName,
        package: &str,
        page: &PageRequest<String>,
    ) -> Result<Page<PythonVersion, String>, InventoryError> {
        self.readable(caller, name, Format::Python).await?;
        self.flush_pulls().await;
        let project = crate::python::dist::normalize(package);
        if project.is_empty() {
            return Err(InventoryError::Invalid(format!(
                "{package:?} is not a Python project name"
            )));
        }
        let mut versions: BTreeMap<String, Vec<PythonVersionFile>> = BTreeMap::new();
        let mut after = (project.clone(), String::new());
        'read: loop {
            let (files, more) = self.cached_chunk(name, (&after.0, &after.1)).await?;
            for file in &files {
                if file.record.name != project {
                    break 'read;
                }
                after = (file.record.name.clone(), file.record.filename.clone());
                versions
                    .entry(file.version.clone())
                    .or_default()
                    .push(file.version_file());
            }
            if !more {
                break;
            }
        }
        let rows = versions
            .into_iter()
            .filter(|(v, _)| page.after.as_ref().is_none_or(|after| v > after))
            .take(page.limit() as usize)
            .map(|(version, files)| PythonVersion { version, files })
            .collect();
        Ok(Page::from_rows(rows, page, |v: &PythonVersion| {
            v.version.clone()
        }))
    }
}
