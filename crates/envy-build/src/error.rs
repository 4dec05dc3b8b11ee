//! The builder's error type: every variant names the derivation, store path or file involved.

use std::io;
use std::path::PathBuf;

/// Why a build (or a step of one) failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A file-system error; `fs_err` has already put the path in the message.
    #[error(transparent)]
    FsErr(#[from] io::Error),

    #[error("cannot access `{path}`: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("sandbox path `{path}` is not accessible: {source}")]
    SandboxPath {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot start the builder `{builder}` of `{drv}`: {source}")]
    Spawn {
        drv: String,
        builder: String,
        #[source]
        source: io::Error,
    },

    #[error("builder for `{drv}` failed with {status}{tail}")]
    BuilderFailed {
        drv: String,
        status: String,
        tail: String,
    },

    #[error(
        "output path `{path}` of `{drv}` should be a non-executable regular file since recursive hashing is not enabled (`outputHashMode = \"flat\"`)"
    )]
    FlatOutputNotFile { drv: String, path: String },

    #[error("a `{system}` is required to build `{drv}`, but this is a `{host}`")]
    WrongSystem {
        drv: String,
        system: String,
        host: String,
    },

    #[error("`{drv}` uses the unsupported builder `{builder}`")]
    UnsupportedBuiltin { drv: String, builder: String },

    #[error("builder for `{drv}` failed to produce output path for output `{output}` at `{path}`")]
    MissingOutput {
        drv: String,
        output: String,
        path: String,
    },

    #[error(
        "hash mismatch in fixed-output derivation `{path}`:\n  specified: {specified}\n     got:    {got}"
    )]
    HashMismatch {
        path: String,
        specified: String,
        got: String,
    },

    #[error("invalid derivation `{drv}`: {reason}")]
    InvalidDerivation { drv: String, reason: String },

    #[error("cannot process `__json` attribute of `{drv}`: {source}")]
    StructuredAttrs {
        drv: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot download `{url}`: {reason}")]
    Download { url: String, reason: String },

    #[error("a sandboxed build was required but namespaces are unavailable: {source}")]
    SandboxUnavailable {
        #[source]
        source: io::Error,
    },

    /// envy's store failed; its error names the store path or file involved.
    #[error(transparent)]
    Store(#[from] envy_store::StoreError),

    #[error("derivation `{drv}` is not valid in envy's store")]
    DerivationNotValid { drv: String },

    #[error("input `{input}` of `{drv}` is not valid in envy's store")]
    InputNotValid { drv: String, input: String },

    #[error(
        "cannot build `{drv}` without a sandbox: its outputs {valid} are valid already and would be overwritten"
    )]
    PartlyValid { drv: String, valid: String },

    #[error(
        "cycle detected in build of `{drv}` in the references of output `{output}` from output `{parent}`"
    )]
    OutputCycle {
        drv: String,
        output: String,
        parent: String,
    },

    #[error("output `{path}` is not allowed to refer to the following paths:{paths}")]
    DisallowedReferences { path: String, paths: String },

    /// Nix's text, which does not name the derivation (the caller's context does).
    #[error("derivation contains an illegal reference specifier `{spec}`")]
    IllegalReferenceSpecifier { drv: String, spec: String },

    #[error("attribute `{attr}` of derivation `{drv}` must be {expected}")]
    BadOutputCheck {
        drv: String,
        attr: String,
        expected: String,
    },

    #[error("path `{path}` is too large at {size} bytes; limit is {limit} bytes")]
    TooLarge { path: String, size: u64, limit: u64 },

    #[error("closure of path `{path}` is too large at {size} bytes; limit is {limit} bytes")]
    ClosureTooLarge { path: String, size: u64, limit: u64 },

    #[error("no build log for `{path}`")]
    NoLog { path: String },

    #[error(
        "cannot build `{drv}`: {reason}\nhint: add a build machine for it to `builders` (`--builders`, `ENVY_BUILDERS`), or allow local builds (`-j 1`)"
    )]
    NoMachine { drv: String, reason: String },

    #[error("building `{drv}` on `{machine}` failed: {message}")]
    Remote {
        drv: String,
        machine: String,
        message: String,
    },

    #[error("builder for `{drv}` failed on `{machine}`: {message}{tail}")]
    RemoteFailed {
        drv: String,
        machine: String,
        message: String,
        tail: String,
    },

    #[error("{failed} of {total} derivations failed to build")]
    DependenciesFailed { failed: usize, total: usize },
}
