//! Environment variables the evaluator's semantics depend on. (Variables a Nix program reads
//! through `builtins.getEnv` are the program's business and recorded in the read record.)

/// Colon-separated search path entries for `<…>` lookups, after the `-I` entries.
pub const NIX_PATH: &str = "NIX_PATH";

/// The home directory `~/…` path literals start from.
pub const HOME: &str = "HOME";
