//! The Nix language for envy: parsing (rnix), lowering with Nix's static checks, lazy
//! evaluation, builtins and Nix-style errors.
//!
//! All file, directory and environment access goes through the `EvalIO` trait, and every
//! read is recorded so the caller can invalidate caches exactly. This crate knows nothing
//! of terminals or shells.
