//! Builtins about values in general: type tests, arithmetic, `seq`/`deepSeq`, errors
//! (`throw`, `abort`, `tryEval`, `addErrorContext`), tracing, `functionArgs`, `getEnv`,
//! `unsafeGetAttrPos`.

use super::primop;
use crate::error::{ErrorExt, ErrorKind, EvalError, EvalResult};
use crate::eval::{CoerceOpts, Ctx, Diagnostic, Evaluator};
use crate::ir::ArithOp;
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[
    primop!("abort", 1, prim_abort),
    primop!("throw", 1, prim_throw),
    primop!("add", 2, prim_add),
    primop!("sub", 2, prim_sub),
    primop!("mul", 2, prim_mul),
    primop!("div", 2, prim_div),
    primop!("lessThan", 2, prim_less_than),
    primop!("bitAnd", 2, prim_bit_and),
    primop!("bitOr", 2, prim_bit_or),
    primop!("bitXor", 2, prim_bit_xor),
    primop!("ceil", 1, prim_ceil),
    primop!("floor", 1, prim_floor),
    primop!("isNull", 1, prim_is_null),
    primop!("isBool", 1, prim_is_bool),
    primop!("isInt", 1, prim_is_int),
    primop!("isFloat", 1, prim_is_float),
    primop!("isString", 1, prim_is_string),
    primop!("isList", 1, prim_is_list),
    primop!("isAttrs", 1, prim_is_attrs),
    primop!("isFunction", 1, prim_is_function),
    primop!("isPath", 1, prim_is_path),
    primop!("typeOf", 1, prim_type_of),
    primop!("seq", 2, prim_seq),
    primop!("deepSeq", 2, prim_deep_seq),
    primop!("tryEval", 1, prim_try_eval),
    primop!("trace", 2, prim_trace),
    primop!("traceVerbose", 2, prim_trace_verbose),
    primop!("warn", 2, prim_warn),
    primop!("addErrorContext", 2, prim_add_error_context),
    primop!("break", 1, prim_break),
    primop!("functionArgs", 1, prim_function_args),
    primop!("getEnv", 1, prim_get_env),
    primop!("unsafeGetAttrPos", 2, prim_unsafe_get_attr_pos),
];

fn prim_abort(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let s = ev
        .coerce_to_string(&args[0], pos, &mut Context::new(), CoerceOpts::default())
        .map_err(|e| {
            e.frame(
                pos,
                "while evaluating the error message passed to builtins.abort",
            )
        })?;
    let mut e = EvalError::new(
        ErrorKind::Abort,
        format!(
            "evaluation aborted with the following error message: '{}'",
            String::from_utf8_lossy(&s)
        ),
    );
    e.pos = pos;
    Err(e)
}

fn prim_throw(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let s = ev
        .coerce_to_string(&args[0], pos, &mut Context::new(), CoerceOpts::default())
        .map_err(|e| {
            e.frame(
                pos,
                "while evaluating the error message passed to builtin.throw",
            )
        })?;
    let e = EvalError::new(ErrorKind::Throw, String::from_utf8_lossy(&s).into_owned());
    Err(e)
}

fn prim_add(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.force(&args[0], pos)?;
    let b = ev.force(&args[1], pos)?;
    if matches!(a, Value::Float(_)) || matches!(b, Value::Float(_)) {
        let x = ev.force_float(
            &a,
            pos,
            "while evaluating the first argument of the addition",
        )?;
        let y = ev.force_float(
            &b,
            pos,
            "while evaluating the second argument of the addition",
        )?;
        return Ok(Value::Float(x + y));
    }
    let x = ev.force_int(
        &a,
        pos,
        "while evaluating the first argument of the addition",
    )?;
    let y = ev.force_int(
        &b,
        pos,
        "while evaluating the second argument of the addition",
    )?;
    match x.checked_add(y) {
        Some(r) => Ok(Value::Int(r)),
        None => Err(ev.error(format!("integer overflow in adding {x} + {y}"), pos)),
    }
}

fn prim_sub(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    ev.arith(ArithOp::Sub, &args[0], &args[1], pos)
}

fn prim_mul(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    ev.arith(ArithOp::Mul, &args[0], &args[1], pos)
}

fn prim_div(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    ev.arith(ArithOp::Div, &args[0], &args[1], pos)
}

fn prim_less_than(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    Ok(Value::Bool(ev.less_than(&args[0], &args[1], pos)?))
}

fn bit(
    ev: &mut Evaluator,
    args: &[Value],
    pos: Pos,
    name: &'static str,
    f: fn(i64, i64) -> i64,
) -> EvalResult<Value> {
    let a = ev.force_int(&args[0], pos, Ctx::Arg(1, name))?;
    let b = ev.force_int(&args[1], pos, Ctx::Arg(2, name))?;
    Ok(Value::Int(f(a, b)))
}

fn prim_bit_and(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    bit(ev, args, pos, "bitAnd", |a, b| a & b)
}
fn prim_bit_or(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    bit(ev, args, pos, "bitOr", |a, b| a | b)
}
fn prim_bit_xor(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    bit(ev, args, pos, "bitXor", |a, b| a ^ b)
}

