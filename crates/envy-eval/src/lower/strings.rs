//! Nix's string rules: escapes in `"…"`, the token split and indentation stripping of
//! `''…''` (Nix's `stripIndentation`), and path canonicalization.

/// Source bytes as text for rnix: invalid UTF-8 bytes become private-use characters
/// (U+10FF00 + byte) that `restore_bytes` turns back into the original bytes in literals.
pub fn decode_source(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let mut rest = bytes;
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (good, bad) = rest.split_at(e.valid_up_to());
                out.push_str(std::str::from_utf8(good).expect("valid prefix"));
                let n = e.error_len().unwrap_or(bad.len()).max(1);
                for &b in &bad[..n] {
                    out.push(char::from_u32(0x10FF00 + u32::from(b)).expect("private use"));
                }
                rest = &bad[n..];
            }
        }
    }
}

/// Undo `decode_source` in literal bytes.
pub fn restore_bytes(b: Vec<u8>) -> Vec<u8> {
    if !b.windows(3).any(|w| {
        w == [0xF4, 0x8F, 0xBC]
            || w == [0xF4, 0x8F, 0xBD]
            || w == [0xF4, 0x8F, 0xBE]
            || w == [0xF4, 0x8F, 0xBF]
    }) {
        return b;
    }
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if i + 3 < b.len() && b[i] == 0xF4 && b[i + 1] == 0x8F && (0xBC..=0xBF).contains(&b[i + 2])
        {
            let cp = ((u32::from(b[i]) & 0x07) << 18)
                | ((u32::from(b[i + 1]) & 0x3F) << 12)
                | ((u32::from(b[i + 2]) & 0x3F) << 6)
                | (u32::from(b[i + 3]) & 0x3F);
            if (0x10FF00..=0x10FFFF).contains(&cp) {
                out.push((cp - 0x10FF00) as u8);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Unescape the text of a `"…"` literal segment: `\n`, `\r`, `\t`, `\x` → `x`, and CR or
/// CR LF become LF.
pub fn unescape_str(raw: &str) -> Vec<u8> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c == b'\\' && i < b.len() {
            let e = b[i];
            i += 1;
            out.push(match e {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                other => other,
            });
        } else if c == b'\r' {
            out.push(b'\n');
            if i < b.len() && b[i] == b'\n' {
                i += 1;
            }
        } else {
            out.push(c);
        }
    }
    restore_bytes(out)
}

/// One token of an indented string as Nix's lexer splits it: the bytes, whether they count
/// for indentation (plain text does; escapes do not), and the byte offset in the segment.
#[derive(Debug, PartialEq, Eq)]
pub struct IndToken {
    /// The token's bytes after unescaping.
    pub bytes: Vec<u8>,
    /// Plain text (true) or an escape (false).
    pub has_indentation: bool,
    /// Offset of the token in the segment.
    pub offset: usize,
}

/// Split a literal segment of an indented string into Nix's lexer tokens.
pub fn split_ind_segment(raw: &str) -> Vec<IndToken> {
    let b = raw.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        // ([^$']|\$[^{']|'[^'$])+
        let start = i;
        loop {
            if i >= b.len() {
                break;
            }
            match b[i] {
                b'$' => {
                    if i + 1 < b.len() && b[i + 1] != b'{' && b[i + 1] != b'\'' {
                        i += 2;
                    } else {
                        break;
                    }
                }
                b'\'' => {
                    if i + 1 < b.len() && b[i + 1] != b'\'' && b[i + 1] != b'$' {
                        i += 2;
                    } else {
                        break;
                    }
                }
                _ => i += 1,
            }
        }
        if i > start {
            out.push(IndToken {
                bytes: restore_bytes(b[start..i].to_vec()),
                has_indentation: true,
                offset: start,
            });
            continue;
        }
        let rest = &b[i..];
        if rest.starts_with(b"''$") {
            out.push(IndToken {
                bytes: b"$".to_vec(),
                has_indentation: false,
                offset: i,
            });
            i += 3;
        } else if rest.starts_with(b"'''") {
            out.push(IndToken {
                bytes: b"''".to_vec(),
                has_indentation: false,
                offset: i,
            });
            i += 3;
        } else if rest.starts_with(b"''\\") && rest.len() > 3 {
            // `''\` and one (UTF-8) character, unescaped like `"\x"`.
            let ch_len = utf8_len(rest[3]);
            let end = (3 + ch_len).min(rest.len());
            let esc = std::str::from_utf8(&rest[2..end]).unwrap_or("\\");
            out.push(IndToken {
                bytes: unescape_str(esc),
                has_indentation: false,
                offset: i,
            });
            i += end;
        } else if rest[0] == b'$' {
            out.push(IndToken {
                bytes: b"$".to_vec(),
                has_indentation: false,
                offset: i,
            });
            i += 1;
        } else {
            // A lone `'`.
            out.push(IndToken {
                bytes: b"'".to_vec(),
                has_indentation: false,
                offset: i,
            });
            i += 1;
        }
    }
    out
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xC0..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF7 => 4,
        _ => 1,
    }
}

