//! The evaluator's intermediate representation: rnix's tree lowered into compact nodes with
//! every variable resolved to an environment slot (`level` hops up, then `slot`), `with` as
//! the only dynamic lookup, nested attribute paths merged, and strings unescaped.
//!
//! Nodes are allocated once and never freed (`&'static Expr`): thunks point straight at
//! them without reference counting, and a program's code is reachable for the whole
//! evaluation anyway.

use crate::value::Shared;

use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::{NixStr, Value};

/// A reference to a node.
pub type ExprRef = &'static Expr;

/// Move a node to the heap for good.
pub fn leak(e: Expr) -> ExprRef {
    Box::leak(Box::new(e))
}

/// One expression.
#[derive(Debug)]
pub enum Expr {
    /// A constant: integer, float, string without interpolation, path, or the result of
    /// folding.
    Const(Value),
    /// A variable bound statically.
    Var(VarRef),
    /// A variable of the global scope (the builtins); `level` is unused.
    Global(VarRef),
    /// A variable looked up dynamically in the enclosing `with` scopes.
    WithVar(WithVarRef),
    /// `e.a.b or default`.
    Select(Box<Select>),
    /// `e ? a.b`.
    HasAttr {
        pos: Pos,
        expr: ExprRef,
        path: Box<[AttrName]>,
    },
    /// `{ … }` or `rec { … }`.
    Attrs(Box<AttrsDef>),
    /// `[ … ]`.
    List(Box<[ExprRef]>),
    /// A function.
    Lambda(&'static LambdaDef),
    /// `f a b …` (also the desugared `-`, `*`, `/`, `<` when the builtins are shadowed).
    Call {
        pos: Pos,
        func: ExprRef,
        args: Box<[ExprRef]>,
    },
    /// `let … in body`.
    Let(Box<LetDef>),
    /// `with ns; body`.
    With {
        pos: Pos,
        namespace: ExprRef,
        body: ExprRef,
    },
    /// `if c then a else b`.
    If {
        pos: Pos,
        cond: ExprRef,
        then: ExprRef,
        else_: ExprRef,
    },
    /// `assert c; body`.
    Assert {
        pos: Pos,
        cond: ExprRef,
        body: ExprRef,
    },
    /// `!e`.
    Not { pos: Pos, expr: ExprRef },
    /// A binary operator with its own node in Nix.
    BinOp {
        pos: Pos,
        op: BinOp,
        lhs: ExprRef,
        rhs: ExprRef,
    },
    /// An arithmetic or comparison operator that Nix desugars into a call of `__sub`,
    /// `__mul`, `__div` or `__lessThan`, when that name resolves to the builtin.
    Arith {
        pos: Pos,
        op: ArithOp,
        lhs: ExprRef,
        rhs: ExprRef,
    },
    /// String interpolation, `+`, and interpolated paths.
    ConcatStrings {
        pos: Pos,
        force_string: bool,
        parts: Box<[(Pos, ExprRef)]>,
    },
    /// `__curPos`.
    CurPos(Pos),
    /// A value from the inherit-from environment (`inherit (e) …`): slot `slot` of the env
    /// `level` hops up; used only as the base of the select the parser generates.
    InheritFrom { pos: Pos, level: u32, slot: u32 },
}

/// A statically resolved variable.
#[derive(Debug)]
pub struct VarRef {
    /// Where it is used.
    pub pos: Pos,
    /// Its name (for `--parse` and errors).
    pub name: Sym,
    /// How many environments up.
    pub level: u32,
    /// Which slot there.
    pub slot: u32,
}

/// A variable that must come from a `with`.
#[derive(Debug)]
pub struct WithVarRef {
    /// Where it is used.
    pub pos: Pos,
    /// Its name.
    pub name: Sym,
    /// The levels of the enclosing `with` environments, innermost first.
    pub withs: Box<[u32]>,
}

/// `e.path or default`.
#[derive(Debug)]
pub struct Select {
    /// Position of the whole selection.
    pub pos: Pos,
    /// The set.
    pub expr: ExprRef,
    /// The attribute path.
    pub path: Box<[AttrName]>,
    /// The `or` default.
    pub default: Option<ExprRef>,
}

/// One element of an attribute path.
#[derive(Debug)]
pub enum AttrName {
    /// A name known when parsing.
    Static(Sym),
    /// `${e}` or `"…${e}…"`.
    Dynamic(ExprRef),
}

/// Which environment an attribute's value expression is evaluated in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrKind {
    /// `name = e;`: the set's own scope (the recursive env for `rec` and `let`).
    Plain,
    /// `inherit name;`: the enclosing scope.
    Inherited,
    /// `inherit (from) name;`: the inherit-from env.
    InheritedFrom,
}

