//! Builtins on strings: `stringLength`, `substring`, `concatStringsSep`, `replaceStrings`,
//! `match`, `split`, `toString`, `baseNameOf`, `dirOf`, `parseDrvName`, `compareVersions`,
//! `splitVersion`.

use std::cmp::Ordering;
use std::rc::Rc;

use super::primop;
use crate::error::{ErrorExt, EvalResult};
use crate::eval::{CoerceOpts, Ctx, Evaluator};
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[
    primop!("stringLength", 1, prim_string_length),
    primop!("substring", 3, prim_substring),
    primop!("concatStringsSep", 2, prim_concat_strings_sep),
    primop!("replaceStrings", 3, prim_replace_strings),
    primop!("match", 2, prim_match),
    primop!("split", 2, prim_split),
    primop!("toString", 1, prim_to_string),
    primop!("baseNameOf", 1, prim_base_name_of),
    primop!("dirOf", 1, prim_dir_of),
    primop!("parseDrvName", 1, prim_parse_drv_name),
    primop!("compareVersions", 2, prim_compare_versions),
    primop!("splitVersion", 1, prim_split_version),
];

fn plain() -> CoerceOpts {
    CoerceOpts {
        coerce_more: false,
        copy_to_store: true,
        canonicalize_path: false,
    }
}

fn prim_string_length(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let s = ev
        .coerce_to_string(&args[0], pos, &mut Context::new(), plain())
        .map_err(|e| {
            e.frame(
                pos,
                "while evaluating the argument passed to builtins.stringLength",
            )
        })?;
    Ok(Value::Int(s.len() as i64))
}

fn prim_substring(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let start = ev.force_int(
        &args[0],
        pos,
        "while evaluating the first argument (the start offset) passed to builtins.substring",
    )?;
    if start < 0 {
        return Err(ev.error("negative start position in 'substring'", pos));
    }
    let len = ev.force_int(
        &args[1],
        pos,
        "while evaluating the second argument (the substring length) passed to builtins.substring",
    )?;
    if len == 0 {
        let v = ev.force(&args[2], pos)?;
        if let Value::String(s) = &v {
            let ctx = s.context().cloned().unwrap_or_default();
            return Ok(Value::String(Shared::new(NixStr::with_context(
                Vec::new(),
                ctx,
            ))));
        }
    }
    let mut ctx = Context::new();
    let s = ev
        .coerce_to_string(&args[2], pos, &mut ctx, plain())
        .map_err(|e| {
            e.frame(
                pos,
                "while evaluating the third argument (the string) passed to builtins.substring",
            )
        })?;
    let start = start as usize;
    let out = if start >= s.len() {
        Vec::new()
    } else {
        let end = if len < 0 {
            s.len()
        } else {
            (start.saturating_add(len as usize)).min(s.len())
        };
        s[start..end].to_vec()
    };
    Ok(Value::String(Shared::new(NixStr::with_context(out, ctx))))
}

fn prim_concat_strings_sep(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let sep = ev.force_string(&args[0], pos, "while evaluating the first argument (the separator string) passed to builtins.concatStringsSep")?;
    sep.merge_context_into(&mut ctx);
    let list = ev.force_list(&args[1], pos, "while evaluating the second argument (the list of strings to concat) passed to builtins.concatStringsSep")?;
    let mut out = Vec::new();
    for (i, item) in list.iter().enumerate() {
        if i > 0 {
            out.extend_from_slice(sep.as_bytes());
        }
        let s = ev
            .coerce_to_string(item, pos, &mut ctx, plain())
            .map_err(|e| e.frame(pos, "while evaluating one element of the list of strings to concat passed to builtins.concatStringsSep"))?;
        out.extend_from_slice(&s);
    }
    Ok(Value::String(Shared::new(NixStr::with_context(out, ctx))))
}

fn prim_replace_strings(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let from = ev.force_list(&args[0], pos, Ctx::Arg(1, "replaceStrings"))?;
    let to = ev.force_list(&args[1], pos, Ctx::Arg(2, "replaceStrings"))?;
    if from.len() != to.len() {
        return Err(ev.error(
            "'from' and 'to' arguments passed to builtins.replaceStrings have different lengths",
            pos,
        ));
    }
    let mut pats: Vec<Shared<NixStr>> = Vec::with_capacity(from.len());
    for f in from.iter() {
        pats.push(ev.force_string(
            f,
            pos,
            "while evaluating one of the strings to replace passed to builtins.replaceStrings",
        )?);
    }
    let mut reps: Vec<Option<Shared<NixStr>>> = vec![None; to.len()];
    let mut ctx = Context::new();
    // Forced, not coerced (as Nix: a path or a set with `__toString` is a type error).
    let s = ev.force_string(
        &args[2],
        pos,
        "while evaluating the third argument passed to builtins.replaceStrings",
    )?;
    s.merge_context_into(&mut ctx);
    let s = s.as_bytes();
    let mut out = Vec::with_capacity(s.len());
    let mut p = 0;
    while p <= s.len() {
        let mut found = false;
        for (i, pat) in pats.iter().enumerate() {
            let pb = pat.as_bytes();
            if s[p..].starts_with(pb) {
                found = true;
                if reps[i].is_none() {
                    reps[i] = Some(ev.force_string(&to[i], pos, "while evaluating one of the replacement strings passed to builtins.replaceStrings")?);
                }
                let rep = reps[i].as_ref().expect("just set");
                out.extend_from_slice(rep.as_bytes());
                rep.merge_context_into(&mut ctx);
                if pb.is_empty() {
                    if p < s.len() {
                        out.push(s[p]);
                    }
                    p += 1;
                } else {
                    p += pb.len();
                }
                break;
            }
        }
        if !found {
            if p < s.len() {
                out.push(s[p]);
            }
            p += 1;
        }
    }
    Ok(Value::String(Shared::new(NixStr::with_context(out, ctx))))
}

