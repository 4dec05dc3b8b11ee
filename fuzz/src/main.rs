//! A mutation fuzzer for envy's evaluator that runs on stable Rust.
//!
//! This is not coverage-guided: cargo-fuzz needs a nightly compiler, and AFL++ (afl.rs) is
//! not installed here. It is a seeded random-mutation driver: it reads a corpus of Nix files
//! (Nix's language tests), and for as long as it is told it takes one, mutates it (byte
//! flips, deletions, duplications and splices, and inserts from a dictionary of the
//! constructs that once hung or crashed envy: deep nesting, `\r`, `1e400`, huge sizes), and
//! runs it through every target:
//!
//! - `eval`: parse, lower, evaluate strictly, print and convert to JSON;
//! - `json` / `toml`: the text given to `builtins.fromJSON` / `builtins.fromTOML`.
//!
//! All file access goes to an in-memory file system, so an input cannot touch the host. An
//! error is a result; a panic, an abort or a stack overflow is a crash; a case that runs
//! longer than `--case-timeout` seconds is a hang. Before each case the input is written to
//! `OUT/current`, so whatever kills the process leaves its input behind; a caught panic or a
//! hang is copied to `OUT/crashes/` and the driver exits 1.
//!
//!   envy-fuzz CORPUS_DIR... --out DIR [--seconds N] [--seed N] [--case-timeout N]
//!   envy-fuzz --replay FILE      # one input through every target, timed

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use envy_eval::{Evaluator, MemoryIO, Pos, print};

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

/// One case through one target. Errors are fine; only panics and worse are findings.
fn run(target: usize, input: &[u8]) {
    let text = String::from_utf8_lossy(input).into_owned();
    let mut io = MemoryIO::new();
    io.add_file("/input", input.to_vec());
    let mut ev = Evaluator::builder().io(Box::new(io)).build();
    let expr = match target {
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

fn read_corpus(dirs: &[PathBuf], out: &mut Vec<Vec<u8>>) {
    for dir in dirs {
        let Ok(entries) = fs_err::read_dir(dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                read_corpus(&[p], out);
            } else if p
                .extension()
                .is_some_and(|x| x == "nix" || x == "json" || x == "toml" || x == "exp")
                && let Ok(b) = fs_err::read(&p)
            {
                out.push(b);
            }
        }
    }
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
            "--replay" => {
                // Run one saved input through every target, timing each.
                let input = fs_err::read(args.next().expect("--replay needs a file"))
                    .expect("reading the input");
                envy_eval::run_with_stack(move || {
                    for target in 0..3 {
                        let t = Instant::now();
                        run(target, &input);
                        eprintln!("target {target}: {:.2?}", t.elapsed());
                    }
                });
                return;
            }
            _ => dirs.push(PathBuf::from(a)),
        }
    }
    let mut corpus = Vec::new();
    read_corpus(&dirs, &mut corpus);
    if corpus.is_empty() {
        eprintln!("envy-fuzz: no corpus files under {dirs:?}");
        std::process::exit(2);
    }
    fs_err::create_dir_all(&out).expect("creating the output directory");
    let seed = if seed == 0 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 | 1)
    } else {
        seed
    };
    eprintln!(
        "envy-fuzz: {} corpus files, seed {seed}, {seconds}s",
        corpus.len()
    );

    // The watchdog: a case that does not finish in time is a hang.
    let started = Arc::new(AtomicU64::new(0));
    let case_no = Arc::new(AtomicU64::new(0));
    {
        let (started, case_no, out) = (started.clone(), case_no.clone(), out.clone());
        let epoch = Instant::now();
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
                    let p = save(&out, &format!("hang-{seed}-{}", now.0), &input);
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
    let result = envy_eval::run_with_stack(move || {
        let mut rng = Rng(seed);
        let (mut cases, deadline) = (0u64, Duration::from_secs(seconds));
        while epoch.elapsed() < deadline {
            let mut input = corpus[rng.below(corpus.len())].clone();
            mutate(&mut rng, &corpus, &mut input);
            let target = rng.below(5).saturating_sub(2); // eval three times in five
            fs_err::write(out.join("current"), &input).expect("writing the current input");
            cases += 1;
            case_no.store(cases, Ordering::Relaxed);
            started.store(epoch.elapsed().as_secs(), Ordering::Relaxed);
            let outcome = std::panic::catch_unwind(|| run(target, &input));
            if outcome.is_err() {
                let p = save(&out, &format!("panic-{seed}-{cases}"), &input);
                return Err(format!(
                    "PANIC (target {target}), input saved to {}",
                    p.display()
                ));
            }
        }
        Ok(cases)
    });
    match result {
        Ok(cases) => eprintln!(
            "envy-fuzz: {cases} cases in {:.0?}, no crash, no hang",
            epoch.elapsed()
        ),
        Err(msg) => {
            eprintln!("envy-fuzz: {msg}");
            std::process::exit(1);
        }
    }
}
