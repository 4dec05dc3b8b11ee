//! Builtins that read files or the store: `import`, `scopedImport`, `readFile`, `readDir`,
//! `readFileType`, `pathExists`, `findFile` (`<…>` paths), `toPath`, `storePath`, `path`,
//! `filterSource`, `toFile`; and copying paths to the store.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use envy_store::nar::NarWriter;
use envy_store::{FileIngestionMethod, Hash, StorePath};

use super::primop;
use crate::error::{ErrorExt, EvalResult};
use crate::eval::{CoerceOpts, Ctx, Evaluator};
use crate::io::FileType;
use crate::source::{Origin, Pos};
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[
    primop!("import", 1, prim_import),
    primop!("scopedImport", 2, prim_scoped_import),
    primop!("readFile", 1, prim_read_file),
    primop!("readDir", 1, prim_read_dir),
    primop!("readFileType", 1, prim_read_file_type),
    primop!("pathExists", 1, prim_path_exists),
    primop!("findFile", 2, prim_find_file),
    primop!("toPath", 1, prim_to_path),
    primop!("storePath", 1, prim_store_path),
    primop!("path", 1, prim_path),
    primop!("filterSource", 2, prim_filter_source),
    primop!("toFile", 2, prim_to_file),
];

fn not_found(path: &str) -> String {
    format!("path '{path}' does not exist")
}

impl Evaluator {
    /// Nix's `realisePath`: coerce to an absolute path; store paths in the context are
    /// built first when a realiser is available.
    pub(crate) fn realise_path(&mut self, v: &Value, pos: Pos) -> EvalResult<String> {
        let mut ctx = Context::new();
        let fv = self.force(v, pos)?;
        let s = match &fv {
            Value::Path(p) => return Ok(p.to_string()),
            Value::Attrs(a) if a.get(Sym::TO_STRING).is_none() => match a.get_attr(Sym::OUT_PATH) {
                Some(o) => {
                    let (o, opos) = (o.value.clone(), o.pos);
                    return self
                        .realise_path(&o, pos)
                        .map_err(|e| e.frame(opos, "while using the `outPath` attribute"));
                }
                None => self
                    .coerce_to_string(&fv, pos, &mut ctx, CoerceOpts::default())
                    .map_err(|e| e.frame(pos, "while realising the context of a path"))?,
            },
            _ => self
                .coerce_to_string(&fv, pos, &mut ctx, CoerceOpts::default())
                .map_err(|e| e.frame(pos, "while realising the context of a path"))?,
        };
        let s = String::from_utf8_lossy(&s).into_owned();
        if !s.starts_with('/') {
            return Err(self
                .error(
                    format!("string '{s}' doesn't represent an absolute path"),
                    pos,
                )
                .frame(pos, "while realising the context of a path"));
        }
        self.realise_context(&ctx, pos)?;
        Ok(crate::lower::strings::canon_path(&s))
    }

