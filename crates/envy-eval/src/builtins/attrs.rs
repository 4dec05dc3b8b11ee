//! Builtins on attribute sets: `attrNames`, `attrValues`, `getAttr`, `hasAttr`,
//! `removeAttrs`, `listToAttrs`, `intersectAttrs`, `catAttrs`, `mapAttrs`, `zipAttrsWith`,
//! `genericClosure`.

use rustc_hash::FxHashSet;

use super::primop;
use crate::error::{ErrorExt, EvalResult};
use crate::eval::{Ctx, Evaluator};
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[
    primop!("attrNames", 1, prim_attr_names),
    primop!("attrValues", 1, prim_attr_values),
    primop!("getAttr", 2, prim_get_attr),
    primop!("hasAttr", 2, prim_has_attr),
    primop!("removeAttrs", 2, prim_remove_attrs),
    primop!("listToAttrs", 1, prim_list_to_attrs),
    primop!("intersectAttrs", 2, prim_intersect_attrs),
    primop!("catAttrs", 2, prim_cat_attrs),
    primop!("mapAttrs", 2, prim_map_attrs),
    primop!("zipAttrsWith", 2, prim_zip_attrs_with),
    primop!("genericClosure", 1, prim_generic_closure),
];

fn prim_attr_names(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.force_attrs(
        &args[0],
        pos,
        "while evaluating the argument passed to builtins.attrNames",
    )?;
    Ok(Value::list(
        a.sorted_by_name()
            .into_iter()
            .map(|x| ev.sym_string(x.name))
            .collect(),
    ))
}

fn prim_attr_values(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.force_attrs(
        &args[0],
        pos,
        "while evaluating the argument passed to builtins.attrValues",
    )?;
    Ok(Value::list(
        a.sorted_by_name()
            .into_iter()
            .map(|x| x.value.clone())
            .collect(),
    ))
}

fn prim_get_attr(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let name = ev.force_string_no_ctx(&args[0], pos, Ctx::Arg(1, "getAttr"))?;
    let set = ev.force_attrs(&args[1], pos, Ctx::Arg(2, "getAttr"))?;
    let sym = Sym::from_bytes(name.as_bytes());
    match set.get_attr(sym) {
        Some(a) => {
            let (v, p) = (a.value.clone(), a.pos);
            ev.force(&v, p)
        }
        None => Err(ev.missing_attr(&set, sym, pos)),
    }
}

fn prim_has_attr(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let name = ev.force_string_no_ctx(&args[0], pos, Ctx::Arg(1, "hasAttr"))?;
    let set = ev.force_attrs(&args[1], pos, Ctx::Arg(2, "hasAttr"))?;
    Ok(Value::Bool(set.contains(Sym::from_bytes(name.as_bytes()))))
}

fn prim_remove_attrs(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let set = ev.force_attrs(&args[0], pos, Ctx::Arg(1, "removeAttrs"))?;
    let names = ev.force_list(&args[1], pos, Ctx::Arg(2, "removeAttrs"))?;
    let mut remove = FxHashSet::default();
    for n in names.iter() {
        let s = ev.force_string_no_ctx(
            n,
            pos,
            "while evaluating the values of the second argument passed to builtins.removeAttrs",
        )?;
        remove.insert(Sym::from_bytes(s.as_bytes()));
    }
    if remove.is_empty() || !set.iter().any(|a| remove.contains(&a.name)) {
        return Ok(Value::Attrs(set));
    }
    let kept: Vec<Attr> = set
        .iter()
        .filter(|a| !remove.contains(&a.name))
        .cloned()
        .collect();
    Ok(Value::attrs(Attrs::from_sorted(kept)))
}

fn prim_list_to_attrs(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let list = ev.force_list(
        &args[0],
        pos,
        "while evaluating the argument passed to builtins.listToAttrs",
    )?;
    let mut entries: Vec<Attr> = Vec::with_capacity(list.len());
    for item in list.iter() {
        let a = ev.force_attrs(
            item,
            pos,
            "while evaluating an element of the list passed to builtins.listToAttrs",
        )?;
        let name = match a.get_attr(Sym::NAME) {
            Some(n) => n.value.clone(),
            None => {
                return Err(ev
                    .missing_attr(&a, Sym::NAME, pos)
                    .frame(pos, "in a {name=...; value=...;} pair"));
            }
        };
        let name = ev.force_string_no_ctx(
            &name,
            pos,
            "while evaluating the `name` attribute of an element of the list passed to builtins.listToAttrs",
        )?;
        let value = match a.get_attr(Sym::VALUE) {
            Some(v) => v,
            None => {
                return Err(ev
                    .missing_attr(&a, Sym::VALUE, pos)
                    .frame(pos, "in a {name=...; value=...;} pair"));
            }
        };
        entries.push(Attr {
            name: Sym::from_bytes(name.as_bytes()),
            pos: value.pos,
            value: value.value.clone(),
        });
    }
    Ok(Value::attrs(Attrs::from_unsorted_first_wins(entries)))
}

fn prim_intersect_attrs(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.force_attrs(&args[0], pos, Ctx::Arg(1, "intersectAttrs"))?;
    let b = ev.force_attrs(&args[1], pos, Ctx::Arg(2, "intersectAttrs"))?;
    let kept: Vec<Attr> = b.iter().filter(|x| a.contains(x.name)).cloned().collect();
    Ok(Value::attrs(Attrs::from_sorted(kept)))
}

