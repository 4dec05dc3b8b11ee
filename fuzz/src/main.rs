//! A mutation fuzzer for envy's decoders and evaluator that runs on stable Rust.
//!
//! This is not coverage-guided: cargo-fuzz needs a nightly compiler, and AFL++ (afl.rs) is
//! not installed here. It is a seeded random-mutation driver: for one target it takes a
//! corpus (files from the given directories that the target reads, plus seeds it makes
//! in-process, so it runs without `../shared`), and for as long as it is told it picks one,
//! mutates it (byte flips, deletions, duplications and splices, and inserts from a
//! dictionary of the constructs that once hung or crashed envy: deep nesting, `\r`, `1e400`,
//! huge sizes) and runs it through the target (see `targets.rs`; `--list` names them).
//!
//! An error is a result; a panic (a failed round trip included), an abort or a stack
//! overflow is a crash; a case that runs longer than `--case-timeout` seconds is a hang.
//! Before each case the input is written to `OUT/current`, so whatever kills the process
//! leaves its input behind; a caught panic or a hang is copied to `OUT/crashes/` and the
//! driver exits 1.
//!
//!   envy-fuzz --target NAME CORPUS_DIR... --out DIR [--seconds N] [--seed N] [--case-timeout N]
//!   envy-fuzz --target NAME --replay FILE      # one input through the target, timed
//!   envy-fuzz --list

mod targets;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use targets::{Scratch, Target};

/// xorshift64*: small, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const DICT: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "(",
    ")",
    "${",
    "\"",
    "''",
    "x: ",
    "-",
    "!",
    "++",
    "//",
    "->",
    ";",
    "=",
    "let a = ",
    " in ",
    "with a; ",
    "assert true; ",
    "if true then ",
    " else ",
    "rec { ",
    "\r",
    "\r\n",
    "\n",
    "#",
    "/*",
    "*/",
    "1e400",
    "-1e400",
    "9223372036854775807",
    "-9223372036854775808",
    "builtins.genList (x: x) ",
    "builtins.deepSeq ",
    "builtins.toJSON ",
    "builtins.fromJSON ",
    "builtins.seq ",
    "__curPos",
    "a.b.c",
    "or",
    "...",
    "@",
    "?",
    ".",
    ",",
    "<nixpkgs>",
    "./a",
    "/abs",
    "~/h",
    "http://x",
    "\\",
    "\u{0}",
    "é",
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        let at = rng.below(len + 1);
        match rng.below(7) {
            0 if len > 0 => input[at.min(len - 1)] ^= 1 << rng.below(8),
            1 if len > 0 => {
                let end = (at + rng.below(32)).min(len);
                input.drain(at.min(len)..end);
            }
            2 => {
                let word = DICT[rng.below(DICT.len())].as_bytes();
                input.splice(at..at, word.iter().copied());
            }
            3 if len > 0 => {
                // Repeat a span many times: deep nesting and long chains.
                let start = rng.below(len);
                let end = (start + 1 + rng.below(8)).min(len);
                let span = input[start..end].to_vec();
                let times = [2, 10, 1000, 100_000][rng.below(4)];
                let rep: Vec<u8> = span
                    .iter()
                    .copied()
                    .cycle()
                    .take(span.len() * times)
                    .collect();
                input.splice(start..start, rep);
            }
            4 => {
                // Splice in part of another corpus file.
                let other = &corpus[rng.below(corpus.len())];
                let start = rng.below(other.len());
                let end = (start + rng.below(200)).min(other.len());
                input.splice(at..at, other[start..end].iter().copied());
            }
            5 => {
                let open = DICT[rng.below(12)];
                let n = [10, 1000, 100_000][rng.below(3)];
                input.splice(at..at, open.repeat(n).into_bytes());
            }
            _ => {}
        }
    }
    input.truncate(4 << 20);
}