    /// Build the derivation outputs a context refers to (import from derivation).
    pub(crate) fn realise_context(&mut self, ctx: &Context, pos: Pos) -> EvalResult<()> {
        for e in ctx {
            if let ContextElem::Built { drv, output } = e {
                let dir = self.store.store_dir().clone();
                let drv_path = dir
                    .parse(drv)
                    .map_err(|err| self.error(err.to_string(), pos))?;
                match self.realiser.as_mut() {
                    Some(r) => r
                        .realise(&drv_path, &[output.to_string()])
                        .map_err(|err| self.error(err.to_string(), pos))?,
                    None => {
                        return Err(self.error(
                            format!(
                                "cannot build '{drv}^{output}' during evaluation because no builder is available (import from derivation)"
                            ),
                            pos,
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// `import path`: evaluate a file once (a directory means its `default.nix`).
    pub fn import_path(&mut self, path: &Path, pos: Pos) -> EvalResult<Value> {
        let mut path = PathBuf::from(crate::lower::strings::canon_path(&path.to_string_lossy()));
        if let Some(text) = super::corepkg(&path.to_string_lossy()) {
            if let Some(v) = self.import_cache.get(&path) {
                let v = v.clone();
                return self.force(&v, pos);
            }
            let name: &'static str = Box::leak(
                path.to_string_lossy()
                    .trim_start_matches('/')
                    .to_string()
                    .into_boxed_str(),
            );
            let expr = self.parse(text, Origin::Internal(name), super::COREPKGS)?;
            let v = Thunk::new(expr, self.base_env.clone());
            self.import_cache.insert(path, v.clone());
            return self.force(&v, pos);
        }
        if self.file_type_recorded(&path, true) == Some(FileType::Directory) {
            path.push("default.nix");
        }
        if let Some(v) = self.import_cache.get(&path) {
            let v = v.clone();
            return self.force(&v, pos);
        }
        let expr = self.parse_file(&path, pos, None)?;
        let env = self.base_env.clone();
        let v = Thunk::new(expr, env);
        self.import_cache.insert(path, v.clone());
        self.force(&v, pos)
    }

    fn parse_file(
        &mut self,
        path: &Path,
        pos: Pos,
        extra: Option<&rustc_hash::FxHashMap<Sym, u32>>,
    ) -> EvalResult<crate::ir::ExprRef> {
        let bytes = match self.read_file_recorded(path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(self.error(not_found(&path.to_string_lossy()), pos));
            }
            Err(e) => {
                return Err(self.error(format!("reading file '{}': {e}", path.display()), pos));
            }
        };
        let text = crate::lower::strings::decode_source(&bytes);
        let dir = path
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|| "/".into());
        let parsed = crate::lower::parse_in_scope(
            &text,
            Origin::File(path.to_path_buf()),
            &dir,
            &self.globals,
            extra,
            &self.settings.parse,
        )?;
        for w in parsed.warnings {
            self.emit(crate::eval::parse_warning(w));
        }
        Ok(parsed.expr)
    }

    /// Copy a path to the store (what interpolating a path into a string does), once.
    pub(crate) fn copy_path_to_store(&mut self, path: &str, pos: Pos) -> EvalResult<String> {
        if let Some(sp) = self.path_cache.get(path) {
            return Ok(sp.clone());
        }
        // Paths inside the store (`./.` and `./file` in a flake, read from its store path) are
        // copied like any other, as Nix does: `"${./.}"` in a flake is `<hash>-<hash>-source`.
        let dir = self.store.store_dir().clone();
        let name = String::from_utf8_lossy(super::strings::base_name(path.as_bytes())).into_owned();
        let sp = self.add_path_to_store(
            Path::new(path),
            &name,
            FileIngestionMethod::Recursive,
            None,
            None,
            pos,
        )?;
        let s = dir.print(&sp);
        self.path_cache.insert(path.to_string(), s.clone());
        Ok(s)
    }

    /// Serialize `path` (through the evaluator's I/O, filtered by the Nix function `filter`)
    /// and add it to the store.
    pub(crate) fn add_path_to_store(
        &mut self,
        path: &Path,
        name: &str,
        method: FileIngestionMethod,
        filter: Option<&Value>,
        expected: Option<&Hash>,
        pos: Pos,
    ) -> EvalResult<StorePath> {
        if self.file_type_recorded(path, false).is_none() {
            return Err(self.error(not_found(&path.to_string_lossy()), pos));
        }
        if let Err(e) = envy_store::store_path::validate_name(name) {
            return Err(self.error(
                format!("invalid store path name '{name}': {}", e.nix_message()),
                pos,
            ));
        }
        let mut nar = Vec::new();
        let hash = match method {
            FileIngestionMethod::Recursive => {
                let mut w = NarWriter::new(&mut nar).map_err(|e| self.error(e.to_string(), pos))?;
                self.write_nar(path, &mut w, filter, pos)?;
                Hash::sha256(&nar)
            }
            FileIngestionMethod::Flat => {
                let bytes = self.read_file_recorded(path).map_err(|e| {
                    self.error(format!("reading file '{}': {e}", path.display()), pos)
                })?;
                let exec = self.io.is_executable(path).unwrap_or(false);
                NarWriter::new(&mut nar)
                    .and_then(|mut w| w.regular(&bytes, exec))
                    .map_err(|e| self.error(e.to_string(), pos))?;
                Hash::sha256(&bytes)
            }
        };
        if let Some(exp) = expected {
            let got = match exp.algo() {
                envy_store::HashAlgo::Sha256 => hash,
                algo => match method {
                    FileIngestionMethod::Recursive => Hash::of(algo, &nar),
                    FileIngestionMethod::Flat => {
                        let bytes = self.io.read_file(path).unwrap_or_default();
                        Hash::of(algo, &bytes)
                    }
                },
            };
            if &got != exp {
                return Err(self.error(
                    format!(
                        "hash mismatch in file '{}':\n  specified: {}\n  got:       {}",
                        path.display(),
                        exp.to_sri(),
                        got.to_sri()
                    ),
                    pos,
                ));
            }
            if exp.algo() != envy_store::HashAlgo::Sha256 || method == FileIngestionMethod::Flat {
                let sp = self
                    .store
                    .add_source(name, method, exp, &nar)
                    .map_err(|e| self.error(e.to_string(), pos))?;
                return Ok(sp);
            }
        }
        self.store
            .add_source(name, method, &hash, &nar)
            .map_err(|e| self.error(e.to_string(), pos))
    }

    fn write_nar(
        &mut self,
        path: &Path,
        w: &mut NarWriter<'_, Vec<u8>>,
        filter: Option<&Value>,
        pos: Pos,
    ) -> EvalResult<()> {
        let err = |ev: &Evaluator, e: io::Error| {
            ev.error(format!("reading '{}': {e}", path.display()), pos)
        };
        let t = self
            .file_type_recorded(path, false)
            .ok_or_else(|| self.error(not_found(&path.to_string_lossy()), pos))?;
        match t {
            FileType::Regular => {
                let bytes = self.read_file_recorded(path).map_err(|e| err(self, e))?;
                let exec = self.io.is_executable(path).map_err(|e| err(self, e))?;
                w.regular(&bytes, exec)
                    .map_err(|e| self.error(e.to_string(), pos))?;
            }
            FileType::Symlink => {
                let target = self.io.read_link(path).map_err(|e| err(self, e))?;
                self.record.file_type(path, Some(FileType::Symlink));
                w.symlink(target.to_string_lossy().as_bytes())
                    .map_err(|e| self.error(e.to_string(), pos))?;
            }
            FileType::Directory => {
                let mut entries = self.io.read_dir(path).map_err(|e| err(self, e))?;
                self.record.dir(path);
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                w.directory().map_err(|e| self.error(e.to_string(), pos))?;
                for (name, ty) in entries {
                    let child = path.join(&name);
                    if let Some(f) = filter {
                        let arg_path = Value::string(child.to_string_lossy().as_ref());
                        let arg_type = Value::string(ty.nix_name());
                        let keep = self.call_value(f, &[arg_path, arg_type], pos)?;
                        if !self.force_bool(
                            &keep,
                            pos,
                            "while evaluating the return value of the path filter function",
                        )? {
                            continue;
                        }
                    }
                    w.entry(name.as_bytes())
                        .map_err(|e| self.error(e.to_string(), pos))?;
                    self.write_nar(&child, w, filter, pos)?;
                    w.end_entry().map_err(|e| self.error(e.to_string(), pos))?;
                }
                w.end_directory()
                    .map_err(|e| self.error(e.to_string(), pos))?;
            }
            FileType::Unknown => {
                return Err(self.error(
                    format!("file '{}' has an unsupported type", path.display()),
                    pos,
                ));
            }
        }
        Ok(())
    }

    /// The value of a store path, with the context it needs.
    pub(crate) fn store_path_value(&self, sp: &StorePath) -> Value {
        let s = self.store.store_dir().print(sp);
        let ctx = Context::from([ContextElem::Opaque(Rc::from(s.as_str()))]);
        Value::String(Shared::new(NixStr::with_context(s.into_bytes(), ctx)))
    }
}

fn prim_import(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let path = ev.realise_path(&args[0], pos)?;
    ev.import_path(Path::new(&path), pos)
}

fn prim_scoped_import(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let scope = ev.force_attrs(
        &args[0],
        pos,
        "while evaluating the first argument passed to builtins.scopedImport",
    )?;
    let path = ev.realise_path(&args[1], pos)?;
    let mut path = PathBuf::from(path);
    if ev.file_type_recorded(&path, true) == Some(FileType::Directory) {
        path.push("default.nix");
    }
    // The scope's names live in an environment between the globals and the file.
    let mut names = rustc_hash::FxHashMap::default();
    let mut values = Vec::with_capacity(scope.len());
    for (i, a) in scope.iter().enumerate() {
        names.insert(a.name, i as u32);
        values.push(a.value.clone());
    }
    let expr = ev.parse_file(&path, pos, Some(&names))?;
    let env = Env::with_values(Some(ev.base_env.clone()), values);
    ev.eval(expr, &env)
}

fn read_err(ev: &Evaluator, path: &str, e: io::Error, pos: Pos) -> Box<crate::error::EvalError> {
    match e.kind() {
        io::ErrorKind::NotFound => ev.error(not_found(path), pos),
        io::ErrorKind::NotADirectory => ev.error(format!("'{path}' is not a directory"), pos),
        _ => ev.error(format!("reading '{path}': {e}"), pos),
    }
}

fn prim_read_file(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let path = ev.realise_path(&args[0], pos)?;
    let bytes = ev
        .read_file_recorded(Path::new(&path))
        .map_err(|e| read_err(ev, &path, e, pos))?;
    if bytes.contains(&0) {
        return Err(ev.error(
            format!("the contents of the file '{path}' cannot be represented as a Nix string"),
            pos,
        ));
    }
    Ok(Value::string(bytes))
}

/// Nix's `SourcePath::resolveSymlinks`: `path` with every symlink along it followed (at
/// most 1024, as Nix), `.` and `..` applied as they come. For messages only: a link that
/// cannot be read is left as it is.
pub(crate) fn resolve_symlinks(io: &dyn crate::io::EvalIO, path: &str) -> String {
    let mut todo: std::collections::VecDeque<String> =
        path.split('/').map(str::to_string).collect();
    let mut done: Vec<String> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                done.pop();
                continue;
            }
            _ => {}
        }
        done.push(c);
        let cur = format!("/{}", done.join("/"));
        if links < 1024
            && matches!(io.symlink_type(Path::new(&cur)), Ok(FileType::Symlink))
            && let Ok(target) = io.read_link(Path::new(&cur))
        {
            links += 1;
            done.pop();
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                done.clear();
            }
            for part in target.split('/').rev() {
                todo.push_front(part.to_string());
            }
        }
    }
    format!("/{}", done.join("/"))
}

