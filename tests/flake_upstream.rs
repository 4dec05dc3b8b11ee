//! Real upstream flakes as inputs: flake-utils (with nix-systems) and flake-parts (with
//! nixpkgs.lib), from the git bundles in `../shared/flakes` as published, cloned by the test
//! and used as `git+file` inputs.
//!
//! For a flake-utils project and a flake-parts project: envy's lock file is the one Nix 2.8
//! writes, byte for byte, and Nix accepts envy's as it is; `flake metadata --json`, `flake
//! show --json` and the devShell's `drvPath` (`envy eval --raw`) are Nix's; `--override-input`
//! locks as Nix's does. Then both projects are entered through the hook in bash, with the
//! embedded engine and no `nix` on `PATH`.

mod common;
#[path = "common/core.rs"]
mod corekit;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;

use common::flake::{FlakeWorld, nix_world, path_without_nix};
use corekit::{Sandbox, Session, Sh};
use serde_json::Value;

const BUNDLES: [&str; 4] = [
    "flake-utils",
    "nix-systems-default",
    "flake-parts",
    "nixpkgs.lib",
];

/// Clones of the upstream bundles, made once per test binary under cargo's target tmp dir
/// (`None`, after saying why, when `../shared` is not here).
fn upstream() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| {
        let bundles = common::shared_data("flakes", "upstream flake bundles")?;
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("flake-upstream")
            .join(std::process::id().to_string());
        let _ = fs_err::remove_dir_all(&dir);
        fs_err::create_dir_all(&dir).unwrap();
        for name in BUNDLES {
            let out = std::process::Command::new("git")
                .arg("clone")
                .arg("-q")
                .arg(bundles.join(format!("{name}.bundle")))
                .arg(dir.join(name))
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .env("HOME", &dir)
                .output()
                .expect("run git");
            common::assert_success(&out, &format!("git clone {name}.bundle"));
        }
        Some(dir)
    })
    .as_deref()
}

fn system() -> String {
    corekit::system()
}

/// A project on flake-utils' `eachDefaultSystem`, its `systems` input following ours.
fn utils_flake(up: &Path) -> String {
    format!(
        r#"{{
  description = "flake-utils project";
  inputs.systems.url = "git+file://{up}/nix-systems-default";
  inputs.flake-utils.url = "git+file://{up}/flake-utils";
  inputs.flake-utils.inputs.systems.follows = "systems";
  outputs = {{ self, flake-utils, ... }}:
    flake-utils.lib.eachDefaultSystem (system: {{
      devShells.default = derivation {{
        name = "shell"; inherit system; builder = "/bin/bash"; outputs = [ "out" ];
        PATH = "/usr/bin:/bin"; FOO = "utils-${{system}}";
      }};
      packages.hello = derivation {{
        name = "hello"; inherit system; builder = "/bin/sh"; args = [ "-c" "echo hi > $out" ];
      }};
    }});
}}
"#,
        up = up.display()
    )
}

/// A project on flake-parts' `mkFlake`/`perSystem`, its `nixpkgs-lib` following ours.
fn parts_flake(up: &Path) -> String {
    format!(
        r#"{{
  description = "flake-parts project";
  inputs.nixpkgs-lib.url = "git+file://{up}/nixpkgs.lib";
  inputs.flake-parts.url = "git+file://{up}/flake-parts";
  inputs.flake-parts.inputs.nixpkgs-lib.follows = "nixpkgs-lib";
  outputs = inputs@{{ flake-parts, ... }}:
    flake-parts.lib.mkFlake {{ inherit inputs; }} {{
      systems = [ "x86_64-linux" "aarch64-linux" ];
      perSystem = {{ system, ... }}: {{
        devShells.default = derivation {{
          name = "shell"; inherit system; builder = "/bin/bash"; outputs = [ "out" ];
          PATH = "/usr/bin:/bin"; FOO = "parts-${{system}}";
        }};
        packages.hello = derivation {{
          name = "hello"; inherit system; builder = "/bin/sh"; args = [ "-c" "echo hi > $out" ];
        }};
      }};
    }};
}}
"#,
        up = up.display()
    )
}

fn envy(w: &FlakeWorld, dir: &Path, args: &[&str]) -> Output {
    w.envy(dir, args).output().expect("run envy")
}

