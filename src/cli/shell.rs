//! `envy shell`: an ad-hoc shell with envy's clang-musl toolchain, for the host or cross.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};

use crate::toolchain::nix_backend::NixBackend;
use crate::toolchain::progress::Progress;
use crate::toolchain::shell_cache::{self, ShellEntry, ShellRequest, Target};
use crate::toolchain::spawn::{self, UserShell};
use crate::toolchain::{HostTools, cache_dir};
use crate::{env_vars, pkgs};

/// Enter a shell whose `cc` builds fully static musl binaries, for this machine or cross
/// compiled for aarch64, with the host's clang and lld. The toolchain is built once (musl from
/// source, compiler wrappers) and cached; later shells start at once.
///
/// Examples:
///   envy shell                                  # a shell for the host
///   envy shell --target aarch64-linux-musl      # cross compile (run results with qemu-aarch64-static)
///   envy shell -p hello -- hello                # one command, with a package from the set
#[derive(Debug, clap::Args)]
pub struct ShellArgs {
    /// The toolchain's target (default: this machine's architecture)
    #[arg(long, value_enum, value_name = "TARGET")]
    target: Option<Target>,

    /// Add packages from envy's package set (attribute paths like `hello`); repeatable
    #[arg(short = 'p', long = "package", value_name = "PKG", num_args = 1..)]
    packages: Vec<String>,

    /// Run this command in the environment instead of a shell
    #[arg(last = true, value_name = "CMD")]
    command: Vec<String>,
}

/// Which engine realises the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    Nix,
    Embedded,
}

impl Backend {
    fn from_env() -> Result<Self> {
        match std::env::var(env_vars::ENVY_SHELL_BACKEND).as_deref() {
            Ok("nix") => Ok(Self::Nix),
            Ok("embedded") => Ok(Self::Embedded),
            // Until envy's own evaluator, store and builder are wired in, Nix realises shells.
            Ok("") | Err(_) => Ok(Self::Nix),
            Ok(other) => bail!(
                "unknown `{}` value `{other}` (expected `nix` or `embedded`)",
                env_vars::ENVY_SHELL_BACKEND
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Nix => "nix",
            Self::Embedded => "embedded",
        }
    }
}

impl ShellArgs {
    pub fn run(self) -> Result<()> {
        let request = ShellRequest {
            target: self.target.unwrap_or_else(Target::host),
            packages: self.packages,
        };
        let backend = Backend::from_env()?;
        let cache = cache_dir()
            .context("cannot find a cache directory (set `ENVY_CACHE_DIR` or `HOME`)")?;

        let path = std::env::var_os(env_vars::PATH);
        let host_tools =
            HostTools::discover(path.as_deref(), Some(&cache)).map_err(|e| match e.hint() {
                Some(hint) => anyhow::anyhow!("{e}\nhint: {hint}"),
                None => anyhow::Error::new(e),
            })?;

        let key = shell_cache::key(&host_tools, &request, backend.name());
        let dir = shell_cache::entry_dir(&cache, &key);
        let entry = match shell_cache::load(&cache, &key) {
            Some(entry) => entry,
            None => {
                let entry = realise(backend, &cache, &dir, &host_tools, &request)?;
                shell_cache::store(&cache, &key, &entry).with_context(|| {
                    format!("cannot write the shell cache in `{}`", dir.display())
                })?;
                entry
            }
        };

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

/// Evaluate and build the environment for `request`.
fn realise(
    backend: Backend,
    cache: &std::path::Path,
    dir: &std::path::Path,
    host_tools: &HostTools,
    request: &ShellRequest,
) -> Result<ShellEntry> {
    let pkgs_dir = pkgs::materialize(cache, host_tools).with_context(|| {
        format!(
            "cannot write envy's package set under `{}`",
            cache.display()
        )
    })?;
    let mut progress = Progress::new(false);
    let env = match backend {
        Backend::Nix => {
            let nix = NixBackend::find().context(
                "envy shell needs Nix to build its toolchain (the embedded engine is not wired in yet)\nhint: install Debian's `nix-bin`, or point `ENVY_NIX` at a nix binary",
            )?;
            fs_err::create_dir_all(dir)?;
            nix.realise(&pkgs_dir, request, &dir.join("nix-profile"), &mut progress)?
        }
        Backend::Embedded => bail!(
            "the embedded engine cannot build shells yet: envy's evaluator, store and builder are not wired into `envy shell`\nhint: unset `{}` to use Nix",
            env_vars::ENVY_SHELL_BACKEND
        ),
    };
    let clang = host_tools
        .get("clang")
        .map_or_else(String::new, |t| format!("clang {}", t.version));
    let musl = env
        .get("NIX_CC")
        .and_then(|cc| {
            fs_err::read_to_string(std::path::Path::new(cc).join("nix-support/orig-libc")).ok()
        })
        .and_then(|libc| {
            libc.trim()
                .rsplit_once("-musl-")
                .map(|(_, v)| format!(", musl {v}"))
        })
        .unwrap_or_default();
    Ok(ShellEntry::new(
        request.target,
        format!("{clang}{musl}"),
        env,
    ))
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
