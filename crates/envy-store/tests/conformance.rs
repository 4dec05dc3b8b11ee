//! The store goldens in `../shared/conformance/store`: Nix's and snix's derivations parse and
//! print back byte for byte, give the store paths their file names state, and agree with their
//! JSON forms; hash-modulo goldens give the same hashed text and output paths; malformed NARs
//! from Nix's test suite are rejected with Nix's reasons and well-formed ones round-trip.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use envy_store::derivation::{Derivation, DerivationError, DerivationOutput, DrvHashes, OutputSet};
use envy_store::nar::{self, NarError, NullSink};
use envy_store::{ContentAddressMethod, FileIngestionMethod, Hash, StoreDir, StorePath};
use serde_json::Value;

fn shared_dir() -> PathBuf {
    match std::env::var_os("ENVY_TEST_SHARED") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

/// The store goldens, or `None` (the test skips, saying so) when `../shared` is not next to
/// this clone. scripts/test sets `ENVY_TEST_REQUIRE_SHARED` where it is, and then missing
/// data fails the test.
fn store_goldens() -> Option<PathBuf> {
    let dir = shared_dir().join("conformance/store");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("ENVY_TEST_REQUIRE_SHARED").is_none(),
        "conformance data missing at {} (ENVY_TEST_REQUIRE_SHARED is set)",
        dir.display()
    );
    // Written past the test harness's capture, so that a passing run still says it skipped.
    let why = format!(
        "SKIPPED: no store goldens at {} (../shared is not next to this clone; set ENVY_TEST_SHARED)\n",
        dir.display()
    );
    std::io::Write::write_all(&mut std::io::stderr(), why.as_bytes()).unwrap();
    None
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs_err::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == ext))
        .collect();
    out.sort();
    out
}

fn sd() -> StoreDir {
    StoreDir::nix_default()
}

/// `.drv` goldens that are not derivations, with the reason.
const NOT_DERIVATIONS: &[(&str, &str)] = &[
    (
        "ca/",
        "git symlinks to Nix's functional-test data, stored as their target text",
    ),
    (
        "ia/",
        "git symlinks to Nix's functional-test data, stored as their target text",
    ),
];

/// Derivations whose text is not in Nix's canonical order, with the reason; they must parse, and
/// their printed form must parse back to the same derivation.
const NOT_CANONICAL: &[(&str, &str)] = &[
    (
        "firefox.drv",
        "parser-benchmark input whose input hashes were blanked to `aaaa…` after sorting",
    ),
    (
        "hello.drv",
        "parser-benchmark input whose input hashes were blanked to `aaaa…` after sorting",
    ),
];

/// Byte equality, reporting the first difference briefly.
fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let at = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        let ctx = |b: &[u8]| lossy(&b[at.saturating_sub(40)..(at + 40).min(b.len())]);
        panic!(
            "{what}: differs at byte {at}: got …{}… want …{}…",
            ctx(got),
            ctx(want)
        );
    }
}

/// Goldens Nix must refuse to parse, with the error envy gives.
fn expected_parse_failure(name: &str, err: &DerivationError) -> Option<bool> {
    match name {
        "bad-ca-fixed-path.drv" => Some(matches!(err, DerivationError::FixedPathMismatch { .. })),
        "bad-old-version-dyn-deps.drv" => {
            Some(matches!(err, DerivationError::DynamicWithoutVersion { .. }))
        }
        "bad-version.drv" => Some(matches!(err, DerivationError::UnknownVersion { .. })),
        _ => None,
    }
}

fn json_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_output_set(v: &Value) -> OutputSet {
    OutputSet {
        outputs: json_strings(&v["outputs"]).into_iter().collect(),
        dynamic: v["dynamicOutputs"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, child)| (k.clone(), json_output_set(child)))
            .collect(),
    }
}

