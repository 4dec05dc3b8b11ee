//! The evaluator: a tree-walking interpreter over the IR. Values are forced to weak head
//! normal form on demand; thunks update in place and black-hole while being evaluated, so
//! infinite recursion is an error. Function calls count against a depth limit that raises
//! Nix's "stack overflow; max-call-depth exceeded" (run evaluations on a big stack, see
//! `run_with_stack`).

mod attrs;
mod call;
mod coerce;
mod ops;

use std::path::{Path, PathBuf};
use std::rc::Rc;

use rustc_hash::FxHashMap;

use crate::error::{ErrorExt, ErrorKind, EvalError, EvalResult};
use crate::io::{EvalIO, FileType, ReadRecord, RealIO};
use crate::ir::*;
use crate::lower::{self, ParseOptions, Warning};
use crate::source::{Origin, Pos};
use crate::store::{EvalStore, Realiser};
use crate::symbol::Sym;
use crate::value::*;

pub use coerce::CoerceOpts;

/// What was being evaluated, for the `… while …` frame of a type error; formatted only when
/// an error happens.
#[derive(Clone, Copy, Debug)]
pub enum Ctx<'a> {
    /// A fixed message.
    Msg(&'a str),
    /// "while evaluating the N-th argument passed to builtins.NAME".
    Arg(u8, &'static str),
}

impl<'a> From<&'a str> for Ctx<'a> {
    fn from(s: &'a str) -> Self {
        Ctx::Msg(s)
    }
}

impl<'a> From<&'a String> for Ctx<'a> {
    fn from(s: &'a String) -> Self {
        Ctx::Msg(s)
    }
}

impl Ctx<'_> {
    /// The frame text.
    pub fn render(&self) -> String {
        match self {
            Ctx::Msg(s) => s.to_string(),
            Ctx::Arg(n, name) => {
                let ord = match n {
                    1 => "first",
                    2 => "second",
                    3 => "third",
                    _ => "an",
                };
                format!("while evaluating the {ord} argument passed to builtins.{name}")
            }
        }
    }
}

/// Something the evaluator wants shown to the user while it runs.
#[derive(Clone, Debug)]
pub enum Diagnostic {
    /// `builtins.trace`: the printed value.
    Trace(String, Pos),
    /// A warning (`builtins.warn`, lints): the message (after `warning: `), where, and
    /// whether it comes from the evaluated code (`evaluation warning:`).
    Warning {
        msg: String,
        pos: Pos,
        from_expr: bool,
    },
    /// A diagnostic already rendered in Nix's format (warnings with frames).
    Rendered(String),
}

/// A parser warning as a diagnostic.
pub(crate) fn parse_warning(w: Warning) -> Diagnostic {
    if w.plain {
        Diagnostic::Rendered(format!("warning: {}", w.msg))
    } else {
        Diagnostic::Warning {
            msg: w.msg,
            pos: w.pos,
            from_expr: false,
        }
    }
}

/// One `-I` / `NIX_PATH` entry: `prefix=path` or just `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SearchPathEntry {
    /// The prefix (empty for plain entries).
    pub prefix: String,
    /// The path (or URL).
    pub path: String,
}

impl SearchPathEntry {
    /// Parse `prefix=path` or `path`.
    pub fn parse(s: &str) -> SearchPathEntry {
        match s.split_once('=') {
            Some((p, v)) => SearchPathEntry {
                prefix: p.to_string(),
                path: v.to_string(),
            },
            None => SearchPathEntry {
                prefix: String::new(),
                path: s.to_string(),
            },
        }
    }
}

/// Evaluation settings.
#[derive(Clone, Debug)]
pub struct EvalSettings {
    /// Collect the detailed call frames (`--show-trace`).
    pub show_trace: bool,
    /// Nix's `max-call-depth`.
    pub max_call_depth: usize,
    /// `-I` entries followed by `NIX_PATH` entries.
    pub search_path: Vec<SearchPathEntry>,
    /// `builtins.currentSystem`.
    pub current_system: String,
    /// Parser settings (lints, home directory).
    pub parse: ParseOptions,
    /// Pure evaluation (no `getEnv`, `currentSystem`, `currentTime`).
    pub pure: bool,
    /// The working directory (base of `--expr` relative paths).
    pub cwd: PathBuf,
}

