//! Printing values as Nix does: `nix-instantiate --eval` output (Nix's `printAmbiguous`),
//! values inside error messages (Nix's `ValuePrinter` with its error limits), floats the
//! way C++ streams print them, and identifiers quoted where needed.

use rustc_hash::FxHashSet;

use crate::error::{ErrorKind, EvalError, EvalResult};
use crate::eval::Evaluator;
use crate::value::*;

/// C++ `ostream << double` (`%g`, six significant digits).
pub fn float(f: f64) -> String {
    if f.is_nan() {
        return if f.is_sign_negative() {
            "-nan".into()
        } else {
            "nan".into()
        };
    }
    if f.is_infinite() {
        return if f < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    const P: i32 = 6;
    let e_repr = format!("{:.*e}", (P - 1) as usize, f);
    let (mantissa, exp) = e_repr.split_once('e').expect("exponent form");
    let x: i32 = exp.parse().expect("exponent");
    if !(-4..P).contains(&x) {
        let m = trim_zeros(mantissa);
        format!("{m}e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs())
    } else {
        let prec = (P - 1 - x) as usize;
        trim_zeros(&format!("{f:.prec$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

fn is_keyword(s: &str) -> bool {
    matches!(
        s,
        "if" | "then" | "else" | "assert" | "with" | "let" | "in" | "rec" | "inherit"
    )
}

/// Nix's `printIdentifier`: the name as is when it is a plain identifier, else quoted.
pub fn identifier(s: &str) -> String {
    if s.is_empty() {
        return "\"\"".into();
    }
    if is_keyword(s) {
        return format!("\"{s}\"");
    }
    let b = s.as_bytes();
    let c = b[0];
    if !(c.is_ascii_alphabetic() || c == b'_') {
        return String::from_utf8_lossy(&literal_string(b)).into_owned();
    }
    if b.iter()
        .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'\'' || c == b'-')
    {
        s.to_string()
    } else {
        String::from_utf8_lossy(&literal_string(b)).into_owned()
    }
}

/// Nix's `printAttributeName` (used when printing values in errors).
pub fn attr_name(s: &str) -> String {
    let b = s.as_bytes();
    let var_name = !b.is_empty()
        && !is_keyword(s)
        && !b[0].is_ascii_digit()
        && b[0] != b'-'
        && b[0] != b'\''
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-' || c == b'\'');
    if var_name {
        s.to_string()
    } else {
        String::from_utf8_lossy(&literal_string(b)).into_owned()
    }
}

/// A string literal with Nix's escapes.
pub fn literal_string(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() + 2);
    out.push(b'"');
    push_escaped(&mut out, s, usize::MAX);
    out.push(b'"');
    out
}

fn push_escaped(out: &mut Vec<u8>, s: &[u8], max: usize) -> bool {
    for (i, &c) in s.iter().enumerate() {
        if i >= max {
            return false;
        }
        match c {
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(c);
            }
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'$' if s.get(i + 1) == Some(&b'{') => out.extend_from_slice(b"\\$"),
            _ => out.push(c),
        }
    }
    true
}

/// The output of `nix-instantiate --eval` for an (already forced as far as wanted) value.
/// Nested deeper than the stack allows, the output stops there; see [`print_value_checked`].
pub fn print_value(v: &Value) -> Vec<u8> {
    let mut p = Plain {
        out: Vec::new(),
        seen: FxHashSet::default(),
        max_depth: usize::MAX,
    };
    let _ = p.ambiguous(v, 0);
    p.out
}

/// `print_value`, failing as Nix does ("stack overflow; max-call-depth exceeded") where the
/// value nests deeper than the evaluator's `max-call-depth`: printing recurses like a call.
pub fn print_value_checked(ev: &Evaluator, v: &Value) -> EvalResult<Vec<u8>> {
    let mut p = Plain {
        out: Vec::new(),
        seen: FxHashSet::default(),
        max_depth: ev.settings().max_call_depth,
    };
    match p.ambiguous(v, 0) {
        Ok(()) => Ok(p.out),
        Err(TooDeep) => Err(EvalError::new(
            ErrorKind::StackOverflow,
            "stack overflow; max-call-depth exceeded",
        )),
    }
}

/// Printing stopped: the value nests deeper than the printer may recurse.
struct TooDeep;

struct Plain {
    out: Vec<u8>,
    seen: FxHashSet<usize>,
    max_depth: usize,
}

impl Plain {
    fn ambiguous(&mut self, v: &Value, depth: usize) -> Result<(), TooDeep> {
        if depth >= self.max_depth || crate::stack::exhausted() {
            return Err(TooDeep);
        }
        let (out, seen) = (&mut self.out, &mut self.seen);
        match v {
            Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::String(s) => out.extend_from_slice(&literal_string(s.as_bytes())),
            Value::Path(p) => out.extend_from_slice(p.as_bytes()),
            Value::Null => out.extend_from_slice(b"null"),
            Value::Float(f) => out.extend_from_slice(float(*f).as_bytes()),
            Value::Attrs(a) => {
                if !a.is_empty() && !seen.insert(a.as_ptr() as usize) {
                    out.extend_from_slice("«repeated»".as_bytes());
                    return Ok(());
                }
                out.extend_from_slice(b"{ ");
                for attr in a.sorted_by_name() {
                    let out = &mut self.out;
                    out.extend_from_slice(identifier(attr.name.as_str()).as_bytes());
                    out.extend_from_slice(b" = ");
                    self.ambiguous(&attr.value, depth + 1)?;
                    self.out.extend_from_slice(b"; ");
                }
                self.out.push(b'}');
            }
            Value::List(l) => {
                if !l.is_empty() && !seen.insert(ThinRc::as_ptr(l) as usize) {
                    out.extend_from_slice("«repeated»".as_bytes());
                    return Ok(());
                }
                out.extend_from_slice(b"[ ");
                for item in l.iter() {
                    self.ambiguous(item, depth + 1)?;
                    self.out.push(b' ');
                }
                self.out.push(b']');
            }
            Value::Thunk(t) => match t.value() {
                Some(inner) => return self.ambiguous(&inner, depth),
                None if t.is_blackhole() => {
                    out.extend_from_slice("«potential infinite recursion»".as_bytes())
                }
                None => out.extend_from_slice(b"<CODE>"),
            },
            Value::Lambda(_) => out.extend_from_slice(b"<LAMBDA>"),
            Value::PrimOp(_) => out.extend_from_slice(b"<PRIMOP>"),
            Value::PrimOpApp(_) => out.extend_from_slice(b"<PRIMOP-APP>"),
        }
        Ok(())
    }
}

struct ErrPrinter {
    out: Vec<u8>,
    seen: FxHashSet<usize>,
    attrs_printed: usize,
    items_printed: usize,
    max_depth: usize,
    max_attrs: usize,
    max_items: usize,
    max_string: usize,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl ErrPrinter {
    fn elided(&mut self, n: usize, one: &str, many: &str) {
        self.out
            .extend_from_slice(format!("«{} elided»", plural(n, one, many)).as_bytes());
    }

    fn print(&mut self, v: &Value, depth: usize) {
        match v {
            Value::Int(i) => self.out.extend_from_slice(i.to_string().as_bytes()),
            Value::Float(f) => self.out.extend_from_slice(float(*f).as_bytes()),
            Value::Bool(b) => self
                .out
                .extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Null => self.out.extend_from_slice(b"null"),
            Value::Path(p) => self.out.extend_from_slice(p.as_bytes()),
            Value::String(s) => {
                self.out.push(b'"');
                let max = self.max_string;
                let complete = push_escaped(&mut self.out, s.as_bytes(), max);
                if complete {
                    self.out.push(b'"');
                } else {
                    self.out.extend_from_slice(b"\" ");
                    self.elided(s.len() - self.max_string, "byte", "bytes");
                }
            }
            Value::Attrs(a) => {
                if !self.seen.insert(a.as_ptr() as usize) {
                    self.out.extend_from_slice("«repeated»".as_bytes());
                    return;
                }
                if depth >= self.max_depth {
                    self.out.extend_from_slice(b"{ ... }");
                    return;
                }
                self.out.push(b'{');
                let mut sorted = a.sorted_by_name();
                sorted.sort_by_key(|x| {
                    let n = x.name.as_str();
                    (!(n == "type" || n == "_type"), n)
                });
                let total = sorted.len();
                for (i, attr) in sorted.into_iter().enumerate() {
                    self.out.push(b' ');
                    if self.attrs_printed >= self.max_attrs {
                        self.elided(total - i, "attribute", "attributes");
                        break;
                    }
                    self.out
                        .extend_from_slice(attr_name(attr.name.as_str()).as_bytes());
                    self.out.extend_from_slice(b" = ");
                    self.print(&attr.value, depth + 1);
                    self.out.push(b';');
                    self.attrs_printed += 1;
                }
                self.out.extend_from_slice(b" }");
            }
            Value::List(l) => {
                if !l.is_empty() && !self.seen.insert(ThinRc::as_ptr(l) as usize) {
                    self.out.extend_from_slice("«repeated»".as_bytes());
                    return;
                }
                if depth >= self.max_depth {
                    self.out.extend_from_slice(b"[ ... ]");
                    return;
                }
                self.out.push(b'[');
                let total = l.len();
                for (i, item) in l.iter().enumerate() {
                    self.out.push(b' ');
                    if self.items_printed >= self.max_items {
                        self.elided(total - i, "item", "items");
                        break;
                    }
                    self.print(item, depth + 1);
                    self.items_printed += 1;
                }
                self.out.extend_from_slice(b" ]");
            }
            Value::Thunk(t) => match t.value() {
                Some(inner) => self.print(&inner, depth),
                None if t.is_blackhole() => self
                    .out
                    .extend_from_slice("«potential infinite recursion»".as_bytes()),
                None => self.out.extend_from_slice("«thunk»".as_bytes()),
            },
            Value::Lambda(c) => {
                let mut s = String::from("«lambda");
                if let Some(n) = c.def.name {
                    s.push(' ');
                    s.push_str(n.as_str());
                }
                if let Some(loc) = c.def.pos.resolve() {
                    s.push_str(&format!(" @ {loc}"));
                }
                s.push('»');
                self.out.extend_from_slice(s.as_bytes());
            }
            Value::PrimOp(p) => self
                .out
                .extend_from_slice(format!("«primop {}»", p.name).as_bytes()),
            Value::PrimOpApp(p) => self
                .out
                .extend_from_slice(format!("«partially applied primop {}»", p.op.name).as_bytes()),
        }
    }
}

/// A value as Nix shows it inside an error message (not forcing anything).
pub fn print_for_error(_ev: &mut Evaluator, v: &Value) -> String {
    let mut p = ErrPrinter {
        out: Vec::new(),
        seen: FxHashSet::default(),
        attrs_printed: 0,
        items_printed: 0,
        max_depth: 10,
        max_attrs: 10,
        max_items: 10,
        max_string: 1024,
    };
    p.print(v, 0);
    String::from_utf8_lossy(&p.out).into_owned()
}

/// A value as `builtins.trace` shows it: Nix's value printer without limits (not forcing
/// anything).
pub fn print_plain(v: &Value) -> String {
    let mut p = ErrPrinter {
        out: Vec::new(),
        seen: FxHashSet::default(),
        attrs_printed: 0,
        items_printed: 0,
        max_depth: usize::MAX,
        max_attrs: usize::MAX,
        max_items: usize::MAX,
        max_string: usize::MAX,
    };
    p.print(v, 0);
    String::from_utf8_lossy(&p.out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_cpp() {
        for (f, s) in [
            (1.0, "1"),
            (0.1, "0.1"),
            (1.5e10, "1.5e+10"),
            (1e-5, "1e-05"),
            (123456789.0, "1.23457e+08"),
            (9224617.445991228, "9.22462e+06"),
            (6.626e-34, "6.626e-34"),
            (-0.01, "-0.01"),
            (100000.0, "100000"),
            (1000000.0, "1e+06"),
            (0.0001, "0.0001"),
            (2.5e-3, "0.0025"),
        ] {
            assert_eq!(float(f), s, "{f}");
        }
    }

    #[test]
    fn identifiers() {
        assert_eq!(identifier("foo-bar'"), "foo-bar'");
        assert_eq!(identifier("a b"), "\"a b\"");
        assert_eq!(identifier("if"), "\"if\"");
        assert_eq!(identifier("1x"), "\"1x\"");
    }
}
