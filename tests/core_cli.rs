//! envy's commands against real Nix 2.8, without an interactive shell: `export` (fast and
//! slow paths, trust, failures), `print-dev-env` against Nix's own output, generations,
//! rollback, `gc` with live shells and GC roots, progress, hooks and completions.

mod common;
#[path = "common/core.rs"]
mod corekit;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use corekit::{Sandbox, simple_flake, tick, write_stdenv};
use serde_json::Value;

fn tools() -> bool {
    common::have_tool("nix")
}

/// A sandbox, when the tools are there.
fn sandbox() -> Option<Sandbox> {
    tools().then(Sandbox::new)
}

/// `envy export json` in `dir` with the hook's variables; returns (changes, stderr).
fn export(
    sb: &Sandbox,
    dir: &Path,
    state: Option<&str>,
    pid: u32,
) -> (BTreeMap<String, Value>, String) {
    let mut cmd = sb.envy(dir, &["export", "json"]);
    cmd.env("__ENVY_PID", pid.to_string());
    if let Some(state) = state {
        cmd.env("__ENVY_STATE", state);
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let map = if stdout.is_empty() {
        BTreeMap::new()
    } else {
        serde_json::from_str(&stdout).unwrap()
    };
    (map, String::from_utf8(out.stderr).unwrap())
}

fn state_of(changes: &BTreeMap<String, Value>) -> String {
    changes["__ENVY_STATE"]
        .as_str()
        .expect("a state")
        .to_string()
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[test]
fn blocked_project_says_so_once_and_loads_after_allow() {
    let Some(sb) = sandbox() else {
        return;
    };
    let project = sb.project("proj", &simple_flake("bar", ""));
    let (changes, stderr) = export(&sb, &project, None, 1);
    assert_eq!(changes.get("FOO"), None, "never evaluated before allow");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("flake.nix") && lines[0].contains("run `envy allow`"),
        "{stderr}"
    );
    assert!(
        !sb.store().exists() || fs_err::read_dir(sb.store()).unwrap().count() == 0,
        "nothing was evaluated"
    );

    let state = state_of(&changes);
    let (again, stderr) = export(&sb, &project, Some(&state), 1);
    assert!(
        again.is_empty() && stderr.is_empty(),
        "unchanged blocked prompt: silent ({again:?}, {stderr})"
    );

    sb.envy_ok(&project, &["allow"]);
    let (loaded, _) = export(&sb, &project, Some(&state), 1);
    assert_eq!(loaded["FOO"], "bar");
}

#[test]
fn a_lock_file_nix_writes_keeps_the_allow() {
    if !tools() {
        return;
    }
    // A flake with an input has no lock until Nix writes one during the first build; the
    // lock follows from the allowed flake.nix, so the project must not turn blocked.
    let sb = Sandbox::new();
    sb.project(
        "dep",
        "{ outputs = { self }: { value = \"from-dep\"; }; }\n",
    );
    let text = corekit::flake(&[("default", "FOO = dep.value;")]).replace(
        "outputs = { self }:",
        &format!(
            "inputs.dep.url = \"path:{}\";\n  outputs = {{ self, dep }}:",
            sb.work.join("dep").display()
        ),
    );
    let project = sb.project("proj", &text);
    sb.envy_ok(&project, &["allow"]);
    let (changes, stderr) = export(&sb, &project, None, 1);
    assert_eq!(changes["FOO"], "from-dep", "{stderr}");
    assert!(project.join("flake.lock").exists());
    // envy wrote it (Nix only reads it) and the allow carried over to exactly that lock.
    assert!(stderr.contains("carries over"), "{stderr}");
    let (again, stderr) = export(&sb, &project, Some(&state_of(&changes)), 1);
    assert!(
        again.keys().all(|k| k == "__ENVY_STATE") && stderr.is_empty(),
        "still allowed, nothing to load again: {again:?} {stderr}"
    );
    let status = json(&sb.envy_ok(&project, &["status", "--json"]));
    assert_eq!(status["project"]["trust"], "allowed");
}

#[test]
fn denied_project_is_silent() {
    let Some(sb) = sandbox() else {
        return;
    };
    let project = sb.project("proj", &simple_flake("bar", ""));
    sb.envy_ok(&project, &["deny"]);
    let (changes, stderr) = export(&sb, &project, None, 1);
    assert_eq!(stderr, "");
    assert!(state_of(&changes).starts_with("1|D|"));
    let status = json(&sb.envy_ok(&project, &["status", "--json"]));
    assert_eq!(status["project"]["trust"], "denied");
}

/// `cmd` (`envy` or `envy-hook`, or strace running one) set up as the prompt hook's
/// `export bash` from `dir`, with only the sandbox's environment and shell pid 7.
fn prompt_export<'c>(cmd: &'c mut Command, sb: &Sandbox, dir: &Path) -> &'c mut Command {
    cmd.args(["export", "bash"])
        .current_dir(dir)
        .env_clear()
        .envs(sb.env())
        .env("PWD", dir)
        .env("__ENVY_PID", "7")
}

