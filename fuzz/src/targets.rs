//! The fuzz targets: what one input goes through, which corpus files seed it, and seeds made
//! in-process (so every target runs where `../shared` is absent).
//!
//! A target returns normally for any input, whether it decodes or not; a panic is a finding.
//! Where a decoder has an encoder, a decoded input is also encoded and decoded again, and
//! the two results must agree (a round trip that loses or changes something is a finding
//! too).

use std::io::Read;
use std::path::{Path, PathBuf};

use envy_eval::{Evaluator, MemoryIO, Pos, print};
use envy_store::StoreDir;
use envy_store::nar::{NarError, NarSink, NarWriter, NullSink};

// The hook's `__ENVY_STATE` decoder and the environment record live in the binary crate;
// both files use nothing else of it, so they are compiled here as they are (no copy, no
// seam in the binary).
#[allow(dead_code, unused_imports)]
#[path = "../../src/env/record.rs"]
mod env_record;
#[allow(dead_code)]
#[path = "../../src/hook/state.rs"]
mod hook_state;

/// One fuzz target.
pub struct Target {
    pub name: &'static str,
    /// What it decodes, for `--list`.
    pub what: &'static str,
    /// Corpus files it takes (by name ending).
    pub exts: &'static [&'static str],
    /// Run one input.
    pub run: fn(&[u8], &Scratch),
    /// Seeds made in-process.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// A directory a target may write into (the NAR target restores there).
pub struct Scratch {
    pub dir: PathBuf,
}

pub const TARGETS: &[Target] = &[
    Target {
        name: "eval",
        what: "parse, lower, evaluate strictly, print and convert to JSON",
        exts: &[".nix", ".exp"],
        run: |b, _| run_eval(0, b),
        seeds: eval_seeds,
    },
    Target {
        name: "json",
        what: "builtins.fromJSON",
        exts: &[".json"],
        run: |b, _| run_eval(1, b),
        seeds: json_seeds,
    },
    Target {
        name: "toml",
        what: "builtins.fromTOML",
        exts: &[".toml"],
        run: |b, _| run_eval(2, b),
        seeds: toml_seeds,
    },
    Target {
        name: "nar",
        what: "NAR reading (validation, restoring to disk, re-serialising)",
        exts: &[".nar"],
        run: run_nar,
        seeds: nar_seeds,
    },
    Target {
        name: "narinfo",
        what: ".narinfo parsing (and printing back)",
        exts: &[".narinfo"],
        run: run_narinfo,
        seeds: narinfo_seeds,
    },
    Target {
        name: "drv",
        what: "derivation ATerm parsing (and printing back)",
        exts: &[".drv"],
        run: run_drv,
        seeds: drv_seeds,
    },
    Target {
        name: "flakelock",
        what: "flake.lock parsing (and printing back)",
        exts: &[".lock"],
        run: run_flake_lock,
        seeds: flake_lock_seeds,
    },
    Target {
        name: "hookstate",
        what: "the hook's __ENVY_STATE decoder (and encoding back)",
        exts: &[],
        run: run_hook_state,
        seeds: hook_state_seeds,
    },
    Target {
        name: "envrecord",
        what: "the environment record: cache files (postcard) and `nix print-dev-env --json`",
        exts: &[],
        run: run_env_record,
        seeds: env_record_seeds,
    },
];

