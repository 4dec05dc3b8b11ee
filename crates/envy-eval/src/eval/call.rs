//! Function application: lambdas (with attribute-set patterns), builtins with their arity
//! (partial application builds a `PrimOpApp`), and sets with `__functor`.

use crate::error::{ErrorExt, ErrorKind, EvalError, EvalResult};
use crate::eval::Evaluator;
use crate::eval::attrs::suggestions;
use crate::ir::{Expr, LambdaDef};
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

impl Evaluator {
    /// Apply `f` to `args` (unforced).
    pub fn call_value(&mut self, f: &Value, args: &[Value], pos: Pos) -> EvalResult<Value> {
        let f = self.force(f, pos)?;
        self.call_forced(f, args, pos)
    }

    /// Apply the forced `f` to `args`.
    pub(crate) fn call_forced(&mut self, f: Value, args: &[Value], pos: Pos) -> EvalResult<Value> {
        let mut f = f;
        let mut args = args;
        loop {
            if args.is_empty() {
                return Ok(f);
            }
            match &f {
                Value::Lambda(c) => {
                    // `x: y: …` given two arguments: bind `x`, then call `y: …` in that
                    // scope directly, without building the closure in between.
                    if let (None, Expr::Lambda(inner), [a, b, ..]) =
                        (&c.def.formals, c.def.body, args)
                    {
                        self.check_call_depth(pos)?;
                        let env = Env::one(c.env.clone(), a.clone());
                        let r = self.call_def(inner, &env, b.clone(), pos)?;
                        args = &args[2..];
                        f = r;
                        continue;
                    }
                    let r = self.call_lambda(c, args[0].clone(), pos)?;
                    args = &args[1..];
                    f = r;
                }
                Value::PrimOp(op) => {
                    let op: &'static PrimOp = op;
                    if args.len() >= op.arity {
                        let r = self.call_primop(op, &args[..op.arity], pos)?;
                        args = &args[op.arity..];
                        f = r;
                    } else {
                        return Ok(Value::PrimOpApp(Shared::new(PrimOpApp {
                            op,
                            args: args.to_vec(),
                        })));
                    }
                }
                Value::PrimOpApp(app) => {
                    let op = app.op;
                    let needed = op.arity - app.args.len();
                    if args.len() >= needed {
                        let mut all: smallvec::SmallVec<[Value; 4]> = smallvec::SmallVec::new();
                        for a in app.args.iter().chain(&args[..needed]) {
                            all.push(a.clone());
                        }
                        let r = self.call_primop(op, &all, pos)?;
                        args = &args[needed..];
                        f = r;
                    } else {
                        let mut all = app.args.clone();
                        all.extend(args.iter().cloned());
                        return Ok(Value::PrimOpApp(Shared::new(PrimOpApp { op, args: all })));
                    }
                }
                Value::Attrs(a) if a.contains(Sym::FUNCTOR) => {
                    let functor = a.get(Sym::FUNCTOR).expect("checked").clone();
                    let r = self
                        .call_value(&functor, &[f.clone(), args[0].clone()], pos)
                        .map_err(|e| e.frame(pos, "while calling a functor (an attribute set with a '__functor' attribute)"))?;
                    args = &args[1..];
                    f = self.force(&r, pos)?;
                }
                other => {
                    let shown = crate::print::print_for_error(self, other);
                    return Err(self.error(
                        format!(
                            "attempt to call something which is not a function but {}: {shown}",
                            other.typ().showtype()
                        ),
                        pos,
                    ));
                }
            }
        }
    }

    fn call_primop(&mut self, op: &'static PrimOp, args: &[Value], pos: Pos) -> EvalResult<Value> {
        (op.func)(self, args, pos).map_err(|e| {
            if op.name.starts_with("__") {
                e
            } else {
                e.frame(pos, format!("while calling the '{}' builtin", op.name))
            }
        })
    }

