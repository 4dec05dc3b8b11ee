//! envy's worker-protocol client against a real `nix-daemon` (Nix 2.8) that each test starts
//! on its own socket, store directory and state: the handshake, adding text and sources (the
//! same paths Nix computes), path info, building and substituting through the daemon, the
//! daemon's errors reaching the caller, gc roots, and a non-trusted user (`nobody`, through
//! `setpriv`) doing what envy needs.

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::daemon::NixDaemon;
use envy_store::daemon::log::ActivityKind;
use envy_store::daemon::{
    ClientOptions, DaemonAddress, DaemonClient, DaemonError, DerivedPath, LogEvent, NixEnv,
};
use envy_store::{Derivation, FileIngestionMethod, HashAlgo, StoreDir, StorePath};

fn have_daemon() -> bool {
    common::have_tool("nix-daemon") && common::have_tool("nix-store")
}

fn address(daemon: &NixDaemon) -> DaemonAddress {
    let env = NixEnv {
        nix_remote: Some("daemon".into()),
        socket_path: Some(daemon.socket.display().to_string()),
        store_dir: Some(daemon.store_dir.display().to_string()),
        ..NixEnv::default()
    };
    DaemonAddress::find(&env).unwrap().unwrap()
}

fn connect(daemon: &NixDaemon) -> DaemonClient {
    DaemonClient::connect(&address(daemon)).unwrap()
}

/// Every log event of `client` from now on.
fn record(client: &mut DaemonClient) -> Arc<Mutex<Vec<LogEvent>>> {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    client.set_log_sink(Box::new(move |e: LogEvent| sink.lock().unwrap().push(e)));
    events
}

/// Instantiate `expr` with real Nix into a scratch store with the daemon's store directory
/// (files elsewhere), so the daemon's store does not have it yet: the `.drv` path Nix
/// computes and the derivation.
fn instantiate(daemon: &NixDaemon, expr: &str) -> (StorePath, Derivation) {
    let w = daemon.dir();
    let store = format!(
        "local?store={}&real={}&state={}&log={}",
        daemon.store_dir.display(),
        w.join("scratch").display(),
        w.join("scratch-state").display(),
        w.join("scratch-log").display()
    );
    let mut cmd = daemon.nix("nix-instantiate");
    cmd.env_remove("NIX_REMOTE")
        .args(["--store", &store, "-E", expr]);
    let out = cmd.output().unwrap();
    common::assert_success(&out, "nix-instantiate");
    let printed = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let store_dir = StoreDir::new(&daemon.store_dir).unwrap();
    let drv_path = store_dir.parse(&printed).unwrap();
    let text = fs_err::read(w.join("scratch").join(drv_path.base_name())).unwrap();
    let name = drv_path.name().strip_suffix(".drv").unwrap().to_owned();
    let drv = Derivation::parse(&store_dir, &text, &name).unwrap();
    (drv_path, drv)
}

/// Add `drv` through the client as Nix's `writeDerivation` does; returns its path.
fn add_drv(client: &mut DaemonClient, drv: &Derivation) -> StorePath {
    let text = drv.to_aterm(client.store_dir());
    client
        .add_text_to_store(&format!("{}.drv", drv.name), &text, &drv.references())
        .unwrap()
}

fn out_path(client: &DaemonClient, drv: &Derivation) -> StorePath {
    drv.output_paths(client.store_dir()).unwrap()["out"]
        .clone()
        .unwrap()
}

fn built(drv: StorePath) -> DerivedPath {
    DerivedPath::Built {
        drv,
        outputs: vec!["out".into()],
    }
}

#[test]
fn handshake_negotiates_nix_2_8s_protocol() {
    if !have_daemon() {
        return;
    }
    let daemon = NixDaemon::start("");
    let client = connect(&daemon);
    assert_eq!(client.protocol_version(), (1, 34));
    let version = daemon.run("nix-daemon", &["--version"]);
    let reported = client
        .nix_version()
        .expect("a 1.34 daemon sends its version");
    assert!(version.ends_with(reported), "{version} vs {reported}");
}

