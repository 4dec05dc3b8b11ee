//! Lowering: rnix's lossless tree into the evaluator's IR, with every static check Nix
//! makes while parsing (rnix makes none): duplicate attributes, also across nested
//! `a.b = …; a = { … };` forms, duplicate formals, dynamic attributes where they are not
//! allowed, undefined variables (outside `with`), path literal rules and lints. Errors carry
//! Nix's texts and positions.
//!
//! Syntax errors themselves are rnix's, translated to Nix's wording in `syntax_error`.

mod depth;
mod scope;
pub mod strings;
mod syntax_error;

use std::rc::Rc;

use rnix::SyntaxKind::*;
use rnix::ast::{self, AstToken, HasEntry, InterpolPart};
use rnix::{SyntaxNode, TextSize};
use rowan::ast::AstNode;
use rustc_hash::FxHashMap;

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::ir::*;
use crate::source::{Origin, Pos, SourceId, add_source};
use crate::symbol::Sym;
use crate::value::{NixStr, Value};

use scope::{Resolved, Scope, Scopes};
use strings::{IndPart, StrippedPart};

/// What a lint does when it fires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Lint {
    /// Nothing.
    #[default]
    Ignore,
    /// Print a warning.
    Warn,
    /// Fail.
    Fatal,
}

/// Parser settings.
#[derive(Clone, Debug, Default)]
pub struct ParseOptions {
    /// `foo/bar` instead of `./foo/bar`.
    pub lint_short_path_literals: Lint,
    /// `/abs` and `~/home` path literals.
    pub lint_absolute_path_literals: Lint,
    /// Unquoted URLs.
    pub lint_url_literals: Lint,
    /// Allow `|>` and `<|`.
    pub pipe_operators: bool,
    /// The home directory for `~/` paths.
    pub home: Option<String>,
}

/// A warning found while parsing.
#[derive(Clone, Debug)]
pub struct Warning {
    /// The text (after `warning: `).
    pub msg: String,
    /// Where.
    pub pos: Pos,
    /// Printed as is, without a code frame (the position is part of `msg`).
    pub plain: bool,
}

/// A lowered program.
pub struct Parsed {
    /// The expression.
    pub expr: ExprRef,
    /// Lint warnings.
    pub warnings: Vec<Warning>,
    /// The registered source.
    pub source: SourceId,
}

/// Parse and lower `text`. `base_dir` resolves relative paths; `globals` maps the names in
/// the global scope to their slots.
pub fn parse(
    text: &str,
    origin: Origin,
    base_dir: &str,
    globals: &FxHashMap<Sym, u32>,
    opts: &ParseOptions,
) -> EvalResult<Parsed> {
    parse_in_scope(text, origin, base_dir, globals, None, opts)
}

/// Like `parse`, with an extra scope between the globals and the file (`scopedImport`): its
/// names live in an environment whose parent is the global one.
pub fn parse_in_scope(
    text: &str,
    origin: Origin,
    base_dir: &str,
    globals: &FxHashMap<Sym, u32>,
    extra: Option<&FxHashMap<Sym, u32>>,
    opts: &ParseOptions,
) -> EvalResult<Parsed> {
    let source = add_source(origin, Rc::from(text));
    let parse = match depth::parse(text) {
        Ok(parse) => parse,
        Err(offset) => {
            // Bison's words for a full parser stack, as Nix prints them.
            let mut e = EvalError::new(ErrorKind::Parse, "memory exhausted");
            e.pos = Pos::new(source, offset);
            return Err(e);
        }
    };
    let root = parse.tree();
    if let Some(err) = syntax_error::first_error(&parse, text) {
        let mut e = EvalError::new(ErrorKind::Parse, err.msg);
        e.pos = Pos::new(source, err.offset);
        return Err(e);
    }
    let mut scopes = Scopes::new(globals.clone());
    if let Some(extra) = extra {
        scopes.push(Scope::Static(extra.clone()));
    }
    let mut l = Lowerer {
        src: source,
        base_dir,
        opts,
        scopes,
        warnings: Vec::new(),
    };
    let expr = match root.expr() {
        Some(e) => l.expr(e)?,
        None => {
            let mut e = EvalError::new(ErrorKind::Parse, "syntax error, unexpected end of file");
            e.pos = Pos::new(source, text.len() as u32);
            return Err(e);
        }
    };
    // Nix's parser warns as it reads, so in source order; the lowering visits the bindings
    // of a set in symbol order.
    l.warnings.sort_by_key(|w| w.pos);
    Ok(Parsed {
        expr,
        warnings: l.warnings,
        source,
    })
}

type R<T> = EvalResult<T>;

struct Lowerer<'a> {
    src: SourceId,
    base_dir: &'a str,
    opts: &'a ParseOptions,
    scopes: Scopes,
    warnings: Vec<Warning>,
}

/// An attribute path element while building sets.
#[derive(Clone)]
enum PathElem {
    Static(Sym),
    Dynamic(ast::Attr),
}

/// A set (or `let`) under construction, before lowering, so that `a.b = 1; a.c = 2;` and
/// `a = { … };` can merge as Nix merges them.
struct Binds {
    pos: Pos,
    rec: bool,
    attrs: Vec<BAttr>,
    index: FxHashMap<Sym, usize>,
    dynamic: Vec<BDyn>,
    inherit_from: Vec<ast::Expr>,
}

struct BAttr {
    name: Sym,
    pos: Pos,
    value: BValue,
    kind: AttrKind,
    lambda_name: Option<Sym>,
}

enum BValue {
    Ast(ast::Expr),
    Nested(Box<Binds>),
    Inherit(Pos),
    InheritFrom(usize, Pos),
}

struct BDyn {
    pos: Pos,
    name: ast::Attr,
    value: BValue,
}

