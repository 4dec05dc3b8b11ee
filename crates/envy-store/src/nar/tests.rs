use std::os::unix::fs::{PermissionsExt, symlink};

use super::*;

fn tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    fs_err::create_dir_all(root.join("sub/deeper")).unwrap();
    fs_err::write(root.join("a.txt"), b"hello\n").unwrap();
    fs_err::write(root.join("sub/exe"), b"#!/bin/sh\necho hi\n").unwrap();
    fs_err::set_permissions(root.join("sub/exe"), std::fs::Permissions::from_mode(0o755)).unwrap();
    fs_err::write(root.join("sub/deeper/empty"), b"").unwrap();
    fs_err::write(root.join("B"), vec![7u8; 100_003]).unwrap();
    symlink("a.txt", root.join("link")).unwrap();
    symlink("/nonexistent/target", root.join("dangling")).unwrap();
    dir
}

fn dump(path: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    dump_path(path, &mut out).unwrap();
    out
}

#[test]
fn dump_parse_restore_round_trip() {
    let dir = tree();
    let nar = dump(&dir.path().join("root"));
    parse(nar.as_slice(), &mut NullSink).unwrap();
    let dest = dir.path().join("copy");
    restore(nar.as_slice(), &dest).unwrap();
    assert!(dump(&dest) == nar);
    let mode = fs_err::metadata(dest.join("sub/exe"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(mode & 0o100, 0);
    assert_eq!(
        fs_err::read_link(dest.join("dangling")).unwrap(),
        std::path::Path::new("/nonexistent/target")
    );
    let (hash, size) = nar_hash_path(&dest).unwrap();
    assert_eq!(size, nar.len() as u64);
    assert_eq!(hash, crate::hash::Hash::sha256(&nar));
}

#[test]
fn single_file_matches_dump_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    fs_err::write(&file, b"some text").unwrap();
    let mut expected = Vec::new();
    dump_bytes(b"some text", false, &mut expected).unwrap();
    assert!(dump(&file) == expected);
}

#[test]
fn restore_refuses_existing_destination() {
    let dir = tree();
    let nar = dump(&dir.path().join("root"));
    assert!(matches!(
        restore(nar.as_slice(), &dir.path().join("root")),
        Err(NarError::Exists { .. })
    ));
}

fn entries(names: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for tag in [NAR_MAGIC, "(", "type", "directory"] {
        write_str(&mut out, tag.as_bytes()).unwrap();
    }
    for name in names {
        for tag in ["entry", "(", "name"] {
            write_str(&mut out, tag.as_bytes()).unwrap();
        }
        write_str(&mut out, name).unwrap();
        for tag in ["node", "(", "type", "regular", "contents", "", ")", ")"] {
            write_str(&mut out, tag.as_bytes()).unwrap();
        }
    }
    write_str(&mut out, b")").unwrap();
    out
}

#[test]
fn rejects_unsorted_and_duplicate_entries() {
    parse(entries(&[b"a", b"b"]).as_slice(), &mut NullSink).unwrap();
    assert!(matches!(
        parse(entries(&[b"b", b"a"]).as_slice(), &mut NullSink),
        Err(NarError::NotSorted { .. })
    ));
    assert!(matches!(
        parse(entries(&[b"a", b"a"]).as_slice(), &mut NullSink),
        Err(NarError::NotSorted { .. })
    ));
}

#[test]
fn rejects_bad_magic_and_truncation() {
    assert!(matches!(
        parse(&b"not a nar at all"[..], &mut NullSink),
        Err(NarError::BadMagic)
    ));
    let nar = entries(&[b"a"]);
    for cut in [0, 7, 20, nar.len() - 1] {
        assert!(parse(&nar[..cut], &mut NullSink).is_err(), "cut at {cut}");
    }
}

#[test]
fn filter_leaves_out_entries_and_their_subtrees() {
    let dir = tree();
    let root = dir.path().join("root");
    let mut filtered = Vec::new();
    let mut seen = Vec::new();
    dump_path_filtered(&root, &mut filtered, &mut |p, meta| {
        seen.push(p.strip_prefix(&root).unwrap().to_owned());
        !(p.ends_with("B") || meta.is_dir() && p.ends_with("sub"))
    })
    .unwrap();
    // Nothing below a rejected directory is offered.
    assert!(
        seen.iter()
            .all(|p| !p.to_string_lossy().starts_with("sub/")),
        "{seen:?}"
    );
    assert!(seen.iter().any(|p| p.as_os_str() == "sub"), "{seen:?}");
    fs_err::remove_dir_all(root.join("sub")).unwrap();
    fs_err::remove_file(root.join("B")).unwrap();
    assert!(filtered == dump(&root));
}

#[test]
fn dump_and_copy_recreates_the_tree() {
    let dir = tree();
    let root = dir.path().join("root");
    let copy = dir.path().join("copy");
    let mut nar = Vec::new();
    dump_and_copy(&root, &copy, &mut nar, None).unwrap();
    assert!(nar == dump(&root));
    assert!(dump(&copy) == nar);
}
