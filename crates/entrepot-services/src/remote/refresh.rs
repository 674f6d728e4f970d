//! What `repositories refresh` reports: for each mutable document it asked
//! the upstream about (a tag, an index page), what the cache held before and
//! holds now.

/// What a refresh did to one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RefreshOutcome {
    /// The upstream confirmed the cached copy.
    Unchanged,
    /// The upstream has another version; it replaced the cached copy.
    Updated,
    /// Nothing was cached; the upstream's version is now.
    Added,
    /// The upstream could not be asked or did not answer it; the cached copy
    /// (if any) is kept.
    Failed,
}

/// One document a refresh asked the upstream about.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refreshed {
    /// What it is, as the user names it (`app:1.0`, a Python project).
    pub name: String,
    /// The digest of the cached copy before, if there was one.
    pub before: Option<String>,
    /// The digest of the cached copy now, if there is one.
    pub after: Option<String>,
    /// What happened.
    pub outcome: RefreshOutcome,
    /// Why it failed, for [`RefreshOutcome::Failed`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The result of `repositories refresh`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshReport {
    /// The repository's resource name.
    pub repository: String,
    /// Each document asked about, in order.
    pub refreshed: Vec<Refreshed>,
    /// More documents matched than one refresh asks about; the rest were
    /// left to their freshness window.
    pub truncated: bool,
}

impl Refreshed {
    /// The outcome of asking about `name`, cached as `before`, now `after`.
    pub fn of(name: String, before: Option<String>, after: Option<String>) -> Self {
        let outcome = match (&before, &after) {
            (None, _) => RefreshOutcome::Added,
            (b, a) if b == a => RefreshOutcome::Unchanged,
            _ => RefreshOutcome::Updated,
        };
        Self {
            name,
            before,
            after,
            outcome,
            error: None,
        }
    }

    /// Asking about `name`, cached as `before`, failed with `error`.
    pub fn failed(name: String, before: Option<String>, error: String) -> Self {
        Self {
            name,
            after: before.clone(),
            before,
            outcome: RefreshOutcome::Failed,
            error: Some(error),
        }
    }
}
