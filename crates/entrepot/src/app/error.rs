//! Why an application could not be built.

/// Any error a build step can meet.
type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A build step failed. Shown with its causes (`{:#}` through `anyhow`), it
/// reads like `cannot open the metadata database: <why>`.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A step that names what it could not do.
    #[error("{context}")]
    Step {
        /// What could not be done (`cannot create data directory ./data`).
        context: String,
        /// Why.
        #[source]
        source: Source,
    },
    /// A step whose error already says what failed (an invalid setting, the
    /// first-start bootstrap).
    #[error(transparent)]
    Other(Source),
}

impl BuildError {
    /// Wrap an error that already names the failed step.
    pub(crate) fn other(error: impl Into<Source>) -> Self {
        Self::Other(error.into())
    }
}

/// Name the step of a fallible call, as `anyhow::Context` would.
pub(crate) trait Step<T> {
    /// `Err(e)` becomes a [`BuildError::Step`] with `context()` as its message.
    fn step<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T, BuildError>;
}

impl<T, E: Into<Source>> Step<T> for Result<T, E> {
    fn step<C: Into<String>>(self, context: impl FnOnce() -> C) -> Result<T, BuildError> {
        self.map_err(|e| BuildError::Step {
            context: context().into(),
            source: e.into(),
        })
    }
}