impl Default for EvalSettings {
    fn default() -> Self {
        EvalSettings {
            show_trace: false,
            max_call_depth: 10_000,
            search_path: Vec::new(),
            current_system: "x86_64-linux".into(),
            parse: ParseOptions::default(),
            pure: false,
            cwd: PathBuf::from("/"),
        }
    }
}

/// The evaluator.
pub struct Evaluator {
    pub(crate) base_env: Env,
    pub(crate) globals: FxHashMap<Sym, u32>,
    pub(crate) call_depth: usize,
    /// `crate::stack::limit()` of the thread the evaluator was built on.
    pub(crate) stack_limit: usize,
    pub(crate) settings: EvalSettings,
    pub(crate) io: Box<dyn EvalIO>,
    pub(crate) store: Box<dyn EvalStore>,
    pub(crate) realiser: Option<Box<dyn Realiser>>,
    pub(crate) fetch: Option<Rc<dyn crate::store::Fetch>>,
    pub(crate) record: ReadRecord,
    pub(crate) diagnostics: Box<dyn FnMut(Diagnostic)>,
    pub(crate) import_cache: FxHashMap<PathBuf, Value>,
    pub(crate) empty_attrs: AttrSet,
    pub(crate) empty_list: List,
    pub(crate) regex_cache: FxHashMap<Vec<u8>, Rc<regex::bytes::Regex>>,
    pub(crate) path_cache: FxHashMap<String, String>,
    pub(crate) drv_hashes: envy_store::DrvHashes,
    pub(crate) fetcher: Box<dyn crate::fetcher::Fetcher>,
    pub(crate) fetch_cache: FxHashMap<String, envy_fetch::Fetched>,
    /// Attribute names as string values (`attrNames`, `mapAttrs`, …), made once per name.
    pub(crate) sym_strings: FxHashMap<Sym, Value>,
}

/// Builder for an `Evaluator`.
pub struct EvaluatorBuilder {
    settings: EvalSettings,
    io: Box<dyn EvalIO>,
    store: Option<Box<dyn EvalStore>>,
    realiser: Option<Box<dyn Realiser>>,
    fetch: Option<Rc<dyn crate::store::Fetch>>,
    fetcher: Box<dyn crate::fetcher::Fetcher>,
    diagnostics: Box<dyn FnMut(Diagnostic)>,
}

impl EvaluatorBuilder {
    /// Hand `fetchTree`, `fetchGit`, `fetchTarball`, `fetchurl` and `getFlake` to `f`
    /// altogether (envy's flake layer: Nix's fetcher semantics, sources mounted in place);
    /// without it, the built-in fetchers below use the `Fetcher` and `getFlake` is missing.
    pub fn fetch(mut self, f: Rc<dyn crate::store::Fetch>) -> Self {
        self.fetch = Some(f);
        self
    }
    /// Use this fetcher (default: none, every fetch fails).
    pub fn fetcher(mut self, f: Box<dyn crate::fetcher::Fetcher>) -> Self {
        self.fetcher = f;
        self
    }
    /// Use these settings.
    pub fn settings(mut self, s: EvalSettings) -> Self {
        self.settings = s;
        self
    }
    /// Use this I/O.
    pub fn io(mut self, io: Box<dyn EvalIO>) -> Self {
        self.io = io;
        self
    }
    /// Use this store.
    pub fn store(mut self, store: Box<dyn EvalStore>) -> Self {
        self.store = Some(store);
        self
    }
    /// Use this builder for import-from-derivation.
    pub fn realiser(mut self, r: Box<dyn Realiser>) -> Self {
        self.realiser = Some(r);
        self
    }
    /// Receive traces and warnings.
    pub fn diagnostics(mut self, f: Box<dyn FnMut(Diagnostic)>) -> Self {
        self.diagnostics = f;
        self
    }
    /// Build.
    pub fn build(self) -> Evaluator {
        let store = self.store.unwrap_or_else(|| {
            Box::new(crate::store::DummyStore::new(
                envy_store::StoreDir::nix_default(),
            ))
        });
        let mut ev = Evaluator::new(
            self.settings,
            self.io,
            store,
            self.realiser,
            self.fetcher,
            self.diagnostics,
        );
        ev.fetch = self.fetch;
        ev
    }
}

