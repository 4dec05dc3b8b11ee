//! Interned identifiers: attribute names and variable names become `Sym`, a pointer to the
//! name's one copy, so comparing and hashing is one instruction and reading the text is a
//! dereference. Attribute sets are sorted by `Sym` (address order) for lookups; anything
//! user-visible (printing, `attrNames`) sorts by the text instead.
//!
//! Each thread has its own table, and names live as long as the process, which is what an
//! evaluation needs (every parsed file and every computed attribute name stays reachable
//! from the values anyway). Well-known names are statics, so they are constants.

use std::cell::RefCell;
use std::fmt;
use std::hash::{Hash, Hasher};

use rustc_hash::FxHashMap;

/// The one copy of a name.
pub struct SymData {
    name: &'static str,
    /// When the name was first interned on this thread (0 for the well-known names): Nix
    /// keeps attribute sets in this order, and `assert a == b` reports the first
    /// difference in it.
    seq: u32,
}

/// An interned name.
#[derive(Clone, Copy)]
pub struct Sym(&'static SymData);

impl PartialEq for Sym {
    #[inline]
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}
impl Eq for Sym {}

impl PartialOrd for Sym {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sym {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0 as *const SymData as usize).cmp(&(other.0 as *const SymData as usize))
    }
}
impl Hash for Sym {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.0 as *const SymData as usize).hash(state);
    }
}

macro_rules! well_known {
    ($($konst:ident = $text:expr,)*) => {
        mod data {
            use super::SymData;
            $(
                #[allow(non_upper_case_globals)]
                pub static $konst: SymData = SymData { name: $text, seq: 0 };
            )*
        }
        #[allow(missing_docs)]
        impl Sym {
            $(pub const $konst: Sym = Sym(&data::$konst);)*
        }
        const WELL_KNOWN: &[Sym] = &[$(Sym::$konst,)*];
    };
}

well_known! {
    OUT_PATH = "outPath",
    DRV_PATH = "drvPath",
    TYPE = "type",
    FUNCTOR = "__functor",
    TO_STRING = "__toString",
    OVERRIDES = "__overrides",
    BODY = "body",
    NAME = "name",
    VALUE = "value",
    FILE = "file",
    LINE = "line",
    COLUMN = "column",
    KEY = "key",
    OPERATOR = "operator",
    START_SET = "startSet",
    RIGHT = "right",
    WRONG = "wrong",
    SUCCESS = "success",
    OUTPUTS = "outputs",
    OUTPUT_NAME = "outputName",
    SYSTEM = "system",
    BUILDER = "builder",
    ARGS = "args",
    OUTPUT_HASH = "outputHash",
    OUTPUT_HASH_ALGO = "outputHashAlgo",
    OUTPUT_HASH_MODE = "outputHashMode",
    STRUCTURED_ATTRS = "__structuredAttrs",
    IGNORE_NULLS = "__ignoreNulls",
    CONTENT_ADDRESSED = "__contentAddressed",
    IMPURE = "__impure",
    PREFIX = "prefix",
    PATH = "path",
    URL = "url",
    SHA256 = "sha256",
    HASH = "hash",
    REV = "rev",
    REF = "ref",
    FILTER = "filter",
    RECURSIVE = "recursive",
    SUBMODULES = "submodules",
    SHALLOW = "shallow",
    ALL_REFS = "allRefs",
    EXPORT_IGNORE = "exportIgnore",
    LFS = "lfs",
    RESULT = "result",
    DATA = "data",
    ALL_OUTPUTS = "allOutputs",
    SUB = "__sub",
    MUL = "__mul",
    DIV = "__div",
    LESS_THAN = "__lessThan",
    FIND_FILE = "__findFile",
    NIX_PATH = "__nixPath",
    OR = "or",
    ALL = "all",
    DRV_ATTRS = "drvAttrs",
    CUR_POS = "__curPos",
    EMPTY = "",
}

struct Table {
    map: FxHashMap<&'static str, Sym>,
    next_seq: u32,
}

impl Table {
    fn new() -> Self {
        let mut map = FxHashMap::default();
        for s in WELL_KNOWN {
            map.insert(s.0.name, *s);
        }
        Table { map, next_seq: 1 }
    }

    fn insert(&mut self, name: &str) -> Sym {
        if let Some(&sym) = self.map.get(name) {
            return sym;
        }
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        let data: &'static SymData = Box::leak(Box::new(SymData { name: leaked, seq }));
        let sym = Sym(data);
        self.map.insert(leaked, sym);
        sym
    }
}

thread_local! {
    static TABLE: RefCell<Table> = RefCell::new(Table::new());
}

impl Sym {
    /// Intern `name`.
    pub fn new(name: &str) -> Sym {
        TABLE.with(|t| t.borrow_mut().insert(name))
    }

    /// Intern a byte string (attribute names computed at run time may be any bytes; the
    /// rare non-UTF-8 ones are stored lossily).
    pub fn from_bytes(name: &[u8]) -> Sym {
        match std::str::from_utf8(name) {
            Ok(s) => Sym::new(s),
            Err(_) => Sym::new(&String::from_utf8_lossy(name)),
        }
    }

    /// The name's text.
    #[inline]
    pub fn as_str(self) -> &'static str {
        self.0.name
    }

    /// The order Nix's symbol table would give: names in the order first interned, the
    /// well-known ones (which Nix also creates at start-up) first, by name.
    pub fn creation_order(self) -> (u32, &'static str) {
        (self.0.seq, self.0.name)
    }
}

impl fmt::Debug for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl fmt::Display for Sym {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_names_are_constants() {
        assert_eq!(Sym::new("outPath"), Sym::OUT_PATH);
        assert_eq!(Sym::CUR_POS.as_str(), "__curPos");
        let a = Sym::new("some-fresh-name");
        assert_eq!(Sym::new("some-fresh-name"), a);
        assert_eq!(a.as_str(), "some-fresh-name");
    }
}
