//! `envy build` on Nix build machines over `ssh-ng://`: a real sshd on 127.0.0.1 whose forced
//! command runs real Nix 2.8's `nix-daemon --stdio` on its own store (tests/common/sshd.rs),
//! spoken to with the worker protocol. The tests, shared with `ssh://` (tests/remote_build.rs),
//! are in tests/common/remote.rs: with `-j 0` a 3-derivation chain builds remotely over one
//! connection (the remote store has it, envy's store gets it, `envy store verify` passes,
//! `envy log` has the daemon's log messages); an `aarch64-linux` derivation goes to the
//! machine declaring that system; a machine that is down is skipped with one warning; a remote
//! failure's log (the daemon's log messages) reaches the user.

mod common;

use common::remote::{self, Protocol};

#[test]
fn chain_builds_on_the_machine_with_j0_over_ssh_ng() {
    remote::chain_builds_on_the_machine_with_j0(Protocol::SshNg);
}

#[test]
fn aarch64_goes_to_its_machine_and_a_down_machine_is_skipped_over_ssh_ng() {
    remote::aarch64_goes_to_its_machine_and_a_down_machine_is_skipped(Protocol::SshNg);
}

#[test]
fn a_remote_failure_shows_the_remote_log_over_ssh_ng() {
    remote::a_remote_failure_shows_the_remote_log(Protocol::SshNg);
}