/// What evaluating a file or expression returns besides the value.
pub struct Outcome<T> {
    /// The result.
    pub result: EvalResult<T>,
    /// Everything read.
    pub record: ReadRecord,
}

impl Evaluator {
    /// Start building an evaluator (real I/O, a compute-only store by default).
    pub fn builder() -> EvaluatorBuilder {
        EvaluatorBuilder {
            settings: EvalSettings::default(),
            io: Box::new(RealIO),
            store: None,
            realiser: None,
            fetch: None,
            fetcher: Box::new(crate::fetcher::NoFetcher),
            diagnostics: Box::new(|_| {}),
        }
    }

    fn new(
        settings: EvalSettings,
        io: Box<dyn EvalIO>,
        store: Box<dyn EvalStore>,
        realiser: Option<Box<dyn Realiser>>,
        fetcher: Box<dyn crate::fetcher::Fetcher>,
        diagnostics: Box<dyn FnMut(Diagnostic)>,
    ) -> Evaluator {
        let mut ev = Evaluator {
            base_env: Env::new(None, 0),
            globals: FxHashMap::default(),
            call_depth: 0,
            stack_limit: crate::stack::limit(),
            settings,
            io,
            store,
            realiser,
            fetch: None,
            record: ReadRecord::default(),
            diagnostics,
            import_cache: FxHashMap::default(),
            empty_attrs: AttrSet::new(Attrs::new()),
            empty_list: ThinRc::from_vec((), Vec::new()),
            regex_cache: FxHashMap::default(),
            path_cache: FxHashMap::default(),
            drv_hashes: envy_store::DrvHashes::new(),
            fetcher,
            fetch_cache: FxHashMap::default(),
            sym_strings: FxHashMap::default(),
        };
        crate::builtins::install(&mut ev);
        ev
    }

    /// The settings.
    pub fn settings(&self) -> &EvalSettings {
        &self.settings
    }

    /// Take the read record collected so far.
    pub fn take_record(&mut self) -> ReadRecord {
        std::mem::take(&mut self.record)
    }

    /// Names in the global scope and their slots (for parsing).
    pub fn globals(&self) -> &FxHashMap<Sym, u32> {
        &self.globals
    }

    pub(crate) fn set_base_env(&mut self, env: Env, globals: FxHashMap<Sym, u32>) {
        self.base_env = env;
        self.globals = globals;
    }

    pub(crate) fn emit(&mut self, d: Diagnostic) {
        (self.diagnostics)(d);
    }

    fn emit_parse_warnings(&mut self, warnings: Vec<Warning>) {
        for w in warnings {
            self.emit(crate::eval::parse_warning(w));
        }
    }

    /// Parse `text` (from `origin`, relative paths against `base_dir`).
    pub fn parse(&mut self, text: &str, origin: Origin, base_dir: &str) -> EvalResult<ExprRef> {
        let parsed = lower::parse(text, origin, base_dir, &self.globals, &self.settings.parse)?;
        self.emit_parse_warnings(parsed.warnings);
        Ok(parsed.expr)
    }

    /// Evaluate an expression in the global scope, to weak head normal form.
    pub fn eval_expr(&mut self, e: ExprRef) -> EvalResult<Value> {
        let env = self.base_env.clone();
        self.eval(e, &env)
    }

    /// Evaluate the text of an expression (`--expr`), relative paths against `base_dir`.
    pub fn eval_string(&mut self, text: &str, base_dir: &str) -> EvalResult<Value> {
        let e = self.parse(text, Origin::String, base_dir)?;
        self.eval_expr(e)
    }

    /// Evaluate a file (like `import`).
    pub fn eval_file(&mut self, path: &Path) -> EvalResult<Value> {
        let v = self.import_path(path, Pos::NONE)?;
        self.force(&v, Pos::NONE)
    }

    // ---- forcing ---------------------------------------------------------------------------

    /// Force a value to weak head normal form.
    #[inline]
    pub fn force(&mut self, v: &Value, pos: Pos) -> EvalResult<Value> {
        match v {
            Value::Thunk(t) => self.force_thunk(t, pos),
            _ => Ok(v.clone()),
        }
    }

