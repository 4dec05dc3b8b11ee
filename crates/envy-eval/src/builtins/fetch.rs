//! Fetchers: `fetchurl`, `fetchTarball`, `fetchGit`, `fetchTree`. Downloads and checkouts
//! go through the evaluator's `Fetcher`; the results are hashed (and checked against a
//! given hash) and added to the store, once per evaluation.

use std::path::Path;

use envy_store::{FileIngestionMethod, Hash, HashAlgo, StorePath};

use super::primop;
use crate::error::{ErrorExt, EvalResult};
use crate::eval::{CoerceOpts, Evaluator};
use crate::fetcher::{GitRequest, unpack_tarball};
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[
    primop!("fetchurl", 1, prim_fetchurl),
    primop!("fetchTarball", 1, prim_fetch_tarball),
    primop!("fetchGit", 1, prim_fetch_git),
    primop!("fetchTree", 1, prim_fetch_tree),
    primop!("flakeRefToString", 1, prim_flake_ref_to_string),
];

/// The parts of a fetcher's argument, whether a URL string or an attribute set.
struct FetchArgs {
    url: String,
    name: Option<String>,
    hash: Option<Hash>,
    from_attrs: bool,
}

impl Evaluator {
    fn fetch_args(
        &mut self,
        v: &Value,
        pos: Pos,
        who: &str,
        algo: HashAlgo,
    ) -> EvalResult<FetchArgs> {
        let v = self.force(v, pos)?;
        let Value::Attrs(a) = &v else {
            let url = self
                .coerce_to_string(&v, pos, &mut Context::new(), CoerceOpts::default())
                .map_err(|e| e.frame(pos, "while evaluating the url we should fetch"))?;
            return Ok(FetchArgs {
                url: String::from_utf8_lossy(&url).into_owned(),
                name: None,
                hash: None,
                from_attrs: false,
            });
        };
        let mut out = FetchArgs {
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
                        let expected = if attr.name.as_str() == "sha256" {
                            Some(algo)
                        } else {
                            None
                        };
                        out.hash =
                            Some(Hash::parse_any(&s, expected).map_err(|e| {
                                self.error(e.to_string().replace('`', "'"), attr.pos)
                            })?);
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

    fn check_hash(
        &self,
        what: &str,
        expected: Option<&Hash>,
        got_bytes: &[u8],
        pos: Pos,
    ) -> EvalResult<Hash> {
        let Some(exp) = expected else {
            return Ok(Hash::sha256(got_bytes));
        };
        let got = Hash::of(exp.algo(), got_bytes);
        if &got != exp {
            return Err(self.error(
                format!(
                    "hash mismatch in {what}:\n  specified: {}\n  got:       {}",
                    exp.to_sri(),
                    got.to_sri()
                ),
                pos,
            ));
        }
        Ok(got)
    }

    fn add_fetched(
        &mut self,
        name: &str,
        method: FileIngestionMethod,
        hash: &Hash,
        nar: &[u8],
        pos: Pos,
    ) -> EvalResult<StorePath> {
        self.store
            .add_source(name, method, hash, nar)
            .map_err(|e| self.error(e.to_string(), pos))
    }

    /// `builtins.fetchurl`: a flat file.
    fn fetch_file(
        &mut self,
        args: &FetchArgs,
        default_name: Option<&str>,
        pos: Pos,
    ) -> EvalResult<StorePath> {
        let name = match (&args.name, default_name) {
            (Some(n), _) => n.clone(),
            (None, Some(d)) => d.to_string(),
            (None, None) => {
                let base = args.url.split(['?', '#']).next().unwrap_or("");
                String::from_utf8_lossy(super::strings::base_name(base.as_bytes())).into_owned()
            }
        };
        if let Err(e) = envy_store::store_path::validate_name(&name) {
            let advice = match (args.from_attrs, args.name.is_some()) {
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
            return Err(self.error(
                format!(
                    "invalid store path name when fetching URL '{}': {}. {advice}",
                    args.url,
                    e.nix_message()
                ),
                pos,
            ));
        }
        let key = format!("file\0{}\0{name}", args.url);
        if let Some(sp) = self.fetch_cache.get(&key) {
            return Ok(sp.clone());
        }
        let bytes = self
            .fetcher
            .download(&args.url)
            .map_err(|e| self.error(e.0, pos))?;
        let hash = self.check_hash(
            &format!("file downloaded from '{}'", args.url),
            args.hash.as_ref(),
            &bytes,
            pos,
        )?;
        let mut nar = Vec::new();
        envy_store::nar::dump_bytes(&bytes, false, &mut nar)
            .map_err(|e| self.error(e.to_string(), pos))?;
        let sp = self.add_fetched(&name, FileIngestionMethod::Flat, &hash, &nar, pos)?;
        self.fetch_cache.insert(key, sp.clone());
        Ok(sp)
    }

    /// `builtins.fetchTarball`: an unpacked tree; returns its path and NAR hash.
    fn fetch_tarball(&mut self, args: &FetchArgs, pos: Pos) -> EvalResult<(StorePath, Hash)> {
        let name = args.name.clone().unwrap_or_else(|| "source".to_string());
        let key = format!("tarball\0{}\0{name}", args.url);
        if let Some((sp, h)) = self.fetch_tree_cache.get(&key) {
            return Ok((sp.clone(), *h));
        }
        let bytes = self
            .fetcher
            .download(&args.url)
            .map_err(|e| self.error(e.0, pos))?;
        let tmp = tempfile::tempdir()
            .map_err(|e| self.error(format!("cannot create a temporary directory: {e}"), pos))?;
        let root = unpack_tarball(&bytes, tmp.path()).map_err(|e| self.error(e.0, pos))?;
        let (sp, hash) = self.add_tree(&root, &name, args.hash.as_ref(), &args.url, pos)?;
        self.fetch_tree_cache.insert(key, (sp.clone(), hash));
        Ok((sp, hash))
    }

    fn add_tree(
        &mut self,
        root: &Path,
        name: &str,
        expected: Option<&Hash>,
        url: &str,
        pos: Pos,
    ) -> EvalResult<(StorePath, Hash)> {
        let mut nar = Vec::new();
        envy_store::nar::dump_path(root, &mut nar).map_err(|e| self.error(e.to_string(), pos))?;
        let hash = Hash::sha256(&nar);
        if let Some(exp) = expected {
            let got = Hash::of(exp.algo(), &nar);
            if &got != exp {
                return Err(self.error(
                    format!(
                        "NAR hash mismatch in input '{url}', expected '{}' but got '{}'",
                        exp.to_sri(),
                        got.to_sri()
                    ),
                    pos,
                ));
            }
        }
        let sp = self.add_fetched(name, FileIngestionMethod::Recursive, &hash, &nar, pos)?;
        Ok((sp, hash))
    }

    fn fetch_git(&mut self, v: &Value, pos: Pos) -> EvalResult<Value> {
        let v = self.force(v, pos)?;
        let mut req = GitRequest::default();
        let mut name = "source".to_string();
        match &v {
            Value::Attrs(a) => {
                for attr in a.iter() {
                    let val = attr.value.clone();
                    match attr.name.as_str() {
                        "url" => {
                            let s = self
                                .coerce_to_string(&val, attr.pos, &mut Context::new(), CoerceOpts::default())
                                .map_err(|e| e.frame(attr.pos, "while evaluating the `url` attribute passed to builtins.fetchGit"))?;
                            req.url = String::from_utf8_lossy(&s).into_owned();
                        }
                        "ref" => req.reference = Some(self.force_string_no_ctx(&val, attr.pos, "while evaluating the `ref` attribute passed to builtins.fetchGit")?.to_str_lossy().into_owned()),
                        "rev" => req.rev = Some(self.force_string_no_ctx(&val, attr.pos, "while evaluating the `rev` attribute passed to builtins.fetchGit")?.to_str_lossy().into_owned()),
                        "name" => name = self.force_string_no_ctx(&val, attr.pos, "while evaluating the `name` attribute passed to builtins.fetchGit")?.to_str_lossy().into_owned(),
                        "submodules" => req.submodules = self.force_bool(&val, attr.pos, "while evaluating the `submodules` attribute passed to builtins.fetchGit")?,
                        "shallow" | "allRefs" | "lfs" | "exportIgnore" => {
                            self.force_bool(&val, attr.pos, "while evaluating an attribute passed to builtins.fetchGit")?;
                        }
                        other => return Err(self.error(format!("unsupported argument '{other}' to 'fetchGit'"), attr.pos)),
                    }
                }
            }
            other => {
                let s = self
                    .coerce_to_string(other, pos, &mut Context::new(), CoerceOpts::default())
                    .map_err(|e| {
                        e.frame(
                            pos,
                            "while evaluating the argument passed to builtins.fetchGit",
                        )
                    })?;
                req.url = String::from_utf8_lossy(&s).into_owned();
            }
        }
        if req.url.starts_with('/') {
            req.url = format!("file://{}", req.url);
        }
        let key = format!(
            "git\0{}\0{:?}\0{:?}\0{}\0{name}",
            req.url, req.reference, req.rev, req.submodules
        );
        if let Some(v) = self.fetch_value_cache.get(&key) {
            return Ok(v.clone());
        }
        let tmp = tempfile::tempdir()
            .map_err(|e| self.error(format!("cannot create a temporary directory: {e}"), pos))?;
        let commit = self
            .fetcher
            .git_checkout(&req, tmp.path())
            .map_err(|e| self.error(e.0, pos))?;
        let url = req.url.clone();
        let (sp, nar_hash) = self.add_tree(tmp.path(), &name, None, &url, pos)?;
        let short: String = commit.rev.chars().take(7).collect();
        let attrs = vec![
            attr("lastModified", Value::Int(commit.last_modified)),
            attr(
                "lastModifiedDate",
                Value::string(format_date(commit.last_modified)),
            ),
            attr("narHash", Value::string(nar_hash.to_sri())),
            Attr {
                name: Sym::OUT_PATH,
                pos: Pos::NONE,
                value: self.store_path_value(&sp),
            },
            attr("rev", Value::string(commit.rev.as_str())),
            attr("revCount", Value::Int(commit.rev_count as i64)),
            attr("shortRev", Value::string(short)),
            attr("submodules", Value::Bool(req.submodules)),
        ];
        let v = Value::attrs(Attrs::from_unsorted(attrs));
        self.fetch_value_cache.insert(key, v.clone());
        Ok(v)
    }
}

fn attr(name: &str, value: Value) -> Attr {
    Attr {
        name: Sym::new(name),
        pos: Pos::NONE,
        value,
    }
}

/// `YYYYMMDDHHMMSS` in UTC, as Nix's `lastModifiedDate`.
fn format_date(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}{:02}{:02}{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn prim_fetchurl(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.fetch_args(&args[0], pos, "fetchurl", HashAlgo::Sha256)?;
    let sp = ev.fetch_file(&a, None, pos)?;
    Ok(ev.store_path_value(&sp))
}

fn prim_fetch_tarball(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.fetch_args(&args[0], pos, "fetchTarball", HashAlgo::Sha256)?;
    let (sp, _) = ev.fetch_tarball(&a, pos)?;
    Ok(ev.store_path_value(&sp))
}

fn prim_fetch_git(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    ev.fetch_git(&args[0], pos)
}

/// Parse a flake-style reference string into fetchTree attributes.
fn parse_tree_ref(s: &str) -> Result<Vec<(String, String)>, String> {
    let (scheme, rest) = s
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not a valid URL"))?;
    let archive = [
        ".tar.gz", ".tgz", ".tar.xz", ".txz", ".tar.bz2", ".tbz2", ".tar.zst", ".tar", ".zip",
    ]
    .iter()
    .any(|e| s.ends_with(e));
    let (ty, scheme) = match scheme.split_once('+') {
        Some((ty, sch)) => (ty.to_string(), sch.to_string()),
        None => match scheme {
            "git" | "github" | "gitlab" | "path" => (scheme.to_string(), scheme.to_string()),
            _ if archive => ("tarball".to_string(), scheme.to_string()),
            _ => ("file".to_string(), scheme.to_string()),
        },
    };
    if scheme == "file" && !rest.starts_with('/') {
        let what = if ty == "tarball" { "tarball" } else { "file" };
        return Err(format!(
            "{what} '{s}' must use an absolute path. The 'file' scheme does not support relative paths."
        ));
    }
    let url = match scheme.as_str() {
        "file" => format!("file://{}", rest.trim_start_matches("//")),
        "path" => rest.to_string(),
        _ => format!("{scheme}:{rest}"),
    };
    Ok(vec![("type".into(), ty), ("url".into(), url)])
}

fn prim_fetch_tree(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let v = ev.force(&args[0], pos)?;
    let mut fields: Vec<(String, Value, Pos)> = Vec::new();
    match &v {
        Value::Attrs(a) => {
            for attr in a.sorted_by_name() {
                let val = ev.force(&attr.value, attr.pos)?;
                if let Value::Int(i) = val
                    && i < 0
                {
                    return Err(ev.error(
                        format!(
                            "negative value given for 'fetchTree' argument '{}': {i}",
                            attr.name
                        ),
                        pos,
                    ));
                }
                fields.push((attr.name.as_str().to_string(), val, attr.pos));
            }
        }
        Value::String(s) => {
            let s = s.to_str_lossy().into_owned();
            let parsed = parse_tree_ref(&s).map_err(|m| {
                ev.error(m, pos)
                    .frame(pos, format!("while fetching the input '{s}'"))
            })?;
            for (k, val) in parsed {
                fields.push((k, Value::string(val), pos));
            }
        }
        other => {
            return Err(ev.type_error("a set", other).at(pos).frame(
                pos,
                "while evaluating the argument passed to builtins.fetchTree",
            ));
        }
    }
    let get = |k: &str| fields.iter().find(|f| f.0 == k).map(|f| f.1.clone());
    let ty = match get("type") {
        Some(Value::String(s)) => s.to_str_lossy().into_owned(),
        _ => return Err(ev.error("attribute 'type' is missing in call to 'fetchTree'", pos)),
    };
    let str_of = |ev: &mut Evaluator, k: &str| -> EvalResult<Option<String>> {
        match get(k) {
            Some(v) => Ok(Some(
                ev.force_string_no_ctx(&v, pos, "while evaluating a fetchTree attribute")?
                    .to_str_lossy()
                    .into_owned(),
            )),
            None => Ok(None),
        }
    };
    let nar_hash = match str_of(ev, "narHash")? {
        Some(h) => Some(
            Hash::parse_any(&h, Some(HashAlgo::Sha256))
                .map_err(|e| ev.error(e.to_string(), pos))?,
        ),
        None => None,
    };
    match ty.as_str() {
        "file" | "tarball" => {
            let url = str_of(ev, "url")?.ok_or_else(|| {
                ev.error("attribute 'url' is missing in call to 'fetchTree'", pos)
            })?;
            let a = FetchArgs {
                url,
                name: str_of(ev, "name")?,
                hash: nar_hash,
                from_attrs: true,
            };
            let (sp, h) = if ty == "tarball" {
                ev.fetch_tarball(&a, pos)?
            } else {
                let plain = FetchArgs { hash: None, ..a };
                let sp = ev.fetch_file(&plain, Some("source"), pos)?;
                (sp, Hash::sha256(&[]))
            };
            Ok(Value::attrs(Attrs::from_unsorted(vec![
                attr("narHash", Value::string(h.to_sri())),
                Attr {
                    name: Sym::OUT_PATH,
                    pos: Pos::NONE,
                    value: ev.store_path_value(&sp),
                },
            ])))
        }
        "git" => {
            let mut attrs = Vec::new();
            for (k, val, p) in &fields {
                if k == "type" || k == "narHash" {
                    continue;
                }
                attrs.push(Attr {
                    name: Sym::new(k),
                    pos: *p,
                    value: val.clone(),
                });
            }
            let arg = Value::attrs(Attrs::from_unsorted(attrs));
            ev.fetch_git(&arg, pos)
        }
        "path" => {
            let path = str_of(ev, "path")?.or(str_of(ev, "url")?).ok_or_else(|| {
                ev.error("attribute 'path' is missing in call to 'fetchTree'", pos)
            })?;
            let name = str_of(ev, "name")?.unwrap_or_else(|| "source".into());
            let sp = ev.add_path_to_store(
                Path::new(&path),
                &name,
                FileIngestionMethod::Recursive,
                None,
                nar_hash.as_ref(),
                pos,
            )?;
            Ok(Value::attrs(Attrs::from_unsorted(vec![Attr {
                name: Sym::OUT_PATH,
                pos: Pos::NONE,
                value: ev.store_path_value(&sp),
            }])))
        }
        other => Err(ev.error(
            format!("input type '{other}' is not supported by envy's fetchTree"),
            pos,
        )),
    }
}

fn prim_flake_ref_to_string(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.force_attrs(
        &args[0],
        pos,
        "while evaluating the argument passed to builtins.flakeRefToString",
    )?;
    let mut fields: Vec<(String, String)> = Vec::new();
    for attr in a.sorted_by_name() {
        let v = ev.force(&attr.value, attr.pos)?;
        let s = match &v {
            Value::String(s) => s.to_str_lossy().into_owned(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => {
                if *b {
                    "1".into()
                } else {
                    "0".into()
                }
            }
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
        fields.push((attr.name.as_str().to_string(), s));
    }
    let take = |k: &str, f: &mut Vec<(String, String)>| -> Option<String> {
        let i = f.iter().position(|x| x.0 == k)?;
        Some(f.remove(i).1)
    };
    let ty =
        take("type", &mut fields).ok_or_else(|| ev.error("attribute 'type' is missing", pos))?;
    let mut base = match ty.as_str() {
        "github" | "gitlab" | "sourcehut" => {
            let owner = take("owner", &mut fields).unwrap_or_default();
            let repo = take("repo", &mut fields).unwrap_or_default();
            let mut s = format!("{ty}:{owner}/{repo}");
            if let Some(r) = take("rev", &mut fields).or_else(|| take("ref", &mut fields)) {
                s.push('/');
                s.push_str(&r);
            }
            s
        }
        "indirect" => {
            let id = take("id", &mut fields).unwrap_or_default();
            let mut s = format!("flake:{id}");
            for k in ["ref", "rev"] {
                if let Some(r) = take(k, &mut fields) {
                    s.push('/');
                    s.push_str(&r);
                }
            }
            s
        }
        "path" => format!("path:{}", take("path", &mut fields).unwrap_or_default()),
        _ => {
            let url = take("url", &mut fields).unwrap_or_default();
            if url.starts_with(&format!("{ty}+")) || ty == "tarball" || ty == "file" {
                url
            } else {
                format!("{ty}+{url}")
            }
        }
    };
    if !fields.is_empty() {
        let q: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        base.push('?');
        base.push_str(&q.join("&"));
    }
    Ok(Value::string(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(format_date(0), "19700101000000");
        assert_eq!(format_date(1_795_671_779), "20261126054259");
    }
}
