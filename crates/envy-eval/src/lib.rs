//! The Nix language for envy: parsing (rnix), lowering with Nix's static checks, lazy
//! evaluation, builtins and Nix-style errors.
//!
//! All file, directory and environment access goes through the [`EvalIO`] trait, and every
//! read is recorded in a [`ReadRecord`] so the caller can invalidate caches exactly. Store
//! paths are computed with `envy-store`; adding to a store goes through [`EvalStore`], and
//! builds the evaluator needs through [`Realiser`]. This crate knows nothing of terminals
//! or shells: traces and warnings are handed to a callback as [`Diagnostic`]s.
//!
//! ```no_run
//! use envy_eval::{Evaluator, print};
//! let mut ev = Evaluator::builder().build();
//! let v = ev.eval_string("1 + 1", "/").unwrap();
//! let v = ev.force_deep(&v, envy_eval::Pos::NONE).unwrap();
//! assert_eq!(print::print_value(&v), b"2");
//! ```

pub mod builtins;
pub mod env_vars;
pub mod error;
pub mod eval;
pub mod fetcher;
pub mod io;
pub mod ir;
pub mod lower;
pub mod print;
pub mod show;
pub mod source;
mod stack;
pub mod store;
pub mod symbol;
pub mod value;

pub use error::{ErrorKind, EvalError, EvalResult};
pub use eval::{
    Diagnostic, EvalSettings, Evaluator, EvaluatorBuilder, SearchPathEntry, run_with_stack,
};
pub use fetcher::{FetchError, Fetcher, NoFetcher, Offline};
pub use io::{EvalIO, FileAccess, FileType, MemoryIO, ReadRecord, RealIO};
pub use lower::{Lint, ParseOptions};
pub use source::{Location, Origin, Pos};
pub use store::{DummyStore, EvalStore, Fetch, FetchKind, Realiser, StoreError};
pub use value::Value;
