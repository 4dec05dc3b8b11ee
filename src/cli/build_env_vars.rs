//! Environment variables `envy build` and `envy log` read. (To move into `src/env_vars.rs`
//! when that lands in main.)

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
/// `hashed-mirrors`; also read as `ENVY_HASHED_MIRRORS = …` from `$XDG_CONFIG_HOME/envy/config`.
pub const ENVY_HASHED_MIRRORS: &str = "ENVY_HASHED_MIRRORS";
/// `NIX_BUILD_CORES` given to builders (default: the number of CPUs).
pub const ENVY_BUILD_CORES: &str = "ENVY_BUILD_CORES";
pub const XDG_DATA_HOME: &str = "XDG_DATA_HOME";
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