fn prim_read_dir(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let path = ev.realise_path(&args[0], pos)?;
    let p = Path::new(&path);
    match ev.file_type_recorded(p, true) {
        None => return Err(ev.error(not_found(&path), pos)),
        Some(FileType::Directory) => {}
        Some(_) => {
            // Nix names the file the symlinks lead to.
            let resolved = resolve_symlinks(ev.io.as_ref(), &path);
            return Err(ev.error(format!("'{resolved}' is not a directory"), pos));
        }
    }
    let entries = ev.io.read_dir(p).map_err(|e| read_err(ev, &path, e, pos))?;
    ev.record.dir(p);
    let attrs: Vec<Attr> = entries
        .into_iter()
        .map(|(name, t)| Attr {
            name: Sym::new(&name),
            pos: Pos::NONE,
            value: Value::string(t.nix_name()),
        })
        .collect();
    Ok(Value::attrs(Attrs::from_unsorted(attrs)))
}

fn prim_read_file_type(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let path = ev.realise_path(&args[0], pos)?;
    match ev.file_type_recorded(Path::new(&path), false) {
        Some(t) => Ok(Value::string(t.nix_name())),
        None => Err(ev.error(not_found(&path), pos)),
    }
}

fn prim_path_exists(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let v = ev.force(&args[0], pos)?;
    let must_be_dir = matches!(&v, Value::String(s) if s.as_bytes().ends_with(b"/") || s.as_bytes().ends_with(b"/."));
    let path = ev.realise_path(&v, pos)?;
    if path == ev.store.store_dir().as_str() {
        return Ok(Value::Bool(true));
    }
    let t = ev.file_type_recorded(Path::new(&path), must_be_dir);
    Ok(Value::Bool(match t {
        None => false,
        Some(t) => !must_be_dir || t == FileType::Directory,
    }))
}

