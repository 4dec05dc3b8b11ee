//! `builtins.toJSON` and `builtins.fromJSON`, with the output nlohmann::json (Nix's JSON
//! library) produces: compact, keys sorted, floats in shortest round-trip form.

use std::rc::Rc;

use super::primop;
use crate::error::{ErrorExt, ErrorKind, EvalError, EvalResult};
use crate::eval::Evaluator;
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[
    primop!("toJSON", 1, prim_to_json),
    primop!("fromJSON", 1, prim_from_json),
];

/// A float as nlohmann::json prints it.
pub fn json_float(f: f64) -> String {
    if !f.is_finite() {
        return "null".into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0.0".into()
        } else {
            "0.0".into()
        };
    }
    let sci = format!("{:e}", f.abs());
    let (mant, exp) = sci.split_once('e').expect("exponent form");
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let e: i32 = exp.parse().expect("exponent");
    let k = digits.len() as i32;
    let n = e + 1;
    let mut out = String::new();
    if f < 0.0 {
        out.push('-');
    }
    if k <= n && n <= 15 {
        out.push_str(&digits);
        out.push_str(&"0".repeat((n - k) as usize));
        out.push_str(".0");
    } else if 0 < n && n <= 15 {
        out.push_str(&digits[..n as usize]);
        out.push('.');
        out.push_str(&digits[n as usize..]);
    } else if -4 < n && n <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-n) as usize));
        out.push_str(&digits);
    } else {
        out.push_str(&digits[..1]);
        if k > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let x = n - 1;
        out.push_str(&format!("e{}{:02}", if x < 0 { '-' } else { '+' }, x.abs()));
    }
    out
}

fn json_string(out: &mut Vec<u8>, s: &[u8]) -> Result<(), String> {
    if let Err(e) = std::str::from_utf8(s) {
        let at = e.valid_up_to();
        return Err(format!(
            "[json.exception.type_error.316] invalid UTF-8 byte at index {at}: 0x{:02X}",
            s[at]
        ));
    }
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
    Ok(())
}

/// A JSON object key (a quoted, escaped string).
pub(crate) fn json_key(k: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = json_string(&mut out, k.as_bytes());
    out
}

impl Evaluator {
    /// Serialize a value as JSON (forcing it), collecting string contexts.
    pub fn to_json(
        &mut self,
        v: &Value,
        pos: Pos,
        ctx: &mut Context,
        copy_to_store: bool,
    ) -> EvalResult<Vec<u8>> {
        let mut out = Vec::new();
        self.json_into(v, pos, ctx, copy_to_store, &mut out)?;
        Ok(out)
    }

