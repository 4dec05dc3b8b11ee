//! `derivationStrict` (what `derivation` calls) and `placeholder`. The hashing — output
//! paths, hash modulo, `.drv` paths — is `envy-store`'s; this file turns the attribute set
//! into a `Derivation` the way Nix does (coercions, special attributes, outputs, structured
//! attributes, string contexts into inputs) and builds the result set.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use envy_store::{
    ContentAddress, ContentAddressMethod, Derivation, DerivationOutput, FileIngestionMethod, Hash,
    HashAlgo, OutputSet, StorePath,
};

use super::primop;
use crate::error::{ErrorExt, EvalError, EvalResult};
use crate::eval::{CoerceOpts, Diagnostic, Evaluator};
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[
    primop!("derivationStrict", 1, prim_derivation_strict),
    primop!("placeholder", 1, prim_placeholder),
];

fn prim_placeholder(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let out = ev.force_string_no_ctx(
        &args[0],
        pos,
        "while evaluating the first argument passed to builtins.placeholder",
    )?;
    Ok(Value::string(envy_store::hash_placeholder(
        &out.to_str_lossy(),
    )))
}

const OUTPUT_CHECKS: &[&str] = &[
    "allowedReferences",
    "allowedRequisites",
    "disallowedReferences",
    "disallowedRequisites",
    "maxClosureSize",
    "maxSize",
];

struct Builder {
    drv: Derivation,
    context: Context,
    output_hash: Option<String>,
    output_hash_algo: Option<String>,
    hash_mode: Option<ContentAddressMethod>,
    outputs: Option<Vec<String>>,
    content_addressed: bool,
    impure: bool,
}

fn coerce_opts() -> CoerceOpts {
    CoerceOpts {
        coerce_more: true,
        copy_to_store: true,
        canonicalize_path: false,
    }
}

impl Evaluator {
    fn drv_outputs(&self, names: Vec<String>, pos: Pos) -> EvalResult<Vec<String>> {
        let mut seen = BTreeSet::new();
        for n in &names {
            if n == "drv" || n == "drvPath" || envy_store::store_path::validate_name(n).is_err() {
                return Err(self.error(format!("invalid derivation output name '{n}'"), pos));
            }
            if !seen.insert(n.clone()) {
                return Err(self.error(format!("duplicate derivation output '{n}'"), pos));
            }
        }
        if names.is_empty() {
            return Err(self.error("derivation cannot have an empty set of outputs", pos));
        }
        Ok(names)
    }

    fn handle_hash_mode(&self, s: &str, pos: Pos) -> EvalResult<ContentAddressMethod> {
        match s {
            "recursive" | "nar" => Ok(ContentAddressMethod::Fixed(FileIngestionMethod::Recursive)),
            "flat" => Ok(ContentAddressMethod::Fixed(FileIngestionMethod::Flat)),
            "text" => Ok(ContentAddressMethod::Text),
            other => Err(self.error(
                format!("invalid value '{other}' for 'outputHashMode' attribute"),
                pos,
            )),
        }
    }

    /// `derivationStrict`: the `.drv` path and output paths of the derivation `attrs`
    /// describes (written to the store, or only computed with the dummy store).
    pub fn derivation_strict(&mut self, attrs: &AttrSet, pos: Pos) -> EvalResult<Value> {
        let Some(name_attr) = attrs.get_attr(Sym::NAME) else {
            return Err(self.missing_attr(attrs, Sym::NAME, pos).frame(
                Pos::NONE,
                "in the attrset passed as argument to builtins.derivationStrict",
            ));
        };
        let (name_v, name_pos) = (name_attr.value.clone(), name_attr.pos);
        let name = self
            .force_string_no_ctx(
                &name_v,
                name_pos,
                "while evaluating the `name` attribute passed to builtins.derivationStrict",
            )?
            .to_str_lossy()
            .into_owned();
        let drv_frame = |e: Box<EvalError>| {
            let loc = name_pos
                .resolve()
                .map(|l| l.to_string())
                .unwrap_or_default();
            e.frame_always(
                Pos::NONE,
                format!("while evaluating derivation '{name}'\n  whose name attribute is located at {loc}"),
            )
        };
        self.derivation_inner(attrs, &name, pos).map_err(drv_frame)
    }

