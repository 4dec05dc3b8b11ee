//! Fetchers: `fetchurl`, `fetchTarball`, `fetchGit`, `fetchTree`, on top of `envy-fetch`
//! through the evaluator's `Fetcher`: arguments become an input, the fetched tree's store
//! path and locked attributes become the result. Also `flakeRefToString`.

use envy_fetch::{Attr as FAttr, Fetched, Input};
use envy_store::{Hash, HashAlgo};

use super::primop;
use crate::error::{ErrorExt, EvalResult};
use crate::eval::{CoerceOpts, Evaluator};
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[
    primop!("fetchurl", 1, prim_fetchurl),
    primop!("fetchTarball", 1, prim_fetch_tarball),
    primop!("fetchGit", 1, prim_fetch_git),
    primop!("fetchTree", 1, prim_fetch_tree),
    primop!("flakeRefToString", 1, prim_flake_ref_to_string),
    primop!("parseFlakeRef", 1, prim_parse_flake_ref),
    primop!("getFlake", 1, prim_get_flake),
];

/// The parts of `fetchurl`'s and `fetchTarball`'s argument (a URL or an attribute set).
struct UrlArgs {
    url: String,
    name: Option<String>,
    hash: Option<Hash>,
    from_attrs: bool,
}

fn nix_text(e: impl std::fmt::Display) -> String {
    e.to_string().replace('`', "'")
}

impl Evaluator {
    fn url_args(&mut self, v: &Value, pos: Pos, who: &str) -> EvalResult<UrlArgs> {
        let v = self.force(v, pos)?;
        let Value::Attrs(a) = &v else {
            let url = self
                .coerce_to_string(&v, pos, &mut Context::new(), CoerceOpts::default())
                .map_err(|e| e.frame(pos, "while evaluating the url we should fetch"))?;
            return Ok(UrlArgs {
                url: String::from_utf8_lossy(&url).into_owned(),
                name: None,
                hash: None,
                from_attrs: false,
            });
        };
        let mut out = UrlArgs {
            url: String::new(),
            name: None,
            hash: None,
            from_attrs: true,
        };
        let mut have_url = false;
        for attr in a.iter() {
            let val = attr.value.clone();
            match attr.name.as_str() {
                "url" => {
                    let s = self
                        .coerce_to_string(
                            &val,
                            attr.pos,
                            &mut Context::new(),
                            CoerceOpts::default(),
                        )
                        .map_err(|e| {
                            e.frame(attr.pos, "while evaluating the url we should fetch")
                        })?;
                    out.url = String::from_utf8_lossy(&s).into_owned();
                    have_url = true;
                }
                "sha256" | "hash" => {
                    let s = self.force_string_no_ctx(
                        &val,
                        attr.pos,
                        "while evaluating the sha256 of the content we should fetch",
                    )?;
                    let s = s.to_str_lossy().into_owned();
                    if !s.is_empty() {
                        let expected = (attr.name.as_str() == "sha256").then_some(HashAlgo::Sha256);
                        out.hash = Some(
                            Hash::parse_any(&s, expected)
                                .map_err(|e| self.error(nix_text(e), attr.pos))?,
                        );
                    }
                }
                "name" => {
                    let s = self.force_string_no_ctx(
                        &val,
                        attr.pos,
                        "while evaluating the name of the content we should fetch",
                    )?;
                    out.name = Some(s.to_str_lossy().into_owned());
                }
                other => {
                    return Err(self.error(
                        format!("unsupported argument '{other}' to '{who}'"),
                        attr.pos,
                    ));
                }
            }
        }
        if !have_url {
            return Err(self.error("'url' argument required", pos));
        }
        Ok(out)
    }

