//! The serve-protocol client (envy_store::serve) against real Nix 2.8's `nix-store --serve
//! --write`, run locally through a pipe (no ssh) on a private store with envy's store dir:
//! handshake, copying a closure there, building a derivation there with its log on stderr,
//! and copying the outputs back into envy's store, checked.

mod common;

use std::collections::BTreeSet;

use common::build::BuildEnv;
use envy_store::serve::{BuildSettings, ServeConnection};
use envy_store::{Derivation, StoreDir};

const EXPR: &str = r#"
let
  sh = name: script: derivation {
    inherit name; system = "x86_64-linux"; builder = "/bin/sh";
    args = [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
  };
in rec {
  a = sh "serve-a" "echo hello from a > $out";
  b = sh "serve-b" "echo building b on the remote; cat ${a} > $out; echo ${a} >> $out";
  bad = sh "serve-bad" "echo the remote log line; exit 3";
}
"#;

#[test]
fn serve_client_copies_builds_and_copies_back() {
    if !common::have_tool("nix-store") {
        return;
    }
    let env = BuildEnv::new();
    let drv_a = env.instantiate(EXPR, "a");
    let drv_b = env.instantiate(EXPR, "b");
    let drv_bad = env.instantiate(EXPR, "bad");
    // `a` is built locally by envy; `b` only on the remote.
    let a_out = env.envy_build(&drv_a, &[]).remove(0);
    let store = env.store();
    let store_dir = StoreDir::new(env.store_dir()).unwrap();
    let a_path = store_dir.parse(&a_out).unwrap();

    let remote_uri = format!(
        "local?store={}&real={}&state={}",
        env.store_dir().display(),
        env.path("remote/real").display(),
        env.path("remote/state").display()
    );
    let mut cmd = env.nix_command_at("nix-store", &remote_uri);
    cmd.args(["--serve", "--write"]);
    let mut conn = ServeConnection::open(cmd, store_dir.clone()).unwrap();
    assert_eq!(
        conn.remote_version(),
        0x207,
        "Nix 2.8 speaks serve protocol 2.7"
    );

    let wanted = BTreeSet::from([a_path.clone()]);
    assert!(conn.query_valid_paths(&wanted, false).unwrap().is_empty());
    assert_eq!(conn.copy_closure_to(&store, &wanted, false).unwrap(), 1);
    assert_eq!(conn.query_valid_paths(&wanted, false).unwrap(), wanted);
    assert_eq!(
        conn.copy_closure_to(&store, &wanted, false).unwrap(),
        0,
        "nothing copied twice"
    );
    let remote_info = conn.query_path_infos(&wanted).unwrap().remove(0);
    let local_info = store.path_info(&a_path).unwrap();
    assert_eq!(remote_info.nar_hash, local_info.nar_hash);
    assert_eq!(remote_info.nar_size, local_info.nar_size);

    let read = |drv: &std::path::Path| {
        let name = drv.file_name().unwrap().to_str().unwrap();
        let name = name.split_once('-').unwrap().1.trim_end_matches(".drv");
        let text = fs_err::read_to_string(drv).unwrap();
        Derivation::parse(&store_dir, text.as_bytes(), name).unwrap()
    };
    let drv_b_path = store_dir
        .parse(
            &env.store_dir()
                .join(drv_b.file_name().unwrap())
                .to_string_lossy(),
        )
        .unwrap();
    let mut b = read(&drv_b);
    b.input_srcs = wanted.clone();
    let _ = conn.take_log();
    let status = conn
        .build_derivation(&drv_b_path, &b, BuildSettings::default())
        .unwrap();
    assert!(status.success(), "{status:?}");
    let log = String::from_utf8_lossy(&conn.take_log()).into_owned();
    let b_out = b.outputs["out"]
        .path(&store_dir, &b.name, "out")
        .unwrap()
        .unwrap();
    let outs = BTreeSet::from([b_out.clone()]);
    let infos = conn.copy_paths_from(&store, &outs).unwrap();
    assert_eq!(infos.len(), 1);
    let info = store.path_info(&b_out).unwrap();
    assert_eq!(info.references, wanted, "b refers to a");
    let text = fs_err::read_to_string(store_dir.full_path(&b_out)).unwrap();
    assert_eq!(text, format!("hello from a\n{a_out}\n"));
    env.verify();
    eprintln!("remote log of b: {log:?}");

    // A failing build: a status that is not a success, and the builder's output on stderr.
    let drv_bad_path = store_dir
        .parse(
            &env.store_dir()
                .join(drv_bad.file_name().unwrap())
                .to_string_lossy(),
        )
        .unwrap();
    let bad = read(&drv_bad);
    let status = conn
        .build_derivation(&drv_bad_path, &bad, BuildSettings::default())
        .unwrap();
    assert!(!status.success());
    assert!(status.error.contains("exit code 3"), "{status:?}");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let log = String::from_utf8_lossy(&conn.take_log()).into_owned();
    assert!(
        log.contains("the remote log line") || status.error.contains("the remote log line"),
        "log: {log:?}; status: {status:?}"
    );
}