fn prim_cat_attrs(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let name = ev.force_string_no_ctx(&args[0], pos, Ctx::Arg(1, "catAttrs"))?;
    let sym = Sym::from_bytes(name.as_bytes());
    let list = ev.force_list(&args[1], pos, Ctx::Arg(2, "catAttrs"))?;
    let mut out = Vec::new();
    for item in list.iter() {
        let a = ev.force_attrs(item, pos, "while evaluating an element in the list passed as second argument to builtins.catAttrs")?;
        if let Some(v) = a.get(sym) {
            out.push(v.clone());
        }
    }
    Ok(Value::list(out))
}

fn prim_map_attrs(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let set = ev.force_attrs(&args[1], pos, Ctx::Arg(2, "mapAttrs"))?;
    let f = args[0].clone();
    let out: Vec<Attr> = set
        .iter()
        .map(|a| Attr {
            name: a.name,
            pos: a.pos,
            value: Thunk::apply2(f.clone(), ev.sym_string(a.name), a.value.clone()),
        })
        .collect();
    Ok(Value::attrs(Attrs::from_sorted(out)))
}

fn prim_zip_attrs_with(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    ev.force_function(&args[0], pos, Ctx::Arg(1, "zipAttrsWith"))?;
    let list = ev.force_list(&args[1], pos, Ctx::Arg(2, "zipAttrsWith"))?;
    let mut groups: rustc_hash::FxHashMap<Sym, Vec<Value>> = rustc_hash::FxHashMap::default();
    let mut order: Vec<Sym> = Vec::new();
    for item in list.iter() {
        let a = ev.force_attrs(item, pos, "while evaluating a value of the list passed as second argument to builtins.zipAttrsWith")?;
        for attr in a.iter() {
            groups
                .entry(attr.name)
                .or_insert_with(|| {
                    order.push(attr.name);
                    Vec::new()
                })
                .push(attr.value.clone());
        }
    }
    let f = args[0].clone();
    let out: Vec<Attr> = order
        .into_iter()
        .map(|name| {
            let vals = groups.remove(&name).unwrap_or_default();
            Attr {
                name,
                pos: Pos::NONE,
                value: Thunk::apply2(f.clone(), ev.sym_string(name), Value::list(vals)),
            }
        })
        .collect();
    Ok(Value::attrs(Attrs::from_unsorted(out)))
}

fn prim_generic_closure(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.force_attrs(
        &args[0],
        pos,
        "while evaluating the first argument passed to builtins.genericClosure",
    )?;
    let start = match a.get(Sym::START_SET) {
        Some(s) => s.clone(),
        None => {
            return Err(ev.missing_attr(&a, Sym::START_SET, pos).frame(
                pos,
                "in the attrset passed as argument to builtins.genericClosure",
            ));
        }
    };
    let start = ev.force_list(
        &start,
        pos,
        "while evaluating the 'startSet' attribute passed as argument to builtins.genericClosure",
    )?;
    let op = match a.get(Sym::OPERATOR) {
        Some(o) => o.clone(),
        None => {
            return Err(ev.missing_attr(&a, Sym::OPERATOR, pos).frame(
                pos,
                "in the attrset passed as argument to builtins.genericClosure",
            ));
        }
    };
    let op = ev.force_function(
        &op,
        pos,
        "while evaluating the 'operator' attribute passed as argument to builtins.genericClosure",
    )?;

    let mut work: std::collections::VecDeque<Value> = start.iter().cloned().collect();
    let mut done: Vec<Value> = Vec::new();
    let mut keys: Vec<Value> = Vec::new();
    while let Some(e) = work.pop_front() {
        let ea = ev.force_attrs(&e, pos, "while evaluating one of the elements generated by (or initially passed to) builtins.genericClosure")?;
        let key = match ea.get(Sym::KEY) {
            Some(k) => k.clone(),
            None => {
                return Err(ev
                    .missing_attr(&ea, Sym::KEY, pos)
                    .frame(pos, "in one of the attrsets generated by (or initially passed to) builtins.genericClosure"));
            }
        };
        let key = ev.force(&key, pos)?;
        if contains_key(ev, &keys, &key, pos)? {
            continue;
        }
        insert_key(ev, &mut keys, key, pos)?;
        done.push(Value::Attrs(ea.clone()));
        let next = ev.call_value(&op, &[Value::Attrs(ea)], pos)?;
        let next = ev.force_list(
            &next,
            pos,
            "while evaluating the return value of the `operator` passed to builtins.genericClosure",
        )?;
        work.extend(next.iter().cloned());
    }
    Ok(Value::list(done))
}

/// Keys are kept sorted with Nix's ordering (genericClosure uses a `std::set` with it).
fn contains_key(ev: &mut Evaluator, keys: &[Value], key: &Value, pos: Pos) -> EvalResult<bool> {
    let (mut lo, mut hi) = (0, keys.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if ev.less_than(key, &keys[mid], pos)? {
            hi = mid;
        } else if ev.less_than(&keys[mid], key, pos)? {
            lo = mid + 1;
        } else {
            return Ok(true);
        }
    }
    Ok(false)
}

fn insert_key(ev: &mut Evaluator, keys: &mut Vec<Value>, key: Value, pos: Pos) -> EvalResult<()> {
    let (mut lo, mut hi) = (0, keys.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if ev.less_than(&keys[mid], &key, pos)? {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    keys.insert(lo, key);
    Ok(())
}
