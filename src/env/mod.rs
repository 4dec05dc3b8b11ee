//! Environments as data: a devShell's captured variables and functions with what they were
//! computed from ([`record`]), the difference between two environments that loading and
//! unloading apply ([`diff`]), and the names of the environment variables envy reads or
//! treats specially ([`vars`]).

pub mod diff;
pub mod record;
pub mod vars;