    fn derivation_inner(&mut self, attrs: &AttrSet, drv_name: &str, pos: Pos) -> EvalResult<Value> {
        if let Err(e) = envy_store::store_path::validate_name(drv_name) {
            return Err(self.error(
                format!(
                    "invalid derivation name: {}. Please pass a different 'name'.",
                    e.nix_message()
                ),
                pos,
            ));
        }
        if drv_name.ends_with(".drv") {
            return Err(self.error("derivation names are not allowed to end in '.drv'", pos));
        }
        let structured = match attrs.get_attr(Sym::STRUCTURED_ATTRS) {
            Some(a) => {
                let (v, p) = (a.value.clone(), a.pos);
                self.force_bool(&v, p, "while evaluating the `__structuredAttrs` attribute passed to builtins.derivationStrict")?
            }
            None => false,
        };
        let ignore_nulls = match attrs.get_attr(Sym::IGNORE_NULLS) {
            Some(a) => {
                let (v, p) = (a.value.clone(), a.pos);
                self.force_bool(&v, p, "while evaluating the `__ignoreNulls` attribute passed to builtins.derivationStrict")?
            }
            None => false,
        };
        let mut b = Builder {
            drv: Derivation {
                name: drv_name.to_string(),
                ..Default::default()
            },
            context: Context::new(),
            output_hash: None,
            output_hash_algo: None,
            hash_mode: None,
            outputs: None,
            content_addressed: false,
            impure: false,
        };
        let mut json: Vec<(String, Vec<u8>)> = Vec::new();
        let sorted: Vec<Attr> = attrs.sorted_by_name().into_iter().cloned().collect();
        for attr in sorted {
            let key = attr.name.as_str();
            if key == "__ignoreNulls" {
                continue;
            }
            let apos = attr.pos;
            let frame = |e: Box<EvalError>| {
                e.frame(
                    apos,
                    format!("while evaluating attribute '{key}' of derivation '{drv_name}'"),
                )
            };
            let r: EvalResult<()> = (|| {
                if ignore_nulls {
                    let v = self.force(&attr.value, apos)?;
                    if matches!(v, Value::Null) {
                        return Ok(());
                    }
                }
                match key {
                    "__contentAddressed" => {
                        b.content_addressed = self.force_bool(
                            &attr.value,
                            apos,
                            "while evaluating the attribute '__contentAddressed'",
                        )?;
                        if structured {
                            return Ok(());
                        }
                    }
                    "__impure" => {
                        b.impure = self.force_bool(
                            &attr.value,
                            apos,
                            "while evaluating the attribute '__impure'",
                        )?;
                        if structured {
                            return Ok(());
                        }
                    }
                    _ => {}
                }
                if key == "args" {
                    let list = self.force_list(
                        &attr.value,
                        apos,
                        "while evaluating the `args` attribute passed to builtins.derivationStrict",
                    )?;
                    for item in list.iter() {
                        let s = self
                            .coerce_to_string(item, apos, &mut b.context, coerce_opts())
                            .map_err(|e| {
                                e.frame(apos, "while evaluating an element of the argument list")
                            })?;
                        b.drv.args.push(s);
                    }
                    return Ok(());
                }
                if structured {
                    if key == "__structuredAttrs" {
                        return Ok(());
                    }
                    let mut out = self.to_json(&attr.value, apos, &mut b.context, true)?;
                    match key {
                        "builder" | "system" | "outputHash" | "outputHashAlgo"
                        | "outputHashMode" => {
                            let s = self.force_string(
                                &attr.value,
                                apos,
                                "while evaluating a derivation attribute",
                            )?;
                            self.special_attr(&mut b, key, s.as_bytes().to_vec(), apos)?;
                        }
                        "outputs" => {
                            let list = self.force_list(
                                &attr.value,
                                apos,
                                "while evaluating the `outputs` attribute",
                            )?;
                            let mut names = Vec::new();
                            for o in list.iter() {
                                let s = self.force_string_no_ctx(
                                    o,
                                    apos,
                                    "while evaluating an output name",
                                )?;
                                names.push(s.to_str_lossy().into_owned());
                            }
                            b.outputs = Some(self.drv_outputs(names, apos)?);
                        }
                        k if OUTPUT_CHECKS.contains(&k) => {
                            let msg = format!(
                                "'structuredAttrs' disables the effect of the derivation attribute '{k}'; use 'outputChecks.<output>.{k}' instead"
                            );
                            self.emit_warning_with_frame(
                                msg,
                                apos,
                                format!("while evaluating derivation '{drv_name}'"),
                            );
                        }
                        _ => {}
                    }
                    json.push((key.to_string(), std::mem::take(&mut out)));
                    return Ok(());
                }
                let s = self.coerce_to_string(&attr.value, apos, &mut b.context, coerce_opts())?;
                if key == "outputs" {
                    let text = String::from_utf8_lossy(&s).into_owned();
                    let names: Vec<String> =
                        text.split_ascii_whitespace().map(str::to_string).collect();
                    b.outputs = Some(self.drv_outputs(names, apos)?);
                } else {
                    self.special_attr(&mut b, key, s.clone(), apos)?;
                }
                b.drv.env.insert(key.as_bytes().to_vec(), s);
                Ok(())
            })();
            r.map_err(frame)?;
        }
        if structured {
            let mut obj = b"{".to_vec();
            for (i, (k, v)) in json.iter().enumerate() {
                if i > 0 {
                    obj.push(b',');
                }
                obj.extend_from_slice(&crate::builtins::json_key(k));
                obj.push(b':');
                obj.extend_from_slice(v);
            }
            obj.push(b'}');
            b.drv.env.insert(b"__json".to_vec(), obj);
        }
        self.finish_derivation(b, pos)
    }

