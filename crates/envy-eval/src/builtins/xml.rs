//! `builtins.toXML` and `--xml` output: Nix's XML rendering of values.

use std::collections::BTreeSet;

use super::primop;
use crate::error::EvalResult;
use crate::eval::Evaluator;
use crate::source::{Origin, Pos};
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[primop!("toXML", 1, prim_to_xml)];

struct Writer {
    out: Vec<u8>,
    depth: usize,
}

fn escape(out: &mut Vec<u8>, s: &[u8]) {
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"&quot;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'&' => out.extend_from_slice(b"&amp;"),
            b'\n' => out.extend_from_slice(b"&#xA;"),
            c => out.push(c),
        }
    }
}

impl Writer {
    fn indent(&mut self) {
        self.out.extend(std::iter::repeat_n(b' ', self.depth * 2));
    }

    fn attrs(&mut self, attrs: &[(&str, Vec<u8>)]) {
        let mut sorted: Vec<&(&str, Vec<u8>)> = attrs.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in sorted {
            self.out.push(b' ');
            self.out.extend_from_slice(k.as_bytes());
            self.out.extend_from_slice(b"=\"");
            escape(&mut self.out, v);
            self.out.push(b'"');
        }
    }

    fn empty(&mut self, name: &str, attrs: &[(&str, Vec<u8>)]) {
        self.indent();
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        self.attrs(attrs);
        self.out.extend_from_slice(b" />\n");
    }

    fn open(&mut self, name: &str, attrs: &[(&str, Vec<u8>)]) {
        self.indent();
        self.out.push(b'<');
        self.out.extend_from_slice(name.as_bytes());
        self.attrs(attrs);
        self.out.extend_from_slice(b">\n");
        self.depth += 1;
    }

    fn close(&mut self, name: &str) {
        self.depth -= 1;
        self.indent();
        self.out
            .extend_from_slice(format!("</{name}>\n").as_bytes());
    }
}

fn pos_attrs(pos: Pos) -> Vec<(&'static str, Vec<u8>)> {
    let Some(loc) = pos.resolve() else {
        return Vec::new();
    };
    let mut v = Vec::new();
    if let Origin::File(p) = &loc.source.origin {
        v.push(("path", p.to_string_lossy().as_bytes().to_vec()));
    }
    v.push(("line", loc.line.to_string().into_bytes()));
    v.push(("column", loc.column.to_string().into_bytes()));
    v
}

impl Evaluator {
    /// Nix's XML for a value (forcing it when `strict`), collecting string contexts.
    pub fn to_xml(
        &mut self,
        v: &Value,
        strict: bool,
        location: bool,
        ctx: &mut Context,
    ) -> EvalResult<Vec<u8>> {
        let mut w = Writer {
            out: b"<?xml version='1.0' encoding='utf-8'?>\n".to_vec(),
            depth: 0,
        };
        w.open("expr", &[]);
        let mut seen = BTreeSet::new();
        self.xml_value(v, strict, location, ctx, &mut w, &mut seen, Pos::NONE)?;
        w.close("expr");
        Ok(w.out)
    }

    #[allow(clippy::too_many_arguments)]
    fn xml_value(
        &mut self,
        v: &Value,
        strict: bool,
        location: bool,
        ctx: &mut Context,
        w: &mut Writer,
        seen: &mut BTreeSet<Vec<u8>>,
        pos: Pos,
    ) -> EvalResult<()> {
        let v = if strict {
            self.force(v, pos)?
        } else {
            v.peel()
        };
        match &v {
            Value::Int(i) => w.empty("int", &[("value", i.to_string().into_bytes())]),
            Value::Bool(b) => w.empty(
                "bool",
                &[(
                    "value",
                    if *b {
                        b"true".to_vec()
                    } else {
                        b"false".to_vec()
                    },
                )],
            ),
            Value::String(s) => {
                s.merge_context_into(ctx);
                w.empty("string", &[("value", s.as_bytes().to_vec())]);
            }
            Value::Path(p) => w.empty("path", &[("value", p.as_bytes().to_vec())]),
            Value::Null => w.empty("null", &[]),
            Value::Float(f) => w.empty("float", &[("value", crate::print::float(*f).into_bytes())]),
            Value::Attrs(a) => {
                if self.is_derivation(a)? {
                    let mut xattrs = Vec::new();
                    let mut drv_path = Vec::new();
                    for (key, sym) in [("drvPath", Sym::DRV_PATH), ("outPath", Sym::OUT_PATH)] {
                        if let Some(attr) = a.get_attr(sym) {
                            let (val, apos) = (attr.value.clone(), attr.pos);
                            let val = if strict {
                                self.force(&val, apos)?
                            } else {
                                val.peel()
                            };
                            if let Value::String(s) = val {
                                if key == "drvPath" {
                                    drv_path = s.as_bytes().to_vec();
                                }
                                xattrs.push((key, s.as_bytes().to_vec()));
                            }
                        }
                    }
                    w.open("derivation", &xattrs);
                    if !drv_path.is_empty() && seen.insert(drv_path) {
                        self.xml_attrs(a, strict, location, ctx, w, seen)?;
                    } else {
                        w.empty("repeated", &[]);
                    }
                    w.close("derivation");
                } else {
                    w.open("attrs", &[]);
                    self.xml_attrs(a, strict, location, ctx, w, seen)?;
                    w.close("attrs");
                }
            }
            Value::List(l) => {
                w.open("list", &[]);
                for item in l.iter() {
                    self.xml_value(item, strict, location, ctx, w, seen, pos)?;
                }
                w.close("list");
            }
            Value::Lambda(c) => {
                let def = c.def;
                let attrs = if location {
                    pos_attrs(def.pos)
                } else {
                    Vec::new()
                };
                w.open("function", &attrs);
                match &def.formals {
                    Some(f) => {
                        let mut pat = Vec::new();
                        if let Some((a, _)) = def.arg {
                            pat.push(("name", a.as_str().as_bytes().to_vec()));
                        }
                        if f.ellipsis {
                            pat.push(("ellipsis", b"1".to_vec()));
                        }
                        w.open("attrspat", &pat);
                        let mut names: Vec<&str> =
                            f.entries.iter().map(|e| e.name.as_str()).collect();
                        names.sort();
                        for n in names {
                            w.empty("attr", &[("name", n.as_bytes().to_vec())]);
                        }
                        w.close("attrspat");
                    }
                    None => {
                        let name = def.arg.map(|(a, _)| a.as_str()).unwrap_or("");
                        w.empty("varpat", &[("name", name.as_bytes().to_vec())]);
                    }
                }
                w.close("function");
            }
            _ => w.empty("unevaluated", &[]),
        }
        Ok(())
    }

    fn xml_attrs(
        &mut self,
        a: &AttrSet,
        strict: bool,
        location: bool,
        ctx: &mut Context,
        w: &mut Writer,
        seen: &mut BTreeSet<Vec<u8>>,
    ) -> EvalResult<()> {
        for attr in a.sorted_by_name() {
            let mut xattrs = vec![("name", attr.name.as_str().as_bytes().to_vec())];
            if location && attr.pos.is_some() {
                xattrs.extend(pos_attrs(attr.pos));
            }
            w.open("attr", &xattrs);
            let (val, apos) = (attr.value.clone(), attr.pos);
            self.xml_value(&val, strict, location, ctx, w, seen, apos)?;
            w.close("attr");
        }
        Ok(())
    }
}

fn prim_to_xml(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let _ = pos;
    let out = ev.to_xml(&args[0], true, false, &mut ctx)?;
    Ok(Value::String(Shared::new(NixStr::with_context(out, ctx))))
}