fn envy_ok(w: &FlakeWorld, dir: &Path, args: &[&str]) -> Output {
    let out = envy(w, dir, args);
    common::assert_success(&out, &format!("envy {args:?}"));
    out
}

/// envy computing store paths for `/nix/store`, as the Nix it is compared with does (these
/// commands only compute paths: nothing is written there).
fn envy_for_nix_store(w: &FlakeWorld, dir: &Path, args: &[&str]) -> Output {
    let out = w
        .envy(dir, args)
        .env("ENVY_STORE_DIR", "/nix/store")
        .output()
        .expect("run envy");
    common::assert_success(&out, &format!("envy {args:?}"));
    out
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

fn text(p: &Path) -> String {
    fs_err::read_to_string(p).unwrap()
}

/// Everything Nix 2.8 says about the project `flake_nix` must be what envy says.
fn compare_with_nix(w: &FlakeWorld, name: &str, flake_nix: &str) {
    let ours = w.path(&format!("{name}-envy"));
    let theirs = w.path(&format!("{name}-nix"));
    for d in [&ours, &theirs] {
        w.write(d, &[("flake.nix", flake_nix)]);
    }

    // The lock, written by each on its own copy: byte for byte the same.
    envy_ok(w, &ours, &["flake", "lock"]);
    w.nix_ok(&theirs, &["flake", "lock"]);
    assert_eq!(
        text(&ours.join("flake.lock")),
        text(&theirs.join("flake.lock")),
        "{name}: flake.lock"
    );

    // Nix takes envy's lock as it is, and both describe the same flake.
    let here = format!("path:{}", ours.display());
    let nix_meta = w.nix_json(
        &ours,
        &[
            "flake",
            "metadata",
            "--json",
            "--no-update-lock-file",
            &here,
        ],
    );
    let our_meta = json(&envy_for_nix_store(
        w,
        &ours,
        &["flake", "metadata", "--json"],
    ));
    assert_eq!(our_meta, nix_meta, "{name}: flake metadata --json");
    let nix_show = w.nix_json(&ours, &["flake", "show", "--json", &here]);
    let our_show = json(&envy_ok(w, &ours, &["flake", "show", "--json"]));
    assert_eq!(our_show, nix_show, "{name}: flake show --json");

    // The devShell's and the package's derivations: the same store paths (envy computes them
    // for /nix/store without writing anything).
    for attr in [
        format!("devShells.{}.default.drvPath", system()),
        "hello.outPath".to_string(),
        "devShells.aarch64-linux.default.FOO".to_string(),
    ] {
        let installable = format!(".#{attr}");
        let nix = w.nix_ok(&ours, &["eval", "--raw", &format!("{here}#{attr}")]);
        let out = envy_for_nix_store(w, &ours, &["eval", "--raw", &installable]);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&nix.stdout),
            "{name}: {attr}"
        );
    }
}

#[test]
fn flake_utils_and_flake_parts_projects_match_nix() {
    let Some(w) = nix_world() else { return };
    let Some(up) = upstream() else { return };
    compare_with_nix(&w, "utils", &utils_flake(up));
    compare_with_nix(&w, "parts", &parts_flake(up));
}

