//! `envy build`: realise a derivation (a `.drv` file) and its dependencies in envy's store.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use envy_build::registry::Registry;
use envy_build::sandbox::HostPath;
use envy_build::{BuildConfig, BuildEvent, BuildStore, Builder, Progress, SandboxMode};
use envy_store::{Derivation, StoreDir, StorePath};

use crate::env_vars as vars;

/// Build a derivation and print its output paths.
///
/// FILE is a `.drv` file (in envy's store, or anywhere: it is then imported). Outputs of
/// dependencies that are not valid yet are built first, up to `-j` at a time.
#[derive(Args, Debug)]
pub struct BuildArgs {
    /// The derivation to build (`.drv`).
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

/// envy's store and state directories, from the environment.
pub struct StoreLocation {
    pub store_dir: PathBuf,
    pub state_dir: PathBuf,
}

impl StoreLocation {
    pub fn from_env() -> Result<Self> {
        let data = match std::env::var_os(vars::XDG_DATA_HOME) {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => dirs::home_dir()
                .context("cannot find the home directory")?
                .join(".local/share"),
        };
        let store_dir = std::env::var_os(vars::ENVY_STORE_DIR)
            .filter(|d| !d.is_empty())
            .map_or_else(|| data.join("envy/store"), PathBuf::from);
        let state_dir = std::env::var_os(vars::ENVY_STATE_DIR)
            .filter(|d| !d.is_empty())
            .map_or_else(|| data.join("envy/state"), PathBuf::from);
        Ok(Self {
            store_dir,
            state_dir,
        })
    }

    pub fn open(&self) -> Result<Registry> {
        let dir = StoreDir::new(&self.store_dir)
            .with_context(|| format!("invalid store directory `{}`", self.store_dir.display()))?;
        Registry::open(dir, &self.state_dir)
            .map_err(|e| anyhow::anyhow!(e))
            .context("cannot open envy's store")
    }

    /// The builder's settings: environment overrides on top of defaults.
    pub fn config(&self) -> Result<BuildConfig> {
        let mut config = BuildConfig::new(&self.state_dir);
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
        if let Ok(mirrors) = std::env::var(vars::ENVY_HASHED_MIRRORS) {
            config.hashed_mirrors = mirrors.split_whitespace().map(String::from).collect();
        } else if let Some(mirrors) = config_file_value(vars::ENVY_HASHED_MIRRORS)? {
            config.hashed_mirrors = mirrors.split_whitespace().map(String::from).collect();
        }
        if let Ok(cores) = std::env::var(vars::ENVY_BUILD_CORES) {
            config.cores = cores
                .parse()
                .with_context(|| format!("invalid `{}` value `{cores}`", vars::ENVY_BUILD_CORES))?;
        }
        Ok(config)
    }
}

/// A `KEY = VALUE` line of envy's config file (`$XDG_CONFIG_HOME/envy/config`).
fn config_file_value(key: &str) -> Result<Option<String>> {
    let dir = match std::env::var_os(vars::XDG_CONFIG_HOME) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => match dirs::home_dir() {
            Some(home) => home.join(".config"),
            None => return Ok(None),
        },
    };
    let file = dir.join("envy/config");
    let text = match fs_err::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            bail!("{}:{}: expected `KEY = VALUE`", file.display(), n + 1);
        };
        if k.trim() == key {
            return Ok(Some(v.trim().to_string()));
        }
    }
    Ok(None)
}

impl BuildArgs {
    pub fn run(self) -> Result<()> {
        let location = StoreLocation::from_env()?;
        let store = location.open()?;
        let mut config = location.config()?;
        config.jobs = self.jobs.max(1);
        config.keep_going = self.keep_going;
        if self.file.extension().is_some_and(|e| e == "nix") {
            bail!(
                "building `.nix` files needs envy's evaluator, which is not wired up yet: `{}`\nhint: build a `.drv` file (e.g. from `nix-instantiate`)",
                self.file.display()
            );
        }
        if self.attr.is_some() {
            bail!("`-A` only applies to `.nix` files\nhint: drop `-A` when building a `.drv` file");
        }
        let drv_path = import_drv(&store, &self.file)?;
        let progress = Render::new();
        let builder = Builder::new(&store, &config, &progress);
        let results = builder.build(std::slice::from_ref(&drv_path));
        progress.clear();
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
                replace_symlink(&dir.full_path(path), &link)?;
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
pub fn import_drv(store: &Registry, file: &Path) -> Result<StorePath> {
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
        if !store.is_valid(&input).map_err(|e| anyhow::anyhow!(e))? {
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
    let path = store
        .add_text(&format!("{name}.drv"), &text, &drv.references())
        .map_err(|e| anyhow::anyhow!(e))
        .with_context(|| format!("cannot add `{}` to envy's store", file.display()))?;
    Ok(path)
}

fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    let tmp = link.with_file_name(format!(
        ".{}.tmp-{}",
        link.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("result"),
        std::process::id()
    ));
    let _ = fs_err::remove_file(&tmp);
    fs_err::os::unix::fs::symlink(target, &tmp)?;
    fs_err::rename(&tmp, link)?;
    Ok(())
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
            BuildEvent::Substituted { .. } | BuildEvent::Log { .. } => {}
            BuildEvent::Warning { message } => self.line(&format!("warning: {message}")),
        }
        self.redraw(&st);
    }
}
