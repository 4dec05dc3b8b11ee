//! envy's global allocator: glibc's `malloc` until [`use_mimalloc`] is called, mimalloc after.
//!
//! The evaluator allocates many small, short-lived objects, and mimalloc serves them about
//! 10% faster than glibc. But mimalloc's first allocation sets up its arena, which costs as
//! much again as the whole start-up of the hook's fast path, which runs at every prompt. So
//! the hook (`envy export`, fast and slow path) allocates with glibc, and every other command
//! with mimalloc; a backend that evaluates in-process calls [`use_mimalloc`] before it starts.
//! Freeing asks mimalloc whether it owns the pointer, so memory from either allocator is
//! returned to the one that gave it.
//!
//! mimalloc is called directly for the usual alignments instead of through its slower aligned
//! entry points, and is built without transparent huge pages (short runs would pay for
//! zeroing 2 MiB pages).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, Ordering};

use libmimalloc_sys as mi;

static MIMALLOC: AtomicBool = AtomicBool::new(false);

/// mimalloc's minimum alignment for any allocation.
const MIN_ALIGN: usize = 16;

/// Serve every allocation from now on with mimalloc.
pub fn use_mimalloc() {
    MIMALLOC.store(true, Ordering::Relaxed);
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
            if !MIMALLOC.load(Ordering::Relaxed) {
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
            if !MIMALLOC.load(Ordering::Relaxed) {
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
            if owned_by_mimalloc(ptr) {
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
            if !owned_by_mimalloc(ptr) {
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

    #[test]
    fn blocks_from_both_allocators_are_freed_by_their_owner() {
        let layout = Layout::from_size_align(64, 8).unwrap();
        // SAFETY: matching alloc/dealloc pairs with a non-zero layout.
        unsafe {
            let from_glibc = System.alloc(layout);
            assert!(!owned_by_mimalloc(from_glibc));
            let from_mimalloc: *mut u8 = mi::mi_malloc(64).cast();
            assert!(owned_by_mimalloc(from_mimalloc));
            EnvyAlloc.dealloc(from_glibc, layout);
            let grown = EnvyAlloc.realloc(from_mimalloc, layout, 4096);
            assert!(owned_by_mimalloc(grown));
            EnvyAlloc.dealloc(grown, Layout::from_size_align(4096, 8).unwrap());
        }
    }
}
