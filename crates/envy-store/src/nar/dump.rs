//! Writing a NAR from the file system (Nix's `dumpPath`): directories with their entries sorted
//! by name bytes, regular files with an `executable` marker when the owner may execute them,
//! and symlinks with their target. Ownership, times and other permission bits are not recorded.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use super::{NAR_MAGIC, NarError, padding, write_str};
use crate::hash::{Hash, HashAlgo, HashSink};

/// Read files in chunks this large.
const CHUNK: usize = 1 << 20;

/// Decides whether an entry below the root goes into the archive (`builtins.path`'s
/// `filter`); gets the entry's path and its `lstat` metadata.
pub type PathFilter<'f> = dyn FnMut(&Path, &std::fs::Metadata) -> bool + 'f;

struct Dumper<'w, 'f, W: Write> {
    out: &'w mut W,
    buf: Vec<u8>,
    filter: Option<&'w mut PathFilter<'f>>,
}

fn create_err(path: &Path) -> impl FnOnce(io::Error) -> NarError + '_ {
    move |source| NarError::Create {
        path: path.to_owned(),
        source,
    }
}

impl<W: Write> Dumper<'_, '_, W> {
    fn tag(&mut self, s: &str) -> Result<(), NarError> {
        write_str(self.out, s.as_bytes()).map_err(NarError::Write)
    }

    fn node(&mut self, path: &Path, copy: Option<&Path>) -> Result<(), NarError> {
        let read_err = |source| NarError::Read {
            path: path.to_owned(),
            source,
        };
        let meta = std::fs::symlink_metadata(path).map_err(read_err)?;
        self.tag("(")?;
        let ty = meta.file_type();
        if ty.is_file() {
            self.tag("type")?;
            self.tag("regular")?;
            let executable = meta.permissions().mode() & 0o100 != 0;
            if executable {
                self.tag("executable")?;
                self.tag("")?;
            }
            self.tag("contents")?;
            let mut dest = match copy {
                Some(dest) => Some(
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create_new(true)
                        .mode(if executable { 0o755 } else { 0o644 })
                        .open(dest)
                        .map_err(create_err(dest))?,
                ),
                None => None,
            };
            self.contents(
                path,
                meta.len(),
                dest.as_mut().map(|f| (copy.unwrap_or(path), f)),
            )?;
        } else if ty.is_dir() {
            self.tag("type")?;
            self.tag("directory")?;
            if let Some(dest) = copy {
                std::fs::DirBuilder::new()
                    .mode(0o755)
                    .create(dest)
                    .map_err(create_err(dest))?;
            }
            let mut names: Vec<OsString> = std::fs::read_dir(path)
                .map_err(read_err)?
                .map(|entry| entry.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(read_err)?;
            names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
            for name in names {
                let child = path.join(&name);
                if let Some(filter) = self.filter.as_mut() {
                    let meta =
                        std::fs::symlink_metadata(&child).map_err(|source| NarError::Read {
                            path: child.clone(),
                            source,
                        })?;
                    if !filter(&child, &meta) {
                        continue;
                    }
                }
                self.tag("entry")?;
                self.tag("(")?;
                self.tag("name")?;
                write_str(self.out, name.as_bytes()).map_err(NarError::Write)?;
                self.tag("node")?;
                let child_copy = copy.map(|c| c.join(&name));
                self.node(&child, child_copy.as_deref())?;
                self.tag(")")?;
            }
        } else if ty.is_symlink() {
            self.tag("type")?;
            self.tag("symlink")?;
            self.tag("target")?;
            let target = std::fs::read_link(path).map_err(read_err)?;
            write_str(self.out, target.as_os_str().as_bytes()).map_err(NarError::Write)?;
            if let Some(dest) = copy {
                std::os::unix::fs::symlink(&target, dest).map_err(create_err(dest))?;
            }
        } else {
            return Err(NarError::UnsupportedType {
                path: path.to_owned(),
            });
        }
        self.tag(")")
    }

    // `NarError::Read` names the path, so plain `std::fs` is enough here.
    #[allow(clippy::disallowed_methods)]
    fn contents(
        &mut self,
        path: &Path,
        len: u64,
        mut copy: Option<(&Path, &mut std::fs::File)>,
    ) -> Result<(), NarError> {
        let read_err = |source| NarError::Read {
            path: path.to_owned(),
            source,
        };
        self.out
            .write_all(&len.to_le_bytes())
            .map_err(NarError::Write)?;
        let mut file = std::fs::File::open(path).map_err(read_err)?;
        // Grow the buffer to the largest file seen so far (plus one byte), up to one chunk.
        let size = CHUNK.min(
            usize::try_from(len)
                .map_or(CHUNK, |l| l.saturating_add(1))
                .max(4096),
        );
        if self.buf.len() < size {
            self.buf.resize(size, 0);
        }
        let changed = || NarError::FileChanged {
            path: path.to_owned(),
        };
        let mut left = len;
        loop {
            // Ask for one byte more than is left: a file that grew shows itself, and a short
            // read (end of file) saves the extra read that would otherwise confirm the end.
            let want = self
                .buf
                .len()
                .min(usize::try_from(left).map_or(usize::MAX, |l| l.saturating_add(1)));
            let n = match file.read(&mut self.buf[..want]) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_err(e)),
            };
            if n as u64 > left {
                return Err(changed());
            }
            if n == 0 {
                if left == 0 {
                    break;
                }
                return Err(changed());
            }
            self.out
                .write_all(&self.buf[..n])
                .map_err(NarError::Write)?;
            if let Some((dest, file)) = copy.as_mut() {
                file.write_all(&self.buf[..n]).map_err(create_err(dest))?;
            }
            left -= n as u64;
            if left == 0 && n < want {
                break;
            }
        }
        self.out
            .write_all(&[0u8; 8][..padding(len)])
            .map_err(NarError::Write)
    }
}