#[test]
fn unchanged_prompt_prints_nothing_and_opens_no_file() {
    let Some(sb) = sandbox() else {
        return;
    };
    let project = sb.project("proj", &simple_flake("bar", ""));
    fs_err::create_dir_all(project.join("sub")).unwrap();
    sb.envy_ok(&project, &["allow"]);
    let (changes, _) = export(&sb, &project, None, 7);
    let state = state_of(&changes);
    assert!(state.len() < 300, "{state}");

    // From a subdirectory, with envy's directories made unfindable: the fast path needs none.
    // Both `envy-hook` (what the prompt runs) and `envy` itself answer it, alike.
    let sub = project.join("sub");
    let hook = common::envy_bin().with_file_name("envy-hook");
    for bin in [common::envy_bin(), hook.clone()] {
        let out = prompt_export(&mut Command::new(&bin), &sb, &sub)
            .env("__ENVY_STATE", &state)
            .env_remove("HOME")
            .env_remove("XDG_CACHE_HOME")
            .env_remove("XDG_DATA_HOME")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", bin.display());
        assert_eq!(
            (out.stdout.as_slice(), out.stderr.as_slice()),
            (&b""[..], &b""[..]),
            "{}",
            bin.display()
        );
    }

    // Anything else `envy-hook` hands to `envy`, which prints the same as it would have.
    let changed = |bin: &Path| {
        prompt_export(&mut Command::new(bin), &sb, &sub)
            .output()
            .unwrap()
    };
    let (direct, via_hook) = (changed(&common::envy_bin()), changed(&hook));
    assert!(via_hook.status.success());
    assert!(String::from_utf8_lossy(&via_hook.stdout).contains("__ENVY_STATE"));
    assert_eq!(
        state_line(&via_hook.stdout),
        state_line(&direct.stdout),
        "envy-hook and envy differ when something changed"
    );

    if !common::have_tool("strace") {
        return;
    }
    for bin in [common::envy_bin(), hook] {
        let trace = sb.root().join("trace");
        let mut strace = Command::new("strace");
        strace
            .args(["-f", "-qq", "-e", "trace=open,openat,openat2", "-o"])
            .arg(&trace)
            .arg(&bin);
        let status = prompt_export(&mut strace, &sb, &sub)
            .env("__ENVY_STATE", &state)
            .stderr(Stdio::null())
            .output()
            .unwrap();
        assert!(status.status.success() && status.stdout.is_empty());
        let opened: Vec<String> = fs_err::read_to_string(&trace)
            .unwrap()
            .lines()
            .filter_map(|l| l.split('"').nth(1).map(str::to_string))
            .filter(|p| {
                // The dynamic loader finding libc & co. and std reading its own stack bounds.
                // (mimalloc, linked for the evaluator, is set up only by commands that evaluate:
                // its constructor would read two kernel settings here, see src/alloc.rs.)
                let name = p.rsplit('/').next().unwrap_or_default();
                !(p.starts_with("/etc/ld.so")
                    || name.starts_with("lib") && name.contains(".so")
                    || p.starts_with("/proc/self"))
            })
            .collect();
        assert!(
            opened.is_empty(),
            "the fast path of {} opened files: {opened:?}",
            bin.display()
        );
    }
}

/// The `__ENVY_STATE` value an export sets, without the shell's pid field (the generation, root,
/// digest and watch list are what must agree).
fn state_line(stdout: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().find(|l| l.contains("__ENVY_STATE="))?;
    let mut fields: Vec<&str> = line.split('|').collect();
    if fields.len() > 2 {
        fields.remove(2);
    }
    Some(fields.join("|"))
}

