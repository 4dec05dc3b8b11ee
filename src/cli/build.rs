//! `envy build`: realise a derivation (a `.drv` file, or the derivations a `.nix` file
//! evaluates to) and its dependencies in envy's store, substituting from binary caches first
//! when they are configured.

mod eval_store;
mod instantiate;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use envy_build::sandbox::HostPath;
use envy_build::{BuildConfig, BuildEvent, Builder, Progress, SandboxMode};
use envy_store::cache::{CacheConfig, Substituter};
use envy_store::{Derivation, LocalStore, StoreConfig, StorePath};

use crate::env_vars as vars;

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

/// envy's store, opened from the environment (`ENVY_STORE_DIR`, `ENVY_STATE_DIR`, else under
/// `$XDG_DATA_HOME/envy`), with the builder's settings.
pub struct BuildContext {
    pub store: LocalStore,
    pub config: BuildConfig,
}

impl BuildContext {
    pub fn from_env() -> Result<Self> {
        let location = StoreConfig::from_env(None).context(
            "cannot tell where envy's store is: no data directory\n\
             hint: set HOME, or ENVY_STORE_DIR and ENVY_STATE_DIR",
        )?;
        let store = LocalStore::open(&location).with_context(|| {
            format!(
                "cannot open envy's store at `{}`\nhint: envy needs a store directory of its own; set `{}` (and `{}`)",
                location.store_dir.display(),
                vars::ENVY_STORE_DIR,
                vars::ENVY_STATE_DIR
            )
        })?;
        let config = build_config(store.state_dir())?;
        Ok(Self { store, config })
    }
}

/// The binary cache settings (`$XDG_CONFIG_HOME/envy/config.toml`, then the environment).
fn cache_config() -> Result<CacheConfig> {
    let file = CacheConfig::default_file();
    CacheConfig::load(file.as_deref()).with_context(|| {
        format!(
            "cannot read envy's cache settings{}",
            file.map(|f| format!(" in `{}`", f.display()))
                .unwrap_or_default()
        )
    })
}

/// The builder's settings: environment overrides on top of defaults.
fn build_config(state_dir: &Path) -> Result<BuildConfig> {
    let mut config = BuildConfig::new(state_dir);
    if let Ok(mode) = std::env::var(vars::ENVY_SANDBOX) {
        config.sandbox = SandboxMode::parse(&mode).with_context(|| {
            format!(
                "invalid `{}` value `{mode}`\nhint: use `true`, `false` or `auto`",
                vars::ENVY_SANDBOX
            )
        })?;
    }
    if let Ok(paths) = std::env::var(vars::ENVY_SANDBOX_PATHS) {
        config.sandbox_paths = HostPath::parse_list(&paths);
    }
    config.hashed_mirrors = match std::env::var(vars::ENVY_HASHED_MIRRORS) {
        Ok(mirrors) => mirrors.split_whitespace().map(String::from).collect(),
        Err(_) => cache_config()?.hashed_mirrors,
    };
    if let Ok(cores) = std::env::var(vars::ENVY_BUILD_CORES) {
        config.cores = cores
            .parse()
            .with_context(|| format!("invalid `{}` value `{cores}`", vars::ENVY_BUILD_CORES))?;
    }
    Ok(config)
}

/// The configured binary caches (possibly none).
fn substituter() -> Result<Substituter> {
    Substituter::from_config(&cache_config()?).context(
        "invalid binary cache settings\nhint: check `substituters` and `trusted-public-keys` (or `ENVY_SUBSTITUTERS` and `ENVY_TRUSTED_PUBLIC_KEYS`)",
    )
}