    fn force_thunk(&mut self, t: &Shared<Thunk>, pos: Pos) -> EvalResult<Value> {
        match t.peek() {
            ThunkState::Done(v) => return Ok(v.clone()),
            ThunkState::Failed(e) => return Err(e.clone()),
            _ => {}
        }
        let state = t.replace(ThunkState::Blackhole);
        let result = match &state {
            ThunkState::Pending(e, env) => self.eval(e, env),
            ThunkState::Apply(f, a) => self.call_value(f, std::slice::from_ref(a), pos),
            ThunkState::Apply2(fab) => {
                self.call_value(&fab.0, &[fab.1.clone(), fab.2.clone()], pos)
            }
            ThunkState::Blackhole => {
                let mut e = EvalError::new(
                    ErrorKind::InfiniteRecursion,
                    "infinite recursion encountered",
                );
                e.pos = pos;
                return Err(e);
            }
            ThunkState::Done(_) | ThunkState::Failed(_) => unreachable!("handled above"),
        };
        match result {
            Ok(v) => {
                t.replace(ThunkState::Done(v.clone()));
                Ok(v)
            }
            Err(e) => {
                t.replace(ThunkState::Failed(e.clone()));
                drop(state);
                Err(e)
            }
        }
    }

    /// Force and fully evaluate (`deepSeq`).
    pub fn force_deep(&mut self, v: &Value, pos: Pos) -> EvalResult<Value> {
        let v = self.force(v, pos)?;
        let mut seen = rustc_hash::FxHashSet::default();
        self.force_deep_inner(&v, pos, &mut seen)?;
        Ok(v)
    }

    fn force_deep_inner(
        &mut self,
        v: &Value,
        pos: Pos,
        seen: &mut rustc_hash::FxHashSet<usize>,
    ) -> EvalResult<()> {
        if !matches!(v, Value::Attrs(_) | Value::List(_)) {
            return Ok(());
        }
        // Nix counts each level of `deepSeq` as a call.
        self.check_call_depth(pos)?;
        self.call_depth += 1;
        let r = self.force_deep_level(v, pos, seen);
        self.call_depth -= 1;
        r
    }

    fn force_deep_level(
        &mut self,
        v: &Value,
        pos: Pos,
        seen: &mut rustc_hash::FxHashSet<usize>,
    ) -> EvalResult<()> {
        match v {
            Value::Attrs(a) => {
                if !seen.insert(a.as_ptr() as usize) {
                    return Ok(());
                }
                for attr in a.iter() {
                    let x = self.force(&attr.value, attr.pos).map_err(|e| {
                        e.frame(
                            attr.pos,
                            format!("while evaluating the attribute '{}'", attr.name),
                        )
                    })?;
                    self.force_deep_inner(&x, attr.pos, seen).map_err(|e| {
                        e.frame(
                            attr.pos,
                            format!("while evaluating the attribute '{}'", attr.name),
                        )
                    })?;
                }
            }
            Value::List(l) => {
                if !seen.insert(ThinRc::as_ptr(l) as usize) {
                    return Ok(());
                }
                for (i, item) in l.iter().enumerate() {
                    let x = self.force(item, pos)?;
                    self.force_deep_inner(&x, pos, seen).map_err(|e| {
                        e.frame(pos, format!("while evaluating list element at index {i}"))
                    })?;
                }
            }
            _ => {}
        }
        Ok(())
    }

    // ---- evaluation --------------------------------------------------------------------------

    #[inline]
    fn env_at(env: &Env, level: u32) -> &Env {
        let mut e: &Env = env;
        for _ in 0..level {
            e = e.up().expect("static scoping guarantees the level exists");
        }
        e
    }

    /// The value of `e` in `env` without evaluating it: constants, variables and functions
    /// directly, anything else as a thunk.
    #[inline]
    pub(crate) fn lazy(&mut self, e: ExprRef, env: &Env) -> Value {
        match e {
            Expr::Const(v) => v.clone(),
            Expr::Var(v) => Self::env_at(env, v.level).get(v.slot as usize),
            Expr::Global(v) => self.base_env.get(v.slot as usize),
            Expr::Lambda(def) => Value::Lambda(Shared::new(Closure {
                def,
                env: env.clone(),
            })),
            _ => Thunk::new(e, env.clone()),
        }
    }

