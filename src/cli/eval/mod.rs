//! `envy eval`: evaluate a Nix file or expression with envy's own evaluator and print the
//! result exactly as `nix-instantiate --eval` (or `--parse`) prints it; or a flake output
//! (`FLAKE#ATTR`) as `nix eval` prints it.

mod flake;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::ValueEnum;
use envy_eval::eval::Diagnostic;
use envy_eval::symbol::Sym;
use envy_eval::value::{Attr, Attrs, Value};
use envy_eval::{DummyStore, EvalSettings, Evaluator, Lint, Origin, Pos, SearchPathEntry, print};

/// The store directory used when `--store-dir` is not given (envy's own store).
pub const ENVY_STORE_DIR: &str = "ENVY_STORE_DIR";

/// How a lint reports.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LintLevel {
    /// Say nothing.
    Ignore,
    /// Print a warning.
    Warn,
    /// Fail.
    Fatal,
}

impl From<LintLevel> for Lint {
    fn from(l: LintLevel) -> Lint {
        match l {
            LintLevel::Ignore => Lint::Ignore,
            LintLevel::Warn => Lint::Warn,
            LintLevel::Fatal => Lint::Fatal,
        }
    }
}

/// Evaluate a Nix expression without Nix installed, printing what `nix-instantiate --eval`
/// prints (`--parse`: the parsed expression). Exit code 1 on error.
///
/// With `FLAKE#ATTR` instead of a file, a flake's output, printed as `nix eval` prints it:
/// ATTR is looked up as `packages.<system>.ATTR`, `legacyPackages.<system>.ATTR`, then ATTR.
///
/// Examples:
///   envy eval -E '1 + 2'
///   envy eval --strict --json -A hello ./default.nix
///   envy eval .#devShells.x86_64-linux.default.drvPath --raw
///   envy eval --json .#lib.version --override-input nixpkgs ../nixpkgs
#[derive(clap::Args, Debug)]
#[command(verbatim_doc_comment)]
pub struct EvalArgs {
    /// The file to evaluate (`-` reads standard input; default `./default.nix`), or a flake
    /// output `FLAKE#ATTR` (`.#hello`, `github:owner/repo#lib.version`)
    pub file: Option<PathBuf>,
    /// With FLAKE#ATTR: print a string as it is, with no quotes and no newline
    #[arg(long, conflicts_with_all = ["json", "xml"])]
    pub raw: bool,
    #[command(flatten)]
    pub overrides: super::flake::InputOverrides,
    /// Evaluate this expression instead of a file
    #[arg(long, short = 'E', value_name = "EXPR", conflicts_with = "file")]
    pub expr: Option<String>,
    /// Evaluate the result fully (lists and attribute sets deeply)
    #[arg(long)]
    pub strict: bool,
    /// Print the result as JSON
    #[arg(long, conflicts_with = "xml")]
    pub json: bool,
    /// Print the result as XML
    #[arg(long)]
    pub xml: bool,
    /// Leave source positions out of the XML output
    #[arg(long)]
    pub no_location: bool,
    /// Only parse, and print the parsed expression
    #[arg(long)]
    pub parse: bool,
    /// Accepted for compatibility with `nix-instantiate` (evaluation is what this does)
    #[arg(long, hide = true)]
    pub eval: bool,
    /// Show the full chain of `… while …` frames on errors
    #[arg(long)]
    pub show_trace: bool,
    /// Show only the innermost frames on errors (the default)
    #[arg(long, hide = true)]
    pub no_show_trace: bool,
    /// Add a search path entry for `<…>` lookups (`PATH` or `PREFIX=PATH`)
    #[arg(short = 'I', long = "include", value_name = "PATH")]
    pub include: Vec<String>,
    /// Pass NAME=EXPR to the function the file evaluates to
    #[arg(long, num_args = 2, value_names = ["NAME", "EXPR"])]
    pub arg: Vec<String>,
    /// Pass NAME="VALUE" (a string) to the function the file evaluates to
    #[arg(long, num_args = 2, value_names = ["NAME", "VALUE"])]
    pub argstr: Vec<String>,
    /// Select this attribute path from the result
    #[arg(short = 'A', long = "attr", value_name = "ATTRPATH")]
    pub attr: Vec<String>,
    /// The store directory store paths are computed for (Nix's tests use /nix/store)
    #[arg(long, value_name = "DIR")]
    pub store_dir: Option<PathBuf>,
    /// Compute store paths without writing anything to a store
    #[arg(long)]
    pub read_only: bool,
    /// Maximum function call depth
    #[arg(long, default_value_t = 10_000)]
    pub max_call_depth: usize,
    /// Report relative path literals without a leading `./`
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub lint_short_path_literals: Option<LintLevel>,
    /// Report absolute and home path literals
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub lint_absolute_path_literals: Option<LintLevel>,
    /// Report unquoted URL literals
    #[arg(long, value_enum, value_name = "LEVEL")]
    pub lint_url_literals: Option<LintLevel>,
    /// Enable experimental language features (`pipe-operators`)
    #[arg(long, value_name = "FEATURES")]
    pub extra_experimental_features: Vec<String>,
    /// Accepted for compatibility with `nix-instantiate`
    #[arg(long, hide = true)]
    pub impure: bool,
}

