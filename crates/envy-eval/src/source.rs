//! Source texts and positions. A `Pos` is eight bytes (source id and byte offset); the line
//! and column are computed only when something shows them (errors, `__curPos`,
//! `unsafeGetAttrPos`). Like symbols, sources live in a per-thread table that only grows.

use std::cell::RefCell;
use std::fmt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Where a source text came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file (its absolute path).
    File(PathBuf),
    /// `--expr` / `-E` text, shown as `«string»`.
    String,
    /// Standard input, shown as `«stdin»`.
    Stdin,
    /// Nix code built into the evaluator (for example `derivation`), shown by name.
    Internal(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::String => f.write_str("«string»"),
            Origin::Stdin => f.write_str("«stdin»"),
            Origin::Internal(name) => write!(f, "«nix-internal»/{name}"),
        }
    }
}

/// One source text.
#[derive(Debug)]
pub struct Source {
    /// Where it came from.
    pub origin: Origin,
    /// The text.
    pub text: Rc<str>,
    line_starts: Vec<u32>,
}

impl Source {
    /// Line (1-based) and column (1-based, in bytes) of a byte offset.
    pub fn line_col(&self, offset: u32) -> (u32, u32) {
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i - 1,
        };
        (line as u32 + 1, offset - self.line_starts[line] + 1)
    }

    /// The text of line `line` (1-based) without its newline, if the text has that line.
    pub fn line_text(&self, line: u32) -> Option<&str> {
        let idx = usize::try_from(line).ok()?.checked_sub(1)?;
        let start = *self.line_starts.get(idx)? as usize;
        let end = self
            .line_starts
            .get(idx + 1)
            .map_or(self.text.len(), |e| *e as usize);
        let line = &self.text[start..end];
        let line = line.strip_suffix('\n').unwrap_or(line);
        Some(line.strip_suffix('\r').unwrap_or(line))
    }

    /// The file this source was read from, if any.
    pub fn path(&self) -> Option<&Path> {
        match &self.origin {
            Origin::File(p) => Some(p),
            _ => None,
        }
    }
}

thread_local! {
    static SOURCES: RefCell<Vec<Rc<Source>>> = const { RefCell::new(Vec::new()) };
}

/// A position in a source: which source, and the byte offset in it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Pos {
    source: u32,
    offset: u32,
}

/// A position resolved to file, line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// The source.
    pub source: Rc<Source>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.source.origin, self.line, self.column)
    }
}

impl PartialEq for Source {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}
impl Eq for Source {}

impl Pos {
    /// No position.
    pub const NONE: Pos = Pos {
        source: 0,
        offset: 0,
    };

    /// Whether this is a real position.
    pub fn is_some(self) -> bool {
        self.source != 0
    }

    /// The position `offset` bytes into `source`.
    pub fn new(source: SourceId, offset: u32) -> Pos {
        Pos {
            source: source.0,
            offset,
        }
    }

    /// The source, if any.
    pub fn source(self) -> Option<Rc<Source>> {
        if self.source == 0 {
            return None;
        }
        SOURCES.with(|s| s.borrow().get(self.source as usize - 1).cloned())
    }

    /// Resolve to file, line and column.
    pub fn resolve(self) -> Option<Location> {
        let source = self.source()?;
        let (line, column) = source.line_col(self.offset);
        Some(Location {
            source,
            line,
            column,
        })
    }

    /// The byte offset.
    pub fn offset(self) -> u32 {
        self.offset
    }
}

impl fmt::Debug for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.resolve() {
            Some(l) => write!(f, "{l}"),
            None => f.write_str("«none»"),
        }
    }
}

/// Identifies a registered source.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SourceId(u32);

/// Register a source text and get its id.
pub fn add_source(origin: Origin, text: Rc<str>) -> SourceId {
    // As in Nix's lexer, `\n`, `\r\n` and a lone `\r` each end a line.
    let mut line_starts = vec![0u32];
    let bytes = text.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'\n' || (*b == b'\r' && bytes.get(i + 1) != Some(&b'\n')) {
            line_starts.push(i as u32 + 1);
        }
    }
    let source = Rc::new(Source {
        origin,
        text,
        line_starts,
    });
    SOURCES.with(|s| {
        let mut s = s.borrow_mut();
        s.push(source);
        SourceId(s.len() as u32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_columns() {
        let id = add_source(Origin::String, "ab\ncd\n".into());
        let l = Pos::new(id, 4).resolve().unwrap();
        assert_eq!((l.line, l.column), (2, 2));
        assert_eq!(l.source.line_text(2), Some("cd"));
        assert_eq!(l.source.line_text(3), Some(""));
        assert_eq!(l.source.line_text(4), None);
        assert_eq!(l.to_string(), "«string»:2:2");
    }

    // Regression: a lone CR did not end a line, so a file saved with classic Mac line
    // endings reported every error on line 1.
    #[test]
    fn cr_and_crlf_end_lines_as_in_nix() {
        for text in ["a\rbc\rd", "a\r\nbc\r\nd", "a\nbc\nd"] {
            let id = add_source(Origin::String, text.into());
            let at = text.find('c').unwrap() as u32;
            let l = Pos::new(id, at).resolve().unwrap();
            assert_eq!((l.line, l.column), (2, 2), "{text:?}");
            assert_eq!(l.source.line_text(1), Some("a"), "{text:?}");
            assert_eq!(l.source.line_text(2), Some("bc"), "{text:?}");
            assert_eq!(l.source.line_text(3), Some("d"), "{text:?}");
        }
    }
}
