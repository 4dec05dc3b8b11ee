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
//! - after, freeing a block returns it to the allocator that gave it: blocks outside the
//!   address ranges glibc has handed out go straight to mimalloc; only blocks inside them
//!   need mimalloc's slower ownership lookup (its segment map).
//!
//! Once mimalloc is on, small blocks (up to 128 bytes: thunks, closures, environments, the
//! evaluator's small sets and lists) come from a per-thread pool of free lists, one per size
//! class, carved out of 256 KiB chunks that mimalloc provides. Taking a block off a free list
//! and putting it back is a handful of instructions inline, where a call into mimalloc costs a
//! few dozen; the evaluator makes millions of them. Freed small blocks stay in the pool of the
//! thread that frees them (chunks are never returned: envy's processes are short, and the
//! memory is reused).
//!
//! mimalloc is called directly for the usual alignments instead of through its slower aligned
//! entry points, and is built without transparent huge pages (short runs would pay for
//! zeroing 2 MiB pages).

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::c_void;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

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
            exit_on_out_of_memory();
        });
    }
    mimalloc_on()
}

/// Set once an allocation has failed: the abort that follows is running out of memory.
static OUT_OF_MEMORY: AtomicBool = AtomicBool::new(false);

#[inline]
fn note_failure(p: *mut u8) -> *mut u8 {
    if p.is_null() {
        OUT_OF_MEMORY.store(true, Ordering::Relaxed);
    }
    p
}

/// Make running out of memory end as Nix's does (`error: out of memory`, exit status 1)
/// rather than as Rust's abort (SIGABRT, 134). Stable Rust has no allocation-error hook, so
/// this catches the abort `handle_alloc_error` ends in, when an allocation has failed first;
/// any other abort goes on. Only commands that evaluate install it (from `use_mimalloc`).
fn exit_on_out_of_memory() {
    extern "C" fn on_abort(_: libc::c_int) {
        if OUT_OF_MEMORY.load(Ordering::Relaxed) {
            const MSG: &[u8] = b"error: out of memory\n";
            // SAFETY: async-signal-safe calls only.
            unsafe {
                libc::write(2, MSG.as_ptr().cast(), MSG.len());
                libc::_exit(1);
            }
        }
    }
    let handler: extern "C" fn(libc::c_int) = on_abort;
    // SAFETY: installs a handler that only makes async-signal-safe calls.
    unsafe { libc::signal(libc::SIGABRT, handler as libc::sighandler_t) };
}

/// Whether mimalloc serves new allocations (and may own existing blocks).
#[inline]
fn mimalloc_on() -> bool {
    MIMALLOC.load(Ordering::Acquire)
}

/// The dispatching allocator (see the module docs).
pub struct EnvyAlloc;

/// The address ranges of the blocks glibc has handed out (`lo..hi`, empty until then): one for
/// small blocks (glibc's heaps) and one for large ones (glibc maps those separately, next to
/// mimalloc's own mappings), so that a few large blocks do not widen the small range.
static GLIBC_SMALL: Range = Range::empty();
static GLIBC_LARGE: Range = Range::empty();

/// glibc's default threshold above which it maps a block on its own.
const GLIBC_MMAP_THRESHOLD: usize = 128 * 1024;

struct Range {
    lo: AtomicUsize,
    hi: AtomicUsize,
}

impl Range {
    const fn empty() -> Range {
        Range {
            lo: AtomicUsize::new(usize::MAX),
            hi: AtomicUsize::new(0),
        }
    }

    #[inline]
    fn contains(&self, p: usize) -> bool {
        // Relaxed is enough: a block reaches another thread only through a synchronisation
        // that also publishes the widening recorded before the block was handed out.
        self.lo.load(Ordering::Relaxed) <= p && p < self.hi.load(Ordering::Relaxed)
    }
}

