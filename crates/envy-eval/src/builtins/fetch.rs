//! Fetchers: `fetchurl`, `fetchTarball`, `fetchGit`, `fetchTree` and `getFlake`. Their
//! semantics live outside the evaluator (`envy-flake`, on `envy-fetch`): each builtin hands
//! its argument to the [`Fetch`](crate::store::Fetch) the evaluator was built with, and fails
//! with a clear error when there is none.

use crate::builtins::primop;
use crate::error::{ErrorExt, EvalError, EvalResult};
use crate::eval::Evaluator;
use crate::source::Pos;
use crate::store::FetchKind;
use crate::value::{PrimOp, Value};

fn call(ev: &mut Evaluator, kind: FetchKind, args: &[Value], pos: Pos) -> EvalResult<Value> {
    let Some(fetch) = ev.fetch.clone() else {
        return Err(EvalError::eval(format!(
            "`builtins.{}` is not available in this evaluator (no fetcher configured)",
            kind.builtin_name()
        ))
        .at(pos));
    };
    fetch.fetch(ev, kind, &args[0], pos)
}

pub(super) static OPS: &[PrimOp] = &[
    primop!("fetchTree", 1, |ev, a, p| call(ev, FetchKind::Tree, a, p)),
    primop!("fetchGit", 1, |ev, a, p| call(ev, FetchKind::Git, a, p)),
    primop!("fetchTarball", 1, |ev, a, p| call(
        ev,
        FetchKind::Tarball,
        a,
        p
    )),
    primop!("fetchurl", 1, |ev, a, p| call(ev, FetchKind::Url, a, p)),
    primop!("getFlake", 1, |ev, a, p| call(ev, FetchKind::Flake, a, p)),
];
