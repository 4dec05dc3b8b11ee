//! Writing a NAR node by node, for trees that are not plain directories on disk (the
//! evaluator walks sources through its own I/O layer and filters entries with Nix
//! functions). The caller gives directory entries in name-byte order, as `dump` does.

use std::io::Write;

use super::{NAR_MAGIC, NarError, write_str};

/// A NAR being written: call one node method for the root, and for directories
/// `entry`/`end_entry` around each child's node.
pub struct NarWriter<'w, W: Write> {
    out: &'w mut W,
}

impl<'w, W: Write> NarWriter<'w, W> {
    /// Start a NAR on `out` (writes the magic).
    pub fn new(out: &'w mut W) -> Result<NarWriter<'w, W>, NarError> {
        write_str(out, NAR_MAGIC.as_bytes()).map_err(NarError::Write)?;
        Ok(NarWriter { out })
    }

    fn tags(&mut self, tags: &[&[u8]]) -> Result<(), NarError> {
        for t in tags {
            write_str(self.out, t).map_err(NarError::Write)?;
        }
        Ok(())
    }

    /// A regular file.
    pub fn regular(&mut self, contents: &[u8], executable: bool) -> Result<(), NarError> {
        self.tags(&[b"(", b"type", b"regular"])?;
        if executable {
            self.tags(&[b"executable", b""])?;
        }
        self.tags(&[b"contents", contents, b")"])
    }

    /// A symlink.
    pub fn symlink(&mut self, target: &[u8]) -> Result<(), NarError> {
        self.tags(&[b"(", b"type", b"symlink", b"target", target, b")"])
    }

    /// Open a directory; follow with entries and `end_directory`.
    pub fn directory(&mut self) -> Result<(), NarError> {
        self.tags(&[b"(", b"type", b"directory"])
    }

    /// Open a directory entry; follow with the child's node and `end_entry`.
    pub fn entry(&mut self, name: &[u8]) -> Result<(), NarError> {
        self.tags(&[b"entry", b"(", b"name", name, b"node"])
    }

    /// Close a directory entry.
    pub fn end_entry(&mut self) -> Result<(), NarError> {
        self.tags(&[b")"])
    }

    /// Close a directory.
    pub fn end_directory(&mut self) -> Result<(), NarError> {
        self.tags(&[b")"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nar::dump_bytes;

    #[test]
    fn single_file_matches_dump_bytes() {
        let mut a = Vec::new();
        NarWriter::new(&mut a)
            .unwrap()
            .regular(b"hello", true)
            .unwrap();
        let mut b = Vec::new();
        dump_bytes(b"hello", true, &mut b).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn directory_matches_dump_path() {
        let dir = tempfile::tempdir().unwrap();
        fs_err::write(dir.path().join("a"), "x").unwrap();
        std::os::unix::fs::symlink("a", dir.path().join("b")).unwrap();
        let mut expected = Vec::new();
        crate::nar::dump_path(dir.path(), &mut expected).unwrap();
        let mut got = Vec::new();
        let mut w = NarWriter::new(&mut got).unwrap();
        w.directory().unwrap();
        w.entry(b"a").unwrap();
        w.regular(b"x", false).unwrap();
        w.end_entry().unwrap();
        w.entry(b"b").unwrap();
        w.symlink(b"a").unwrap();
        w.end_entry().unwrap();
        w.end_directory().unwrap();
        assert_eq!(got, expected);
    }
}