/// `--override-input` takes an input from elsewhere, as Nix's does: the lock Nix would compute
/// (not written, except by `flake lock`), a warning for an override that matches nothing, and
/// `envy eval` of the overridden flake.
#[test]
fn override_input_locks_as_nix_does() {
    let Some(w) = nix_world() else { return };
    let Some(up) = upstream() else { return };
    // An older flake-utils, three commits back.
    let older = w.path("flake-utils-older");
    w.git(
        w.root(),
        &[
            "clone",
            "-q",
            &up.join("flake-utils").display().to_string(),
            &older.display().to_string(),
        ],
    );
    w.git(&older, &["reset", "-q", "--hard", "HEAD~3"]);
    let over = format!("git+file://{}", older.display());

    let dir = w.path("proj");
    w.write(&dir, &[("flake.nix", &utils_flake(up))]);
    envy_ok(&w, &dir, &["flake", "lock"]);
    let lock = text(&dir.join("flake.lock"));
    let here = format!("path:{}", dir.display());

    let args = ["--override-input", "flake-utils", over.as_str()];
    let ours = envy_ok(
        &w,
        &dir,
        &[&["flake", "metadata", "--json"][..], &args[..]].concat(),
    );
    let nix = w.nix_json(
        &dir,
        &[
            &["flake", "metadata", "--json", here.as_str()][..],
            &args[..],
        ]
        .concat(),
    );
    assert_eq!(json(&ours)["locks"], nix["locks"], "overridden locks");
    assert_ne!(
        json(&ours)["locks"],
        serde_json::from_str::<Value>(&lock).unwrap()
    );
    assert_eq!(
        text(&dir.join("flake.lock")),
        lock,
        "metadata wrote nothing"
    );
    let stderr = String::from_utf8_lossy(&ours.stderr);
    assert!(
        stderr.contains("not writing modified lock file"),
        "{stderr}"
    );

    // Evaluating through the override: the older flake-utils' revision is what `self` sees.
    let rev = w.git(&older, &["rev-parse", "HEAD"]);
    // `inputs-rev` is not an output: the error names every attribute tried.
    let out = envy(
        &w,
        &dir,
        &[&["eval", "--raw", ".#inputs-rev"][..], &args[..]].concat(),
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "does not provide attribute 'packages.{sys}.inputs-rev', 'legacyPackages.{sys}.inputs-rev' or 'inputs-rev'",
            sys = system()
        )),
        "{stderr}"
    );
    w.write(
        &dir,
        &[(
            "flake.nix",
            &utils_flake(up).replace(
                "outputs = { self, flake-utils, ... }:",
                "outputs = { self, flake-utils, ... }: { utilsRev = flake-utils.rev; } //",
            ),
        )],
    );
    let out = envy_ok(
        &w,
        &dir,
        &[&["eval", "--raw", ".#utilsRev"][..], &args[..]].concat(),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), rev);

    // A devShell through the override, with envy's engine and with Nix: it sees the older
    // flake-utils, and the project's lock file stays as it was.
    w.write(
        &dir,
        &[(
            "flake.nix",
            &utils_flake(up).replace(r#"FOO = "utils-${system}";"#, "FOO = flake-utils.rev;"),
        )],
    );
    let lock_before = text(&dir.join("flake.lock"));
    let no_nix = path_without_nix(w.root()).display().to_string();
    // Nix builds its `get-env` derivation in a store of its own (not the world's chroot
    // store, where it cannot build).
    let nix_conf = w.path("nix-conf-build");
    common::nix::write_offline_conf(
        &nix_conf,
        &nix_conf.join("registry.json"),
        Some(&common::nix::local_store(
            &w.path("nix-build/store"),
            &w.path("nix-build"),
        )),
    );
    for (backend, path) in [
        ("", no_nix.as_str()),
        ("nix", "/usr/local/bin:/usr/bin:/bin"),
    ] {
        let out = w
            .envy(
                &dir,
                &[&["print-dev-env", "--json"][..], &args[..]].concat(),
            )
            .env("ENVY_BACKEND", backend)
            .env("PATH", path)
            .env("NIX_CONF_DIR", &nix_conf)
            // Nix's fetcher cache remembers paths of the world's other store: a cache of
            // its own.
            .env("XDG_CACHE_HOME", w.path(&format!("cache-{backend}")))
            .output()
            .unwrap();
        common::assert_success(&out, &format!("print-dev-env --override-input ({backend})"));
        assert_eq!(
            json(&out)["variables"]["FOO"]["value"],
            rev.as_str(),
            "backend `{backend}`"
        );
        assert_eq!(
            text(&dir.join("flake.lock")),
            lock_before,
            "backend `{backend}`"
        );
    }

    // An override that matches no input: Nix's warning.
    let out = envy_ok(
        &w,
        &dir,
        &["flake", "metadata", "--override-input", "nope", &over],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "the flag '--override-input nope {over}' does not match any input"
        )),
        "{stderr}"
    );

    // `flake lock` writes the overridden lock, as `nix flake lock` does.
    let theirs = w.path("proj-nix");
    w.write(&theirs, &[("flake.nix", &text(&dir.join("flake.nix")))]);
    fs_err::copy(dir.join("flake.lock"), theirs.join("flake.lock")).unwrap();
    envy_ok(&w, &dir, &[&["flake", "lock"][..], &args[..]].concat());
    w.nix_ok(&theirs, &[&["flake", "lock"][..], &args[..]].concat());
    assert_eq!(
        text(&dir.join("flake.lock")),
        text(&theirs.join("flake.lock"))
    );
    assert!(text(&dir.join("flake.lock")).contains(&rev));
}