/// A statically named attribute (or `let` binding).
#[derive(Debug)]
pub struct AttrDef {
    /// Its name.
    pub name: Sym,
    /// Where it is defined.
    pub pos: Pos,
    /// Its value.
    pub value: ExprRef,
    /// Which scope `value` belongs to.
    pub kind: AttrKind,
}

/// An attribute whose name is computed.
#[derive(Debug)]
pub struct DynAttrDef {
    /// Where it is defined.
    pub pos: Pos,
    /// The name expression.
    pub name: ExprRef,
    /// The value expression.
    pub value: ExprRef,
}

/// An attribute set literal.
#[derive(Debug)]
pub struct AttrsDef {
    /// Position of the set.
    pub pos: Pos,
    /// `rec { … }` (also `let { … }`).
    pub rec: bool,
    /// Static attributes, sorted by `Sym` (for `rec`, attribute `i` lives in slot `i`).
    pub attrs: Box<[AttrDef]>,
    /// Dynamic attributes, in source order.
    pub dynamic: Box<[DynAttrDef]>,
    /// The `inherit (e)` sources; they get an environment of their own.
    pub inherit_from: Box<[ExprRef]>,
}

/// `let … in body`.
#[derive(Debug)]
pub struct LetDef {
    /// Position of the `let`.
    pub pos: Pos,
    /// Bindings; binding `i` lives in slot `i` of the new environment.
    pub attrs: Box<[AttrDef]>,
    /// The `inherit (e)` sources.
    pub inherit_from: Box<[ExprRef]>,
    /// The body.
    pub body: ExprRef,
}

/// A function literal.
#[derive(Debug)]
pub struct LambdaDef {
    /// Position of the function.
    pub pos: Pos,
    /// The name it was bound to (`f = x: …;`), for messages.
    pub name: Option<Sym>,
    /// `x:` or `{ … } @ x:`: the slot of `x`.
    pub arg: Option<(Sym, u32)>,
    /// `{ a, b ? 1, … }`.
    pub formals: Option<Formals>,
    /// The body.
    pub body: ExprRef,
    /// How many slots the call environment has.
    pub slots: u32,
}

/// A function's attribute-set pattern.
#[derive(Debug)]
pub struct Formals {
    /// The formals, sorted by `Sym`.
    pub entries: Box<[Formal]>,
    /// `...`.
    pub ellipsis: bool,
}

/// One formal argument.
#[derive(Debug)]
pub struct Formal {
    /// Its name.
    pub name: Sym,
    /// Where it is declared.
    pub pos: Pos,
    /// Its default.
    pub default: Option<ExprRef>,
    /// Its slot in the call environment.
    pub slot: u32,
}

/// Operators that are nodes of their own in Nix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `==`
    Eq,
    /// `!=`
    NEq,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `->`
    Impl,
    /// `//`
    Update,
    /// `++`
    Concat,
}

impl BinOp {
    /// The operator's text.
    pub fn symbol(self) -> &'static str {
        match self {
            BinOp::Eq => "==",
            BinOp::NEq => "!=",
            BinOp::And => "&&",
            BinOp::Or => "||",
            BinOp::Impl => "->",
            BinOp::Update => "//",
            BinOp::Concat => "++",
        }
    }
}

/// Operators Nix desugars into builtin calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    /// `a - b` (and `-a` as `0 - a`)
    Sub,
    /// `a * b`
    Mul,
    /// `a / b`
    Div,
    /// `a < b` (`>` swaps the operands)
    Less,
    /// `a <= b`, evaluated as `!(b < a)`
    LessEq,
}

/// A constant string.
pub fn const_str(s: &str) -> Expr {
    Expr::Const(Value::String(Shared::new(NixStr::from(s))))
}

impl Expr {
    /// The node's position, where it has one.
    pub fn pos(&self) -> Pos {
        match self {
            Expr::Var(v) | Expr::Global(v) => v.pos,
            Expr::WithVar(v) => v.pos,
            Expr::Select(s) => s.pos,
            Expr::HasAttr { pos, .. }
            | Expr::Call { pos, .. }
            | Expr::With { pos, .. }
            | Expr::If { pos, .. }
            | Expr::Assert { pos, .. }
            | Expr::Not { pos, .. }
            | Expr::BinOp { pos, .. }
            | Expr::Arith { pos, .. }
            | Expr::ConcatStrings { pos, .. }
            | Expr::CurPos(pos)
            | Expr::InheritFrom { pos, .. } => *pos,
            Expr::Attrs(a) => a.pos,
            Expr::Let(l) => l.pos,
            Expr::Lambda(l) => l.pos,
            Expr::Const(_) | Expr::List(_) => Pos::NONE,
        }
    }
}