fn default_store_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(ENVY_STORE_DIR) {
        return PathBuf::from(d);
    }
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("/tmp"))
        .join("envy/store")
}

impl EvalArgs {
    /// Run the command.
    pub fn run(self) -> Result<ExitCode> {
        if let Some((reference, attr)) = self.file.as_deref().and_then(flake::installable) {
            return self.run_flake(reference, attr);
        }
        anyhow::ensure!(
            !self.raw && self.overrides.override_input.is_empty(),
            "--raw and --override-input need a flake output (`envy eval .#ATTR`)"
        );
        let cwd = std::env::current_dir().context("cannot read the current directory")?;
        let store_dir = self.store_dir.clone().unwrap_or_else(default_store_dir);
        let store_dir = envy_store::StoreDir::new(&store_dir)
            .with_context(|| format!("bad store directory `{}`", store_dir.display()))?;
        let input = self.read_input(&cwd)?;
        let show_trace = self.show_trace && !self.no_show_trace;
        let settings = self.settings(&cwd);
        envy_eval::run_with_stack(move || {
            huge_page_heap();
            let mut stderr = std::io::stderr();
            let diag_trace = show_trace;
            // `builtins.getFlake` is the flake machinery's (impure here, as in
            // `nix-instantiate`: unlocked references are allowed); the other fetchers are
            // the evaluator's own.
            let session = crate::engine::flakes::session(store_dir.clone())?;
            let fetch_settings = envy_fetch::FetchSettings::new(
                store_dir.clone(),
                crate::engine::flakes::cache_dir()?.join("fetch-v1"),
            );
            let mut ev = Evaluator::builder()
                .settings(settings)
                .io(session.io(Box::new(envy_eval::RealIO)))
                .store(Box::new(DummyStore::new(store_dir)))
                .fetcher(Box::new(envy_fetch::Fetcher::new(fetch_settings)))
                .fetch(std::rc::Rc::new(GetFlakeOnly(session.fetch())))
                .diagnostics(Box::new(move |d| print_diagnostic(d, diag_trace)))
                .build();
            let code = match self.evaluate(&mut ev, input) {
                Ok(out) => {
                    let mut stdout = std::io::stdout().lock();
                    let _ = stdout.write_all(&out);
                    let _ = stdout.flush();
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    let _ = writeln!(stderr, "{}", e.render(show_trace));
                    ExitCode::from(1)
                }
            };
            // The process ends right after: freeing every value one by one would only cost time.
            std::mem::forget(ev);
            Ok(code)
        })
    }

