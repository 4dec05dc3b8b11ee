//! Every environment variable envy reads or sets, in one place.
//!
//! `ENVY_*` are public settings a user may set; `__ENVY_*` are envy's own state, written by
//! the hook into the shell and read back at the next prompt. Variables that belong to other
//! programs but that envy reads (`PWD`, `PATH`, XDG directories) are listed too, so a reader
//! can see at a glance what can change envy's behaviour.

// --- Public settings ---------------------------------------------------------------------

/// Which backend evaluates and builds a devShell: unset (envy's own engine, handing flakes it
/// cannot evaluate to Nix when Nix is installed), `embedded` (envy's engine only) or `nix`
/// (the Nix CLI).
pub const ENVY_BACKEND: &str = "ENVY_BACKEND";

/// Path of the `nix` executable the Nix backend runs; by default `nix` is looked up on `PATH`.
pub const ENVY_NIX: &str = "ENVY_NIX";

/// When set to a non-empty value, the hook prints no `envy: loaded …` / `envy: unloaded …`
/// lines. Errors and the "run `envy allow`" notice still show.
pub const ENVY_QUIET: &str = "ENVY_QUIET";

/// `1` (or `true`): the prompt waits for a build, with its progress, as before background
/// builds; `0` turns that off again over `sync = true` in `config.toml`.
pub const ENVY_SYNC: &str = "ENVY_SYNC";

/// `0` (or `false`): no file watcher rebuilds a loaded project when a watched file changes;
/// the next prompt still does. Background mode only.
pub const ENVY_WATCH: &str = "ENVY_WATCH";

/// Set by a background build on itself: the file its progress display writes the current
/// phase ("building hello-2.12") to, for `envy status`.
pub const __ENVY_PHASE_FILE: &str = "__ENVY_PHASE_FILE";

/// The system a devShell is picked for (`devShells.<system>.<name>`); defaults to the
/// machine's (`x86_64-linux`, `aarch64-linux`, …).
pub const ENVY_SYSTEM: &str = "ENVY_SYSTEM";

/// Where a build shows progress: `auto` (a spinner on a terminal, plain lines otherwise),
/// `plain` (always lines) or `none`.
pub const ENVY_PROGRESS: &str = "ENVY_PROGRESS";

// --- Internal state, set by envy in the user's shell --------------------------------------

/// The hook's compact state: the active project root, its generation, the restore file and
/// the `stat` signature of every watched file. Decoded by the fast path at every prompt; see
/// `src/hook/state.rs` for the format. Exported, so child shells know what is loaded.
pub const __ENVY_STATE: &str = "__ENVY_STATE";

/// The process id of the interactive shell running the hook (`$$`, `$fish_pid`), passed by
/// the hook on each `envy export` call. Used to record which generation a live shell uses.
pub const __ENVY_PID: &str = "__ENVY_PID";

// --- Read from the environment, owned by others --------------------------------------------

/// The shell's logical working directory; the hook decides from it, not from `getcwd`, so
/// that a project reached through a symbolic link keeps the path the user typed.
pub const PWD: &str = "PWD";

/// Program search path: the devShell's entries are put in front of the user's own.
pub const PATH: &str = "PATH";

/// Data directories (desktop files, completions): prepended like `PATH`.
pub const XDG_DATA_DIRS: &str = "XDG_DATA_DIRS";

/// Cache base directory (`~/.cache` when unset): envy's environment cache lives under it.
pub const XDG_CACHE_HOME: &str = "XDG_CACHE_HOME";

/// Where envy keeps its caches (default: `$XDG_CACHE_HOME/envy`, else `~/.cache/envy`).
pub const ENVY_CACHE_DIR: &str = "ENVY_CACHE_DIR";

/// Data base directory (`~/.local/share` when unset): trust records and per-project settings.
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";

/// Whether a variable envy sets is prepended to the user's value rather than replacing it.
pub fn is_prepended(name: &str) -> bool {
    name == PATH || name == XDG_DATA_DIRS
}

/// Whether `name` is one of envy's own variables, which never enter a diff or a restore file.
pub fn is_internal(name: &str) -> bool {
    name.starts_with("__ENVY_")
}

// --- The store and the builder (`envy build`, `envy log`, `envy store`) -------------------

/// Which store envy uses: `envy` (its own, the default), `daemon` (Nix's store through
/// Nix's daemon, found as Nix finds it: `NIX_REMOTE`, `NIX_DAEMON_SOCKET_PATH`,
/// `NIX_STORE_DIR`, `store` in nix.conf) or `auto` (the daemon when Nix would use one).
pub const ENVY_STORE: &str = "ENVY_STORE";

/// Seconds a path an HTTP binary cache did not have is not asked for again (default 3600,
/// as Nix's `narinfo-cache-negative-ttl`; `0` asks every time).
pub const ENVY_NARINFO_NEGATIVE_TTL: &str = "ENVY_NARINFO_NEGATIVE_TTL";

