//! `envy build`: realise a derivation (a `.drv` file, or a `.nix` file evaluated by envy's
//! engine) and its dependencies in envy's store, substituting from binary caches first when
//! they are configured.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Args;
use envy_store::{Derivation, LocalStore, StorePath};

/// Build a derivation and print its output paths.
///
/// FILE is a `.drv` file (in envy's store, or anywhere: it is then imported), or a `.nix` file
/// that envy's evaluator turns into one (a function is called with its defaults; `-A`
/// selects an attribute path, as with `nix-build`). Outputs of
/// dependencies that are not valid yet are substituted from the binary caches in
/// `ENVY_SUBSTITUTERS` (signed by a key in `ENVY_TRUSTED_PUBLIC_KEYS`) or built, up to `-j`
/// at a time. The `result` symlink is a gc root: `envy store gc` keeps what it points to.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The derivation to build (`.drv`), or a Nix file evaluating to one (`.nix`).
    pub file: PathBuf,
    /// Attribute to build (for `.nix` files).
    #[arg(short = 'A', long = "attr")]
    pub attr: Option<String>,
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
use crate::engine::{Engine, EvalRequest, Render};

impl BuildArgs {
    pub fn run(self) -> Result<()> {
        let is_nix = self.file.extension().is_some_and(|e| e == "nix");
        if self.attr.is_some() && !is_nix {
            bail!("`-A` only applies to `.nix` files\nhint: drop `-A` when building a `.drv` file");
        }
        let BuildContext { store, mut config } = BuildContext::from_env()?;
        config.jobs = self.jobs.max(1);
        config.keep_going = self.keep_going;
        let progress = Arc::new(Render::new());
        let engine = Engine::new(store, config, substituter()?, progress.clone());
        let drv_path = if is_nix {
            let file = std::path::absolute(&self.file)
                .with_context(|| format!("cannot find `{}`", self.file.display()))?;
            let attr_path: Vec<&str> = self
                .attr
                .as_deref()
                .map(|a| a.split('.').collect())
                .unwrap_or_default();
            let request = EvalRequest::call_file(&file, &[], &attr_path);
            let instantiated = engine.instantiate(request);
            let instantiated = match instantiated {
                Ok(i) => i,
                Err(e) => {
                    progress.clear();
                    return Err(anyhow::Error::new(e)
                        .context(format!("cannot evaluate `{}`", self.file.display())));
                }
            };
            for line in &instantiated.diagnostics {
                eprintln!("{line}");
            }
            instantiated.drv_path
        } else {
            import_drv(engine.store(), &self.file)?
        };
        let results = engine.build(std::slice::from_ref(&drv_path));
        progress.clear();
        let store = engine.store();
        let results = results.with_context(|| format!("cannot build `{}`", self.file.display()))?;
        let outputs = &results[&drv_path];
        let dir = store.store_dir();
        if !self.no_out_link {
            let link = self
                .out_link
                .clone()
                .unwrap_or_else(|| PathBuf::from("result"));
            for (i, (name, path)) in outputs.iter().enumerate() {
                let link = if i == 0 && name == "out" || outputs.len() == 1 {
                    link.clone()
                } else {
                    PathBuf::from(format!("{}-{name}", link.display()))
                };
                store
                    .add_root(&link, path)
                    .with_context(|| format!("cannot create `{}`", link.display()))?;
            }
        }
        for path in outputs.values() {
            println!("{}", dir.print(path));
        }
        Ok(())
    }
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
    for input in drv.references() {
        store.add_temp_root(&input)?;
        if !store.is_valid(&input)? {
            // An input derivation next to FILE (a Nix store with the same store dir).
            let sibling = file.with_file_name(input.base_name());
            if input.is_derivation() && sibling.is_file() {
                import_drv(store, &sibling)?;
                continue;
            }
            bail!(
                "input `{}` of `{}` is not in envy's store\nhint: build or add it first",
                dir.print(&input),
                file.display()
            );
        }
    }
    // Nix's own files round-trip through envy's ATerm writer; anything else is added as the
    // bytes it is, so its store path is the one Nix would give it.
    let added = if drv.to_aterm(dir) == text {
        store.write_derivation(&drv)
    } else {
        store.add_text(&format!("{name}.drv"), &text, &drv.references())
    };
    let path = added.with_context(|| format!("cannot add `{}` to envy's store", file.display()))?;
    Ok(path)
}
