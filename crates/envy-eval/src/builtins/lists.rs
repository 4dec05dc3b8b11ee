//! Builtins on lists: `map`, `filter`, `foldl'`, `length`, `head`, `tail`, `elemAt`,
//! `elem`, `concatLists`, `concatMap`, `genList`, `sort` (stable), `partition`, `groupBy`,
//! `all`, `any`.

use super::primop;
use crate::error::EvalResult;
use crate::eval::{Ctx, Evaluator};
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[
    primop!("map", 2, prim_map),
    primop!("filter", 2, prim_filter),
    primop!("foldl'", 3, prim_foldl),
    primop!("length", 1, prim_length),
    primop!("head", 1, prim_head),
    primop!("tail", 1, prim_tail),
    primop!("elemAt", 2, prim_elem_at),
    primop!("elem", 2, prim_elem),
    primop!("concatLists", 1, prim_concat_lists),
    primop!("concatMap", 2, prim_concat_map),
    primop!("genList", 2, prim_gen_list),
    primop!("sort", 2, prim_sort),
    primop!("partition", 2, prim_partition),
    primop!("groupBy", 2, prim_group_by),
    primop!("all", 2, prim_all),
    primop!("any", 2, prim_any),
];

fn prim_map(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let list = ev.force_list(&args[1], pos, Ctx::Arg(2, "map"))?;
    if list.is_empty() {
        return Ok(Value::List(list));
    }
    let f = ev.force_function(&args[0], pos, Ctx::Arg(1, "map"))?;
    Ok(Value::list(
        list.iter()
            .map(|x| Thunk::apply(f.clone(), x.clone()))
            .collect(),
    ))
}

fn prim_filter(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let list = ev.force_list(&args[1], pos, Ctx::Arg(2, "filter"))?;
    if list.is_empty() {
        return Ok(Value::List(list));
    }
    let f = ev.force_function(&args[0], pos, Ctx::Arg(1, "filter"))?;
    let mut out = Vec::new();
    let mut same = true;
    for x in list.iter() {
        let r = ev.call_value(&f, std::slice::from_ref(x), pos)?;
        if ev.force_bool(
            &r,
            pos,
            "while evaluating the return value of the filtering function passed to builtins.filter",
        )? {
            out.push(x.clone());
        } else {
            same = false;
        }
    }
    if same {
        return Ok(Value::List(list));
    }
    Ok(Value::list(out))
}

fn prim_foldl(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let f = ev.force_function(&args[0], pos, Ctx::Arg(1, "foldlStrict"))?;
    let list = ev.force_list(&args[2], pos, Ctx::Arg(3, "foldlStrict"))?;
    if list.is_empty() {
        return ev.force(&args[1], pos);
    }
    let mut acc = args[1].clone();
    for x in list.iter() {
        acc = ev.call_value(&f, &[acc, x.clone()], pos)?;
    }
    ev.force(&acc, pos)
}

fn prim_length(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let list = ev.force_list(&args[0], pos, Ctx::Arg(1, "length"))?;
    Ok(Value::Int(list.len() as i64))
}

fn prim_head(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let list = ev.force_list(
        &args[0],
        pos,
        "while evaluating the first argument passed to 'builtins.head'",
    )?;
    match list.first() {
        Some(x) => ev.force(x, pos),
        None => Err(ev.error("'builtins.head' called on an empty list", pos)),
    }
}

fn prim_tail(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let list = ev.force_list(
        &args[0],
        pos,
        "while evaluating the first argument passed to 'builtins.tail'",
    )?;
    if list.is_empty() {
        return Err(ev.error("'builtins.tail' called on an empty list", pos));
    }
    Ok(Value::list(list[1..].to_vec()))
}