/// Both projects entered through the hook in bash, with envy's own engine (no `nix` on
/// `PATH`): the devShell's variables arrive, leaving restores the shell.
#[test]
fn upstream_flake_projects_load_through_the_hook() {
    if !(common::have_tool("tmux") && common::have_tool("bash")) {
        return;
    }
    let Some(up) = upstream() else { return };
    let sb = Sandbox::new();
    let bin = path_without_nix(&sb.root().join("bin"));
    let vars = [
        ("PATH", bin.display().to_string()),
        ("ENVY_BACKEND", String::new()),
        ("ENVY_SANDBOX_PATHS", "/bin /usr /lib /lib64".to_string()),
    ];
    let rc = vars
        .iter()
        .map(|(k, v)| format!("export {k}='{v}'"))
        .collect::<Vec<_>>()
        .join("\n");
    let utils = sb.project("utils", &utils_flake(up));
    let parts = sb.project("parts", &parts_flake(up));
    for p in [&utils, &parts] {
        sb.envy_ok(p, &["allow"]);
    }
    let mut s = Session::start_with(&sb, Sh::Bash, &sb.work, &rc, 1);
    assert_eq!(s.output("command -v nix").trim(), "", "nix is not on PATH");
    let before = corekit::stable(&s.env());
    for (dir, want) in [(&utils, "utils"), (&parts, "parts")] {
        s.cd(dir);
        let env = s.env();
        assert_eq!(
            env.get("FOO").cloned(),
            Some(format!("{want}-{}", system())),
            "{}",
            s.screen()
        );
        assert!(dir.join("flake.lock").is_file(), "the hook locked {want}");
        s.cd(&sb.work);
        assert_eq!(corekit::stable(&s.env()), before, "leaving {want} restores");
    }
}

/// flake-utils' own `flake.lock` pins `github:nix-systems/default` by NAR hash. When a tree
/// with that hash is already in envy's fetch cache (here: nix-systems fetched once as a
/// `git+file` input), the `github:` input is used as it is, with no network access, as Nix
/// uses a store path that is already valid. Without it, the same evaluation needs GitHub.
#[test]
fn a_locked_input_already_here_is_used_offline() {
    let Some(up) = upstream() else { return };
    let lock: Value = serde_json::from_str(&text(&up.join("flake-utils/flake.lock"))).unwrap();
    let systems = &lock["nodes"]["systems"];
    assert_eq!(systems["locked"]["type"], "github");
    let offline_lock = serde_json::json!({
        "nodes": {
            "root": { "inputs": { "systems": "systems" } },
            "systems": systems,
        },
        "root": "root",
        "version": 7,
    });
    let flake = r#"{
  inputs.systems.url = "github:nix-systems/default";
  outputs = { self, systems }: { count = builtins.length (import systems); };
}
"#;
    let run = |w: &FlakeWorld| {
        let dir = w.path("offline");
        w.write(
            &dir,
            &[
                ("flake.nix", flake),
                ("flake.lock", &offline_lock.to_string()),
            ],
        );
        // Nothing listens there: any request to GitHub fails.
        w.envy(&dir, &["eval", ".#count"])
            .env("ENVY_GITHUB_API", "http://127.0.0.1:9")
            .output()
            .unwrap()
    };

    // A fresh cache: the tree must be downloaded, and cannot be.
    let w = FlakeWorld::new();
    let out = run(&w);
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // The same commit fetched once from the local clone (`?rev=`: exported into the fetch
    // cache): found by its NAR hash.
    let w = FlakeWorld::new();
    let first = w.path("first");
    w.write(
        &first,
        &[(
            "flake.nix",
            &format!(
                "{{\n  inputs.systems.url = \"git+file://{}/nix-systems-default?rev={}\";\n  outputs = {{ self, systems }}: {{ }};\n}}\n",
                up.display(),
                systems["locked"]["rev"].as_str().unwrap()
            ),
        )],
    );
    envy_ok(&w, &first, &["flake", "lock"]);
    assert_eq!(
        serde_json::from_str::<Value>(&text(&first.join("flake.lock"))).unwrap()["nodes"]["systems"]
            ["locked"]["narHash"],
        systems["locked"]["narHash"],
        "the clone is the tree flake-utils' lock pins"
    );
    let out = run(&w);
    common::assert_success(&out, "envy eval .#count offline");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "4\n");
}