/// A target by name.
pub fn find(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

fn run_eval(kind: usize, input: &[u8]) {
    let text = String::from_utf8_lossy(input).into_owned();
    let mut io = MemoryIO::new();
    io.add_file("/input", input.to_vec());
    let mut ev = Evaluator::builder().io(Box::new(io)).build();
    let expr = match kind {
        0 => text,
        1 => "builtins.fromJSON (builtins.readFile /input)".to_string(),
        _ => "builtins.fromTOML (builtins.readFile /input)".to_string(),
    };
    let Ok(v) = ev.eval_string(&expr, "/") else {
        return;
    };
    let Ok(v) = ev.force_deep(&v, Pos::NONE) else {
        return;
    };
    let _ = print::print_value_checked(&ev, &v);
    let mut ctx = Default::default();
    let _ = ev.to_json(&v, Pos::NONE, &mut ctx, true);
}

fn eval_seeds() -> Vec<Vec<u8>> {
    [
        "let a = { b = [ 1 2.5 \"c\" ]; }; in a // { d = a.b; }",
        "rec { x = y: y + 1; z = x 2; s = \"${toString z}\"; }",
        "builtins.foldl' (a: b: a + b) 0 (builtins.genList (x: x) 100)",
        "assert { a = 1; } == { a = 1; }; ''\n  indented ${\"x\"}\n''",
        "builtins.toJSON { a = builtins.fromJSON \"[1,{\\\"b\\\":null}]\"; }",
        "with builtins; mapAttrs (n: v: v * 2) (listToAttrs [ { name = \"x\"; value = 3; } ])",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn json_seeds() -> Vec<Vec<u8>> {
    [
        r#"{"a": [1, 2.5e3, -0, true, false, null], "b": {"c": "\u00e9\n"}}"#,
        "[[[[[]]]]]",
        r#""string with \"escapes\" \\ \/ \t""#,
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

fn toml_seeds() -> Vec<Vec<u8>> {
    [
        "a = 1\nb = \"x\"\n[t]\nc = [1, 2]\nd = { e = true }\n",
        "[[arr]]\nx = 1.5\n[[arr]]\nx = 1979-05-27T07:32:00Z\n",
        "'quoted key' = '''\nmulti\n'''\n",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

/// Re-serialises what the parser hands over; for a canonical NAR that is the input again.
struct Reserialise<'a> {
    w: NarWriter<'a, Vec<u8>>,
}

fn base_name(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&c| c == b'/') {
        Some(i) => &path[i + 1..],
        None => path,
    }
}

impl NarSink for Reserialise<'_> {
    fn directory(&mut self, path: &[u8]) -> Result<(), NarError> {
        if !path.is_empty() {
            self.w.entry(base_name(path))?;
        }
        self.w.directory()
    }
    fn regular_file(
        &mut self,
        path: &[u8],
        executable: bool,
        _size: u64,
        contents: &mut dyn Read,
    ) -> Result<(), NarError> {
        let mut buf = Vec::new();
        contents.read_to_end(&mut buf).map_err(NarError::Write)?;
        if !path.is_empty() {
            self.w.entry(base_name(path))?;
        }
        self.w.regular(&buf, executable)?;
        if !path.is_empty() {
            self.w.end_entry()?;
        }
        Ok(())
    }
    fn symlink(&mut self, path: &[u8], target: &[u8]) -> Result<(), NarError> {
        if !path.is_empty() {
            self.w.entry(base_name(path))?;
        }
        self.w.symlink(target)?;
        if !path.is_empty() {
            self.w.end_entry()?;
        }
        Ok(())
    }
    fn end_directory(&mut self, path: &[u8]) -> Result<(), NarError> {
        self.w.end_directory()?;
        if !path.is_empty() {
            self.w.end_entry()?;
        }
        Ok(())
    }
}

fn run_nar(input: &[u8], scratch: &Scratch) {
    let valid = envy_store::nar::parse(input, &mut NullSink).is_ok();
    let mut out = Vec::new();
    let reparsed = {
        let mut sink = Reserialise {
            w: NarWriter::new(&mut out).expect("writing to memory"),
        };
        envy_store::nar::parse(input, &mut sink).is_ok()
    };
    assert_eq!(valid, reparsed, "validation and parsing disagree");
    if valid {
        assert!(
            input.starts_with(&out),
            "an accepted NAR does not serialise back to itself"
        );
    }
    // Restoring: into a fresh directory, which must be all it writes.
    let dest = scratch.dir.join("nar");
    let _ = fs_err::remove_dir_all(&dest);
    let restored = envy_store::nar::restore(input, &dest).is_ok();
    assert!(
        !restored || valid,
        "restore accepted a NAR that validation rejects"
    );
    let stray: Vec<_> = fs_err::read_dir(&scratch.dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name())
                .filter(|n| n != "nar")
                .collect()
        })
        .unwrap_or_default();
    assert!(
        stray.is_empty(),
        "restore wrote outside its destination: {stray:?}"
    );
    let _ = fs_err::remove_dir_all(&dest);
}

fn nar_seeds() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let mut one = Vec::new();
    {
        let mut w = NarWriter::new(&mut one).expect("memory");
        w.regular(b"hello\n", true).expect("memory");
    }
    seeds.push(one);
    let mut tree = Vec::new();
    {
        let mut w = NarWriter::new(&mut tree).expect("memory");
        w.directory().expect("memory");
        for (name, kind) in [(&b"a"[..], 0), (b"b", 1), (b"c", 2)] {
            w.entry(name).expect("memory");
            match kind {
                0 => w.regular(b"contents of a", false).expect("memory"),
                1 => w.symlink(b"a").expect("memory"),
                _ => {
                    w.directory().expect("memory");
                    w.entry(b"d").expect("memory");
                    w.regular(b"", false).expect("memory");
                    w.end_entry().expect("memory");
                    w.end_directory().expect("memory");
                }
            }
            w.end_entry().expect("memory");
        }
        w.end_directory().expect("memory");
    }
    seeds.push(tree);
    seeds
}

fn store_dir() -> StoreDir {
    StoreDir::new("/nix/store").expect("a valid store dir")
}

fn run_narinfo(input: &[u8], _: &Scratch) {
    let sd = store_dir();
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(info) = envy_store::cache::NarInfo::parse(&sd, text, "fuzz.narinfo") else {
        return;
    };
    let printed = info.to_text(&sd);
    let again = envy_store::cache::NarInfo::parse(&sd, &printed, "fuzz.narinfo")
        .unwrap_or_else(|e| panic!("a printed narinfo does not parse: {e}\n{printed}"));
    assert_eq!(info, again, "narinfo round trip");
}

fn narinfo_seeds() -> Vec<Vec<u8>> {
    vec![
        b"StorePath: /nix/store/xa2pfdgvp7w0n7yk5lnrczmcjj0v0k1q-hello-2.12.1\n\
URL: nar/1hr8wbrrpk1rqs1bbqbqbhm1jrw0pnkmbvqw6r0y8b7d63ghg9m0.nar.xz\n\
Compression: xz\n\
FileHash: sha256:1hr8wbrrpk1rqs1bbqbqbhm1jrw0pnkmbvqw6r0y8b7d63ghg9m0\n\
FileSize: 50088\n\
NarHash: sha256:0yzhigwjl6bws649vcs2asa4lbs8hg93hyix187gc7s7a74w5h80\n\
NarSize: 226488\n\
References: 6bh2p4b5sbpvm0rdhw4z6ajp0m8bd5xm-glibc-2.38-27 xa2pfdgvp7w0n7yk5lnrczmcjj0v0k1q-hello-2.12.1\n\
Deriver: 9ki7f3xk3h2ysy2gxmy0wbgzp4kgbzqf-hello-2.12.1.drv\n\
Sig: cache.nixos.org-1:8ijECciSFzWHwwGVOIVYdp2fOIOJAfmzGHPQVwpktfTQJF6kMPPDre7UtFw3o+VqenC5P8RikKOAAfN7CvPEAg==\n"
            .to_vec(),
        b"StorePath: /nix/store/00000000000000000000000000000000-x\nURL: nar/x.nar\nCompression: none\nNarHash: sha256:0000000000000000000000000000000000000000000000000000\nNarSize: 0\nReferences: \nCA: fixed:r:sha256:0000000000000000000000000000000000000000000000000000\n".to_vec(),
    ]
}

fn run_drv(input: &[u8], _: &Scratch) {
    let sd = store_dir();
    let Ok(drv) = envy_store::Derivation::parse(&sd, input, "fuzz") else {
        return;
    };
    let printed = drv.to_aterm(&sd);
    let again = envy_store::Derivation::parse(&sd, &printed, "fuzz").unwrap_or_else(|e| {
        panic!(
            "a printed derivation does not parse: {e}\n{}",
            String::from_utf8_lossy(&printed)
        )
    });
    assert_eq!(drv, again, "derivation round trip");
}

fn drv_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"Derive([("out","/nix/store/0hm2f1psjpcwg8fijsmr4wwxrx59s092-fuzz","","")],[("/nix/store/1f83hvnbk9jiwsm8m2xz3bnb8bgdf8sm-bash.drv",["out"])],["/nix/store/2y5wq9ndlbkblqzvzdq5r6mz0sxnjv33-builder.sh"],"x86_64-linux","/bin/sh",["-e","/nix/store/2y5wq9ndlbkblqzvzdq5r6mz0sxnjv33-builder.sh"],[("builder","/bin/sh"),("name","fuzz"),("out","/nix/store/0hm2f1psjpcwg8fijsmr4wwxrx59s092-fuzz"),("system","x86_64-linux"),("text","a \"quoted\"\n\\ line")])"#
            .to_vec(),
        br#"Derive([("out","/nix/store/ycql5lbj43ddknpzk5s7aqpyjndr4xi6-fuzz","sha256","0000000000000000000000000000000000000000000000000000000000000000")],[],[],"builtin","builtin:fetchurl",[],[("name","fuzz"),("out","/nix/store/ycql5lbj43ddknpzk5s7aqpyjndr4xi6-fuzz")])"#
            .to_vec(),
    ]
}

