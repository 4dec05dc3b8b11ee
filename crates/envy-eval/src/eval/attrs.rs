//! Attribute sets in the evaluator: building them from literals (`rec`, `inherit`,
//! dynamic names, `__overrides`), selecting (`e.a.b or d`) and testing (`e ? a.b`).

use crate::error::{ErrorExt, EvalResult};
use crate::eval::Evaluator;
use crate::ir::*;
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

/// Nix's `Suggestions::bestMatches(...).trim()`: up to 5 names within edit distance 2.
pub(crate) fn suggestions<'a>(
    candidates: impl Iterator<Item = &'a str>,
    query: &str,
) -> Vec<String> {
    // The distance is at least the difference in length: a name far longer or shorter than
    // the query cannot be within 2, and measuring it would cost the product of the lengths
    // (a 300 kB attribute name took seconds per candidate).
    let len = query.chars().count();
    let mut scored: Vec<(usize, String)> = candidates
        .filter(|c| c.chars().count().abs_diff(len) <= 2)
        .map(|c| (levenshtein(query, c), c.to_string()))
        .collect();
    scored.sort();
    scored.dedup();
    scored
        .into_iter()
        .filter(|(d, _)| *d <= 2)
        .take(5)
        .map(|(_, s)| s)
        .collect()
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

impl Evaluator {
    /// The symbol an attribute path element names.
    pub(crate) fn attr_sym(&mut self, name: &AttrName, env: &Env) -> EvalResult<Sym> {
        match name {
            AttrName::Static(s) => Ok(*s),
            AttrName::Dynamic(e) => {
                let pos = e.pos();
                let v = self.eval(e, env)?;
                let s = match &v {
                    Value::String(s) => s.clone(),
                    other => {
                        return Err(self
                            .type_error("a string", other)
                            .at(pos)
                            .frame(pos, "while evaluating an attribute name"));
                    }
                };
                if s.has_context() {
                    let v2 = v.clone();
                    self.force_string_no_ctx(&v2, pos, "while evaluating an attribute name")?;
                }
                Ok(Sym::from_bytes(s.as_bytes()))
            }
        }
    }

    fn show_attr_path(&mut self, path: &[AttrName], env: &Env) -> String {
        path.iter()
            .map(|n| match n {
                AttrName::Static(s) => s.as_str().to_string(),
                AttrName::Dynamic(e) => match self.eval(e, env) {
                    Ok(Value::String(s)) => s.to_str_lossy().into_owned(),
                    _ => "\"${...}\"".to_string(),
                },
            })
            .collect::<Vec<_>>()
            .join(".")
    }

    pub(crate) fn missing_attr(
        &self,
        attrs: &AttrSlice,
        name: Sym,
        pos: Pos,
    ) -> Box<crate::error::EvalError> {
        let mut e = self.error(format!("attribute '{}' missing", name.as_str()), pos);
        e.suggestions = suggestions(attrs.iter().map(|a| a.name.as_str()), name.as_str());
        e
    }

    pub(crate) fn eval_select(&mut self, s: &'static Select, env: &Env) -> EvalResult<Value> {
        let mut v = self.eval(s.expr, env)?;
        let mut def_pos = Pos::NONE;
        for name in s.path.iter() {
            let sym = self.attr_sym(name, env)?;
            match &v {
                Value::Attrs(a) => match a.get_attr(sym) {
                    Some(attr) => {
                        def_pos = attr.pos;
                        let next = attr.value.clone();
                        v = match self.force(&next, if def_pos.is_some() { def_pos } else { s.pos })
                        {
                            Ok(x) => x,
                            Err(e) => return Err(self.select_frame(e, def_pos, s, env)),
                        };
                    }
                    None => {
                        if let Some(d) = s.default {
                            return self.eval(d, env);
                        }
                        let e = self.missing_attr(a, sym, s.pos);
                        return Err(self.select_frame(e, def_pos, s, env));
                    }
                },
                other => {
                    if let Some(d) = s.default {
                        return self.eval(d, env);
                    }
                    let e = self
                        .type_error("a set", other)
                        .at(s.pos)
                        .frame(s.pos, "while selecting an attribute");
                    return Err(self.select_frame(e, def_pos, s, env));
                }
            }
        }
        Ok(v)
    }

    fn select_frame(
        &mut self,
        e: Box<crate::error::EvalError>,
        def_pos: Pos,
        s: &'static Select,
        env: &Env,
    ) -> Box<crate::error::EvalError> {
        if def_pos.is_some() && !is_internal(def_pos) {
            let shown = self.show_attr_path(&s.path, env);
            e.frame(def_pos, format!("while evaluating the attribute '{shown}'"))
        } else {
            e
        }
    }

    pub(crate) fn eval_has_attr(
        &mut self,
        expr: ExprRef,
        path: &'static [AttrName],
        env: &Env,
    ) -> EvalResult<Value> {
        let mut v = self.eval(expr, env)?;
        for (i, name) in path.iter().enumerate() {
            let sym = self.attr_sym(name, env)?;
            match &v {
                Value::Attrs(a) => match a.get_attr(sym) {
                    Some(attr) => {
                        if i + 1 == path.len() {
                            return Ok(Value::Bool(true));
                        }
                        let next = attr.value.clone();
                        v = self.force(&next, attr.pos)?;
                    }
                    None => return Ok(Value::Bool(false)),
                },
                _ => return Ok(Value::Bool(false)),
            }
        }
        Ok(Value::Bool(true))
    }

    pub(crate) fn eval_attrs(&mut self, def: &'static AttrsDef, env: &Env) -> EvalResult<Value> {
        if def.attrs.is_empty() && def.dynamic.is_empty() {
            return Ok(Value::Attrs(self.empty_attrs.clone()));
        }
        let mut entries: Vec<Attr> = Vec::with_capacity(def.attrs.len() + def.dynamic.len());
        let scope_env: Env = if def.rec {
            let rec_env = Env::new(Some(env.clone()), def.attrs.len());
            let inh_env = self.inherit_env(&def.inherit_from, &rec_env);
            for (i, a) in def.attrs.iter().enumerate() {
                let v = match a.kind {
                    AttrKind::Plain => self.lazy_rec(a.value, &rec_env),
                    AttrKind::Inherited => self.lazy(a.value, env),
                    AttrKind::InheritedFrom => {
                        Thunk::new(a.value, inh_env.clone().expect("has inherit-from env"))
                    }
                };
                rec_env.set(i, v.clone());
                entries.push(Attr {
                    name: a.name,
                    pos: a.pos,
                    value: v,
                });
            }
            rec_env
        } else {
            let inh_env = self.inherit_env(&def.inherit_from, env);
            for a in def.attrs.iter() {
                let v = match a.kind {
                    AttrKind::Plain | AttrKind::Inherited => self.lazy(a.value, env),
                    AttrKind::InheritedFrom => {
                        Thunk::new(a.value, inh_env.clone().expect("has inherit-from env"))
                    }
                };
                entries.push(Attr {
                    name: a.name,
                    pos: a.pos,
                    value: v,
                });
            }
            env.clone()
        };

        let mut attrs = Attrs::from_sorted(entries);

        // `__overrides` in a `rec` set replaces attributes, also for the other attributes
        // that refer to them.
        if def.rec
            && let Ok(i) = def.attrs.binary_search_by_key(&Sym::OVERRIDES, |a| a.name)
        {
            let ov = scope_env.get(i);
            let ov = self.force_attrs(
                &ov,
                def.attrs[i].pos,
                "while evaluating the `__overrides` attribute",
            )?;
            for o in ov.iter() {
                if let Ok(j) = def.attrs.binary_search_by_key(&o.name, |a| a.name) {
                    scope_env.set(j, o.value.clone());
                }
                attrs.insert(o.clone());
            }
        }

        for d in def.dynamic.iter() {
            let name = self.eval(d.name, &scope_env)?;
            let name = match name {
                Value::Null => continue,
                Value::String(s) => {
                    if s.has_context() {
                        let v = Value::String(s.clone());
                        self.force_string_no_ctx(
                            &v,
                            d.pos,
                            "while evaluating the name of a dynamic attribute",
                        )?;
                    }
                    Sym::from_bytes(s.as_bytes())
                }
                other => {
                    return Err(self
                        .type_error("a string", &other)
                        .at(d.pos)
                        .frame(d.pos, "while evaluating the name of a dynamic attribute"));
                }
            };
            if let Some(prev) = attrs.get_attr(name) {
                let prev_pos = prev
                    .pos
                    .resolve()
                    .map(|l| l.to_string())
                    .unwrap_or_default();
                return Err(self.error(
                    format!(
                        "dynamic attribute '{}' already defined at {prev_pos}",
                        name.as_str()
                    ),
                    d.pos,
                ));
            }
            let value = self.lazy(d.value, &scope_env);
            attrs.insert(Attr {
                name,
                pos: d.pos,
                value,
            });
        }
        Ok(Value::attrs(attrs))
    }

    fn inherit_env(&mut self, from: &'static [ExprRef], env: &Env) -> Option<Env> {
        if from.is_empty() {
            return None;
        }
        let vals: Vec<Value> = from.iter().map(|f| self.lazy_rec(f, env)).collect();
        Some(Env::with_values(Some(env.clone()), vals))
    }
}

/// Whether `pos` is in Nix code built into the evaluator (no frames for those).
pub(crate) fn is_internal(pos: Pos) -> bool {
    pos.source()
        .is_some_and(|s| matches!(s.origin, crate::source::Origin::Internal(_)))
}