/// The compiled regular expression (the first argument; `whole`: it must match the whole
/// string) and the string (the second) of `builtins.NAME`.
fn regex_and_string(
    ev: &mut Evaluator,
    args: &[Value],
    pos: Pos,
    name: &'static str,
    whole: bool,
) -> EvalResult<(Rc<regex::bytes::Regex>, Shared<NixStr>)> {
    let re = ev.force_string_no_ctx(&args[0], pos, Ctx::Arg(1, name))?;
    let regex = ev.regex(re.as_bytes(), whole, pos)?;
    let s = ev.force_string(&args[1], pos, Ctx::Arg(2, name))?;
    Ok((regex, s))
}

/// A match's groups (not the whole match) as strings, `null` for those that did not take part.
fn groups(caps: &regex::bytes::Captures<'_>) -> Value {
    Value::list(
        (1..caps.len())
            .map(|i| match caps.get(i) {
                Some(g) => Value::string(g.as_bytes()),
                None => Value::Null,
            })
            .collect(),
    )
}

fn prim_match(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let (regex, s) = regex_and_string(ev, args, pos, "match", true)?;
    Ok(match regex.captures(s.as_bytes()) {
        Some(caps) => groups(&caps),
        None => Value::Null,
    })
}

fn prim_split(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let (regex, s) = regex_and_string(ev, args, pos, "split", false)?;
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut last = 0;
    for caps in regex.captures_iter(bytes) {
        let m = caps.get(0).expect("group 0 always matches");
        out.push(Value::string(&bytes[last..m.start()]));
        out.push(groups(&caps));
        last = m.end();
    }
    if out.is_empty() {
        return Ok(Value::list(vec![Value::String(s)]));
    }
    out.push(Value::string(&bytes[last..]));
    Ok(Value::list(out))
}

fn prim_to_string(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    ev.coerce_to_string_value(
        &args[0],
        pos,
        CoerceOpts {
            coerce_more: true,
            copy_to_store: false,
            canonicalize_path: false,
        },
    )
    .map_err(|e| {
        e.frame(
            pos,
            "while evaluating the first argument passed to builtins.toString",
        )
    })
}

/// Nix's `baseNameOf` on a string: the last component, ignoring one trailing slash.
pub(crate) fn base_name(s: &[u8]) -> &[u8] {
    if s.is_empty() {
        return s;
    }
    let mut last = s.len() - 1;
    if s[last] == b'/' && last > 0 {
        last -= 1;
    }
    let upto = &s[..=last];
    match upto.iter().rposition(|&c| c == b'/') {
        Some(p) => &upto[p + 1..],
        None => upto,
    }
}

fn prim_base_name_of(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    map_coerced(
        ev,
        &args[0],
        pos,
        "while evaluating the first argument passed to builtins.baseNameOf",
        base_name,
    )
}

/// `f` applied to `v` coerced to a string (no `toString`-only coercions, paths not copied),
/// keeping its context.
fn map_coerced(
    ev: &mut Evaluator,
    v: &Value,
    pos: Pos,
    frame: &str,
    f: impl Fn(&[u8]) -> &[u8],
) -> EvalResult<Value> {
    let mut ctx = Context::new();
    let s = ev
        .coerce_to_string(
            v,
            pos,
            &mut ctx,
            CoerceOpts {
                coerce_more: false,
                copy_to_store: false,
                canonicalize_path: false,
            },
        )
        .map_err(|e| e.frame(pos, frame))?;
    Ok(Value::String(Shared::new(NixStr::with_context(
        f(&s).to_vec(),
        ctx,
    ))))
}

pub(crate) fn dir_of(s: &[u8]) -> &[u8] {
    match s.iter().rposition(|&c| c == b'/') {
        None => b".",
        Some(0) => b"/",
        Some(p) => &s[..p],
    }
}

fn prim_dir_of(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let v = ev.force(&args[0], pos)?;
    if let Value::Path(p) = &v {
        let parent = dir_of(p.as_bytes());
        return Ok(Value::path(String::from_utf8_lossy(parent).as_ref()));
    }
    map_coerced(
        ev,
        &v,
        pos,
        "while evaluating the first argument passed to 'builtins.dirOf'",
        dir_of,
    )
}

