//! Evaluating a Nix file or expression with envy-eval to a derivation in envy's store:
//! [`EvalRequest`] says what (an expression, or a file's function called with arguments),
//! [`Engine::instantiate`] evaluates it on a thread with a large stack, with the store and
//! realiser of the engine, and returns the `.drv` path and the evaluation's diagnostics.

use std::path::{Path, PathBuf};

use envy_eval::symbol::Sym;
use envy_eval::value::Value;
use envy_eval::{Diagnostic, EvalSettings, Evaluator, Pos};
use envy_store::StorePath;

use super::{Engine, EngineError};

/// An argument for a file's function (`--arg` / `--argstr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// A string (`--argstr`).
    Str(String),
    /// A list of strings.
    StrList(Vec<String>),
}

impl Arg {
    fn to_nix(&self) -> String {
        match self {
            Self::Str(s) => nix_string(s),
            Self::StrList(items) => {
                let items: Vec<String> = items.iter().map(|s| nix_string(s)).collect();
                format!("[ {} ]", items.join(" "))
            }
        }
    }
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct EvalRequest {
    /// Nix source of an expression whose value is a derivation.
    pub expr: String,
    /// The directory relative paths in `expr` are resolved against.
    pub base_dir: PathBuf,
    /// For error messages: what is evaluated (`pkgs/shell.nix`).
    pub what: String,
    /// Evaluation settings (`current_system`, `pure`, search path, …); the defaults are
    /// Nix's, with this machine's system.
    pub settings: EvalSettings,
}

impl EvalRequest {
    /// An expression, relative paths against `base_dir`.
    pub fn expr(expr: impl Into<String>, base_dir: &Path) -> Self {
        Self {
            expr: expr.into(),
            base_dir: base_dir.to_path_buf(),
            what: "the expression".to_owned(),
            settings: default_settings(base_dir),
        }
    }

    /// `import FILE`, called with `args` (as `nix-build FILE --arg NAME VALUE …` does; a
    /// function is called even with no arguments, so its defaults apply), then `attr_path`
    /// selected from the result.
    pub fn call_file(file: &Path, args: &[(&str, Arg)], attr_path: &[&str]) -> Self {
        let attrs: Vec<String> = args
            .iter()
            .map(|(name, value)| format!("{} = {};", nix_string(name), value.to_nix()))
            .collect();
        let mut expr = format!(
            "let f = import (/. + {}); in if builtins.isFunction f then f {{ {} }} else f",
            nix_string(&file.to_string_lossy()),
            attrs.join(" ")
        );
        for attr in attr_path {
            expr = format!("({expr}).{}", nix_string(attr));
        }
        let base = file.parent().unwrap_or(Path::new("/"));
        Self {
            what: format!("`{}`", file.display()),
            ..Self::expr(expr, base)
        }
    }
}

fn default_settings(cwd: &Path) -> EvalSettings {
    EvalSettings {
        current_system: envy_build::builder::host_system(),
        cwd: cwd.to_path_buf(),
        ..EvalSettings::default()
    }
}

/// A Nix string literal holding `s`.
pub fn nix_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' if chars.peek() == Some(&'{') => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An evaluated derivation.
#[derive(Debug, Clone)]
pub struct Instantiated {
    /// Its `.drv`, written into envy's store (with every derivation it depends on).
    pub drv_path: StorePath,
    /// Traces and warnings, rendered as Nix renders them, in order.
    pub diagnostics: Vec<String>,
}

fn render_diagnostic(d: Diagnostic) -> String {
    match d {
        Diagnostic::Trace(msg, _) => format!("trace: {msg}"),
        Diagnostic::Warning {
            msg,
            from_expr: true,
            ..
        } => format!("evaluation warning: {msg}"),
        Diagnostic::Warning {
            msg,
            pos,
            from_expr: false,
        } => envy_eval::error::render("warning", &msg, pos, &[], &[], false),
        Diagnostic::Rendered(s) => s,
    }
}

/// A short description of a value's type, for "evaluates to X, not to a derivation".
fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a Boolean",
        Value::Int(_) => "an integer",
        Value::Float(_) => "a float",
        Value::String(_) => "a string",
        Value::Path(_) => "a path",
        Value::Attrs(_) => "a set",
        Value::List(_) => "a list",
        Value::Lambda(_) | Value::PrimOp(_) | Value::PrimOpApp(_) => "a function",
        Value::Thunk(_) => "a thunk",
    }
}