#[test]
fn text_and_sources_get_the_paths_nix_computes() {
    if !have_daemon() {
        return;
    }
    let daemon = NixDaemon::start("");
    let mut client = connect(&daemon);

    // Text: `builtins.toFile` through the same daemon gives the same path.
    let path = client
        .add_text_to_store("greeting.txt", b"hello daemon\n", &BTreeSet::new())
        .unwrap();
    let nix_path = daemon.run(
        "nix-instantiate",
        &[
            "--eval",
            "-E",
            r#"builtins.toFile "greeting.txt" "hello daemon\n""#,
        ],
    );
    assert_eq!(format!("\"{}\"", client.store_dir().print(&path)), nix_path);
    assert!(client.is_valid_path(&path).unwrap());
    let info = client.query_path_info(&path).unwrap().unwrap();
    assert_eq!(
        info.ca.unwrap().to_string(),
        format!(
            "text:{}",
            envy_store::Hash::sha256(b"hello daemon\n").to_prefixed_nix32()
        )
    );
    assert_eq!(
        fs_err::read_to_string(daemon.store_dir.join(path.base_name())).unwrap(),
        "hello daemon\n"
    );

    // A source tree: `nix-store --add` gives the same path, and envy's NAR hash is Nix's.
    let src = daemon.dir().join("src");
    fs_err::create_dir_all(src.join("sub")).unwrap();
    fs_err::write(src.join("a.txt"), "a\n").unwrap();
    fs_err::write(src.join("sub/b.sh"), "#!/bin/sh\n").unwrap();
    std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
    let info = client
        .add_path(
            "src",
            &src,
            FileIngestionMethod::Recursive,
            HashAlgo::Sha256,
        )
        .unwrap();
    let nix_added = daemon.run("nix-store", &["--add", src.to_str().unwrap()]);
    assert_eq!(client.store_dir().print(&info.path), nix_added);
    let (nar_hash, nar_size) = envy_store::nar::nar_hash_path(&src).unwrap();
    assert_eq!((info.nar_hash, info.nar_size), (nar_hash, nar_size));
    let queried = client.query_path_info(&info.path).unwrap().unwrap();
    assert_eq!(queried.nar_hash, nar_hash);

    // A flat file (`builtins.path { recursive = false; }`).
    let flat = client
        .add_path(
            "a.txt",
            &src.join("a.txt"),
            FileIngestionMethod::Flat,
            HashAlgo::Sha256,
        )
        .unwrap();
    let nix_flat = daemon.run(
        "nix-store",
        &["--add-fixed", "sha256", src.join("a.txt").to_str().unwrap()],
    );
    assert_eq!(client.store_dir().print(&flat.path), nix_flat);

    // Paths never added are not valid, and have no info.
    let missing = StorePath::from_base_name("00000000000000000000000000000000-missing").unwrap();
    assert!(!client.is_valid_path(&missing).unwrap());
    assert_eq!(client.query_path_info(&missing).unwrap(), None);
    let both: BTreeSet<_> = [missing, path.clone()].into_iter().collect();
    assert_eq!(
        client.query_valid_paths(&both, false).unwrap(),
        [path].into_iter().collect()
    );
}

#[test]
fn derivations_are_built_by_the_daemon_and_failures_say_why() {
    if !have_daemon() {
        return;
    }
    let daemon = NixDaemon::start("");
    let (nix_drv_path, drv) = instantiate(
        &daemon,
        r#"derivation { name = "hello"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo building hello; echo hi > $out" ]; }"#,
    );
    let mut client = connect(&daemon);
    let drv_path = add_drv(&mut client, &drv);
    assert_eq!(drv_path, nix_drv_path);
    let out = out_path(&client, &drv);
    assert!(!client.is_valid_path(&out).unwrap());
    let missing = client.query_missing(&[built(drv_path.clone())]).unwrap();
    assert_eq!(missing.will_build, [drv_path.clone()].into_iter().collect());

    let events = record(&mut client);
    client.build_paths(&[built(drv_path.clone())]).unwrap();
    assert!(client.is_valid_path(&out).unwrap());
    assert_eq!(
        fs_err::read_to_string(daemon.store_dir.join(out.base_name())).unwrap(),
        "hi\n"
    );
    let events = events.lock().unwrap();
    assert!(
        events.iter().any(|e| matches!(
            e,
            LogEvent::Start {
                kind: ActivityKind::Build,
                ..
            }
        )),
        "{events:?}"
    );
    let lines = envy_store::daemon::CollectLog {
        events: events.clone(),
    }
    .lines();
    assert!(lines.iter().any(|l| l == "building hello"), "{lines:?}");
    drop(events);

    // A failing builder: the daemon's message reaches the caller, and the connection lives on.
    let (_, failing) = instantiate(
        &daemon,
        r#"derivation { name = "broken"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "exit 3" ]; }"#,
    );
    let failing_path = add_drv(&mut client, &failing);
    let err = client
        .build_paths(&[built(failing_path.clone())])
        .unwrap_err();
    let message = err.daemon_message().unwrap_or_else(|| panic!("{err:?}"));
    assert!(
        message.contains("builder for")
            && message.contains(&client.store_dir().print(&failing_path))
            && message.contains("exit code 3"),
        "{message}"
    );
    assert!(client.is_valid_path(&drv_path).unwrap());
}

