//! Everything the evaluator reads from the outside world goes through `EvalIO`: files,
//! directories, file types, environment variables. `RealIO` uses the file system;
//! `MemoryIO` serves a fixed set of files for pure tests. The evaluator records every read
//! in a `ReadRecord` (see `record`), returned with the result so callers can invalidate
//! caches exactly.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

/// A file's type as Nix distinguishes them (`builtins.readFileType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileType {
    /// A regular file.
    Regular,
    /// A directory.
    Directory,
    /// A symbolic link.
    Symlink,
    /// Anything else (sockets, devices, …).
    Unknown,
}

impl FileType {
    /// Nix's name for it.
    pub fn nix_name(self) -> &'static str {
        match self {
            FileType::Regular => "regular",
            FileType::Directory => "directory",
            FileType::Symlink => "symlink",
            FileType::Unknown => "unknown",
        }
    }
}

/// Access to files and the environment.
pub trait EvalIO {
    /// The bytes of a file (following symlinks).
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// A directory's entries and their types (not following symlinks), in any order.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>>;
    /// The type of `path` itself (`lstat`).
    fn symlink_type(&self, path: &Path) -> io::Result<FileType>;
    /// The type of what `path` points to (`stat`).
    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        let mut p = path.to_path_buf();
        for _ in 0..40 {
            match self.symlink_type(&p)? {
                FileType::Symlink => {
                    let target = self.read_link(&p)?;
                    p = match p.parent() {
                        Some(dir) => dir.join(target),
                        None => target,
                    };
                }
                t => return Ok(t),
            }
        }
        Err(io::Error::other("too many levels of symbolic links"))
    }
    /// A symlink's target.
    fn read_link(&self, path: &Path) -> io::Result<PathBuf>;
    /// Whether the file is executable (for NAR serialization).
    fn is_executable(&self, path: &Path) -> io::Result<bool>;
    /// An environment variable.
    fn env_var(&self, name: &str) -> Option<String>;
}

/// The real file system and process environment.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealIO;

fn to_type(ft: std::fs::FileType) -> FileType {
    if ft.is_symlink() {
        FileType::Symlink
    } else if ft.is_dir() {
        FileType::Directory
    } else if ft.is_file() {
        FileType::Regular
    } else {
        FileType::Unknown
    }
}

impl EvalIO for RealIO {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs_err::read(path).map_err(|e| io::Error::new(e.kind(), strip_fs_err(e)))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>> {
        let mut out = Vec::new();
        for entry in fs_err::read_dir(path)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            out.push((name, to_type(entry.file_type()?)));
        }
        Ok(out)
    }

    fn symlink_type(&self, path: &Path) -> io::Result<FileType> {
        Ok(to_type(fs_err::symlink_metadata(path)?.file_type()))
    }

    fn file_type(&self, path: &Path) -> io::Result<FileType> {
        Ok(to_type(fs_err::metadata(path)?.file_type()))
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        fs_err::read_link(path)
    }

    fn is_executable(&self, path: &Path) -> io::Result<bool> {
        use std::os::unix::fs::PermissionsExt;
        Ok(fs_err::metadata(path)?.permissions().mode() & 0o100 != 0)
    }

    fn env_var(&self, name: &str) -> Option<String> {
        std::env::var_os(name).map(|v| v.to_string_lossy().into_owned())
    }
}

fn strip_fs_err(e: io::Error) -> String {
    // Keep only the OS reason; the evaluator words its own message around the path.
    e.get_ref()
        .and_then(|inner| inner.source())
        .map(|s| s.to_string())
        .unwrap_or_else(|| e.to_string())
}

/// One node of an in-memory file tree.
#[derive(Clone, Debug)]
pub enum MemNode {
    /// A file with its contents and executable bit.
    File(Vec<u8>, bool),
    /// A directory.
    Dir,
    /// A symlink to the target.
    Symlink(PathBuf),
}

/// An in-memory file system and environment for pure tests.
#[derive(Clone, Debug, Default)]
pub struct MemoryIO {
    /// Nodes by absolute path.
    pub nodes: BTreeMap<PathBuf, MemNode>,
    /// Environment variables.
    pub env: BTreeMap<String, String>,
}

impl MemoryIO {
    /// An empty file system with only `/`.
    pub fn new() -> MemoryIO {
        let mut m = MemoryIO::default();
        m.nodes.insert(PathBuf::from("/"), MemNode::Dir);
        m
    }

