//! Substitution end to end, against real Nix: Nix builds a chain in a store at envy's store
//! dir and `nix copy`s it into a signed `file://` binary cache; that Nix store is then
//! deleted, and `envy build` of the same `.drv` with the cache in `ENVY_SUBSTITUTERS` and
//! Nix's public key in `ENVY_TRUSTED_PUBLIC_KEYS` fetches both outputs and builds nothing.
//! Without the key, it builds.

mod common;

use common::build::{BuildEnv, assert_success};

const EXPR: &str = r#"
rec {
  dep = derivation { name = "dep"; system = "x86_64-linux"; builder = "/bin/sh";
    args = [ "-c" "echo dep > $out" ]; };
  top = derivation { name = "top"; system = "x86_64-linux"; builder = "/bin/sh"; inherit dep;
    args = [ "-c" "echo $dep > $out" ]; };
}
"#;

#[test]
fn outputs_built_by_nix_come_from_its_binary_cache() {
    if !common::have_tool("nix") || !common::have_tool("nix-build") {
        return;
    }
    let env = BuildEnv::new();
    // This Nix store lives at envy's store dir itself, until envy takes over.
    let store = common::nix::local_store(&env.store_dir(), &env.path("nix"));
    let nix = |program: &str, args: &[&str], stdin: Option<&str>| {
        let mut cmd = env.nix_command_at(program, &store);
        cmd.args(args);
        if let Some(file) = stdin {
            cmd.stdin(fs_err::File::open(file).unwrap().into_parts().0);
        }
        let out = cmd.output().unwrap();
        assert_success(&out, &format!("{program} {args:?}"));
        String::from_utf8(out.stdout).unwrap()
    };
    let file = env.path("work/default.nix");
    fs_err::write(&file, EXPR).unwrap();
    let file = file.to_str().unwrap();
    let drvs = nix("nix-instantiate", &[file, "-A", "top", "-A", "dep"], None);
    let top_out = nix("nix-build", &[file, "-A", "top", "--no-out-link"], None)
        .trim()
        .to_string();
    let top_hash = nix("nix-store", &["-q", "--hash", &top_out], None);
    let sk = env.path("cache.sk");
    let secret = nix(
        "nix",
        &["key", "generate-secret", "--key-name", "test-cache-1"],
        None,
    );
    fs_err::write(&sk, secret).unwrap();
    let public = nix(
        "nix",
        &["key", "convert-secret-to-public"],
        Some(sk.to_str().unwrap()),
    );
    let cache = env.path("cache");
    let to = format!(
        "file://{}?secret-key={}&store={}",
        cache.display(),
        sk.display(),
        env.store_dir().display()
    );
    nix("nix", &["copy", "--to", &to, &top_out], None);
    // Keep the `.drv` files, then hand the store dir over to envy.
    for drv in drvs.lines() {
        let name = std::path::Path::new(drv).file_name().unwrap();
        fs_err::copy(drv, env.path("work").join(name)).unwrap();
    }
    let drv = env.path("work").join(
        std::path::Path::new(drvs.lines().next().unwrap())
            .file_name()
            .unwrap(),
    );
    for dir in ["store", "nix/state"] {
        envy_store::local::delete_path(&env.path(dir)).unwrap();
    }

    let envy = |key: &str| {
        let out = env
            .envy()
            .env("ENVY_SUBSTITUTERS", format!("file://{}", cache.display()))
            .env("ENVY_TRUSTED_PUBLIC_KEYS", key)
            .args(["build", "--no-out-link"])
            .arg(&drv)
            .output()
            .unwrap();
        assert_success(&out, "envy build");
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (stdout, stderr) = envy(public.trim());
    assert_eq!(stdout.trim(), top_out);
    assert_eq!(
        stderr.matches("copying path '").count(),
        2,
        "both outputs fetched:\n{stderr}"
    );
    assert!(!stderr.contains("building '"), "{stderr}");
    assert_eq!(
        env.envy_nar_hash(&top_out),
        top_hash.trim(),
        "same contents as Nix's"
    );
    env.verify();

    // A fresh store, and no trusted key: the cache is ignored (with a warning), envy builds.
    for dir in ["store", "state"] {
        envy_store::local::delete_path(&env.path(dir)).unwrap();
    }
    let (stdout, stderr) = envy("");
    assert_eq!(stdout.trim(), top_out);
    assert!(stderr.contains("ignoring substitute for"), "{stderr}");
    assert_eq!(stderr.matches("building '").count(), 2, "{stderr}");
}