    /// Like `lazy`, for a scope whose own slots are still being filled (`let`, `rec`,
    /// formals): variables of that scope (level 0) become thunks.
    #[inline]
    fn lazy_rec(&mut self, e: ExprRef, env: &Env) -> Value {
        match e {
            Expr::Var(v) if v.level == 0 => Thunk::new(e, env.clone()),
            _ => self.lazy(e, env),
        }
    }

    /// `eval` with the cheapest expressions (constants, variables) handled inline.
    #[inline(always)]
    pub(crate) fn eval_fast(&mut self, e: ExprRef, env: &Env) -> EvalResult<Value> {
        match e {
            Expr::Const(v) => Ok(v.clone()),
            Expr::Var(v) => {
                let env = Self::env_at(env, v.level);
                match env.get_ref(v.slot as usize) {
                    // The slot is not replaced while its thunk is forced (see `Env::get_ref`).
                    Value::Thunk(t) => self.force_thunk(t, v.pos),
                    other => Ok(other.clone()),
                }
            }
            _ => self.eval(e, env),
        }
    }

    /// Evaluate `e` in `env` to weak head normal form.
    pub(crate) fn eval(&mut self, e: ExprRef, env: &Env) -> EvalResult<Value> {
        if crate::stack::here() < self.stack_limit {
            return Err(crate::stack::overflow(e.pos()));
        }
        let mut e = e;
        loop {
            match e {
                Expr::Const(v) => return Ok(v.clone()),
                Expr::Var(v) => {
                    return match Self::env_at(env, v.level).get_ref(v.slot as usize) {
                        Value::Thunk(t) => self.force_thunk(t, v.pos),
                        other => Ok(other.clone()),
                    };
                }
                Expr::Global(v) => {
                    let val = self.base_env.get(v.slot as usize);
                    return self.force(&val, v.pos);
                }
                Expr::Call { pos, func, args } => return self.eval_call(func, args, *pos, env),
                Expr::If {
                    pos,
                    cond,
                    then,
                    else_,
                } => {
                    let c = match self.eval_fast(cond, env)? {
                        Value::Bool(b) => b,
                        other => {
                            return Err(self.bool_error(
                                &other,
                                *pos,
                                "while evaluating a branch condition",
                            ));
                        }
                    };
                    e = if c { then } else { else_ };
                }
                Expr::Arith { pos, op, lhs, rhs } => {
                    let a = self.eval_fast(lhs, env)?;
                    let b = self.eval_fast(rhs, env)?;
                    return self.arith(*op, &a, &b, *pos);
                }
                Expr::Select(s) => return self.eval_select(s, env),
                Expr::Let(_) | Expr::With { .. } | Expr::Assert { .. } => {
                    return self.eval_scoped(e, env);
                }
                _ => return self.eval_other(e, env),
            }
        }
    }

    /// `let`, `with` and `assert`, whose bodies are evaluated in a loop rather than by
    /// recursion (and may introduce environments).
    #[inline(never)]
    fn eval_scoped(&mut self, e: ExprRef, env: &Env) -> EvalResult<Value> {
        let mut e = e;
        let mut holder: Option<Env> = None;
        loop {
            let env: &Env = match &holder {
                Some(h) => h,
                None => env,
            };
            match e {
                Expr::Let(l) => {
                    let new_env = self.let_env(l, env);
                    e = l.body;
                    holder = Some(new_env);
                }
                Expr::With {
                    namespace, body, ..
                } => {
                    let ns = self.lazy(namespace, env);
                    let new_env = Env::with_values(Some(env.clone()), [ns]);
                    e = body;
                    holder = Some(new_env);
                }
                Expr::Assert { pos, cond, body } => {
                    let c = self.eval_bool(
                        cond,
                        env,
                        *pos,
                        "while evaluating the condition of the assertion",
                    )?;
                    if !c {
                        return Err(self.assertion_failed(cond, env, *pos));
                    }
                    e = body;
                }
                _ => return self.eval(e, env),
            }
        }
    }

