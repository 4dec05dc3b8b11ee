//! A client for Nix's daemon (the worker protocol, as Nix 2.8 speaks it), so envy can put
//! derivations and sources into Nix's store and have them realised there, with Nix's
//! substituters and gc: finding the daemon as Nix does ([`address`]), the wire format
//! ([`wire`]), the daemon's log stream ([`log`]) and the operations ([`client`]), and
//! copying closures to and from a build machine's daemon (`ssh-ng://`, `copy.rs`).
//!
//! Does not run Nix, read Nix's database or touch `/nix` itself: everything goes through the
//! socket, as a non-trusted user of a multi-user install can.

pub mod address;
mod client;
mod copy;
mod error;
pub mod log;
pub(crate) mod wire;

pub use address::{DaemonAddress, NixEnv};
pub use client::{ClientOptions, DaemonClient, DerivedPath, Missing};
pub use error::DaemonError;
pub use log::{CollectLog, LogEvent, LogSink};
