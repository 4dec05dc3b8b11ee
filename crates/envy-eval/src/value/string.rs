//! Nix strings: byte strings (derivation environments may hold any bytes) that carry a
//! context, the set of store paths the string refers to.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;
use std::rc::Rc;

/// One element of a string's context.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContextElem {
    /// A plain store path (`/nix/store/…-foo`).
    Opaque(Rc<str>),
    /// A derivation and, deeply, all its outputs (`=/nix/store/…-foo.drv`).
    DrvDeep(Rc<str>),
    /// One output of a derivation (`!out!/nix/store/…-foo.drv`).
    Built {
        /// The derivation's store path.
        drv: Rc<str>,
        /// The output name.
        output: Rc<str>,
    },
}

impl ContextElem {
    /// The encoded form Nix uses internally (and in `builtins.getContext` keys' order).
    pub fn encode(&self) -> String {
        match self {
            ContextElem::Opaque(p) => p.to_string(),
            ContextElem::DrvDeep(p) => format!("={p}"),
            ContextElem::Built { drv, output } => format!("!{output}!{drv}"),
        }
    }

    /// The store path this element is about.
    pub fn path(&self) -> &Rc<str> {
        match self {
            ContextElem::Opaque(p) | ContextElem::DrvDeep(p) => p,
            ContextElem::Built { drv, .. } => drv,
        }
    }
}

/// A string's context.
pub type Context = BTreeSet<ContextElem>;

/// A string value.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct NixStr {
    bytes: Box<[u8]>,
    context: Option<Box<Context>>,
}

impl NixStr {
    /// A string with a context (an empty context is stored as none).
    pub fn with_context(bytes: impl Into<Box<[u8]>>, context: Context) -> NixStr {
        NixStr {
            bytes: bytes.into(),
            context: if context.is_empty() {
                None
            } else {
                Some(Box::new(context))
            },
        }
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The text, with invalid UTF-8 replaced.
    pub fn to_str_lossy(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.bytes)
    }

    /// The text if it is valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The context, if not empty.
    pub fn context(&self) -> Option<&Context> {
        self.context.as_deref()
    }

    /// Whether the context is not empty.
    pub fn has_context(&self) -> bool {
        self.context.is_some()
    }

    /// Add this string's context to `into`.
    pub fn merge_context_into(&self, into: &mut Context) {
        if let Some(c) = &self.context {
            into.extend(c.iter().cloned());
        }
    }
}

impl From<&str> for NixStr {
    fn from(s: &str) -> Self {
        NixStr {
            bytes: s.as_bytes().into(),
            context: None,
        }
    }
}

impl From<String> for NixStr {
    fn from(s: String) -> Self {
        NixStr {
            bytes: s.into_bytes().into_boxed_slice(),
            context: None,
        }
    }
}

impl From<Vec<u8>> for NixStr {
    fn from(b: Vec<u8>) -> Self {
        NixStr {
            bytes: b.into_boxed_slice(),
            context: None,
        }
    }
}

impl From<&[u8]> for NixStr {
    fn from(b: &[u8]) -> Self {
        NixStr {
            bytes: b.into(),
            context: None,
        }
    }
}

impl fmt::Debug for NixStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_str_lossy())
    }
}