fn prim_find_file(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let search = ev.force_list(&args[0], pos, Ctx::Arg(1, "findFile"))?;
    let name = ev.force_string_no_ctx(&args[1], pos, Ctx::Arg(2, "findFile"))?;
    let name = name.to_str_lossy().into_owned();
    if let Some(rest) = name.strip_prefix("nix/") {
        let p = format!("{}/{rest}", super::COREPKGS);
        if super::corepkg(&p).is_some() {
            return Ok(Value::path(p.as_str()));
        }
    }
    for entry in search.iter() {
        let e = ev.force_attrs(
            entry,
            pos,
            "while evaluating an element of the list passed to builtins.findFile",
        )?;
        let prefix = match e.get(Sym::PREFIX) {
            Some(p) => {
                let p = p.clone();
                ev.force_string_no_ctx(&p, pos, "while evaluating the `prefix` attribute of an element of the list passed to builtins.findFile")?
                    .to_str_lossy()
                    .into_owned()
            }
            None => String::new(),
        };
        let Some(p) = e.get(Sym::PATH) else {
            return Err(ev
                .missing_attr(&e, Sym::PATH, pos)
                .frame(pos, "in an element of the __nixPath"));
        };
        let p = p.clone();
        let base = ev
            .coerce_to_string(&p, pos, &mut Context::new(), CoerceOpts::default())
            .map_err(|e| e.frame(pos, "while evaluating the `path` attribute of an element of the list passed to builtins.findFile"))?;
        let base = String::from_utf8_lossy(&base).into_owned();
        let rest = if prefix.is_empty() {
            Some(name.clone())
        } else if name == prefix {
            Some(String::new())
        } else {
            name.strip_prefix(&format!("{prefix}/")).map(str::to_string)
        };
        let Some(rest) = rest else { continue };
        if base.contains("://") || base.starts_with("channel:") || base.starts_with("flake:") {
            continue;
        }
        let base_abs = if base.starts_with('/') {
            base
        } else {
            format!("{}/{base}", ev.settings.cwd.display())
        };
        let candidate = if rest.is_empty() {
            base_abs
        } else {
            format!("{base_abs}/{rest}")
        };
        let candidate = crate::lower::strings::canon_path(&candidate);
        if ev
            .file_type_recorded(Path::new(&candidate), false)
            .is_some()
        {
            return Ok(Value::path(candidate.as_str()));
        }
    }
    let mut e = crate::error::EvalError::new(
        crate::error::ErrorKind::Throw,
        format!(
            "file '{name}' was not found in the Nix search path (add it using $NIX_PATH or -I)"
        ),
    );
    e.pos = pos;
    Err(e)
}