    fn emit_warning_with_frame(&mut self, msg: String, pos: Pos, frame: String) {
        let rendered = crate::error::render(
            "warning",
            &msg,
            pos,
            &[crate::error::Frame {
                pos: Pos::NONE,
                msg: frame,
                always: true,
            }],
            &[],
            true,
        );
        self.emit(Diagnostic::Rendered(rendered));
    }

    fn special_attr(&mut self, b: &mut Builder, key: &str, s: Vec<u8>, pos: Pos) -> EvalResult<()> {
        match key {
            "builder" => b.drv.builder = s,
            "system" => b.drv.platform = s,
            "outputHash" => b.output_hash = Some(String::from_utf8_lossy(&s).into_owned()),
            "outputHashAlgo" => b.output_hash_algo = Some(String::from_utf8_lossy(&s).into_owned()),
            "outputHashMode" => {
                b.hash_mode = Some(self.handle_hash_mode(&String::from_utf8_lossy(&s), pos)?)
            }
            _ => {}
        }
        Ok(())
    }

    fn finish_derivation(&mut self, mut b: Builder, pos: Pos) -> EvalResult<Value> {
        let dir = self.store.store_dir().clone();
        let drv_name = b.drv.name.clone();
        // String contexts become inputs.
        let context = std::mem::take(&mut b.context);
        for e in &context {
            match e {
                ContextElem::Opaque(p) => {
                    let sp = dir
                        .parse(p)
                        .map_err(|err| self.error(format!("{err}"), pos))?;
                    b.drv.input_srcs.insert(sp);
                }
                ContextElem::Built { drv, output } => {
                    let sp = dir
                        .parse(drv)
                        .map_err(|err| self.error(format!("{err}"), pos))?;
                    b.drv
                        .input_drvs
                        .entry(sp)
                        .or_default()
                        .outputs
                        .insert(output.to_string());
                }
                ContextElem::DrvDeep(p) => {
                    let sp = dir
                        .parse(p)
                        .map_err(|err| self.error(format!("{err}"), pos))?;
                    for (path, outputs) in self.drv_closure(&sp) {
                        b.drv.input_srcs.insert(path.clone());
                        if let Some(outs) = outputs {
                            b.drv.input_drvs.insert(path, OutputSet::of(outs));
                        }
                    }
                }
            }
        }
        if b.drv.builder.is_empty() {
            return Err(self.error("required attribute 'builder' missing", pos));
        }
        if b.drv.platform.is_empty() {
            return Err(self.error("required attribute 'system' missing", pos));
        }
        let outputs = b.outputs.take().unwrap_or_else(|| vec!["out".to_string()]);
        if let Some(hash) = b.output_hash.take() {
            if outputs != ["out"] {
                return Err(self.error(
                    "multiple outputs are not supported in fixed-output derivations",
                    pos,
                ));
            }
            let algo = match &b.output_hash_algo {
                Some(a) if !a.is_empty() => Some(
                    HashAlgo::parse(a)
                        .map_err(|_| self.error(format!("unknown hash algorithm '{a}'"), pos))?,
                ),
                _ => None,
            };
            let h = if hash.is_empty() {
                let algo = algo.unwrap_or(HashAlgo::Sha256);
                let zero = Hash::from_bytes(algo, &vec![0u8; algo.size()]).expect("size");
                self.emit(Diagnostic::Warning {
                    msg: format!("found empty hash, assuming '{}'", zero.to_sri()),
                    pos,
                    from_expr: false,
                });
                zero
            } else {
                Hash::parse_any(&hash, algo).map_err(|e| self.error(hash_error_text(&e), pos))?
            };
            let method = b
                .hash_mode
                .unwrap_or(ContentAddressMethod::Fixed(FileIngestionMethod::Flat));
            b.drv.outputs.insert(
                "out".into(),
                DerivationOutput::CaFixed(ContentAddress { method, hash: h }),
            );
        } else if b.content_addressed || b.impure {
            let algo = match &b.output_hash_algo {
                Some(a) => HashAlgo::parse(a)
                    .map_err(|_| self.error(format!("unknown hash algorithm '{a}'"), pos))?,
                None => HashAlgo::Sha256,
            };
            let method = b
                .hash_mode
                .unwrap_or(ContentAddressMethod::Fixed(FileIngestionMethod::Recursive));
            for o in &outputs {
                let out = if b.impure {
                    DerivationOutput::Impure { method, algo }
                } else {
                    DerivationOutput::CaFloating { method, algo }
                };
                b.drv.outputs.insert(o.clone(), out);
            }
        } else {
            for o in &outputs {
                b.drv.outputs.insert(o.clone(), DerivationOutput::Deferred);
            }
        }
        let store = &*self.store;
        let mut load = |p: &StorePath| -> Result<Derivation, envy_store::DerivationError> {
            store
                .read_derivation(p)
                .map_err(|e| envy_store::DerivationError::Load {
                    drv: p.to_string(),
                    source: Box::new(e),
                })
        };
        let drv_path = b
            .drv
            .finalize(&dir, &mut self.drv_hashes, &mut load)
            .map_err(|e| self.error(e.to_string(), pos))?;
        self.store
            .add_derivation(&drv_path, &b.drv)
            .map_err(|e| self.error(e.to_string(), pos))?;
        let drv_str: Rc<str> = Rc::from(dir.print(&drv_path).as_str());
        let mut out = vec![Attr {
            name: Sym::DRV_PATH,
            pos: Pos::NONE,
            value: Value::String(Shared::new(NixStr::with_context(
                drv_str.as_bytes().to_vec(),
                Context::from([ContextElem::DrvDeep(drv_str.clone())]),
            ))),
        }];
        for (o, d) in &b.drv.outputs {
            let path = match d
                .path(&dir, &drv_name, o)
                .map_err(|e| self.error(e.to_string(), pos))?
            {
                Some(p) => dir.print(&p),
                None => envy_store::downstream_placeholder(&drv_path, o),
            };
            let ctx = Context::from([ContextElem::Built {
                drv: drv_str.clone(),
                output: Rc::from(o.as_str()),
            }]);
            out.push(Attr {
                name: Sym::new(o),
                pos: Pos::NONE,
                value: Value::String(Shared::new(NixStr::with_context(path.into_bytes(), ctx))),
            });
        }
        Ok(Value::attrs(Attrs::from_unsorted(out)))
    }

    /// The closure of a derivation as far as this evaluation knows it: every store path it
    /// refers to, with the output names of those that are derivations.
    fn drv_closure(&self, drv: &StorePath) -> BTreeMap<StorePath, Option<Vec<String>>> {
        let mut out = BTreeMap::new();
        let mut todo = vec![drv.clone()];
        while let Some(p) = todo.pop() {
            if out.contains_key(&p) {
                continue;
            }
            match self.store.read_derivation(&p) {
                Ok(d) => {
                    out.insert(p.clone(), Some(d.outputs.keys().cloned().collect()));
                    todo.extend(d.input_srcs.iter().cloned());
                    todo.extend(d.input_drvs.keys().cloned());
                }
                Err(_) => {
                    out.insert(p, None);
                }
            }
        }
        out
    }
}

fn hash_error_text(e: &envy_store::hash::HashError) -> String {
    e.to_string().replace('`', "'")
}

fn prim_derivation_strict(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let attrs = ev.force_attrs(
        &args[0],
        pos,
        "while evaluating the argument passed to builtins.derivationStrict",
    )?;
    ev.derivation_strict(&attrs, pos)
}