/// Compare with Nix's derivation JSON, format version 4.
fn check_json_v4(drv: &Derivation, json: &Value, what: &str) {
    assert_eq!(json["name"].as_str().unwrap(), drv.name, "{what}: name");
    assert_eq!(
        json["system"].as_str().unwrap(),
        lossy(&drv.platform),
        "{what}: system"
    );
    assert_eq!(
        json["builder"].as_str().unwrap(),
        lossy(&drv.builder),
        "{what}: builder"
    );
    let args: Vec<String> = drv.args.iter().map(|a| lossy(a)).collect();
    assert_eq!(json_strings(&json["args"]), args, "{what}: args");
    let env: BTreeMap<String, String> = drv.env.iter().map(|(k, v)| (lossy(k), lossy(v))).collect();
    let json_env: BTreeMap<String, String> = json["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(json_env, env, "{what}: env");
    let srcs: BTreeSet<String> = drv
        .input_srcs
        .iter()
        .map(|p| p.base_name().to_owned())
        .collect();
    assert_eq!(
        json_strings(&json["inputs"]["srcs"])
            .into_iter()
            .collect::<BTreeSet<_>>(),
        srcs,
        "{what}: srcs"
    );
    let drvs: BTreeMap<String, OutputSet> = drv
        .input_drvs
        .iter()
        .map(|(p, s)| (p.base_name().to_owned(), s.clone()))
        .collect();
    let json_drvs: BTreeMap<String, OutputSet> = json["inputs"]["drvs"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), json_output_set(v)))
        .collect();
    assert_eq!(json_drvs, drvs, "{what}: input drvs");
    let outputs = json["outputs"].as_object().unwrap();
    assert_eq!(
        outputs.keys().collect::<Vec<_>>(),
        drv.outputs.keys().collect::<Vec<_>>(),
        "{what}: outputs"
    );
    for (name, output) in &drv.outputs {
        let j = &outputs[name];
        let method = |m: ContentAddressMethod| match m {
            ContentAddressMethod::Text => "text",
            ContentAddressMethod::Fixed(FileIngestionMethod::Flat) => "flat",
            ContentAddressMethod::Fixed(FileIngestionMethod::Recursive) => "nar",
        };
        match output {
            DerivationOutput::InputAddressed(p) => {
                assert_eq!(j["path"].as_str().unwrap(), p.base_name())
            }
            DerivationOutput::CaFixed(ca) => {
                assert_eq!(
                    j["hash"].as_str().unwrap(),
                    ca.hash.to_sri(),
                    "{what}: {name}"
                );
                assert_eq!(j["method"].as_str().unwrap(), method(ca.method));
            }
            DerivationOutput::CaFloating { method: m, algo } => {
                assert_eq!(j["hashAlgo"].as_str().unwrap(), algo.name());
                assert_eq!(j["method"].as_str().unwrap(), method(*m));
            }
            DerivationOutput::Deferred => {
                assert_eq!(j.as_object().unwrap().len(), 0, "{what}: {name}")
            }
            DerivationOutput::Impure { .. } => assert_eq!(j["impure"], Value::Bool(true)),
        }
    }
}

