//! Every environment variable the `envy` binary reads or sets, in one place: `ENVY_*` are
//! public (documented for users), `__ENVY_*` are internal state.

/// Where envy keeps its caches (default: `$XDG_CACHE_HOME/envy`, else `~/.cache/envy`).
pub const ENVY_CACHE_DIR: &str = "ENVY_CACHE_DIR";

/// Which engine realises `envy shell` environments: `nix` (the installed Nix) or `embedded`.
pub const ENVY_SHELL_BACKEND: &str = "ENVY_SHELL_BACKEND";

/// The `nix` executable the Nix backend runs (default: `nix` on PATH).
pub const ENVY_NIX: &str = "ENVY_NIX";

/// Set inside an `envy shell` to the target triple of its toolchain (read by nothing; a marker
/// for prompts and scripts, as `IN_NIX_SHELL` is for `nix develop`).
pub const ENVY_SHELL: &str = "ENVY_SHELL";

/// The user's shell, which `envy shell` starts (bash, zsh or fish; anything else gets bash).
pub const SHELL: &str = "SHELL";

/// The user's search path; an `envy shell` appends it after the environment's own PATH.
pub const PATH: &str = "PATH";

/// zsh's startup-file directory; `envy shell` points it at its own rc files, which then load
/// the user's from the original location.
pub const ZDOTDIR: &str = "ZDOTDIR";

/// The user's zsh startup directory, saved while `envy shell` starts zsh with its own.
pub const ENVY_ORIG_ZDOTDIR: &str = "__ENVY_ORIG_ZDOTDIR";
