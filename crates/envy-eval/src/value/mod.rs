//! Run-time values. `Value` is 16 bytes: scalars inline, everything else behind an `Rc`.
//! A `Value` may be an unevaluated `Thunk`; the evaluator's `force` turns it into weak head
//! normal form, after which it is never a thunk.

mod attrs;
mod env;
mod string;
mod thin;

use std::cell::UnsafeCell;
use std::fmt;

pub use attrs::{Attr, AttrSet, AttrSlice, Attrs};
pub use env::Env;
pub use string::{Context, ContextElem, NixStr};
pub use thin::{Shared, ThinRc};

use crate::error::EvalResult;
use crate::eval::Evaluator;
use crate::ir::{Expr, LambdaDef};
use crate::source::Pos;

/// A list value: its items in one allocation with the count.
pub type List = ThinRc<(), Value>;

/// A Nix value.
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A 64-bit integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A byte string with its context.
    String(Shared<NixStr>),
    /// An absolute, canonical path (behind a thin pointer, so that a `Value` is 16 bytes).
    Path(Shared<Box<str>>),
    /// An attribute set.
    Attrs(AttrSet),
    /// A list.
    List(List),
    /// A function literal closed over its environment.
    Lambda(Shared<Closure>),
    /// A builtin function.
    PrimOp(&'static PrimOp),
    /// A builtin applied to fewer arguments than it takes.
    PrimOpApp(Shared<PrimOpApp>),
    /// A suspended computation.
    Thunk(Shared<Thunk>),
}

// Every value behind a pointer is counted the same way (`ThinRc`'s count): cloning is one
// increment wherever the variant, instead of a jump to the variant's own `clone`.
impl Clone for Value {
    #[inline]
    fn clone(&self) -> Value {
        let count = match self {
            Value::Null | Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::PrimOp(_) => {
                None
            }
            Value::String(s) => Some(s.count()),
            Value::Path(p) => Some(p.count()),
            Value::Attrs(a) => Some(a.count()),
            Value::List(l) => Some(l.count()),
            Value::Lambda(c) => Some(c.count()),
            Value::PrimOpApp(a) => Some(a.count()),
            Value::Thunk(t) => Some(t.count()),
        };
        if let Some(count) = count {
            thin::retain(count);
        }
        // SAFETY: cloning any variant's payload is copying it, plus counting the reference
        // for the pointers counted above (`ThinRc::clone`); `&'static` and plain data copy.
        unsafe { std::ptr::read(self) }
    }
}

/// A function value.
pub struct Closure {
    /// The code.
    pub def: &'static LambdaDef,
    /// The environment it was created in.
    pub env: Env,
}

/// The signature of a builtin: the evaluator, the (unforced) arguments, the call site.
pub type PrimOpFn = fn(&mut Evaluator, &[Value], Pos) -> EvalResult<Value>;

/// A builtin function.
pub struct PrimOp {
    /// Its name (without `__`).
    pub name: &'static str,
    /// How many arguments it takes.
    pub arity: usize,
    /// The implementation.
    pub func: PrimOpFn,
}

/// A partially applied builtin.
pub struct PrimOpApp {
    /// The builtin.
    pub op: &'static PrimOp,
    /// The arguments so far (fewer than `op.arity`).
    pub args: Vec<Value>,
}

/// A suspended computation with in-place update. Only the evaluator changes its state
/// (`replace`), and never while a reference from `peek` is alive.
pub struct Thunk(UnsafeCell<ThunkState>);

/// What a thunk holds.
pub enum ThunkState {
    /// Evaluate `expr` in `env`.
    Pending(&'static Expr, Env),
    /// Apply `f` to `arg`.
    Apply(Value, Value),
    /// Apply `f` to two arguments.
    Apply2(Box<(Value, Value, Value)>),
    /// Being evaluated: forcing it again is infinite recursion.
    Blackhole,
    /// Evaluated.
    Done(Value),
    /// Evaluating it failed; forcing it again fails the same way (as in Nix 2.34+).
    Failed(Box<crate::error::EvalError>),
}

impl Thunk {
    /// A thunk for `expr` in `env`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(expr: &'static Expr, env: Env) -> Value {
        Value::Thunk(Shared::new(Thunk(UnsafeCell::new(ThunkState::Pending(
            expr, env,
        )))))
    }

    /// A thunk for `f arg`.
    pub fn apply(f: Value, arg: Value) -> Value {
        Value::Thunk(Shared::new(Thunk(UnsafeCell::new(ThunkState::Apply(
            f, arg,
        )))))
    }

    /// A thunk for `f a b`.
    pub fn apply2(f: Value, a: Value, b: Value) -> Value {
        Value::Thunk(Shared::new(Thunk(UnsafeCell::new(ThunkState::Apply2(
            Box::new((f, a, b)),
        )))))
    }