fn run_flake_lock(input: &[u8], _: &Scratch) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Ok(lock) = envy_flake::lockfile::LockFile::parse(text, "flake.lock") else {
        return;
    };
    let printed = lock.to_text();
    let again = envy_flake::lockfile::LockFile::parse(&printed, "flake.lock")
        .unwrap_or_else(|e| panic!("a printed lock file does not parse: {e}\n{printed}"));
    assert_eq!(printed, again.to_text(), "flake.lock round trip");
}

fn flake_lock_seeds() -> Vec<Vec<u8>> {
    vec![
        br#"{
  "nodes": {
    "nixpkgs": {
      "locked": {
        "lastModified": 1700000000,
        "narHash": "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "owner": "NixOS",
        "repo": "nixpkgs",
        "rev": "0123456789abcdef0123456789abcdef01234567",
        "type": "github"
      },
      "original": { "owner": "NixOS", "ref": "nixos-unstable", "repo": "nixpkgs", "type": "github" }
    },
    "utils": {
      "inputs": { "nixpkgs": ["nixpkgs"] },
      "locked": { "lastModified": 1, "narHash": "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "path": "/tmp/u", "type": "path" },
      "original": { "path": "/tmp/u", "type": "path" },
      "flake": false
    },
    "root": { "inputs": { "nixpkgs": "nixpkgs", "utils": "utils" } }
  },
  "root": "root",
  "version": 7
}
"#
        .to_vec(),
    ]
}

