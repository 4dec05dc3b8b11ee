//! `builtins.fromTOML`. Dates and times are rejected, as Nix does without its experimental
//! `parse-toml-timestamps` feature; out-of-range integers fail with Nix's (toml11's) message.

use super::primop;
use crate::error::EvalResult;
use crate::eval::Evaluator;
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[primop!("fromTOML", 1, prim_from_toml)];

fn convert(v: toml::Value) -> Result<Value, String> {
    Ok(match v {
        toml::Value::String(s) => {
            if s.contains('\0') {
                return Err(format!(
                    "error: input string '{}' cannot be represented as Nix string because it contains null bytes",
                    s.replace('\0', "␀")
                ));
            }
            Value::string(s)
        }
        toml::Value::Integer(i) => Value::Int(i),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(_) => return Err("Dates and times are not supported".into()),
        toml::Value::Array(items) => {
            Value::list(items.into_iter().map(convert).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(t) => table(t)?,
    })
}

fn table(t: toml::Table) -> Result<Value, String> {
    let mut out = Vec::with_capacity(t.len());
    for (k, v) in t {
        if k.contains('\0') {
            return Err(format!(
                "error: input string '{}' cannot be represented as Nix string because it contains null bytes",
                k.replace('\0', "␀")
            ));
        }
        out.push(Attr {
            name: Sym::new(&k),
            pos: Pos::NONE,
            value: convert(v)?,
        });
    }
    Ok(Value::attrs(Attrs::from_unsorted(out)))
}

/// Whether the document has a decimal integer literal outside the 64-bit range (the `toml`
/// crate reports these in its own words).
fn has_overflowing_integer(text: &str) -> bool {
    text.lines().any(|line| {
        let Some((_, rhs)) = line.split_once('=') else {
            return false;
        };
        let rhs = rhs.trim();
        let digits = rhs.trim_start_matches(['+', '-']).replace('_', "");
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && rhs.parse::<i64>().is_err()
    })
}

fn prim_from_toml(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let s = ev.force_string(
        &args[0],
        pos,
        "while evaluating the argument passed to builtins.fromTOML",
    )?;
    let text = s.to_str_lossy().into_owned();
    let parsed: Result<toml::Table, _> = text.parse();
    match parsed {
        Ok(t) => table(t).map_err(|m| ev.error(format!("while parsing TOML: {m}"), pos)),
        Err(e) => {
            let msg = if has_overflowing_integer(&text) {
                "[error] toml::parse_dec_integer: too large integer: current max digits = 2^63"
                    .to_string()
            } else {
                e.message().to_string()
            };
            Err(ev.error(format!("while parsing TOML: {msg}"), pos))
        }
    }
}
