//! POSIX extended regular expressions (what Nix's `std::regex::extended` accepts),
//! translated to the `regex` crate's syntax and matched on bytes.
//!
//! Differences the translation bridges: inside brackets a backslash is literal and `[`,
//! `&`, `-`, `~` need escaping for the `regex` crate; `.` matches newlines; a `{` that does
//! not start a bound is literal. One difference remains: POSIX picks the longest match
//! among alternatives where the `regex` crate picks the first.

use std::rc::Rc;

use regex::bytes::{Regex, RegexBuilder};

use crate::error::EvalResult;
use crate::eval::Evaluator;
use crate::source::Pos;

/// Translate a POSIX ERE to `regex` syntax; `None` if it is invalid.
pub fn translate(re: &[u8]) -> Option<String> {
    let s = std::str::from_utf8(re).ok()?;
    let c: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    let mut depth = 0i32;
    while i < c.len() {
        let ch = c[i];
        match ch {
            '\\' => {
                let next = *c.get(i + 1)?;
                if next.is_ascii_alphanumeric() {
                    // Escapes like \d \w are not POSIX; treat the character literally, except
                    // the ones std::regex also understands.
                    match next {
                        'w' | 'W' | 's' | 'S' | 'd' | 'D' | 'b' | 'B' => {
                            out.push('\\');
                            out.push(next);
                        }
                        'n' => out.push_str("\\n"),
                        't' => out.push_str("\\t"),
                        'r' => out.push_str("\\r"),
                        '1'..='9' => return None,
                        other => out.push(other),
                    }
                } else if next.is_ascii_punctuation() {
                    out.push('\\');
                    out.push(next);
                } else {
                    out.push(next);
                }
                i += 2;
            }
            '[' => {
                let (class, next) = bracket(&c, i)?;
                out.push_str(&class);
                i = next;
            }
            '{' => {
                // A bound `{n}`, `{n,}`, `{n,m}`, else a literal brace.
                let mut j = i + 1;
                let mut body = String::new();
                while j < c.len() && (c[j].is_ascii_digit() || c[j] == ',') {
                    body.push(c[j]);
                    j += 1;
                }
                if j < c.len()
                    && c[j] == '}'
                    && !body.is_empty()
                    && body.chars().next()?.is_ascii_digit()
                {
                    out.push('{');
                    out.push_str(&body);
                    out.push('}');
                    i = j + 1;
                } else {
                    return None;
                }
            }
            '}' => {
                out.push_str("\\}");
                i += 1;
            }
            '(' => {
                depth += 1;
                if c.get(i + 1) == Some(&')') {
                    out.push_str("()");
                    depth -= 1;
                    i += 2;
                } else {
                    out.push('(');
                    i += 1;
                }
            }
            ')' => {
                depth -= 1;
                if depth < 0 {
                    return None;
                }
                out.push(')');
                i += 1;
            }
            '*' | '+' | '?' => {
                // A repetition with nothing to repeat is an error in std::regex.
                let prev = out.chars().last();
                if prev.is_none() || matches!(prev, Some('(') | Some('|')) {
                    return None;
                }
                out.push(ch);
                i += 1;
            }
            _ => {
                out.push_str(&regex_escape(ch));
                i += 1;
            }
        }
    }
    if depth != 0 {
        return None;
    }
    Some(out)
}

fn regex_escape(c: char) -> String {
    match c {
        '.' | '^' | '$' | '|' | '(' | ')' => c.to_string(),
        '#' | '&' | '-' | '~' | ' ' | '\\' | '[' | ']' | '{' | '}' | '*' | '+' | '?' => {
            format!("\\{c}")
        }
        _ => c.to_string(),
    }
}

/// Translate the bracket expression starting at `c[start] == '['`.
fn bracket(c: &[char], start: usize) -> Option<(String, usize)> {
    let mut i = start + 1;
    let mut out = String::from("[");
    if c.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let ch = *c.get(i)?;
        if ch == ']' && !first {
            out.push(']');
            return Some((out, i + 1));
        }
        first = false;
        if ch == '[' && matches!(c.get(i + 1), Some(':') | Some('.') | Some('=')) {
            let kind = c[i + 1];
            let mut j = i + 2;
            let mut name = String::new();
            while j + 1 < c.len() && !(c[j] == kind && c[j + 1] == ']') {
                name.push(c[j]);
                j += 1;
            }
            if j + 1 >= c.len() {
                return None;
            }
            match kind {
                ':' => {
                    if !matches!(
                        name.as_str(),
                        "alpha"
                            | "digit"
                            | "alnum"
                            | "upper"
                            | "lower"
                            | "space"
                            | "blank"
                            | "punct"
                            | "print"
                            | "graph"
                            | "cntrl"
                            | "xdigit"
                    ) {
                        return None;
                    }
                    out.push_str(&format!("[:{name}:]"));
                }
                _ => {
                    for n in name.chars() {
                        out.push_str(&class_escape(n));
                    }
                }
            }
            i = j + 2;
            continue;
        }
        if ch == '-' {
            // A range dash between two members stays; at the edges it is literal.
            let at_edge = c.get(i + 1) == Some(&']') || out.ends_with('[') || out.ends_with('^');
            out.push_str(if at_edge { "\\-" } else { "-" });
            i += 1;
            continue;
        }
        out.push_str(&class_escape(ch));
        i += 1;
    }
}

fn class_escape(c: char) -> String {
    match c {
        '\\' | '[' | ']' | '&' | '~' | '-' | '^' => format!("\\{c}"),
        _ => c.to_string(),
    }
}

impl Evaluator {
    /// Compile (cached) a POSIX ERE; `whole` anchors it at both ends (`builtins.match`).
    pub(crate) fn regex(&mut self, re: &[u8], whole: bool, pos: Pos) -> EvalResult<Rc<Regex>> {
        let mut key = re.to_vec();
        key.push(u8::from(whole));
        if let Some(r) = self.regex_cache.get(&key) {
            return Ok(r.clone());
        }
        let invalid = || {
            format!(
                "invalid regular expression '{}'",
                String::from_utf8_lossy(re)
            )
        };
        let Some(t) = translate(re) else {
            return Err(self.error(invalid(), pos));
        };
        let pattern = if whole { format!("^(?:{t})$") } else { t };
        let compiled = RegexBuilder::new(&pattern)
            .unicode(false)
            .dot_matches_new_line(true)
            .size_limit(1 << 26)
            .build()
            .map_err(|_| self.error(invalid(), pos))?;
        let r = Rc::new(compiled);
        self.regex_cache.insert(key, r.clone());
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates() {
        assert_eq!(translate(b"[a-z]+").as_deref(), Some("[a-z]+"));
        assert_eq!(translate(b"[[:alpha:]_]").as_deref(), Some("[[:alpha:]_]"));
        assert_eq!(translate(b"[]a]").as_deref(), Some("[\\]a]"));
        assert_eq!(translate(b"[\\]").as_deref(), Some("[\\\\]"));
        assert_eq!(translate(b"a{2,3}").as_deref(), Some("a{2,3}"));
        assert!(translate(b"f(o*o").is_none());
        assert_eq!(translate(b"\\.*(.*)").as_deref(), Some("\\.*(.*)"));
    }
}