fn prim_parse_drv_name(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let s = ev.force_string_no_ctx(&args[0], pos, Ctx::Arg(1, "parseDrvName"))?;
    let b = s.as_bytes();
    let mut name = b;
    let mut version: &[u8] = b"";
    for i in 0..b.len() {
        if b[i] == b'-' && i + 1 < b.len() && !b[i + 1].is_ascii_alphabetic() {
            name = &b[..i];
            version = &b[i + 1..];
            break;
        }
    }
    Ok(Value::attrs(Attrs::from_unsorted(vec![
        Attr {
            name: Sym::NAME,
            pos: Pos::NONE,
            value: Value::string(name),
        },
        Attr {
            name: Sym::new("version"),
            pos: Pos::NONE,
            value: Value::string(version),
        },
    ])))
}

/// Nix's `nextComponent`: split versions at `.` and `-`, and between digits and letters.
fn version_components(s: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        while i < s.len() && (s[i] == b'.' || s[i] == b'-') {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        let start = i;
        if s[i].is_ascii_digit() {
            while i < s.len() && s[i].is_ascii_digit() {
                i += 1;
            }
        } else {
            while i < s.len() && !(s[i].is_ascii_digit() || s[i] == b'.' || s[i] == b'-') {
                i += 1;
            }
        }
        out.push(&s[start..i]);
    }
    out
}

fn component_less(a: &[u8], b: &[u8]) -> bool {
    let num = |x: &[u8]| -> Option<u64> {
        if !x.is_empty() && x.iter().all(|c| c.is_ascii_digit()) {
            std::str::from_utf8(x).ok()?.parse().ok()
        } else {
            None
        }
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x < y,
        _ => {
            if (a.is_empty() && num(b).is_some()) || (a == b"pre" && b != b"pre") {
                true
            } else if b == b"pre" {
                false
            } else if num(b).is_some() {
                true
            } else if num(a).is_some() {
                false
            } else {
                a < b
            }
        }
    }
}

pub(crate) fn compare_versions(a: &[u8], b: &[u8]) -> Ordering {
    let ca = version_components(a);
    let cb = version_components(b);
    let n = ca.len().max(cb.len());
    for i in 0..n {
        let x = ca.get(i).copied().unwrap_or(b"");
        let y = cb.get(i).copied().unwrap_or(b"");
        if component_less(x, y) {
            return Ordering::Less;
        }
        if component_less(y, x) {
            return Ordering::Greater;
        }
    }
    Ordering::Equal
}

fn prim_compare_versions(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.force_string_no_ctx(&args[0], pos, Ctx::Arg(1, "compareVersions"))?;
    let b = ev.force_string_no_ctx(&args[1], pos, Ctx::Arg(2, "compareVersions"))?;
    Ok(Value::Int(
        match compare_versions(a.as_bytes(), b.as_bytes()) {
            Ordering::Less => -1,
            Ordering::Equal => 0,
            Ordering::Greater => 1,
        },
    ))
}

fn prim_split_version(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let s = ev.force_string_no_ctx(&args[0], pos, Ctx::Arg(1, "splitVersion"))?;
    Ok(Value::list(
        version_components(s.as_bytes())
            .into_iter()
            .map(Value::string)
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(compare_versions(b"1.0", b"2.3"), Ordering::Less);
        assert_eq!(compare_versions(b"2.1", b"2.3"), Ordering::Less);
        assert_eq!(compare_versions(b"2.3", b"2.3"), Ordering::Equal);
        assert_eq!(compare_versions(b"2.5", b"2.3"), Ordering::Greater);
        assert_eq!(compare_versions(b"3.1", b"2.3"), Ordering::Greater);
        assert_eq!(compare_versions(b"2.3.1", b"2.3"), Ordering::Greater);
        assert_eq!(compare_versions(b"2.3.1", b"2.3a"), Ordering::Greater);
        assert_eq!(compare_versions(b"2.3pre1", b"2.3"), Ordering::Less);
        assert_eq!(compare_versions(b"2.3", b"2.3pre1"), Ordering::Greater);
        assert_eq!(compare_versions(b"2.3pre3", b"2.3pre12"), Ordering::Less);
        assert_eq!(compare_versions(b"2.3a", b"2.3c"), Ordering::Less);
        assert_eq!(compare_versions(b"2.3pre1", b"2.3c"), Ordering::Less);
        assert_eq!(compare_versions(b"2.3pre1", b"2.3q"), Ordering::Less);
    }

    #[test]
    fn names() {
        assert_eq!(base_name(b"/a/b/"), b"b");
        assert_eq!(base_name(b"/"), b"");
        assert_eq!(dir_of(b"/a/b"), b"/a");
        assert_eq!(dir_of(b"a"), b".");
        assert_eq!(dir_of(b"/a"), b"/");
    }
}
