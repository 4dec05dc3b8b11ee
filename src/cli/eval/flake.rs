//! `envy eval FLAKE#ATTR`: a flake output, evaluated and printed as `nix eval` prints it.
//!
//! The attribute is looked up as Nix looks up an installable: `packages.<system>.ATTR`, then
//! `legacyPackages.<system>.ATTR`, then `ATTR` itself; with no attribute,
//! `packages.<system>.default`, then `defaultPackage.<system>`. The value is forced deeply and
//! printed as Nix prints values (`--json`: as JSON, paths copied; `--raw`: a string as it is,
//! with no newline).

use std::io::Write;
use std::path::Path;

use anyhow::{Context as _, Result};
use envy_eval::eval::CoerceOpts;
use envy_eval::symbol::Sym;
use envy_eval::value::Value;
use envy_eval::{DummyStore, EvalResult, Evaluator, Pos, print};
use envy_flake::{FlakeRef, LockFlags};

/// How the value is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// As Nix prints values.
    Nix,
    /// As JSON.
    Json,
    /// A string as it is.
    Raw,
}

/// `FLAKE#ATTR` split at the first `#` (an empty flake part is `.`), or `None` when `arg`
/// names a file.
pub fn installable(arg: &Path) -> Option<(String, String)> {
    let (flake, attr) = arg.to_str()?.split_once('#')?;
    let flake = if flake.is_empty() { "." } else { flake };
    Some((flake.to_string(), attr.to_string()))
}

/// Nix's "does not provide attribute 'a', 'b' or 'c'".
fn english_list(paths: &[String]) -> String {
    let quoted: Vec<String> = paths.iter().map(|p| format!("'{p}'")).collect();
    match quoted.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
        _ => quoted.join(""),
    }
}

/// What one run needs.
pub struct Request<'a> {
    pub flake: &'a str,
    pub attr: &'a str,
    pub format: Format,
    pub flags: LockFlags,
    pub show_trace: bool,
}

/// Evaluate and print; exit code 1 on an evaluation error (printed as Nix prints it).
pub fn run(req: &Request<'_>) -> Result<std::process::ExitCode> {
    let cwd = crate::project::current_dir()?;
    let store_dir = crate::engine::flakes::store_dir()?;
    let session = crate::engine::flakes::session(store_dir.clone())?;
    let system = crate::backend::current_system();
    let mut ev = crate::engine::flakes::evaluator(
        &session,
        Box::new(DummyStore::new(store_dir)),
        None,
        &system,
    );
    let top = FlakeRef::parse(req.flake, Some(&cwd))
        .with_context(|| format!("cannot use flake reference `{}`", req.flake))?;
    let locked = session
        .lock(&mut ev, &top, &req.flags)
        .with_context(|| format!("cannot lock flake `{top}`"))?;
    for n in &locked.notices {
        eprintln!("envy: {n}");
    }
    let result = (|| -> EvalResult<Result<Vec<u8>, String>> {
        let flake = session.call(&mut ev, &locked)?;
        let attrs = ev.force_attrs(&flake, Pos::NONE, "while evaluating the flake")?;
        let outputs = attrs.get(Sym::new("outputs")).cloned().unwrap_or(flake);
        let tried = crate::engine::flakes::installable_attr_paths(req.attr, &system);
        for path in &tried {
            if let Some(v) = lookup(&mut ev, &outputs, path)? {
                return print_value(&mut ev, &v, req.format).map(Ok);
            }
        }
        Ok(Err(format!(
            "flake '{}' does not provide attribute {}",
            locked.flake.original,
            english_list(&tried)
        )))
    })();
    let mut stdout = std::io::stdout().lock();
    let code = match result {
        Ok(Ok(bytes)) => {
            stdout.write_all(&bytes)?;
            stdout.flush()?;
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(missing)) => {
            eprintln!("error: {missing}");
            std::process::ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("{}", session.mounts().render_error(&e, req.show_trace));
            std::process::ExitCode::from(1)
        }
    };
    std::mem::forget(ev);
    Ok(code)
}

/// The value at dotted `path` under `root`; `None` when an attribute on the way is missing
/// (other errors, such as a failing `throw`, are errors).
fn lookup(ev: &mut Evaluator, root: &Value, path: &str) -> EvalResult<Option<Value>> {
    let mut v = root.clone();
    for part in super::split_attr_path(path) {
        let forced = ev.force(&v, Pos::NONE)?;
        let Value::Attrs(a) = &forced else {
            return Ok(None);
        };
        match a.get(Sym::new(&part)) {
            Some(next) => v = next.clone(),
            None => return Ok(None),
        }
    }
    Ok(Some(v))
}

fn print_value(ev: &mut Evaluator, v: &Value, format: Format) -> EvalResult<Vec<u8>> {
    match format {
        Format::Nix => {
            let v = ev.force_deep(v, Pos::NONE)?;
            let mut out = print::print_value_checked(ev, &v)?;
            out.push(b'\n');
            Ok(out)
        }
        Format::Json => {
            let v = ev.force_deep(v, Pos::NONE)?;
            let mut ctx = Default::default();
            let mut out = ev.to_json(&v, Pos::NONE, &mut ctx, true)?;
            out.push(b'\n');
            Ok(out)
        }
        Format::Raw => {
            let mut ctx = Default::default();
            ev.coerce_to_string(
                v,
                Pos::NONE,
                &mut ctx,
                CoerceOpts {
                    coerce_more: false,
                    copy_to_store: true,
                    canonicalize_path: true,
                },
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::flakes::installable_attr_paths;

    #[test]
    fn installables_split_at_the_first_hash() {
        assert_eq!(
            installable(Path::new(".#a.b")),
            Some((".".into(), "a.b".into()))
        );
        assert_eq!(installable(Path::new("#x")), Some((".".into(), "x".into())));
        assert_eq!(
            installable(Path::new("git+file:///r?ref=main#x")),
            Some(("git+file:///r?ref=main".into(), "x".into()))
        );
        assert_eq!(installable(Path::new("default.nix")), None);
    }

    #[test]
    fn attribute_paths_are_tried_in_nixs_order() {
        assert_eq!(
            installable_attr_paths("hello", "x86_64-linux"),
            [
                "packages.x86_64-linux.hello",
                "legacyPackages.x86_64-linux.hello",
                "hello"
            ]
        );
        assert_eq!(
            english_list(&installable_attr_paths("", "x86_64-linux")),
            "'packages.x86_64-linux.default' or 'defaultPackage.x86_64-linux'"
        );
        assert_eq!(
            english_list(&installable_attr_paths("n", "s")),
            "'packages.s.n', 'legacyPackages.s.n' or 'n'"
        );
    }
}
