//! `envy shell`: an ad-hoc shell with envy's clang-musl toolchain, for the host or cross.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};

use crate::engine::pkgs;
use crate::engine::{Engine, EngineError, Render};
use crate::env::vars as env_vars;
use crate::toolchain::nix_backend::NixBackend;
use crate::toolchain::shell_cache::{self, ShellEntry, ShellRequest, Target};
use crate::toolchain::spawn::{self, UserShell};
use crate::toolchain::{HostTools, embedded, var};
use crate::util::dirs::Dirs;

/// Enter a shell whose `cc` builds fully static musl binaries, for this machine or cross
/// compiled for aarch64, with the host's clang and lld. The toolchain is built once (musl from
/// source, compiler wrappers) and cached; later shells start at once.
///
/// Each FLAKE#ATTR (as `envy build` takes it: `.#hello`, `path:/x#tool`) is evaluated with
/// envy's own engine from `packages.<system>.ATTR` (or `legacyPackages.<system>.ATTR`), built
/// into envy's store, and its `bin/` put in front of PATH, as `nix shell` does.
///
/// Examples:
///   envy shell                                  # a shell for the host
///   envy shell --target aarch64-linux-musl      # cross compile (run results with qemu-aarch64-static)
///   envy shell -p hello -- hello                # one command, with a package from the set
///   envy shell .#hello -- hello                 # one command, with a package of this flake
#[derive(Debug, clap::Args)]
#[command(verbatim_doc_comment)]
pub struct ShellArgs {
    /// Flake packages to add (`FLAKE#ATTR`, as `envy build` takes them); repeatable
    #[arg(value_name = "FLAKE#ATTR")]
    installables: Vec<String>,

    /// The toolchain's target (default: this machine's architecture)
    #[arg(long, value_enum, value_name = "TARGET")]
    target: Option<Target>,

    /// Add packages from envy's package set (attribute paths like `hello`); repeatable
    #[arg(short = 'p', long = "package", value_name = "PKG", num_args = 1..)]
    packages: Vec<String>,

    /// Build machines for what this builds, in Nix's machine syntax (as `envy build
    /// --builders`; default: `ENVY_BUILDERS`, else `builders` in config.toml; `""` disables
    /// them)
    #[arg(long = "builders", value_name = "MACHINES")]
    builders: Option<String>,

    /// How many derivations to build at once on this machine (default 1); 0 builds only on
    /// the build machines
    #[arg(short = 'j', long = "max-jobs", value_name = "N")]
    jobs: Option<usize>,

    /// Run this command in the environment instead of a shell
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Which engine realises the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Backend {
    /// The installed Nix (`ENVY_SHELL_BACKEND=nix`).
    Nix,
    /// envy's own evaluator, store and builder, with the store in this directory.
    Embedded { store_dir: PathBuf },
}

impl Backend {
    fn from_env() -> Result<Self> {
        match std::env::var(env_vars::ENVY_SHELL_BACKEND).as_deref() {
            Ok("nix") => Ok(Self::Nix),
            Ok("embedded" | "") | Err(_) => {
                // Where the store is decides the store paths, so it is part of the cache key;
                // finding it needs no store access (the warm path opens nothing).
                let location = envy_store::StoreConfig::from_env(None).context(
                    "cannot tell where envy's store is: no data directory\n\
                     hint: set HOME, or ENVY_STORE_DIR and ENVY_STATE_DIR",
                )?;
                Ok(Self::Embedded {
                    store_dir: location.store_dir,
                })
            }
            Ok(other) => bail!(
                "unknown `{}` value `{other}` (expected `embedded` or `nix`)",
                env_vars::ENVY_SHELL_BACKEND
            ),
        }
    }

