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
        if let Expr::BinOp {
            op: BinOp::Eq,
            lhs,
            rhs,
            ..
        } = cond
        {
            // Nix explains why the two sides differ.
            let a = self.eval(lhs, env);
            let b = self.eval(rhs, env);
            if let (Ok(a), Ok(b)) = (a, b) {
                match self.explain_inequality(&a, &b, pos) {
                    Ok(Some(e)) => return e,
                    Ok(None) => {}
                    Err(e) => return e,
                }
            }
        }
        let shown = crate::show::show_expr(cond);
        let mut e = EvalError::new(ErrorKind::Assert, format!("assertion '{shown}' failed"));
        e.pos = pos;
        e
    }

    /// Nix's `assertEqValues`: the first difference between two values, as an error.
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
            e.pos = pos;
            Some(e)
        };
        let show = |ev: &mut Evaluator, v: &Value| crate::print::print_for_error(ev, v);
        match (&a, &b) {
            (Value::Int(x), Value::Float(y)) if (*x as f64) != *y => {
                return Ok(mk(format!(
                    "an integer with value '{x}' is not equal to a float with value '{}'",
                    crate::print::float(*y)
                )));
            }
            (Value::Float(x), Value::Int(y)) if *x != (*y as f64) => {
                return Ok(mk(format!(
                    "a float with value '{}' is not equal to an integer with value '{y}'",
                    crate::print::float(*x)
                )));
            }
            _ => {}
        }
        if a.typ() != b.typ()
            && !matches!(
                (&a, &b),
                (Value::Int(_), Value::Float(_)) | (Value::Float(_), Value::Int(_))
            )
        {
            let (sa, sb) = (show(self, &a), show(self, &b));
            return Ok(mk(format!(
                "{} of value '{sa}' is not equal to {} of value '{sb}'",
                a.typ().showtype(),
                b.typ().showtype()
            )));
        }
        match (&a, &b) {
            (Value::Int(x), Value::Int(y)) if x != y => {
                Ok(mk(format!("integer '{x}' is not equal to integer '{y}'")))
            }
            (Value::Float(x), Value::Float(y)) if x != y => Ok(mk(format!(
                "float '{}' is not equal to float '{}'",
                crate::print::float(*x),
                crate::print::float(*y)
            ))),
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
                        return Ok(Some(
                            e.frame(pos, "while comparing the derivation attribute 'outPath'"),
                        ));
                    }
                    return Ok(None);
                }
                let names_x: Vec<Sym> = x.iter().map(|a| a.name).collect();
                let names_y: Vec<Sym> = y.iter().map(|a| a.name).collect();
                if names_x != names_y {
                    let (sa, sb) = (show(self, &a), show(self, &b));
                    return Ok(mk(format!(
                        "attribute names of attribute set '{sa}' differs from attribute set '{sb}'"
                    )));
                }
                let xs: Vec<Attr> = x.sorted_by_name().into_iter().cloned().collect();
                for p in xs {
                    let q = y.get(p.name).expect("same names").clone();
                    if let Some(e) = self.explain_inequality(&p.value, &q, pos)? {
                        return Ok(Some(
                            e.frame(pos, format!("while comparing attribute '{}'", p.name)),
                        ));
                    }
                }
                Ok(None)
            }
            _ => Ok(None),
        }
    }
}
