//! Operators: equality (with Nix's identity shortcut for nested values), ordering,
//! arithmetic with overflow checks, `&&`/`||`/`->`, `//`, `++`, and `+` / string
//! interpolation.

use std::cmp::Ordering;

use crate::error::{ErrorExt, ErrorKind, EvalError, EvalResult};
use crate::eval::Evaluator;
use crate::eval::coerce::CoerceOpts;
use crate::ir::*;
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

#[derive(Clone, Copy)]
enum Arith {
    Sub,
    Mul,
    Div,
}

/// Whether two (possibly unforced) values are the very same heap object.
pub(crate) fn ptr_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Thunk(x), Value::Thunk(y)) => Shared::ptr_eq(x, y),
        (Value::Lambda(x), Value::Lambda(y)) => Shared::ptr_eq(x, y),
        (Value::Attrs(x), Value::Attrs(y)) => AttrSet::ptr_eq(x, y),
        (Value::List(x), Value::List(y)) => ThinRc::ptr_eq(x, y),
        (Value::PrimOpApp(x), Value::PrimOpApp(y)) => Shared::ptr_eq(x, y),
        (Value::PrimOp(x), Value::PrimOp(y)) => std::ptr::eq(*x, *y),
        _ => false,
    }
}

/// The frame of a type error in `++`.
const CONCAT_CTX: &str = "while evaluating one of the elements to concatenate";

impl Evaluator {
    pub(crate) fn eval_binop(
        &mut self,
        op: BinOp,
        pos: Pos,
        lhs: ExprRef,
        rhs: ExprRef,
        env: &Env,
    ) -> EvalResult<Value> {
        match op {
            BinOp::Eq | BinOp::NEq => {
                let a = self.eval(lhs, env)?;
                let b = self.eval(rhs, env)?;
                let eq = self.values_equal(&a, &b, pos)?;
                Ok(Value::Bool(if op == BinOp::Eq { eq } else { !eq }))
            }
            BinOp::And => {
                if !self.eval_bool(
                    lhs,
                    env,
                    pos,
                    "in the left operand of the AND (&&) operator",
                )? {
                    return Ok(Value::Bool(false));
                }
                Ok(Value::Bool(self.eval_bool(
                    rhs,
                    env,
                    pos,
                    "in the right operand of the AND (&&) operator",
                )?))
            }
            BinOp::Or => {
                if self.eval_bool(lhs, env, pos, "in the left operand of the OR (||) operator")? {
                    return Ok(Value::Bool(true));
                }
                Ok(Value::Bool(self.eval_bool(
                    rhs,
                    env,
                    pos,
                    "in the right operand of the OR (||) operator",
                )?))
            }
            BinOp::Impl => {
                if !self.eval_bool(
                    lhs,
                    env,
                    pos,
                    "in the left operand of the IMPL (->) operator",
                )? {
                    return Ok(Value::Bool(true));
                }
                Ok(Value::Bool(self.eval_bool(
                    rhs,
                    env,
                    pos,
                    "in the right operand of the IMPL (->) operator",
                )?))
            }
            BinOp::Update => {
                let a = self
                    .eval(lhs, env)
                    .map_err(|e| e.frame(pos, "in the left operand of '//'"))?;
                let a =
                    self.expect_attrs(a, pos, "in the left operand of the update (//) operator")?;
                let b = self
                    .eval(rhs, env)
                    .map_err(|e| e.frame(pos, "in the right operand of '//'"))?;
                let b =
                    self.expect_attrs(b, pos, "in the right operand of the update (//) operator")?;
                if b.is_empty() {
                    return Ok(Value::Attrs(a));
                }
                if a.is_empty() {
                    return Ok(Value::Attrs(b));
                }
                Ok(Value::attrs(a.update(&b)))
            }
            BinOp::Concat => {
                let a = self.eval(lhs, env)?;
                let a = self.expect_list(a, pos, CONCAT_CTX)?;
                let b = self.eval(rhs, env)?;
                let b = self.expect_list(b, pos, CONCAT_CTX)?;
                if a.is_empty() {
                    return Ok(Value::List(b));
                }
                if b.is_empty() {
                    return Ok(Value::List(a));
                }
                let mut v = Vec::with_capacity(a.len() + b.len());
                v.extend(a.iter().cloned());
                v.extend(b.iter().cloned());
                Ok(Value::list(v))
            }
        }
    }

