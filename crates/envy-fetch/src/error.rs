//! What can go wrong while parsing or fetching an input. Every variant names the URL, input
//! or path involved.

use std::io;
use std::path::PathBuf;

use envy_store::nar::NarError;
use thiserror::Error;

/// A fetcher failure.
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("`{url}` is not a valid URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("input `{input}` is unsupported")]
    UnsupportedInput { input: String },
    #[error("unsupported {ty} input attribute `{name}`")]
    UnsupportedAttr { ty: String, name: String },
    #[error("input attribute `{name}` is missing")]
    MissingAttr { name: String },
    #[error("input attribute `{name}` is not {expected}")]
    AttrType {
        name: String,
        expected: &'static str,
    },
    #[error("bad input attributes: {message}")]
    BadAttrs { message: String },
    #[error("input `{input}` is invalid: {reason}")]
    BadInput { input: String, reason: String },
    #[error("cannot fetch input `{input}` because it uses a relative path")]
    RelativePath { input: String },
    #[error("relative path `{path}` points outside of its parent's source tree")]
    OutsideParent { path: String },
    #[error("path `{path}` does not exist")]
    NotFound { path: PathBuf },
    #[error("cannot read or write `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot archive `{path}`")]
    Nar {
        path: PathBuf,
        #[source]
        source: NarError,
    },
    #[error("cannot run `git {args}`")]
    GitSpawn {
        args: String,
        #[source]
        source: io::Error,
    },
    #[error("`git {args}` failed: {stderr}")]
    Git { args: String, stderr: String },
    #[error("cannot download `{url}`: {message}")]
    Download { url: String, message: String },
    #[error("cannot unpack `{url}`: {message}")]
    Unpack { url: String, message: String },
    #[error("tarball `{url}` contains an unexpected number of top-level files")]
    TopLevel { url: String },
    #[error("NAR hash mismatch in input `{input}`, expected `{expected}`, got `{got}`")]
    NarHashMismatch {
        input: String,
        expected: String,
        got: String,
    },
    #[error("`{attr}` attribute mismatch in input `{input}`, expected {expected}")]
    AttrMismatch {
        input: String,
        attr: &'static str,
        expected: u64,
    },
    #[error("cannot find `{what}` in `{url}`: {message}")]
    Api {
        url: String,
        what: String,
        message: String,
    },
    #[error("`{path}` is a shallow Git repository, but a non-shallow repository is needed")]
    Shallow { path: String },
    #[error("cannot add `{path}` to the store: {message}")]
    Store { path: PathBuf, message: String },
}

impl FetchError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> FetchError {
        let path = path.into();
        move |source| FetchError::Io { path, source }
    }
}