fn round(
    ev: &mut Evaluator,
    args: &[Value],
    pos: Pos,
    name: &'static str,
    f: fn(f64) -> f64,
) -> EvalResult<Value> {
    let v = ev.force(&args[0], pos)?;
    if let Value::Int(i) = v {
        return Ok(Value::Int(i));
    }
    let x = ev.force_float(&v, pos, Ctx::Arg(1, name))?;
    let r = f(x);
    if !(-9.223372036854776e18..9.223372036854776e18).contains(&r) {
        return Err(ev.error(
            format!(
                "NixFloat argument {} is not in the range of NixInt",
                crate::print::float(x)
            ),
            pos,
        ));
    }
    Ok(Value::Int(r as i64))
}

fn prim_ceil(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    round(ev, args, pos, "ceil", f64::ceil)
}
fn prim_floor(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    round(ev, args, pos, "floor", f64::floor)
}

macro_rules! type_test {
    ($name:ident, $pat:pat) => {
        fn $name(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
            let v = ev.force(&args[0], pos)?;
            Ok(Value::Bool(matches!(v, $pat)))
        }
    };
}

type_test!(prim_is_null, Value::Null);
type_test!(prim_is_bool, Value::Bool(_));
type_test!(prim_is_int, Value::Int(_));
type_test!(prim_is_float, Value::Float(_));
type_test!(prim_is_string, Value::String(_));
type_test!(prim_is_list, Value::List(_));
type_test!(prim_is_attrs, Value::Attrs(_));
type_test!(
    prim_is_function,
    Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_)
);
type_test!(prim_is_path, Value::Path(_));

fn prim_type_of(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let v = ev.force(&args[0], pos)?;
    Ok(Value::string(v.typ().type_of()))
}

fn prim_seq(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    ev.force(&args[0], pos)?;
    ev.force(&args[1], pos)
}

fn prim_deep_seq(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    ev.force_deep(&args[0], pos)?;
    ev.force(&args[1], pos)
}

fn prim_try_eval(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let (ok, value) = match ev.force(&args[0], pos) {
        Ok(v) => (true, v),
        Err(e) if e.is_catchable() => (false, Value::Bool(false)),
        Err(e) => return Err(e),
    };
    Ok(Value::attrs(Attrs::from_unsorted(vec![
        Attr {
            name: Sym::SUCCESS,
            pos: Pos::NONE,
            value: Value::Bool(ok),
        },
        Attr {
            name: Sym::VALUE,
            pos: Pos::NONE,
            value,
        },
    ])))
}

fn prim_trace(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let v = ev.force(&args[0], pos)?;
    let shown = match &v {
        Value::String(s) => s.to_str_lossy().into_owned(),
        other => crate::print::print_plain(other),
    };
    ev.emit(Diagnostic::Trace(shown, pos));
    ev.force(&args[1], pos)
}

fn prim_trace_verbose(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    ev.force(&args[1], pos)
}

fn prim_warn(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let msg = ev.force_string(
        &args[0],
        pos,
        "while evaluating the first argument; the message passed to builtins.warn",
    )?;
    ev.emit(Diagnostic::Warning {
        msg: msg.to_str_lossy().into_owned(),
        pos,
        from_expr: true,
    });
    ev.force(&args[1], pos)
}

fn prim_add_error_context(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    match ev.force(&args[1], pos) {
        Ok(v) => Ok(v),
        Err(e) => {
            let msg = ev
                .coerce_to_string(&args[0], pos, &mut Context::new(), CoerceOpts::default())
                .map_err(|e| {
                    e.frame(
                        pos,
                        "while evaluating the error message passed to builtins.addErrorContext",
                    )
                })?;
            Err(e.frame_always(Pos::NONE, String::from_utf8_lossy(&msg).into_owned()))
        }
    }
}

fn prim_break(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    ev.force(&args[0], pos)
}

fn prim_function_args(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let f = ev.force(&args[0], pos)?;
    match &f {
        Value::Lambda(c) => match &c.def.formals {
            None => Ok(Value::Attrs(ev.empty_attrs.clone())),
            Some(formals) => Ok(Value::attrs(Attrs::from_sorted(
                formals
                    .entries
                    .iter()
                    .map(|f| Attr {
                        name: f.name,
                        pos: f.pos,
                        value: Value::Bool(f.default.is_some()),
                    })
                    .collect(),
            ))),
        },
        Value::PrimOp(_) | Value::PrimOpApp(_) => Ok(Value::Attrs(ev.empty_attrs.clone())),
        _ => Err(ev.error("'functionArgs' requires a function", pos)),
    }
}

fn prim_get_env(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let name = ev.force_string_no_ctx(&args[0], pos, Ctx::Arg(1, "getEnv"))?;
    if ev.settings.pure {
        return Ok(Value::empty_string());
    }
    let v = ev.env_var_recorded(&name.to_str_lossy());
    Ok(Value::string(v.unwrap_or_default()))
}

fn prim_unsafe_get_attr_pos(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let name = ev.force_string_no_ctx(&args[0], pos, Ctx::Arg(1, "unsafeGetAttrPos"))?;
    let set = ev.force_attrs(&args[1], pos, Ctx::Arg(2, "unsafeGetAttrPos"))?;
    match set.get_attr(Sym::from_bytes(name.as_bytes())) {
        Some(a) => Ok(ev.pos_to_attrs(a.pos)),
        None => Ok(Value::Null),
    }
}