fn prim_elem_at(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let list = ev.force_list(
        &args[0],
        pos,
        "while evaluating the first argument passed to 'builtins.elemAt'",
    )?;
    let n = ev.force_int(
        &args[1],
        pos,
        "while evaluating the second argument passed to 'builtins.elemAt'",
    )?;
    if n < 0 || n as usize >= list.len() {
        return Err(ev.error(
            format!(
                "'builtins.elemAt' called with index {n} on a list of size {}",
                list.len()
            ),
            pos,
        ));
    }
    ev.force(&list[n as usize], pos)
}

fn prim_elem(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let list = ev.force_list(&args[1], pos, Ctx::Arg(2, "elem"))?;
    for x in list.iter() {
        if ev.values_equal(&args[0], x, pos)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn prim_concat_lists(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let lists = ev.force_list(&args[0], pos, Ctx::Arg(1, "concatLists"))?;
    let mut out = Vec::new();
    let mut parts = Vec::with_capacity(lists.len());
    for l in lists.iter() {
        let l = ev.force_list(
            l,
            pos,
            "while evaluating a value of the list passed to builtins.concatLists",
        )?;
        parts.push(l);
    }
    let nonempty: Vec<&List> = parts.iter().filter(|l| !l.is_empty()).collect();
    if nonempty.len() == 1 {
        return Ok(Value::List(nonempty[0].clone()));
    }
    for l in nonempty {
        out.extend(l.iter().cloned());
    }
    Ok(Value::list(out))
}

fn prim_concat_map(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let f = ev.force_function(&args[0], pos, Ctx::Arg(1, "concatMap"))?;
    let list = ev.force_list(&args[1], pos, Ctx::Arg(2, "concatMap"))?;
    let mut out = Vec::new();
    for x in list.iter() {
        let r = ev.call_value(&f, std::slice::from_ref(x), pos)?;
        let r = ev.force_list(
            &r,
            pos,
            "while evaluating the return value of the function passed to builtins.concatMap",
        )?;
        out.extend(r.iter().cloned());
    }
    Ok(Value::list(out))
}

fn prim_gen_list(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let n = ev.force_int(&args[1], pos, Ctx::Arg(2, "genList"))?;
    if n < 0 {
        return Err(ev.error(format!("cannot create list of size {n}"), pos));
    }
    let f = ev.force_function(&args[0], pos, Ctx::Arg(1, "genList"))?;
    // A size no memory can hold is Nix's "out of memory", not a capacity-overflow panic.
    let mut items = Vec::new();
    if usize::try_from(n).map_or(true, |n| items.try_reserve_exact(n).is_err()) {
        return Err(ev.error("out of memory", pos));
    }
    items.extend((0..n).map(|i| Thunk::apply(f.clone(), Value::Int(i))));
    Ok(Value::list(items))
}

fn prim_sort(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let list = ev.force_list(&args[1], pos, Ctx::Arg(2, "sort"))?;
    if list.is_empty() {
        return Ok(Value::List(list));
    }
    let f = ev.force_function(&args[0], pos, Ctx::Arg(1, "sort"))?;
    let mut items: Vec<Value> = Vec::with_capacity(list.len());
    for x in list.iter() {
        items.push(ev.force(x, pos)?);
    }
    // A stable merge sort that can stop on the first error the comparator raises.
    let mut err = None;
    let fast_less = matches!(&f, Value::PrimOp(op) if op.name == "lessThan");
    let mut cmp = |a: &Value, b: &Value| -> bool {
        if err.is_some() {
            return false;
        }
        let r = if fast_less {
            ev.less_than(a, b, pos)
        } else {
            ev.call_value(&f, &[a.clone(), b.clone()], pos).and_then(|r| {
                ev.force_bool(&r, pos, "while evaluating the return value of the sorting function passed to builtins.sort")
            })
        };
        match r {
            Ok(b) => b,
            Err(e) => {
                err = Some(e);
                false
            }
        }
    };
    let sorted = merge_sort(items, &mut cmp);
    if let Some(e) = err {
        return Err(e);
    }
    Ok(Value::list(sorted))
}

fn merge_sort(v: Vec<Value>, less: &mut dyn FnMut(&Value, &Value) -> bool) -> Vec<Value> {
    if v.len() <= 1 {
        return v;
    }
    if v.len() <= 16 {
        // Insertion sort: stable.
        let mut out: Vec<Value> = Vec::with_capacity(v.len());
        for x in v {
            let mut i = out.len();
            while i > 0 && less(&x, &out[i - 1]) {
                i -= 1;
            }
            out.insert(i, x);
        }
        return out;
    }
    let mut v = v;
    let right = v.split_off(v.len() / 2);
    let left = merge_sort(v, less);
    let right = merge_sort(right, less);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut l = left.into_iter().peekable();
    let mut r = right.into_iter().peekable();
    loop {
        match (l.peek(), r.peek()) {
            (Some(a), Some(b)) => {
                if less(b, a) {
                    out.push(r.next().expect("peeked"));
                } else {
                    out.push(l.next().expect("peeked"));
                }
            }
            (Some(_), None) => out.push(l.next().expect("peeked")),
            (None, Some(_)) => out.push(r.next().expect("peeked")),
            (None, None) => break,
        }
    }
    out
}

fn prim_partition(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let f = ev.force_function(&args[0], pos, Ctx::Arg(1, "partition"))?;
    let list = ev.force_list(&args[1], pos, Ctx::Arg(2, "partition"))?;
    let (mut right, mut wrong) = (Vec::new(), Vec::new());
    for x in list.iter() {
        let r = ev.call_value(&f, std::slice::from_ref(x), pos)?;
        if ev.force_bool(&r, pos, "while evaluating the return value of the partition function passed to builtins.partition")? {
            right.push(x.clone());
        } else {
            wrong.push(x.clone());
        }
    }
    Ok(Value::attrs(Attrs::from_unsorted(vec![
        Attr {
            name: Sym::RIGHT,
            pos: Pos::NONE,
            value: Value::list(right),
        },
        Attr {
            name: Sym::WRONG,
            pos: Pos::NONE,
            value: Value::list(wrong),
        },
    ])))
}

fn prim_group_by(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let f = ev.force_function(&args[0], pos, Ctx::Arg(1, "groupBy"))?;
    let list = ev.force_list(&args[1], pos, Ctx::Arg(2, "groupBy"))?;
    let mut groups: rustc_hash::FxHashMap<Sym, Vec<Value>> = rustc_hash::FxHashMap::default();
    for x in list.iter() {
        let r = ev.call_value(&f, std::slice::from_ref(x), pos)?;
        let name = ev.force_string_no_ctx(
            &r,
            pos,
            "while evaluating the return value of the grouping function passed to builtins.groupBy",
        )?;
        groups
            .entry(Sym::from_bytes(name.as_bytes()))
            .or_default()
            .push(x.clone());
    }
    Ok(Value::attrs(Attrs::from_unsorted(
        groups
            .into_iter()
            .map(|(name, v)| Attr {
                name,
                pos: Pos::NONE,
                value: Value::list(v),
            })
            .collect(),
    )))
}

fn any_all(
    ev: &mut Evaluator,
    args: &[Value],
    pos: Pos,
    name: &'static str,
    any: bool,
) -> EvalResult<Value> {
    let f = ev.force_function(&args[0], pos, Ctx::Arg(1, name))?;
    let list = ev.force_list(&args[1], pos, Ctx::Arg(2, name))?;
    let ctx = if any {
        "while evaluating the return value of the function passed to builtins.any"
    } else {
        "while evaluating the return value of the function passed to builtins.all"
    };
    for x in list.iter() {
        let r = ev.call_value(&f, std::slice::from_ref(x), pos)?;
        if ev.force_bool(&r, pos, ctx)? == any {
            return Ok(Value::Bool(any));
        }
    }
    Ok(Value::Bool(!any))
}

fn prim_all(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    any_all(ev, args, pos, "all", false)
}

fn prim_any(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    any_all(ev, args, pos, "any", true)
}
