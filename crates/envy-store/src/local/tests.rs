use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

use super::*;
use crate::derivation::DerivationOutput;

struct TestStore {
    dir: tempfile::TempDir,
    store: LocalStore,
}

impl TestStore {
    fn new() -> TestStore {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(&Self::config(&dir)).unwrap();
        TestStore { dir, store }
    }

    fn config(dir: &tempfile::TempDir) -> StoreConfig {
        StoreConfig::new(dir.path().join("store"), dir.path().join("state"))
    }

    /// A second handle on the same store, as another process would have.
    fn reopen(&self) -> LocalStore {
        LocalStore::open(&Self::config(&self.dir)).unwrap()
    }

    fn src(&self, name: &str) -> PathBuf {
        let p = self.dir.path().join("src").join(name);
        fs_err::create_dir_all(p.join("sub")).unwrap();
        fs_err::write(p.join("file"), format!("contents of {name}\n")).unwrap();
        fs_err::write(p.join("sub/exe"), b"#!/bin/sh\n").unwrap();
        fs_err::set_permissions(
            p.join("sub/exe"),
            std::os::unix::fs::PermissionsExt::from_mode(0o775),
        )
        .unwrap();
        std::os::unix::fs::symlink("file", p.join("link")).unwrap();
        p
    }
}

