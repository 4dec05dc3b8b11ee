//! What can go wrong with a flake: bad references, lock files, the registry, `flake.nix`
//! itself, and the fetchers underneath. Messages follow Nix's wording where Nix has one.

use std::path::PathBuf;

use envy_fetch::FetchError;
use thiserror::Error;

/// A flake failure.
#[derive(Debug, Error)]
pub enum FlakeError {
    #[error("`{reference}` is not a valid flake reference: {reason}")]
    BadRef { reference: String, reason: String },
    #[error("path `{path}` is not a flake (because it's not a directory)")]
    NotADirectory { path: PathBuf },
    #[error(
        "path `{path}` is not part of a flake (neither it nor its parent directories contain a `flake.nix` file)"
    )]
    NoFlakeNix { path: PathBuf },
    #[error("source tree referenced by `{reference}` does not contain a `{subdir}flake.nix` file")]
    MissingFlakeNix { reference: String, subdir: String },
    #[error("lock file `{path}`: {message}")]
    LockFile { path: String, message: String },
    #[error("lock file `{path}` has unsupported version {version}")]
    LockVersion { path: String, version: u64 },
    #[error("registry `{path}`: {message}")]
    Registry { path: PathBuf, message: String },
    #[error("cannot find flake `{reference}` in the flake registries")]
    NotInRegistry { reference: String },
    #[error("cycle detected in flake registry for `{reference}`")]
    RegistryCycle { reference: String },
    #[error("`{reference}` is an indirect flake reference, but registry lookups are not allowed")]
    NoRegistryLookup { reference: String },
    #[error("{message}")]
    FlakeNix { message: String },
    #[error("input `{input}` follows a non-existent input `{target}`")]
    BadFollows { input: String, target: String },
    #[error("found circular import of flake `{reference}`")]
    Circular { reference: String },
    #[error(
        "flake `{reference}` requires lock file changes but they're not allowed due to `--no-update-lock-file`"
    )]
    LockChangesNotAllowed { reference: String },
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}")]
    Fetch {
        context: String,
        #[source]
        source: FetchError,
    },
    #[error(transparent)]
    FetchPlain(#[from] FetchError),
    #[error("{message}")]
    Eval { message: String },
    #[error("{source}\n{context}")]
    Context {
        context: String,
        source: Box<FlakeError>,
    },
}

impl FlakeError {
    /// This error with a trace line under it (`while updating the flake input 'x'`).
    #[must_use]
    pub fn context(self, context: impl Into<String>) -> FlakeError {
        FlakeError::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// Wrap a fetch error with a context line (`while updating the flake input 'x'`).
    pub fn fetch(context: impl Into<String>) -> impl FnOnce(FetchError) -> FlakeError {
        let context = context.into();
        move |source| FlakeError::Fetch { context, source }
    }
}