/// `builtins.getFlake` in `envy eval` (impure, as `nix eval --impure`): the flake-utils
/// project by path, its outputs as Nix 2.8 computes them.
#[test]
fn get_flake_in_envy_eval_matches_nix() {
    let Some(w) = nix_world() else { return };
    let Some(up) = upstream() else { return };
    let dir = w.path("proj");
    w.write(&dir, &[("flake.nix", &utils_flake(up))]);
    envy_ok(&w, &dir, &["flake", "lock"]);
    let expr = format!(
        "let f = builtins.getFlake \"path:{}\"; in [ f.devShells.aarch64-linux.default.FOO f.packages.{}.hello.outPath ]",
        dir.display(),
        system()
    );
    let ours = envy_for_nix_store(&w, &dir, &["eval", "--json", "--strict", "-E", &expr]);
    let nix = w.nix_json(&dir, &["eval", "--impure", "--json", "--expr", &expr]);
    assert_eq!(json(&ours), nix);
    assert_eq!(nix[0], "utils-aarch64-linux");
}

/// The same, with the tree in envy's store instead of its fetch cache: a devShell that
/// refers to nix-systems copies it into the store; with the fetch cache gone, the `github:`
/// input locked by NAR hash is read from the store, offline, as Nix reads a valid path.
#[test]
fn a_locked_input_in_the_store_is_used_offline() {
    let Some(up) = upstream() else { return };
    let lock: Value = serde_json::from_str(&text(&up.join("flake-utils/flake.lock"))).unwrap();
    let systems = &lock["nodes"]["systems"];
    let w = FlakeWorld::new();
    let no_nix = path_without_nix(w.root()).display().to_string();
    let shell = |foo: &str| {
        format!(
            r#"derivation {{ name = "shell"; system = "{}"; builder = "/bin/bash"; outputs = [ "out" ]; PATH = "/usr/bin:/bin"; FOO = {foo}; }}"#,
            system()
        )
    };
    let print_dev_env = |dir: &Path| {
        w.envy(dir, &["print-dev-env", "--json"])
            .env("PATH", &no_nix)
            .env("ENVY_BACKEND", "")
            .env("ENVY_SANDBOX_PATHS", "/bin /usr /lib /lib64")
            .env("ENVY_GITHUB_API", "http://127.0.0.1:9")
            .output()
            .unwrap()
    };

    // nix-systems at the pinned commit, referred to by a devShell: copied into the store.
    let first = w.path("first");
    w.write(
        &first,
        &[(
            "flake.nix",
            &format!(
                "{{\n  inputs.systems.url = \"git+file://{}/nix-systems-default?rev={}\";\n  outputs = {{ self, systems }}: {{ devShells.{}.default = {}; }};\n}}\n",
                up.display(),
                systems["locked"]["rev"].as_str().unwrap(),
                system(),
                shell(r#""${systems}""#)
            ),
        )],
    );
    let out = print_dev_env(&first);
    common::assert_success(&out, "print-dev-env (first)");
    let in_store = PathBuf::from(
        json(&out)["variables"]["FOO"]["value"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    assert!(in_store.join("default.nix").is_file(), "{in_store:?}");
    fs_err::remove_dir_all(w.path("cache/envy/fetch-v1")).unwrap();

    let offline = w.path("offline");
    let offline_lock = serde_json::json!({
        "nodes": { "root": { "inputs": { "systems": "systems" } }, "systems": systems },
        "root": "root",
        "version": 7,
    });
    w.write(
        &offline,
        &[
            (
                "flake.nix",
                &format!(
                    "{{\n  inputs.systems.url = \"github:nix-systems/default\";\n  outputs = {{ self, systems }}: {{ devShells.{}.default = {}; }};\n}}\n",
                    system(),
                    shell("toString (builtins.length (import systems))")
                ),
            ),
            ("flake.lock", &offline_lock.to_string()),
        ],
    );
    let out = print_dev_env(&offline);
    common::assert_success(&out, "print-dev-env offline, from the store");
    assert_eq!(json(&out)["variables"]["FOO"]["value"], "4");
}
