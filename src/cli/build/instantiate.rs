//! `envy build FILE.nix [-A ATTR]`: evaluate the file with envy's evaluator through the
//! embedded engine (`crate::engine`: the store it writes to is envy's own, import from
//! derivation builds with envy's builder), select the attribute as `nix-build -A` does, and
//! return the `.drv` paths of the derivations found: the value itself, or the derivations in
//! a list or at the top of an attribute set.

use std::path::Path;

use anyhow::{Result, anyhow};
use envy_eval::symbol::Sym;
use envy_eval::value::Value;
use envy_eval::{EvalResult, EvalSettings, EvalStore, Evaluator, Pos, Realiser, SearchPathEntry};
use envy_store::{StoreDir, StorePath};

use crate::cli::eval::{auto_call, print_diagnostic, select_attr_path};
use crate::engine::Engine;

/// Evaluate `file` into envy's store and return the derivations to build (in the order
/// found).
pub fn run(engine: &Engine, file: &Path, attrs: Vec<String>) -> Result<Vec<StorePath>> {
    let store_dir = engine.store().store_dir().clone();
    run_with(
        store_dir,
        Box::new(engine.eval_store()),
        Box::new(engine.realiser()),
        file,
        attrs,
    )
}

/// Evaluate `file` writing into `eval_store` (envy's store or Nix's, through its daemon),
/// building import-from-derivation inputs with `realiser`.
pub fn run_with(
    store_dir: StoreDir,
    eval_store: Box<dyn EvalStore + Send>,
    realiser: Box<dyn Realiser + Send>,
    file: &Path,
    attrs: Vec<String>,
) -> Result<Vec<StorePath>> {
    let file = std::path::absolute(file)?;
    let cwd = std::env::current_dir()?;
    let mut settings = EvalSettings {
        cwd,
        ..EvalSettings::default()
    };
    if let Ok(np) = std::env::var(envy_eval::env_vars::NIX_PATH) {
        settings.search_path = np
            .split(':')
            .filter(|e| !e.is_empty())
            .map(SearchPathEntry::parse)
            .collect();
    }
    settings.parse.home = std::env::var(envy_eval::env_vars::HOME).ok();
    let result = envy_eval::run_with_stack(move || {
        let mut ev = Evaluator::builder()
            .settings(settings)
            .store(eval_store)
            .realiser(realiser)
            .diagnostics(Box::new(|d| print_diagnostic(d, false)))
            .build();
        let found = derivations(&mut ev, &file, &attrs);
        found.map_err(|e| e.render(false))
    });
    let drv_paths = result.map_err(|rendered| anyhow!(rendered))?;
    drv_paths
        .iter()
        .map(|p| {
            store_dir
                .parse(p)
                .map_err(|e| anyhow!("`{p}` is not a derivation in the store: {e}"))
        })
        .collect()
}

fn derivations(ev: &mut Evaluator, file: &Path, attrs: &[String]) -> EvalResult<Vec<String>> {
    let root = ev.eval_file(file)?;
    let paths = if attrs.is_empty() {
        vec![String::new()]
    } else {
        attrs.to_vec()
    };
    let mut found = Vec::new();
    for path in paths {
        let v = select_attr_path(ev, &root, &path, &[])?;
        let v = auto_call(ev, &v, &[])?;
        collect(ev, &v, true, &mut found)?;
    }
    Ok(found)
}

/// `nix-build`'s `getDerivations`, one level deep: a derivation, or those in a list or an
/// attribute set (whose non-derivation values are skipped).
fn collect(ev: &mut Evaluator, v: &Value, top: bool, out: &mut Vec<String>) -> EvalResult<()> {
    let v = ev.force(v, Pos::NONE)?;
    match &v {
        Value::Attrs(a) if ev.is_derivation(a)? => {
            let drv_path = a.get(Sym::DRV_PATH).cloned().ok_or_else(|| {
                envy_eval::EvalError::eval("derivation has no `drvPath` attribute".to_string())
            })?;
            match ev.force(&drv_path, Pos::NONE)? {
                Value::String(s) => out.push(s.to_str_lossy().into_owned()),
                other => {
                    return Err(envy_eval::EvalError::eval(format!(
                        "`drvPath` is {}, not a string",
                        other.typ().showtype()
                    )));
                }
            }
        }
        Value::Attrs(a) if top => {
            for attr in a.sorted_by_name() {
                collect(ev, &attr.value.clone(), false, out)?;
            }
        }
        Value::List(items) if top => {
            for item in items.iter() {
                collect(ev, item, false, out)?;
            }
        }
        _ if top => {
            return Err(envy_eval::EvalError::eval(format!(
                "expression does not evaluate to a derivation (or a set or list of those), but to {}",
                v.typ().showtype()
            )));
        }
        _ => {}
    }
    Ok(())
}