    /// Fetch `input` and make its tree known to the store.
    fn fetch_input(&mut self, input: &Input, pos: Pos) -> EvalResult<Fetched> {
        let key = input.to_string();
        if let Some(f) = self.fetch_cache.get(&key) {
            return Ok(f.clone());
        }
        let fetched = self.fetcher.fetch(input).map_err(|e| {
            self.error(nix_text(&e), pos)
                .frame(pos, format!("while fetching the input '{key}'"))
        })?;
        self.store
            .add_fetched(&fetched.tree)
            .map_err(|e| self.error(e.to_string(), pos))?;
        self.fetch_cache.insert(key, fetched.clone());
        Ok(fetched)
    }

    /// A fetched tree's store path as a string with context.
    fn fetched_path(&self, f: &Fetched) -> Value {
        self.store_path_value(f.tree.store_path())
    }

    /// `outPath` and the locked attributes (plus `shortRev` and `lastModifiedDate`), as
    /// `fetchTree` and `fetchGit` return them.
    fn fetched_attrs(&self, f: &Fetched, git_defaults: bool) -> Value {
        let mut attrs: Vec<Attr> = vec![Attr {
            name: Sym::OUT_PATH,
            pos: Pos::NONE,
            value: self.fetched_path(f),
        }];
        let mut has_rev = false;
        for (k, v) in f.input.attrs() {
            if matches!(
                k.as_str(),
                "type"
                    | "url"
                    | "ref"
                    | "name"
                    | "path"
                    | "allRefs"
                    | "shallow"
                    | "owner"
                    | "repo"
                    | "host"
            ) {
                continue;
            }
            let value = match v {
                FAttr::String(s) => Value::string(s.as_str()),
                FAttr::Int(n) => Value::Int(*n as i64),
                FAttr::Bool(b) => Value::Bool(*b),
            };
            if k == "rev" {
                has_rev = true;
                if let FAttr::String(r) = v {
                    attrs.push(attr(
                        "shortRev",
                        Value::string(r.chars().take(7).collect::<String>()),
                    ));
                }
            }
            if k == "lastModified"
                && let FAttr::Int(n) = v
            {
                attrs.push(attr(
                    "lastModifiedDate",
                    Value::string(envy_fetch::time::last_modified_date(*n)),
                ));
            }
            attrs.push(Attr {
                name: Sym::new(k),
                pos: Pos::NONE,
                value,
            });
        }
        attrs.push(attr("narHash", Value::string(f.tree.nar_hash().to_sri())));
        if git_defaults {
            if !has_rev {
                let zeros = "0".repeat(40);
                attrs.push(attr("shortRev", Value::string(&zeros[..7])));
                attrs.push(attr("rev", Value::string(zeros.as_str())));
            }
            if !f.input.attrs().contains_key("revCount") {
                attrs.push(attr("revCount", Value::Int(0)));
            }
            if !f.input.attrs().contains_key("submodules") {
                attrs.push(attr("submodules", Value::Bool(false)));
            }
        }
        Value::attrs(Attrs::from_unsorted(attrs))
    }
}

fn attr(name: &str, value: Value) -> Attr {
    Attr {
        name: Sym::new(name),
        pos: Pos::NONE,
        value,
    }
}

fn input_of(ev: &Evaluator, pairs: Vec<(&str, FAttr)>, pos: Pos) -> EvalResult<Input> {
    let attrs = pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    Input::from_attrs(attrs).map_err(|e| ev.error(nix_text(e), pos))
}

/// The evaluator's [`Fetch`](crate::store::Fetch) extension, when it has one: it then runs
/// every fetching builtin (and `getFlake`, which only it provides).
fn external(
    ev: &mut Evaluator,
    kind: crate::store::FetchKind,
    args: &[Value],
    pos: Pos,
) -> Option<EvalResult<Value>> {
    let fetch = ev.fetch.clone().filter(|f| f.handles(kind))?;
    Some(fetch.fetch(ev, kind, &args[0], pos))
}

fn prim_get_flake(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    match external(ev, crate::store::FetchKind::Flake, args, pos) {
        Some(r) => r,
        None => Err(ev.error(
            "'builtins.getFlake' is not available in this evaluator (no flake support configured)",
            pos,
        )),
    }
}