    /// What the cache key records about the backend.
    fn key(&self) -> String {
        match self {
            Self::Nix => "nix".to_owned(),
            Self::Embedded { store_dir } => format!("embedded\0{}", store_dir.display()),
        }
    }
}

impl ShellArgs {
    pub fn run(self) -> Result<()> {
        crate::engine::context::override_builds_from_flags(self.builders.clone(), self.jobs)?;
        // Checked before anything is built: a typo fails at once.
        let installables = self
            .installables
            .iter()
            .map(|text| {
                crate::cli::build::parse_installable(text)
                    .map(|(reference, attr)| (text.as_str(), reference, attr))
                    .with_context(|| {
                        format!(
                            "`{text}` is not a flake installable\nhint: write `FLAKE#ATTR`, e.g. `.#{text}`; add packages from envy's package set with `-p {text}`"
                        )
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        // The flake packages first: a missing attribute fails before the toolchain is built.
        let bins = if installables.is_empty() {
            Vec::new()
        } else {
            realise_installables(&installables)?
        };
        let request = ShellRequest {
            target: self.target.unwrap_or_else(Target::host),
            packages: self.packages,
        };
        let backend = Backend::from_env()?;
        let dirs = Dirs::from_env()?;
        let cache = dirs.cache_root();

        let path = std::env::var_os(env_vars::PATH);
        let host_tools =
            HostTools::discover(path.as_deref(), Some(cache)).map_err(|e| match e.hint() {
                Some(hint) => anyhow::anyhow!("{e}\nhint: {hint}"),
                None => anyhow::Error::new(e),
            })?;

        let key = shell_cache::key(&host_tools, &request, &backend.key());
        let dir = shell_cache::entry_dir(cache, &key);
        let mut entry = match shell_cache::load(cache, &key) {
            Some(entry) => {
                record_stats("hit", 0);
                entry
            }
            None => {
                dirs.ensure_cache_root()?;
                let (entry, builds) = realise(&backend, cache, &dir, &key, &host_tools, &request)?;
                record_stats("miss", builds);
                shell_cache::store(cache, &key, &entry).with_context(|| {
                    format!("cannot write the shell cache in `{}`", dir.display())
                })?;
                entry
            }
        };

        if !bins.is_empty() {
            prepend_path(&mut entry.env, &bins);
        }

        let err = if self.command.is_empty() {
            banner(&entry, request.target);
            spawn::exec_shell(&entry, &dir, &UserShell::from_env())
        } else {
            spawn::exec_command(&entry, &dir, &self.command)
        };
        let what = self
            .command
            .first()
            .map_or_else(|| "the shell".to_owned(), |c| format!("`{c}`"));
        Err(anyhow::Error::new(err).context(format!("cannot start {what}")))
    }
}

/// Evaluate and build each `(text, flake, attr)` with envy's own engine, as `envy build
/// FLAKE#ATTR` does; returns the `bin/` directories of their outputs, in order.
fn realise_installables(installables: &[(&str, String, String)]) -> Result<Vec<String>> {
    let render = Arc::new(Render::new());
    let engine = Engine::from_env(render.clone())?;
    let cwd = crate::project::current_dir()?;
    let system = crate::backend::current_system();
    let mut drvs = Vec::new();
    for (text, reference, attr) in installables {
        let evaluated = crate::backend::embedded::instantiate_flake_attr(
            &engine, &cwd, reference, attr, &system,
        );
        let (drv, notices) = match evaluated {
            Ok(found) => found,
            Err(e) => {
                render.finish();
                let flake = if reference.is_empty() { "." } else { reference };
                let e = if e.to_string().contains("does not provide attribute")
                    && !e.to_string().contains("hint:")
                {
                    anyhow::anyhow!(
                        "{e}\nhint: `envy flake show {flake}` lists the packages the flake provides"
                    )
                } else {
                    e
                };
                return Err(e.context(format!("cannot evaluate `{text}`")));
            }
        };
        for n in notices {
            eprintln!("envy: {n}");
        }
        drvs.push((*text, drv));
    }
    let paths: Vec<_> = drvs.iter().map(|(_, d)| d.clone()).collect();
    let results = engine.build(&paths);
    render.finish();
    let results = results.with_context(|| {
        let names: Vec<_> = drvs.iter().map(|(t, _)| format!("`{t}`")).collect();
        format!("cannot build {}", names.join(", "))
    })?;
    let dir = engine.store().store_dir();
    let mut bins = Vec::new();
    for (_, drv) in &drvs {
        // `out` first, then the other outputs, as Nix orders a package's outputs.
        let outputs = &results[drv];
        let ordered = outputs
            .get("out")
            .into_iter()
            .chain(outputs.iter().filter(|(n, _)| *n != "out").map(|(_, p)| p));
        for path in ordered {
            let bin = Path::new(&dir.print(path)).join("bin");
            if bin.is_dir() {
                bins.push(bin.to_string_lossy().into_owned());
            }
        }
    }
    Ok(bins)
}

/// Put `bins` in front of the environment's PATH (the first installable first).
fn prepend_path(env: &mut crate::env::record::EnvRecord, bins: &[String]) {
    let mut path = bins.join(":");
    if let Some(old) = var(env, "PATH").filter(|p| !p.is_empty()) {
        path.push(':');
        path.push_str(old);
    }
    env.variables.insert(
        "PATH".to_owned(),
        crate::env::record::Variable::Exported(path),
    );
}

/// Append what this `envy shell` did to the file named by `__ENVY_SHELL_STATS`, if set:
/// `cache=hit builds=0`, or `cache=miss builds=N` (a miss evaluates; N counts the derivations
/// the builder ran). Tests assert on it that a warm shell neither evaluates nor builds.
fn record_stats(cache: &str, builds: usize) {
    if let Some(file) = std::env::var_os(env_vars::__ENVY_SHELL_STATS).filter(|f| !f.is_empty()) {
        use std::io::Write;
        let line = format!("cache={cache} builds={builds}\n");
        let _ = fs_err::OpenOptions::new()
            .create(true)
            .append(true)
            .open(file)
            .and_then(|mut f| f.write_all(line.as_bytes()));
    }
}

/// Evaluate and build the environment for `request`; also returns how many derivations were
/// built.
fn realise(
    backend: &Backend,
    cache: &Path,
    dir: &Path,
    key: &str,
    host_tools: &HostTools,
    request: &ShellRequest,
) -> Result<(ShellEntry, usize)> {
    let pkgs_dir = pkgs::materialize(cache, host_tools).with_context(|| {
        format!(
            "cannot write envy's package set under `{}`",
            cache.display()
        )
    })?;
    let (env, anchor, builds) = match backend {
        Backend::Nix => {
            let nix = NixBackend::find().context(
                "`ENVY_SHELL_BACKEND=nix` needs Nix\nhint: install Debian's `nix-bin`, point `ENVY_NIX` at a nix binary, or unset `ENVY_SHELL_BACKEND` to use envy's own engine",
            )?;
            fs_err::create_dir_all(dir)?;
            let render = Render::new();
            let env = nix.realise(&pkgs_dir, request, &dir.join("nix-profile"), &render);
            render.finish();
            (env?, None, render.built())
        }
        Backend::Embedded { .. } => {
            let render = Arc::new(Render::new());
            let engine = Engine::from_env(render.clone())?;
            let realised =
                embedded::realise(&engine, &pkgs_dir, request, &embedded::root_name(key));
            render.finish();
            let realised = realised.map_err(|e| {
                let hint = match &e {
                    EngineError::Build(envy_build::BuildError::Download { .. }) => format!(
                        "\nhint: without internet, put the file into a hashed mirror (`<dir>/sha256/<hex>`) and set `{}=file://<dir>/`",
                        env_vars::ENVY_HASHED_MIRRORS
                    ),
                    _ => String::new(),
                };
                anyhow::Error::new(e).context(format!(
                    "cannot build the `envy shell` environment for `{}`{hint}",
                    request.target.triple()
                ))
            })?;
            for line in &realised.diagnostics {
                eprintln!("{line}");
            }
            (realised.env, Some(realised.anchor), engine.built_count())
        }
    };
    let clang = host_tools
        .get("clang")
        .map_or_else(String::new, |t| format!("clang {}", t.version));
    let musl = var(&env, "NIX_CC")
        .and_then(|cc| fs_err::read_to_string(Path::new(cc).join("nix-support/orig-libc")).ok())
        .and_then(|libc| {
            libc.trim()
                .rsplit_once("-musl-")
                .map(|(_, v)| format!(", musl {v}"))
        })
        .unwrap_or_default();
    let entry = ShellEntry::new(request.target, format!("{clang}{musl}"), env, anchor);
    Ok((entry, builds))
}

/// What the shell is, on stderr.
fn banner(entry: &ShellEntry, target: Target) {
    let mut text = format!(
        "envy shell: {} — `cc` builds static binaries ({})",
        entry.target, entry.toolchain
    );
    if target != Target::host() {
        let emulator = target.emulator();
        if which::which(emulator).is_ok() {
            text.push_str(&format!("\n  run them here with `{emulator} ./prog`"));
        } else {
            text.push_str(&format!(
                "\n  to run them here, install `qemu-user-static` (then `{emulator} ./prog`)"
            ));
        }
    }
    if std::io::stderr().is_terminal() {
        eprintln!("\x1b[1m{text}\x1b[0m");
    } else {
        eprintln!("{text}");
    }
}
