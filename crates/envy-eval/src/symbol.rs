//! Interned identifiers: attribute names and variable names become `Sym`, a `u32` that
//! compares and hashes in one instruction. Attribute sets are sorted by `Sym` for lookups;
//! anything user-visible (printing, `attrNames`) sorts by the text instead.
//!
//! The table is per thread and only grows: names live as long as the process, which is what
//! an evaluation needs (every parsed file and every computed attribute name stays reachable
//! from the values anyway). Well-known names are interned first, so they are constants.

use std::cell::RefCell;
use std::fmt;

use rustc_hash::FxHashMap;

/// An interned name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sym(u32);

struct Table {
    map: FxHashMap<&'static str, Sym>,
    names: Vec<&'static str>,
}

macro_rules! well_known {
    ($($konst:ident = $text:expr,)*) => {
        #[allow(missing_docs)]
        impl Sym {
            well_known!(@consts 0u32; $($konst,)*);
        }
        const WELL_KNOWN: &[&str] = &[$($text,)*];
    };
    (@consts $n:expr; $konst:ident, $($rest:ident,)*) => {
        pub const $konst: Sym = Sym($n);
        well_known!(@consts $n + 1u32; $($rest,)*);
    };
    (@consts $n:expr;) => {};
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

impl Table {
    fn new() -> Self {
        let mut table = Table {
            map: FxHashMap::default(),
            names: Vec::new(),
        };
        for name in WELL_KNOWN {
            table.insert(name);
        }
        table
    }

    fn insert(&mut self, name: &str) -> Sym {
        if let Some(&sym) = self.map.get(name) {
            return sym;
        }
        let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
        let sym = Sym(u32::try_from(self.names.len()).expect("fewer than 2^32 symbols"));
        self.names.push(leaked);
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
    pub fn as_str(self) -> &'static str {
        TABLE.with(|t| t.borrow().names[self.0 as usize])
    }

    /// The interned index (stable for the life of the thread).
    pub fn index(self) -> u32 {
        self.0
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