fn prim_fetchurl(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    if let Some(r) = external(ev, crate::store::FetchKind::Url, args, pos) {
        return r;
    }
    let a = ev.url_args(&args[0], pos, "fetchurl")?;
    let name = match &a.name {
        Some(n) => n.clone(),
        None => {
            let base = a.url.split(['?', '#']).next().unwrap_or("");
            String::from_utf8_lossy(super::strings::base_name(base.as_bytes())).into_owned()
        }
    };
    if let Err(e) = envy_store::store_path::validate_name(&name) {
        let advice = match (a.from_attrs, a.name.is_some()) {
            (false, _) => {
                "Please pass an attribute set with 'url' and 'name' attributes to 'fetchurl',  so that it can create a valid store path."
            }
            (true, false) => {
                "Please add a valid 'name' attribute to the argument for 'fetchurl', so that it can create a valid store path."
            }
            (true, true) => {
                "Please change the value for the 'name' attribute passed to 'fetchurl', so that it can create a valid store path."
            }
        };
        return Err(ev.error(
            format!(
                "invalid store path name when fetching URL '{}': {}. {advice}",
                a.url,
                e.nix_message()
            ),
            pos,
        ));
    }
    let input = input_of(
        ev,
        vec![
            ("type", FAttr::String("file".into())),
            ("url", FAttr::String(a.url.clone())),
            ("name", FAttr::String(name)),
        ],
        pos,
    )?;
    let fetched = ev.fetch_input(&input, pos)?;
    if let Some(exp) = &a.hash {
        let bytes = fs_err::read(fetched.tree.root()).map_err(|e| ev.error(e.to_string(), pos))?;
        let got = Hash::of(exp.algo(), &bytes);
        if &got != exp {
            return Err(ev.error(
                format!(
                    "hash mismatch in file downloaded from '{}':\n  specified: {}\n  got:       {}",
                    a.url,
                    exp.to_sri(),
                    got.to_sri()
                ),
                pos,
            ));
        }
    }
    Ok(ev.fetched_path(&fetched))
}

fn prim_fetch_tarball(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    if let Some(r) = external(ev, crate::store::FetchKind::Tarball, args, pos) {
        return r;
    }
    let a = ev.url_args(&args[0], pos, "fetchTarball")?;
    let mut pairs = vec![
        ("type", FAttr::String("tarball".into())),
        ("url", FAttr::String(a.url.clone())),
    ];
    if let Some(n) = a.name {
        pairs.push(("name", FAttr::String(n)));
    }
    if let Some(h) = a.hash {
        pairs.push(("narHash", FAttr::String(h.to_sri())));
    }
    let input = input_of(ev, pairs, pos)?;
    let fetched = ev.fetch_input(&input, pos)?;
    Ok(ev.fetched_path(&fetched))
}

fn prim_fetch_git(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    if let Some(r) = external(ev, crate::store::FetchKind::Git, args, pos) {
        return r;
    }
    let v = ev.force(&args[0], pos)?;
    let mut pairs: Vec<(&str, FAttr)> = vec![("type", FAttr::String("git".into()))];
    let mut url = None;
    match &v {
        Value::Attrs(a) => {
            for attr in a.iter() {
                let val = attr.value.clone();
                let name = attr.name.as_str();
                match name {
                    "url" => {
                        let s = ev
                            .coerce_to_string(&val, attr.pos, &mut Context::new(), CoerceOpts::default())
                            .map_err(|e| e.frame(attr.pos, "while evaluating the `url` attribute passed to builtins.fetchGit"))?;
                        url = Some(String::from_utf8_lossy(&s).into_owned());
                    }
                    "ref" | "rev" | "name" => {
                        let s = ev.force_string_no_ctx(
                            &val,
                            attr.pos,
                            "while evaluating an attribute passed to builtins.fetchGit",
                        )?;
                        pairs.push((name, FAttr::String(s.to_str_lossy().into_owned())));
                    }
                    "submodules" | "shallow" | "allRefs" => {
                        let b = ev.force_bool(
                            &val,
                            attr.pos,
                            "while evaluating an attribute passed to builtins.fetchGit",
                        )?;
                        pairs.push((name, FAttr::Bool(b)));
                    }
                    other => {
                        return Err(ev.error(
                            format!("unsupported argument '{other}' to 'fetchGit'"),
                            attr.pos,
                        ));
                    }
                }
            }
        }
        other => {
            let s = ev
                .coerce_to_string(other, pos, &mut Context::new(), CoerceOpts::default())
                .map_err(|e| {
                    e.frame(
                        pos,
                        "while evaluating the argument passed to builtins.fetchGit",
                    )
                })?;
            url = Some(String::from_utf8_lossy(&s).into_owned());
        }
    }
    let Some(mut url) = url else {
        return Err(ev.error("'url' argument required", pos));
    };
    if url.starts_with('/') {
        url = format!("file://{url}");
    }
    pairs.push(("url", FAttr::String(url)));
    let input = input_of(ev, pairs, pos)?;
    let fetched = ev.fetch_input(&input, pos)?;
    Ok(ev.fetched_attrs(&fetched, true))
}