/// Note a block glibc handed out (before its address can reach `dealloc`).
#[inline]
fn note_glibc(ptr: *mut u8, size: usize) -> *mut u8 {
    if !ptr.is_null() {
        let range = if size >= GLIBC_MMAP_THRESHOLD {
            &GLIBC_LARGE
        } else {
            &GLIBC_SMALL
        };
        let (p, end) = (ptr as usize, ptr as usize + size.max(1));
        // Most blocks fall inside the range already: plain loads, no read-modify-write.
        if p < range.lo.load(Ordering::Relaxed) {
            range.lo.fetch_min(p, Ordering::Relaxed);
        }
        if end > range.hi.load(Ordering::Relaxed) {
            range.hi.fetch_max(end, Ordering::Relaxed);
        }
    }
    ptr
}

#[inline]
fn owned_by_mimalloc(ptr: *mut u8) -> bool {
    let p = ptr as usize;
    if !GLIBC_SMALL.contains(p) && !GLIBC_LARGE.contains(p) {
        return true;
    }
    // SAFETY: a pure lookup in mimalloc's segment map; any pointer value is allowed.
    unsafe { mi::mi_is_in_heap_region(ptr.cast()) }
}

/// The per-thread pool of small blocks (see the module docs).
mod pool {
    use std::cell::Cell;
    use std::ptr;

    use libmimalloc_sys as mi;

    /// The largest block the pool serves.
    pub const MAX: usize = 128;
    /// Size classes are multiples of this (which keeps blocks of sizes that are multiples of
    /// 16 aligned to 16, as the chunks are).
    const STEP: usize = 8;
    const CLASSES: usize = MAX / STEP;
    const CHUNK: usize = 256 * 1024;

    struct Pool {
        /// The head of each class's free list; a free block holds the next one's address.
        free: [Cell<*mut u8>; CLASSES],
        /// The unused rest of the current chunk.
        next: Cell<*mut u8>,
        end: Cell<*mut u8>,
    }

    // No destructor: the pool stays usable while other thread-locals are dropped.
    thread_local! {
        static POOL: Pool = const {
            Pool {
                free: [const { Cell::new(ptr::null_mut()) }; CLASSES],
                next: Cell::new(ptr::null_mut()),
                end: Cell::new(ptr::null_mut()),
            }
        };
    }

    #[inline]
    fn class(size: usize) -> usize {
        debug_assert!(size > 0 && size <= MAX);
        (size - 1) / STEP
    }

    /// A block of at least `size` bytes (1..=MAX), aligned to 16 when its class's size is a
    /// multiple of 16 (as it is when `size` is) and to 8 otherwise; null when out of memory.
    #[inline]
    pub fn alloc(size: usize) -> *mut u8 {
        let c = class(size);
        POOL.with(|p| {
            let head = p.free[c].get();
            if !head.is_null() {
                // SAFETY: a block on a free list holds the next block's address.
                p.free[c].set(unsafe { head.cast::<*mut u8>().read() });
                return head;
            }
            // A new block from the current chunk; blocks whose size is a multiple of 16 start
            // at a multiple of 16.
            let block = (c + 1) * STEP;
            let mask = if block.is_multiple_of(16) {
                15
            } else {
                STEP - 1
            };
            let next = p.next.get();
            let skip = (((next as usize) + mask) & !mask) - next as usize;
            if (p.end.get() as usize) - (next as usize) >= block + skip {
                // SAFETY: `skip + block` bytes fit before `end`, within the chunk.
                unsafe {
                    let start = next.add(skip);
                    p.next.set(start.add(block));
                    return start;
                }
            }
            refill(p, block)
        })
    }

    /// A new chunk, and the first block from it.
    #[cold]
    #[inline(never)]
    fn refill(p: &Pool, block: usize) -> *mut u8 {
        // SAFETY: a plain allocation; mimalloc aligns blocks of this size to 16 at least.
        let chunk = unsafe { mi::mi_malloc(CHUNK) }.cast::<u8>();
        if chunk.is_null() {
            return chunk;
        }
        // SAFETY: within (one past the end of) the chunk.
        unsafe {
            p.next.set(chunk.add(block));
            p.end.set(chunk.add(CHUNK));
        }
        chunk
    }

    /// Put a block of `size` bytes (as allocated) back.
    ///
    /// # Safety
    /// `ptr` came from `alloc` with the same `size` class, on any thread, and is not used
    /// again.
    #[inline]
    pub unsafe fn free(ptr: *mut u8, size: usize) {
        let c = class(size);
        POOL.with(|p| {
            // SAFETY: the block is ours now and at least a pointer wide (8-byte classes).
            unsafe { ptr.cast::<*mut u8>().write(p.free[c].get()) };
            p.free[c].set(ptr);
        })
    }
}

