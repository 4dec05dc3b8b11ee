//! `envy build`: realise a derivation (a `.drv` file, or the derivations a `.nix` file
//! evaluates to) and its dependencies in envy's store, substituting from binary caches first
//! when they are configured.

mod instantiate;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use envy_store::{Derivation, LocalStore, StorePath};

/// Build a derivation and print its output paths.
///
/// FILE is a `.nix` file (evaluated by envy's own evaluator; `-A` selects an attribute, as
/// with `nix-build`) or a `.drv` file (in envy's store, or anywhere: it is then imported).
/// Outputs of
/// dependencies that are not valid yet are substituted from the binary caches in
/// `ENVY_SUBSTITUTERS` (signed by a key in `ENVY_TRUSTED_PUBLIC_KEYS`) or built, up to `-j`
/// at a time. The `result` symlink is a gc root: `envy store gc` keeps what it points to.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The `.nix` file (or directory with a `default.nix`) to evaluate, or the `.drv` to
    /// build.
    #[arg(default_value = "default.nix")]
    pub file: PathBuf,
    /// Attribute path to build (`.nix` files; repeatable).
    #[arg(short = 'A', long = "attr", value_name = "ATTRPATH")]
    pub attr: Vec<String>,
    /// Where to put a symlink to the (first) output; default `./result`.
    #[arg(long = "out-link", short = 'o')]
    pub out_link: Option<PathBuf>,
    /// Do not create a result symlink.
    #[arg(long = "no-out-link")]
    pub no_out_link: bool,
    /// How many derivations to build at once.
    #[arg(short = 'j', long = "max-jobs", default_value_t = 1)]
    pub jobs: usize,
    /// Keep building independent derivations after a failure.
    #[arg(short = 'k', long = "keep-going")]
    pub keep_going: bool,
}

pub use crate::engine::BuildContext;
use crate::engine::context::substituter;
use crate::engine::{Engine, Render};

impl BuildArgs {
    pub fn run(self) -> Result<()> {
        let is_nix = self.file.extension().is_some_and(|e| e == "nix") || self.file.is_dir();
        if !self.attr.is_empty() && !is_nix {
            bail!("`-A` only applies to `.nix` files\nhint: drop `-A` when building a `.drv` file");
        }
        let BuildContext { store, mut config } = BuildContext::from_env()?;
        config.jobs = self.jobs.max(1);
        config.keep_going = self.keep_going;
        let progress = Arc::new(Render::new());
        let engine = Engine::new(store, config, substituter()?, progress.clone());
        let flake = parse_installable(&self.file.to_string_lossy());
        let drv_paths = if let Some((reference, attr)) = flake {
            // `FLAKE#ATTR`: a flake's package, evaluated by the embedded engine.
            let cwd = crate::project::current_dir()?;
            let (drv, notices) = crate::backend::embedded::instantiate_flake_attr(
                &engine,
                &cwd,
                &reference,
                &attr,
                &crate::backend::current_system(),
            )
            .with_context(|| format!("cannot evaluate `{}`", self.file.display()))?;
            for n in notices {
                eprintln!("envy: {n}");
            }
            vec![drv]
        } else if is_nix {
            let file = if self.file.is_dir() {
                self.file.join("default.nix")
            } else {
                self.file.clone()
            };
            let found = instantiate::run(&engine, &file, self.attr.clone());
            progress.clear();
            let found = found.with_context(|| format!("cannot evaluate `{}`", file.display()))?;
            if found.is_empty() {
                bail!("`{}` has no derivations to build", file.display());
            }
            found
        } else {
            vec![import_drv(engine.store(), &self.file)?]
        };
        let results = engine.build(&drv_paths);
        progress.clear();
        let store = engine.store();
        let results = results.with_context(|| format!("cannot build `{}`", self.file.display()))?;
        let dir = store.store_dir();
        let link = self
            .out_link
            .clone()
            .unwrap_or_else(|| PathBuf::from("result"));
        for (n, drv_path) in drv_paths.iter().enumerate() {
            let outputs = &results[drv_path];
            if !self.no_out_link {
                // nix-build's names: result, result-dev, …; result-2, result-2-dev, … for more.
                let base = match n {
                    0 => link.display().to_string(),
                    n => format!("{}-{}", link.display(), n + 1),
                };
                for (name, path) in outputs {
                    let link = if name == "out" {
                        PathBuf::from(&base)
                    } else {
                        PathBuf::from(format!("{base}-{name}"))
                    };
                    store
                        .add_root(&link, path)
                        .with_context(|| format!("cannot create `{}`", link.display()))?;
                }
            }
            for path in outputs.values() {
                println!("{}", dir.print(path));
            }
        }
        Ok(())
    }
}

/// A flake installable `FLAKE#ATTR` split into the flake reference and the attribute (either
/// may be empty: `#hello` is `.#hello`, `.#` the default package); `None` without a `#`.
pub fn parse_installable(text: &str) -> Option<(String, String)> {
    text.split_once('#')
        .map(|(r, a)| (r.to_string(), a.to_string()))
}

/// The derivation's store path; a `.drv` file outside the store (or not registered) is added
/// to it first. Its inputs must be in the store, except input derivations found next to the
/// file (as in another Nix store with the same store dir), which are imported too.
pub fn import_drv(store: &LocalStore, file: &Path) -> Result<StorePath> {
    let text = fs_err::read(file)?;
    let base = file
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("`{}` is not a `.drv` file name", file.display()))?;
    let name = base
        .strip_suffix(".drv")
        .with_context(|| format!("`{}` is not a `.drv` file", file.display()))?;
    // A store file's name is `<hash>-<name>.drv`.
    let name = match StorePath::from_base_name(base) {
        Ok(path) => path.name().strip_suffix(".drv").unwrap_or(name).to_string(),
        Err(_) => name.to_string(),
    };
    let dir = store.store_dir();
    let drv = Derivation::parse(dir, &text, &name)
        .with_context(|| format!("cannot parse `{}`", file.display()))?;
    // Already there (the usual case on a rebuild): no database write at all.
    let references = drv.references();
    let path = dir
        .text_path(&format!("{name}.drv"), &text, &references)
        .with_context(|| format!("`{}` has an invalid name", file.display()))?;
    store.add_temp_root(&path)?;
    if store.is_valid(&path)? {
        return Ok(path);
    }
    for input in &references {
        store.add_temp_root(input)?;
        if !store.is_valid(input)? {
            // An input derivation next to FILE (a Nix store with the same store dir).
            let sibling = file.with_file_name(input.base_name());
            if input.is_derivation() && sibling.is_file() {
                import_drv(store, &sibling)?;
                continue;
            }
            bail!(
                "input `{}` of `{}` is not in envy's store\nhint: build or add it first",
                dir.print(input),
                file.display()
            );
        }
    }
    // Nix's own files round-trip through envy's ATerm writer; anything else is added as the
    // bytes it is, so its store path is the one Nix would give it.
    let added = if drv.to_aterm(dir) == text {
        store.write_derivation(&drv)
    } else {
        store.add_text(&format!("{name}.drv"), &text, &references)
    };
    let path = added.with_context(|| format!("cannot add `{}` to envy's store", file.display()))?;
    Ok(path)
}
