//! Nix's fetchers for envy: `path`, `git` (`git+file` work trees with Nix's tracked-files
//! semantics, `git+https`/`git+ssh` through the system `git`), `tarball` and `file` over
//! `file://` and `https://`, and `github` (commits API + archive). Each fetch yields the
//! input's locked form and a [`SourceTree`] whose `narHash` and `source` store path are
//! exactly Nix's.
//!
//! Hash eagerly, copy lazily: a [`SourceTree`] is read where it is (the user's work tree, an
//! unpacked archive in the fetch cache); copying it into a store is a separate step
//! ([`SourceTree::path_filter`] + the store's `add_path`), taken only when a build needs the
//! path. Depends only on `envy-store`, so the evaluator's `fetchGit`/`fetchTarball`/
//! `fetchTree` and the flake layer share it. Never prints.
//!
//! ```no_run
//! use envy_fetch::{Fetcher, FetchSettings, Input};
//! let fetcher = Fetcher::new(FetchSettings::new(
//!     envy_store::StoreDir::nix_default(),
//!     "/tmp/fetch-cache",
//! ));
//! let fetched = fetcher.fetch(&Input::from_url("git+file:///src/project").unwrap()).unwrap();
//! println!("{} {}", fetched.input, fetched.tree.store_path().base_name());
//! ```

pub mod archive;
pub mod attrs;
pub mod cache;
mod download;
pub mod error;
pub mod fetcher;
mod git;
mod github;
pub mod input;
mod path;
mod tarball;
pub mod time;
pub mod tree;
pub mod tree_attrs;
pub mod url;

pub use attrs::{Attr, Attrs};
pub use error::FetchError;
pub use fetcher::{FetchSettings, Fetched, Fetcher, FindInStore, StoreLookup};
pub use input::Input;
pub use tree::{SourceTree, TrackedFiles};
pub use tree_attrs::{TreeAttr, tree_attrs};
pub use url::ParsedUrl;