fn prim_fetch_tree(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    if let Some(r) = external(ev, crate::store::FetchKind::Tree, args, pos) {
        return r;
    }
    let v = ev.force(&args[0], pos)?;
    let input = match &v {
        Value::Attrs(a) => {
            let mut attrs = envy_fetch::Attrs::new();
            for attr in a.sorted_by_name() {
                let val = ev.force(&attr.value, attr.pos)?;
                let fa = match &val {
                    Value::String(s) => FAttr::String(s.to_str_lossy().into_owned()),
                    Value::Bool(b) => FAttr::Bool(*b),
                    Value::Int(i) if *i < 0 => {
                        return Err(ev.error(
                            format!(
                                "negative value given for 'fetchTree' argument '{}': {i}",
                                attr.name
                            ),
                            pos,
                        ));
                    }
                    Value::Int(i) => FAttr::Int(*i as u64),
                    Value::Path(p) => FAttr::String(p.to_string()),
                    other => {
                        return Err(ev.error(
                            format!(
                                "fetchTree argument '{}' is {} while a string, Boolean or integer is expected",
                                attr.name,
                                other.typ().showtype()
                            ),
                            pos,
                        ));
                    }
                };
                attrs.insert(attr.name.as_str().to_string(), fa);
            }
            Input::from_attrs(attrs).map_err(|e| ev.error(nix_text(e), pos))?
        }
        Value::String(s) => {
            let s = s.to_str_lossy().into_owned();
            if let Some(rest) = s
                .strip_prefix("file:")
                .or_else(|| s.strip_prefix("tarball+file:"))
                && !rest.starts_with('/')
            {
                let what =
                    if s.ends_with(".tar.gz") || s.ends_with(".tgz") || s.starts_with("tarball+") {
                        "tarball"
                    } else {
                        "file"
                    };
                return Err(ev
                    .error(
                        format!(
                            "{what} '{s}' must use an absolute path. The 'file' scheme does not support relative paths."
                        ),
                        pos,
                    )
                    .frame(pos, format!("while fetching the input '{s}'")));
            }
            Input::from_url(&s).map_err(|e| ev.error(nix_text(e), pos))?
        }
        other => {
            return Err(ev.type_error("a set", other).at(pos).frame(
                pos,
                "while evaluating the argument passed to builtins.fetchTree",
            ));
        }
    };
    let fetched = ev.fetch_input(&input, pos)?;
    let git = input.input_type() == "git";
    Ok(ev.fetched_attrs(&fetched, git))
}