#[test]
fn outputs_are_substituted_from_the_daemons_binary_cache() {
    if !have_daemon() {
        return;
    }
    let daemon = NixDaemon::start_with(|w| {
        let key = Command::new("nix")
            .args(["--extra-experimental-features", "nix-command"])
            .args(["key", "generate-secret", "--key-name", "envy-test-1"])
            .env("NIX_CONF_DIR", w.join("conf"))
            .output()
            .unwrap();
        common::assert_success(&key, "nix key generate-secret");
        fs_err::write(w.join("sk"), &key.stdout).unwrap();
        let public = Command::new("nix")
            .args(["--extra-experimental-features", "nix-command"])
            .args(["key", "convert-secret-to-public"])
            .stdin(fs_err::File::open(w.join("sk")).unwrap().into_parts().0)
            .output()
            .unwrap();
        common::assert_success(&public, "nix key convert-secret-to-public");
        format!(
            "substituters = file://{}/cache\ntrusted-public-keys = {}\n",
            w.display(),
            String::from_utf8(public.stdout).unwrap().trim()
        )
    });
    let w = daemon.dir().to_owned();
    // Its builder works only while `allow` exists: once the cache has the output, it fails.
    let flag = w.join("allow");
    fs_err::write(&flag, "").unwrap();
    let expr = format!(
        r#"derivation {{ name = "cached"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "test -e {} && echo from-cache > $out" ]; }}"#,
        flag.display()
    );
    let (_, drv) = instantiate(&daemon, &expr);
    let drv_path;
    let out;
    {
        let mut client = connect(&daemon);
        drv_path = add_drv(&mut client, &drv);
        out = out_path(&client, &drv);
        client.build_paths(&[built(drv_path.clone())]).unwrap();
    }
    let out_printed = format!("{}/{}", daemon.store_dir.display(), out.base_name());
    daemon.run(
        "nix",
        &[
            "copy",
            "--to",
            &format!(
                "file://{}/cache?secret-key={}/sk&store={}",
                w.display(),
                w.display(),
                daemon.store_dir.display()
            ),
            &out_printed,
        ],
    );
    daemon.run("nix-store", &["--delete", &out_printed]);
    fs_err::remove_file(&flag).unwrap();

    let mut client = connect(&daemon);
    assert!(!client.is_valid_path(&out).unwrap());
    let missing = client.query_missing(&[built(drv_path.clone())]).unwrap();
    assert_eq!(missing.will_substitute, [out.clone()].into_iter().collect());
    assert!(missing.will_build.is_empty(), "{missing:?}");
    let events = record(&mut client);
    client.build_paths(&[built(drv_path)]).unwrap();
    assert_eq!(
        fs_err::read_to_string(daemon.store_dir.join(out.base_name())).unwrap(),
        "from-cache\n"
    );
    let events = events.lock().unwrap();
    assert!(
        events.iter().any(|e| matches!(
            e,
            LogEvent::Start {
                kind: ActivityKind::Substitute,
                ..
            }
        )),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| matches!(
            e,
            LogEvent::Start {
                kind: ActivityKind::Build,
                ..
            }
        )),
        "{events:?}"
    );
}

#[test]
fn indirect_roots_keep_paths_through_nixs_gc() {
    if !have_daemon() {
        return;
    }
    let daemon = NixDaemon::start("");
    let mut client = connect(&daemon);
    let kept = client
        .add_text_to_store("kept", b"kept", &BTreeSet::new())
        .unwrap();
    let dropped = client
        .add_text_to_store("dropped", b"dropped", &BTreeSet::new())
        .unwrap();
    let link = daemon.dir().join("roots/kept-env");
    fs_err::create_dir_all(link.parent().unwrap()).unwrap();
    client.add_perm_root(&kept, &link).unwrap();
    drop(client);
    daemon.run("nix-store", &["--gc"]);
    let mut client = connect(&daemon);
    assert!(client.is_valid_path(&kept).unwrap());
    assert!(!client.is_valid_path(&dropped).unwrap());

    // A temporary root lasts as long as the connection that made it.
    let temp = client
        .add_text_to_store("temp", b"temp", &BTreeSet::new())
        .unwrap();
    client.add_temp_root(&temp).unwrap();
    daemon.run("nix-store", &["--gc"]);
    assert!(client.is_valid_path(&temp).unwrap());
    drop(client);
    fs_err::remove_file(&link).unwrap();
    daemon.run("nix-store", &["--gc"]);
    let mut client = connect(&daemon);
    assert!(!client.is_valid_path(&temp).unwrap());
    assert!(!client.is_valid_path(&kept).unwrap());
}

