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
///
/// With `ENVY_STORE=daemon` (or `auto` on a machine with Nix), a `.nix` file is evaluated
/// into Nix's store through Nix's daemon and built there, substituting from Nix's binary
/// caches; `result` is then an indirect root of Nix's gc.
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
    /// How many derivations to build at once on this machine; 0 builds only on the build
    /// machines (`--builders`).
    #[arg(short = 'j', long = "max-jobs", default_value_t = 1)]
    pub jobs: usize,
    /// Build machines, in Nix's machine syntax: `URI [systems [ssh-key [max-jobs
    /// [speed-factor [supported-features [mandatory-features [base64-host-key]]]]]]]`, lines
    /// separated by `;` or newlines, `-` for a default, `@FILE` for a machines file (default:
    /// `ENVY_BUILDERS`, else `builders` in config.toml). `ssh://HOST` runs `nix-store --serve
    /// --write` there through `ssh`, `ssh-ng://HOST` runs `nix-daemon --stdio` (`NIX_SSHOPTS`
    /// is passed to ssh). `""` disables them.
    #[arg(long = "builders", value_name = "MACHINES")]
    pub builders: Option<String>,
    /// Keep building independent derivations after a failure.
    #[arg(short = 'k', long = "keep-going")]
    pub keep_going: bool,
}

pub use crate::engine::BuildContext;
use crate::engine::context::substituter;
use crate::engine::daemon_store::{DaemonStore, StoreChoice, output_paths};
use crate::engine::{Engine, Render};

impl BuildArgs {
    pub fn run(self) -> Result<()> {
        let is_nix = self.file.extension().is_some_and(|e| e == "nix") || self.file.is_dir();
        if !self.attr.is_empty() && !is_nix {
            bail!("`-A` only applies to `.nix` files\nhint: drop `-A` when building a `.drv` file");
        }
        if let StoreChoice::Daemon(address) = StoreChoice::from_env()? {
            return self.run_through_daemon(&address, is_nix);
        }
        let BuildContext { store, mut config } = BuildContext::from_env()?;
        config.jobs = self.jobs;
        config.keep_going = self.keep_going;
        if let Some(builders) = &self.builders {
            config.machines =
                envy_build::remote::parse_machines(builders, "--builders", &config.system)?;
        }
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

impl BuildArgs {
    /// Evaluate into Nix's store and build there, through Nix's daemon.
    fn run_through_daemon(
        &self,
        address: &envy_store::daemon::DaemonAddress,
        is_nix: bool,
    ) -> Result<()> {
        if !is_nix || parse_installable(&self.file.to_string_lossy()).is_some() {
            bail!(
                "`envy build` through Nix's daemon takes a `.nix` file only, not `{}`\n\
                 hint: build `.drv` files and flakes with `nix build`, or unset `{}` to use envy's store",
                self.file.display(),
                crate::env::vars::ENVY_STORE
            );
        }
        let file = if self.file.is_dir() {
            self.file.join("default.nix")
        } else {
            self.file.clone()
        };
        let store = DaemonStore::connect(address)?;
        store
            .client()
            .set_log_sink(Box::new(crate::engine::daemon_store::StderrLog::default()));
        store
            .client()
            .set_options(&envy_store::daemon::ClientOptions {
                keep_going: self.keep_going,
                max_build_jobs: self.jobs.max(1) as u64,
                ..Default::default()
            })?;
        let drv_paths = instantiate::run_with(
            store.store_dir().clone(),
            Box::new(store.eval_store()),
            Box::new(store.realiser()),
            &file,
            self.attr.clone(),
        )
        .with_context(|| format!("cannot evaluate `{}`", file.display()))?;
        if drv_paths.is_empty() {
            bail!("`{}` has no derivations to build", file.display());
        }
        let mut wanted = Vec::new();
        let mut outputs = Vec::new();
        for drv in &drv_paths {
            let outs = output_paths(&store, drv)?;
            wanted.push(envy_store::daemon::DerivedPath::Built {
                drv: drv.clone(),
                outputs: outs.iter().map(|(name, _)| name.clone()).collect(),
            });
            outputs.push(outs);
        }
        // Say what is coming before it starts, as Nix does.
        let missing = store.client().query_missing(&wanted)?;
        if !missing.will_build.is_empty() || !missing.will_substitute.is_empty() {
            eprintln!(
                "envy: Nix's daemon will build {} derivation{} and substitute {} path{} ({} to download) in `{}`",
                missing.will_build.len(),
                if missing.will_build.len() == 1 {
                    ""
                } else {
                    "s"
                },
                missing.will_substitute.len(),
                if missing.will_substitute.len() == 1 {
                    ""
                } else {
                    "s"
                },
                crate::util::humanize::size(missing.download_size),
                store.store_dir()
            );
        }
        store.client().build_paths(&wanted).with_context(|| {
            format!(
                "cannot build `{}` through Nix's daemon",
                self.file.display()
            )
        })?;
        let dir = store.store_dir().clone();
        let link = std::path::absolute(
            self.out_link
                .clone()
                .unwrap_or_else(|| PathBuf::from("result")),
        )?;
        for (n, outs) in outputs.iter().enumerate() {
            if !self.no_out_link {
                let base = match n {
                    0 => link.display().to_string(),
                    n => format!("{}-{}", link.display(), n + 1),
                };
                for (name, path) in outs {
                    let link = if name == "out" {
                        PathBuf::from(&base)
                    } else {
                        PathBuf::from(format!("{base}-{name}"))
                    };
                    store
                        .client()
                        .add_perm_root(path, &link)
                        .with_context(|| format!("cannot create `{}`", link.display()))?;
                }
            }
            for (_, path) in outs {
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