/// Compare with snix's derivation JSON (Nix's older `nix show-derivation` shape).
fn check_json_snix(drv: &Derivation, drv_path: &str, json: &Value) {
    // Some files wrap the derivation in an object keyed by its path.
    let j = if json.get(drv_path).is_some() {
        &json[drv_path]
    } else {
        json
    };
    assert_eq!(j["system"].as_str().unwrap(), lossy(&drv.platform));
    assert_eq!(j["builder"].as_str().unwrap(), lossy(&drv.builder));
    assert_eq!(
        json_strings(&j["args"]),
        drv.args.iter().map(|a| lossy(a)).collect::<Vec<_>>()
    );
    let env: BTreeMap<String, String> = drv.env.iter().map(|(k, v)| (lossy(k), lossy(v))).collect();
    let json_env: BTreeMap<String, String> = j["env"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(json_env, env, "{drv_path}: env");
    let srcs: Vec<String> = drv.input_srcs.iter().map(|p| sd().print(p)).collect();
    assert_eq!(json_strings(&j["inputSrcs"]), srcs);
    for (p, set) in &drv.input_drvs {
        let wanted: BTreeSet<String> = json_strings(&j["inputDrvs"][sd().print(p)])
            .into_iter()
            .collect();
        assert_eq!(wanted, set.outputs);
    }
    for (name, output) in &drv.outputs {
        let o = &j["outputs"][name];
        let path = output.path(&sd(), &drv.name, name).unwrap().unwrap();
        assert_eq!(o["path"].as_str().unwrap(), sd().print(&path));
        if let DerivationOutput::CaFixed(ca) = output {
            assert_eq!(
                o["hashAlgo"].as_str().unwrap(),
                ca.method.print_with_algo(ca.hash.algo())
            );
            assert_eq!(o["hash"].as_str().unwrap(), ca.hash.to_hex());
        }
    }
}

fn read_json(path: &Path) -> Option<Value> {
    // snix's latin1/cp1252 JSON files hold the raw non-UTF-8 bytes; compare them lossily.
    path.is_file()
        .then(|| serde_json::from_str(&lossy(&fs_err::read(path).unwrap())).unwrap())
}

#[test]
fn nix_derivations_round_trip() {
    let Some(goldens) = store_goldens() else {
        return;
    };
    let root = goldens.join("drv-nix");
    let mut checked = 0;
    for dir in [
        root.clone(),
        root.join("hash-modulo"),
        root.join("ca"),
        root.join("ia"),
    ] {
        for file in files(&dir, "drv") {
            let rel = file
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if let Some((_, reason)) = NOT_DERIVATIONS
                .iter()
                .find(|(prefix, _)| rel.starts_with(prefix))
            {
                eprintln!("skipping {rel}: {reason}");
                continue;
            }
            if rel.ends_with("-modulo.drv") {
                // Not derivations (inputs are bare hashes): `hash_modulo_goldens` checks them.
                continue;
            }
            let text = fs_err::read(&file).unwrap();
            let json = read_json(&file.with_extension("json"));
            let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
            let name = json
                .as_ref()
                .and_then(|j| j["name"].as_str().map(str::to_owned))
                .unwrap_or(stem);
            let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
            match Derivation::parse(&sd(), &text, &name) {
                Err(err) => {
                    let ok = expected_parse_failure(&file_name, &err);
                    assert_eq!(ok, Some(true), "{rel}: unexpected parse error: {err}");
                }
                Ok(drv) => {
                    assert!(
                        expected_parse_failure(
                            &file_name,
                            &DerivationError::NoOutputs {
                                name: String::new()
                            }
                        )
                        .is_none(),
                        "{rel} must not parse"
                    );
                    let printed = drv.to_aterm(&sd());
                    if let Some((_, reason)) = NOT_CANONICAL.iter().find(|(f, _)| *f == rel) {
                        eprintln!("{rel}: comparing parsed forms only: {reason}");
                        assert_eq!(
                            Derivation::parse(&sd(), &printed, &name).unwrap(),
                            drv,
                            "{rel}"
                        );
                    } else {
                        assert_same(&printed, &text, &rel);
                    }
                    if let Some(json) = &json {
                        check_json_v4(&drv, json, &rel);
                    }
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} derivations checked");
}

#[test]
fn modulo_goldens_are_not_derivations() {
    // Their input "paths" are hashes: the parser refuses them as store paths.
    let Some(goldens) = store_goldens() else {
        return;
    };
    let file = goldens.join("drv-nix/hash-modulo/parent-split-modulo.drv");
    let err = Derivation::parse(&sd(), &fs_err::read(file).unwrap(), "parent").unwrap_err();
    assert!(matches!(err, DerivationError::Syntax { .. }), "{err}");
}

/// Derivations of a directory indexed by the `.drv` path they compute.
fn load_dir(dir: &Path, name_of: impl Fn(&Path) -> String) -> HashMap<StorePath, Derivation> {
    let mut out = HashMap::new();
    for file in files(dir, "drv") {
        if file.to_string_lossy().ends_with("-modulo.drv") {
            continue;
        }
        let drv = Derivation::parse(&sd(), &fs_err::read(&file).unwrap(), &name_of(&file)).unwrap();
        out.insert(drv.drv_path(&sd()).unwrap(), drv);
    }
    out
}

#[test]
fn hash_modulo_goldens() {
    let Some(goldens) = store_goldens() else {
        return;
    };
    let dir = goldens.join("drv-nix/hash-modulo");
    let name_of = |f: &Path| {
        read_json(&f.with_extension("json")).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let all = load_dir(&dir, name_of);
    let by_stem = |stem: &str| {
        let drv = Derivation::parse(
            &sd(),
            &fs_err::read(dir.join(format!("{stem}.drv"))).unwrap(),
            &name_of(&dir.join(format!("{stem}.json"))),
        )
        .unwrap();
        let path = drv.drv_path(&sd()).unwrap();
        (drv, path)
    };
    // The parents name the intermediates by the paths envy computes for them.
    let (parent_split, _) = by_stem("parent-split");
    let (first, first_path) = by_stem("intermediate-first");
    let (_, second_path) = by_stem("intermediate-second");
    let split_inputs: BTreeSet<&StorePath> = parent_split.input_drvs.keys().collect();
    assert_eq!(split_inputs, BTreeSet::from([&first_path, &second_path]));
    let (_, source_path) = by_stem("source-first");
    assert_eq!(
        first.input_drvs.keys().collect::<Vec<_>>(),
        vec![&source_path]
    );

    let mut load = |p: &StorePath| {
        all.get(p).cloned().ok_or_else(|| DerivationError::Load {
            drv: p.to_string(),
            source: "not in the golden set".into(),
        })
    };
    for stem in [
        "intermediate-first",
        "intermediate-second",
        "parent-split",
        "parent-joined",
    ] {
        let (drv, _) = by_stem(stem);
        let mut hashes = DrvHashes::new();
        let (inputs, _) = hashes.modulo_inputs(&sd(), &drv, &mut load).unwrap();
        let modulo = drv.to_aterm_modulo(&sd(), true, &inputs);
        let expected = fs_err::read(dir.join(format!("{stem}-modulo.drv"))).unwrap();
        assert_same(&modulo, &expected, &format!("{stem}-modulo.drv"));

        // Nix's test fills the output paths in before the environment names them (unlike
        // `derivationStrict`, which blanks them first): hashing the masked text without those
        // variables gives the stated paths.
        if let Some(DerivationOutput::InputAddressed(_)) = drv.outputs.values().next() {
            let mut bare = drv.clone();
            for key in drv.outputs.keys() {
                bare.env.remove(key.as_bytes());
            }
            let hash = Hash::sha256(&bare.to_aterm_modulo(&sd(), true, &inputs));
            for (output, o) in &drv.outputs {
                let path = sd().make_output_path(output, &hash, &drv.name).unwrap();
                assert_eq!(
                    o,
                    &DerivationOutput::InputAddressed(path),
                    "{stem}: output `{output}`"
                );
            }
        }
    }
}

#[test]
fn snix_derivations_name_their_own_paths() {
    let Some(goldens) = store_goldens() else {
        return;
    };
    let dir = goldens.join("drv-snix");
    let name_of = |f: &Path| {
        let base = f.file_name().unwrap().to_string_lossy().into_owned();
        base[33..base.len() - 4].to_owned()
    };
    let all = load_dir(&dir, name_of);
    let mut load = |p: &StorePath| {
        all.get(p).cloned().ok_or_else(|| DerivationError::Load {
            drv: p.to_string(),
            source: "not in the golden set".into(),
        })
    };
    let mut checked = 0;
    for file in files(&dir, "drv") {
        let base = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs_err::read(&file).unwrap();
        let drv = Derivation::parse(&sd(), &text, &name_of(&file)).unwrap();
        assert_same(&drv.to_aterm(&sd()), &text, &base);
        assert_eq!(
            drv.drv_path(&sd()).unwrap().base_name(),
            base,
            "{base}: drv path"
        );
        let json = read_json(&PathBuf::from(format!("{}.json", file.display()))).unwrap();
        check_json_snix(&drv, &format!("/nix/store/{base}"), &json);

        // derivationStrict's computation from the masked derivation gives the same outputs.
        let mut fresh = drv.clone();
        if !drv.is_fixed_output() {
            for output in fresh.outputs.values_mut() {
                *output = DerivationOutput::Deferred;
            }
        }
        let mut hashes = DrvHashes::new();
        let drv_path = fresh.finalize(&sd(), &mut hashes, &mut load).unwrap();
        assert_eq!(fresh, drv, "{base}: recomputed outputs");
        assert_eq!(drv_path.base_name(), base);
        checked += 1;
    }
    assert_eq!(checked, 10);
}

#[test]
fn malformed_nars_are_rejected() {
    let Some(goldens) = store_goldens() else {
        return;
    };
    let dir = goldens.join("nars-nix");
    // (file, check on the error) — Nix's own expectations from its archive tests.
    type Check = fn(&NarError) -> bool;
    let cases: &[(&str, Check)] = &[
        (
            "invalid-tag-instead-of-contents",
            |e| matches!(e, NarError::ExpectedTag { expected, got } if expected == "contents" && got == "AAAAAAAA"),
        ),
        (
            "nul-character",
            |e| matches!(e, NarError::InvalidName { name } if name.starts_with('f')),
        ),
        (
            "dot",
            |e| matches!(e, NarError::InvalidName { name } if name == "."),
        ),
        (
            "dotdot",
            |e| matches!(e, NarError::InvalidName { name } if name == ".."),
        ),
        (
            "slash",
            |e| matches!(e, NarError::InvalidName { name } if name == "x/y"),
        ),
        (
            "empty",
            |e| matches!(e, NarError::InvalidName { name } if name.is_empty()),
        ),
        (
            "executable-after-contents",
            |e| matches!(e, NarError::ExpectedTag { expected, got } if expected == ")" && got == "executable"),
        ),
        (
            "name-after-node",
            |e| matches!(e, NarError::MissingTag { expected } if expected == "name"),
        ),
        ("regular-one-byte-non-zero-padding", |e| {
            matches!(e, NarError::NonZeroPadding)
        }),
        ("regular-truncated-large-contents", |e| {
            matches!(e, NarError::Truncated)
        }),
        ("regular-truncated-padding", |e| {
            matches!(e, NarError::Truncated)
        }),
    ];
    for (name, check) in cases {
        let bytes = fs_err::read(dir.join(format!("{name}.nar"))).unwrap();
        let err = nar::parse(bytes.as_slice(), &mut NullSink).unwrap_err();
        assert!(check(&err), "{name}: wrong error: {err}");
        // Unpacking refuses them as well, and leaves nothing half-named behind the error.
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            nar::restore(bytes.as_slice(), &tmp.path().join("out")).is_err(),
            "{name}"
        );
    }
    // The one well-formed archive among them parses to its end, even with bytes after it.
    let good = fs_err::read(dir.join("regular-one-byte-zero-padding.nar")).unwrap();
    let mut with_trailer = good.clone();
    with_trailer.extend_from_slice(b"sentinel");
    let mut reader = with_trailer.as_slice();
    nar::parse(&mut reader, &mut NullSink).unwrap();
    assert_eq!(reader, b"sentinel");
    // Every file in the directory is covered.
    assert_eq!(files(&dir, "nar").len(), cases.len() + 1);
}

#[test]
fn well_formed_nars_round_trip_through_the_file_system() {
    let Some(goldens) = store_goldens() else {
        return;
    };
    let dir = goldens.join("nars-snix");
    for file in files(&dir, "nar") {
        let bytes = fs_err::read(&file).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        nar::restore(bytes.as_slice(), &out).unwrap();
        let mut again = Vec::new();
        nar::dump_path(&out, &mut again).unwrap();
        assert_eq!(again, bytes, "{}", file.display());
    }
}
