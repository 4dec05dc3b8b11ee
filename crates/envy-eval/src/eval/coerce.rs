//! Coercion to strings (Nix's `coerceToString`): interpolation, `toString`, derivation
//! attributes. Paths may be copied to the store; sets go through `__toString` or `outPath`.

use std::rc::Rc;

use crate::error::{ErrorExt, EvalResult};
use crate::eval::Evaluator;
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

/// How far coercion goes.
#[derive(Clone, Copy, Debug, Default)]
pub struct CoerceOpts {
    /// Also numbers, Booleans, null and lists (`toString`).
    pub coerce_more: bool,
    /// Paths become store paths (interpolation into strings).
    pub copy_to_store: bool,
    /// Paths are canonicalized.
    pub canonicalize_path: bool,
}

/// C's `std::to_string(double)`: `%f`.
pub(crate) fn float_to_string(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf".into() } else { "inf".into() };
    }
    format!("{f:.6}")
}

impl Evaluator {
    /// Coerce `v` to a string, adding its context to `context`.
    pub fn coerce_to_string(
        &mut self,
        v: &Value,
        pos: Pos,
        context: &mut Context,
        opts: CoerceOpts,
    ) -> EvalResult<Vec<u8>> {
        let mut out = Vec::new();
        self.coerce_into(v, pos, context, opts, &mut out)?;
        Ok(out)
    }

    fn coerce_into(
        &mut self,
        v: &Value,
        pos: Pos,
        context: &mut Context,
        opts: CoerceOpts,
        out: &mut Vec<u8>,
    ) -> EvalResult<()> {
        let v = self.force(v, pos)?;
        match &v {
            Value::String(s) => {
                s.merge_context_into(context);
                out.extend_from_slice(s.as_bytes());
                Ok(())
            }
            Value::Path(p) => {
                if opts.copy_to_store {
                    let sp = self.copy_path_to_store(p, pos)?;
                    context.insert(ContextElem::Opaque(Rc::from(sp.as_str())));
                    out.extend_from_slice(sp.as_bytes());
                } else {
                    out.extend_from_slice(p.as_bytes());
                }
                Ok(())
            }
            Value::Attrs(a) => {
                if let Some(f) = a.get_attr(Sym::TO_STRING) {
                    let (f, fpos) = (f.value.clone(), f.pos);
                    let r = self.call_value(&f, std::slice::from_ref(&v), pos)?;
                    let r = self.force(&r, pos)?;
                    return self
                        .coerce_into(
                            &r,
                            pos,
                            context,
                            CoerceOpts {
                                canonicalize_path: false,
                                ..opts
                            },
                            out,
                        )
                        .map_err(|e| {
                            e.frame(fpos, "while using the result of the `__toString` attribute")
                        });
                }
                if let Some(o) = a.get_attr(Sym::OUT_PATH) {
                    let (o, opos) = (o.value.clone(), o.pos);
                    return self
                        .coerce_into(&o, pos, context, opts, out)
                        .map_err(|e| e.frame(opos, "while evaluating the `outPath` attribute"));
                }
                Err(self.cannot_coerce(&v, pos))
            }
            Value::Bool(b) if opts.coerce_more => {
                if *b {
                    out.push(b'1');
                }
                Ok(())
            }
            Value::Int(i) if opts.coerce_more => {
                out.extend_from_slice(i.to_string().as_bytes());
                Ok(())
            }
            Value::Float(f) if opts.coerce_more => {
                out.extend_from_slice(float_to_string(*f).as_bytes());
                Ok(())
            }
            Value::Null if opts.coerce_more => Ok(()),
            Value::List(l) if opts.coerce_more => {
                let n = l.len();
                for (i, item) in l.iter().enumerate() {
                    self.coerce_into(item, pos, context, opts, out)
                        .map_err(|e| e.frame(pos, "while evaluating one element of the list"))?;
                    if i + 1 < n {
                        let item_empty_list =
                            matches!(item.peel(), Value::List(ref x) if x.is_empty());
                        if !item_empty_list {
                            out.push(b' ');
                        }
                    }
                }
                Ok(())
            }
            _ => Err(self.cannot_coerce(&v, pos)),
        }
    }

    pub(crate) fn cannot_coerce(&mut self, v: &Value, pos: Pos) -> Box<crate::error::EvalError> {
        let shown = crate::print::print_for_error(self, v);
        let what = match v.typ() {
            crate::value::Type::Null => "null".to_string(),
            t => t.showtype().to_string(),
        };
        self.error(format!("cannot coerce {what} to a string: {shown}"), pos)
    }

    /// Coerce to a string and return a string value with context (`toString`).
    pub fn coerce_to_string_value(
        &mut self,
        v: &Value,
        pos: Pos,
        opts: CoerceOpts,
    ) -> EvalResult<Value> {
        let mut ctx = Context::new();
        let bytes = self.coerce_to_string(v, pos, &mut ctx, opts)?;
        Ok(Value::String(Shared::new(NixStr::with_context(bytes, ctx))))
    }

    /// Coerce to a path string (Nix's `coerceToPath`): must be absolute.
    pub fn coerce_to_path(&mut self, v: &Value, pos: Pos, ctx_msg: &str) -> EvalResult<String> {
        let mut ctx = Context::new();
        let bytes = self
            .coerce_to_string(
                v,
                pos,
                &mut ctx,
                CoerceOpts {
                    coerce_more: false,
                    copy_to_store: false,
                    canonicalize_path: true,
                },
            )
            .map_err(|e| e.frame(pos, ctx_msg))?;
        let s = String::from_utf8_lossy(&bytes).into_owned();
        if !s.starts_with('/') {
            return Err(self
                .error(
                    format!("string '{s}' doesn't represent an absolute path"),
                    pos,
                )
                .frame(pos, ctx_msg));
        }
        Ok(crate::lower::strings::canon_path(&s))
    }
}