#[test]
fn envy_hook_without_envy_beside_it_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let lone = dir.path().join("envy-hook");
    fs_err::copy(common::envy_bin().with_file_name("envy-hook"), &lone).unwrap();
    let out = Command::new(&lone)
        .arg("--version")
        .env_remove("__ENVY_STATE")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "nothing but shell code on stdout");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("cannot run {}", dir.path().join("envy").display()))
            && err.contains("hint:"),
        "{err}"
    );
    // Beside envy, any other command line is envy's.
    let out = Command::new(common::envy_bin().with_file_name("envy-hook"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("envy "));
}

#[test]
fn leaving_restores_and_switching_generations_keeps_the_original_base() {
    let Some(sb) = sandbox() else {
        return;
    };
    let project = sb.project("proj", &simple_flake("one", r#"PATH = "/fixture/bin";"#));
    sb.envy_ok(&project, &["allow"]);
    let (load, stderr) = export(&sb, &project, None, 1);
    assert_eq!(load["PATH"], "/fixture/bin:/usr/local/bin:/usr/bin:/bin");
    assert!(stderr.contains("loaded"), "{stderr}");

    // Leaving, as the shell would run it: every variable set goes back.
    let mut leave = sb.envy(&sb.work, &["export", "json"]);
    leave
        .env("__ENVY_STATE", state_of(&load))
        .env("__ENVY_PID", "1");
    for (k, v) in &load {
        if let Some(v) = v.as_str() {
            leave.env(k, v);
        }
    }
    let out = leave.output().unwrap();
    let unload: BTreeMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(unload["PATH"], "/usr/local/bin:/usr/bin:/bin");
    assert_eq!(unload["FOO"], Value::Null);
    assert_eq!(unload["__ENVY_STATE"], Value::Null);
}

/// `envy print-dev-env --json` prints what `nix print-dev-env --json` prints: every variable,
/// the build's own (`HOME`, `TMPDIR`, `out`…) included, as Nix captured them. The shell gets
/// the cleaned set: the bash form sets `out` under `./outputs` and a fresh `TMPDIR`, as Nix's
/// does, and none of the build sandbox's values.
#[test]
fn print_dev_env_json_is_nixs_and_the_shell_gets_the_cleaned_set() {
    let Some(sb) = sandbox() else {
        return;
    };
    let project = sb.project(
        "proj",
        &simple_flake(
            "bar",
            r#"stdenv = ./stdenv;
      BAR = import ./extra.nix;
      shellHook = "echo hi";"#,
        ),
    );
    fs_err::write(project.join("extra.nix"), "\"extra\"\n").unwrap();
    write_stdenv(
        &project,
        "greet() { echo \"hi $1\"; }\ndeclare -a arr=(a 'b c')\nlocalVar=1\n",
    );

    let envy = json(&sb.envy_ok(&project, &["print-dev-env", "--json"]));
    let mut nix = Command::new("nix");
    nix.args(["print-dev-env", "--json"])
        .current_dir(&project)
        .env_clear()
        .envs(sb.env());
    let nix_out = nix.output().unwrap();
    assert!(
        nix_out.status.success(),
        "{}",
        String::from_utf8_lossy(&nix_out.stderr)
    );
    let nix = json(&nix_out);

    assert_eq!(envy["bashFunctions"], nix["bashFunctions"]);
    // The same capture (Nix reuses the `-env` output envy's build made), so even the clock
    // and the build directory agree.
    assert_eq!(envy["variables"], nix["variables"]);
    for name in ["HOME", "TMPDIR", "NIX_BUILD_TOP", "out"] {
        assert!(envy["variables"].get(name).is_some(), "`{name}` is printed");
    }
    assert_eq!(envy["variables"]["arr"]["type"], "array");
    let watched: Vec<&str> = envy["envy"]["watch"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for file in ["flake.nix", "flake.lock", "extra.nix", "stdenv/setup"] {
        let path = project.join(file).display().to_string();
        assert!(
            watched.contains(&path.as_str()),
            "`{file}` is watched: {watched:?}"
        );
    }

    // The bash form is a script that sets the same, minus the build's own values: `HOME`
    // stays the user's, the outputs are under `./outputs` and `TMPDIR` is fresh.
    let script = String::from_utf8(sb.envy_ok(&project, &["print-dev-env"]).stdout).unwrap();
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "{script}\necho \"$FOO/$BAR/${{arr[1]}}\"; greet there; \
             echo \"$HOME\"; echo \"$out\"; [ -d \"$TMPDIR\" ] && [ \"$TMPDIR\" = \"$NIX_BUILD_TOP\" ] && echo fresh"
        ))
        .current_dir(&project)
        .env("HOME", &sb.home)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!(
            "hi\nbar/extra/b c\nhi there\n{}\n{}\nfresh\n",
            sb.home.display(),
            project.join("outputs/out").display()
        )
    );
}

