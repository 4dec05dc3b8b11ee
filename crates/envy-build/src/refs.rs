//! Reference scanning: which of a set of candidate store paths an output mentions, found by
//! searching its NAR serialisation for their 32-character hash parts (as Nix does). The
//! scanner is an `io::Write`, so it runs in the same pass as the NAR hash.

use std::collections::{BTreeSet, HashSet};
use std::io;

const HASH_LEN: usize = 32;

fn is_nix32(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'a'..=b'd' | b'f'..=b'n' | b'p'..=b's' | b'v'..=b'z')
}

/// Looks for the given hash parts in everything written to it.
#[derive(Debug)]
pub struct RefScanner {
    wanted: HashSet<[u8; HASH_LEN]>,
    found: BTreeSet<String>,
    /// The last `HASH_LEN - 1` bytes seen, for matches across writes.
    tail: Vec<u8>,
}

impl RefScanner {
    /// Scan for these hash parts (anything not 32 bytes long is ignored).
    #[must_use]
    pub fn new<'a>(hash_parts: impl IntoIterator<Item = &'a str>) -> Self {
        let wanted = hash_parts
            .into_iter()
            .filter_map(|h| <[u8; HASH_LEN]>::try_from(h.as_bytes()).ok())
            .collect();
        Self {
            wanted,
            found: BTreeSet::new(),
            tail: Vec::new(),
        }
    }

    /// The hash parts seen so far.
    #[must_use]
    pub fn found(self) -> BTreeSet<String> {
        self.found
    }

    fn scan(&mut self, s: &[u8]) {
        let mut i = 0;
        while i + HASH_LEN <= s.len() {
            // Check backwards so a bad byte lets us skip past it.
            if let Some(bad) = (i..i + HASH_LEN).rev().find(|&j| !is_nix32(s[j])) {
                i = bad + 1;
                continue;
            }
            let window: [u8; HASH_LEN] = s[i..i + HASH_LEN].try_into().expect("window length");
            if self.wanted.contains(&window) {
                self.found
                    .insert(String::from_utf8_lossy(&window).into_owned());
            }
            i += 1;
        }
    }
}

impl io::Write for RefScanner {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.wanted.is_empty() || buf.is_empty() {
            return Ok(buf.len());
        }
        let mut joined = std::mem::take(&mut self.tail);
        joined.extend_from_slice(buf);
        self.scan(&joined);
        let keep = joined.len().min(HASH_LEN - 1);
        self.tail = joined[joined.len() - keep..].to_vec();
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes everything to two writers.
pub struct Tee<'a, A, B>(pub &'a mut A, pub &'a mut B);

impl<A: io::Write, B: io::Write> io::Write for Tee<'_, A, B> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write_all(buf)?;
        self.1.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()?;
        self.1.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const A: &str = "qjid1icj33y7d7f8b5lw02iqzqfck9cm";
    const B: &str = "hxcnl7nh8wbfiwfzkfnac84cgnf766kc";

    #[test]
    fn finds_hashes_across_write_boundaries() {
        let text = format!("xx/s/{A}-triv/bin and {B}");
        for split in 0..text.len() {
            let mut scanner = RefScanner::new([A, B, "0000000000000000000000000000000z"]);
            scanner.write_all(&text.as_bytes()[..split]).unwrap();
            scanner.write_all(&text.as_bytes()[split..]).unwrap();
            assert_eq!(
                scanner.found(),
                BTreeSet::from([A.to_string(), B.to_string()]),
                "{split}"
            );
        }
    }

    #[test]
    fn ignores_partial_and_embedded_junk() {
        let mut scanner = RefScanner::new([A]);
        scanner.write_all(&A.as_bytes()[..31]).unwrap();
        scanner.write_all(b"e").unwrap();
        assert!(scanner.found().is_empty());
    }
}
