//! Run-time environments: one per scope that binds names (function call, `let`, `rec`,
//! `with`, inherit-from sources). `let` and `rec` fill their slots after the environment
//! exists, because the thunks stored in them point back at it; `__overrides` replaces slots.

use std::cell::UnsafeCell;
use std::rc::Rc;

use smallvec::SmallVec;

use crate::value::Value;

/// An environment.
pub struct Env {
    /// The enclosing environment.
    pub up: Option<Rc<Env>>,
    slots: SmallVec<[UnsafeCell<Value>; 2]>,
}

impl Env {
    /// An environment with `n` slots holding `null` until set.
    pub fn new(up: Option<Rc<Env>>, n: usize) -> Env {
        let mut slots = SmallVec::new();
        if n > slots.inline_size() {
            slots.reserve_exact(n);
        }
        for _ in 0..n {
            slots.push(UnsafeCell::new(Value::Null));
        }
        Env { up, slots }
    }

    /// An environment with one slot (a function call's argument).
    #[inline]
    pub fn one(up: Rc<Env>, v: Value) -> Env {
        let mut slots = SmallVec::new();
        slots.push(UnsafeCell::new(v));
        Env {
            up: Some(up),
            slots,
        }
    }

    /// An environment holding `values`.
    pub fn with_values(up: Option<Rc<Env>>, values: impl IntoIterator<Item = Value>) -> Env {
        Env {
            up,
            slots: values.into_iter().map(UnsafeCell::new).collect(),
        }
    }

    /// Set slot `i`.
    #[inline]
    pub fn set(&self, i: usize, v: Value) {
        // SAFETY: `Env` is not `Sync`, and no reference into a slot ever escapes this type:
        // `get` returns a clone and cloning a `Value` only bumps reference counts, so nothing
        // can observe the slot while it is being replaced. Dropping the old value cannot reach
        // this environment's slots either, since `self` is borrowed and thus alive.
        let old = unsafe { std::ptr::replace(self.slots[i].get(), v) };
        drop(old);
    }

    /// Slot `i`'s value.
    #[inline]
    pub fn get(&self, i: usize) -> Value {
        // SAFETY: see `set`; the reference lives only for the clone.
        unsafe { (*self.slots[i].get()).clone() }
    }

    /// A reference to slot `i`'s value. The evaluator forces thunks through it without
    /// cloning: `set` only runs while an environment is being built (its slots are filled,
    /// and `__overrides` replaces some right after forcing itself, before the set exists
    /// anywhere else), never while a value read from a finished environment is in use.
    #[inline]
    pub fn get_ref(&self, i: usize) -> &Value {
        // SAFETY: see above: no `set` on this environment can run while the returned
        // reference is alive, because references are only taken from environments that are
        // complete, and `set` is only called by the code that builds one.
        unsafe { &*self.slots[i].get() }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }
}
