//! `builtins.fetchTree`, `fetchGit`, `fetchTarball`, `fetchurl` and `getFlake` for envy's
//! evaluator, on `envy-fetch`: every fetched tree is mounted (read in place) and returned
//! with Nix 2.8's attributes; a `path` inside a mounted store path is a subtree of that
//! mount (as a path inside a store copy is to Nix, `lastModified = 1`).

use std::cell::RefCell;
use std::rc::Rc;

use envy_eval::error::ErrorExt;
use envy_eval::value::Context;
use envy_eval::{EvalError, EvalResult, Evaluator, Fetch, FetchKind, Pos, Value};
use envy_fetch::{Attr, Attrs, FetchError, Fetched, Fetcher, Input};

use crate::lock::{LockFlags, LockedFlake, Locker};
use crate::mounts::Mounts;
use crate::nix_value::{store_path_string, tree_attrs_value};
use crate::reader::EvalReader;
use crate::{FlakeError, FlakeRef, Registries};

/// The fetching builtins, with the fetcher, registries and mounts they share.
pub struct FlakeFetch {
    fetcher: Fetcher,
    registries: Registries,
    mounts: Rc<Mounts>,
    notices: RefCell<Vec<String>>,
}

fn eval_err(pos: Pos) -> impl Fn(String) -> Box<EvalError> {
    move |m| EvalError::eval(m).at(pos)
}

impl FlakeFetch {
    /// Builtins fetching with `fetcher`, resolving through `registries`.
    #[must_use]
    pub fn new(fetcher: Fetcher, registries: Registries) -> FlakeFetch {
        let mounts = Mounts::new(fetcher.store_dir().clone());
        FlakeFetch {
            fetcher,
            registries,
            mounts,
            notices: RefCell::new(Vec::new()),
        }
    }

    /// The mounts (shared with the evaluator's I/O).
    #[must_use]
    pub fn mounts(&self) -> &Rc<Mounts> {
        &self.mounts
    }

    /// The fetcher.
    #[must_use]
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// The registries.
    #[must_use]
    pub fn registries(&self) -> &Registries {
        &self.registries
    }

    /// Warnings collected so far (lock-file notices of `getFlake`), taken.
    pub fn take_notices(&self) -> Vec<String> {
        std::mem::take(&mut self.notices.borrow_mut())
    }

    /// Fetch `input`, as a subtree when it is a path inside a mounted store path.
    pub fn fetch_input(&self, input: &Input) -> Result<Fetched, FetchError> {
        if input.input_type() == "path"
            && let Some(p) = input.get_str("path")
            && let Some((tree, rest)) = self.mounts.split(std::path::Path::new(p))
        {
            let rel = input.clone().with("path", format!("./{}", rest.display()));
            let mut f = self.fetcher.fetch_in(&rel, Some(&tree))?;
            f.input = f.input.with("path", p.to_string());
            return Ok(f);
        }
        self.fetcher.fetch(input)
    }

    /// Lock `top` with `ev` reading `flake.nix` files.
    pub fn lock(
        &self,
        ev: &mut Evaluator,
        top: &FlakeRef,
        flags: &LockFlags,
    ) -> Result<LockedFlake, FlakeError> {
        let reader = EvalReader::new(ev, self.mounts.clone());
        let locker = Locker::new(&self.fetcher, &self.registries, &reader);
        locker.lock_flake(top, flags)
    }

    fn mount(&self, f: &Fetched) -> String {
        self.mounts.mount(&f.tree)
    }