    fn json_into(
        &mut self,
        v: &Value,
        pos: Pos,
        ctx: &mut Context,
        copy_to_store: bool,
        out: &mut Vec<u8>,
    ) -> EvalResult<()> {
        if self.call_depth >= self.settings.max_call_depth {
            let mut e = EvalError::new(
                ErrorKind::StackOverflow,
                "stack overflow; max-call-depth exceeded",
            );
            e.pos = pos;
            return Err(e);
        }
        let v = self.force(v, pos)?;
        match &v {
            Value::Int(i) => out.extend_from_slice(i.to_string().as_bytes()),
            Value::Float(f) => out.extend_from_slice(json_float(*f).as_bytes()),
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Null => out.extend_from_slice(b"null"),
            Value::String(s) => {
                s.merge_context_into(ctx);
                json_string(out, s.as_bytes())
                    .map_err(|m| self.error(format!("JSON serialization error: {m}"), pos))?;
            }
            Value::Path(p) => {
                let s = if copy_to_store {
                    let sp = self.copy_path_to_store(p, pos)?;
                    ctx.insert(ContextElem::Opaque(Rc::from(sp.as_str())));
                    sp
                } else {
                    p.to_string()
                };
                json_string(out, s.as_bytes())
                    .map_err(|m| self.error(format!("JSON serialization error: {m}"), pos))?;
            }
            Value::Attrs(a) => {
                if let Some(ts) = a.get_attr(Sym::TO_STRING) {
                    let (f, fpos) = (ts.value.clone(), ts.pos);
                    let r = self.call_value(&f, std::slice::from_ref(&v), fpos)?;
                    let r = self.force(&r, fpos)?;
                    let s = match &r {
                        Value::String(s) => s.clone(),
                        Value::Attrs(_) => {
                            let shown = crate::print::print_for_error(self, &r);
                            return Err(self
                                .error(
                                    format!(
                                        "`__toString` must return a string, but got a set: {shown}"
                                    ),
                                    fpos,
                                )
                                .frame(
                                    fpos,
                                    "while using the result of the `__toString` attribute",
                                ));
                        }
                        other => {
                            let shown = crate::print::print_for_error(self, other);
                            return Err(self
                                .error(
                                    format!(
                                        "`__toString` should return a string, but got {}: {shown}",
                                        other.typ().showtype()
                                    ),
                                    fpos,
                                )
                                .frame(
                                    fpos,
                                    "while using the result of the `__toString` attribute",
                                ));
                        }
                    };
                    s.merge_context_into(ctx);
                    json_string(out, s.as_bytes())
                        .map_err(|m| self.error(format!("JSON serialization error: {m}"), pos))?;
                    return Ok(());
                }
                if let Some(o) = a.get_attr(Sym::OUT_PATH) {
                    let (o, opos) = (o.value.clone(), o.pos);
                    return self
                        .json_into(&o, opos, ctx, copy_to_store, out)
                        .map_err(|e| e.frame(opos, "while using the `outPath` attribute"));
                }
                out.push(b'{');
                self.call_depth += 1;
                let r = (|| -> EvalResult<()> {
                    for (i, attr) in a.sorted_by_name().into_iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        json_string(out, attr.name.as_str().as_bytes()).map_err(|m| {
                            self.error(format!("JSON serialization error: {m}"), pos)
                        })?;
                        out.push(b':');
                        let (val, apos, name) = (attr.value.clone(), attr.pos, attr.name);
                        self.json_into(&val, apos, ctx, copy_to_store, out)
                            .map_err(|e| {
                                e.frame(apos, format!("while evaluating attribute '{name}'"))
                            })?;
                    }
                    Ok(())
                })();
                self.call_depth -= 1;
                r?;
                out.push(b'}');
            }
            Value::List(l) => {
                out.push(b'[');
                self.call_depth += 1;
                let r = (|| -> EvalResult<()> {
                    for (i, item) in l.iter().enumerate() {
                        if i > 0 {
                            out.push(b',');
                        }
                        self.json_into(item, pos, ctx, copy_to_store, out)
                            .map_err(|e| {
                                e.frame(pos, format!("while evaluating list element at index {i}"))
                            })?;
                    }
                    Ok(())
                })();
                self.call_depth -= 1;
                r?;
                out.push(b']');
            }
            other => {
                return Err(self.error(
                    format!("cannot convert {} to JSON", other.typ().showtype()),
                    pos,
                ));
            }
        }
        Ok(())
    }
}