/// The pool's block size for `layout` (its size rounded up to its alignment, so that a
/// class holding 16-byte multiples serves 16-aligned blocks), if the pool serves it (when
/// mimalloc is on).
#[inline]
fn pooled(layout: Layout) -> Option<usize> {
    // The alignment is a power of two: round up with a mask (not a division).
    let mask = layout.align() - 1;
    let size = (layout.size() + mask) & !mask;
    (size <= pool::MAX && layout.align() <= MIN_ALIGN).then_some(size)
}

// SAFETY: every method forwards to an allocator that upholds `GlobalAlloc`'s contract, and a
// block is always freed or resized by the allocator that made it (`owned_by_mimalloc`, then
// the layout's size for the pool). Blocks from `mi_malloc` are aligned to at least
// `MIN_ALIGN`; blocks from the pool to 16 when their class's size is a multiple of 16, which
// it is for a layout aligned to 16 (`pooled` rounds the size up to the alignment), and to 8
// otherwise.
unsafe impl GlobalAlloc for EnvyAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        note_failure(unsafe {
            if !mimalloc_on() {
                note_glibc(System.alloc(layout), layout.size())
            } else if let Some(size) = pooled(layout) {
                pool::alloc(size)
            } else if layout.align() <= MIN_ALIGN {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        })
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        note_failure(unsafe {
            if !mimalloc_on() {
                note_glibc(System.alloc_zeroed(layout), layout.size())
            } else if let Some(size) = pooled(layout) {
                let p = pool::alloc(size);
                if !p.is_null() {
                    p.write_bytes(0, layout.size());
                }
                p
            } else if layout.align() <= MIN_ALIGN {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        })
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from the allocator `owned_by_mimalloc` names.
        unsafe {
            if mimalloc_on() && owned_by_mimalloc(ptr) {
                if let Some(size) = pooled(layout) {
                    pool::free(ptr, size)
                } else {
                    mi::mi_free(ptr.cast::<c_void>())
                }
            } else {
                System.dealloc(ptr, layout)
            }
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from the allocator `owned_by_mimalloc` names; the block stays
        // with that allocator.
        note_failure(unsafe {
            if !(mimalloc_on() && owned_by_mimalloc(ptr)) {
                note_glibc(System.realloc(ptr, layout, new_size), new_size)
            } else if pooled(layout).is_some() || new_size <= pool::MAX {
                // Into or out of the pool: a new block, the contents copied.
                let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
                let new = self.alloc(new_layout);
                if !new.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                new
            } else if layout.align() <= MIN_ALIGN {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        })
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

    #[test]
    fn the_pool_hands_out_aligned_separate_blocks_and_reuses_freed_ones() {
        // Every class, with the alignment `pooled` asks for.
        let layouts: Vec<Layout> = (1..=pool::MAX)
            .flat_map(|size| {
                [
                    Layout::from_size_align(size, 8),
                    Layout::from_size_align(size, 16),
                ]
            })
            .filter_map(Result::ok)
            .collect();
        let mut blocks = Vec::new();
        for _ in 0..3 {
            for &layout in &layouts {
                let size = pooled(layout).expect("small blocks are pooled");
                assert!(size >= layout.size());
                let p = pool::alloc(size);
                assert!(!p.is_null());
                assert_eq!(p as usize % layout.align(), 0, "{layout:?}");
                // SAFETY: the block has `size` bytes.
                unsafe { p.write_bytes(0xAB, size) };
                blocks.push((p as usize, size));
            }
        }
        let mut sorted = blocks.clone();
        sorted.sort();
        for w in sorted.windows(2) {
            assert!(w[0].0 + w[0].1 <= w[1].0, "blocks overlap: {w:?}");
        }
        let (first, size) = blocks[0];
        // SAFETY: allocated above with this size, not used again.
        unsafe { pool::free(first as *mut u8, size) };
        assert_eq!(
            pool::alloc(size) as usize,
            first,
            "a freed block is used again"
        );
    }
}
