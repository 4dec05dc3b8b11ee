//! Issue 11's "Done when": a nixpkgs-shaped devShell loads with everything substituted from
//! a binary cache real Nix 2.8 filled for the tests' store directory, served over HTTP by a
//! real server (see `common::http_cache`; every builder of the flake fails if it is run):
//! (a) through a real `nix-daemon` on its own socket, envy running as `nobody` (a
//! non-trusted user), evaluating with its own evaluator into Nix's store; (b) without Nix,
//! envy's own store at that store directory (`envy store init --store-dir`) substituting from
//! the cache; (c) when the cache lacks the closure, envy says so before building.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::daemon::NixDaemon;
use common::flake::path_without_nix;
use common::http_cache::{CacheFixture, HttpServer, fixture};
use serde_json::Value;

fn have_tools() -> bool {
    common::have_tool("nix")
        && common::have_tool("nix-daemon")
        && common::have_tool("setpriv")
        && common::have_tool("chown")
}

fn var<'a>(doc: &'a Value, name: &str) -> Option<&'a str> {
    doc["variables"][name]["value"].as_str()
}

fn json(out: &Output) -> Value {
    common::assert_success(out, "envy print-dev-env --json");
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The daemon's `nix.conf` lines: the HTTP cache as its only substituter, with its key.
fn daemon_conf(server: &HttpServer, fx: &CacheFixture) -> String {
    format!(
        "substituters = {}\ntrusted-public-keys = {}\nallowed-users = *\n",
        server.url, fx.public_key
    )
}

/// `envy ARGS` as `nobody` in `dir`, with the daemon's client variables, `ENVY_STORE=daemon`
/// and the embedded backend alone (no fallback to Nix that could hide a failure).
fn envy_as_nobody(daemon: &NixDaemon, dir: &Path, args: &[&str]) -> Output {
    let w = daemon.dir();
    let exe = w.join("envy");
    if !exe.exists() {
        fs_err::copy(common::envy_bin(), &exe).unwrap();
    }
    let home = w.join("nobody-home");
    fs_err::create_dir_all(&home).unwrap();
    chown_nobody(&home);
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", &home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("PWD", dir)
        .env("NIX_CONF_DIR", w.join("conf"))
        .envs(daemon.client_env())
        .env("ENVY_STORE", "daemon")
        .env("ENVY_BACKEND", "embedded")
        .output()
        .unwrap()
}

fn chown_nobody(path: &Path) {
    let status = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The devShell's environment has what its stdenv's setup and its inputs give.
fn assert_loaded(doc: &Value, store_dir: &Path) {
    let path = var(doc, "PATH").unwrap_or_default();
    let store = store_dir.display().to_string();
    assert!(
        path.split(':')
            .any(|p| p.starts_with(&store) && p.ends_with("-hello-2.12.1/bin")),
        "hello is not on PATH: {path}"
    );
    assert!(
        path.split(':')
            .any(|p| p.starts_with(&store) && p.ends_with("-bootstrap-tools/bin")),
        "the bootstrap tools are not on PATH: {path}"
    );
    assert_eq!(var(doc, "GREETING"), Some("from the devShell"));
    assert!(
        doc["bashFunctions"]["stdenvGreeting"]
            .as_str()
            .is_some_and(|b| b.contains("stdenv says hi")),
        "{}",
        doc["bashFunctions"]
    );
    assert_eq!(var(doc, "shellHook"), Some("echo entered"));
}

/// What the server was asked for: `.narinfo`s and NARs, answered 200.
fn assert_served(server: &HttpServer, fx: &CacheFixture) {
    let log = server.requests();
    if server.access_log.is_none() {
        return; // python's server keeps no log file
    }
    for path in &fx.cached_paths {
        let hash = Path::new(path)
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .split('-')
            .next()
            .unwrap()
            .to_owned();
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("GET /{hash}.narinfo")) && l.contains("\" 200 ")),
            "`{hash}.narinfo` was not fetched:\n{log}"
        );
    }
    assert!(
        log.lines()
            .any(|l| l.contains("GET /nar/") && l.contains("\" 200 ")),
        "no NAR was fetched:\n{log}"
    );
}

#[test]
fn a_nixpkgs_shaped_devshell_loads_through_the_daemon_from_an_http_cache() {
    if !have_tools() {
        return;
    }
    let fx = fixture();
    let Some(server) = HttpServer::serve(&fx.cache) else {
        return;
    };
    let _store = fx.take_store();
    let daemon = NixDaemon::start_with_store(&fx.store_dir, |_| daemon_conf(&server, fx));
    let project = daemon.dir().join("project");
    fx.copy_flake(&project);
    chown_nobody(&project);

    let out = envy_as_nobody(&daemon, &project, &["print-dev-env", "--json"]);
    let doc = json(&out);
    assert_loaded(&doc, &fx.store_dir);
    assert_served(&server, fx);
    // Everything the cache has is now in Nix's store, substituted by the daemon (a build
    // would have failed: every builder of the flake exits 1).
    let valid = daemon.run(
        "nix-store",
        &["--check-validity", "--print-invalid"]
            .iter()
            .copied()
            .chain(fx.cached_paths.iter().map(String::as_str))
            .collect::<Vec<_>>(),
    );
    assert_eq!(valid, "", "not valid in Nix's store: {valid}");

    // The environment is an indirect root of Nix's gc: collecting garbage keeps it, and with
    // it the shell's inputs.
    let roots = daemon.run("nix-store", &["--gc", "--print-roots"]);
    let env_root = roots
        .lines()
        .find(|l| l.contains("-nix-shell-env"))
        .unwrap_or_else(|| panic!("no root on the environment:\n{roots}"));
    assert!(env_root.contains("embedded-"), "{env_root}");
    daemon.run("nix-store", &["--gc"]);
    let valid = daemon.run(
        "nix-store",
        &["--check-validity", "--print-invalid"]
            .iter()
            .copied()
            .chain(fx.cached_paths.iter().map(String::as_str))
            .collect::<Vec<_>>(),
    );
    assert_eq!(
        valid, "",
        "collected although the environment needs them: {valid}"
    );

    // The second time the daemon has everything: the same environment, nothing fetched.
    let again = json(&envy_as_nobody(
        &daemon,
        &project,
        &["print-dev-env", "--json"],
    ));
    assert_eq!(again["variables"]["PATH"], doc["variables"]["PATH"]);
}