fn prim_flake_ref_to_string(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.force_attrs(
        &args[0],
        pos,
        "while evaluating the argument passed to builtins.flakeRefToString",
    )?;
    let mut attrs = envy_fetch::Attrs::new();
    for attr in a.sorted_by_name() {
        let v = ev.force(&attr.value, attr.pos)?;
        let fa = match &v {
            Value::String(s) => FAttr::String(s.to_str_lossy().into_owned()),
            Value::Int(i) if *i < 0 => {
                return Err(ev.error(
                    format!("negative value given for flake ref attr {}: {i}", attr.name),
                    pos,
                ));
            }
            Value::Int(i) => FAttr::Int(*i as u64),
            Value::Bool(b) => FAttr::Bool(*b),
            other => {
                return Err(ev.error(
                    format!(
                        "flake reference attribute sets may only contain integers, Booleans, and strings, but attribute '{}' is {}",
                        attr.name,
                        other.typ().showtype()
                    ),
                    pos,
                ));
            }
        };
        attrs.insert(attr.name.as_str().to_string(), fa);
    }
    // `dir` belongs to the flake reference, not to the input.
    let dir = attrs.remove("dir");
    let input = Input::from_attrs(attrs).map_err(|e| ev.error(nix_text(e), pos))?;
    let mut s = input.to_string();
    if let Some(FAttr::String(d)) = dir {
        s.push(if s.contains('?') { '&' } else { '?' });
        s.push_str("dir=");
        s.push_str(&d);
    }
    Ok(Value::string(s))
}

/// `builtins.parseFlakeRef "github:NixOS/nixpkgs/23.05?dir=lib"`: the reference as the
/// attribute set `flakeRefToString` takes. Without a base directory, as in Nix, a path must
/// be absolute; unlike Nix, an absolute path is not looked up on disk (no `git+file` for a
/// path inside a git work tree, no search upward for `flake.nix`): it is a `path` reference.
fn prim_parse_flake_ref(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let s = ev
        .force_string_no_ctx(
            &args[0],
            pos,
            "while evaluating the argument passed to builtins.parseFlakeRef",
        )?
        .to_str_lossy()
        .into_owned();
    let attrs = parse_flake_ref_attrs(&s).map_err(|msg| ev.error(msg, pos))?;
    let mut out = Vec::with_capacity(attrs.len());
    for (k, v) in attrs {
        let v = match v {
            FAttr::String(s) => Value::string(s.as_str()),
            FAttr::Int(n) => Value::Int(n as i64),
            FAttr::Bool(b) => Value::Bool(b),
        };
        out.push(Attr {
            name: Sym::new(&k),
            pos: Pos::NONE,
            value: v,
        });
    }
    Ok(Value::attrs(Attrs::from_unsorted(out)))
}

/// A flake reference string as attributes (`dir` included), or Nix's message.
pub(crate) fn parse_flake_ref_attrs(s: &str) -> Result<envy_fetch::Attrs, String> {
    use envy_fetch::input::{is_flake_id, is_ref, is_rev};
    let (body, fragment) = s.split_once('#').unwrap_or((s, ""));
    if !fragment.is_empty() {
        return Err(format!(
            "unexpected fragment '{fragment}' in flake reference '{s}'"
        ));
    }
    // `id`, `id/ref`, `id/rev`, `id/ref/rev`: an indirect reference.
    let parts: Vec<&str> = body.split('/').collect();
    let indirect = !body.contains(['?', ':'])
        && is_flake_id(parts[0])
        && match parts.as_slice() {
            [_] => true,
            [_, x] => is_ref(x) || is_rev(x),
            [_, r, v] => is_ref(r) && is_rev(v),
            _ => false,
        };
    let url = if indirect {
        format!("flake:{body}")
    } else if !body.split('?').next().unwrap_or("").contains(':') {
        let path = body.split('?').next().unwrap_or("");
        if !path.starts_with('/') {
            return Err(format!("flake reference '{s}' is not an absolute path"));
        }
        format!("path:{body}")
    } else {
        body.to_string()
    };
    let mut parsed = envy_fetch::ParsedUrl::parse(&url).map_err(nix_text)?;
    let dir = parsed.query.remove("dir");
    let input = Input::from_parsed_url(&parsed).map_err(nix_text)?;
    let mut attrs = input.into_attrs();
    if let Some(d) = dir.filter(|d| !d.is_empty()) {
        attrs.insert("dir".into(), FAttr::String(d));
    }
    Ok(attrs)
}
