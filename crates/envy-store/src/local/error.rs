//! Errors of the local store; every variant names the path or store path involved.

use std::io;
use std::path::PathBuf;

use thiserror::Error;

use crate::derivation::DerivationError;
use crate::nar::NarError;
use crate::store_path::{NameError, StorePathError};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("I/O error on `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("store database `{path}`")]
    Db {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("refusing to use `{dir}` as envy's store: {reason}")]
    NotEnvyStore { dir: PathBuf, reason: String },
    #[error("state directory `{state}` belongs to store `{recorded}`, not `{requested}`")]
    WrongStoreDir {
        state: PathBuf,
        recorded: String,
        requested: String,
    },
    #[error("path `{path}` is not valid")]
    InvalidPath { path: String },
    #[error("path `{path}` is valid and cannot be deleted this way")]
    PathIsValid { path: String },
    #[error("cannot register `{path}`: its reference `{reference}` is not valid")]
    MissingReference { path: String, reference: String },
    #[error("archive for `{path}`")]
    Nar {
        path: String,
        #[source]
        source: NarError,
    },
    #[error("hash mismatch for `{path}`: expected `{expected}`, got `{got}`")]
    HashMismatch {
        path: String,
        expected: String,
        got: String,
    },
    #[error("size mismatch for `{path}`: expected {expected} bytes, got {got}")]
    SizeMismatch {
        path: String,
        expected: u64,
        got: u64,
    },
    #[error("invalid store path name for `{path}`")]
    Name {
        path: PathBuf,
        #[source]
        source: NameError,
    },
    #[error("bad store path in the database or a root: `{path}`")]
    BadStorePath {
        path: String,
        #[source]
        source: StorePathError,
    },
    #[error("derivation `{path}`")]
    Derivation {
        path: String,
        #[source]
        source: DerivationError,
    },
    #[error(
        "file `{path}` has an unsupported type (only regular files, directories and symlinks can be in the store)"
    )]
    UnsupportedFileType { path: PathBuf },
    #[error("bad database entry for `{path}`: {detail}")]
    BadEntry { path: String, detail: String },
}

/// Attach a path to an I/O error.
pub(crate) fn io_err(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.into();
    move |source| StoreError::Io { path, source }
}