    /// `envy eval FLAKE#ATTR`.
    fn run_flake(self, reference: String, attr: String) -> Result<ExitCode> {
        anyhow::ensure!(
            self.expr.is_none() && self.attr.is_empty() && !self.parse && !self.xml,
            "-E, -A, --parse and --xml do not go with a flake output (`{reference}#{attr}`)"
        );
        let mut flags = envy_flake::LockFlags::default();
        self.overrides.apply(&mut flags, false)?;
        let format = if self.json {
            flake::Format::Json
        } else if self.raw {
            flake::Format::Raw
        } else {
            flake::Format::Nix
        };
        let show_trace = self.show_trace && !self.no_show_trace;
        envy_eval::run_with_stack(move || {
            flake::run(&flake::Request {
                flake: &reference,
                attr: &attr,
                format,
                flags,
                show_trace,
            })
        })
    }

    fn settings(&self, cwd: &Path) -> EvalSettings {
        let mut s = EvalSettings {
            show_trace: self.show_trace && !self.no_show_trace,
            max_call_depth: self.max_call_depth,
            cwd: cwd.to_path_buf(),
            ..EvalSettings::default()
        };
        s.search_path = self
            .include
            .iter()
            .map(|e| SearchPathEntry::parse(e))
            .collect();
        if let Ok(np) = std::env::var(envy_eval::env_vars::NIX_PATH) {
            s.search_path.extend(
                np.split(':')
                    .filter(|e| !e.is_empty())
                    .map(SearchPathEntry::parse),
            );
        }
        s.parse.home = std::env::var(envy_eval::env_vars::HOME).ok();
        if let Some(l) = self.lint_short_path_literals {
            s.parse.lint_short_path_literals = l.into();
        }
        if let Some(l) = self.lint_absolute_path_literals {
            s.parse.lint_absolute_path_literals = l.into();
        }
        if let Some(l) = self.lint_url_literals {
            s.parse.lint_url_literals = l.into();
        }
        s.parse.pipe_operators = self
            .extra_experimental_features
            .iter()
            .flat_map(|f| f.split_whitespace())
            .any(|f| f == "pipe-operators");
        s
    }

    fn read_input(&self, cwd: &Path) -> Result<Input> {
        if let Some(e) = &self.expr {
            return Ok(Input::Expr(e.clone()));
        }
        match &self.file {
            Some(f) if f.as_os_str() == "-" => {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("cannot read standard input")?;
                Ok(Input::Stdin(s))
            }
            Some(f) => Ok(Input::File(cwd.join(f))),
            None => Ok(Input::File(cwd.join("default.nix"))),
        }
    }

    fn evaluate(&self, ev: &mut Evaluator, input: Input) -> envy_eval::EvalResult<Vec<u8>> {
        let cwd = ev.settings().cwd.to_string_lossy().into_owned();
        if self.parse {
            let expr = match &input {
                Input::Expr(e) => ev.parse(e, Origin::String, &cwd)?,
                Input::Stdin(s) => ev.parse(s, Origin::Stdin, &cwd)?,
                Input::File(p) => {
                    let text = fs_err::read(p).map_err(|e| {
                        envy_eval::EvalError::eval(format!("reading '{}': {e}", p.display()))
                    })?;
                    let dir = p
                        .parent()
                        .map(|d| d.to_string_lossy().into_owned())
                        .unwrap_or(cwd.clone());
                    ev.parse(
                        &envy_eval::lower::strings::decode_source(&text),
                        Origin::File(p.clone()),
                        &dir,
                    )?
                }
            };
            let mut out = envy_eval::show::show_expr(expr).into_bytes();
            out.push(b'\n');
            return Ok(out);
        }
        let root = match &input {
            Input::Expr(e) => ev.eval_string(e, &cwd)?,
            Input::Stdin(s) => {
                let e = ev.parse(s, Origin::Stdin, &cwd)?;
                ev.eval_expr(e)?
            }
            Input::File(p) => ev.eval_file(p)?,
        };
        let auto_args = self.auto_args(ev, &cwd)?;
        let paths = if self.attr.is_empty() {
            vec![String::new()]
        } else {
            self.attr.clone()
        };
        let mut out = Vec::new();
        for path in paths {
            let v = select_attr_path(ev, &root, &path, &auto_args)?;
            let v = auto_call(ev, &v, &auto_args)?;
            if self.json {
                let v = if self.strict {
                    ev.force_deep(&v, Pos::NONE)?
                } else {
                    v
                };
                let mut ctx = Default::default();
                out.extend(ev.to_json(&v, Pos::NONE, &mut ctx, true)?);
                out.push(b'\n');
            } else if self.xml {
                let v = if self.strict {
                    ev.force_deep(&v, Pos::NONE)?
                } else {
                    v
                };
                let mut ctx = Default::default();
                out.extend(ev.to_xml(&v, true, !self.no_location, &mut ctx)?);
            } else {
                let v = if self.strict {
                    ev.force_deep(&v, Pos::NONE)?
                } else {
                    ev.force(&v, Pos::NONE)?
                };
                out.extend(print::print_value_checked(ev, &v)?);
                out.push(b'\n');
            }
        }
        Ok(out)
    }