fn prim_to_path(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let p = ev.coerce_to_path(
        &args[0],
        pos,
        "while evaluating the first argument passed to builtins.toPath",
    )?;
    Ok(Value::string(p))
}

fn prim_store_path(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let p = ev.coerce_to_path(
        &args[0],
        pos,
        "while evaluating the first argument passed to builtins.storePath",
    )?;
    let dir = ev.store.store_dir().clone();
    let (sp, _) = dir
        .parse_with_subpath(&p)
        .map_err(|_| ev.error(format!("path '{p}' is not in the Nix store"), pos))?;
    let printed = dir.print(&sp);
    let elem = if sp.is_derivation() {
        ContextElem::DrvDeep(Rc::from(printed.as_str()))
    } else {
        ContextElem::Opaque(Rc::from(printed.as_str()))
    };
    Ok(Value::String(Shared::new(NixStr::with_context(
        p.into_bytes(),
        Context::from([elem]),
    ))))
}

fn prim_path(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.force_attrs(
        &args[0],
        pos,
        "while evaluating the argument passed to 'builtins.path'",
    )?;
    let mut path = None;
    let mut name = None;
    let mut filter = None;
    let mut method = FileIngestionMethod::Recursive;
    let mut expected = None;
    for attr in a.iter() {
        let v = attr.value.clone();
        match attr.name.as_str() {
            "path" => {
                path = Some(ev.realise_path(&v, attr.pos).map_err(|e| {
                    e.frame(
                        attr.pos,
                        "while evaluating the 'path' attribute passed to 'builtins.path'",
                    )
                })?)
            }
            "name" => {
                name = Some(
                    ev.force_string_no_ctx(
                        &v,
                        attr.pos,
                        "while evaluating the `name` attribute passed to builtins.path",
                    )?
                    .to_str_lossy()
                    .into_owned(),
                )
            }
            "filter" => {
                filter = Some(ev.force_function(
                    &v,
                    attr.pos,
                    "while evaluating the `filter` parameter passed to builtins.path",
                )?)
            }
            "recursive" => {
                if !ev.force_bool(
                    &v,
                    attr.pos,
                    "while evaluating the `recursive` attribute passed to builtins.path",
                )? {
                    method = FileIngestionMethod::Flat;
                }
            }
            "sha256" => {
                let s = ev.force_string_no_ctx(
                    &v,
                    attr.pos,
                    "while evaluating the `sha256` attribute passed to builtins.path",
                )?;
                expected = Some(
                    Hash::parse_any(&s.to_str_lossy(), Some(envy_store::HashAlgo::Sha256))
                        .map_err(|e| ev.error(e.to_string(), attr.pos))?,
                );
            }
            other => {
                return Err(ev.error(
                    format!("unsupported argument '{other}' to 'builtins.path'"),
                    attr.pos,
                ));
            }
        }
    }
    let Some(path) = path else {
        return Err(ev.error(
            "missing required 'path' attribute in the first argument to builtins.path",
            pos,
        ));
    };
    let name = name.unwrap_or_else(|| {
        String::from_utf8_lossy(super::strings::base_name(path.as_bytes())).into_owned()
    });
    let sp = ev.add_path_to_store(
        Path::new(&path),
        &name,
        method,
        filter.as_ref(),
        expected.as_ref(),
        pos,
    )?;
    Ok(ev.store_path_value(&sp))
}

