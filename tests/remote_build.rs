//! `envy build` on Nix build machines over `ssh://`: a real sshd on 127.0.0.1 whose forced
//! command runs real Nix 2.8's `nix-store --serve --write` on its own store
//! (tests/common/sshd.rs). The tests shared with `ssh-ng://` (tests/remote_ssh_ng.rs) are in
//! tests/common/remote.rs: a chain built with `-j 0`, an `aarch64-linux` derivation and a
//! machine that is down, a remote failure's log. Here also: with `builders-use-substitutes`
//! the machine substitutes an input from its own binary cache instead of envy copying it
//! (both protocols).

mod common;

use common::build::{BuildEnv, assert_success};
use common::remote::{self, Protocol};
use common::sshd::BuildMachine;

#[test]
fn chain_builds_on_the_machine_with_j0_over_ssh() {
    remote::chain_builds_on_the_machine_with_j0(Protocol::Ssh);
}

#[test]
fn aarch64_goes_to_its_machine_and_a_down_machine_is_skipped_over_ssh() {
    remote::aarch64_goes_to_its_machine_and_a_down_machine_is_skipped(Protocol::Ssh);
}

#[test]
fn a_remote_failure_shows_the_remote_log_over_ssh() {
    remote::a_remote_failure_shows_the_remote_log(Protocol::Ssh);
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
    let out = machine
        .nix("nix", store_dir)
        .args(["path-info", "--sigs", path])
        .output()
        .unwrap();
    assert_success(&out, "nix path-info --sigs on the machine");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn builders_use_substitutes_lets_the_machine_substitute_inputs() {
    let Some((env, machine)) = remote::setup(Protocol::Ssh) else {
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
        let mut envy = machine.envy(&env);
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
