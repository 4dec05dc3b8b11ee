//! Builtins on string contexts: `hasContext`, `getContext`, `appendContext`,
//! `unsafeDiscardStringContext`, `unsafeDiscardOutputDependency`,
//! `addDrvOutputDependencies`.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::primop;
use crate::error::{ErrorExt, EvalResult};
use crate::eval::{CoerceOpts, Evaluator};
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[
    primop!("hasContext", 1, prim_has_context),
    primop!("getContext", 1, prim_get_context),
    primop!("appendContext", 2, prim_append_context),
    primop!(
        "unsafeDiscardStringContext",
        1,
        prim_unsafe_discard_string_context
    ),
    primop!(
        "unsafeDiscardOutputDependency",
        1,
        prim_unsafe_discard_output_dependency
    ),
    primop!(
        "addDrvOutputDependencies",
        1,
        prim_add_drv_output_dependencies
    ),
];

fn plain() -> CoerceOpts {
    CoerceOpts {
        coerce_more: false,
        copy_to_store: true,
        canonicalize_path: false,
    }
}

fn prim_has_context(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let s = ev.force_string(
        &args[0],
        pos,
        "while evaluating the argument passed to builtins.hasContext",
    )?;
    Ok(Value::Bool(s.has_context()))
}

fn prim_unsafe_discard_string_context(
    ev: &mut Evaluator,
    args: &[Value],
    pos: Pos,
) -> EvalResult<Value> {
    let s = ev
        .coerce_to_string(&args[0], pos, &mut Context::new(), plain())
        .map_err(|e| {
            e.frame(
                pos,
                "while evaluating the argument passed to builtins.unsafeDiscardStringContext",
            )
        })?;
    Ok(Value::string(s))
}

fn prim_unsafe_discard_output_dependency(
    ev: &mut Evaluator,
    args: &[Value],
    pos: Pos,
) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let s = ev
        .coerce_to_string(&args[0], pos, &mut ctx, plain())
        .map_err(|e| {
            e.frame(
                pos,
                "while evaluating the argument passed to builtins.unsafeDiscardOutputDependency",
            )
        })?;
    let ctx: Context = ctx
        .into_iter()
        .map(|e| match e {
            ContextElem::DrvDeep(p) => ContextElem::Opaque(p),
            other => other,
        })
        .collect();
    Ok(Value::String(Shared::new(NixStr::with_context(s, ctx))))
}

fn prim_add_drv_output_dependencies(
    ev: &mut Evaluator,
    args: &[Value],
    pos: Pos,
) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let s = ev
        .coerce_to_string(&args[0], pos, &mut ctx, plain())
        .map_err(|e| {
            e.frame(
                pos,
                "while evaluating the argument passed to builtins.addDrvOutputDependencies",
            )
        })?;
    if ctx.len() != 1 {
        return Err(ev.error(
            format!(
                "context of string '{}' must have exactly one element, but has {}",
                String::from_utf8_lossy(&s),
                ctx.len()
            ),
            pos,
        ));
    }
    let elem = ctx.into_iter().next().expect("one element");
    let new = match elem {
        ContextElem::Opaque(p) => {
            if !p.ends_with(".drv") {
                return Err(ev.error(format!("path '{p}' is not a derivation"), pos));
            }
            ContextElem::DrvDeep(p)
        }
        ContextElem::Built { output, .. } => {
            return Err(ev.error(
                format!(
                    "`addDrvOutputDependencies` can only act on derivations, not on a derivation output such as '{output}'"
                ),
                pos,
            ));
        }
        d @ ContextElem::DrvDeep(_) => d,
    };
    Ok(Value::String(Shared::new(NixStr::with_context(
        s,
        Context::from([new]),
    ))))
}