#[test]
fn connecting_to_no_daemon_names_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("no-such-socket");
    let address = DaemonAddress {
        socket: socket.clone(),
        store_dir: StoreDir::nix_default(),
        origin: "test".into(),
    };
    let err = DaemonClient::connect(&address).unwrap_err();
    assert!(matches!(err, DaemonError::Connect { .. }), "{err:?}");
    assert!(err.to_string().contains(&socket.display().to_string()));
}

/// What `untrusted_client_does_what_envy_needs` runs as `nobody`.
const CHILD_DIR: &str = "ENVY_TEST_DAEMON_DIR";

#[test]
fn untrusted_client_does_what_envy_needs() {
    if !have_daemon() || !common::have_tool("setpriv") {
        return;
    }
    let daemon = NixDaemon::start("trusted-users = root\nallowed-users = *\n");
    let w = daemon.dir();
    let (drv_path, drv) = instantiate(
        &daemon,
        r#"derivation { name = "untrusted"; system = builtins.currentSystem; builder = "/bin/sh"; args = [ "-c" "echo built-for-nobody > $out" ]; }"#,
    );
    fs_err::write(w.join("drv-name"), &drv.name).unwrap();
    fs_err::write(
        w.join("drv"),
        drv.to_aterm(&StoreDir::new(&daemon.store_dir).unwrap()),
    )
    .unwrap();
    fs_err::create_dir_all(w.join("nobody")).unwrap();
    Command::new("chown")
        .args(["65534:65534", w.join("nobody").to_str().unwrap()])
        .status()
        .unwrap();
    // The test binary itself, where `nobody` can run it.
    let exe = w.join("test-bin");
    fs_err::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .args([
            "--exact",
            "untrusted_client_child",
            "--ignored",
            "--nocapture",
        ])
        .env(CHILD_DIR, w)
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    common::assert_success(&out, "the client run as nobody");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("1 passed"), "{stdout}");
    // What nobody did is in the daemon's store, as root sees it.
    let store_dir = StoreDir::new(&daemon.store_dir).unwrap();
    let out_path = drv.output_paths(&store_dir).unwrap()["out"]
        .clone()
        .unwrap();
    assert_eq!(
        fs_err::read_to_string(daemon.store_dir.join(out_path.base_name())).unwrap(),
        "built-for-nobody\n"
    );
    assert!(daemon.store_dir.join(drv_path.base_name()).exists());
    assert!(
        fs_err::read_link(w.join("nobody/root"))
            .unwrap()
            .ends_with(out_path.base_name())
    );
    daemon.run("nix-store", &["--gc"]);
    assert!(daemon.store_dir.join(out_path.base_name()).exists());
}

/// Run by `untrusted_client_does_what_envy_needs` as `nobody`, never on its own.
#[test]
#[ignore = "run as nobody by untrusted_client_does_what_envy_needs"]
fn untrusted_client_child() {
    let w = std::path::PathBuf::from(std::env::var_os(CHILD_DIR).expect("run by the parent test"));
    assert_ne!(current_uid(), 0, "must run as another user");
    let env = NixEnv {
        nix_remote: Some(format!("unix://{}", w.join("sock").display())),
        store_dir: Some(w.join("store").display().to_string()),
        ..NixEnv::default()
    };
    let address = DaemonAddress::find(&env).unwrap().unwrap();
    let mut client = DaemonClient::handshake(&address).unwrap();
    let events = record(&mut client);
    // A restricted setting from a non-trusted user: the daemon ignores it and says so (Nix
    // 2.8 says it at debug level; later versions warn).
    client
        .set_options(&ClientOptions {
            overrides: vec![("sandbox".into(), "true".into())],
            verbosity: envy_store::daemon::log::Verbosity::Debug,
            ..ClientOptions::default()
        })
        .unwrap();
    let lines = envy_store::daemon::CollectLog {
        events: events.lock().unwrap().clone(),
    }
    .lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("'sandbox'") && l.contains("not a trusted user")),
        "{lines:?}"
    );
    let text = fs_err::read(w.join("drv")).unwrap();
    let name = fs_err::read_to_string(w.join("drv-name")).unwrap();
    let store_dir = client.store_dir().clone();
    let drv = Derivation::parse(&store_dir, &text, &name).unwrap();
    let drv_path = add_drv(&mut client, &drv);
    client.build_paths(&[built(drv_path)]).unwrap();
    let out = out_path(&client, &drv);
    assert!(client.is_valid_path(&out).unwrap());
    client.add_perm_root(&out, &w.join("nobody/root")).unwrap();
}

fn current_uid() -> u32 {
    // Avoid a libc dependency in the test for one call: /proc says who we are.
    let status = fs_err::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|u| u.parse().ok())
        .unwrap()
}
