//! Errors talking to binary caches; each names the cache URL or the store path involved.

use std::path::PathBuf;

use thiserror::Error;

use crate::local::StoreError;

#[derive(Debug, Error)]
pub enum CacheError {
    #[error("unsupported binary cache URL `{url}` (expected `file://`, `http://` or `https://`)")]
    BadUrl { url: String },
    #[error("cannot fetch `{url}`")]
    Fetch {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("`{url}` answered HTTP status {status}")]
    HttpStatus { url: String, status: u16 },
    #[error("cannot write `{url}`")]
    Upload {
        url: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("bad `{file}` from `{url}`, line {line}: {detail}")]
    BadFile {
        url: String,
        file: String,
        line: usize,
        detail: String,
    },
    #[error("`{url}` is not a binary cache (it has no `nix-cache-info`)")]
    NotACache { url: String },
    #[error("binary cache `{url}` is for Nix stores with prefix `{cache_dir}`, not `{store_dir}`")]
    WrongStoreDir {
        url: String,
        cache_dir: String,
        store_dir: String,
    },
    #[error("`{path}` from `{url}` has no signature by a trusted key")]
    Untrusted { path: String, url: String },
    #[error("`{path}` is not in any binary cache ({urls})")]
    NotFound { path: String, urls: String },
    #[error("unsupported compression `{compression}` for `{url}`")]
    UnsupportedCompression { url: String, compression: String },
    #[error("`{url}` has hash `{got}`, but its narinfo says `{expected}`")]
    FileHashMismatch {
        url: String,
        expected: String,
        got: String,
    },
    #[error("bad key `{key}`: {detail}")]
    BadKey { key: String, detail: String },
    #[error("cannot read `{path}`")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad config file `{path}`: {detail}")]
    Config { path: PathBuf, detail: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}
