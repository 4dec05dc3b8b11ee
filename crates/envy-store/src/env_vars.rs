//! Environment variables the store reads (through `StoreConfig::from_env` and
//! `cache::CacheConfig::from_env`); the binary documents them to users.

/// The store directory (default `$XDG_DATA_HOME/envy/store`). Store paths embed it: machines
/// that share a binary cache must use the same one.
pub const ENVY_STORE_DIR: &str = "ENVY_STORE_DIR";

/// The store's state directory: database, gc roots, locks (default `$XDG_DATA_HOME/envy/state`).
pub const ENVY_STATE_DIR: &str = "ENVY_STATE_DIR";

/// Space-separated binary cache URLs to substitute from (`file://…`, `http(s)://…`).
pub const ENVY_SUBSTITUTERS: &str = "ENVY_SUBSTITUTERS";

/// Space-separated `name:base64` public keys whose signatures are trusted.
pub const ENVY_TRUSTED_PUBLIC_KEYS: &str = "ENVY_TRUSTED_PUBLIC_KEYS";

/// A binary cache URL every path envy builds is pushed to, with its closure (Nix's
/// `post-build-hook` + `nix copy --to`, built in); `post-build-push` in `config.toml`.
pub const ENVY_PUSH_TO: &str = "ENVY_PUSH_TO";

/// The secret key file (Nix's `name:base64` format) pushed paths are signed with;
/// `push-secret-key-file` in `config.toml`.
pub const ENVY_PUSH_SECRET_KEY_FILE: &str = "ENVY_PUSH_SECRET_KEY_FILE";
