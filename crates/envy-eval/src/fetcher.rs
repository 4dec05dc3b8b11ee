//! Fetching for `fetchurl`, `fetchTarball`, `fetchGit` and `fetchTree` goes through the
//! `Fetcher` trait: the real implementation is `envy-fetch` (shared with the flake layer);
//! `Offline` wraps one and refuses anything that is not a `file://` URL or a local path, so
//! evaluations (and tests) can be kept off the network.

use envy_fetch::{Fetched, Input};

pub use envy_fetch::FetchError;

/// Where the evaluator gets remote things from.
pub trait Fetcher {
    /// Fetch `input` (`file`, `tarball`, `git`, `path`, `github`, …) into a hashed tree.
    fn fetch(&mut self, input: &Input) -> Result<Fetched, FetchError>;
}

impl Fetcher for envy_fetch::Fetcher {
    fn fetch(&mut self, input: &Input) -> Result<Fetched, FetchError> {
        envy_fetch::Fetcher::fetch(self, input)
    }
}

/// A fetcher limited to local sources.
pub struct Offline<F>(pub F);

fn is_local(input: &Input) -> bool {
    match input.input_type() {
        "path" => true,
        "git" | "tarball" | "file" => input
            .get_str("url")
            .is_some_and(|u| u.starts_with("file://") || u.starts_with('/')),
        _ => false,
    }
}

impl<F: Fetcher> Fetcher for Offline<F> {
    fn fetch(&mut self, input: &Input) -> Result<Fetched, FetchError> {
        if !is_local(input) {
            return Err(FetchError::BadInput {
                input: input.to_string(),
                reason: "network access is disabled for this evaluation".into(),
            });
        }
        self.0.fetch(input)
    }
}

/// The fetcher an evaluator has when none was given: every fetch fails.
pub struct NoFetcher;

impl Fetcher for NoFetcher {
    fn fetch(&mut self, input: &Input) -> Result<Fetched, FetchError> {
        Err(FetchError::BadInput {
            input: input.to_string(),
            reason: "this evaluation has no fetcher".into(),
        })
    }
}
