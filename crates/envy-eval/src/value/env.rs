//! Run-time environments: one per scope that binds names (function call, `let`, `rec`,
//! `with`, inherit-from sources). `let` and `rec` fill their slots after the environment
//! exists, because the thunks stored in them point back at it; `__overrides` replaces slots.

use std::cell::UnsafeCell;

use crate::value::{ThinRc, Value};

/// An environment: the enclosing one and the slots, in one allocation (see `ThinRc`).
/// Cloning shares it.
#[derive(Clone)]
pub struct Env(ThinRc<Option<Env>, UnsafeCell<Value>>);

impl Env {
    /// An environment with `n` slots holding `null` until set.
    pub fn new(up: Option<Env>, n: usize) -> Env {
        Env(ThinRc::from_fn(up, n, |_| UnsafeCell::new(Value::Null)))
    }

    /// An environment with one slot (a function call's argument).
    #[inline]
    pub fn one(up: Env, v: Value) -> Env {
        let mut v = Some(v);
        Env(ThinRc::from_fn(Some(up), 1, |_| {
            UnsafeCell::new(v.take().expect("one slot"))
        }))
    }

    /// An environment holding `values`.
    pub fn with_values<I>(up: Option<Env>, values: I) -> Env
    where
        I: IntoIterator<Item = Value>,
        I::IntoIter: ExactSizeIterator,
    {
        let mut values = values.into_iter();
        let n = values.len();
        Env(ThinRc::from_fn(up, n, |_| {
            UnsafeCell::new(values.next().expect("as many values as announced"))
        }))
    }

    /// The enclosing environment.
    #[inline]
    pub fn up(&self) -> Option<&Env> {
        self.0.header().as_ref()
    }

    /// Whether both are the same environment.
    pub fn ptr_eq(a: &Env, b: &Env) -> bool {
        ThinRc::ptr_eq(&a.0, &b.0)
    }

    /// Set slot `i`.
    #[inline]
    pub fn set(&self, i: usize, v: Value) {
        // SAFETY: `Env` is not `Sync`, and no reference into a slot ever escapes this type:
        // `get` returns a clone and cloning a `Value` only bumps reference counts, so nothing
        // can observe the slot while it is being replaced. Dropping the old value cannot reach
        // this environment's slots either, since `self` is borrowed and thus alive.
        let old = unsafe { std::ptr::replace(self.0[i].get(), v) };
        drop(old);
    }

    /// Slot `i`'s value.
    #[inline]
    pub fn get(&self, i: usize) -> Value {
        // SAFETY: see `set`; the reference lives only for the clone.
        unsafe { (*self.0[i].get()).clone() }
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
        unsafe { &*self.0[i].get() }
    }

    /// Number of slots.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no slots.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