    /// The name Nix shows for a function.
    fn lambda_name(def: &crate::ir::LambdaDef) -> String {
        match def.name {
            Some(n) => n.as_str().to_string(),
            None => "anonymous lambda".to_string(),
        }
    }

    pub(crate) fn call_lambda(
        &mut self,
        c: &Shared<Closure>,
        arg: Value,
        pos: Pos,
    ) -> EvalResult<Value> {
        self.call_def(c.def, &c.env, arg, pos)
    }

    /// Nix's "stack overflow; max-call-depth exceeded" once calls nest too deeply.
    #[inline]
    pub(crate) fn check_call_depth(&self, pos: Pos) -> EvalResult<()> {
        if self.call_depth >= self.settings.max_call_depth {
            let mut e = EvalError::new(
                ErrorKind::StackOverflow,
                "stack overflow; max-call-depth exceeded",
            );
            e.pos = pos;
            return Err(e);
        }
        Ok(())
    }

    /// Call the function `def` closed over `captured` with `arg`.
    fn call_def(
        &mut self,
        def: &'static LambdaDef,
        captured: &Env,
        arg: Value,
        pos: Pos,
    ) -> EvalResult<Value> {
        self.check_call_depth(pos)?;
        let env = match &def.formals {
            None => Env::one(captured.clone(), arg),
            Some(formals) => {
                let attrs = match self.force(&arg, pos)? {
                    Value::Attrs(a) => a,
                    other => {
                        let e = self.type_error("a set", &other).at(pos).frame(
                            pos,
                            "while evaluating the value passed for the lambda argument",
                        );
                        return Err(self.call_frames(e, def, pos));
                    }
                };
                let env = Env::new(Some(captured.clone()), def.slots as usize);
                let mut used = 0;
                for f in formals.entries.iter() {
                    match attrs.get(f.name) {
                        Some(v) => {
                            env.set(f.slot as usize, v.clone());
                            used += 1;
                        }
                        None => match f.default {
                            Some(d) => {
                                let v = self.lazy_rec(d, &env);
                                env.set(f.slot as usize, v);
                            }
                            None => {
                                let mut e = self.error(
                                    format!(
                                        "function '{}' called without required argument '{}'",
                                        Self::lambda_name(def),
                                        f.name
                                    ),
                                    def.pos,
                                );
                                e = e.frame(pos, "from call site");
                                return Err(e);
                            }
                        },
                    }
                }
                if !formals.ellipsis && used < attrs.len() {
                    let mut sorted = attrs.sorted_by_name();
                    sorted.retain(|a| {
                        formals
                            .entries
                            .binary_search_by_key(&a.name, |f| f.name)
                            .is_err()
                    });
                    let bad = sorted[0].name;
                    let mut e = self.error(
                        format!(
                            "function '{}' called with unexpected argument '{}'",
                            Self::lambda_name(def),
                            bad
                        ),
                        def.pos,
                    );
                    e.suggestions = suggestions(
                        formals.entries.iter().map(|f| f.name.as_str()),
                        bad.as_str(),
                    );
                    e = e.frame(pos, "from call site");
                    return Err(e);
                }
                if let Some((_, slot)) = def.arg {
                    env.set(slot as usize, Value::Attrs(attrs));
                }
                env
            }
        };
        self.call_depth += 1;
        let r = self.eval(def.body, &env);
        self.call_depth -= 1;
        match r {
            Ok(v) => Ok(v),
            Err(e) => Err(self.call_frames(e, def, pos)),
        }
    }

    fn call_frames(
        &self,
        e: Box<EvalError>,
        def: &crate::ir::LambdaDef,
        pos: Pos,
    ) -> Box<EvalError> {
        if !self.settings.show_trace {
            return e;
        }
        let name = match def.name {
            Some(n) => format!("'{n}'"),
            None => "anonymous lambda".to_string(),
        };
        let e = e.frame(def.pos, format!("while calling {name}"));
        if pos.is_some() {
            e.frame(pos, "from call site")
        } else {
            e
        }
    }
}
