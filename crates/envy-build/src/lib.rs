//! Runs derivation builders with Nix's build-environment conventions, in a Linux sandbox
//! (user, mount, PID, IPC, UTS and network namespaces) where the kernel allows it.
