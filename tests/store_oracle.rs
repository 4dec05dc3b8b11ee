//! Oracle tests of envy-store's pure layer against real Nix 2.8 with a private store dir:
//! `.drv` text, drvPath and outPaths of derivations built the way `derivationStrict` builds
//! them (multiple outputs, fixed outputs of every kind, dependencies, `toFile` with references,
//! unicode and non-UTF-8 values, escapes), NAR bytes against `nix-store --dump`, NAR hashes
//! against `nix-hash`, and `nix-store --add` paths.

mod common;
#[path = "common/store.rs"]
mod store_common;

use std::collections::{BTreeMap, BTreeSet};

use envy_store::derivation::{Derivation, DerivationError, DerivationOutput, DrvHashes, OutputSet};
use envy_store::{
    ContentAddress, ContentAddressMethod, FileIngestionMethod, Hash, HashAlgo, StoreDir, StorePath,
    nar,
};
use store_common::NixEnv;

/// A Nix expression and the same derivation built by hand.
struct Case {
    expr: String,
    drv: Derivation,
}

/// What `derivation { name; system; builder; args; … }` puts into a derivation: every attribute
/// but `args` into the environment; outputs as requested.
struct Spec<'a> {
    name: &'a str,
    args: Vec<Vec<u8>>,
    env: Vec<(&'a str, Vec<u8>)>,
    outputs: Option<Vec<&'a str>>,
    fixed: Option<(FileIngestionMethod, Hash)>,
    input_drvs: Vec<(StorePath, Vec<&'a str>)>,
    input_srcs: Vec<StorePath>,
}

impl<'a> Spec<'a> {
    fn new(name: &'a str) -> Spec<'a> {
        Spec {
            name,
            args: vec![],
            env: vec![],
            outputs: None,
            fixed: None,
            input_drvs: vec![],
            input_srcs: vec![],
        }
    }

    fn build(self) -> Derivation {
        let mut drv = Derivation {
            name: self.name.to_owned(),
            platform: b"x86_64-linux".to_vec(),
            builder: b"/bin/sh".to_vec(),
            args: self.args,
            ..Derivation::default()
        };
        for (k, v) in [
            ("name", self.name.as_bytes().to_vec()),
            ("system", b"x86_64-linux".to_vec()),
            ("builder", b"/bin/sh".to_vec()),
        ] {
            drv.env.insert(k.as_bytes().to_vec(), v);
        }
        for (k, v) in self.env {
            drv.env.insert(k.as_bytes().to_vec(), v);
        }
        if let Some(outputs) = &self.outputs {
            drv.env
                .insert(b"outputs".to_vec(), outputs.join(" ").into_bytes());
        }
        match self.fixed {
            Some((method, hash)) => {
                let ca = ContentAddress {
                    method: ContentAddressMethod::Fixed(method),
                    hash,
                };
                drv.outputs
                    .insert("out".to_owned(), DerivationOutput::CaFixed(ca));
            }
            None => {
                for o in self.outputs.unwrap_or_else(|| vec!["out"]) {
                    drv.outputs.insert(o.to_owned(), DerivationOutput::Deferred);
                }
            }
        }
        for (path, outputs) in self.input_drvs {
            drv.input_drvs.insert(path, OutputSet::of(outputs));
        }
        drv.input_srcs.extend(self.input_srcs);
        drv
    }
}

fn no_load(p: &StorePath) -> Result<Derivation, DerivationError> {
    Err(DerivationError::Load {
        drv: p.to_string(),
        source: "not memoised".into(),
    })
}

/// Instantiate `expr` with Nix; compare the `.drv` file, drvPath and output paths with envy's.
fn check(
    nix: &NixEnv,
    sd: &StoreDir,
    hashes: &mut DrvHashes,
    what: &str,
    case: Case,
) -> Derivation {
    let drv_path_nix = nix.run_store("nix-instantiate", &["--expr", &case.expr]);
    let mut drv = case.drv;
    let drv_path = drv.finalize(sd, hashes, &mut no_load).unwrap();
    assert_eq!(sd.print(&drv_path), drv_path_nix, "{what}: drvPath");
    let text = fs_err::read(&drv_path_nix).unwrap();
    let ours = drv.to_aterm(sd);
    assert!(
        ours == text,
        "{what}: .drv text differs\nenvy: {}\nnix:  {}",
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&text)
    );
    // Parsing Nix's file gives the same derivation.
    assert_eq!(
        Derivation::parse(sd, &text, &drv.name).unwrap(),
        drv,
        "{what}: parse"
    );
    let outs = nix.run_store("nix-store", &["--query", "--outputs", &drv_path_nix]);
    let nix_outs: BTreeSet<&str> = outs.lines().collect();
    let ours: BTreeSet<String> = drv
        .output_paths(sd)
        .unwrap()
        .values()
        .map(|p| sd.print(p.as_ref().unwrap()))
        .collect();
    assert_eq!(
        ours.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        nix_outs,
        "{what}: outPaths"
    );
    drv
}

fn out_path(sd: &StoreDir, drv: &Derivation, output: &str) -> String {
    sd.print(drv.output_paths(sd).unwrap()[output].as_ref().unwrap())
}

#[test]
fn derivations_match_nix() {
    if !common::have_tool("nix-instantiate") {
        return;
    }
    let nix = NixEnv::new("envy-nix-");
    let sd = StoreDir::new(&nix.store_dir).unwrap();
    let mut hashes = DrvHashes::new();
    let base = r#"name = "NAME"; system = "x86_64-linux"; builder = "/bin/sh";"#;
    let attrs =
        |name: &str, rest: &str| format!("derivation {{ {} {rest} }}", base.replace("NAME", name));

    // The trivial derivation, with arguments that need escaping.
    let args: Vec<Vec<u8>> = vec![
        b"-c".to_vec(),
        b"echo \"q\" \\ back\nnew\ttab\rcr > $out".to_vec(),
    ];
    let expr = attrs(
        "triv",
        r#"args = [ "-c" "echo \"q\" \\ back\nnew\ttab\rcr > $out" ];"#,
    );
    check(
        &nix,
        &sd,
        &mut hashes,
        "trivial",
        Case {
            expr,
            drv: Spec {
                args,
                ..Spec::new("triv")
            }
            .build(),
        },
    );

    // Several outputs.
    let expr = attrs("multi", r#"outputs = [ "out" "dev" "lib" ];"#);
    let spec = Spec {
        outputs: Some(vec!["out", "dev", "lib"]),
        ..Spec::new("multi")
    };
    let multi = check(
        &nix,
        &sd,
        &mut hashes,
        "multiple outputs",
        Case {
            expr,
            drv: spec.build(),
        },
    );

    // Fixed outputs: flat and recursive, sha256, sha1, sha512 and md5, written in every form.
    let content = Hash::sha256(b"fixed contents\n");
    let fixed_cases: Vec<(&str, FileIngestionMethod, Hash, String, &str)> = vec![
        (
            "fod-flat",
            FileIngestionMethod::Flat,
            content,
            content.to_nix32(),
            "flat",
        ),
        (
            "fod-rec",
            FileIngestionMethod::Recursive,
            content,
            content.to_hex(),
            "recursive",
        ),
        (
            "fod-sha1",
            FileIngestionMethod::Recursive,
            Hash::of(HashAlgo::Sha1, b"x"),
            Hash::of(HashAlgo::Sha1, b"x").to_nix32(),
            "recursive",
        ),
        (
            "fod-sha512",
            FileIngestionMethod::Flat,
            Hash::of(HashAlgo::Sha512, b"x"),
            Hash::of(HashAlgo::Sha512, b"x").to_sri(),
            "flat",
        ),
        (
            "fod-md5",
            FileIngestionMethod::Flat,
            Hash::of(HashAlgo::Md5, b"x"),
            Hash::of(HashAlgo::Md5, b"x").to_hex(),
            "flat",
        ),
    ];
    let mut fods = BTreeMap::new();
    for (name, method, hash, written, mode) in fixed_cases {
        let algo = hash.algo().name();
        let expr = attrs(
            name,
            &format!(
                r#"outputHash = "{written}"; outputHashAlgo = "{algo}"; outputHashMode = "{mode}";"#
            ),
        );
        let env = vec![
            ("outputHash", written.into_bytes()),
            ("outputHashAlgo", algo.as_bytes().to_vec()),
            ("outputHashMode", mode.as_bytes().to_vec()),
        ];
        let spec = Spec {
            env,
            fixed: Some((method, hash)),
            ..Spec::new(name)
        };
        fods.insert(
            name,
            check(
                &nix,
                &sd,
                &mut hashes,
                name,
                Case {
                    expr,
                    drv: spec.build(),
                },
            ),
        );
    }

    // toFile, a text file referring to another, and unicode / non-UTF-8 values.
    let latin1 = nix.root.path().join("latin1.txt");
    fs_err::write(&latin1, b"caf\xe9 \xff\xfe\x01").unwrap();
    let file1 = sd
        .text_path("greeting", "hallo wêreld ✓\n".as_bytes(), [])
        .unwrap();
    let file2_text = format!("see {}\n", sd.print(&file1));
    let file2 = sd
        .text_path("pointer", file2_text.as_bytes(), [&file1])
        .unwrap();
    let expr = format!(
        r#"let f1 = builtins.toFile "greeting" "hallo wêreld ✓\n"; f2 = builtins.toFile "pointer" "see ${{f1}}\n"; in
           derivation {{ {} text = f2; uni = "ünïcødé ✓ 🌮"; raw = builtins.readFile {}; }}"#,
        base.replace("NAME", "files"),
        latin1.display()
    );
    let env = vec![
        ("text", sd.print(&file2).into_bytes()),
        ("uni", "ünïcødé ✓ 🌮".as_bytes().to_vec()),
        ("raw", b"caf\xe9 \xff\xfe\x01".to_vec()),
    ];
    let spec = Spec {
        env,
        input_srcs: vec![file2.clone()],
        ..Spec::new("files")
    };
    check(
        &nix,
        &sd,
        &mut hashes,
        "toFile and bytes",
        Case {
            expr,
            drv: spec.build(),
        },
    );
    let stored = nix.run_store(
        "nix-instantiate",
        &[
            "--eval",
            "--expr",
            r#"builtins.toFile "pointer" "see ${builtins.toFile "greeting" "hallo wêreld ✓\n"}\n""#,
        ],
    );
    assert_eq!(
        stored,
        format!("\"{}\"", sd.print(&file2)),
        "toFile with a reference"
    );

    // Dependencies: on outputs of a multi-output derivation and on fixed-output derivations
    // (whose hash modulo hides how they are made).
    let expr = format!(
        r#"let multi = {}; flat = {}; recursive = {}; in derivation {{ {} a = multi.dev; b = multi.lib; c = flat; d = recursive; }}"#,
        attrs("multi", r#"outputs = [ "out" "dev" "lib" ];"#),
        attrs(
            "fod-flat",
            &format!(
                r#"outputHash = "{}"; outputHashAlgo = "sha256"; outputHashMode = "flat";"#,
                content.to_nix32()
            )
        ),
        attrs(
            "fod-rec",
            &format!(
                r#"outputHash = "{}"; outputHashAlgo = "sha256"; outputHashMode = "recursive";"#,
                content.to_hex()
            )
        ),
        base.replace("NAME", "dependent"),
    );
    let env = vec![
        ("a", out_path(&sd, &multi, "dev").into_bytes()),
        ("b", out_path(&sd, &multi, "lib").into_bytes()),
        ("c", out_path(&sd, &fods["fod-flat"], "out").into_bytes()),
        ("d", out_path(&sd, &fods["fod-rec"], "out").into_bytes()),
    ];
    let input_drvs = vec![
        (multi.drv_path(&sd).unwrap(), vec!["dev", "lib"]),
        (fods["fod-flat"].drv_path(&sd).unwrap(), vec!["out"]),
        (fods["fod-rec"].drv_path(&sd).unwrap(), vec!["out"]),
    ];
    let spec = Spec {
        env,
        input_drvs,
        ..Spec::new("dependent")
    };
    let dependent = check(
        &nix,
        &sd,
        &mut hashes,
        "dependencies",
        Case {
            expr,
            drv: spec.build(),
        },
    );

    // A fixed-output input fetched another way gives the same dependent output path.
    let mut other_fod = fods["fod-rec"].clone();
    other_fod.builder = b"/bin/bash".to_vec();
    other_fod
        .env
        .insert(b"builder".to_vec(), b"/bin/bash".to_vec());
    let other_path = other_fod.finalize(&sd, &mut hashes, &mut no_load).unwrap();
    let mut again = dependent.clone();
    again
        .input_drvs
        .remove(&fods["fod-rec"].drv_path(&sd).unwrap());
    again.input_drvs.insert(other_path, OutputSet::of(["out"]));
    again
        .fill_in_output_paths(&sd, &mut hashes, &mut no_load)
        .unwrap();
    assert_eq!(
        again.outputs, dependent.outputs,
        "hash modulo ignores how a fixed output is made"
    );
}

#[test]
fn nar_dump_hash_and_add_match_nix() {
    if !common::have_tool("nix-store") {
        return;
    }
    let nix = NixEnv::new("envy-nix-");
    let sd = StoreDir::new(&nix.store_dir).unwrap();
    let tree = nix.root.path().join("tree");
    store_common::sample_tree(&tree);
    let single = tree.join("a.txt");
    let exe = tree.join("sub/run.sh");
    let link = tree.join("link");
    for path in [&tree, &single, &exe, &link, &tree.join("empty-dir")] {
        let what = path.display().to_string();
        let out = nix
            .command("nix-store")
            .arg("--dump")
            .arg(path)
            .output()
            .unwrap();
        store_common::assert_success(&out, "nix-store --dump");
        let mut ours = Vec::new();
        nar::dump_path(path, &mut ours).unwrap();
        assert!(
            ours == out.stdout,
            "{what}: NAR differs from nix-store --dump"
        );
        let (hash, size) = nar::nar_hash_path(path).unwrap();
        assert_eq!(size, ours.len() as u64);
        let nix_hash = nix.run(
            "nix-hash",
            &["--type", "sha256", "--base32", &path.to_string_lossy()],
        );
        assert_eq!(hash.to_nix32(), nix_hash, "{what}: nix-hash");
    }
    // `nix-store --add` of a tree and of a file: recursive sha256 source paths.
    for path in [&tree, &single] {
        let added = nix.run_store("nix-store", &["--add", &path.to_string_lossy()]);
        let (hash, _) = nar::nar_hash_path(path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        let ours = sd
            .make_fixed_output_path(name, FileIngestionMethod::Recursive, &hash, [], false)
            .unwrap();
        assert_eq!(sd.print(&ours), added, "nix-store --add {}", path.display());
    }
    // `nix-store --add-fixed sha256 FILE` (flat).
    let added = nix.run_store(
        "nix-store",
        &["--add-fixed", "sha256", &single.to_string_lossy()],
    );
    let flat = Hash::sha256(&fs_err::read(&single).unwrap());
    let ours = sd
        .make_fixed_output_path("a.txt", FileIngestionMethod::Flat, &flat, [], false)
        .unwrap();
    assert_eq!(sd.print(&ours), added, "nix-store --add-fixed");
}