#[test]
fn add_path_is_canonical_and_idempotent() {
    let t = TestStore::new();
    let src = t.src("tree");
    let info = t
        .store
        .add_path(&src, "tree", FileIngestionMethod::Recursive, None)
        .unwrap();
    let (hash, size) = nar::nar_hash_path(&src).unwrap();
    assert_eq!((info.nar_hash, info.nar_size), (hash, size));
    let expected = t
        .store
        .store_dir()
        .make_fixed_output_path("tree", FileIngestionMethod::Recursive, &hash, [], false)
        .unwrap();
    assert_eq!(info.path, expected);
    assert!(t.store.is_valid(&info.path).unwrap());
    let real = t.store.real_path(&info.path);
    for (rel, mode) in [
        ("", 0o555),
        ("file", 0o444),
        ("sub", 0o555),
        ("sub/exe", 0o555),
    ] {
        let meta = fs_err::symlink_metadata(real.join(rel)).unwrap();
        assert_eq!(meta.mode() & 0o7777, mode, "{rel}");
        assert_eq!(meta.mtime(), 1, "{rel}");
    }
    assert_eq!(nar::nar_hash_path(&real).unwrap().0, hash);
    // Adding again changes nothing, and the stored info is what was returned.
    let again = t
        .store
        .add_path(&src, "tree", FileIngestionMethod::Recursive, None)
        .unwrap();
    assert_eq!(again, info);
    assert_eq!(t.store.path_info(&info.path).unwrap(), info);
    // No temporaries are left in the store directory.
    let names: Vec<String> = fs_err::read_dir(t.store.store_dir().as_path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn flat_and_text_paths() {
    let t = TestStore::new();
    let file = t.dir.path().join("f.txt");
    fs_err::write(&file, b"flat\n").unwrap();
    let info = t
        .store
        .add_path(&file, "f.txt", FileIngestionMethod::Flat, None)
        .unwrap();
    let hash = Hash::sha256(b"flat\n");
    assert_eq!(
        info.path,
        t.store
            .store_dir()
            .make_fixed_output_path("f.txt", FileIngestionMethod::Flat, &hash, [], false)
            .unwrap()
    );
    assert_eq!(info.ca.unwrap().to_string(), format!("fixed:{hash}"));

    let a = t.store.add_text("a", b"hello", &BTreeSet::new()).unwrap();
    let text = format!("see {}", t.store.store_dir().print(&a));
    let b = t
        .store
        .add_text("b", text.as_bytes(), &BTreeSet::from([a.clone()]))
        .unwrap();
    assert_eq!(
        b,
        t.store
            .store_dir()
            .text_path("b", text.as_bytes(), [&a])
            .unwrap()
    );
    assert_eq!(
        t.store.path_info(&b).unwrap().references,
        BTreeSet::from([a.clone()])
    );
    assert_eq!(
        t.store.query_referrers(&a).unwrap(),
        BTreeSet::from([b.clone()])
    );
    assert_eq!(
        t.store.closure([&b]).unwrap(),
        BTreeSet::from([a.clone(), b.clone()])
    );
    let order: Vec<StorePath> = t
        .store
        .topo_closure([&b])
        .unwrap()
        .into_iter()
        .map(|i| i.path)
        .collect();
    assert_eq!(order, vec![a.clone(), b.clone()]);
    assert_eq!(
        t.store.query_path_from_hash_part(a.hash_part()).unwrap(),
        Some(a.clone())
    );
    assert_eq!(
        t.store
            .query_path_from_hash_part("00000000000000000000000000000000")
            .unwrap(),
        None
    );

    // A reference that is not valid is refused.
    let ghost = StorePath::from_base_name("00000000000000000000000000000000-ghost").unwrap();
    assert!(matches!(
        t.store.add_text("c", b"x", &BTreeSet::from([ghost])),
        Err(StoreError::MissingReference { .. })
    ));
}

#[test]
fn derivations_round_trip_through_the_store() {
    let t = TestStore::new();
    let sd = t.store.store_dir().clone();
    let mut drv = Derivation {
        name: "hello".into(),
        platform: b"x86_64-linux".to_vec(),
        builder: b"/bin/sh".to_vec(),
        ..Derivation::default()
    };
    drv.outputs.insert("out".into(), DerivationOutput::Deferred);
    drv.env.insert(b"name".to_vec(), b"hello".to_vec());
    let mut hashes = crate::derivation::DrvHashes::new();
    let drv_path = drv
        .finalize(&sd, &mut hashes, &mut |_| unreachable!())
        .unwrap();
    assert_eq!(t.store.write_derivation(&drv).unwrap(), drv_path);
    assert_eq!(t.store.read_derivation(&drv_path).unwrap(), drv);
    let outputs = t.store.query_derivation_outputs(&drv_path).unwrap();
    assert_eq!(
        outputs["out"],
        drv.output_paths(&sd).unwrap()["out"].clone().unwrap()
    );
}

#[test]
fn import_nar_checks_hash_and_size() {
    let t = TestStore::new();
    let src = t.src("imp");
    let mut nar_bytes = Vec::new();
    nar::dump_path(&src, &mut nar_bytes).unwrap();
    let hash = Hash::sha256(&nar_bytes);
    let path = t
        .store
        .store_dir()
        .make_fixed_output_path("imp", FileIngestionMethod::Recursive, &hash, [], false)
        .unwrap();
    let info = ValidPathInfo::new(path.clone(), hash, nar_bytes.len() as u64);
    let mut wrong = info.clone();
    wrong.nar_hash = Hash::sha256(b"something else");
    assert!(matches!(
        t.store.import_nar(&wrong, nar_bytes.as_slice()),
        Err(StoreError::HashMismatch { .. })
    ));
    assert!(!t.store.is_valid(&path).unwrap());
    assert!(!t.store.real_path(&path).exists());
    t.store.import_nar(&info, nar_bytes.as_slice()).unwrap();
    assert!(t.store.is_valid(&path).unwrap());
    // Unpacked directly in canonical form.
    let real = t.store.real_path(&path);
    for (rel, mode) in [
        ("", 0o555),
        ("file", 0o444),
        ("sub", 0o555),
        ("sub/exe", 0o555),
    ] {
        let meta = fs_err::symlink_metadata(real.join(rel)).unwrap();
        assert_eq!((meta.mode() & 0o7777, meta.mtime()), (mode, 1), "{rel}");
    }
    assert_eq!(
        fs_err::symlink_metadata(real.join("link")).unwrap().mtime(),
        1
    );
    let mut dumped = Vec::new();
    t.store.dump(&path, &mut dumped).unwrap();
    assert!(dumped == nar_bytes);
}

#[test]
fn leftovers_of_interrupted_work_are_replaced_and_collected() {
    let t = TestStore::new();
    let src = t.src("crash");
    let (hash, _) = nar::nar_hash_path(&src).unwrap();
    let path = t
        .store
        .store_dir()
        .make_fixed_output_path("crash", FileIngestionMethod::Recursive, &hash, [], false)
        .unwrap();
    // A half-written path at the final place, never registered (a kill -9 before registration).
    let real = t.store.real_path(&path);
    fs_err::create_dir_all(&real).unwrap();
    fs_err::write(real.join("partial"), b"garbage").unwrap();
    assert!(!t.store.is_valid(&path).unwrap());
    let info = t
        .store
        .add_path(&src, "crash", FileIngestionMethod::Recursive, None)
        .unwrap();
    assert_eq!(info.path, path);
    assert!(!real.join("partial").exists());
    assert_eq!(nar::nar_hash_path(&real).unwrap().0, hash);

    // An unregistered path and a temporary of a dead process: gc removes both.
    let stray = StorePath::from_base_name("0000000000000000000000000000000a-stray").unwrap();
    fs_err::create_dir_all(t.store.real_path(&stray).join("x")).unwrap();
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let tmp = t
        .store
        .store_dir()
        .as_path()
        .join(format!(".tmp-{dead_pid}-7"));
    fs_err::create_dir_all(&tmp).unwrap();
    let report = t.store.collect_garbage(&GcOptions::default()).unwrap();
    assert_eq!(
        report.leftovers,
        vec![format!(".tmp-{dead_pid}-7"), stray.base_name().to_owned()]
    );
    assert!(!tmp.exists() && !t.store.real_path(&stray).exists());
    // The valid path, a temporary root of this process, is kept.
    assert!(report.deleted.is_empty());
    assert!(t.store.is_valid(&path).unwrap());
}

#[test]
fn gc_keeps_roots_and_their_closures() {
    let t = TestStore::new();
    let (a, b, c, d);
    {
        // Paths made by a process that has since exited (its temporary roots are gone).
        let maker = t.reopen();
        a = maker.add_text("a", b"a", &BTreeSet::new()).unwrap();
        b = maker
            .add_text("b", b"b", &BTreeSet::from([a.clone()]))
            .unwrap();
        c = maker.add_text("c", b"c", &BTreeSet::new()).unwrap();
        d = maker
            .add_text("d", b"d", &BTreeSet::from([c.clone()]))
            .unwrap();
        let link = t.dir.path().join("result");
        maker.add_root(&link, &b).unwrap();
    }
    let gc = t.reopen();
    let roots = gc.find_roots().unwrap();
    assert!(roots.contains_key(&b));
    let dry = gc
        .collect_garbage(&GcOptions {
            dry_run: true,
            ..GcOptions::default()
        })
        .unwrap();
    assert_eq!(dry.deleted, {
        let mut v = vec![c.clone(), d.clone()];
        v.sort();
        v
    });
    assert!(dry.bytes_freed >= 2);
    assert!(gc.is_valid(&c).unwrap() && gc.real_path(&c).exists());

    // A path another live process uses (a temporary root of it) is kept with its closure.
    let user = t.reopen();
    user.add_temp_root(&d).unwrap();
    let other = t.reopen();
    let report = other.collect_garbage(&GcOptions::default()).unwrap();
    assert!(report.deleted.is_empty(), "{:?}", report.deleted);
    drop(user);

    let report = other.collect_garbage(&GcOptions::default()).unwrap();
    assert_eq!(report.deleted.len(), 2);
    for p in [&c, &d] {
        assert!(!other.is_valid(p).unwrap());
        assert!(!other.real_path(p).exists());
    }
    for p in [&a, &b] {
        assert!(other.is_valid(p).unwrap());
    }
    // Removing the root's link frees the rest.
    fs_err::remove_file(t.dir.path().join("result")).unwrap();
    let report = other.collect_garbage(&GcOptions::default()).unwrap();
    assert_eq!(
        report.deleted.iter().collect::<BTreeSet<_>>(),
        BTreeSet::from([&a, &b])
    );
    assert!(other.all_valid_paths().unwrap().is_empty());
}

#[test]
fn refuses_foreign_directories() {
    let dir = tempfile::tempdir().unwrap();
    let store_dir = dir.path().join("store");
    fs_err::create_dir_all(&store_dir).unwrap();
    fs_err::write(store_dir.join("hxcnl7nh8wbfiwfzkfnac84cgnf766kc-triv"), b"").unwrap();
    let err = LocalStore::open(&StoreConfig::new(&store_dir, dir.path().join("state")))
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::NotEnvyStore { .. }), "{err}");
    // The same state directory cannot serve two stores.
    let state = dir.path().join("state2");
    LocalStore::open(&StoreConfig::new(dir.path().join("s1"), &state)).unwrap();
    let err = LocalStore::open(&StoreConfig::new(dir.path().join("s2"), &state))
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::WrongStoreDir { .. }), "{err}");
}