/// envy's store directory (default `$XDG_DATA_HOME/envy/store`).
pub const ENVY_STORE_DIR: &str = "ENVY_STORE_DIR";

/// envy's state directory: store database, logs, locks, build dirs (default
/// `$XDG_DATA_HOME/envy/state`).
pub const ENVY_STATE_DIR: &str = "ENVY_STATE_DIR";

/// Build sandbox: `true`, `false` or `auto` (default: sandbox when the kernel allows).
pub const ENVY_SANDBOX: &str = "ENVY_SANDBOX";

/// Host paths visible in the sandbox, space-separated, Nix's `sandbox-paths` syntax
/// (default `/bin /usr /lib /lib64`).
pub const ENVY_SANDBOX_PATHS: &str = "ENVY_SANDBOX_PATHS";

/// Space-separated base URLs of hashed mirrors (`BASE/sha256/<hex>`), like Nix's
/// `hashed-mirrors`; overrides `hashed-mirrors` in `$XDG_CONFIG_HOME/envy/config.toml`.
pub const ENVY_HASHED_MIRRORS: &str = "ENVY_HASHED_MIRRORS";

/// `NIX_BUILD_CORES` given to builders (default: the number of CPUs).
pub const ENVY_BUILD_CORES: &str = "ENVY_BUILD_CORES";

/// Build machines in Nix's machine syntax (as Nix's `builders`; `@FILE` reads a machines
/// file); overrides `builders` in `$XDG_CONFIG_HOME/envy/config.toml`. `--builders` on
/// `envy build` overrides both.
pub const ENVY_BUILDERS: &str = "ENVY_BUILDERS";

/// `1`: a build machine first substitutes the inputs it lacks from its own caches, and envy
/// copies only what is still missing (Nix's `builders-use-substitutes`); overrides
/// `builders-use-substitutes` in `$XDG_CONFIG_HOME/envy/config.toml`.
pub const ENVY_BUILDERS_USE_SUBSTITUTES: &str = "ENVY_BUILDERS_USE_SUBSTITUTES";

/// A binary cache URL every path envy builds is pushed to, with its closure, while the build
/// goes on (`post-build-push` in `$XDG_CONFIG_HOME/envy/config.toml`).
pub const ENVY_PUSH_TO: &str = "ENVY_PUSH_TO";

/// The secret key file (Nix's `name:base64` format) pushed paths are signed with
/// (`push-secret-key-file` in `config.toml`; without one, paths are pushed unsigned).
pub const ENVY_PUSH_SECRET_KEY_FILE: &str = "ENVY_PUSH_SECRET_KEY_FILE";

// --- Flakes (`envy flake`, the embedded backend) ------------------------------------------

/// A GitHub token for `github:` inputs (sent as `Authorization: token …`; raises the API's
/// rate limit and reaches private repositories).
pub const ENVY_GITHUB_TOKEN: &str = "ENVY_GITHUB_TOKEN";

/// The GitHub API base URL `github:` inputs use (default `https://api.github.com`), for
/// mirrors and tests.
pub const ENVY_GITHUB_API: &str = "ENVY_GITHUB_API";

/// Diagnostics: when set, the embedded backend appends one line per flake evaluation
/// (`<unix time> <project root>`) to this file — how tests prove that a change did, or did not,
/// cause an evaluation.
pub const ENVY_EVAL_LOG: &str = "ENVY_EVAL_LOG";

// --- `envy shell` ------------------------------------------------------------------------

/// Which engine realises `envy shell` environments: `embedded` (envy's own evaluator, store
/// and builder; the default) or `nix` (the installed Nix).
pub const ENVY_SHELL_BACKEND: &str = "ENVY_SHELL_BACKEND";

/// Internal: a file `envy shell` appends one line to per run, `cache=hit|miss builds=N` (the
/// builder's count); tests use it to show a warm shell neither evaluates nor builds.
pub const __ENVY_SHELL_STATS: &str = "__ENVY_SHELL_STATS";

/// Set inside an `envy shell` to the target triple of its toolchain (read by nothing; a marker
/// for prompts and scripts, as `IN_NIX_SHELL` is for `nix develop`).
pub const ENVY_SHELL: &str = "ENVY_SHELL";

/// The user's shell, which `envy shell` starts (bash, zsh or fish; anything else gets bash).
pub const SHELL: &str = "SHELL";

/// zsh's startup-file directory; `envy shell` points it at its own rc files, which then load
/// the user's from the original location.
pub const ZDOTDIR: &str = "ZDOTDIR";

/// The user's zsh startup directory, saved while `envy shell` starts zsh with its own.
pub const ENVY_ORIG_ZDOTDIR: &str = "__ENVY_ORIG_ZDOTDIR";