fn prim_to_json(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let out = ev.to_json(&args[0], pos, &mut ctx, true)?;
    Ok(Value::String(Shared::new(NixStr::with_context(out, ctx))))
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn show_nul(s: &[u8]) -> String {
    String::from_utf8_lossy(s).replace('\0', "␀")
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> String {
        format!(
            "[json.exception.parse_error.101] parse error at byte {}: syntax error while parsing value - {what}",
            self.i + 1
        )
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > 10_000 {
            return Err("JSON nested too deeply".into());
        }
        self.ws();
        let Some(&c) = self.s.get(self.i) else {
            return Err(self.err("unexpected end of input; expected '[', '{', or a literal"));
        };
        match c {
            b'{' => {
                self.i += 1;
                let mut entries: Vec<Attr> = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Value::attrs(Attrs::new()));
                }
                loop {
                    self.ws();
                    if self.s.get(self.i) != Some(&b'"') {
                        return Err(self.err("invalid literal; expected string literal"));
                    }
                    let key = self.string()?;
                    if key.contains(&0) {
                        return Err(format!(
                            "input string '{}' cannot be represented as Nix string because it contains null bytes",
                            show_nul(&key)
                        ));
                    }
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return Err(self.err("invalid literal; expected ':'"));
                    }
                    self.i += 1;
                    let v = self.value(depth + 1)?;
                    entries.push(Attr {
                        name: Sym::from_bytes(&key),
                        pos: Pos::NONE,
                        value: v,
                    });
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::attrs(Attrs::from_unsorted(entries)));
                        }
                        _ => return Err(self.err("unexpected character; expected '}'")),
                    }
                }
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Value::list(items));
                }
                loop {
                    items.push(self.value(depth + 1)?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::list(items));
                        }
                        _ => return Err(self.err("unexpected character; expected ']'")),
                    }
                }
            }
            b'"' => {
                let s = self.string()?;
                if s.contains(&0) {
                    return Err(format!(
                        "input string '{}' cannot be represented as Nix string because it contains null bytes",
                        show_nul(&s)
                    ));
                }
                Ok(Value::string(s))
            }
            b't' if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Value::Bool(true))
            }
            b'f' if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Value::Bool(false))
            }
            b'n' if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(Value::Null)
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(self.err("invalid literal")),
        }
    }

    fn number(&mut self) -> Result<Value, String> {
        let start = self.i;
        if self.s[self.i] == b'-' {
            self.i += 1;
        }
        let int_start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
            self.i += 1;
        }
        if self.i == int_start {
            return Err(self.err("invalid number"));
        }
        let mut is_float = false;
        if self.s.get(self.i) == Some(&b'.') {
            is_float = true;
            self.i += 1;
            let f = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            if self.i == f {
                return Err(self.err("invalid number"));
            }
        }
        if matches!(self.s.get(self.i), Some(b'e') | Some(b'E')) {
            is_float = true;
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+') | Some(b'-')) {
                self.i += 1;
            }
            let f = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            if self.i == f {
                return Err(self.err("invalid number"));
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).expect("ASCII");
        if !is_float {
            if let Ok(i) = text.parse::<i64>() {
                return Ok(Value::Int(i));
            }
            if let Ok(u) = text.parse::<u64>() {
                return Err(format!(
                    "unsigned json number {u} outside of Nix integer range"
                ));
            }
            if text.starts_with('-') {
                return Err(format!(
                    "signed json number {text} outside of Nix integer range"
                ));
            }
        }
        match text.parse::<f64>() {
            // nlohmann::json's words, as Nix prints them.
            Ok(f) if f.is_infinite() => Err(format!(
                "[json.exception.out_of_range.406] number overflow parsing '{text}'"
            )),
            Ok(f) => Ok(Value::Float(f)),
            Err(_) => Err(self.err("invalid number")),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .ok_or_else(|| self.err("invalid string: '\\u' must be followed by 4 hex digits"))?;
        let h = std::str::from_utf8(h).map_err(|_| self.err("invalid string"))?;
        let v = u32::from_str_radix(h, 16)
            .map_err(|_| self.err("invalid string: '\\u' must be followed by 4 hex digits"))?;
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err(self.err("invalid string: missing closing quote"));
            };
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.err("invalid string: missing closing quote"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push(b'"'),
                        b'\\' => out.push(b'\\'),
                        b'/' => out.push(b'/'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) {
                                if self.s.get(self.i..self.i + 2) != Some(b"\\u") {
                                    return Err(self.err("invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF"));
                                }
                                self.i += 2;
                                let lo = self.hex4()?;
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            let ch =
                                char::from_u32(cp).ok_or_else(|| self.err("invalid string"))?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => {
                            return Err(
                                self.err("invalid string: forbidden character after backslash")
                            );
                        }
                    }
                }
                c if c < 0x20 => {
                    return Err(self.err("invalid string: control character must be escaped"));
                }
                c => out.push(c),
            }
        }
    }
}

/// Parse JSON text into a value.
pub fn parse_json(s: &[u8]) -> Result<Value, String> {
    let mut p = Parser { s, i: 0 };
    let v = p.value(0)?;
    p.ws();
    if p.i != s.len() {
        return Err(p.err("unexpected character; expected end of input"));
    }
    Ok(v)
}

fn prim_from_json(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let s = ev.force_string(
        &args[0],
        pos,
        "while evaluating the first argument passed to builtins.fromJSON",
    )?;
    parse_json(s.as_bytes()).map_err(|m| ev.error(m, pos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats() {
        assert_eq!(json_float(1.0), "1.0");
        assert_eq!(json_float(0.1), "0.1");
        assert_eq!(json_float(2.5), "2.5");
        assert_eq!(json_float(1e22), "1e+22");
        assert_eq!(json_float(1.5e-7), "1.5e-07");
        assert_eq!(json_float(0.001234), "0.001234");
        assert_eq!(json_float(-12.5), "-12.5");
        assert_eq!(json_float(123456789012345.0), "123456789012345.0");
    }
}
