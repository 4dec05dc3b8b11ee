//! Crash safety and concurrency of envy's store: `envy store add` and `envy store copy --from`
//! killed with SIGKILL at random moments never leave a valid path that is broken (`envy store
//! verify` passes after every kill), the next run completes, and gc removes the leftovers;
//! two processes adding the same tree at once both succeed with one copy.

mod common;
#[path = "common/store.rs"]
mod store_common;

use std::path::Path;
use std::time::{Duration, Instant};

use store_common::{EnvyEnv, assert_success};

/// A tree big enough that adding it takes a while (tens of MB, many files).
fn big_tree(root: &Path) {
    for d in 0..8 {
        let dir = root.join(format!("d{d}"));
        fs_err::create_dir_all(&dir).unwrap();
        for f in 0..40 {
            let data: Vec<u8> = (0..120_000u32)
                .map(|i| (i.wrapping_mul(2654435761).wrapping_add(d * 1000 + f)) as u8)
                .collect();
            fs_err::write(dir.join(format!("f{f}")), data).unwrap();
        }
    }
    store_common::sample_tree(&root.join("misc"));
}

/// A small deterministic generator, seeded from the clock; the seed is printed.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        eprintln!("crash test seed: {seed}");
        Rng(seed | 1)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn assert_verifies(envy: &EnvyEnv, when: &str) {
    let out = envy.command().args(["store", "verify"]).output().unwrap();
    assert!(
        out.status.success(),
        "store inconsistent {when}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Kill `envy ARGS` after a random part of `full` (the time an uninterrupted run takes).
fn run_and_kill(envy: &EnvyEnv, args: &[&str], full: Duration, rng: &mut Rng) {
    let mut child = envy
        .command()
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let micros = rng.below(full.as_micros() as u64 + 1);
    std::thread::sleep(Duration::from_micros(micros));
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn killed_adds_leave_no_broken_valid_path() {
    let envy = EnvyEnv::new();
    let tree = envy.root.path().join("big");
    big_tree(&tree);
    let t = tree.to_string_lossy().into_owned();

    // How long one add takes (then remove it again).
    let start = Instant::now();
    let expected = envy.run(&["store", "add", &t]).trim().to_owned();
    let full = start.elapsed();
    envy.run(&["store", "gc"]);
    assert!(!Path::new(&expected).exists());

    let mut rng = Rng::new();
    for round in 0..10 {
        run_and_kill(&envy, &["store", "add", &t], full, &mut rng);
        assert_verifies(&envy, &format!("after kill {round}"));
    }
    // The next run completes and gives the same path; gc then clears leftovers.
    assert_eq!(envy.run(&["store", "add", &t]).trim(), expected);
    assert_verifies(&envy, "after the completing run");
    let hash = envy.run(&["store", "hash", &expected]);
    assert_eq!(hash, envy.run(&["store", "hash", &t]));
    // gc clears every leftover of the killed runs (and the unrooted path): only the marker stays.
    envy.run(&["store", "gc"]);
    let names: Vec<String> = fs_err::read_dir(&envy.store_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec![".envy-store".to_owned()], "{names:?}");
}

#[test]
fn killed_copies_from_a_cache_leave_no_broken_valid_path() {
    let writer = EnvyEnv::new();
    let tree = writer.root.path().join("big");
    big_tree(&tree);
    let path = writer
        .run(&["store", "add", &tree.to_string_lossy()])
        .trim()
        .to_owned();
    let cache = format!("file://{}", writer.root.path().join("cache").display());
    writer.run(&[
        "store",
        "copy",
        "--to",
        &cache,
        "--compression",
        "zstd",
        &path,
    ]);

    let reader = EnvyEnv::new();
    let reader = EnvyEnv {
        store_dir: writer.store_dir.clone(),
        ..reader
    };
    envy_store::local::delete_path(&writer.store_dir).unwrap();
    let start = Instant::now();
    reader.run(&["store", "copy", "--from", &cache, &path]);
    let full = start.elapsed();
    envy_store::local::delete_path(&reader.state_dir).unwrap();
    envy_store::local::delete_path(&reader.store_dir).unwrap();

    let mut rng = Rng::new();
    for round in 0..8 {
        run_and_kill(
            &reader,
            &["store", "copy", "--from", &cache, &path],
            full,
            &mut rng,
        );
        assert_verifies(&reader, &format!("after kill {round}"));
    }
    reader.run(&["store", "copy", "--from", &cache, &path]);
    assert_verifies(&reader, "after the completing run");
    assert_eq!(
        reader.run(&["store", "hash", &path]),
        reader.run(&["store", "hash", &tree.to_string_lossy()])
    );
}

#[test]
fn two_processes_add_one_tree() {
    let envy = EnvyEnv::new();
    let tree = envy.root.path().join("big");
    big_tree(&tree);
    let t = tree.to_string_lossy().into_owned();
    let children: Vec<_> = (0..2)
        .map(|_| {
            envy.command()
                .args(["store", "add", &t])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    for out in &outputs {
        assert_success(out, "envy store add (concurrent)");
    }
    assert_eq!(outputs[0].stdout, outputs[1].stdout);
    assert_verifies(&envy, "after concurrent adds");
    let stored: Vec<String> = fs_err::read_dir(&envy.store_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with('.'))
        .collect();
    assert_eq!(stored.len(), 1, "{stored:?}");
}