    #[inline(never)]
    fn eval_call(
        &mut self,
        func: ExprRef,
        args: &'static [ExprRef],
        pos: Pos,
        env: &Env,
    ) -> EvalResult<Value> {
        let f = self.eval_fast(func, env)?;
        if args.len() == 1 {
            let a = self.lazy(args[0], env);
            // The common case, without `call_forced`'s loop and a copy of the argument.
            if let Value::Lambda(c) = &f {
                return self.call_lambda(c, a, pos);
            }
            return self.call_forced(f, std::slice::from_ref(&a), pos);
        }
        if let [a, b] = args {
            let argv = [self.lazy(a, env), self.lazy(b, env)];
            return self.call_forced(f, &argv, pos);
        }
        let mut argv: smallvec::SmallVec<[Value; 4]> = smallvec::SmallVec::new();
        for a in args {
            argv.push(self.lazy(a, env));
        }
        self.call_forced(f, &argv, pos)
    }

    /// The less common expressions, out of `eval`'s way.
    #[inline(never)]
    fn eval_other(&mut self, e: ExprRef, env: &Env) -> EvalResult<Value> {
        match e {
            Expr::WithVar(w) => {
                let val = self.lookup_with(w, env)?;
                self.force(&val, w.pos)
            }
            Expr::InheritFrom { pos, level, slot } => {
                let val = Self::env_at(env, *level).get(*slot as usize);
                self.force(&val, *pos)
            }
            Expr::HasAttr { expr, path, .. } => self.eval_has_attr(expr, path, env),
            Expr::Attrs(a) => self.eval_attrs(a, env),
            Expr::List(items) => {
                if items.is_empty() {
                    return Ok(Value::List(self.empty_list.clone()));
                }
                let v: Vec<Value> = items.iter().map(|i| self.lazy(i, env)).collect();
                Ok(Value::list(v))
            }
            Expr::Lambda(def) => Ok(Value::Lambda(Shared::new(Closure {
                def,
                env: env.clone(),
            }))),
            Expr::Not { expr, .. } => {
                let b =
                    self.eval_bool(expr, env, Pos::NONE, "in the argument of the not operator")?;
                Ok(Value::Bool(!b))
            }
            Expr::BinOp { pos, op, lhs, rhs } => self.eval_binop(*op, *pos, lhs, rhs, env),
            Expr::ConcatStrings {
                pos,
                force_string,
                parts,
            } => self.eval_concat_strings(*pos, *force_string, parts, env),
            Expr::CurPos(pos) => Ok(self.pos_to_attrs(*pos)),
            _ => self.eval(e, env),
        }
    }

    #[inline]
    pub(crate) fn eval_bool(
        &mut self,
        e: ExprRef,
        env: &Env,
        pos: Pos,
        ctx: &str,
    ) -> EvalResult<bool> {
        match self.eval_fast(e, env)? {
            Value::Bool(b) => Ok(b),
            other => Err(self.bool_error(&other, pos, ctx)),
        }
    }

    #[cold]
    #[inline(never)]
    fn bool_error(&mut self, v: &Value, pos: Pos, ctx: &str) -> Box<EvalError> {
        self.type_error("a Boolean", v).at(pos).frame(pos, ctx)
    }

    fn lookup_with(&mut self, w: &WithVarRef, env: &Env) -> EvalResult<Value> {
        for &level in w.withs.iter() {
            let ns = Self::env_at(env, level).get(0);
            let ns = self.force(&ns, w.pos)?;
            match &ns {
                Value::Attrs(a) => {
                    if let Some(v) = a.get(w.name) {
                        return Ok(v.clone());
                    }
                }
                other => {
                    return Err(self.type_error("a set", other).frame(
                        w.pos,
                        "while evaluating the first subexpression of a with expression",
                    ));
                }
            }
        }
        let mut e = EvalError::eval(format!("undefined variable '{}'", w.name));
        e.pos = w.pos;
        Err(e)
    }