#[test]
fn broken_flake_error_names_the_file_and_line() {
    let Some(sb) = sandbox() else {
        return;
    };
    let project = sb.project(
        "proj",
        "{\n  outputs = { self }: {\n    devShells = 1 +;\n  };\n}\n",
    );
    sb.envy_ok(&project, &["allow"]);
    let (changes, stderr) = export(&sb, &project, None, 1);
    assert!(stderr.contains("envy: error: syntax error"), "{stderr}");
    assert!(
        stderr.contains(&format!("at {}/flake.nix:3:", project.display())),
        "{stderr}"
    );
    assert!(stderr.lines().count() <= 3, "one clear error: {stderr}");
    assert!(state_of(&changes).starts_with("1|F|"));

    let out = sb.envy(&project, &["reload"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("envy: error: syntax error"), "{stderr}");
}

#[test]
fn slow_builds_show_progress() {
    let Some(sb) = sandbox() else {
        return;
    };
    let project = sb.project("proj", &simple_flake("slow", "stdenv = ./stdenv;"));
    write_stdenv(&project, "echo 'warming up' >&2; sleep 1.6\n");
    sb.envy_ok(&project, &["allow"]);
    let out = sb.envy_ok(&project, &["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let progress: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("envy: proj: "))
        .collect();
    assert!(!progress.is_empty(), "no progress line: {stderr}");
    assert!(
        progress
            .iter()
            .any(|l| l.contains("building") && l.ends_with("s)")),
        "{progress:?}"
    );

    // A quick build shows nothing.
    fs_err::write(project.join("stdenv/setup"), "true\n").unwrap();
    let out = sb.envy_ok(&project, &["reload"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("envy: proj: "), "{stderr}");
}

fn generation_files(sb: &Sandbox) -> Vec<PathBuf> {
    let env = sb.cache_home().join("envy/env-v1");
    let mut out = Vec::new();
    for project in fs_err::read_dir(&env).unwrap().flatten() {
        if let Ok(gens) = fs_err::read_dir(project.path().join("generations")) {
            out.extend(gens.flatten().map(|e| e.path()));
        }
    }
    out.sort();
    out
}

fn generation_roots(sb: &Sandbox, dir: &Path) -> BTreeMap<u64, (PathBuf, String)> {
    let list = json(&sb.envy_ok(dir, &["generations", "--json"]));
    list.as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let root = PathBuf::from(g["roots"][0].as_str().unwrap());
            let target = fs_err::read_link(&root).unwrap().display().to_string();
            (g["generation"].as_u64().unwrap(), (root, target))
        })
        .collect()
}

#[test]
fn generations_rollback_and_gc_keep_what_they_must() {
    let Some(sb) = sandbox() else {
        return;
    };
    let project = sb.project("proj", &simple_flake("v", "BAR = import ./extra.nix;"));
    sb.envy_ok(&project, &["allow"]);
    // Generation 1, loaded by a live "shell" (a process that outlives this test's steps).
    let mut live = Command::new("sleep").arg("120").spawn().unwrap();
    fs_err::write(project.join("extra.nix"), "\"1\"\n").unwrap();
    let (g1, _) = export(&sb, &project, None, live.id());
    assert_eq!(g1["BAR"], "1");
    for v in ["2", "3"] {
        tick();
        fs_err::write(project.join("extra.nix"), format!("\"{v}\"\n")).unwrap();
        sb.envy_ok(&project, &["reload"]);
    }
    let list = json(&sb.envy_ok(&project, &["generations", "--json"]));
    let numbers: Vec<(u64, bool)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["generation"].as_u64().unwrap(),
                g["current"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(numbers, [(1, false), (2, false), (3, true)]);
    let roots = generation_roots(&sb, &project);
    for (root, target) in roots.values() {
        assert!(Path::new(target).exists(), "{} → {target}", root.display());
    }

    // Nix's own gc keeps every environment envy roots.
    let nix_gc = |sb: &Sandbox| {
        let out = Command::new("nix")
            .args(["store", "gc"])
            .env_clear()
            .envs(sb.env())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    nix_gc(&sb);
    for (_, target) in roots.values() {
        assert!(
            Path::new(target).exists(),
            "nix gc removed rooted `{target}`"
        );
    }

    // rollback makes 2 current; 3 stays listed.
    sb.envy_ok(&project, &["rollback"]);
    let status = json(&sb.envy_ok(&project, &["status", "--json"]));
    assert_eq!(status["project"]["generation"]["number"], 2);
    sb.envy_ok(&project, &["rollback", "--to", "3"]);

    // keep 1: the current (3) and the live shell's (1) stay; 2 goes, with its root.
    let dry = String::from_utf8(
        sb.envy_ok(&project, &["gc", "--dry-run", "--keep", "1"])
            .stdout,
    )
    .unwrap();
    assert!(dry.contains("would free generation 2 of"), "{dry}");
    assert!(
        !dry.contains("generation 1 of") && !dry.contains("generation 3 of"),
        "{dry}"
    );
    assert_eq!(generation_files(&sb).len(), 3, "a dry run frees nothing");
    let real = String::from_utf8(sb.envy_ok(&project, &["gc", "--keep", "1"]).stdout).unwrap();
    assert!(
        real.contains("freed generation 2 of")
            && real.lines().last().unwrap().starts_with("freed "),
        "{real}"
    );
    assert_eq!(generation_files(&sb).len(), 2);
    assert!(!roots[&2].0.exists(), "generation 2's GC root is dropped");
    nix_gc(&sb);
    assert!(
        !Path::new(&roots[&2].1).exists(),
        "nix gc reclaims generation 2's environment"
    );
    assert!(Path::new(&roots[&1].1).exists() && Path::new(&roots[&3].1).exists());

    // Once the live shell is gone, its generation goes too; the current never does.
    live.kill().unwrap();
    live.wait().unwrap();
    sb.envy_ok(&project, &["gc", "--keep", "0"]);
    let left = generation_files(&sb);
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].ends_with("3.env"));

    // A project whose directory is gone loses everything, roots included.
    fs_err::remove_dir_all(&project).unwrap();
    let out = String::from_utf8(sb.envy_ok(&sb.work, &["gc"]).stdout).unwrap();
    assert!(out.contains("directory gone"), "{out}");
    assert!(generation_files(&sb).is_empty());
    assert!(!roots[&3].0.exists());
}

#[test]
fn use_another_flakes_devshell() {
    let Some(sb) = sandbox() else {
        return;
    };
    let project = sb.project("proj", &simple_flake("own", ""));
    let tools = sb.project("tools", &corekit::flake(&[("py", "FOO = \"from-tools\";")]));
    sb.envy_ok(&project, &["allow"]);
    sb.envy_ok(&project, &["use", "../tools#py"]);
    // The other flake is evaluated too, so it needs its own allow.
    let (blocked, stderr) = export(&sb, &project, None, 1);
    assert_eq!(blocked.get("FOO"), None, "{stderr}");
    assert!(stderr.contains("picked by `envy use`"), "{stderr}");
    sb.envy_ok(&tools, &["allow"]);
    let shown = String::from_utf8(sb.envy_ok(&project, &["use"]).stdout).unwrap();
    assert_eq!(
        shown.trim(),
        format!("{}#py", project.join("../tools").display())
    );
    let (changes, stderr) = export(&sb, &project, None, 1);
    assert_eq!(changes["FOO"], "from-tools", "{stderr}");
    // What Nix read of the other flake is watched where it lives, not in this project.
    let status = json(&sb.envy_ok(&project, &["status", "--json"]));
    let watch: Vec<&str> = status["project"]["generation"]["watch"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let tools_flake = sb.work.join("tools/flake.nix").display().to_string();
    assert!(watch.contains(&tools_flake.as_str()), "{watch:?}");
    sb.envy_ok(&project, &["use", "default"]);
    let (changes, _) = export(&sb, &project, None, 1);
    assert_eq!(changes["FOO"], "own");
}

/// nushell, elvish and xonsh get `envy export json`'s object under their own names, with
/// fish's note when the devShell has a shellHook; an unchanged prompt prints nothing.
#[test]
fn export_for_nu_elvish_xonsh_is_json_with_the_note() {
    let Some(sb) = sandbox() else {
        return;
    };
    let project = sb.project(
        "proj",
        &simple_flake(
            "bar",
            "shellHook = \"echo hi\"; SPACED = \"a 'b' \\\"c\\\"\";",
        ),
    );
    sb.envy_ok(&project, &["allow"]);
    let run = |shell: &str, state: Option<&str>| {
        let mut cmd = sb.envy(&project, &["export", shell]);
        cmd.env("__ENVY_PID", "1");
        if let Some(state) = state {
            cmd.env("__ENVY_STATE", state);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{out:?}");
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (json, json_err) = run("json", None);
    assert!(!json_err.contains("cannot run"), "{json_err}");
    let json: BTreeMap<String, Value> = serde_json::from_str(&json).unwrap();
    assert_eq!(json["SPACED"], "a 'b' \"c\"");
    for shell in ["nu", "elvish", "xonsh"] {
        let (out, err) = run(shell, None);
        let map: BTreeMap<String, Value> = serde_json::from_str(&out).unwrap();
        assert_eq!(map.get("FOO"), Some(&Value::from("bar")), "{shell}: {out}");
        assert_eq!(map.get("SPACED"), json.get("SPACED"), "{shell}");
        assert!(
            err.contains(&format!(
                "shellHook or bash functions, which {shell} cannot run; {shell} gets its variables"
            )),
            "{shell}: {err}"
        );
        let (again, err) = run(shell, Some(&state_of(&map)));
        assert_eq!(
            (again.as_str(), err.as_str()),
            ("", ""),
            "{shell}: unchanged"
        );
    }
}

#[test]
fn hooks_are_valid_shell_code_and_mention_only_envy() {
    let sb = Sandbox::new();
    for (shell, check) in [
        ("bash", vec!["bash", "-n"]),
        ("zsh", vec!["zsh", "-n"]),
        ("fish", vec!["fish", "--no-execute"]),
        // The hook is Python with xonsh's globals (`events`, `__xonsh__`). (elvish cannot
        // compile it outside an interactive shell, where `edit:` exists: the tmux tests do.)
        ("xonsh", vec!["python3", "-m", "py_compile"]),
        // `--ide-check` exits 0 and prints its diagnostics as JSON lines.
        ("nu", vec!["nu", "-n", "--ide-check", "100"]),
    ] {
        if !common::have_tool(check[0]) {
            continue;
        }
        let out = sb.envy_ok(&sb.work, &["hook", shell]);
        assert!(out.stderr.is_empty(), "messages on stderr only, none here");
        let script = sb.root().join(format!("hook.{shell}"));
        fs_err::write(&script, &out.stdout).unwrap();
        let checked = Command::new(check[0])
            .args(&check[1..])
            .arg(&script)
            .output()
            .unwrap();
        let diagnostics = String::from_utf8_lossy(&checked.stdout);
        assert!(
            checked.status.success() && !diagnostics.contains("\"severity\":\"Error\""),
            "`envy hook {shell}` is not valid {shell}: {diagnostics}{}",
            String::from_utf8_lossy(&checked.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(&common::envy_bin().display().to_string()),
            "the hook calls this binary"
        );
    }
    let completions = sb.envy_ok(&sb.work, &["completions", "bash"]);
    assert!(String::from_utf8_lossy(&completions.stdout).contains("envy"));
}

#[test]
fn status_outside_a_project() {
    let sb = Sandbox::new();
    let status = json(&sb.envy_ok(&sb.work, &["status", "--json"]));
    assert_eq!(status["project"], Value::Null);
    assert_eq!(status["loaded"], Value::Null);
    assert_eq!(status["backend"], "nix");
    let out = sb.envy(&sb.work, &["allow"]).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("envy: error: no `flake.nix` in") && stderr.contains("hint:"),
        "{stderr}"
    );
}
