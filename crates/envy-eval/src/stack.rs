//! How much native stack is left. The evaluator, the lowering and the deep walks (`deepSeq`,
//! equality, ordering) recurse with their input; where the input nests deeper than the call
//! depth limit can see (a left-nested `1+1+…` of 10^5 terms, a list nested 10^6 deep by
//! `foldl'`), they stop with Nix's "stack overflow (possible infinite recursion)" instead
//! of running off the end of the thread's stack.
//!
//! Only threads started by [`crate::run_with_stack`] know their stack size; elsewhere the
//! check never fires.

use std::cell::Cell;

use crate::error::{ErrorKind, EvalError};
use crate::source::Pos;

/// Stack kept free below the limit: what a check-free stretch of recursion (printing, drop
/// of a deep tree) and building the error itself may need.
const RESERVE: usize = 128 << 20;

thread_local! {
    static LIMIT: Cell<usize> = const { Cell::new(0) };
}

/// The current stack address (stacks grow down on every platform envy runs on).
#[inline(always)]
pub(crate) fn here() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

/// Record that this thread has `size` bytes of stack, most of them above this call.
pub(crate) fn set_size(size: usize) {
    LIMIT.set(here().saturating_sub(size.saturating_sub(RESERVE)));
}

/// The address below which this thread's stack is too low (0: unknown, never).
pub(crate) fn limit() -> usize {
    LIMIT.get()
}

/// Whether this thread's stack is nearly exhausted.
#[inline]
pub(crate) fn exhausted() -> bool {
    here() < limit()
}

/// Nix's error for a native stack overflow.
#[cold]
pub(crate) fn overflow(pos: Pos) -> Box<EvalError> {
    let mut e = EvalError::new(
        ErrorKind::StackOverflow,
        "stack overflow (possible infinite recursion)",
    );
    e.pos = pos;
    e
}