    /// Add a file (and its parent directories).
    pub fn add_file(
        &mut self,
        path: impl Into<PathBuf>,
        contents: impl Into<Vec<u8>>,
    ) -> &mut Self {
        let path = path.into();
        let mut dir = path.parent();
        while let Some(d) = dir {
            self.nodes.entry(d.to_path_buf()).or_insert(MemNode::Dir);
            dir = d.parent();
        }
        self.nodes
            .insert(path, MemNode::File(contents.into(), false));
        self
    }

    fn node(&self, path: &Path) -> io::Result<&MemNode> {
        self.nodes
            .get(path)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "No such file or directory"))
    }
}

impl EvalIO for MemoryIO {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        match self.node(path)? {
            MemNode::File(c, _) => Ok(c.clone()),
            MemNode::Dir => Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "Is a directory",
            )),
            MemNode::Symlink(t) => {
                let t = path
                    .parent()
                    .map(|p| p.join(t))
                    .unwrap_or_else(|| t.clone());
                self.read_file(&t)
            }
        }
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileType)>> {
        match self.node(path)? {
            MemNode::Dir => {}
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::NotADirectory,
                    "Not a directory",
                ));
            }
        }
        let mut out = Vec::new();
        for (p, n) in self.nodes.range(path.to_path_buf()..) {
            if p.parent() == Some(path) {
                let t = match n {
                    MemNode::File(..) => FileType::Regular,
                    MemNode::Dir => FileType::Directory,
                    MemNode::Symlink(_) => FileType::Symlink,
                };
                out.push((
                    p.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                    t,
                ));
            }
        }
        Ok(out)
    }

    fn symlink_type(&self, path: &Path) -> io::Result<FileType> {
        Ok(match self.node(path)? {
            MemNode::File(..) => FileType::Regular,
            MemNode::Dir => FileType::Directory,
            MemNode::Symlink(_) => FileType::Symlink,
        })
    }

    fn read_link(&self, path: &Path) -> io::Result<PathBuf> {
        match self.node(path)? {
            MemNode::Symlink(t) => Ok(t.clone()),
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "Invalid argument",
            )),
        }
    }

    fn is_executable(&self, path: &Path) -> io::Result<bool> {
        match self.node(path)? {
            MemNode::File(_, x) => Ok(*x),
            _ => Ok(false),
        }
    }

    fn env_var(&self, name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }
}

/// How a path was looked at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FileAccess {
    /// Its contents were read: their length and a fast 64-bit hash of them (`content_hash`),
    /// to tell whether the file still holds exactly what the evaluation saw.
    Contents { len: u64, hash: u64 },
    /// Only its type or existence was checked; what was seen (`None`: did not exist).
    Type(Option<FileType>),
}

/// The hash `FileAccess::Contents` records (FxHash over the bytes, then the length):
/// fast, and enough to notice a changed file.
pub fn content_hash(bytes: &[u8]) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(bytes);
    h.write_usize(bytes.len());
    h.finish()
}

/// Everything an evaluation read from outside: the caller's cache is valid exactly as long
/// as all of these are unchanged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReadRecord {
    /// Files (and paths whose type or existence was checked), with what was seen.
    pub files: BTreeMap<PathBuf, BTreeSet<FileAccess>>,
    /// Directories whose entries were listed.
    pub dirs: BTreeSet<PathBuf>,
    /// Environment variables read, with the value seen.
    pub env: BTreeMap<String, Option<String>>,
}

impl ReadRecord {
    /// Note a content read.
    pub fn file(&mut self, path: &Path, contents: &[u8]) {
        let access = FileAccess::Contents {
            len: contents.len() as u64,
            hash: content_hash(contents),
        };
        self.files
            .entry(path.to_path_buf())
            .or_default()
            .insert(access);
    }

    /// Note a type or existence check.
    pub fn file_type(&mut self, path: &Path, seen: Option<FileType>) {
        self.files
            .entry(path.to_path_buf())
            .or_default()
            .insert(FileAccess::Type(seen));
    }

    /// Note a directory listing.
    pub fn dir(&mut self, path: &Path) {
        self.dirs.insert(path.to_path_buf());
    }

    /// Note an environment variable read.
    pub fn env_var(&mut self, name: &str, value: Option<&str>) {
        self.env
            .entry(name.to_string())
            .or_insert_with(|| value.map(str::to_string));
    }
}
