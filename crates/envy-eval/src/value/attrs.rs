//! Attribute sets: a vector sorted by symbol id, so lookups are a binary search over
//! integers and `//` is a linear merge. User-visible order (printing, `attrNames`) sorts by
//! name separately.
//!
//! `Attrs` is the growable form, used while a set is built; `AttrSet` is the finished set a
//! `Value` holds, its entries in one allocation with the count (see `ThinRc`). Both read
//! through `AttrSlice`.

use crate::source::Pos;
use crate::symbol::Sym;
use std::ops::Deref;

use crate::value::{ThinRc, Value};

/// One attribute.
#[derive(Clone)]
pub struct Attr {
    /// Its name.
    pub name: Sym,
    /// Where it was defined (for `unsafeGetAttrPos` and messages).
    pub pos: Pos,
    /// Its value (possibly a thunk).
    pub value: Value,
}

/// An attribute set.
#[derive(Clone, Default)]
pub struct Attrs {
    entries: Vec<Attr>,
}

impl Attrs {
    /// An empty set.
    pub fn new() -> Attrs {
        Attrs {
            entries: Vec::new(),
        }
    }

    /// An empty set with room for `n` attributes.
    pub fn with_capacity(n: usize) -> Attrs {
        Attrs {
            entries: Vec::with_capacity(n),
        }
    }

    /// Build from entries already sorted by symbol and free of duplicates.
    pub fn from_sorted(entries: Vec<Attr>) -> Attrs {
        debug_assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
        Attrs { entries }
    }

    /// Build from entries in any order; for duplicate names the last one wins.
    pub fn from_unsorted(mut entries: Vec<Attr>) -> Attrs {
        entries.reverse();
        entries.sort_by_key(|a| a.name);
        entries.dedup_by_key(|a| a.name);
        Attrs { entries }
    }

    /// Build from entries in any order; for duplicate names the first one wins.
    pub fn from_unsorted_first_wins(mut entries: Vec<Attr>) -> Attrs {
        entries.sort_by_key(|a| a.name);
        entries.dedup_by_key(|a| a.name);
        Attrs { entries }
    }

    /// Insert or replace.
    pub fn insert(&mut self, attr: Attr) {
        match self.entries.binary_search_by_key(&attr.name, |a| a.name) {
            Ok(i) => self.entries[i] = attr,
            Err(i) => self.entries.insert(i, attr),
        }
    }

    /// Take the entries out.
    pub fn into_vec(self) -> Vec<Attr> {
        self.entries
    }
}

impl Deref for Attrs {
    type Target = AttrSlice;
    #[inline]
    fn deref(&self) -> &AttrSlice {
        AttrSlice::new(&self.entries)
    }
}

/// A finished attribute set, shared (what `Value::Attrs` holds).
#[derive(Clone)]
pub struct AttrSet(ThinRc<(), Attr>);

impl AttrSet {
    /// Freeze `attrs`.
    pub fn new(attrs: Attrs) -> AttrSet {
        AttrSet(ThinRc::from_vec((), attrs.entries))
    }

    /// A growable copy.
    pub fn to_attrs(&self) -> Attrs {
        Attrs {
            entries: self.0.to_vec(),
        }
    }

    /// Whether both are the same set (not just equal).
    #[inline]
    pub fn ptr_eq(a: &AttrSet, b: &AttrSet) -> bool {
        ThinRc::ptr_eq(&a.0, &b.0)
    }

    /// The reference count (see `ThinRc::count`).
    #[inline]
    pub(crate) fn count(&self) -> &std::cell::Cell<u32> {
        self.0.count()
    }

    /// The address of the set (an identity for cycle detection).
    #[inline]
    pub fn as_ptr(&self) -> *const () {
        ThinRc::as_ptr(&self.0)
    }
}

impl Deref for AttrSet {
    type Target = AttrSlice;
    #[inline]
    fn deref(&self) -> &AttrSlice {
        AttrSlice::new(&self.0)
    }
}

/// The entries of a set, sorted by symbol: what reading a set needs.
#[repr(transparent)]
pub struct AttrSlice([Attr]);

impl AttrSlice {
    #[inline]
    fn new(entries: &[Attr]) -> &AttrSlice {
        // SAFETY: `AttrSlice` is a transparent wrapper around `[Attr]`.
        unsafe { &*(entries as *const [Attr] as *const AttrSlice) }
    }

    /// Number of attributes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Look an attribute up.
    #[inline]
    pub fn get(&self, name: Sym) -> Option<&Value> {
        self.get_attr(name).map(|a| &a.value)
    }

    /// Look an attribute up, with its position.
    #[inline]
    pub fn get_attr(&self, name: Sym) -> Option<&Attr> {
        let e = &self.0;
        if e.len() <= 8 {
            return e.iter().find(|a| a.name == name);
        }
        e.binary_search_by_key(&name, |a| a.name)
            .ok()
            .map(|i| &e[i])
    }

    /// Whether `name` is present.
    pub fn contains(&self, name: Sym) -> bool {
        self.get_attr(name).is_some()
    }

    /// The attributes in symbol order.
    pub fn iter(&self) -> std::slice::Iter<'_, Attr> {
        self.0.iter()
    }

    /// The attributes sorted by name (the order Nix shows).
    pub fn sorted_by_name(&self) -> Vec<&Attr> {
        let mut v: Vec<&Attr> = self.0.iter().collect();
        v.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
        v
    }

    /// `self // other`.
    pub fn update(&self, other: &AttrSlice) -> Attrs {
        let (a, b) = (&self.0, &other.0);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            if a[i].name < b[j].name {
                out.push(a[i].clone());
                i += 1;
            } else if a[i].name > b[j].name {
                out.push(b[j].clone());
                j += 1;
            } else {
                out.push(b[j].clone());
                i += 1;
                j += 1;
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        Attrs { entries: out }
    }

    /// The entries as a slice.
    pub fn as_slice(&self) -> &[Attr] {
        &self.0
    }
}