fn prim_get_context(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let s = ev.force_string(
        &args[0],
        pos,
        "while evaluating the argument passed to builtins.getContext",
    )?;
    #[derive(Default)]
    struct Info {
        path: bool,
        all_outputs: bool,
        outputs: Vec<Rc<str>>,
    }
    let mut infos: BTreeMap<Rc<str>, Info> = BTreeMap::new();
    if let Some(ctx) = s.context() {
        for e in ctx {
            match e {
                ContextElem::Opaque(p) => infos.entry(p.clone()).or_default().path = true,
                ContextElem::DrvDeep(p) => infos.entry(p.clone()).or_default().all_outputs = true,
                ContextElem::Built { drv, output } => infos
                    .entry(drv.clone())
                    .or_default()
                    .outputs
                    .push(output.clone()),
            }
        }
    }
    let mut out = Vec::new();
    for (path, info) in infos {
        let mut attrs = Vec::new();
        if info.path {
            attrs.push(Attr {
                name: Sym::PATH,
                pos: Pos::NONE,
                value: Value::Bool(true),
            });
        }
        if info.all_outputs {
            attrs.push(Attr {
                name: Sym::ALL_OUTPUTS,
                pos: Pos::NONE,
                value: Value::Bool(true),
            });
        }
        if !info.outputs.is_empty() {
            let mut outs = info.outputs;
            outs.sort();
            attrs.push(Attr {
                name: Sym::OUTPUTS,
                pos: Pos::NONE,
                value: Value::list(outs.iter().map(|o| Value::string(o.as_ref())).collect()),
            });
        }
        out.push(Attr {
            name: Sym::new(&path),
            pos: Pos::NONE,
            value: Value::attrs(Attrs::from_unsorted(attrs)),
        });
    }
    Ok(Value::attrs(Attrs::from_unsorted(out)))
}

fn prim_append_context(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let s = ev.force_string(
        &args[0],
        pos,
        "while evaluating the first argument passed to builtins.appendContext",
    )?;
    let mut ctx = s.context().cloned().unwrap_or_default();
    let add = ev.force_attrs(
        &args[1],
        pos,
        "while evaluating the second argument passed to builtins.appendContext",
    )?;
    let store_dir = ev.store.store_dir().as_str().to_string();
    for a in add.iter() {
        let name = a.name.as_str();
        let is_store_path = name
            .strip_prefix(&store_dir)
            .and_then(|r| r.strip_prefix('/'))
            .is_some_and(|r| !r.is_empty() && !r.contains('/'));
        if !is_store_path {
            return Err(ev.error(format!("context key '{name}' is not a store path"), pos));
        }
        let path: Rc<str> = Rc::from(name);
        let info = ev.force_attrs(
            &a.value,
            a.pos,
            "while evaluating the value of a string context",
        )?;
        if let Some(p) = info.get(Sym::PATH) {
            let p = p.clone();
            if ev.force_bool(
                &p,
                a.pos,
                "while evaluating the `path` attribute of a string context",
            )? {
                ctx.insert(ContextElem::Opaque(path.clone()));
            }
        }
        if let Some(p) = info.get(Sym::ALL_OUTPUTS) {
            let p = p.clone();
            if ev.force_bool(
                &p,
                a.pos,
                "while evaluating the `allOutputs` attribute of a string context",
            )? {
                if !name.ends_with(".drv") {
                    return Err(ev.error(
                        format!("tried to add all-outputs context of {name}, which is not a derivation, to a string"),
                        pos,
                    ));
                }
                ctx.insert(ContextElem::DrvDeep(path.clone()));
            }
        }
        if let Some(o) = info.get(Sym::OUTPUTS) {
            let o = o.clone();
            let outs = ev.force_list(
                &o,
                a.pos,
                "while evaluating the `outputs` attribute of a string context",
            )?;
            if !outs.is_empty() && !name.ends_with(".drv") {
                return Err(ev.error(
                    format!("tried to add derivation output context of {name}, which is not a derivation, to a string"),
                    pos,
                ));
            }
            for out in outs.iter() {
                let n = ev.force_string_no_ctx(
                    out,
                    a.pos,
                    "while evaluating an output name within a string context",
                )?;
                ctx.insert(ContextElem::Built {
                    drv: path.clone(),
                    output: Rc::from(n.to_str_lossy().as_ref()),
                });
            }
        }
    }
    Ok(Value::String(Shared::new(NixStr::with_context(
        s.as_bytes().to_vec(),
        ctx,
    ))))
}