    fn let_env(&mut self, l: &'static LetDef, env: &Env) -> Env {
        let new_env = Env::new(Some(env.clone()), l.attrs.len());
        let inh_env = if l.inherit_from.is_empty() {
            None
        } else {
            let vals: Vec<Value> = l
                .inherit_from
                .iter()
                .map(|f| self.lazy_rec(f, &new_env))
                .collect();
            Some(Env::with_values(Some(new_env.clone()), vals))
        };
        for (i, a) in l.attrs.iter().enumerate() {
            let v = match a.kind {
                AttrKind::Plain => self.lazy_rec(a.value, &new_env),
                AttrKind::Inherited => self.lazy(a.value, env),
                AttrKind::InheritedFrom => {
                    Thunk::new(a.value, inh_env.clone().expect("has inherit-from env"))
                }
            };
            new_env.set(i, v);
        }
        new_env
    }

    /// `{ file, line, column }` for `__curPos` and `unsafeGetAttrPos`.
    pub(crate) fn pos_to_attrs(&mut self, pos: Pos) -> Value {
        let Some(loc) = pos.resolve() else {
            return Value::Null;
        };
        let file = match &loc.source.origin {
            Origin::File(p) => p.to_string_lossy().into_owned(),
            other => other.to_string(),
        };
        Value::attrs(Attrs::from_unsorted(vec![
            Attr {
                name: Sym::FILE,
                pos: Pos::NONE,
                value: Value::string(file),
            },
            Attr {
                name: Sym::LINE,
                pos: Pos::NONE,
                value: Value::Int(loc.line as i64),
            },
            Attr {
                name: Sym::COLUMN,
                pos: Pos::NONE,
                value: Value::Int(loc.column as i64),
            },
        ]))
    }

    /// The name `s` as a string value (shared: attribute names become strings often).
    #[inline]
    pub(crate) fn sym_string(&mut self, s: Sym) -> Value {
        self.sym_strings
            .entry(s)
            .or_insert_with(|| Value::string(s.as_str()))
            .clone()
    }

    // ---- errors ----------------------------------------------------------------------------

