//! `envy build` on Nix build machines: a real sshd on 127.0.0.1 whose forced command runs
//! real Nix 2.8's `nix-store --serve --write` on its own store (tests/common/sshd.rs).
//! With `-j 0` a 3-derivation chain builds remotely (the remote store has it, envy's store
//! gets it, `envy store verify` passes); an `aarch64-linux` derivation goes to the machine
//! declaring that system; a machine that is down is skipped with one warning; a remote
//! failure's log reaches the user; with `builders-use-substitutes` the machine substitutes
//! an input from its own binary cache instead of envy copying it (both protocols).

mod common;

use common::build::{BuildEnv, assert_success};
use common::sshd::{BuildMachine, have_sshd};

const EXPR: &str = r#"
let
  sh = system: name: script: derivation {
    inherit name system; builder = "/bin/sh";
    args = [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
  };
in rec {
  a = sh "x86_64-linux" "remote-a" "echo a > $out";
  b = sh "x86_64-linux" "remote-b" "echo building b remotely; cat ${a} > $out; echo b >> $out";
  c = sh "x86_64-linux" "remote-c" "cat ${b} > $out; echo ${b} >> $out";
  arm = sh "aarch64-linux" "remote-arm" "echo arm; cat ${a} > $out";
  bad = sh "x86_64-linux" "remote-bad" "echo the remote says why; exit 7";
}
"#;

fn setup() -> Option<(BuildEnv, BuildMachine)> {
    if !common::have_tool("nix-store") || !have_sshd() {
        return None;
    }
    let env = BuildEnv::new();
    fs_err::write(env.path("work/default.nix"), EXPR).unwrap();
    let machine = BuildMachine::start(&env.path("machine"), &env.store_dir());
    Some((env, machine))
}

fn envy_build(
    env: &BuildEnv,
    machine: &BuildMachine,
    attr: &str,
    args: &[&str],
) -> std::process::Output {
    env.envy()
        .env("NIX_SSHOPTS", machine.sshopts())
        .args(["build", "--no-out-link", "default.nix", "-A", attr])
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn chain_builds_on_the_machine_with_j0() {
    let Some((env, machine)) = setup() else {
        return;
    };
    let out = envy_build(
        &env,
        &machine,
        "c",
        &["-j", "0", "--builders", "ssh://farm x86_64-linux - 2 1"],
    );
    assert_success(&out, "envy build -j 0 on the build machine");
    let c = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let sd = env.store_dir();
    assert!(machine.has(&sd, &c), "the remote store has {c}");
    let store = env.store();
    let info = store.path_info(&common::build::store_path(&c)).unwrap();
    let b = info.references.iter().next().expect("c refers to b");
    let b = env.store_dir().join(b.to_string());
    assert!(machine.has(&sd, &b.to_string_lossy()));
    let text = fs_err::read_to_string(&c).unwrap();
    assert_eq!(text, format!("a\nb\n{}\n", b.display()));
    // Nothing was built locally: each derivation ran on the machine.
    let commands = fs_err::read_to_string(machine.dir.join("commands")).unwrap();
    assert!(commands.contains("nix-store --serve --write"), "{commands}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    env.verify();

    // `-j 0` without build machines: nowhere to build, said clearly.
    fs_err::write(
        env.path("work/default.nix"),
        EXPR.replace("echo a > $out", "echo a2 > $out"),
    )
    .unwrap();
    let out = envy_build(&env, &machine, "a", &["-j", "0"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("local builds are off"), "{stderr}");
    assert!(stderr.contains("hint:"), "{stderr}");
}

#[test]
fn aarch64_goes_to_its_machine_and_a_down_machine_is_skipped() {
    let Some((env, machine)) = setup() else {
        return;
    };
    // `down` (closed port) is the fastest x86_64 machine: tried first, skipped with one
    // warning, and `a` builds locally; `arm` can only go to `farm-arm`.
    let out = envy_build(
        &env,
        &machine,
        "arm",
        &[
            "-j",
            "1",
            "--builders",
            "ssh://down x86_64-linux - 1 2; ssh://farm-arm aarch64-linux",
        ],
    );
    assert_success(&out, "envy build of an aarch64-linux derivation");
    let arm = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ssh://down"))
        .collect();
    assert_eq!(
        warnings.len(),
        1,
        "one warning line for the down machine: {stderr}"
    );
    assert!(warnings[0].contains("skipping it"), "{stderr}");
    let sd = env.store_dir();
    assert!(
        machine.has(&sd, &arm),
        "built on the machine declaring aarch64-linux"
    );
    assert_eq!(fs_err::read_to_string(&arm).unwrap(), "a\n");
    env.verify();

    // Without a machine declaring it, an aarch64-linux derivation cannot build here.
    fs_err::write(
        env.path("work/default.nix"),
        EXPR.replace("echo arm;", "echo arm2;"),
    )
    .unwrap();
    let out = envy_build(
        &env,
        &machine,
        "arm",
        &["--builders", "ssh://farm x86_64-linux"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no build machine declares `aarch64-linux`"),
        "{stderr}"
    );
}

#[test]
fn a_remote_failure_shows_the_remote_log() {
    let Some((env, machine)) = setup() else {
        return;
    };
    let out = envy_build(
        &env,
        &machine,
        "bad",
        &["-j", "0", "--builders", "ssh://farm"],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("failed on `ssh://farm`"), "{stderr}");
    assert!(stderr.contains("the remote says why"), "{stderr}");
}

/// A `file://` cache, signed by `test-cache-1`, holding the sources `names` (files under
/// `work/`) as Nix adds them, for envy's store dir. Returns the cache's URL and public key.
fn cache_with_sources(env: &BuildEnv, names: &[&str]) -> (String, String) {
    let run = |mut cmd: std::process::Command, what: &str| {
        let out = cmd.output().unwrap();
        assert_success(&out, what);
        String::from_utf8(out.stdout).unwrap()
    };
    let sk = env.path("cache.sk");
    let mut keygen = std::process::Command::new("nix");
    keygen.env("NIX_CONF_DIR", env.path("nix/conf")).args([
        "key",
        "generate-secret",
        "--key-name",
        "test-cache-1",
    ]);
    fs_err::write(&sk, run(keygen, "nix key generate-secret")).unwrap();
    let mut convert = std::process::Command::new("nix");
    convert
        .env("NIX_CONF_DIR", env.path("nix/conf"))
        .args(["key", "convert-secret-to-public"])
        .stdin(fs_err::File::open(&sk).unwrap().into_parts().0);
    let pk = run(convert, "nix key convert-secret-to-public")
        .trim()
        .to_string();
    let cache = env.path("cache");
    let url = format!("file://{}", cache.display());
    for name in names {
        let mut add = env.nix_command_at("nix-store", &env.nix_store_uri());
        add.arg("--add").arg(env.path(&format!("work/{name}")));
        let path = run(add, "nix-store --add").trim().to_string();
        let mut copy = env.nix_command_at("nix", &env.nix_store_uri());
        copy.args([
            "copy",
            "--to",
            &format!(
                "{url}?secret-key={}&store={}",
                sk.display(),
                env.store_dir().display()
            ),
            &path,
        ]);
        run(copy, "nix copy --to file://");
    }
    (url, pk)
}

/// The path in envy's store (dir `sd`) whose name is `name`.
fn in_store(sd: &std::path::Path, name: &str) -> String {
    fs_err::read_dir(sd)
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().into_owned())
        .find(|p| p.ends_with(&format!("-{name}")))
        .unwrap_or_else(|| panic!("envy's store has `{name}`"))
}

/// The signatures the machine's store records for `path`.
fn remote_signatures(machine: &BuildMachine, store_dir: &std::path::Path, path: &str) -> String {
    let out = std::process::Command::new("nix")
        .env("NIX_CONF_DIR", machine.dir.join("nixconf"))
        .env("HOME", &machine.dir)
        .args([
            "--store",
            &machine.store_uri(store_dir),
            "path-info",
            "--sigs",
            path,
        ])
        .output()
        .unwrap();
    assert_success(&out, "nix path-info --sigs on the machine");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn builders_use_substitutes_lets_the_machine_substitute_inputs() {
    let Some((env, machine)) = setup() else {
        return;
    };
    for (name, text) in [
        ("in-serve.txt", "for ssh\n"),
        ("in-ng.txt", "for ssh-ng\n"),
        ("in-local.txt", "only here\n"),
    ] {
        fs_err::write(env.path(&format!("work/{name}")), text).unwrap();
    }
    fs_err::write(
        env.path("work/default.nix"),
        r#"
let
  sh = name: script: derivation {
    inherit name; system = "x86_64-linux"; builder = "/bin/sh";
    args = [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
  };
in {
  serve = sh "uses-serve" "cat ${./in-serve.txt} ${./in-local.txt} > $out";
  ng = sh "uses-ng" "cat ${./in-ng.txt} > $out";
}
"#,
    )
    .unwrap();
    let (url, pk) = cache_with_sources(&env, &["in-serve.txt", "in-ng.txt"]);
    // The machine substitutes from the cache (a store of envy's store dir, not Nix's
    // default); envy's own store has no substituters.
    let conf = machine.dir.join("nixconf/nix.conf");
    let mut text = fs_err::read_to_string(&conf).unwrap();
    text.push_str(&format!(
        "substituters = {url}?store={}\ntrusted-public-keys = {pk}\n",
        env.store_dir().display()
    ));
    fs_err::write(&conf, text).unwrap();
    let sd = env.store_dir();
    // `ssh://` with the environment variable, `ssh-ng://` with the setting in config.toml.
    for (attr, machine_uri, input) in [
        ("serve", "ssh://farm", "in-serve.txt"),
        ("ng", "ssh-ng://farm", "in-ng.txt"),
    ] {
        let mut envy = env.envy();
        if attr == "serve" {
            envy.env("ENVY_BUILDERS_USE_SUBSTITUTES", "1");
        } else {
            fs_err::create_dir_all(env.path("config/envy")).unwrap();
            fs_err::write(
                env.path("config/envy/config.toml"),
                "builders-use-substitutes = true\n",
            )
            .unwrap();
        }
        let out = envy
            .env("NIX_SSHOPTS", machine.sshopts())
            .args(["build", "--no-out-link", "default.nix", "-A", attr])
            .args(["-j", "0", "--builders", machine_uri])
            .output()
            .unwrap();
        assert_success(&out, &format!("envy build over {machine_uri}"));
        let out_path = String::from_utf8_lossy(&out.stdout).trim().to_string();
        // envy has the source (evaluation added it), but the machine took it from the
        // cache: it carries the cache's signature, which envy's copy does not have.
        let src = in_store(&sd, input);
        let store = env.store();
        assert!(
            store
                .path_info(&common::build::store_path(&src))
                .unwrap()
                .signatures
                .is_empty()
        );
        let sigs = remote_signatures(&machine, &sd, &src);
        assert!(
            sigs.contains("test-cache-1:"),
            "{input} was substituted on the machine over {machine_uri}: {sigs}\nenvy's log:\n{}",
            String::from_utf8_lossy(&env.envy().args(["log", &out_path]).output().unwrap().stdout),
        );
    }
    // What the cache lacks is still copied from here (no signature there).
    let local = in_store(&sd, "in-local.txt");
    let sigs = remote_signatures(&machine, &sd, &local);
    assert!(!sigs.contains("test-cache-1:"), "{sigs}");
    env.verify();
}
