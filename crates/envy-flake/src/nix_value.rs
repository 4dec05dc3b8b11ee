//! Moving values between the evaluator and the flake layer: deeply evaluated values to JSON
//! (what `flake.nix` declares is data), attribute sets and store-path strings back.

use std::rc::Rc;

use envy_eval::error::ErrorExt;
use envy_eval::symbol::Sym;
use envy_eval::value::{Attr, Attrs, ContextElem, NixStr};
use envy_eval::{EvalError, EvalResult, Evaluator, Pos, Value};
use envy_fetch::TreeAttr;
use serde_json::{Map, Value as Json};

/// Force `v` deeply and turn it into JSON as `builtins.toJSON` does: paths become strings, a
/// set with `outPath` is that, functions are an error.
pub fn to_json(ev: &mut Evaluator, v: &Value, pos: Pos) -> EvalResult<Json> {
    let v = ev.force(v, pos)?;
    Ok(match &v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.to_str_lossy().into_owned()),
        Value::Path(p) => Json::String(p.to_string()),
        Value::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                out.push(to_json(ev, item, pos)?);
            }
            Json::Array(out)
        }
        Value::Attrs(a) if a.get(Sym::new("outPath")).is_some() => {
            let out_path = a.get(Sym::new("outPath")).cloned().unwrap_or(Value::Null);
            to_json(ev, &out_path, pos)?
        }
        Value::Attrs(a) => {
            let mut out = Map::new();
            for attr in a.sorted_by_name() {
                let j = to_json(ev, &attr.value, attr.pos)?;
                out.insert(attr.name.as_str().to_string(), j);
            }
            Json::Object(out)
        }
        _ => return Err(EvalError::eval("cannot convert a function to JSON").at(pos)),
    })
}

/// An attribute set from (name, value) pairs.
#[must_use]
pub fn attrs(entries: Vec<(&str, Value)>) -> Value {
    Value::attrs(Attrs::from_unsorted(
        entries
            .into_iter()
            .map(|(name, value)| Attr {
                name: Sym::new(name),
                pos: Pos::NONE,
                value,
            })
            .collect(),
    ))
}

/// A store path as a string whose context is that path.
#[must_use]
pub fn store_path_string(path: &str) -> Value {
    let mut ctx = envy_eval::value::Context::new();
    ctx.insert(ContextElem::Opaque(Rc::from(path)));
    Value::String(envy_eval::value::Shared::new(NixStr::with_context(
        path.as_bytes().to_vec(),
        ctx,
    )))
}

/// A fetched tree's attributes as a Nix attribute set.
#[must_use]
pub fn tree_attrs_value(attrs: Vec<(&'static str, TreeAttr)>) -> Value {
    self::attrs(
        attrs
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    TreeAttr::StorePath(p) => store_path_string(&p),
                    TreeAttr::String(s) => Value::string(s),
                    TreeAttr::Int(n) => Value::Int(i64::try_from(n).unwrap_or(i64::MAX)),
                    TreeAttr::Bool(b) => Value::Bool(b),
                };
                (k, v)
            })
            .collect(),
    )
}

/// An evaluation error as the text Nix prints (`error: …` and its location).
#[must_use]
pub fn render(e: &EvalError) -> String {
    e.render(false)
}
