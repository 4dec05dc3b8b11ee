//! `envy build FILE.nix` with `ENVY_STORE=daemon`: envy's evaluator writes the sources, texts
//! and `.drv`s into Nix's store through a real `nix-daemon` (Nix 2.8, started by the test on
//! its own socket and store), the daemon builds — or substitutes — there, and `result` is an
//! indirect root Nix's gc respects. envy runs as `nobody`, a non-trusted user of the daemon.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output};

use common::daemon::NixDaemon;

/// Run the envy binary as `nobody` in `dir` with the daemon's client variables and `env`.
fn envy_as_nobody(
    daemon: &NixDaemon,
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let w = daemon.dir();
    let exe = w.join("envy");
    if !exe.exists() {
        fs_err::copy(common::envy_bin(), &exe).unwrap();
    }
    let home = w.join("nobody-home");
    fs_err::create_dir_all(&home).unwrap();
    chown_nobody(&home);
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("PWD", dir)
        .env("NIX_CONF_DIR", w.join("conf"))
        .envs(daemon.client_env())
        .envs(env.iter().copied());
    cmd.output().unwrap()
}

fn chown_nobody(path: &std::path::Path) {
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn envy_build_evaluates_into_nixs_store_and_builds_through_the_daemon() {
    if !common::have_tool("nix-daemon") || !common::have_tool("setpriv") {
        return;
    }
    let daemon = NixDaemon::start("");
    let project = daemon.dir().join("project");
    fs_err::create_dir_all(&project).unwrap();
    fs_err::write(project.join("greeting.txt"), "hello from a source\n").unwrap();
    fs_err::write(
        project.join("default.nix"),
        r#"let
  text = builtins.toFile "note" "a note";
  dep = derivation { name = "dep"; system = builtins.currentSystem; builder = "/bin/sh";
    args = [ "-c" "echo dep > $out" ]; };
in derivation {
  name = "hello";
  system = builtins.currentSystem;
  builder = "/bin/sh";
  src = ./greeting.txt;
  inherit text dep;
  args = [ "-c" "read line < $src; read note < $text; read d < $dep; echo \"$line / $note / $d\" > $out" ];
}
"#,
    )
    .unwrap();
    fs_err::set_permissions(&project, std::fs::Permissions::from_mode(0o777)).unwrap();

    let out = envy_as_nobody(
        &daemon,
        &project,
        &["build", "default.nix"],
        &[("ENVY_STORE", "daemon")],
    );
    common::assert_success(&out, "envy build through the daemon");
    let printed = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Nix's daemon will build 2 derivations and substitute 0 paths"),
        "{stderr}"
    );

    // The path nix-build computes for the same file, and the contents the daemon built.
    let nix_out = daemon.run(
        "nix-instantiate",
        &[
            "--eval",
            "-E",
            &format!("(import {}/default.nix).outPath", project.display()),
        ],
    );
    assert_eq!(format!("\"{printed}\""), nix_out);
    assert!(
        printed.starts_with(&format!("{}/", daemon.store_dir.display())),
        "{printed}"
    );
    assert_eq!(
        fs_err::read_to_string(&printed).unwrap(),
        "hello from a source / a note / dep\n"
    );
    // envy's own store was never created: everything went to Nix's.
    assert!(
        !daemon
            .dir()
            .join("nobody-home/.local/share/envy/store")
            .exists()
    );

    // `result` is an indirect root: Nix's gc keeps the output while it exists.
    let result = project.join("result");
    assert_eq!(
        fs_err::read_link(&result).unwrap().to_str().unwrap(),
        printed
    );
    daemon.run("nix-store", &["--gc"]);
    assert!(std::path::Path::new(&printed).exists());
    fs_err::remove_file(&result).unwrap();
    daemon.run("nix-store", &["--gc"]);
    assert!(!std::path::Path::new(&printed).exists());

    // `envy status` names the store in use.
    let status = envy_as_nobody(
        &daemon,
        &project,
        &["status", "--json"],
        &[("ENVY_STORE", "daemon")],
    );
    common::assert_success(&status, "envy status");
    let doc: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(doc["store"]["kind"], "nix-daemon", "{doc}");
    assert_eq!(
        doc["store"]["socket"].as_str().unwrap(),
        daemon.socket.to_str().unwrap()
    );
    assert_eq!(
        doc["store"]["store_dir"].as_str().unwrap(),
        daemon.store_dir.to_str().unwrap()
    );
}

#[test]
fn a_failing_build_shows_the_daemons_error() {
    if !common::have_tool("nix-daemon") || !common::have_tool("setpriv") {
        return;
    }
    let daemon = NixDaemon::start("");
    let project = daemon.dir().join("project");
    fs_err::create_dir_all(&project).unwrap();
    fs_err::write(
        project.join("default.nix"),
        r#"derivation { name = "broken"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo about to fail; exit 7" ]; }"#,
    )
    .unwrap();
    fs_err::set_permissions(&project, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = envy_as_nobody(&daemon, &project, &["build"], &[("ENVY_STORE", "daemon")]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken> about to fail"), "{stderr}");
    assert!(
        stderr.contains("builder for") && stderr.contains("exit code 7"),
        "{stderr}"
    );
}

#[test]
fn envy_store_daemon_without_a_daemon_says_how_to_fix_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::envy_in(
        dir.path(),
        &["build", "default.nix"],
        [
            ("HOME", dir.path().to_str().unwrap()),
            ("ENVY_STORE", "daemon"),
            ("NIX_REMOTE", "local"),
        ],
    )
    .output()
    .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Nix uses no daemon here") && stderr.contains("hint:"),
        "{stderr}"
    );
}

/// A daemon envy cannot use (here: a socket that hangs up during the handshake, as a daemon
/// speaking an unknown protocol would) is named, and the devShell goes to the Nix CLI.
#[test]
fn a_daemon_refusing_envy_is_named_and_the_devshell_goes_to_nix() {
    if !common::have_tool("nix") {
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("envy-refuse")
        .tempdir_in("/tmp")
        .unwrap();
    let socket = dir.path().join("sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    let project = dir.path().join("project");
    fs_err::create_dir_all(&project).unwrap();
    fs_err::write(
        project.join("flake.nix"),
        r#"{ outputs = { self }: { devShells.x86_64-linux.default = derivation {
  name = "shell"; system = "x86_64-linux"; builder = "/bin/bash"; outputs = [ "out" ];
  PATH = "/usr/bin:/bin"; }; }; }
"#,
    )
    .unwrap();
    let home = dir.path().join("home");
    let conf = dir.path().join("conf");
    common::nix::write_offline_conf(&conf, &conf.join("registry.json"), None);
    let out = common::envy_in(
        &project,
        &["print-dev-env", "--json"],
        [
            ("HOME", home.to_str().unwrap()),
            ("XDG_CACHE_HOME", home.join(".cache").to_str().unwrap()),
            ("XDG_DATA_HOME", home.join(".local/share").to_str().unwrap()),
            ("XDG_CONFIG_HOME", home.join(".config").to_str().unwrap()),
            ("PATH", "/usr/bin:/bin"),
            ("NIX_CONF_DIR", conf.to_str().unwrap()),
            ("ENVY_STORE", "daemon"),
            ("NIX_REMOTE", "daemon"),
            ("NIX_DAEMON_SOCKET_PATH", socket.to_str().unwrap()),
        ],
    )
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Nix, talking to the same socket, fails too; what matters is that envy said why it
    // handed over, and did.
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "Nix's daemon at `{}` refused envy",
            socket.display()
        )) && stderr.contains("Nix (used instead) failed too"),
        "{stderr}"
    );
}