/// Write the NAR of `path` (file, directory or symlink; not followed) to `out`.
pub fn dump_path(path: &Path, out: &mut impl Write) -> Result<(), NarError> {
    write_str(out, NAR_MAGIC.as_bytes()).map_err(NarError::Write)?;
    Dumper {
        out,
        buf: Vec::new(),
        filter: None,
    }
    .node(path, None)
}

/// Like `dump_path`, leaving out every entry below the root for which `filter` says no (and
/// everything under it).
pub fn dump_path_filtered(
    path: &Path,
    out: &mut impl Write,
    filter: &mut PathFilter<'_>,
) -> Result<(), NarError> {
    write_str(out, NAR_MAGIC.as_bytes()).map_err(NarError::Write)?;
    Dumper {
        out,
        buf: Vec::new(),
        filter: Some(filter),
    }
    .node(path, None)
}

/// Archive `path` into `out` and, in the same pass, recreate it at `dest` (which must not
/// exist): one read of the source both hashes and copies it. Entries `filter` rejects are
/// neither archived nor copied.
pub fn dump_and_copy(
    path: &Path,
    dest: &Path,
    out: &mut impl Write,
    filter: Option<&mut PathFilter<'_>>,
) -> Result<(), NarError> {
    write_str(out, NAR_MAGIC.as_bytes()).map_err(NarError::Write)?;
    Dumper {
        out,
        buf: Vec::new(),
        filter,
    }
    .node(path, Some(dest))
}

/// The NAR of a single regular file with these contents.
pub fn dump_bytes(contents: &[u8], executable: bool, out: &mut impl Write) -> Result<(), NarError> {
    let w = |r: io::Result<()>| r.map_err(NarError::Write);
    for tag in [NAR_MAGIC, "(", "type", "regular"] {
        w(write_str(out, tag.as_bytes()))?;
    }
    if executable {
        w(write_str(out, b"executable"))?;
        w(write_str(out, b""))?;
    }
    w(write_str(out, b"contents"))?;
    w(write_str(out, contents))?;
    w(write_str(out, b")"))
}

/// The sha256 NAR hash and NAR size of `path`, without keeping the NAR.
pub fn nar_hash_path(path: &Path) -> Result<(Hash, u64), NarError> {
    nar_hash_path_with(path, HashAlgo::Sha256)
}

/// The NAR hash of `path` with any algorithm, and the NAR size. Reading the tree and hashing
/// run on two threads.
pub fn nar_hash_path_with(path: &Path, algo: HashAlgo) -> Result<(Hash, u64), NarError> {
    let mut pipe = crate::pipe::PipeWriter::new(HashSink::new(algo));
    dump_path(path, &mut pipe)?;
    Ok(pipe.finish().map_err(NarError::Write)?.finish())
}