    fn auto_args(&self, ev: &mut Evaluator, cwd: &str) -> envy_eval::EvalResult<Vec<Attr>> {
        let mut out = Vec::new();
        for pair in self.arg.chunks(2) {
            let v = ev.eval_string(&pair[1], cwd)?;
            out.push(Attr {
                name: Sym::new(&pair[0]),
                pos: Pos::NONE,
                value: v,
            });
        }
        for pair in self.argstr.chunks(2) {
            out.push(Attr {
                name: Sym::new(&pair[0]),
                pos: Pos::NONE,
                value: Value::string(pair[1].as_str()),
            });
        }
        Ok(out)
    }
}

/// Let the heap's memory be backed by transparent huge pages.
///
/// An evaluation touches tens to hundreds of MiB of fresh memory; with 4 KiB pages a fifth of
/// its time goes to page faults. envy's mimalloc is built without THP (the hook's short runs
/// would pay for zeroing 2 MiB pages), so for `envy eval` the mapping that holds mimalloc's
/// arena (found through a fresh allocation in `/proc/self/maps`) is advised `MADV_HUGEPAGE`:
/// memory is still taken as it is touched, 2 MiB at a time. Best effort: nothing changes when
/// the mapping cannot be found, or when it is this thread's stack.
fn huge_page_heap() {
    // Called off the main thread, `use_mimalloc` only reports whether mimalloc is on; with
    // glibc's allocator the probe below would find a glibc arena instead.
    if !crate::alloc::use_mimalloc() {
        return;
    }
    let probe = Box::new([0u8; 64]);
    let p = probe.as_ptr() as usize;
    let stack = &probe as *const _ as usize;
    let Ok(maps) = fs_err::read_to_string("/proc/self/maps") else {
        return;
    };
    for line in maps.lines() {
        let Some((range, _)) = line.split_once(' ') else {
            continue;
        };
        let Some((start, end)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        if (start..end).contains(&p) {
            if !(start..end).contains(&stack) {
                // SAFETY: advice only, on a mapping of this process that stays mapped.
                unsafe {
                    libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
                }
            }
            return;
        }
    }
}

/// The flake machinery's `builtins.getFlake`, and nothing else.
struct GetFlakeOnly(std::rc::Rc<dyn envy_eval::Fetch>);

impl envy_eval::Fetch for GetFlakeOnly {
    fn handles(&self, kind: envy_eval::store::FetchKind) -> bool {
        matches!(
            kind,
            envy_eval::store::FetchKind::Flake | envy_eval::store::FetchKind::Tree
        )
    }

    fn fetch(
        &self,
        ev: &mut Evaluator,
        kind: envy_eval::store::FetchKind,
        arg: &Value,
        pos: Pos,
    ) -> envy_eval::EvalResult<Value> {
        self.0.fetch(ev, kind, arg, pos)
    }
}

enum Input {
    Expr(String),
    Stdin(String),
    File(PathBuf),
}

pub(crate) fn print_diagnostic(d: Diagnostic, show_trace: bool) {
    let text = match d {
        Diagnostic::Trace(msg, _) => format!("trace: {msg}"),
        Diagnostic::Warning {
            msg,
            pos: _,
            from_expr: true,
        } => {
            // `builtins.warn` prints the message as given, without a position.
            format!("evaluation warning: {msg}")
                .lines()
                .map(str::trim_end)
                .collect::<Vec<_>>()
                .join("\n")
        }
        Diagnostic::Warning {
            msg,
            pos,
            from_expr: false,
        } => envy_eval::error::render("warning", &msg, pos, &[], &[], show_trace),
        Diagnostic::Rendered(s) => s,
    };
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{text}");
}

/// Nix's `autoCallFunction`: call a function whose argument is an attribute-set pattern with
/// the `--arg`/`--argstr` values it names (all of them with `...`).
pub(crate) fn auto_call(
    ev: &mut Evaluator,
    v: &Value,
    args: &[Attr],
) -> envy_eval::EvalResult<Value> {
    let f = ev.force(v, Pos::NONE)?;
    if let Value::Attrs(a) = &f
        && let Some(functor) = a.get(Sym::FUNCTOR)
    {
        let functor = functor.clone();
        let g = ev.call_value(&functor, std::slice::from_ref(&f), Pos::NONE)?;
        return auto_call(ev, &g, args);
    }
    let Value::Lambda(c) = &f else { return Ok(f) };
    let Some(formals) = &c.def.formals else {
        return Ok(f);
    };
    let mut passed = Vec::new();
    for formal in formals.entries.iter() {
        match args.iter().find(|a| a.name == formal.name) {
            Some(a) => passed.push(a.clone()),
            None if formal.default.is_some() => {}
            None => {
                return Err(envy_eval::EvalError::eval(format!(
                    "cannot evaluate a function that has an argument without a value ('{}')",
                    formal.name
                )));
            }
        }
    }
    if formals.ellipsis {
        passed = args.to_vec();
    }
    let arg = Value::attrs(Attrs::from_unsorted(passed));
    ev.call_value(&f, &[arg], Pos::NONE)
}

/// Nix's `findAlongAttrPath` for `-A`: dotted names (quotes allowed), list indices.
pub(crate) fn select_attr_path(
    ev: &mut Evaluator,
    root: &Value,
    path: &str,
    args: &[Attr],
) -> envy_eval::EvalResult<Value> {
    let mut v = root.clone();
    if path.is_empty() {
        return Ok(v);
    }
    for part in split_attr_path(path) {
        v = auto_call(ev, &v, args)?;
        let fv = ev.force(&v, Pos::NONE)?;
        if let Ok(i) = part.parse::<usize>() {
            match &fv {
                Value::List(l) => {
                    v = l.get(i).cloned().ok_or_else(|| {
                        envy_eval::EvalError::eval(format!(
                            "list index {i} in selection path '{path}' is out of range"
                        ))
                    })?;
                    continue;
                }
                _ => {
                    return Err(envy_eval::EvalError::eval(format!(
                        "the expression selected by the selection path '{path}' should be a list but is {}",
                        fv.typ().showtype()
                    )));
                }
            }
        }
        match &fv {
            Value::Attrs(a) => match a.get(Sym::new(&part)) {
                Some(x) => v = x.clone(),
                None => {
                    return Err(envy_eval::EvalError::eval(format!(
                        "attribute '{part}' in selection path '{path}' not found"
                    )));
                }
            },
            other => {
                return Err(envy_eval::EvalError::eval(format!(
                    "the expression selected by the selection path '{path}' should be a set but is {}",
                    other.typ().showtype()
                )));
            }
        }
    }
    Ok(v)
}

pub(crate) fn split_attr_path(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}