    /// Nix's `==` on two values (forcing as needed).
    pub fn values_equal(&mut self, a: &Value, b: &Value, pos: Pos) -> EvalResult<bool> {
        if crate::stack::here() < self.stack_limit {
            return Err(crate::stack::overflow(pos));
        }
        let a = self.force(a, pos)?;
        let b = self.force(b, pos)?;
        Ok(match (&a, &b) {
            (Value::Int(x), Value::Float(y)) => (*x as f64) == *y,
            (Value::Float(x), Value::Int(y)) => *x == (*y as f64),
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Float(x), Value::Float(y)) => x == y,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Null, Value::Null) => true,
            (Value::String(x), Value::String(y)) => x.as_bytes() == y.as_bytes(),
            (Value::Path(x), Value::Path(y)) => x == y,
            (Value::List(x), Value::List(y)) => {
                if ThinRc::ptr_eq(x, y) {
                    return Ok(true);
                }
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    if ptr_eq(p, q) {
                        continue;
                    }
                    if !self.values_equal(p, q, pos)? {
                        return Ok(false);
                    }
                }
                true
            }
            (Value::Attrs(x), Value::Attrs(y)) => {
                if AttrSet::ptr_eq(x, y) {
                    return Ok(true);
                }
                if self.is_derivation(x)?
                    && self.is_derivation(y)?
                    && let (Some(i), Some(j)) = (x.get(Sym::OUT_PATH), y.get(Sym::OUT_PATH))
                {
                    let (i, j) = (i.clone(), j.clone());
                    return self.values_equal(&i, &j, pos);
                }
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (p, q) in x.iter().zip(y.iter()) {
                    if p.name != q.name {
                        return Ok(false);
                    }
                    if ptr_eq(&p.value, &q.value) {
                        continue;
                    }
                    if !self.values_equal(&p.value, &q.value, pos)? {
                        return Ok(false);
                    }
                }
                true
            }
            _ => false,
        })
    }

    /// `type == "derivation"`.
    pub fn is_derivation(&mut self, a: &AttrSlice) -> EvalResult<bool> {
        match a.get(Sym::TYPE) {
            Some(t) => {
                let t = t.clone();
                match self.force(&t, Pos::NONE)? {
                    Value::String(s) => Ok(s.as_bytes() == b"derivation"),
                    _ => Ok(false),
                }
            }
            None => Ok(false),
        }
    }

    /// Nix's ordering (`<`, `builtins.lessThan`, `sort`'s default): numbers, strings, paths,
    /// and lists lexicographically.
    pub fn compare_values(&mut self, a: &Value, b: &Value, pos: Pos) -> EvalResult<Ordering> {
        if crate::stack::here() < self.stack_limit {
            return Err(crate::stack::overflow(pos));
        }
        let a = self.force(a, pos)?;
        let b = self.force(b, pos)?;
        Ok(match (&a, &b) {
            (Value::Int(x), Value::Int(y)) => x.cmp(y),
            (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
            (Value::Int(x), Value::Float(y)) => {
                (*x as f64).partial_cmp(y).unwrap_or(Ordering::Equal)
            }
            (Value::Float(x), Value::Int(y)) => {
                x.partial_cmp(&(*y as f64)).unwrap_or(Ordering::Equal)
            }
            (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
            (Value::Path(x), Value::Path(y)) => x.as_bytes().cmp(y.as_bytes()),
            (Value::List(x), Value::List(y)) => {
                let mut i = 0;
                loop {
                    if i == y.len() {
                        return Ok(if i == x.len() {
                            Ordering::Equal
                        } else {
                            Ordering::Greater
                        });
                    }
                    if i == x.len() {
                        return Ok(Ordering::Less);
                    }
                    if !self.values_equal(&x[i], &y[i], pos)? {
                        return self
                            .compare_values(&x[i], &y[i], pos)
                            .map_err(|e| e.frame(pos, "while comparing two list elements"));
                    }
                    i += 1;
                }
            }
            _ => {
                let sa = crate::print::print_for_error(self, &a);
                let sb = crate::print::print_for_error(self, &b);
                let msg = if a.typ() != b.typ() {
                    format!(
                        "cannot compare {} with {}; values are {sa} and {sb}",
                        a.typ().showtype(),
                        b.typ().showtype()
                    )
                } else {
                    format!(
                        "cannot compare {} with {}; values of that type are incomparable (values are {sa} and {sb})",
                        a.typ().showtype(),
                        b.typ().showtype()
                    )
                };
                return Err(self.error(msg, pos));
            }
        })
    }

    /// `a < b` exactly as Nix's `lessThan` decides it (NaN compares false).
    pub fn less_than(&mut self, a: &Value, b: &Value, pos: Pos) -> EvalResult<bool> {
        if let (Value::Int(x), Value::Int(y)) = (a, b) {
            return Ok(x < y);
        }
        let fa = self.force(a, pos)?;
        let fb = self.force(b, pos)?;
        match (&fa, &fb) {
            (Value::Float(x), Value::Float(y)) => Ok(x < y),
            (Value::Int(x), Value::Float(y)) => Ok((*x as f64) < *y),
            (Value::Float(x), Value::Int(y)) => Ok(*x < (*y as f64)),
            _ => Ok(self.compare_values(&fa, &fb, pos)? == Ordering::Less),
        }
    }

    /// `-`, `*`, `/`, `<` on forced operands.
    #[inline]
    pub(crate) fn arith(
        &mut self,
        op: ArithOp,
        a: &Value,
        b: &Value,
        pos: Pos,
    ) -> EvalResult<Value> {
        if let (Value::Int(x), Value::Int(y)) = (a, b) {
            let r = match op {
                ArithOp::Sub => x.checked_sub(*y),
                ArithOp::Mul => x.checked_mul(*y),
                ArithOp::Less => return Ok(Value::Bool(x < y)),
                ArithOp::LessEq => return Ok(Value::Bool(x <= y)),
                ArithOp::Div => {
                    if *y == 0 {
                        return Err(self.error("division by zero", pos));
                    }
                    x.checked_div(*y)
                }
            };
            if let Some(r) = r {
                return Ok(Value::Int(r));
            }
        }
        self.arith_slow(op, a, b, pos)
    }

    fn arith_slow(&mut self, op: ArithOp, a: &Value, b: &Value, pos: Pos) -> EvalResult<Value> {
        match op {
            ArithOp::Less | ArithOp::LessEq => {
                let r = self.less_than(a, b, pos).map_err(|e| e.at(pos))?;
                Ok(Value::Bool(if op == ArithOp::Less { r } else { !r }))
            }
            ArithOp::Sub => self.arith_num(a, b, pos, Arith::Sub),
            ArithOp::Mul => self.arith_num(a, b, pos, Arith::Mul),
            ArithOp::Div => {
                let d = self.force_float(
                    b,
                    pos,
                    "while evaluating the second operand of the division",
                )?;
                if d == 0.0 {
                    return Err(self.error("division by zero", pos));
                }
                self.arith_num(a, b, pos, Arith::Div)
            }
        }
    }

    fn arith_num(&mut self, a: &Value, b: &Value, pos: Pos, op: Arith) -> EvalResult<Value> {
        let (first, second, verb, sym) = match op {
            Arith::Sub => (
                "while evaluating the first operand of the subtraction",
                "while evaluating the second operand of the subtraction",
                "subtracting",
                "-",
            ),
            Arith::Mul => (
                "while evaluating the first operand of the multiplication",
                "while evaluating the second operand of the multiplication",
                "multiplying",
                "*",
            ),
            Arith::Div => (
                "while evaluating the first operand of the division",
                "while evaluating the second operand of the division",
                "dividing",
                "/",
            ),
        };
        let fa = self.force(a, pos)?;
        let fb = self.force(b, pos)?;
        if matches!(fa, Value::Float(_)) || matches!(fb, Value::Float(_)) {
            let x = self.force_float(&fa, pos, first)?;
            let y = self.force_float(&fb, pos, second)?;
            return Ok(Value::Float(match op {
                Arith::Sub => x - y,
                Arith::Mul => x * y,
                Arith::Div => x / y,
            }));
        }
        let x = self.force_int(&fa, pos, first)?;
        let y = self.force_int(&fb, pos, second)?;
        let r = match op {
            Arith::Sub => x.checked_sub(y),
            Arith::Mul => x.checked_mul(y),
            Arith::Div => x.checked_div(y),
        };
        match r {
            Some(r) => Ok(Value::Int(r)),
            None => Err(self.error(format!("integer overflow in {verb} {x} {sym} {y}"), pos)),
        }
    }

    /// `"…${e}…"`, `a + b`, and interpolated paths.
    pub(crate) fn eval_concat_strings(
        &mut self,
        pos: Pos,
        force_string: bool,
        parts: &'static [(Pos, ExprRef)],
        env: &Env,
    ) -> EvalResult<Value> {
        if !force_string && parts.len() == 2 {
            let a = self
                .eval_fast(parts[0].1, env)
                .map_err(|e| e.frame(pos, "in the left operand of the + operator"))?;
            if let Value::Int(x) = a {
                let b = self
                    .eval_fast(parts[1].1, env)
                    .map_err(|e| e.frame(pos, "in the right operand of the + operator"))?;
                match b {
                    Value::Int(y) => {
                        return match x.checked_add(y) {
                            Some(r) => Ok(Value::Int(r)),
                            None => Err(self.error(
                                format!("integer overflow in adding {x} + {y}"),
                                parts[1].0,
                            )),
                        };
                    }
                    Value::Float(f) => return Ok(Value::Float(x as f64 + f)),
                    other => {
                        return Err(self.error(
                            format!("cannot add {} to an integer", other.typ().showtype()),
                            parts[1].0,
                        ));
                    }
                }
            }
            return self.concat_from(pos, force_string, parts, env, Some(a));
        }
        self.concat_from(pos, force_string, parts, env, None)
    }

    fn concat_from(
        &mut self,
        pos: Pos,
        force_string: bool,
        parts: &'static [(Pos, ExprRef)],
        env: &Env,
        first: Option<Value>,
    ) -> EvalResult<Value> {
        #[derive(PartialEq, Clone, Copy)]
        enum First {
            Str,
            Path,
            Int,
            Float,
        }
        let mut first = first;
        let mut first_type = First::Str;
        let mut n: i64 = 0;
        let mut nf: f64 = 0.0;
        let mut buf: Vec<u8> = Vec::new();
        let mut context = Context::new();
        for (idx, (ppos, e)) in parts.iter().enumerate() {
            let v = match first.take() {
                Some(v) => Ok(v),
                None => self.eval(e, env),
            };
            let v = v.map_err(|err| {
                if force_string {
                    err
                } else if idx == 0 {
                    err.frame(pos, "in the left operand of the + operator")
                } else {
                    err.frame(pos, "in the right operand of the + operator")
                }
            })?;
            if idx == 0 && !force_string {
                first_type = match &v {
                    Value::Int(_) => First::Int,
                    Value::Float(_) => First::Float,
                    Value::Path(_) => First::Path,
                    _ => First::Str,
                };
            }
            match first_type {
                First::Int => match &v {
                    Value::Int(i) => match n.checked_add(*i) {
                        Some(r) => n = r,
                        None => {
                            return Err(
                                self.error(format!("integer overflow in adding {n} + {i}"), *ppos)
                            );
                        }
                    },
                    Value::Float(f) => {
                        first_type = First::Float;
                        nf = n as f64 + f;
                    }
                    other => {
                        return Err(self.error(
                            format!("cannot add {} to an integer", other.typ().showtype()),
                            *ppos,
                        ));
                    }
                },
                First::Float => match &v {
                    Value::Int(i) => nf += *i as f64,
                    Value::Float(f) => nf += f,
                    other => {
                        return Err(self.error(
                            format!("cannot add {} to a float", other.typ().showtype()),
                            *ppos,
                        ));
                    }
                },
                First::Str | First::Path => {
                    let opts = CoerceOpts {
                        coerce_more: false,
                        copy_to_store: first_type == First::Str,
                        canonicalize_path: idx != 0,
                    };
                    let s = self
                        .coerce_to_string(&v, *ppos, &mut context, opts)
                        .map_err(|e| e.frame(*ppos, "while evaluating a path segment"))?;
                    buf.extend_from_slice(&s);
                }
            }
        }
        Ok(match first_type {
            First::Int => Value::Int(n),
            First::Float => Value::Float(nf),
            First::Path => {
                if !context.is_empty() {
                    return Err(self.error(
                        "a string that refers to a store path cannot be appended to a path",
                        pos,
                    ));
                }
                let s = String::from_utf8_lossy(&buf).into_owned();
                Value::path(&crate::lower::strings::canon_path(&s))
            }
            First::Str => Value::String(Shared::new(NixStr::with_context(buf, context))),
        })
    }

    pub(crate) fn assertion_failed(
        &mut self,
        cond: ExprRef,
        env: &Env,
        pos: Pos,
    ) -> Box<EvalError> {
        let shown = crate::show::show_expr(cond);
        if let Expr::BinOp {
            op: BinOp::Eq,
            lhs,
            rhs,
            pos: eq_pos,
        } = cond
        {
            // Nix (2.23 on) explains why the two sides differ, under a frame that shows the
            // condition.
            let explained = match (self.eval(lhs, env), self.eval(rhs, env)) {
                (Ok(a), Ok(b)) => self.explain_inequality(&a, &b, *eq_pos),
                (Err(e), _) | (_, Err(e)) => Err(e),
            };
            match explained {
                Ok(None) => {}
                Ok(Some(e)) | Err(e) => {
                    return e.frame(
                        pos,
                        format!("while evaluating the condition of the assertion '{shown}'"),
                    );
                }
            }
        }
        let mut e = EvalError::new(ErrorKind::Assert, format!("assertion '{shown}' failed"));
        e.pos = pos;
        e
    }

    /// Nix's `assertEqValues`: the first difference between two values, as an error, worded
    /// as Nix 2.36 words it. `pos` is the position of the `==`. It walks the values in the
    /// order `==` does (attributes in symbol order), so it reports the difference `==` found.
    fn explain_inequality(
        &mut self,
        a: &Value,
        b: &Value,
        pos: Pos,
    ) -> EvalResult<Option<Box<EvalError>>> {
        let a = self.force(a, pos)?;
        let b = self.force(b, pos)?;
        let mk = |msg: String| {
            let mut e = EvalError::new(ErrorKind::Assert, msg);
            e.pos = Pos::NONE;
            Some(e)
        };
        let show = |ev: &mut Evaluator, v: &Value| crate::print::print_for_error(ev, v);
        let numeric = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_));
        // Integers and floats compare with each other; any difference is worded the same.
        if numeric(&a) && numeric(&b) {
            let equal = match (&a, &b) {
                (Value::Int(x), Value::Int(y)) => x == y,
                (Value::Float(x), Value::Float(y)) => x == y,
                (Value::Int(x), Value::Float(y)) | (Value::Float(y), Value::Int(x)) => {
                    (*x as f64) == *y
                }
                _ => unreachable!("both numeric"),
            };
            if equal {
                return Ok(None);
            }
            let (sa, sb) = (show(self, &a), show(self, &b));
            return Ok(mk(format!(
                "{} with value '{sa}' is not equal to {} with value '{sb}'",
                a.typ().showtype(),
                b.typ().showtype()
            )));
        }
        if a.typ() != b.typ() {
            let (sa, sb) = (show(self, &a), show(self, &b));
            return Ok(mk(format!(
                "{} of value '{sa}' is not equal to {} of value '{sb}'",
                a.typ().showtype(),
                b.typ().showtype()
            )));
        }
        match (&a, &b) {
            (Value::Bool(x), Value::Bool(y)) if x != y => {
                Ok(mk(format!("boolean '{x}' is not equal to boolean '{y}'")))
            }
            (Value::String(x), Value::String(y)) if x.as_bytes() != y.as_bytes() => {
                let (sa, sb) = (show(self, &a), show(self, &b));
                Ok(mk(format!("string '{sa}' is not equal to string '{sb}'")))
            }
            (Value::Path(x), Value::Path(y)) if x != y => {
                Ok(mk(format!("path '{x}' is not equal to path '{y}'")))
            }
            (Value::List(x), Value::List(y)) => {
                if x.len() != y.len() {
                    let (sa, sb) = (show(self, &a), show(self, &b));
                    return Ok(mk(format!(
                        "list of size '{}' is not equal to list of size '{}', left hand side is '{sa}', right hand side is '{sb}'",
                        x.len(),
                        y.len()
                    )));
                }
                for (i, (p, q)) in x.iter().zip(y.iter()).enumerate() {
                    if let Some(e) = self.explain_inequality(p, q, pos)? {
                        return Ok(Some(
                            e.frame(pos, format!("while comparing list element {i}")),
                        ));
                    }
                }
                Ok(None)
            }
            (Value::Attrs(x), Value::Attrs(y)) => {
                if self.is_derivation(x)?
                    && self.is_derivation(y)?
                    && let (Some(i), Some(j)) = (x.get(Sym::OUT_PATH), y.get(Sym::OUT_PATH))
                {
                    let (i, j) = (i.clone(), j.clone());
                    if let Some(e) = self.explain_inequality(&i, &j, pos)? {
                        return Ok(Some(e.frame(
                            pos,
                            "while comparing a derivation by its 'outPath' attribute",
                        )));
                    }
                    return Ok(None);
                }
                if x.len() != y.len() {
                    let (sa, sb) = (show(self, &a), show(self, &b));
                    return Ok(mk(format!(
                        "attribute names of attribute set '{sa}' differs from attribute set '{sb}'"
                    )));
                }
                // Nix walks both sets in symbol order (the order names were first seen).
                let in_nix_order = |s: &AttrSet| {
                    let mut v: Vec<Attr> = s.iter().cloned().collect();
                    v.sort_by_key(|a| a.name.creation_order());
                    v
                };
                let pairs: Vec<(Attr, Attr)> =
                    in_nix_order(x).into_iter().zip(in_nix_order(y)).collect();
                for (p, q) in pairs {
                    if p.name != q.name {
                        // One name is missing on one side; say which.
                        let (sa, sb) = (show(self, &a), show(self, &b));
                        return Ok(if y.get(p.name).is_none() {
                            mk(format!(
                                "attribute name '{}' is contained in '{sa}', but not in '{sb}'",
                                p.name
                            ))
                        } else {
                            mk(format!(
                                "attribute name '{}' is missing in '{sa}', but is contained in '{sb}'",
                                q.name
                            ))
                        });
                    }
                    if let Some(mut e) = self.explain_inequality(&p.value, &q.value, pos)? {
                        if q.pos.is_some() {
                            e = e.frame(q.pos, "where right hand side is");
                        }
                        if p.pos.is_some() {
                            e = e.frame(p.pos, "where left hand side is");
                        }
                        return Ok(Some(
                            e.frame(pos, format!("while comparing attribute '{}'", p.name)),
                        ));
                    }
                }
                Ok(None)
            }
            (Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_), _) => Ok(mk(
                "distinct functions and immediate comparisons of identical functions compare as unequal"
                    .into(),
            )),
            _ => Ok(None),
        }
    }
}
