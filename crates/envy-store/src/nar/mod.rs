//! Nix archives (NAR): the canonical serialisation of a file system object that store paths,
//! NAR hashes and binary caches are built on. `dump` writes one from the file system (sorted
//! entries, the executable bit, symlinks, nothing else), `parse` reads one back with the
//! strictness Nix has (names, order, padding, truncation) and hands the objects to a `NarSink`,
//! and `restore` is the sink that recreates the tree on disk.

mod dump;
mod parse;
mod restore;
mod restore_parallel;
mod writer;

use std::io;
use std::path::PathBuf;

use thiserror::Error;

pub use dump::{
    PathFilter, dump_and_copy, dump_bytes, dump_path, dump_path_filtered, nar_hash_path,
    nar_hash_path_with,
};
pub use parse::{NarSink, NullSink, parse};
pub use restore::{RestoreSink, restore};
pub use restore_parallel::restore_parallel;
pub use writer::NarWriter;

/// The magic string every NAR starts with.
pub const NAR_MAGIC: &str = "nix-archive-1";

/// Longest string other than file contents a NAR may hold (names, symlink targets, tags).
pub(crate) const MAX_TOKEN: u64 = 4096;

/// A NAR that cannot be written or read.
#[derive(Debug, Error)]
pub enum NarError {
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("file `{path}` has an unsupported type")]
    UnsupportedType { path: PathBuf },
    #[error("file `{path}` changed while it was being archived")]
    FileChanged { path: PathBuf },
    #[error("cannot write the archive")]
    Write(#[source] io::Error),
    #[error("cannot read the archive")]
    Input(#[source] io::Error),
    #[error("bad archive: unexpected end of archive")]
    Truncated,
    #[error("bad archive: input is not a Nix archive")]
    BadMagic,
    #[error("bad archive: expected tag `{expected}`, got `{got}`")]
    ExpectedTag { expected: String, got: String },
    #[error("bad archive: expected tag `{expected}`")]
    MissingTag { expected: String },
    #[error("bad archive: unknown file type `{ty}`")]
    UnknownType { ty: String },
    #[error("bad archive: NAR contains invalid file name `{name}`")]
    InvalidName { name: String },
    #[error("bad archive: NAR directory is not sorted (`{name}` after `{previous}`)")]
    NotSorted { name: String, previous: String },
    #[error("bad archive: executable marker has non-empty value")]
    BadExecutableMarker,
    #[error("bad archive: non-zero padding")]
    NonZeroPadding,
    #[error("bad archive: string of {len} bytes is too long")]
    TooLong { len: u64 },
    #[error("cannot create `{path}` while unpacking an archive")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot unpack an archive into `{path}`: it already exists")]
    Exists { path: PathBuf },
}

/// Padding after a string of `len` bytes.
pub(crate) fn padding(len: u64) -> usize {
    ((8 - len % 8) % 8) as usize
}

/// `str(s)`: length (u64 little-endian), bytes, zero padding to 8.
pub(crate) fn write_str(out: &mut impl io::Write, s: &[u8]) -> io::Result<()> {
    out.write_all(&(s.len() as u64).to_le_bytes())?;
    out.write_all(s)?;
    out.write_all(&[0u8; 8][..padding(s.len() as u64)])
}

#[cfg(test)]
mod tests;