fn prim_filter_source(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let path = ev
        .realise_path(&args[1], pos)
        .map_err(|e| e.frame(pos, "while evaluating the second argument (the path to filter) passed to 'builtins.filterSource'"))?;
    let filter = ev.force_function(
        &args[0],
        pos,
        "while evaluating the first argument passed to builtins.filterSource",
    )?;
    let name = String::from_utf8_lossy(super::strings::base_name(path.as_bytes())).into_owned();
    let sp = ev.add_path_to_store(
        Path::new(&path),
        &name,
        FileIngestionMethod::Recursive,
        Some(&filter),
        None,
        pos,
    )?;
    Ok(ev.store_path_value(&sp))
}

fn prim_to_file(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let name = ev.force_string_no_ctx(
        &args[0],
        pos,
        "while evaluating the first argument passed to builtins.toFile",
    )?;
    let name = name.to_str_lossy().into_owned();
    let contents = ev.force_string(
        &args[1],
        pos,
        "while evaluating the second argument passed to builtins.toFile",
    )?;
    let dir = ev.store.store_dir().clone();
    let mut refs = BTreeSet::new();
    if let Some(ctx) = contents.context() {
        for e in ctx {
            match e {
                ContextElem::Opaque(p) => {
                    refs.insert(dir.parse(p).map_err(|err| ev.error(err.to_string(), pos))?);
                }
                _ => {
                    return Err(ev.error(
                        format!(
                            "files created by builtins.toFile may not reference derivations, but {name} references {}",
                            e.path()
                        ),
                        pos,
                    ));
                }
            }
        }
    }
    if let Err(e) = envy_store::store_path::validate_name(&name) {
        return Err(ev.error(
            format!("invalid store path name '{name}': {}", e.nix_message()),
            pos,
        ));
    }
    let sp = ev
        .store
        .add_text(&name, contents.as_bytes(), &refs)
        .map_err(|e| ev.error(e.to_string(), pos))?;
    Ok(ev.store_path_value(&sp))
}