impl Engine {
    /// Evaluate `request` to a derivation; its `.drv` (and all it depends on) is in envy's
    /// store afterwards, a temporary root of this process.
    pub fn instantiate(&self, request: EvalRequest) -> Result<Instantiated, EngineError> {
        let eval_store = self.eval_store();
        let realiser = self.realiser();
        let dir = self.store.store_dir().clone();
        let outcome = envy_eval::run_with_stack(move || {
            let diagnostics = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
            let sink = std::rc::Rc::clone(&diagnostics);
            let mut ev = Evaluator::builder()
                .settings(request.settings)
                .store(Box::new(eval_store))
                .realiser(Box::new(realiser))
                .diagnostics(Box::new(move |d| {
                    sink.borrow_mut().push(render_diagnostic(d))
                }))
                .build();
            let result = drv_path_of(&mut ev, &request.expr, &request.base_dir, &request.what);
            let diagnostics = diagnostics.take();
            (result, diagnostics)
        });
        let (result, diagnostics) = outcome;
        let drv_path = result?;
        let drv_path = dir.parse(&drv_path).map_err(|e| EngineError::Eval {
            message: format!("error: `drvPath` is not a store path: {e}"),
        })?;
        Ok(Instantiated {
            drv_path,
            diagnostics,
        })
    }
}

/// Evaluate `expr` and return its `drvPath`.
fn drv_path_of(
    ev: &mut Evaluator,
    expr: &str,
    base_dir: &Path,
    what: &str,
) -> Result<String, EngineError> {
    let eval_err = |e: Box<envy_eval::EvalError>| EngineError::Eval {
        message: e.render(false),
    };
    let v = ev
        .eval_string(expr, &base_dir.to_string_lossy())
        .map_err(eval_err)?;
    let v = ev.force(&v, Pos::NONE).map_err(eval_err)?;
    let not_drv = |found: &str| EngineError::NotADerivation {
        what: what.to_owned(),
        found: found.to_owned(),
    };
    let Value::Attrs(attrs) = &v else {
        return Err(not_drv(describe(&v)));
    };
    let is_drv = match attrs.get(Sym::new("type")) {
        Some(t) => matches!(ev.force(t, Pos::NONE).map_err(eval_err)?,
            Value::String(s) if s.as_bytes() == b"derivation"),
        None => false,
    };
    if !is_drv {
        return Err(not_drv("a set"));
    }
    let drv_path = attrs
        .get(Sym::new("drvPath"))
        .cloned()
        .ok_or_else(|| not_drv("a derivation without `drvPath`"))?;
    match ev.force(&drv_path, Pos::NONE).map_err(eval_err)? {
        Value::String(s) => Ok(s.to_str_lossy().into_owned()),
        other => Err(not_drv(&format!(
            "a derivation whose `drvPath` is {}",
            describe(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_strings_escape_what_nix_would_interpret() {
        assert_eq!(nix_string(r#"a"b\c${d}$e"#), r#""a\"b\\c\${d}$e""#);
        assert_eq!(nix_string("x\ny"), r#""x\ny""#);
    }

    #[test]
    fn call_file_builds_an_import_with_arguments_and_attributes() {
        let r = EvalRequest::call_file(
            Path::new("/p/shell.nix"),
            &[
                ("target", Arg::Str("aarch64".into())),
                ("packages", Arg::StrList(vec!["a".into(), "b.c".into()])),
            ],
            &["x"],
        );
        assert_eq!(
            r.expr,
            r#"(let f = import (/. + "/p/shell.nix"); in if builtins.isFunction f then f { "target" = "aarch64"; "packages" = [ "a" "b.c" ]; } else f)."x""#
        );
        assert_eq!(r.base_dir, Path::new("/p"));
    }
}
