//! Evaluation errors and their rendering in Nix's format: `error: …`, `at FILE:LINE:COL:`
//! with a code frame, and the chain of `… while …` frames (all of them with `--show-trace`,
//! otherwise the innermost few, as Nix does).
//!
//! `throw` and failed `assert`s are catchable (`builtins.tryEval`); everything else is not.

use std::collections::BTreeSet;
use std::fmt;

use crate::source::{Location, Pos};

/// The result of evaluating something.
pub type EvalResult<T> = Result<T, Box<EvalError>>;

/// What kind of error this is, as far as the language cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// `throw` (catchable).
    Throw,
    /// A failed `assert` (catchable).
    Assert,
    /// `abort`.
    Abort,
    /// A syntax or static error found while parsing.
    Parse,
    /// Infinite recursion detected by black-holing.
    InfiniteRecursion,
    /// The call depth limit was reached.
    StackOverflow,
    /// Anything else: type errors, missing attributes, I/O failures…
    Eval,
}

/// One `… while …` frame.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Frame {
    /// Where, if known.
    pub pos: Pos,
    /// What was going on.
    pub msg: String,
    /// Shown even when the trace is truncated (`addErrorContext`, derivations).
    pub always: bool,
}

/// An evaluation error.
#[derive(Clone, Debug)]
pub struct EvalError {
    /// The kind.
    pub kind: ErrorKind,
    /// The message (the text after `error: `).
    pub msg: String,
    /// Where it happened, if known.
    pub pos: Pos,
    /// Context frames, innermost first.
    pub frames: Vec<Frame>,
    /// "Did you mean …?" candidates.
    pub suggestions: Vec<String>,
}

impl EvalError {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, msg: impl Into<String>) -> Box<EvalError> {
        Box::new(EvalError {
            kind,
            msg: msg.into(),
            pos: Pos::NONE,
            frames: Vec::new(),
            suggestions: Vec::new(),
        })
    }

    /// A plain (uncatchable) evaluation error.
    pub fn eval(msg: impl Into<String>) -> Box<EvalError> {
        EvalError::new(ErrorKind::Eval, msg)
    }

    /// Whether `builtins.tryEval` catches it.
    pub fn is_catchable(&self) -> bool {
        matches!(self.kind, ErrorKind::Throw | ErrorKind::Assert)
    }

    /// Render in Nix's format (without a trailing newline).
    pub fn render(&self, show_trace: bool) -> String {
        render(
            "error",
            &self.msg,
            self.pos,
            &self.frames,
            &self.suggestions,
            show_trace,
        )
    }
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

impl std::error::Error for EvalError {}

/// Builder-style helpers on boxed errors.
pub trait ErrorExt {
    /// Set the position if none is set yet.
    fn at(self, pos: Pos) -> Self;
    /// Add a context frame (outside the existing ones).
    fn frame(self, pos: Pos, msg: impl Into<String>) -> Self;
    /// Add a frame that is always shown.
    fn frame_always(self, pos: Pos, msg: impl Into<String>) -> Self;
}

impl ErrorExt for Box<EvalError> {
    fn at(mut self, pos: Pos) -> Self {
        if !self.pos.is_some() {
            self.pos = pos;
        }
        self
    }

    fn frame(mut self, pos: Pos, msg: impl Into<String>) -> Self {
        self.frames.push(Frame {
            pos,
            msg: msg.into(),
            always: false,
        });
        self
    }

    fn frame_always(mut self, pos: Pos, msg: impl Into<String>) -> Self {
        self.frames.push(Frame {
            pos,
            msg: msg.into(),
            always: true,
        });
        self
    }
}

/// Results can take frames directly.
pub trait ResultExt<T> {
    /// Add a frame on error.
    fn frame(self, pos: Pos, msg: impl FnOnce() -> String) -> EvalResult<T>;
    /// Set the position on error if none.
    fn at(self, pos: Pos) -> EvalResult<T>;
}

impl<T> ResultExt<T> for EvalResult<T> {
    #[inline]
    fn frame(self, pos: Pos, msg: impl FnOnce() -> String) -> EvalResult<T> {
        self.map_err(|e| e.frame(pos, msg()))
    }

    #[inline]
    fn at(self, pos: Pos) -> EvalResult<T> {
        self.map_err(|e| e.at(pos))
    }
}

