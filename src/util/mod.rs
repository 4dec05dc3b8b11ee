//! Plumbing every part of envy shares: where its files live ([`dirs`]), atomic writes and
//! locks ([`fsutil`]), numbers for people ([`humanize`]) and the progress display
//! ([`progress`]).

pub mod dirs;
pub mod fsutil;
pub mod humanize;
pub mod progress;