/// A part of an indented string before stripping.
pub enum IndPart<E> {
    /// Text.
    Text(IndToken, u32),
    /// `${…}`.
    Interp(E, u32),
}

/// A part after stripping.
pub enum StrippedPart<E> {
    /// Text (never empty).
    Text(Vec<u8>, u32),
    /// `${…}`.
    Interp(E, u32),
}

/// Nix's `stripIndentation`.
pub fn strip_indentation<E>(parts: Vec<IndPart<E>>) -> Vec<StrippedPart<E>> {
    let mut at_start = true;
    let mut min_indent = 1_000_000usize;
    let mut cur_indent = 0usize;
    for p in &parts {
        match p {
            IndPart::Text(t, _) if t.has_indentation => {
                for &c in &t.bytes {
                    if at_start {
                        if c == b' ' {
                            cur_indent += 1;
                        } else if c == b'\n' {
                            cur_indent = 0;
                        } else {
                            at_start = false;
                            min_indent = min_indent.min(cur_indent);
                        }
                    } else if c == b'\n' {
                        at_start = true;
                        cur_indent = 0;
                    }
                }
            }
            _ => {
                if at_start {
                    at_start = false;
                    min_indent = min_indent.min(cur_indent);
                }
            }
        }
    }

    let mut out = Vec::new();
    at_start = true;
    let mut cur_dropped = 0usize;
    let mut n = parts.len();
    for p in parts {
        match p {
            IndPart::Interp(e, pos) => {
                at_start = false;
                cur_dropped = 0;
                out.push(StrippedPart::Interp(e, pos));
            }
            IndPart::Text(t, pos) => {
                let mut s2 = Vec::with_capacity(t.bytes.len());
                for &c in &t.bytes {
                    if at_start {
                        if c == b' ' {
                            if cur_dropped >= min_indent {
                                s2.push(c);
                            }
                            cur_dropped += 1;
                        } else if c == b'\n' {
                            cur_dropped = 0;
                            s2.push(c);
                        } else {
                            at_start = false;
                            cur_dropped = 0;
                            s2.push(c);
                        }
                    } else {
                        s2.push(c);
                        if c == b'\n' {
                            at_start = true;
                        }
                    }
                }
                if n == 1
                    && let Some(p) = s2.iter().rposition(|&c| c == b'\n')
                    && s2[p + 1..].iter().all(|&c| c == b' ')
                {
                    s2.truncate(p + 1);
                }
                if !s2.is_empty() {
                    out.push(StrippedPart::Text(s2, pos));
                }
            }
        }
        n -= 1;
    }
    out
}

/// Canonicalize an absolute path lexically (Nix's `canonPath` without symlinks): collapse
/// `//`, drop `.`, resolve `..`, no trailing slash.
pub fn canon_path(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    if parts.is_empty() {
        return "/".to_string();
    }
    let mut out = String::with_capacity(path.len());
    for p in parts {
        out.push('/');
        out.push_str(p);
    }
    out
}

/// Nix's `absPath`: `path` relative to `base` unless it is absolute, canonicalized.
pub fn abs_path(path: &str, base: &str) -> String {
    if path.starts_with('/') {
        canon_path(path)
    } else {
        canon_path(&format!("{base}/{path}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(unescape_str(r"a\nb\$\{\\"), b"a\nb${\\");
        assert_eq!(unescape_str("a\r\nb\rc"), b"a\nb\nc");
    }

    #[test]
    fn ind_tokens() {
        let t = split_ind_segment("a''$b'''c''\\nd$'e'$");
        let got: Vec<(String, bool)> = t
            .iter()
            .map(|t| {
                (
                    String::from_utf8(t.bytes.clone()).unwrap(),
                    t.has_indentation,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("a".into(), true),
                ("$".into(), false),
                ("b".into(), true),
                ("''".into(), false),
                ("c".into(), true),
                ("\n".into(), false),
                ("d".into(), true),
                ("$".into(), false),
                ("'e".into(), true),
                ("'".into(), false),
                ("$".into(), false),
            ]
        );
    }

    #[test]
    fn paths() {
        assert_eq!(canon_path("/a//b/./c/../d/"), "/a/b/d");
        assert_eq!(abs_path("../x", "/a/b"), "/a/x");
        assert_eq!(abs_path("/", "/a"), "/");
    }
}