    /// "expected X but found Y: V" at `pos`, in the frame `ctx` (the typed forcing helpers).
    #[cold]
    fn wrong_type<'c>(
        &mut self,
        expected: &str,
        found: &Value,
        pos: Pos,
        ctx: impl Into<Ctx<'c>>,
    ) -> Box<EvalError> {
        self.type_error(expected, found)
            .at(pos)
            .frame(pos, ctx.into().render())
    }

    /// "expected X but found Y: V".
    pub(crate) fn type_error(&mut self, expected: &str, found: &Value) -> Box<EvalError> {
        let shown = crate::print::print_for_error(self, found);
        EvalError::eval(format!(
            "expected {expected} but found {}: {shown}",
            found.typ().showtype()
        ))
    }

    pub(crate) fn error(&self, msg: impl Into<String>, pos: Pos) -> Box<EvalError> {
        let mut e = EvalError::eval(msg);
        e.pos = pos;
        e
    }

    // ---- typed forcing helpers ----------------------------------------------------------------

    /// Force to an attribute set.
    pub fn force_attrs<'c>(
        &mut self,
        v: &Value,
        pos: Pos,
        ctx: impl Into<Ctx<'c>>,
    ) -> EvalResult<AttrSet> {
        let v = self.force(v, pos)?;
        self.expect_attrs(v, pos, ctx)
    }

    /// An evaluated value as an attribute set.
    pub(crate) fn expect_attrs<'c>(
        &mut self,
        v: Value,
        pos: Pos,
        ctx: impl Into<Ctx<'c>>,
    ) -> EvalResult<AttrSet> {
        match v {
            Value::Attrs(a) => Ok(a),
            other => Err(self.wrong_type("a set", &other, pos, ctx)),
        }
    }

    /// Force to a list.
    pub fn force_list<'c>(
        &mut self,
        v: &Value,
        pos: Pos,
        ctx: impl Into<Ctx<'c>>,
    ) -> EvalResult<List> {
        let v = self.force(v, pos)?;
        self.expect_list(v, pos, ctx)
    }

    /// An evaluated value as a list.
    pub(crate) fn expect_list<'c>(
        &mut self,
        v: Value,
        pos: Pos,
        ctx: impl Into<Ctx<'c>>,
    ) -> EvalResult<List> {
        match v {
            Value::List(l) => Ok(l),
            other => Err(self.wrong_type("a list", &other, pos, ctx)),
        }
    }

    /// Force to an integer.
    pub fn force_int<'c>(
        &mut self,
        v: &Value,
        pos: Pos,
        ctx: impl Into<Ctx<'c>>,
    ) -> EvalResult<i64> {
        match self.force(v, pos)? {
            Value::Int(i) => Ok(i),
            other => Err(self.wrong_type("an integer", &other, pos, ctx)),
        }
    }

    /// Force to a float (integers convert).
    pub fn force_float<'c>(
        &mut self,
        v: &Value,
        pos: Pos,
        ctx: impl Into<Ctx<'c>>,
    ) -> EvalResult<f64> {
        match self.force(v, pos)? {
            Value::Float(f) => Ok(f),
            Value::Int(i) => Ok(i as f64),
            other => Err(self.wrong_type("a float", &other, pos, ctx)),
        }
    }

    /// Force to a Boolean.
    pub fn force_bool<'c>(
        &mut self,
        v: &Value,
        pos: Pos,
        ctx: impl Into<Ctx<'c>>,
    ) -> EvalResult<bool> {
        match self.force(v, pos)? {
            Value::Bool(b) => Ok(b),
            other => Err(self.wrong_type("a Boolean", &other, pos, ctx)),
        }
    }

    /// Force to a function.
    pub fn force_function<'c>(
        &mut self,
        v: &Value,
        pos: Pos,
        ctx: impl Into<Ctx<'c>>,
    ) -> EvalResult<Value> {
        let f = self.force(v, pos)?;
        match &f {
            Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_) => Ok(f),
            Value::Attrs(a) if a.contains(Sym::FUNCTOR) => Ok(f),
            other => Err(self.wrong_type("a function", other, pos, ctx)),
        }
    }

    /// Force to a string (no coercion), keeping its context.
    pub fn force_string<'c>(
        &mut self,
        v: &Value,
        pos: Pos,
        ctx: impl Into<Ctx<'c>>,
    ) -> EvalResult<Shared<NixStr>> {
        match self.force(v, pos)? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong_type("a string", &other, pos, ctx)),
        }
    }

    /// Force to a string without context.
    pub fn force_string_no_ctx<'c>(
        &mut self,
        v: &Value,
        pos: Pos,
        ctx: impl Into<Ctx<'c>>,
    ) -> EvalResult<Shared<NixStr>> {
        let ctx = ctx.into();
        let s = self.force_string(v, pos, ctx)?;
        if let Some(c) = s.context() {
            let first = c
                .iter()
                .next()
                .map(|e| e.path().to_string())
                .unwrap_or_default();
            return Err(self
                .error(
                    format!(
                        "the string '{}' is not allowed to refer to a store path (such as '{}')",
                        s.to_str_lossy(),
                        first
                    ),
                    pos,
                )
                .frame(pos, ctx.render()));
        }
        Ok(s)
    }

    // ---- files -------------------------------------------------------------------------------

    pub(crate) fn read_file_recorded(&mut self, path: &Path) -> std::io::Result<Vec<u8>> {
        let r = self.io.read_file(path);
        match &r {
            Ok(bytes) => self.record.file(path, bytes),
            Err(_) => self.record.file_type(path, None),
        }
        r
    }

    pub(crate) fn file_type_recorded(&mut self, path: &Path, follow: bool) -> Option<FileType> {
        let t = if follow {
            self.io.file_type(path)
        } else {
            self.io.symlink_type(path)
        };
        let t = t.ok();
        self.record.file_type(path, t);
        t
    }

    pub(crate) fn env_var_recorded(&mut self, name: &str) -> Option<String> {
        let v = self.io.env_var(name);
        self.record.env_var(name, v.as_deref());
        v
    }
}

/// Run `f` on a thread with a big stack (deep but legitimate recursion must not crash the
/// process; real runaway recursion stops at the call depth limit first).
pub fn run_with_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    const STACK: usize = 1 << 30;
    std::thread::Builder::new()
        .name("envy-eval".into())
        .stack_size(STACK)
        .spawn(move || {
            crate::stack::set_size(STACK);
            f()
        })
        .expect("spawning the evaluator thread")
        .join()
        .unwrap_or_else(|p| std::panic::resume_unwind(p))
}
