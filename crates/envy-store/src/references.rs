//! Reference scanning: which of a set of candidate store paths a file tree mentions, found as
//! their 32-character hash parts anywhere in the tree's NAR serialisation (file contents,
//! symlink targets, names), as Nix does after a build.

use std::collections::{BTreeSet, HashMap};
use std::io;
use std::path::Path;

use crate::nar::{NarError, dump_path};
use crate::nix32;
use crate::store_path::{HASH_PART_LEN, StorePath};

/// A sink that records which candidates' hash parts pass through it; chunk boundaries do not
/// matter.
pub struct RefScanner {
    candidates: HashMap<[u8; HASH_PART_LEN], StorePath>,
    found: BTreeSet<StorePath>,
    tail: Vec<u8>,
}

impl RefScanner {
    /// A scanner for these candidates.
    pub fn new<'a>(candidates: impl IntoIterator<Item = &'a StorePath>) -> RefScanner {
        let candidates = candidates
            .into_iter()
            .map(|p| {
                let key: [u8; HASH_PART_LEN] =
                    p.hash_part().as_bytes().try_into().expect("32 chars");
                (key, p.clone())
            })
            .collect();
        RefScanner {
            candidates,
            found: BTreeSet::new(),
            tail: Vec::with_capacity(2 * HASH_PART_LEN),
        }
    }

    fn scan(&mut self, s: &[u8]) {
        let mut i = 0;
        while i + HASH_PART_LEN <= s.len() {
            // Check from the window's end backwards, jumping past the first non-nix32 byte.
            match (0..HASH_PART_LEN)
                .rev()
                .find(|&j| !nix32::is_digit(s[i + j]))
            {
                Some(j) => i += j + 1,
                None => {
                    let key: [u8; HASH_PART_LEN] =
                        s[i..i + HASH_PART_LEN].try_into().expect("window");
                    if let Some(path) = self.candidates.get(&key)
                        && !self.found.contains(path)
                    {
                        self.found.insert(path.clone());
                    }
                    i += 1;
                }
            }
        }
    }

    /// Feed bytes.
    pub fn update(&mut self, data: &[u8]) {
        if self.candidates.is_empty() || data.is_empty() {
            return;
        }
        // Windows that straddle the previous chunk: scan the old tail plus the new head.
        let head = &data[..data.len().min(HASH_PART_LEN - 1)];
        let mut joined = std::mem::take(&mut self.tail);
        joined.extend_from_slice(head);
        self.scan(&joined);
        self.scan(data);
        // Keep the last 31 bytes (of tail + data) for the next chunk.
        let keep = HASH_PART_LEN - 1;
        if data.len() >= keep {
            joined.clear();
            joined.extend_from_slice(&data[data.len() - keep..]);
        } else {
            let start = joined.len().saturating_sub(keep);
            joined.drain(..start);
        }
        self.tail = joined;
    }

    /// The candidates seen so far.
    #[must_use]
    pub fn found(&self) -> &BTreeSet<StorePath> {
        &self.found
    }

    /// The candidates seen.
    #[must_use]
    pub fn into_found(self) -> BTreeSet<StorePath> {
        self.found
    }
}

impl io::Write for RefScanner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The candidates whose hash parts occur in the NAR of `path`.
pub fn scan_references<'a>(
    path: &Path,
    candidates: impl IntoIterator<Item = &'a StorePath>,
) -> Result<BTreeSet<StorePath>, NarError> {
    let mut scanner = RefScanner::new(candidates);
    dump_path(path, &mut scanner)?;
    Ok(scanner.into_found())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> StorePath {
        StorePath::from_base_name(s).unwrap()
    }

    #[test]
    fn finds_hashes_across_chunk_boundaries() {
        let a = p("hxcnl7nh8wbfiwfzkfnac84cgnf766kc-a");
        let b = p("qjid1icj33y7d7f8b5lw02iqzqfck9cm-b");
        let c = p("00000000000000000000000000000000-c");
        let text = format!("xx/nix/store/{}-a/bin ... {}", a.hash_part(), b.hash_part());
        for chunk in [1, 2, 5, 31, 32, 33, 1000] {
            let mut s = RefScanner::new([&a, &b, &c]);
            for piece in text.as_bytes().chunks(chunk) {
                s.update(piece);
            }
            assert_eq!(
                s.into_found(),
                BTreeSet::from([a.clone(), b.clone()]),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn scans_a_tree() {
        let dir = tempfile::tempdir().unwrap();
        let a = p("hxcnl7nh8wbfiwfzkfnac84cgnf766kc-a");
        let b = p("qjid1icj33y7d7f8b5lw02iqzqfck9cm-b");
        fs_err::create_dir(dir.path().join("t")).unwrap();
        std::os::unix::fs::symlink(format!("/nix/store/{a}/x"), dir.path().join("t/l")).unwrap();
        fs_err::write(dir.path().join("t/f"), b"no references").unwrap();
        let found = scan_references(&dir.path().join("t"), [&a, &b]).unwrap();
        assert_eq!(found, BTreeSet::from([a]));
    }
}
