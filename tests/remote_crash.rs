//! Failure safety of builds on Nix build machines (real sshd, real Nix 2.8 there:
//! tests/common/sshd.rs), over `ssh://` and `ssh-ng://`:
//! - `kill -9` envy while the machine builds: envy's store and the machine's both verify, the
//!   output is valid nowhere, no lock is left behind, and the next build succeeds;
//! - `kill -9` envy while it copies a large output back: envy's store has the output either
//!   not at all or complete (the machine's NAR hash), the next build takes the machine's
//!   output without building it again, and `envy store gc` clears what the kill left;
//! - `kill -9` envy while it copies a large input to the machine: the machine has it whole or
//!   not at all, and the next build succeeds;
//! - once envy is gone, the machine holds no temporary root for the paths it touched;
//! - a failure shows the last lines of the remote log, and `envy log` has all of it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::build::{BuildEnv, assert_success, store_path};
use common::sshd::{BuildMachine, world_with_machine};

const PROTOCOLS: [&str; 2] = ["ssh", "ssh-ng"];

/// Derivations for each protocol `proto` and attempt `n` (`-A PROTO.aN.ATTR`): `slow` waits until the test lets it
/// finish (`GATE/release-…`, at most two minutes), `big` makes 80 MB of random bytes, `inp`
/// takes a large source (`work/big-PROTO-N.bin`, written by the test), `loud`
/// prints 200 numbered lines and fails. Each marks in `GATE` (inside the machine's sandbox)
/// that it ran.
fn expr(gate: &Path) -> String {
    format!(
        r#"
let
  gate = "{gate}";
  for = proto: n: let
    sh = name: script: derivation {{
      name = "${{name}}-${{proto}}-${{toString n}}"; system = "x86_64-linux"; builder = "/bin/sh";
      args = [ "-c" ("PATH=/usr/bin:/bin; " + script) ];
    }};
  in {{
  slow = sh "slow" ''
    echo started >> ${{gate}}/started-${{proto}}
    i=0
    while [ ! -e ${{gate}}/release-${{proto}} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
    echo done > $out
  '';
  big = sh "big" ''
    head -c 80000000 /dev/urandom > $out
    echo made >> ${{gate}}/made-${{proto}}-${{toString n}}
  '';
  inp = sh "inp" "wc -c < ${{./. + "/big-${{proto}}-${{toString n}}.bin"}} > $out";
  loud = sh "loud" ''
    for i in $(seq 1 200); do echo "remote line $i"; done
    exit 3
  '';
  }};
  attempts = proto: builtins.listToAttrs (map (n: {{ name = "a${{toString n}}"; value = for proto n; }}) [ 0 1 2 3 ]);
in {{ ssh = attempts "ssh"; ssh-ng = attempts "ssh-ng"; }}
"#,
        gate = gate.display()
    )
}

struct World {
    env: BuildEnv,
    machine: BuildMachine,
    gate: PathBuf,
}

fn setup() -> Option<World> {
    let (env, machine) = world_with_machine("nix-store")?;
    let gate = env.path("gate");
    fs_err::create_dir_all(&gate).unwrap();
    fs_err::write(env.path("work/default.nix"), expr(&gate)).unwrap();
    // The builders reach the gate from inside the machine's sandbox.
    let conf = machine.dir.join("nixconf/nix.conf");
    let mut text = fs_err::read_to_string(&conf).unwrap();
    text.push_str(&format!("extra-sandbox-paths = {}\n", gate.display()));
    fs_err::write(&conf, text).unwrap();
    Some(World { env, machine, gate })
}

impl World {
    fn envy_build(&self, proto: &str, attr: &str, n: u32) -> Command {
        let mut cmd = self.machine.envy(&self.env);
        cmd.args([
            "build",
            "--no-out-link",
            "default.nix",
            "-A",
            &format!("{proto}.a{n}.{attr}"),
        ])
        .args(["-j", "0", "--builders", &format!("{proto}://farm")]);
        cmd
    }

    fn spawn(&self, proto: &str, attr: &str, n: u32) -> Child {
        self.envy_build(proto, attr, n)
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                fs_err::File::create(self.env.path(&format!("{attr}-{proto}-{n}.stderr")))
                    .unwrap()
                    .into_parts()
                    .0,
            ))
            .spawn()
            .unwrap()
    }

    fn stderr_of(&self, proto: &str, attr: &str, n: u32) -> String {
        fs_err::read_to_string(self.env.path(&format!("{attr}-{proto}-{n}.stderr")))
            .unwrap_or_default()
    }

    /// Real Nix on the machine's store.
    fn remote_nix(&self, program: &str) -> Command {
        self.machine.nix(program, &self.env.store_dir())
    }

    /// The printed `.drv` and output paths of `attr` (real Nix instantiates them in its own
    /// store, with envy's store dir).
    fn paths(&self, proto: &str, attr: &str, n: u32) -> (String, String) {
        let out = self
            .env
            .nix_command_at("nix-instantiate", &self.env.nix_store_uri())
            .arg(self.env.path("work/default.nix"))
            .args(["-A", &format!("{proto}.a{n}.{attr}")])
            .output()
            .unwrap();
        assert_success(&out, "nix-instantiate");
        let drv = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .split('!')
            .next()
            .unwrap()
            .to_string();
        let out = self
            .env
            .nix_command_at("nix-store", &self.env.nix_store_uri())
            .args(["-q", "--outputs", &drv])
            .output()
            .unwrap();
        assert_success(&out, "nix-store -q --outputs");
        let output = String::from_utf8(out.stdout).unwrap().trim().to_string();
        (drv, output)
    }

    /// The machine's store verifies: every valid path exists with its registered contents.
    fn verify_remote(&self) {
        let out = self
            .remote_nix("nix-store")
            .args(["--verify", "--check-contents"])
            .output()
            .unwrap();
        assert_success(&out, "nix-store --verify --check-contents on the machine");
        let stderr = String::from_utf8_lossy(&out.stderr);
        for bad in ["disappeared", "was modified", "is invalid", "error"] {
            assert!(!stderr.contains(bad), "the machine's store: {stderr}");
        }
    }

    /// The machine's NAR hash of a path valid there.
    fn remote_hash(&self, path: &str) -> String {
        let out = self
            .remote_nix("nix-store")
            .args(["-q", "--hash", path])
            .output()
            .unwrap();
        assert_success(&out, "nix-store -q --hash on the machine");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    /// Delete `path` from the machine's store: Nix refuses while a live process (a session
    /// envy opened) holds it as a temporary root. The sessions end when their ssh does,
    /// which follows envy's exit: wait for that, two minutes at most.
    fn remote_delete(&self, path: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = self
                .remote_nix("nix-store")
                .args(["--delete", path])
                .output()
                .unwrap();
            if out.status.success() {
                assert!(!self.machine.has(&self.env.store_dir(), path));
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the machine still holds `{path}` after envy exited: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Wait until `ready` holds, or panic with the child's stderr if it exits first.
fn wait_for(child: &mut Child, what: &str, stderr: impl Fn() -> String, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !ready() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("envy exited ({status}) before {what}:\n{}", stderr());
        }
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn lines_in(path: &Path) -> usize {
    fs_err::read_to_string(path).map_or(0, |t| t.lines().count())
}

fn tmp_entries(store_dir: &Path) -> Vec<String> {
    fs_err::read_dir(store_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

#[test]
fn killed_while_the_machine_builds() {
    let Some(w) = setup() else {
        return;
    };
    let sd = w.env.store_dir();
    for proto in PROTOCOLS {
        let (_, out_path) = w.paths(proto, "slow", 0);
        let mut child = w.spawn(proto, "slow", 0);
        let started = w.gate.join(format!("started-{proto}"));
        wait_for(
            &mut child,
            "the machine started the build",
            || w.stderr_of(proto, "slow", 0),
            || lines_in(&started) > 0,
        );
        child.kill().unwrap();
        child.wait().unwrap();

        // Nothing is registered here; the machine's store is sound and lacks the output.
        w.env.verify();
        assert!(
            w.env
                .store()
                .query_path_info(&store_path(&out_path))
                .unwrap()
                .is_none(),
            "{out_path} is not valid in envy's store over {proto}://"
        );
        assert!(!w.machine.has(&sd, &out_path));
        w.verify_remote();

        // The orphaned build may finish now; the next envy takes no stale lock, builds (or
        // takes what the machine finished) and registers a complete output.
        fs_err::write(w.gate.join(format!("release-{proto}")), "").unwrap();
        let out = w.envy_build(proto, "slow", 0).output().unwrap();
        assert_success(&out, &format!("envy build over {proto}:// after a kill"));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), out_path);
        assert_eq!(fs_err::read_to_string(&out_path).unwrap(), "done\n");
        assert_eq!(w.env.envy_nar_hash(&out_path), w.remote_hash(&out_path));
        w.env.verify();
        w.verify_remote();
        // Once envy is gone, nothing on the machine keeps the output alive.
        eprintln!(
            "{proto}://: the machine ran the build {} time(s)",
            lines_in(&started)
        );
        w.remote_delete(&out_path);
        w.verify_remote();
    }
}

#[test]
fn killed_while_the_outputs_come_back() {
    let Some(w) = setup() else {
        return;
    };
    let sd = w.env.store_dir();
    for proto in PROTOCOLS {
        // The copy of 80 MB is short: when envy is done before the test sees it copying,
        // try again with another derivation.
        let mut caught = None;
        for n in 0..4 {
            let (_, out_path) = w.paths(proto, "big", n);
            let mut child = w.spawn(proto, "big", n);
            let made = w.gate.join(format!("made-{proto}-{n}"));
            wait_for(
                &mut child,
                "the machine built the output",
                || w.stderr_of(proto, "big", n),
                || lines_in(&made) > 0,
            );
            // The import writes a temporary next to the store paths, then renames it.
            let mut copying = false;
            while child.try_wait().unwrap().is_none() {
                if !tmp_entries(&sd).is_empty() {
                    copying = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = child.kill();
            let status = child.wait().unwrap();
            if copying {
                caught = Some((n, out_path));
                break;
            }
            assert!(
                status.success(),
                "envy build over {proto}://: {}",
                w.stderr_of(proto, "big", n)
            );
        }
        let (n, out_path) =
            caught.unwrap_or_else(|| panic!("never saw envy copy the output over {proto}://"));
        assert!(w.machine.has(&sd, &out_path));
        w.verify_remote();
        // Absent here, or complete: the machine's NAR hash.
        w.env.verify();
        let remote_hash = w.remote_hash(&out_path);
        let valid = w
            .env
            .store()
            .query_path_info(&store_path(&out_path))
            .unwrap()
            .is_some();
        if valid {
            assert_eq!(w.env.envy_nar_hash(&out_path), remote_hash);
        } else {
            // What was copied is unregistered: a temporary of a dead process, or (killed
            // between the rename and the registration) the path itself.
            assert!(!tmp_entries(&sd).is_empty() || Path::new(&out_path).exists());
        }
        eprintln!(
            "{proto}://: killed while copying (attempt {n}); the output is {} here, leftovers {:?}",
            if valid { "valid" } else { "absent" },
            tmp_entries(&sd)
        );

        // The next build takes the machine's output, without building it again.
        let out = w.envy_build(proto, "big", n).output().unwrap();
        assert_success(&out, &format!("envy build over {proto}:// after a kill"));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), out_path);
        assert_eq!(w.env.envy_nar_hash(&out_path), remote_hash);
        assert_eq!(
            lines_in(&w.gate.join(format!("made-{proto}-{n}"))),
            1,
            "built once, on the machine"
        );
        w.env.verify();
        w.verify_remote();
        // The killed copy's temporary goes with the next collection.
        let out = w.env.envy().args(["store", "gc"]).output().unwrap();
        assert_success(&out, "envy store gc");
        assert_eq!(tmp_entries(&sd), Vec::<String>::new());
        w.remote_delete(&out_path);
    }
}

#[test]
fn killed_while_the_inputs_go_to_the_machine() {
    let Some(w) = setup() else {
        return;
    };
    let sd = w.env.store_dir();
    let rreal = w.machine.dir.join("rreal");
    for proto in PROTOCOLS {
        // As above: when the copy ends before the test sees it, again with another source.
        let mut caught = None;
        for n in 0..4 {
            let name = format!("big-{proto}-{n}.bin");
            let mut random = fs_err::File::open("/dev/urandom").unwrap();
            let mut file = fs_err::File::create(w.env.path(&format!("work/{name}"))).unwrap();
            std::io::copy(&mut std::io::Read::take(&mut random, 80_000_000), &mut file).unwrap();
            drop(file);
            let (_, out_path) = w.paths(proto, "inp", n);
            let mut child = w.spawn(proto, "inp", n);
            // The machine's Nix writes the source at its place, then registers it.
            let mut copying = None;
            while child.try_wait().unwrap().is_none() {
                if let Some(entry) = fs_err::read_dir(&rreal).ok().and_then(|d| {
                    d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                        .find(|e| e.ends_with(&format!("-{name}")))
                }) {
                    copying = Some(entry);
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            let _ = child.kill();
            let status = child.wait().unwrap();
            if let Some(entry) = copying {
                caught = Some((n, out_path, sd.join(entry)));
                break;
            }
            assert!(
                status.success(),
                "envy build over {proto}://: {}",
                w.stderr_of(proto, "inp", n)
            );
        }
        let (n, out_path, src) = caught
            .unwrap_or_else(|| panic!("never saw the machine take the input over {proto}://"));
        let src = src.to_string_lossy().into_owned();
        // The machine has the source whole or not at all; envy's store is untouched.
        w.verify_remote();
        let whole = w.machine.has(&sd, &src);
        if whole {
            assert_eq!(w.remote_hash(&src), w.env.envy_nar_hash(&src));
        }
        eprintln!(
            "{proto}://: killed while the input went to the machine (attempt {n}); it is {} there",
            if whole { "valid" } else { "absent" },
        );
        w.env.verify();

        let out = w.envy_build(proto, "inp", n).output().unwrap();
        assert_success(&out, &format!("envy build over {proto}:// after a kill"));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), out_path);
        assert_eq!(fs_err::read_to_string(&out_path).unwrap(), "80000000\n");
        assert_eq!(w.remote_hash(&src), w.env.envy_nar_hash(&src));
        w.env.verify();
        w.verify_remote();
        w.remote_delete(&out_path);
        w.remote_delete(&src);
        fs_err::remove_file(w.env.path(&format!("work/big-{proto}-{n}.bin"))).unwrap();
    }
}

#[test]
fn a_remote_failure_shows_its_tail_and_envy_log_has_all_of_it() {
    let Some(w) = setup() else {
        return;
    };
    for proto in PROTOCOLS {
        let (drv, _) = w.paths(proto, "loud", 0);
        let out = w.envy_build(proto, "loud", 0).output().unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!("failed on `{proto}://farm`")),
            "{stderr}"
        );
        // The last lines, as a local failure shows them, and not the whole log.
        assert!(stderr.contains("> remote line 200"), "{stderr}");
        assert!(stderr.contains("> remote line 191"), "{stderr}");
        assert!(!stderr.contains("remote line 150\n"), "{stderr}");
        let log = w.env.envy().args(["log", &drv]).output().unwrap();
        assert_success(&log, "envy log");
        let log = String::from_utf8_lossy(&log.stdout);
        let numbered: Vec<&str> = log
            .lines()
            .filter(|l| l.starts_with("remote line "))
            .collect();
        let expected: Vec<String> = (1..=200).map(|i| format!("remote line {i}")).collect();
        assert_eq!(numbered, expected, "envy log over {proto}://:\n{log}");
    }
}