/// Write `at FILE:L:C:` and the code frame (as Nix's `printCodeLines`).
fn write_pos(out: &mut String, indent: &str, loc: &Location) {
    out.push_str(indent);
    out.push_str(&format!("at {loc}:"));
    let line = loc.line;
    let src = &loc.source;
    if let Some(err_line) = src.line_text(line) {
        if line > 1
            && let Some(prev) = src.line_text(line - 1)
        {
            out.push_str(&format!("\n {:>5}| {}", line - 1, prev));
        }
        out.push_str(&format!("\n {line:>5}| {err_line}"));
        out.push_str(&format!("\n      |{}^", " ".repeat(loc.column as usize)));
        if let Some(next) = src.line_text(line + 1) {
            out.push_str(&format!("\n {:>5}| {}", line + 1, next));
        }
    }
    out.push('\n');
}

fn write_frame(out: &mut String, frame: &Frame) {
    out.push_str(&format!("\n… {}\n", frame.msg));
    if let Some(loc) = frame.pos.resolve() {
        write_pos(out, "  ", &loc);
    }
}

fn flush_skipped(out: &mut String, skipped: &mut Vec<&Frame>, seen: &mut BTreeSet<Frame>) {
    if skipped.is_empty() {
        return;
    }
    if skipped.len() <= 5 {
        for f in skipped.iter() {
            write_frame(out, f);
        }
    } else {
        out.push_str(&format!("\n({} duplicate frames omitted)\n", skipped.len()));
        seen.clear();
    }
    skipped.clear();
}

/// Nix's `showErrorInfo`: `level` is `error` or `warning`; `frames` innermost first.
pub fn render(
    level: &str,
    msg: &str,
    pos: Pos,
    frames: &[Frame],
    suggestions: &[String],
    show_trace: bool,
) -> String {
    let prefix = format!("{level}: ");
    let mut oss = String::new();
    let frames: Vec<&Frame> = frames.iter().rev().filter(|f| !f.msg.is_empty()).collect();
    if !frames.is_empty() {
        let mut seen: BTreeSet<Frame> = BTreeSet::new();
        let mut skipped: Vec<&Frame> = Vec::new();
        let mut count = 0usize;
        let mut truncated = false;
        for f in frames {
            if !show_trace && count > 3 {
                truncated = true;
            }
            if truncated && !f.always {
                continue;
            }
            if seen.contains(f) {
                skipped.push(f);
                continue;
            }
            seen.insert(f.clone());
            flush_skipped(&mut oss, &mut skipped, &mut seen);
            count += 1;
            write_frame(&mut oss, f);
            if f.pos.is_some() {
                count += 1;
            }
        }
        flush_skipped(&mut oss, &mut skipped, &mut seen);
        if truncated {
            oss.push_str(
                "\n(stack trace truncated; use '--show-trace' to show the full, detailed trace)\n",
            );
        }
        oss.push('\n');
        oss.push_str(&prefix);
    }
    oss.push_str(msg);
    oss.push('\n');
    if let Some(loc) = pos.resolve() {
        write_pos(&mut oss, "", &loc);
    }
    if !suggestions.is_empty() {
        oss.push_str(&format!("Did you mean {}?\n", english_or(suggestions)));
    }
    indent(&prefix, &" ".repeat(prefix.chars().count()), oss.trim_end())
}

fn english_or(items: &[String]) -> String {
    if items.len() == 1 {
        return items[0].clone();
    }
    let (last, rest) = items.split_last().expect("non-empty");
    format!("one of {} or {}", rest.join(", "), last)
}

fn indent(first: &str, rest: &str, s: &str) -> String {
    let mut out = String::new();
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let l = format!("{}{}", if i == 0 { first } else { rest }, line);
        out.push_str(l.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::{Origin, add_source};

    #[test]
    fn renders_like_nix() {
        let id = add_source(
            Origin::File("/pwd/lang/x.nix".into()),
            "if true then abort \"this should fail\" else 1\n".into(),
        );
        let mut e = EvalError::new(
            ErrorKind::Abort,
            "evaluation aborted with the following error message: 'this should fail'",
        );
        e = e.frame(Pos::new(id, 13), "while calling the 'abort' builtin");
        let expected = "error:
       … while calling the 'abort' builtin
         at /pwd/lang/x.nix:1:14:
            1| if true then abort \"this should fail\" else 1
             |              ^
            2|

       error: evaluation aborted with the following error message: 'this should fail'";
        assert_eq!(e.render(true), expected);
    }
}
