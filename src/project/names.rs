//! The file names that make a project (also compiled into `envy-hook`, which includes this
//! file by path: keep it free of other modules).

/// The file that makes a directory a project.
pub const FLAKE_NIX: &str = "flake.nix";
/// Its lock file, part of the trust key and always watched.
pub const FLAKE_LOCK: &str = "flake.lock";