#[test]
fn concurrent_adds_of_one_path() {
    let t = TestStore::new();
    let src = t.src("conc");
    let stores: Vec<LocalStore> = (0..4).map(|_| t.reopen()).collect();
    let infos: Vec<ValidPathInfo> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .map(|st| {
                s.spawn(|| {
                    st.add_path(&src, "conc", FileIngestionMethod::Recursive, None)
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(
        infos
            .windows(2)
            .all(|w| w[0].path == w[1].path && w[0].nar_hash == w[1].nar_hash)
    );
    let report = t.store.verify(true, &mut |_, _| {}).unwrap();
    assert!(
        report.is_ok() && report.checked == 1 && report.unregistered.is_empty(),
        "{report:?}"
    );
}

#[test]
fn verify_finds_missing_and_changed_paths() {
    let t = TestStore::new();
    let a = t.store.add_text("a", b"a", &BTreeSet::new()).unwrap();
    let b = t.store.add_text("b", b"b", &BTreeSet::new()).unwrap();
    let real = t.store.real_path(&a);
    fs_err::set_permissions(&real, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    fs_err::write(&real, b"tampered").unwrap();
    delete_path(&t.store.real_path(&b)).unwrap();
    let report = t.store.verify(true, &mut |_, _| {}).unwrap();
    assert_eq!(report.missing, vec![b]);
    assert_eq!(report.corrupt.len(), 1);
    assert_eq!(report.corrupt[0].0, a);
}

// Regression: recording a derivation's outputs read, then wrote, in a deferred transaction; in
// WAL mode, a write committed by another connection in between made SQLite fail the upgrade
// at once with "database is locked" (no busy wait), so concurrent evaluations writing `.drv`s
// failed now and then.
#[test]
fn concurrent_derivation_writes() {
    let t = TestStore::new();
    let sd = t.store.store_dir().clone();
    let stores: Vec<LocalStore> = (0..4).map(|_| t.reopen()).collect();
    std::thread::scope(|s| {
        for (n, st) in stores.iter().enumerate() {
            let sd = sd.clone();
            s.spawn(move || {
                for i in 0..150 {
                    let name = format!("d{n}-{i}");
                    let mut drv = Derivation {
                        name: name.clone(),
                        platform: b"x86_64-linux".to_vec(),
                        builder: b"/bin/sh".to_vec(),
                        ..Derivation::default()
                    };
                    drv.outputs.insert("out".into(), DerivationOutput::Deferred);
                    drv.env.insert(b"name".to_vec(), name.into_bytes());
                    let mut hashes = crate::derivation::DrvHashes::new();
                    let drv_path = drv
                        .finalize(&sd, &mut hashes, &mut |_| unreachable!())
                        .unwrap();
                    assert_eq!(st.write_derivation(&drv).unwrap(), drv_path);
                }
            });
        }
    });
    assert_eq!(t.store.all_valid_paths().unwrap().len(), 600);
}
