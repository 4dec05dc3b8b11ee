//! envy's global allocator: glibc's `malloc` until [`use_mimalloc`] is called, mimalloc after.
//!
//! The evaluator allocates many small, short-lived objects, and mimalloc serves them about
//! 10% faster than glibc. But setting mimalloc up costs as much again as the whole start-up of
//! the hook's fast path, which runs at every prompt, and reads two kernel settings from
//! `/proc` and `/sys` (the hook path reads no file). So:
//!
//! - mimalloc is compiled without its process constructor (`.cargo/config.toml` defines
//!   `MI_PRIM_HAS_PROCESS_ATTACH`, mimalloc's switch for platforms that attach it themselves);
//!   [`use_mimalloc`] attaches it, once, when the first command that evaluates starts;
//! - until then every allocation goes to glibc, and no call reaches mimalloc at all;
//! - after, freeing asks mimalloc whether it owns the pointer, so memory from either
//!   allocator is returned to the one that gave it.
//!
//! mimalloc is called directly for the usual alignments instead of through its slower aligned
//! entry points, and is built without transparent huge pages (short runs would pay for
//! zeroing 2 MiB pages).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

use libmimalloc_sys as mi;

static MIMALLOC: AtomicBool = AtomicBool::new(false);

/// mimalloc's minimum alignment for any allocation.
const MIN_ALIGN: usize = 16;

unsafe extern "C" {
    /// mimalloc's process set-up, which its constructor would run at start-up; idempotent.
    fn _mi_auto_process_init();
}

/// Set mimalloc up (once) and serve every allocation from now on with it; returns whether
/// mimalloc is on.
///
/// Only the main thread may attach: mimalloc binds its main heap to the thread that sets it
/// up, and would tear it down when that thread ends. Called from any other thread (a test
/// harness's worker, say), this leaves glibc in charge.
pub fn use_mimalloc() -> bool {
    static ATTACH: Once = Once::new();
    // SAFETY: plain system calls without arguments.
    let main_thread = unsafe { libc::gettid() == libc::getpid() };
    if main_thread {
        ATTACH.call_once(|| {
            // SAFETY: mimalloc's process-attach entry point (what its constructor would have
            // run), called once, on the main thread, before any allocation is routed to it.
            unsafe { _mi_auto_process_init() };
            MIMALLOC.store(true, Ordering::Release);
        });
    }
    mimalloc_on()
}

/// Whether mimalloc serves new allocations (and may own existing blocks).
#[inline]
fn mimalloc_on() -> bool {
    MIMALLOC.load(Ordering::Acquire)
}

/// The dispatching allocator (see the module docs).
pub struct EnvyAlloc;

fn owned_by_mimalloc(ptr: *mut u8) -> bool {
    // SAFETY: a pure lookup in mimalloc's segment map; any pointer value is allowed.
    unsafe { mi::mi_is_in_heap_region(ptr.cast()) }
}

// SAFETY: every method forwards to an allocator that upholds `GlobalAlloc`'s contract, and a
// block is always freed or resized by the allocator that made it (`owned_by_mimalloc`).
// Blocks from `mi_malloc` are aligned to at least `MIN_ALIGN`.
unsafe impl GlobalAlloc for EnvyAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe {
            if !mimalloc_on() {
                System.alloc(layout)
            } else if layout.align() <= MIN_ALIGN {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe {
            if !mimalloc_on() {
                System.alloc_zeroed(layout)
            } else if layout.align() <= MIN_ALIGN {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from the allocator `owned_by_mimalloc` names.
        unsafe {
            if mimalloc_on() && owned_by_mimalloc(ptr) {
                mi::mi_free(ptr.cast::<c_void>())
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from the allocator `owned_by_mimalloc` names; the block stays
        // with that allocator.
        unsafe {
            if !(mimalloc_on() && owned_by_mimalloc(ptr)) {
                System.realloc(ptr, layout, new_size)
            } else if layout.align() <= MIN_ALIGN {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The switch itself (std's start-up allocations made with glibc, freed after mimalloc is
    // on) happens in every run of the envy binary, which calls `use_mimalloc` on its main
    // thread: every integration test exercises it.
    #[test]
    fn only_the_main_thread_attaches_mimalloc() {
        // libtest runs this on a worker thread: attaching here would bind mimalloc's main
        // heap to a thread about to end.
        assert!(!use_mimalloc());
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: a matching alloc/realloc/dealloc sequence with non-zero layouts.
        unsafe {
            let block = EnvyAlloc.alloc(layout);
            assert!(!block.is_null());
            let grown = EnvyAlloc.realloc(block, layout, 4096);
            assert!(!grown.is_null());
            EnvyAlloc.dealloc(grown, Layout::from_size_align(4096, 8).unwrap());
        }
        assert!(!mimalloc_on());
    }
}
