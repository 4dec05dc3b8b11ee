//! Printing the IR back as Nix's `--parse` does (Nix's `Expr::show`): fully parenthesized,
//! attributes sorted, operators desugared the way Nix's parser desugars them. Also used for
//! the condition in "assertion '…' failed".

use std::collections::BTreeMap;

use crate::ir::*;
use crate::print::{float, identifier, literal_string};
use crate::symbol::Sym;
use crate::value::Value;

/// `e` as Nix's `--parse` prints it.
pub fn show_expr(e: &Expr) -> String {
    let mut s = String::new();
    show(e, &mut s);
    s
}

fn show_const(v: &Value, out: &mut String) {
    match v {
        Value::Int(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&float(*f)),
        Value::String(s) => out.push_str(&String::from_utf8_lossy(&literal_string(s.as_bytes()))),
        Value::Path(p) => out.push_str(p),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        _ => out.push_str("«value»"),
    }
}

fn show_path(path: &[AttrName], out: &mut String) {
    for (i, n) in path.iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        match n {
            AttrName::Static(s) => out.push_str(&identifier(s.as_str())),
            AttrName::Dynamic(e) => {
                out.push_str("\"${");
                show(e, out);
                out.push_str("}\"");
            }
        }
    }
}

fn show_bindings(
    attrs: &[AttrDef],
    dynamic: &[DynAttrDef],
    inherit_from: &[ExprRef],
    out: &mut String,
) {
    let mut sorted: Vec<&AttrDef> = attrs.iter().collect();
    sorted.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    let mut inherits: Vec<Sym> = Vec::new();
    let mut from: BTreeMap<u32, Vec<Sym>> = BTreeMap::new();
    for a in &sorted {
        match a.kind {
            AttrKind::Plain => {}
            AttrKind::Inherited => inherits.push(a.name),
            AttrKind::InheritedFrom => {
                if let Expr::Select(s) = a.value
                    && let Expr::InheritFrom { slot, .. } = s.expr
                {
                    from.entry(*slot).or_default().push(a.name);
                }
            }
        }
    }
    if !inherits.is_empty() {
        out.push_str("inherit");
        for s in inherits {
            out.push(' ');
            out.push_str(&identifier(s.as_str()));
        }
        out.push_str("; ");
    }
    for (slot, names) in from {
        out.push_str("inherit (");
        show(inherit_from[slot as usize], out);
        out.push(')');
        for s in names {
            out.push(' ');
            out.push_str(&identifier(s.as_str()));
        }
        out.push_str("; ");
    }
    for a in &sorted {
        if a.kind == AttrKind::Plain {
            out.push_str(&identifier(a.name.as_str()));
            out.push_str(" = ");
            show(a.value, out);
            out.push_str("; ");
        }
    }
    for d in dynamic {
        out.push_str("\"${");
        show(d.name, out);
        out.push_str("}\" = ");
        show(d.value, out);
        out.push_str("; ");
    }
}

fn show(e: &Expr, out: &mut String) {
    match e {
        Expr::Const(v) => show_const(v, out),
        Expr::Var(v) | Expr::Global(v) => out.push_str(&identifier(v.name.as_str())),
        Expr::WithVar(v) => out.push_str(&identifier(v.name.as_str())),
        Expr::InheritFrom { .. } => out.push_str("«inherit-from»"),
        Expr::Select(s) => {
            out.push('(');
            show(s.expr, out);
            out.push_str(").");
            show_path(&s.path, out);
            if let Some(d) = s.default {
                out.push_str(" or (");
                show(d, out);
                out.push(')');
            }
        }
        Expr::HasAttr { expr, path, .. } => {
            out.push_str("((");
            show(expr, out);
            out.push_str(") ? ");
            show_path(path, out);
            out.push(')');
        }
        Expr::Attrs(a) => {
            if a.rec {
                out.push_str("rec ");
            }
            out.push_str("{ ");
            show_bindings(&a.attrs, &a.dynamic, &a.inherit_from, out);
            out.push('}');
        }
        Expr::List(items) => {
            out.push_str("[ ");
            for i in items.iter() {
                out.push('(');
                show(i, out);
                out.push_str(") ");
            }
            out.push(']');
        }
        Expr::Lambda(l) => {
            out.push('(');
            if let Some(f) = &l.formals {
                out.push_str("{ ");
                let mut sorted: Vec<&Formal> = f.entries.iter().collect();
                sorted.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
                let mut first = true;
                for formal in sorted {
                    if !first {
                        out.push_str(", ");
                    }
                    first = false;
                    out.push_str(&identifier(formal.name.as_str()));
                    if let Some(d) = formal.default {
                        out.push_str(" ? ");
                        show(d, out);
                    }
                }
                if f.ellipsis {
                    if !first {
                        out.push_str(", ");
                    }
                    out.push_str("...");
                }
                out.push_str(" }");
                if l.arg.is_some() {
                    out.push_str(" @ ");
                }
            }
            if let Some((a, _)) = l.arg {
                out.push_str(&identifier(a.as_str()));
            }
            out.push_str(": ");
            show(l.body, out);
            out.push(')');
        }
        Expr::Call { func, args, .. } => {
            out.push('(');
            show(func, out);
            for a in args.iter() {
                out.push(' ');
                show(a, out);
            }
            out.push(')');
        }
        Expr::Let(l) => {
            out.push_str("(let ");
            show_bindings(&l.attrs, &[], &l.inherit_from, out);
            out.push_str("in ");
            show(l.body, out);
            out.push(')');
        }
        Expr::With {
            namespace, body, ..
        } => {
            out.push_str("(with ");
            show(namespace, out);
            out.push_str("; ");
            show(body, out);
            out.push(')');
        }
        Expr::If {
            cond, then, else_, ..
        } => {
            out.push_str("(if ");
            show(cond, out);
            out.push_str(" then ");
            show(then, out);
            out.push_str(" else ");
            show(else_, out);
            out.push(')');
        }
        Expr::Assert { cond, body, .. } => {
            out.push_str("assert ");
            show(cond, out);
            out.push_str("; ");
            show(body, out);
        }
        Expr::Not { expr, .. } => {
            out.push_str("(! ");
            show(expr, out);
            out.push(')');
        }
        Expr::BinOp { op, lhs, rhs, .. } => {
            out.push('(');
            show(lhs, out);
            out.push(' ');
            out.push_str(op.symbol());
            out.push(' ');
            show(rhs, out);
            out.push(')');
        }
        Expr::Arith { op, lhs, rhs, .. } => {
            let name = match op {
                ArithOp::Sub => "__sub",
                ArithOp::Mul => "__mul",
                ArithOp::Div => "__div",
                ArithOp::Less | ArithOp::LessEq => "__lessThan",
            };
            if *op == ArithOp::LessEq {
                out.push_str("(! ");
            }
            out.push('(');
            out.push_str(name);
            out.push(' ');
            show(lhs, out);
            out.push(' ');
            show(rhs, out);
            out.push(')');
            if *op == ArithOp::LessEq {
                out.push(')');
            }
        }
        Expr::ConcatStrings { parts, .. } => {
            out.push('(');
            for (i, (_, p)) in parts.iter().enumerate() {
                if i > 0 {
                    out.push_str(" + ");
                }
                show(p, out);
            }
            out.push(')');
        }
        Expr::CurPos(_) => out.push_str("__curPos"),
    }
}