    /// An input from a `fetchTree`-style argument: a URL string or an attribute set.
    fn input_from_arg(
        &self,
        ev: &mut Evaluator,
        arg: &Value,
        pos: Pos,
        kind: FetchKind,
    ) -> EvalResult<Input> {
        let err = eval_err(pos);
        let v = ev.force(arg, pos)?;
        let name = kind.builtin_name();
        match &v {
            Value::Attrs(a) => {
                let mut attrs = Attrs::new();
                for attr in a.iter() {
                    let key = attr.name.as_str().to_string();
                    let value = ev.force(&attr.value, attr.pos)?;
                    let value = match &value {
                        Value::String(_) | Value::Path(_) => {
                            let mut ctx = Context::new();
                            let s = ev.coerce_to_string(
                                &value,
                                attr.pos,
                                &mut ctx,
                                Default::default(),
                            )?;
                            Attr::String(String::from_utf8_lossy(&s).into_owned())
                        }
                        Value::Bool(b) => Attr::Bool(*b),
                        // Nix's words, as the evaluator's own fetchers say them.
                        Value::Int(i) if *i < 0 => {
                            return Err(err(format!(
                                "negative value given for '{name}' argument '{key}': {i}"
                            )));
                        }
                        Value::Int(i) => Attr::Int(*i as u64),
                        other => {
                            return Err(err(format!(
                                "{name} argument '{key}' is {} while a string, Boolean or integer is expected",
                                other.typ().showtype()
                            )));
                        }
                    };
                    attrs.insert(key, value);
                }
                match kind {
                    FetchKind::Git => {
                        attrs.insert("type".into(), "git".into());
                        if let Some(Attr::String(u)) = attrs.get("url") {
                            let u = fix_git_url(u);
                            attrs.insert("url".into(), u.into());
                        }
                    }
                    _ if !attrs.contains_key("type") => {
                        return Err(err(format!(
                            "attribute `type` is missing in call to `{name}`"
                        )));
                    }
                    _ => {}
                }
                Input::from_attrs(attrs).map_err(|e| err(e.to_string()))
            }
            _ => {
                let mut ctx = Context::new();
                let s = ev.coerce_to_string(&v, pos, &mut ctx, Default::default())?;
                let s = String::from_utf8_lossy(&s).into_owned();
                if kind == FetchKind::Git {
                    let mut attrs = Attrs::new();
                    attrs.insert("type".into(), "git".into());
                    attrs.insert("url".into(), fix_git_url(&s).into());
                    return Input::from_attrs(attrs).map_err(|e| err(e.to_string()));
                }
                if let Some(rest) = s
                    .strip_prefix("file:")
                    .or_else(|| s.strip_prefix("tarball+file:"))
                    && !rest.starts_with('/')
                {
                    let what = if s.ends_with(".tar.gz")
                        || s.ends_with(".tgz")
                        || s.starts_with("tarball+")
                    {
                        "tarball"
                    } else {
                        "file"
                    };
                    return Err(err(format!(
                        "{what} '{s}' must use an absolute path. The 'file' scheme does not support relative paths."
                    ))
                    .frame(pos, format!("while fetching the input '{s}'")));
                }
                if s.starts_with('/') {
                    let mut attrs = Attrs::new();
                    attrs.insert("type".into(), "path".into());
                    attrs.insert("path".into(), s.into());
                    return Input::from_attrs(attrs).map_err(|e| err(e.to_string()));
                }
                Input::from_url(&s).map_err(|e| err(e.to_string()))
            }
        }
    }

    fn fetch_tree(
        &self,
        ev: &mut Evaluator,
        kind: FetchKind,
        arg: &Value,
        pos: Pos,
    ) -> EvalResult<Value> {
        let err = eval_err(pos);
        let input = self.input_from_arg(ev, arg, pos, kind)?;
        if ev.settings().pure && !input.is_locked() {
            return Err(err(format!(
                "in pure evaluation mode, `{}` requires a locked input",
                kind.builtin_name()
            )));
        }
        let input = if input.is_direct() {
            input
        } else {
            self.registries
                .lookup(&input)
                .map_err(|e| err(e.to_string()))?
                .0
        };
        let f = self.fetch_input(&input).map_err(|e| err(e.to_string()))?;
        let path = self.mount(&f);
        Ok(tree_attrs_value(envy_fetch::tree_attrs(
            &f.input,
            &path,
            kind == FetchKind::Git,
        )))
    }