impl BuildArgs {
    pub fn run(self) -> Result<()> {
        let is_nix = self.file.extension().is_some_and(|e| e == "nix") || self.file.is_dir();
        if !self.attr.is_empty() && !is_nix {
            bail!("`-A` only applies to `.nix` files\nhint: drop `-A` when building a `.drv` file");
        }
        let BuildContext { store, mut config } = BuildContext::from_env()?;
        config.jobs = self.jobs.max(1);
        config.keep_going = self.keep_going;
        let substituter = Arc::new(substituter()?);
        let store = Arc::new(store);
        let progress = Arc::new(Render::new());
        let flake = self
            .file
            .to_string_lossy()
            .split_once('#')
            .map(|(r, a)| (r.to_string(), a.to_string()));
        let drv_paths = if let Some((reference, attr)) = flake {
            // `FLAKE#ATTR`: a flake's package, evaluated by the embedded engine.
            let cwd = crate::project::current_dir()?;
            let (drv, notices) = crate::backend::embedded::instantiate_flake_attr(
                store.clone(),
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
            let instantiate = instantiate::Instantiate {
                store: store.clone(),
                config: config.clone(),
                substituter: substituter.clone(),
                progress: progress.clone(),
            };
            let found = instantiate.run(&file, self.attr.clone());
            progress.clear();
            let found = found.with_context(|| format!("cannot evaluate `{}`", file.display()))?;
            if found.is_empty() {
                bail!("`{}` has no derivations to build", file.display());
            }
            found
        } else {
            vec![import_drv(&store, &self.file)?]
        };
        let builder = Builder::new(&store, &config, &*progress).with_substituter(&substituter);
        let results = builder.build(&drv_paths);
        progress.clear();
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

/// Draws build progress on stderr: a spinner with what is building, how many are left and
/// the elapsed time on a terminal; plain `building '…'` lines otherwise.
pub struct Render {
    bar: Option<indicatif::ProgressBar>,
    state: Mutex<RenderState>,
    start: Instant,
}

#[derive(Default)]
struct RenderState {
    total: usize,
    done: usize,
    running: Vec<String>,
}

impl Render {
    pub fn new() -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            state: Mutex::default(),
            start: Instant::now(),
        }
    }

    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn redraw(&self, st: &RenderState) {
        if let Some(bar) = &self.bar {
            let left = st.total.saturating_sub(st.done);
            bar.set_message(format!(
                "building {} ({left} of {} left, {}s)",
                st.running.join(", "),
                st.total,
                self.start.elapsed().as_secs()
            ));
        }
    }

    fn line(&self, text: &str) {
        match &self.bar {
            Some(bar) => bar.println(text),
            None => eprintln!("{text}"),
        }
    }
}

impl Progress for Render {
    fn event(&self, event: BuildEvent) {
        let mut st = self.state.lock().expect("progress state");
        match event {
            BuildEvent::Planned { to_build } => st.total = to_build,
            BuildEvent::Started { drv, name } => {
                st.running.push(name);
                if self.bar.is_none() {
                    self.line(&format!("building '{drv}'..."));
                }
            }
            BuildEvent::Finished { drv, ok, elapsed } => {
                st.done += 1;
                if let Some(name) = drv
                    .rsplit('/')
                    .next()
                    .and_then(|b| b.split_once('-'))
                    .map(|(_, n)| n)
                {
                    let name = name.strip_suffix(".drv").unwrap_or(name);
                    if let Some(i) = st.running.iter().position(|r| r == name) {
                        st.running.remove(i);
                    }
                }
                if !ok {
                    self.line(&format!(
                        "error: build of '{drv}' failed after {:.1}s",
                        elapsed.as_secs_f64()
                    ));
                }
            }
            BuildEvent::WaitingForLock { drv } => {
                self.line(&format!(
                    "waiting for another envy to finish building '{drv}'..."
                ));
            }
            BuildEvent::Downloading { path, url } => {
                self.line(&format!("copying path '{path}' from '{url}'..."));
            }
            BuildEvent::Substituted { .. }
            | BuildEvent::AlreadyValid { .. }
            | BuildEvent::Log { .. } => {}
            BuildEvent::Warning { message } => self.line(&format!("warning: {message}")),
        }
        self.redraw(&st);
    }
}
