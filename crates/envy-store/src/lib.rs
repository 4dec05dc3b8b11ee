//! Nix's store formats and envy's local store: nix-base32, hashes, store paths, `.drv`
//! ATerm, NAR, the store database, GC roots and gc, and Nix binary caches.
//!
//! Knows nothing of how builders run (that is `envy-build`) nor of the Nix language.