    /// `fetchTarball` / `fetchurl`: a URL string or `{ url; sha256?; name?; }`; returns the
    /// store path.
    fn fetch_url(
        &self,
        ev: &mut Evaluator,
        unpack: bool,
        arg: &Value,
        pos: Pos,
    ) -> EvalResult<Value> {
        let err = eval_err(pos);
        let who = if unpack { "fetchTarball" } else { "fetchurl" };
        let v = ev.force(arg, pos)?;
        let (mut url, mut sha256, mut name) = (None, None, None);
        match &v {
            Value::Attrs(a) => {
                for attr in a.iter() {
                    let value = ev.force(&attr.value, attr.pos)?;
                    let mut ctx = Context::new();
                    let text =
                        ev.coerce_to_string(&value, attr.pos, &mut ctx, Default::default())?;
                    let text = String::from_utf8_lossy(&text).into_owned();
                    match attr.name.as_str() {
                        "url" => url = Some(text),
                        "sha256" => sha256 = Some(text),
                        "name" => name = Some(text),
                        other => {
                            return Err(err(format!("unsupported argument `{other}` to `{who}`")));
                        }
                    }
                }
            }
            _ => {
                let mut ctx = Context::new();
                let text = ev.coerce_to_string(&v, pos, &mut ctx, Default::default())?;
                url = Some(String::from_utf8_lossy(&text).into_owned());
            }
        }
        let url = url.ok_or_else(|| err(format!("`url` argument required in call to `{who}`")))?;
        let name = name.unwrap_or_else(|| {
            if unpack {
                "source".to_string()
            } else {
                url.rsplit('/').next().unwrap_or("source").to_string()
            }
        });
        let expected = match &sha256 {
            Some(h) => Some(
                envy_store::Hash::parse_any(h, Some(envy_store::HashAlgo::Sha256))
                    .map_err(|e| err(e.to_string()))?,
            ),
            None => None,
        };
        if ev.settings().pure && expected.is_none() {
            return Err(err(format!(
                "in pure evaluation mode, `{who}` requires a `sha256` argument"
            )));
        }
        let mut attrs = Attrs::new();
        attrs.insert(
            "type".into(),
            if unpack { "tarball" } else { "file" }.into(),
        );
        attrs.insert("url".into(), url.clone().into());
        attrs.insert("name".into(), name.into());
        let input = Input::from_attrs(attrs).map_err(|e| err(e.to_string()))?;
        let f = self.fetcher.fetch(&input).map_err(|e| err(e.to_string()))?;
        if let Some(expected) = expected {
            let got = if unpack {
                *f.tree.nar_hash()
            } else {
                envy_store::Hash::sha256(
                    &fs_err::read(f.tree.root()).map_err(|e| err(e.to_string()))?,
                )
            };
            if got != expected {
                return Err(err(format!(
                    "hash mismatch in file downloaded from `{url}`:\n  specified: {}\n  got:       {}",
                    expected.to_prefixed_nix32(),
                    got.to_prefixed_nix32()
                )));
            }
        }
        Ok(store_path_string(&self.mount(&f)))
    }

    fn get_flake(&self, ev: &mut Evaluator, arg: &Value, pos: Pos) -> EvalResult<Value> {
        let err = eval_err(pos);
        let v = ev.force(arg, pos)?;
        let mut ctx = Context::new();
        let s = ev.coerce_to_string(&v, pos, &mut ctx, Default::default())?;
        let s = String::from_utf8_lossy(&s).into_owned();
        let top = FlakeRef::parse(&s, None).map_err(|e| err(e.to_string()))?;
        let pure = ev.settings().pure;
        if pure && !top.input.is_locked() {
            return Err(err(format!(
                "cannot call `getFlake` on unlocked flake reference `{top}` (use --impure to override)"
            )));
        }
        let flags = LockFlags {
            update_lock_file: false,
            use_registries: !pure,
            ..LockFlags::default()
        };
        let locked = self
            .lock(ev, &top, &flags)
            .map_err(|e| err(e.to_string()))?;
        self.notices
            .borrow_mut()
            .extend(locked.notices.iter().cloned());
        crate::call_flake::call_flake(ev, &self.mounts, &locked)
    }
}

/// `fetchGit`'s URL: a bare path is `file://PATH`; a `git+` prefix is dropped.
fn fix_git_url(u: &str) -> String {
    if let Some(rest) = u.strip_prefix("git+") {
        return rest.to_string();
    }
    if !u.contains("://") && u.starts_with('/') {
        return format!("file://{u}");
    }
    u.to_string()
}

impl Fetch for FlakeFetch {
    fn fetch(
        &self,
        ev: &mut Evaluator,
        kind: FetchKind,
        arg: &Value,
        pos: Pos,
    ) -> EvalResult<Value> {
        match kind {
            FetchKind::Tree | FetchKind::Git => self.fetch_tree(ev, kind, arg, pos),
            FetchKind::Tarball => self.fetch_url(ev, true, arg, pos),
            FetchKind::Url => self.fetch_url(ev, false, arg, pos),
            FetchKind::Flake => self.get_flake(ev, arg, pos),
        }
    }
}