    /// A thunk in `state`.
    pub fn from_state(state: ThunkState) -> Shared<Thunk> {
        Shared::new(Thunk(UnsafeCell::new(state)))
    }

    /// The current state, for immediate inspection.
    #[inline]
    pub(crate) fn peek(&self) -> &ThunkState {
        // SAFETY: `Thunk` is not `Sync`; the state is only replaced by `replace`, which the
        // evaluator never calls while a reference from `peek` is alive (it clones what it
        // needs out of the state first).
        unsafe { &*self.0.get() }
    }

    /// Replace the state, returning the old one.
    #[inline]
    pub(crate) fn replace(&self, state: ThunkState) -> ThunkState {
        // SAFETY: see `peek`: no reference into the state is alive while it is replaced.
        unsafe { std::ptr::replace(self.0.get(), state) }
    }

    /// The value, if already evaluated.
    pub fn value(&self) -> Option<Value> {
        match self.peek() {
            ThunkState::Done(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Whether it is being evaluated right now.
    pub fn is_blackhole(&self) -> bool {
        matches!(self.peek(), ThunkState::Blackhole)
    }
}

/// The type of a value as Nix names it (`builtins.typeOf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Type {
    /// `null`
    Null,
    /// `bool`
    Bool,
    /// `int`
    Int,
    /// `float`
    Float,
    /// `string`
    String,
    /// `path`
    Path,
    /// `set`
    Attrs,
    /// `list`
    List,
    /// `lambda`
    Function,
    /// Not yet evaluated.
    Thunk,
}

impl Type {
    /// The name `builtins.typeOf` returns.
    pub fn type_of(self) -> &'static str {
        match self {
            Type::Null => "null",
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Float => "float",
            Type::String => "string",
            Type::Path => "path",
            Type::Attrs => "set",
            Type::List => "list",
            Type::Function => "lambda",
            Type::Thunk => "thunk",
        }
    }

    /// The name with an article, as in Nix's messages ("expected a set but found an
    /// integer").
    pub fn showtype(self) -> &'static str {
        match self {
            Type::Null => "null",
            Type::Bool => "a Boolean",
            Type::Int => "an integer",
            Type::Float => "a float",
            Type::String => "a string",
            Type::Path => "a path",
            Type::Attrs => "a set",
            Type::List => "a list",
            Type::Function => "a function",
            Type::Thunk => "a thunk",
        }
    }
}

impl Value {
    /// The empty string.
    pub fn empty_string() -> Value {
        Value::String(Shared::new(NixStr::from("")))
    }

    /// A string without context.
    pub fn string(s: impl Into<NixStr>) -> Value {
        Value::String(Shared::new(s.into()))
    }

    /// A path (absolute and canonical).
    pub fn path(p: &str) -> Value {
        Value::Path(Shared::new(Box::from(p)))
    }

    /// An attribute set.
    pub fn attrs(a: Attrs) -> Value {
        Value::Attrs(AttrSet::new(a))
    }

    /// A list.
    pub fn list(items: Vec<Value>) -> Value {
        Value::List(ThinRc::from_vec((), items))
    }

    /// The type (of a forced value; a thunk says `Thunk`).
    pub fn typ(&self) -> Type {
        match self {
            Value::Null => Type::Null,
            Value::Bool(_) => Type::Bool,
            Value::Int(_) => Type::Int,
            Value::Float(_) => Type::Float,
            Value::String(_) => Type::String,
            Value::Path(_) => Type::Path,
            Value::Attrs(_) => Type::Attrs,
            Value::List(_) => Type::List,
            Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_) => Type::Function,
            Value::Thunk(t) => match t.value() {
                Some(v) => v.typ(),
                None => Type::Thunk,
            },
        }
    }

    /// Whether this is a function of any kind.
    pub fn is_function(&self) -> bool {
        matches!(
            self,
            Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_)
        )
    }

    /// If this is an evaluated thunk, the value inside; else the value itself.
    pub fn peel(&self) -> Value {
        match self {
            Value::Thunk(t) => t.value().unwrap_or_else(|| self.clone()),
            v => v.clone(),
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::String(s) => write!(f, "{:?}", String::from_utf8_lossy(s.as_bytes())),
            Value::Path(p) => f.write_str(p),
            Value::Attrs(a) => write!(f, "{{ {} attrs }}", a.len()),
            Value::List(l) => write!(f, "[ {} items ]", l.len()),
            Value::Lambda(_) => f.write_str("«lambda»"),
            Value::PrimOp(p) => write!(f, "«primop {}»", p.name),
            Value::PrimOpApp(p) => write!(f, "«partially applied primop {}»", p.op.name),
            Value::Thunk(_) => f.write_str("«thunk»"),
        }
    }
}

// Values are copied around everywhere: keep them at two words.
const _: () = assert!(std::mem::size_of::<Value>() == 16);