impl Binds {
    fn new(pos: Pos, rec: bool) -> Binds {
        Binds {
            pos,
            rec,
            attrs: Vec::new(),
            index: FxHashMap::default(),
            dynamic: Vec::new(),
            inherit_from: Vec::new(),
        }
    }
}

fn strip_parens(mut e: ast::Expr) -> ast::Expr {
    while let ast::Expr::Paren(p) = &e {
        match p.expr() {
            Some(inner) => e = inner,
            None => break,
        }
    }
    e
}

fn print_identifier(s: &str) -> String {
    crate::print::identifier(s)
}

fn show_path(path: &[PathElem]) -> String {
    path.iter()
        .map(|p| match p {
            PathElem::Static(s) => print_identifier(s.as_str()),
            PathElem::Dynamic(_) => "\"${…}\"".to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

impl Lowerer<'_> {
    fn pos(&self, offset: TextSize) -> Pos {
        Pos::new(self.src, u32::from(offset))
    }

    fn node_pos(&self, n: &SyntaxNode) -> Pos {
        self.pos(n.text_range().start())
    }

    fn err(&self, pos: Pos, msg: impl Into<String>) -> Box<EvalError> {
        let mut e = EvalError::new(ErrorKind::Parse, msg);
        e.pos = pos;
        e
    }

    /// Nix warns when `f or` (a call of `f` with the variable `or`, the parse Nix keeps for
    /// old code) is used where its meaning will change: as an argument, a list element or
    /// an `or` default. In those places rnix's tree has it as an application whose argument
    /// is the identifier `or`.
    fn check_cursed_or(&mut self, e: &ast::Expr) {
        let ast::Expr::Apply(a) = e else { return };
        let Some(ast::Expr::Ident(arg)) = a.argument() else {
            return;
        };
        if ident_text(&arg) != "or" {
            return;
        }
        let range = a.syntax().text_range();
        let pos = self.pos(range.start());
        let loc = pos.resolve().map(|l| l.to_string()).unwrap_or_default();
        let text = a.syntax().text().to_string();
        self.warnings.push(Warning {
            msg: format!(
                "at {loc}: This expression uses `or` as an identifier in a way that will change in a future Nix release.\n\
                 Wrap this entire expression in parentheses to preserve its current meaning:\n    ({text})\n\
                 Give feedback at https://github.com/NixOS/nix/pull/11121"
            ),
            pos,
            plain: true,
        });
    }

    fn check_nul(&self, bytes: &[u8], pos: Pos) -> R<()> {
        if bytes.contains(&0) {
            let shown = String::from_utf8_lossy(bytes).replace('\0', "␀");
            return Err(self.err(
                pos,
                format!("input string '{shown}' cannot be represented as Nix string because it contains null bytes"),
            ));
        }
        Ok(())
    }

    fn lint(&mut self, lint: Lint, pos: Pos, msg: String) -> R<()> {
        match lint {
            Lint::Ignore => Ok(()),
            Lint::Warn => {
                self.warnings.push(Warning {
                    msg,
                    pos,
                    plain: false,
                });
                Ok(())
            }
            Lint::Fatal => Err(self.err(pos, msg)),
        }
    }

    fn constant(&self, v: Value) -> ExprRef {
        leak(Expr::Const(v))
    }

    fn var(&self, name: Sym, pos: Pos) -> R<ExprRef> {
        Ok(leak(match self.scopes.resolve(name) {
            Resolved::Static {
                level,
                slot,
                global,
            } => {
                let v = VarRef {
                    pos,
                    name,
                    level,
                    slot,
                };
                if global {
                    Expr::Global(v)
                } else {
                    Expr::Var(v)
                }
            }
            Resolved::With(withs) => Expr::WithVar(WithVarRef {
                pos,
                name,
                withs: withs.into_boxed_slice(),
            }),
            Resolved::Undefined => {
                return Err(self.err(pos, format!("undefined variable '{}'", name.as_str())));
            }
        }))
    }

    /// Whether `name` resolves to the builtin of that name (not shadowed).
    fn is_global(&self, name: Sym) -> bool {
        matches!(
            self.scopes.resolve(name),
            Resolved::Static { global: true, .. }
        )
    }

    fn arith(&self, pos: Pos, op: ArithOp, name: Sym, lhs: ExprRef, rhs: ExprRef) -> R<ExprRef> {
        if self.is_global(name) {
            Ok(leak(Expr::Arith { pos, op, lhs, rhs }))
        } else {
            let func = self.var(name, pos)?;
            Ok(leak(Expr::Call {
                pos,
                func,
                args: Box::new([lhs, rhs]),
            }))
        }
    }

    fn expr(&mut self, e: ast::Expr) -> R<ExprRef> {
        self.expr_named(e, None)
    }

    fn expr_named(&mut self, e: ast::Expr, name: Option<Sym>) -> R<ExprRef> {
        if crate::stack::exhausted() {
            return Err(crate::stack::overflow(self.node_pos(e.syntax())));
        }
        let pos = self.node_pos(e.syntax());
        match e {
            ast::Expr::Paren(p) => match p.expr() {
                Some(inner) => self.expr_named(inner, name),
                None => Err(self.err(pos, "syntax error, unexpected ')'")),
            },
            ast::Expr::Root(r) => match r.expr() {
                Some(inner) => self.expr(inner),
                None => Err(self.err(pos, "syntax error, unexpected end of file")),
            },
            ast::Expr::Lambda(l) => self.lambda(l, name),
            ast::Expr::Literal(lit) => self.literal(lit),
            ast::Expr::Ident(id) => {
                let text = ident_text(&id);
                if text == "__curPos" {
                    return Ok(leak(Expr::CurPos(pos)));
                }
                self.var(Sym::new(&text), pos)
            }
            ast::Expr::Str(s) => self.string(s),
            ast::Expr::PathAbs(_) | ast::Expr::PathRel(_) | ast::Expr::PathHome(_) => {
                self.path(e.syntax().clone())
            }
            ast::Expr::PathSearch(p) => {
                let text = p
                    .content()
                    .map(|c| c.text().to_string())
                    .unwrap_or_default();
                let inner = &text[1..text.len() - 1];
                let func = self.var(Sym::FIND_FILE, pos)?;
                let nix_path = self.var(Sym::NIX_PATH, pos)?;
                let arg = self.constant(Value::string(inner));
                Ok(leak(Expr::Call {
                    pos,
                    func,
                    args: Box::new([nix_path, arg]),
                }))
            }
            ast::Expr::List(l) => {
                let mut items = Vec::new();
                for item in l.items() {
                    self.check_cursed_or(&item);
                    items.push(self.expr(item)?);
                }
                Ok(leak(Expr::List(items.into_boxed_slice())))
            }
            ast::Expr::Apply(_) => self.apply(e),
            ast::Expr::Select(s) => self.select(s),
            ast::Expr::HasAttr(h) => {
                let expr = self.expr(h.expr().ok_or_else(|| self.err(pos, "syntax error"))?)?;
                let path = self.attr_path(h.attrpath())?;
                Ok(leak(Expr::HasAttr { pos, expr, path }))
            }
            ast::Expr::UnaryOp(u) => {
                let inner = self.expr(u.expr().ok_or_else(|| self.err(pos, "syntax error"))?)?;
                match u.operator() {
                    Some(ast::UnaryOpKind::Invert) => Ok(leak(Expr::Not { pos, expr: inner })),
                    _ => {
                        let zero = self.constant(Value::Int(0));
                        self.arith(pos, ArithOp::Sub, Sym::SUB, zero, inner)
                    }
                }
            }
            ast::Expr::BinOp(b) => self.binop(b),
            ast::Expr::IfElse(i) => {
                let c = self.sub(i.condition(), pos)?;
                let t = self.sub(i.body(), pos)?;
                let f = self.sub(i.else_body(), pos)?;
                Ok(leak(Expr::If {
                    pos,
                    cond: c,
                    then: t,
                    else_: f,
                }))
            }
            ast::Expr::Assert(a) => {
                let c = self.sub(a.condition(), pos)?;
                let b = self.sub(a.body(), pos)?;
                Ok(leak(Expr::Assert {
                    pos,
                    cond: c,
                    body: b,
                }))
            }
            ast::Expr::With(w) => {
                let ns = self.sub(w.namespace(), pos)?;
                self.scopes.push(Scope::With);
                let body = self.sub(w.body(), pos);
                self.scopes.pop();
                Ok(leak(Expr::With {
                    pos,
                    namespace: ns,
                    body: body?,
                }))
            }
            ast::Expr::AttrSet(a) => {
                let rec = a.rec_token().is_some();
                let mut binds = Binds::new(pos, rec);
                self.collect_binds(&mut binds, a.entries())?;
                self.lower_binds(binds)
            }
            ast::Expr::LegacyLet(l) => {
                let mut binds = Binds::new(pos, true);
                self.collect_binds(&mut binds, l.entries())?;
                let set = self.lower_binds(binds)?;
                Ok(leak(Expr::Select(Box::new(Select {
                    pos: Pos::NONE,
                    expr: set,
                    path: Box::new([AttrName::Static(Sym::BODY)]),
                    default: None,
                }))))
            }
            ast::Expr::LetIn(l) => {
                let mut binds = Binds::new(pos, true);
                self.collect_binds(&mut binds, l.entries())?;
                if !binds.dynamic.is_empty() {
                    return Err(self.err(pos, "dynamic attributes not allowed in let"));
                }
                let body = l.body().ok_or_else(|| self.err(pos, "syntax error"))?;
                self.lower_let(binds, body)
            }
            ast::Expr::CurPos(_) => Ok(leak(Expr::CurPos(pos))),
            ast::Expr::Error(_) => Err(self.err(pos, "syntax error")),
        }
    }

    fn sub(&mut self, e: Option<ast::Expr>, pos: Pos) -> R<ExprRef> {
        match e {
            Some(e) => self.expr(e),
            None => Err(self.err(pos, "syntax error, unexpected end of file")),
        }
    }

    fn literal(&mut self, lit: ast::Literal) -> R<ExprRef> {
        let pos = self.node_pos(lit.syntax());
        Ok(match lit.kind() {
            ast::LiteralKind::Integer(i) => {
                let text = i.syntax().text();
                match text.parse::<i64>() {
                    Ok(n) => self.constant(Value::Int(n)),
                    Err(_) => return Err(self.err(pos, format!("invalid integer '{text}'"))),
                }
            }
            ast::LiteralKind::Float(f) => {
                let text = f.syntax().text();
                match text.parse::<f64>() {
                    Ok(x) => self.constant(Value::Float(x)),
                    Err(_) => return Err(self.err(pos, format!("invalid float '{text}'"))),
                }
            }
            ast::LiteralKind::Uri(u) => {
                let text = u.syntax().text().to_string();
                self.lint(
                    self.opts.lint_url_literals,
                    pos,
                    format!(
                        "URL literals are disallowed. Consider using a string literal \"{text}\" instead (lint-url-literals)"
                    ),
                )?;
                self.constant(Value::string(text))
            }
        })
    }

    fn string(&mut self, s: ast::Str) -> R<ExprRef> {
        let pos = self.node_pos(s.syntax());
        let multiline = s
            .syntax()
            .children_with_tokens()
            .next()
            .and_then(|t| t.into_token())
            .is_some_and(|t| t.text() == "''");
        if !multiline {
            let mut parts: Vec<(Pos, ExprRef)> = Vec::new();
            let mut only_text: Option<Vec<u8>> = None;
            let mut n = 0;
            for part in s.parts() {
                n += 1;
                match part {
                    InterpolPart::Literal(lit) => {
                        let bytes = strings::unescape_str(lit.syntax().text());
                        let ppos = self.pos(lit.syntax().text_range().start());
                        self.check_nul(
                            &strings::restore_bytes(lit.syntax().text().as_bytes().to_vec()),
                            ppos,
                        )?;
                        only_text = Some(bytes.clone());
                        parts.push((ppos, self.constant(Value::string(bytes))));
                    }
                    InterpolPart::Interpolation(i) => {
                        let ppos = self.node_pos(i.syntax());
                        let e = self.sub(i.expr(), ppos)?;
                        parts.push((ppos, e));
                    }
                }
            }
            if n == 0 {
                return Ok(self.constant(Value::empty_string()));
            }
            if n == 1
                && let Some(bytes) = only_text
            {
                return Ok(self.constant(Value::string(bytes)));
            }
            return Ok(leak(Expr::ConcatStrings {
                pos,
                force_string: true,
                parts: parts.into_boxed_slice(),
            }));
        }
        // Indented string.
        let mut raw_parts: Vec<IndPart<ExprRef>> = Vec::new();
        let mut first = true;
        for part in s.parts() {
            match part {
                InterpolPart::Literal(lit) => {
                    let mut text = lit.syntax().text();
                    let mut base = u32::from(lit.syntax().text_range().start());
                    if first {
                        // The opening `''` swallows spaces and one newline.
                        let spaces = text.len() - text.trim_start_matches(' ').len();
                        if text[spaces..].starts_with('\n') {
                            text = &text[spaces + 1..];
                            base += spaces as u32 + 1;
                        }
                    }
                    for tok in strings::split_ind_segment(text) {
                        let p = base + tok.offset as u32;
                        if tok.has_indentation {
                            self.check_nul(&tok.bytes, Pos::new(self.src, p))?;
                        }
                        raw_parts.push(IndPart::Text(tok, p));
                    }
                }
                InterpolPart::Interpolation(i) => {
                    let ppos = self.node_pos(i.syntax());
                    let e = self.sub(i.expr(), ppos)?;
                    raw_parts.push(IndPart::Interp(
                        e,
                        u32::from(i.syntax().text_range().start()),
                    ));
                }
            }
            first = false;
        }
        let stripped = strings::strip_indentation(raw_parts);
        if stripped.is_empty() {
            return Ok(self.constant(Value::empty_string()));
        }
        if stripped.len() == 1
            && let StrippedPart::Text(bytes, _) = &stripped[0]
        {
            return Ok(self.constant(Value::string(bytes.clone())));
        }
        let parts: Vec<(Pos, ExprRef)> = stripped
            .into_iter()
            .map(|p| match p {
                StrippedPart::Text(bytes, off) => {
                    (Pos::new(self.src, off), self.constant(Value::string(bytes)))
                }
                StrippedPart::Interp(e, off) => (Pos::new(self.src, off), e),
            })
            .collect();
        Ok(leak(Expr::ConcatStrings {
            pos,
            force_string: true,
            parts: parts.into_boxed_slice(),
        }))
    }

    fn path(&mut self, node: SyntaxNode) -> R<ExprRef> {
        let pos = self.node_pos(&node);
        let mut parts: Vec<(Pos, ExprRef)> = Vec::new();
        let mut first = true;
        let mut interpolated = false;
        for child in node.children_with_tokens() {
            match child {
                rowan::NodeOrToken::Token(t) => {
                    let ppos = self.pos(t.text_range().start());
                    if first {
                        let lit = t.text();
                        let resolved = self.first_path_segment(t.kind(), lit, ppos)?;
                        parts.push((ppos, self.constant(Value::path(&resolved))));
                    } else {
                        parts.push((ppos, self.constant(Value::string(t.text()))));
                    }
                }
                rowan::NodeOrToken::Node(n) => {
                    interpolated = true;
                    let ppos = self.node_pos(&n);
                    let inner = ast::Interpol::cast(n).and_then(|i| i.expr());
                    let e = self.sub(inner, ppos)?;
                    parts.push((ppos, e));
                }
            }
            first = false;
        }
        if !interpolated && parts.len() == 1 {
            let lit = node.text().to_string();
            if lit.len() > 1 && lit.ends_with('/') {
                let end = self.pos(node.text_range().end());
                return Err(self.err(end, "path has a trailing slash"));
            }
            return Ok(parts[0].1);
        }
        Ok(leak(Expr::ConcatStrings {
            pos,
            force_string: false,
            parts: parts.into_boxed_slice(),
        }))
    }

    fn first_path_segment(&mut self, kind: rnix::SyntaxKind, lit: &str, pos: Pos) -> R<String> {
        let trailing = lit.len() > 1 && lit.ends_with('/');
        let mut path = match kind {
            TOKEN_PATH_HOME => {
                self.lint(
                    self.opts.lint_absolute_path_literals,
                    pos,
                    format!(
                        "home path literals are not portable. Consider replacing path literal '{lit}' by a string, relative path, or parameter (lint-absolute-path-literals)"
                    ),
                )?;
                let home = self.opts.home.clone().unwrap_or_default();
                format!("{home}{}", &lit[1..])
            }
            _ if lit.starts_with('/') => {
                self.lint(
                    self.opts.lint_absolute_path_literals,
                    pos,
                    format!(
                        "absolute path literals are not portable. Consider replacing path literal '{lit}' by a string, relative path, or parameter (lint-absolute-path-literals)"
                    ),
                )?;
                strings::canon_path(lit)
            }
            _ => {
                if !lit.starts_with('.') {
                    let shown = lit.trim_end_matches('/');
                    self.lint(
                        self.opts.lint_short_path_literals,
                        pos,
                        format!(
                            "relative path literal '{shown}' should be prefixed with '.' for clarity: './{shown}' (lint-short-path-literals)"
                        ),
                    )?;
                }
                strings::abs_path(lit, self.base_dir)
            }
        };
        if trailing && !path.ends_with('/') {
            path.push('/');
        }
        Ok(path)
    }

    fn apply(&mut self, e: ast::Expr) -> R<ExprRef> {
        // Nix's parser appends arguments to an existing call (`f a b`, also `(f a) b`).
        let mut args_rev = Vec::new();
        let mut cur = e;
        let pos;
        loop {
            match strip_parens(cur.clone()) {
                ast::Expr::Apply(a) => {
                    args_rev.push(a.argument());
                    match a.lambda() {
                        Some(f) => cur = f,
                        None => return Err(self.err(self.node_pos(a.syntax()), "syntax error")),
                    }
                }
                other => {
                    pos = self.node_pos(other.syntax());
                    cur = other;
                    break;
                }
            }
        }
        let func = self.expr(cur)?;
        let mut args = Vec::with_capacity(args_rev.len());
        for a in args_rev.iter().flatten() {
            self.check_cursed_or(a);
        }
        for a in args_rev.into_iter().rev() {
            args.push(self.sub(a, pos)?);
        }
        Ok(leak(Expr::Call {
            pos,
            func,
            args: args.into_boxed_slice(),
        }))
    }

    fn select(&mut self, s: ast::Select) -> R<ExprRef> {
        let pos = self.node_pos(s.syntax());
        let expr = self.sub(s.expr(), pos)?;
        let path = self.attr_path(s.attrpath())?;
        let default = match s.default_expr() {
            Some(d) => {
                self.check_cursed_or(&d);
                Some(self.expr(d)?)
            }
            None => None,
        };
        Ok(leak(Expr::Select(Box::new(Select {
            pos,
            expr,
            path,
            default,
        }))))
    }

    fn attr_path(&mut self, p: Option<ast::Attrpath>) -> R<Box<[AttrName]>> {
        let p = p.ok_or_else(|| self.err(Pos::NONE, "syntax error"))?;
        let mut out = Vec::new();
        for a in p.attrs() {
            out.push(match self.attr_name(&a)? {
                PathElem::Static(s) => AttrName::Static(s),
                PathElem::Dynamic(d) => AttrName::Dynamic(self.dynamic_name(&d)?),
            });
        }
        Ok(out.into_boxed_slice())
    }

    /// Classify an attribute name: identifiers, plain strings and `${"…"}` are static.
    /// (Nothing is lowered here: names are classified before their scope exists.)
    fn attr_name(&mut self, a: &ast::Attr) -> R<PathElem> {
        match a {
            ast::Attr::Ident(id) => Ok(PathElem::Static(Sym::new(&ident_text(id)))),
            ast::Attr::Str(s) => Ok(match self.const_str(s)? {
                Some(sym) => PathElem::Static(sym),
                None => PathElem::Dynamic(a.clone()),
            }),
            ast::Attr::Dynamic(d) => {
                if let Some(ast::Expr::Str(s)) = d.expr().map(strip_parens)
                    && let Some(sym) = self.const_str(&s)?
                {
                    return Ok(PathElem::Static(sym));
                }
                Ok(PathElem::Dynamic(a.clone()))
            }
        }
    }

    /// The value of a string literal without interpolations.
    fn const_str(&mut self, s: &ast::Str) -> R<Option<Sym>> {
        if s.parts()
            .any(|p| matches!(p, InterpolPart::Interpolation(_)))
        {
            return Ok(None);
        }
        let e = self.string(s.clone())?;
        Ok(const_string(e))
    }

    fn dynamic_name(&mut self, a: &ast::Attr) -> R<ExprRef> {
        match a {
            ast::Attr::Ident(id) => Ok(self.constant(Value::string(ident_text(id)))),
            ast::Attr::Str(s) => self.string(s.clone()),
            ast::Attr::Dynamic(d) => {
                let pos = self.node_pos(d.syntax());
                self.sub(d.expr(), pos)
            }
        }
    }

    fn binop(&mut self, b: ast::BinOp) -> R<ExprRef> {
        let op_tok = b
            .syntax()
            .children_with_tokens()
            .filter_map(|c| c.into_token())
            .find(|t| ast::BinOpKind::from_kind(t.kind()).is_some());
        let op_pos = op_tok
            .as_ref()
            .map(|t| self.pos(t.text_range().start()))
            .unwrap_or_default();
        let kind = b
            .operator()
            .ok_or_else(|| self.err(op_pos, "syntax error"))?;
        if matches!(kind, ast::BinOpKind::PipeLeft | ast::BinOpKind::PipeRight)
            && !self.opts.pipe_operators
        {
            return Err(self.err(
                op_pos,
                "experimental Nix feature 'pipe-operators' is disabled; add '--extra-experimental-features pipe-operators' to enable it",
            ));
        }
        let lhs_pos = b
            .lhs()
            .map(|l| self.node_pos(l.syntax()))
            .unwrap_or_default();
        let rhs_pos = b
            .rhs()
            .map(|r| self.node_pos(r.syntax()))
            .unwrap_or_default();
        let lhs = self.sub(b.lhs(), op_pos)?;
        let rhs = self.sub(b.rhs(), op_pos)?;
        let bin = |op| {
            Ok(leak(Expr::BinOp {
                pos: op_pos,
                op,
                lhs,
                rhs,
            }))
        };
        use ast::BinOpKind as K;
        match kind {
            K::Concat => bin(BinOp::Concat),
            K::Update => bin(BinOp::Update),
            K::And => bin(BinOp::And),
            K::Or => bin(BinOp::Or),
            K::Implication => bin(BinOp::Impl),
            K::Equal => Ok(leak(Expr::BinOp {
                pos: op_pos,
                op: BinOp::Eq,
                lhs,
                rhs,
            })),
            K::NotEqual => Ok(leak(Expr::BinOp {
                pos: op_pos,
                op: BinOp::NEq,
                lhs,
                rhs,
            })),
            K::Add => Ok(leak(Expr::ConcatStrings {
                pos: op_pos,
                force_string: false,
                parts: Box::new([(lhs_pos, lhs), (rhs_pos, rhs)]),
            })),
            K::Sub => self.arith(op_pos, ArithOp::Sub, Sym::SUB, lhs, rhs),
            K::Mul => self.arith(op_pos, ArithOp::Mul, Sym::MUL, lhs, rhs),
            K::Div => self.arith(op_pos, ArithOp::Div, Sym::DIV, lhs, rhs),
            K::Less => self.arith(op_pos, ArithOp::Less, Sym::LESS_THAN, lhs, rhs),
            K::More => self.arith(op_pos, ArithOp::Less, Sym::LESS_THAN, rhs, lhs),
            K::LessOrEq => {
                let lt = self.arith(op_pos, ArithOp::Less, Sym::LESS_THAN, rhs, lhs)?;
                Ok(leak(Expr::Not {
                    pos: Pos::NONE,
                    expr: lt,
                }))
            }
            K::MoreOrEq => {
                let lt = self.arith(op_pos, ArithOp::Less, Sym::LESS_THAN, lhs, rhs)?;
                Ok(leak(Expr::Not {
                    pos: Pos::NONE,
                    expr: lt,
                }))
            }
            K::PipeRight => Ok(leak(Expr::Call {
                pos: op_pos,
                func: rhs,
                args: Box::new([lhs]),
            })),
            K::PipeLeft => Ok(leak(Expr::Call {
                pos: op_pos,
                func: lhs,
                args: Box::new([rhs]),
            })),
        }
    }

    fn lambda(&mut self, l: ast::Lambda, name: Option<Sym>) -> R<ExprRef> {
        let pos = self.node_pos(l.syntax());
        let param = l.param().ok_or_else(|| self.err(pos, "syntax error"))?;
        let (arg, formals_src, ellipsis) = match param {
            ast::Param::IdentParam(p) => {
                let id = p.ident().ok_or_else(|| self.err(pos, "syntax error"))?;
                let arg_pos = self.node_pos(id.syntax());
                (Some((Sym::new(&ident_text(&id)), arg_pos)), None, false)
            }
            ast::Param::Pattern(p) => {
                let bind = p
                    .pat_bind()
                    .and_then(|b| b.ident())
                    .map(|id| (Sym::new(&ident_text(&id)), self.node_pos(id.syntax())));
                let mut entries = Vec::new();
                for e in p.pat_entries() {
                    let id = e.ident().ok_or_else(|| self.err(pos, "syntax error"))?;
                    entries.push((
                        Sym::new(&ident_text(&id)),
                        self.node_pos(id.syntax()),
                        e.default(),
                    ));
                }
                (bind, Some(entries), p.ellipsis_token().is_some())
            }
        };
        let mut names: FxHashMap<Sym, u32> = FxHashMap::default();
        let mut formals = None;
        let mut slots = 0u32;
        if let Some(mut entries) = formals_src {
            // Duplicates: Nix reports the second occurrence of the first duplicated name.
            let mut seen: FxHashMap<Sym, usize> = FxHashMap::default();
            let mut dup: Option<(usize, Pos, Sym)> = None;
            for (i, (n, p, _)) in entries.iter().enumerate() {
                if let Some(&first) = seen.get(n) {
                    if dup.is_none_or(|(f, _, _)| first < f) {
                        dup = Some((first, *p, *n));
                    }
                } else {
                    seen.insert(*n, i);
                }
            }
            if let Some((_, p, n)) = dup {
                return Err(self.err(
                    p,
                    format!("duplicate formal function argument '{}'", n.as_str()),
                ));
            }
            if let Some((a, _)) = arg
                && seen.contains_key(&a)
            {
                return Err(self.err(
                    pos,
                    format!("duplicate formal function argument '{}'", a.as_str()),
                ));
            }
            entries.sort_by_key(|e| e.0);
            for (i, (n, _, _)) in entries.iter().enumerate() {
                names.insert(*n, i as u32);
            }
            slots = entries.len() as u32;
            formals = Some(entries);
        }
        let arg = arg.map(|(a, _)| {
            names.insert(a, slots);
            slots += 1;
            (a, slots - 1)
        });
        self.scopes.push(Scope::Static(names));
        let result = (|| -> R<_> {
            let formals = match formals {
                Some(entries) => {
                    let mut out = Vec::with_capacity(entries.len());
                    for (i, (n, p, d)) in entries.into_iter().enumerate() {
                        let default = match d {
                            Some(d) => Some(self.expr(d)?),
                            None => None,
                        };
                        out.push(Formal {
                            name: n,
                            pos: p,
                            default,
                            slot: i as u32,
                        });
                    }
                    Some(Formals {
                        entries: out.into_boxed_slice(),
                        ellipsis,
                    })
                }
                None => None,
            };
            let body_src = l.body().ok_or_else(|| self.err(pos, "syntax error"))?;
            let body = match (name, strip_parens(body_src.clone())) {
                (Some(n), ast::Expr::Lambda(inner)) => self.lambda(inner, Some(n))?,
                _ => self.expr(body_src)?,
            };
            Ok((formals, body))
        })();
        self.scopes.pop();
        let (formals, body) = result?;
        let def: &'static LambdaDef = Box::leak(Box::new(LambdaDef {
            pos,
            name,
            arg,
            formals,
            body,
            slots,
        }));
        Ok(leak(Expr::Lambda(def)))
    }

    // ---- attribute sets and let ----------------------------------------------------------

    fn collect_binds(
        &mut self,
        binds: &mut Binds,
        entries: impl Iterator<Item = ast::Entry>,
    ) -> R<()> {
        for entry in entries {
            match entry {
                ast::Entry::AttrpathValue(av) => {
                    let ap = av
                        .attrpath()
                        .ok_or_else(|| self.err(binds.pos, "syntax error"))?;
                    let pos = self.node_pos(ap.syntax());
                    let mut path = Vec::new();
                    for a in ap.attrs() {
                        path.push(self.attr_name(&a)?);
                    }
                    let value = av.value().ok_or_else(|| self.err(pos, "syntax error"))?;
                    let value = self.bvalue(value)?;
                    self.add_attr(binds, path, pos, value)?;
                }
                ast::Entry::Inherit(inh) => {
                    let from = inh.from().and_then(|f| f.expr());
                    let from_idx = from.map(|f| {
                        binds.inherit_from.push(f);
                        binds.inherit_from.len() - 1
                    });
                    for a in inh.attrs() {
                        let apos = self.node_pos(a.syntax());
                        let name = match self.attr_name(&a)? {
                            PathElem::Static(s) => s,
                            PathElem::Dynamic(_) => {
                                return Err(
                                    self.err(apos, "dynamic attributes not allowed in inherit")
                                );
                            }
                        };
                        if let Some(&j) = binds.index.get(&name) {
                            let prev = binds.attrs[j].pos;
                            return Err(self.dup(&[PathElem::Static(name)], apos, prev));
                        }
                        let (value, kind) = match from_idx {
                            Some(i) => (BValue::InheritFrom(i, apos), AttrKind::InheritedFrom),
                            None => (BValue::Inherit(apos), AttrKind::Inherited),
                        };
                        binds.index.insert(name, binds.attrs.len());
                        binds.attrs.push(BAttr {
                            name,
                            pos: apos,
                            value,
                            kind,
                            lambda_name: None,
                        });
                    }
                }
            }
        }
        Ok(())
    }

    fn dup(&self, path: &[PathElem], pos: Pos, prev: Pos) -> Box<EvalError> {
        let prev = prev.resolve().map(|l| l.to_string()).unwrap_or_default();
        self.err(
            pos,
            format!("attribute '{}' already defined at {prev}", show_path(path)),
        )
    }

    /// An attribute value: a set literal becomes `Binds` so later definitions can merge in.
    fn bvalue(&mut self, value: ast::Expr) -> R<BValue> {
        if let ast::Expr::AttrSet(set) = strip_parens(value.clone()) {
            let pos = self.node_pos(set.syntax());
            let mut nested = Binds::new(pos, set.rec_token().is_some());
            self.collect_binds(&mut nested, set.entries())?;
            return Ok(BValue::Nested(Box::new(nested)));
        }
        Ok(BValue::Ast(value))
    }

    fn add_attr(
        &mut self,
        binds: &mut Binds,
        path: Vec<PathElem>,
        pos: Pos,
        value: BValue,
    ) -> R<()> {
        let mut cur: &mut Binds = binds;
        for i in 0..path.len() - 1 {
            match &path[i] {
                PathElem::Static(sym) => {
                    let idx = match cur.index.get(sym) {
                        Some(&j) => {
                            if !matches!(cur.attrs[j].value, BValue::Nested(_)) {
                                return Err(self.dup(&path[..=i], pos, cur.attrs[j].pos));
                            }
                            j
                        }
                        None => {
                            cur.index.insert(*sym, cur.attrs.len());
                            cur.attrs.push(BAttr {
                                name: *sym,
                                pos,
                                value: BValue::Nested(Box::new(Binds::new(Pos::NONE, false))),
                                kind: AttrKind::Plain,
                                lambda_name: None,
                            });
                            cur.attrs.len() - 1
                        }
                    };
                    cur = match &mut cur.attrs[idx].value {
                        BValue::Nested(b) => b,
                        _ => unreachable!("checked above"),
                    };
                }
                PathElem::Dynamic(a) => {
                    cur.dynamic.push(BDyn {
                        pos,
                        name: a.clone(),
                        value: BValue::Nested(Box::new(Binds::new(Pos::NONE, false))),
                    });
                    cur = match &mut cur.dynamic.last_mut().expect("just pushed").value {
                        BValue::Nested(b) => b,
                        _ => unreachable!(),
                    };
                }
            }
        }
        match path.last().expect("attribute paths are not empty") {
            PathElem::Static(sym) => {
                let sym = *sym;
                let mut path = path;
                self.add_attr_final(cur, &mut path, sym, pos, value, AttrKind::Plain)
            }
            PathElem::Dynamic(a) => {
                cur.dynamic.push(BDyn {
                    pos,
                    name: a.clone(),
                    value,
                });
                Ok(())
            }
        }
    }

    fn add_attr_final(
        &mut self,
        binds: &mut Binds,
        path: &mut Vec<PathElem>,
        sym: Sym,
        pos: Pos,
        value: BValue,
        kind: AttrKind,
    ) -> R<()> {
        if let Some(&j) = binds.index.get(&sym) {
            let existing_is_set = matches!(binds.attrs[j].value, BValue::Nested(_));
            match value {
                BValue::Nested(mut ae) if existing_is_set => {
                    let BValue::Nested(j_attrs) = &mut binds.attrs[j].value else {
                        unreachable!()
                    };
                    let offset = j_attrs.inherit_from.len();
                    let mut entries = std::mem::take(&mut ae.attrs);
                    entries.sort_by_key(|a| a.name);
                    for mut ad in entries {
                        if let BValue::InheritFrom(i, p) = ad.value {
                            ad.value = BValue::InheritFrom(i + offset, p);
                        }
                        path.push(PathElem::Static(ad.name));
                        let r =
                            self.add_attr_final(j_attrs, path, ad.name, ad.pos, ad.value, ad.kind);
                        path.pop();
                        r?;
                    }
                    j_attrs.dynamic.append(&mut ae.dynamic);
                    j_attrs.inherit_from.append(&mut ae.inherit_from);
                    Ok(())
                }
                _ => Err(self.dup(path, pos, binds.attrs[j].pos)),
            }
        } else {
            let lambda_name = match &value {
                BValue::Ast(_) if kind == AttrKind::Plain => Some(sym),
                _ => None,
            };
            binds.index.insert(sym, binds.attrs.len());
            binds.attrs.push(BAttr {
                name: sym,
                pos,
                value,
                kind,
                lambda_name,
            });
            Ok(())
        }
    }

    fn lower_bvalue(&mut self, v: BValue, lambda_name: Option<Sym>) -> R<ExprRef> {
        match v {
            BValue::Ast(e) => self.expr_named(e, lambda_name),
            BValue::Nested(b) => self.lower_binds(*b),
            BValue::Inherit(_) | BValue::InheritFrom(..) => unreachable!("lowered by the caller"),
        }
    }

    /// Lower the static attributes of `attrs` (sorted) for a set or `let`, given which scope
    /// is current for `Plain` values. Returns the defs.
    fn lower_attr_defs(&mut self, attrs: Vec<BAttr>, rec_scope: bool) -> R<Vec<AttrDef>> {
        // Plain values are lowered in the current scope (the recursive one if any).
        let mut out: Vec<Option<AttrDef>> = Vec::with_capacity(attrs.len());
        let mut deferred_inherit = Vec::new();
        for (i, a) in attrs.into_iter().enumerate() {
            match a.value {
                BValue::Inherit(vpos) => {
                    deferred_inherit.push((i, a.name, a.pos, vpos));
                    out.push(None);
                }
                BValue::InheritFrom(from, vpos) => {
                    // The parser's `ExprSelect(ExprInheritFrom, name)`: level 0 is the
                    // inherit-from environment, pushed on top of the current scope.
                    let base = leak(Expr::InheritFrom {
                        pos: vpos,
                        level: 0,
                        slot: from as u32,
                    });
                    let value = leak(Expr::Select(Box::new(Select {
                        pos: vpos,
                        expr: base,
                        path: Box::new([AttrName::Static(a.name)]),
                        default: None,
                    })));
                    out.push(Some(AttrDef {
                        name: a.name,
                        pos: a.pos,
                        value,
                        kind: AttrKind::InheritedFrom,
                    }));
                }
                v => {
                    let value = self.lower_bvalue(v, a.lambda_name)?;
                    out.push(Some(AttrDef {
                        name: a.name,
                        pos: a.pos,
                        value,
                        kind: AttrKind::Plain,
                    }));
                }
            }
        }
        // `inherit x;` resolves `x` outside the recursive scope.
        if !deferred_inherit.is_empty() {
            let popped = if rec_scope { self.pop_scope() } else { None };
            let mut r = Ok(());
            for (i, name, pos, vpos) in deferred_inherit {
                match self.var(name, vpos) {
                    Ok(value) => {
                        out[i] = Some(AttrDef {
                            name,
                            pos,
                            value,
                            kind: AttrKind::Inherited,
                        })
                    }
                    Err(e) => {
                        r = Err(e);
                        break;
                    }
                }
            }
            if let Some(s) = popped {
                self.scopes.push(s);
            }
            r?;
        }
        Ok(out
            .into_iter()
            .map(|d| d.expect("every attribute lowered"))
            .collect())
    }

    fn pop_scope(&mut self) -> Option<Scope> {
        self.scopes.pop_scope()
    }

    fn lower_binds(&mut self, b: Binds) -> R<ExprRef> {
        let Binds {
            pos,
            rec,
            mut attrs,
            dynamic,
            inherit_from,
            ..
        } = b;
        attrs.sort_by_key(|a| a.name);
        if rec {
            let names = attrs
                .iter()
                .enumerate()
                .map(|(i, a)| (a.name, i as u32))
                .collect();
            self.scopes.push(Scope::Static(names));
        }
        let result = (|| -> R<_> {
            let mut from = Vec::with_capacity(inherit_from.len());
            for f in inherit_from {
                from.push(self.expr(f)?);
            }
            let defs = self.lower_attr_defs(attrs, rec)?;
            let mut dyns = Vec::with_capacity(dynamic.len());
            for d in dynamic {
                let name = self.dynamic_name(&d.name)?;
                let value = self.lower_bvalue(d.value, None)?;
                dyns.push(DynAttrDef {
                    pos: d.pos,
                    name,
                    value,
                });
            }
            Ok((from, defs, dyns))
        })();
        if rec {
            self.scopes.pop();
        }
        let (from, defs, dyns) = result?;
        Ok(leak(Expr::Attrs(Box::new(AttrsDef {
            pos,
            rec,
            attrs: defs.into_boxed_slice(),
            dynamic: dyns.into_boxed_slice(),
            inherit_from: from.into_boxed_slice(),
        }))))
    }

    fn lower_let(&mut self, b: Binds, body: ast::Expr) -> R<ExprRef> {
        let Binds {
            pos,
            mut attrs,
            inherit_from,
            ..
        } = b;
        attrs.sort_by_key(|a| a.name);
        let names = attrs
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name, i as u32))
            .collect();
        self.scopes.push(Scope::Static(names));
        let result = (|| -> R<_> {
            let mut from = Vec::with_capacity(inherit_from.len());
            for f in inherit_from {
                from.push(self.expr(f)?);
            }
            let defs = self.lower_attr_defs(attrs, true)?;
            let body = self.expr(body)?;
            Ok((from, defs, body))
        })();
        self.scopes.pop();
        let (from, defs, body) = result?;
        Ok(leak(Expr::Let(Box::new(LetDef {
            pos,
            attrs: defs.into_boxed_slice(),
            inherit_from: from.into_boxed_slice(),
            body,
        }))))
    }
}

fn ident_text(id: &ast::Ident) -> String {
    id.syntax().text().to_string()
}

fn const_string(e: ExprRef) -> Option<Sym> {
    match e {
        Expr::Const(Value::String(s)) if !s.has_context() => Some(Sym::from_bytes(s.as_bytes())),
        _ => None,
    }
}

#[allow(dead_code)]
fn _assert_nixstr(_: &NixStr) {}