fn run_hook_state(input: &[u8], _: &Scratch) {
    let Ok(text) = std::str::from_utf8(input) else {
        return;
    };
    let Some(state) = hook_state::State::decode(text) else {
        return;
    };
    // A watch list kept in a file is read back from that file; only inline ones round-trip
    // through the text alone.
    if matches!(state.watch, hook_state::Watch::Inline(_)) {
        let encoded = state.encode();
        let again = hook_state::State::decode(&encoded)
            .unwrap_or_else(|| panic!("an encoded state does not decode: {encoded:?}"));
        assert_eq!(state, again, "__ENVY_STATE round trip");
    }
}

fn hook_state_seeds() -> Vec<Vec<u8>> {
    use hook_state::{Entry, Loaded, State, Status, Watch};
    let mut seeds = Vec::new();
    for (status, loaded) in [
        (Status::Active, true),
        (Status::Building, false),
        (Status::Failed, true),
        (Status::Denied, false),
    ] {
        let state = State {
            status,
            pid: 4242,
            loaded: loaded.then(|| Loaded {
                generation: 7,
                restore: "0123456789abcdef0123456789abcdef".into(),
            }),
            root: PathBuf::from("/home/u/project with space|pipe;semi"),
            digest: 0x1234_5678_9abc_def0,
            watch: Watch::Inline(vec![
                Entry::Path(PathBuf::from("/home/u/project/flake.nix")),
                Entry::Path(PathBuf::from("/home/u/project/a;b|c%d")),
                Entry::Env("ENVY_PROFILE".into()),
            ]),
        };
        seeds.push(state.encode().into_bytes());
    }
    seeds
}

const ENV_JSON: &str = r#"{"bashFunctions":{"greet":" \n    echo \"hello $1\"\n"},
  "variables":{"BASH":{"type":"var","value":"/usr/bin/bash"},
  "FOO":{"type":"exported","value":"bar"},"out":{"type":"exported","value":"/nix/store/x-env"},
  "myArr":{"type":"array","value":["one","two three"]},"myAssoc":{"type":"associative","value":{"k":"v"}},
  "shellHook":{"type":"exported","value":"echo hi\n"},"PATH":{"type":"exported","value":"/nix/store/a/bin"}}}"#;