fn save(out: &Path, name: &str, input: &[u8]) -> PathBuf {
    let dir = out.join("crashes");
    fs_err::create_dir_all(&dir).expect("creating the crash directory");
    let p = dir.join(name);
    fs_err::write(&p, input).expect("saving a crash");
    p
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut dirs, mut out, mut seconds, mut seed, mut case_timeout) =
        (Vec::new(), PathBuf::from("fuzz/out"), 60u64, 0u64, 10u64);
    let (mut target_name, mut replay) = (String::from("eval"), None);
    while let Some(a) = args.next() {
        let mut num = |what: &str| -> u64 {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{what} needs a number"))
        };
        match a.as_str() {
            "--seconds" => seconds = num("--seconds"),
            "--seed" => seed = num("--seed"),
            "--case-timeout" => case_timeout = num("--case-timeout"),
            "--out" => out = PathBuf::from(args.next().expect("--out needs a directory")),
            "--target" => target_name = args.next().expect("--target needs a name"),
            "--replay" => replay = Some(PathBuf::from(args.next().expect("--replay needs a file"))),
            "--list" => {
                for t in targets::TARGETS {
                    println!("{:<10} {}", t.name, t.what);
                }
                return;
            }
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    let Some(target) = targets::find(&target_name) else {
        eprintln!("envy-fuzz: no target `{target_name}` (see --list)");
        std::process::exit(2);
    };
    fs_err::create_dir_all(&out).expect("creating the output directory");
    let scratch = Scratch {
        dir: out.join(format!("scratch-{}", target.name)),
    };
    let _ = fs_err::remove_dir_all(&scratch.dir);
    fs_err::create_dir_all(&scratch.dir).expect("creating the scratch directory");
    if let Some(file) = replay {
        let input = fs_err::read(file).expect("reading the input");
        envy_eval::run_with_stack(move || {
            let t = Instant::now();
            (target.run)(&input, &scratch);
            eprintln!("target {}: {:.2?}", target.name, t.elapsed());
        });
        return;
    }
    let corpus = targets::corpus(target, &dirs);
    let seed = if seed == 0 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1)
    } else {
        seed
    };
    eprintln!(
        "envy-fuzz: target {}, {} corpus inputs, seed {seed}, {seconds}s",
        target.name,
        corpus.len()
    );
    // Every seed runs once as it is before any mutation.
    for (i, input) in corpus.iter().enumerate() {
        fs_err::write(out.join("current"), input).expect("writing the current input");
        let outcome = envy_eval::run_with_stack({
            let (input, run) = (input.clone(), target.run);
            let dir = scratch.dir.clone();
            move || std::panic::catch_unwind(|| run(&input, &Scratch { dir })).is_ok()
        });
        if !outcome {
            let p = save(&out, &format!("panic-{}-seed{i}", target.name), input);
            eprintln!(
                "envy-fuzz: PANIC on corpus input {i}, saved to {}",
                p.display()
            );
            std::process::exit(1);
        }
    }
    fuzz(target, corpus, scratch, &out, seed, seconds, case_timeout);
}

fn fuzz(
    target: &'static Target,
    corpus: Vec<Vec<u8>>,
    scratch: Scratch,
    out: &Path,
    seed: u64,
    seconds: u64,
    case_timeout: u64,
) {
    // The watchdog: a case that does not finish in time is a hang.
    let started = Arc::new(AtomicU64::new(0));
    let case_no = Arc::new(AtomicU64::new(0));
    {
        let (started, case_no, out) = (started.clone(), case_no.clone(), out.to_path_buf());
        let epoch = Instant::now();
        let name = target.name;
        std::thread::spawn(move || {
            let mut last = (u64::MAX, 0);
            loop {
                std::thread::sleep(Duration::from_secs(1));
                let now = (
                    case_no.load(Ordering::Relaxed),
                    started.load(Ordering::Relaxed),
                );
                if now.0 == last.0 && epoch.elapsed().as_secs().saturating_sub(now.1) > case_timeout
                {
                    let input = fs_err::read(out.join("current")).unwrap_or_default();
                    let p = save(&out, &format!("hang-{name}-{seed}-{}", now.0), &input);
                    eprintln!(
                        "envy-fuzz: HANG (> {case_timeout}s), input saved to {}",
                        p.display()
                    );
                    std::process::exit(1);
                }
                last = now;
            }
        });
    }
    let epoch = Instant::now();
    let out = out.to_path_buf();
    let result = envy_eval::run_with_stack(move || {
        let mut rng = Rng(seed);
        let (mut cases, deadline) = (0u64, Duration::from_secs(seconds));
        while epoch.elapsed() < deadline {
            let mut input = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &corpus, &mut input);
            fs_err::write(out.join("current"), &input).expect("writing the current input");
            cases += 1;
            case_no.store(cases, Ordering::Relaxed);
            started.store(epoch.elapsed().as_secs(), Ordering::Relaxed);
            let outcome = std::panic::catch_unwind(|| (target.run)(&input, &scratch));
            if outcome.is_err() {
                let p = save(
                    &out,
                    &format!("panic-{}-{seed}-{cases}", target.name),
                    &input,
                );
                return Err(format!(
                    "PANIC (target {}), input saved to {}",
                    target.name,
                    p.display()
                ));
            }
        }
        let _ = fs_err::remove_dir_all(&scratch.dir);
        Ok(cases)
    });
    match result {
        Ok(cases) => eprintln!(
            "envy-fuzz: target {}: {cases} cases in {:.0?}, no crash, no hang",
            target.name,
            epoch.elapsed()
        ),
        Err(msg) => {
            eprintln!("envy-fuzz: {msg}");
            std::process::exit(1);
        }
    }
}