#[test]
fn through_the_daemon_a_closure_the_cache_lacks_is_announced_before_building() {
    if !have_tools() {
        return;
    }
    let fx = fixture();
    let Some(server) = HttpServer::serve(&fx.cache) else {
        return;
    };
    let _store = fx.take_store();
    let daemon = NixDaemon::start_with_store(&fx.store_dir, |_| daemon_conf(&server, fx));
    let project = daemon.dir().join("project");
    fx.copy_flake(&project);
    chown_nobody(&project);
    let out = envy_as_nobody(
        &daemon,
        &project,
        &["print-dev-env", "--json", ".#uncached"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: 12 derivations must be built from source by Nix's daemon")
            && stderr.contains("substituters"),
        "{stderr}"
    );
    // The builders then fail (they exit 1 outside the fixture), as the warning said.
    assert!(!out.status.success(), "{stderr}");
}

/// envy alone (no `nix` on PATH): its own store at the fixture's store directory, made the
/// default by `envy store init`, the HTTP cache as its substituter.
fn envy_without_nix(
    fx: &CacheFixture,
    home: &Path,
    dir: &Path,
    args: &[&str],
    server: &HttpServer,
) -> Output {
    common::envy_in(
        dir,
        args,
        [
            ("HOME", home.to_path_buf()),
            ("XDG_CONFIG_HOME", home.join(".config")),
            ("XDG_DATA_HOME", home.join(".local/share")),
            ("XDG_CACHE_HOME", home.join(".cache")),
            ("PATH", path_without_nix(home)),
        ],
    )
    .env("ENVY_BACKEND", "embedded")
    .env("ENVY_SUBSTITUTERS", &server.url)
    .env("ENVY_TRUSTED_PUBLIC_KEYS", &fx.public_key)
    .output()
    .unwrap()
}

fn init_envy_store(fx: &CacheFixture, home: &Path, server: &HttpServer) {
    let out = envy_without_nix(
        fx,
        home,
        home,
        &[
            "store",
            "init",
            "--no-substituter",
            "--store-dir",
            fx.store_dir.to_str().unwrap(),
        ],
        server,
    );
    common::assert_success(&out, "envy store init");
}

#[test]
fn without_nix_envys_own_store_substitutes_the_devshell_from_the_http_cache() {
    if !common::have_tool("nix") {
        return; // the fixture's cache is filled by Nix
    }
    let fx = fixture();
    let Some(server) = HttpServer::serve(&fx.cache) else {
        return;
    };
    let _store = fx.take_store();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    fs_err::create_dir_all(&home).unwrap();
    init_envy_store(fx, &home, &server);
    let project = tmp.path().join("project");
    fx.copy_flake(&project);

    let out = envy_without_nix(fx, &home, &project, &["print-dev-env", "--json"], &server);
    let doc = json(&out);
    assert_loaded(&doc, &fx.store_dir);
    assert_served(&server, fx);
    for path in &fx.cached_paths {
        assert!(Path::new(path).exists(), "`{path}` is not in envy's store");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("must be built from source"), "{stderr}");
}

#[test]
fn without_nix_a_closure_the_cache_lacks_is_announced_before_building() {
    if !common::have_tool("nix") {
        return;
    }
    let fx = fixture();
    let Some(server) = HttpServer::serve(&fx.cache) else {
        return;
    };
    let _store = fx.take_store();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    fs_err::create_dir_all(&home).unwrap();
    init_envy_store(fx, &home, &server);
    let project = tmp.path().join("project");
    fx.copy_flake(&project);
    let out = envy_without_nix(
        fx,
        &home,
        &project,
        &["print-dev-env", "--json", ".#uncached"],
        &server,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: 12 derivations must be built from source")
            && stderr.contains(&fx.store_dir.display().to_string()),
        "{stderr}"
    );
    assert!(!out.status.success(), "{stderr}");

    // The cache's `404`s are remembered (as Nix's narinfo cache does): trying again asks
    // the server for none of those paths.
    if server.access_log.is_some() {
        let misses = |log: &str| {
            log.lines()
                .filter(|l| l.contains(".narinfo") && l.contains("\" 404 "))
                .count()
        };
        let before = misses(&server.requests());
        assert!(before >= 12, "{}", server.requests());
        let again = envy_without_nix(
            fx,
            &home,
            &project,
            &["print-dev-env", "--json", ".#uncached"],
            &server,
        );
        let stderr = String::from_utf8_lossy(&again.stderr);
        assert!(stderr.contains("warning: 12 derivations"), "{stderr}");
        assert_eq!(misses(&server.requests()), before, "{}", server.requests());
    }
}