fn run_env_record(input: &[u8], _: &Scratch) {
    use env_record::EnvRecord;
    // The cache's files are postcard; `nix print-dev-env --json` output is JSON. The first
    // byte picks which decoder sees the rest, so one corpus feeds both.
    let (&which, rest) = match input.split_first() {
        Some(x) => x,
        None => return,
    };
    let record = if which & 1 == 0 {
        match postcard::from_bytes::<EnvRecord>(rest) {
            Ok(r) => r,
            Err(_) => return,
        }
    } else {
        let Ok(text) = std::str::from_utf8(rest) else {
            return;
        };
        match EnvRecord::from_json(text) {
            Ok(r) => r,
            Err(_) => return,
        }
    };
    let bytes = postcard::to_allocvec(&record).expect("encoding to memory");
    let again: EnvRecord = postcard::from_bytes(&bytes).expect("an encoded record decodes");
    assert_eq!(record, again, "postcard round trip");
    let mut sanitized = record.clone();
    sanitized.sanitize();
    let _ = sanitized.env_hash();
    let _ = sanitized.has_bash_only_parts();
    let _ = sanitized.shell_hook();
}

fn env_record_seeds() -> Vec<Vec<u8>> {
    let record = env_record::EnvRecord::from_json(ENV_JSON).expect("the seed record parses");
    let mut json = vec![1u8];
    json.extend_from_slice(ENV_JSON.as_bytes());
    let mut pc = vec![0u8];
    pc.extend(postcard::to_allocvec(&record).expect("encoding to memory"));
    vec![json, pc]
}

/// Corpus files for `target` under `dirs` (recursively), plus its in-process seeds.
pub fn corpus(target: &Target, dirs: &[PathBuf]) -> Vec<Vec<u8>> {
    let mut out = (target.seeds)();
    for dir in dirs {
        collect(target, dir, &mut out);
    }
    out
}

fn collect(target: &Target, dir: &Path, out: &mut Vec<Vec<u8>>) {
    let Ok(entries) = fs_err::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(target, &p, out);
            continue;
        }
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        let Some(name) = name else { continue };
        let wanted = target.exts.iter().any(|x| name.ends_with(x))
            || (target.name == "flakelock" && name.ends_with(".json"))
            || (target.name == "narinfo" && name.ends_with(".md"));
        if !wanted {
            continue;
        }
        let Ok(bytes) = fs_err::read(&p) else {
            continue;
        };
        if target.name == "narinfo" && name.ends_with(".md") {
            // The binary-cache spec's examples: each `StorePath:` block.
            let text = String::from_utf8_lossy(&bytes);
            for block in text.split("StorePath: ").skip(1) {
                let end = block
                    .find("\n\n")
                    .or_else(|| block.find("```"))
                    .unwrap_or(block.len());
                out.push(format!("StorePath: {}\n", &block[..end]).into_bytes());
            }
        } else {
            out.push(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The in-process seeds are valid inputs, so the round trips run from the first case.
    #[test]
    fn in_process_seeds_decode() {
        let sd = store_dir();
        for s in nar_seeds() {
            envy_store::nar::parse(&s[..], &mut NullSink).expect("NAR seed");
        }
        for s in narinfo_seeds() {
            let text = std::str::from_utf8(&s).unwrap();
            envy_store::cache::NarInfo::parse(&sd, text, "seed").expect("narinfo seed");
        }
        for s in drv_seeds() {
            envy_store::Derivation::parse(&sd, &s, "fuzz").expect("drv seed");
        }
        for s in flake_lock_seeds() {
            envy_flake::lockfile::LockFile::parse(std::str::from_utf8(&s).unwrap(), "seed")
                .expect("flake.lock seed");
        }
        for s in hook_state_seeds() {
            assert!(hook_state::State::decode(std::str::from_utf8(&s).unwrap()).is_some());
        }
        let seeds = env_record_seeds();
        env_record::EnvRecord::from_json(std::str::from_utf8(&seeds[0][1..]).unwrap())
            .expect("JSON seed");
        postcard::from_bytes::<env_record::EnvRecord>(&seeds[1][1..]).expect("postcard seed");
    }

    /// Every target takes every one of its seeds without a finding.
    #[test]
    fn every_target_runs_its_seeds() {
        let dir = tempfile_dir();
        let scratch = Scratch { dir: dir.clone() };
        for t in TARGETS {
            for s in (t.seeds)() {
                let run = t.run;
                let sc = Scratch {
                    dir: scratch.dir.clone(),
                };
                envy_eval::run_with_stack(move || run(&s, &sc));
            }
        }
        let _ = fs_err::remove_dir_all(dir);
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("envy-fuzz-test-{}", std::process::id()));
        fs_err::create_dir_all(&d).unwrap();
        d
    }
}
