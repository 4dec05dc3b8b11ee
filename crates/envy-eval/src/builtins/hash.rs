//! `hashString`, `hashFile` and `convertHash` (digests and encodings from `envy-store`).

use std::path::Path;

use envy_store::{Hash, HashAlgo, HashFormat};

use super::primop;
use crate::error::EvalResult;
use crate::eval::{Ctx, Diagnostic, Evaluator};
use crate::source::Pos;
use crate::symbol::Sym;
use crate::value::*;

pub(super) static OPS: &[PrimOp] = &[
    primop!("hashString", 2, prim_hash_string),
    primop!("hashFile", 2, prim_hash_file),
    primop!("convertHash", 1, prim_convert_hash),
];

fn algo(ev: &Evaluator, name: &str, pos: Pos) -> EvalResult<HashAlgo> {
    HashAlgo::parse(name).map_err(|_| {
        ev.error(
            format!("unknown hash algorithm '{name}', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'"),
            pos,
        )
    })
}

fn prim_hash_string(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.force_string_no_ctx(&args[0], pos, Ctx::Arg(1, "hashString"))?;
    let a = algo(ev, &a.to_str_lossy(), pos)?;
    let s = ev.force_string(&args[1], pos, Ctx::Arg(2, "hashString"))?;
    Ok(Value::string(Hash::of(a, s.as_bytes()).to_hex()))
}

fn prim_hash_file(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.force_string_no_ctx(&args[0], pos, Ctx::Arg(1, "hashFile"))?;
    let a = algo(ev, &a.to_str_lossy(), pos)?;
    let path = ev.realise_path(&args[1], pos)?;
    let bytes = ev.read_file_recorded(Path::new(&path)).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ev.error(format!("path '{path}' does not exist"), pos)
        } else {
            ev.error(format!("reading file '{path}': {e}"), pos)
        }
    })?;
    Ok(Value::string(Hash::of(a, &bytes).to_hex()))
}

fn prim_convert_hash(ev: &mut Evaluator, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let a = ev.force_attrs(
        &args[0],
        pos,
        "while evaluating the first argument passed to builtins.convertHash",
    )?;
    let Some(hash) = a.get(Sym::HASH).cloned() else {
        return Err(ev.missing_attr(&a, Sym::HASH, pos));
    };
    let hash = ev.force_string_no_ctx(&hash, pos, "while evaluating the attribute 'hash'")?;
    let algo_name = match a.get(Sym::new("hashAlgo")).cloned() {
        Some(v) => {
            Some(ev.force_string_no_ctx(&v, pos, "while evaluating the attribute 'hashAlgo'")?)
        }
        None => None,
    };
    let hash_algo = match &algo_name {
        Some(n) => Some(algo(ev, &n.to_str_lossy(), pos)?),
        None => None,
    };
    let Some(fmt) = a.get(Sym::new("toHashFormat")).cloned() else {
        return Err(ev.missing_attr(&a, Sym::new("toHashFormat"), pos));
    };
    let fmt = ev.force_string_no_ctx(&fmt, pos, "while evaluating the attribute 'toHashFormat'")?;
    let format = match fmt.to_str_lossy().as_ref() {
        "base16" => HashFormat::Base16,
        "nix32" => HashFormat::Nix32,
        "base32" => {
            ev.emit(Diagnostic::Warning {
                msg: "\"base32\" is a deprecated alias for hash format \"nix32\".".into(),
                pos: Pos::NONE,
                from_expr: false,
            });
            HashFormat::Nix32
        }
        "base64" => HashFormat::Base64,
        "sri" => HashFormat::Sri,
        other => {
            return Err(ev.error(
                format!(
                    "unknown hash format '{other}', expect 'base16', 'base32', 'base64', or 'sri'"
                ),
                pos,
            ));
        }
    };
    let h = Hash::parse_any(&hash.to_str_lossy(), hash_algo)
        .map_err(|e| ev.error(e.to_string(), pos))?;
    Ok(Value::string(h.to_string_as(format, false)))
}
