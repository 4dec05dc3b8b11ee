//! `ThinRc<H, T>`: a reference count, a header and a slice in one allocation, behind one thin
//! pointer. Attribute sets, lists and environments are built on it.
//!
//! With `Rc<Vec<T>>` (or `AttrSet` holding a `Vec`) every element is two pointers away from
//! the value that holds it, and every set, list or environment is two allocations. Evaluation
//! is dominated by the cache misses of walking those pointers (forcing a thunk, looking an
//! attribute up, reading a variable from an enclosing scope), so the slice lives right after
//! its header, as Nix's `Bindings` and `Env` do. The pointer is one word, which keeps a
//! `Value` at 16 bytes.
//!
//! The count and the length are 32-bit (a slice of more than 4 billion elements is refused,
//! an overflowing count aborts, as `Rc` does), so the header is 8 bytes before `H`.

use std::alloc::{self, Layout};
use std::cell::Cell;
use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::{self, NonNull};

#[repr(C)]
struct Inner<H, T> {
    count: Cell<u32>,
    len: u32,
    header: H,
    items: [T; 0],
}

/// A shared, immutable header and slice in one allocation (see the module docs). Not `Send`
/// or `Sync`: the count is not atomic.
pub struct ThinRc<H, T> {
    ptr: NonNull<Inner<H, T>>,
    _owns: PhantomData<Inner<H, T>>,
}

impl<H, T> ThinRc<H, T> {
    fn layout(len: usize) -> Layout {
        let (layout, offset) = Layout::new::<Inner<H, T>>()
            .extend(Layout::array::<T>(len).expect("slice too large"))
            .expect("slice too large");
        debug_assert_eq!(offset, std::mem::offset_of!(Inner<H, T>, items));
        layout.pad_to_align()
    }

    /// Allocate room for `len` items, with the header written and the count at 1; the items
    /// are not initialised.
    fn allocate(header: H, len: usize) -> NonNull<Inner<H, T>> {
        let len32 = u32::try_from(len).expect("more than 2^32 elements");
        let layout = Self::layout(len);
        // SAFETY: the layout has a non-zero size (the header has at least the two counts).
        let raw = unsafe { alloc::alloc(layout) }.cast::<Inner<H, T>>();
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        // SAFETY: freshly allocated with room for an `Inner`; the fields are written without
        // reading the uninitialised memory.
        unsafe {
            let p = ptr.as_ptr();
            ptr::addr_of_mut!((*p).count).write(Cell::new(1));
            ptr::addr_of_mut!((*p).len).write(len32);
            ptr::addr_of_mut!((*p).header).write(header);
        }
        ptr
    }

    fn items_ptr(ptr: NonNull<Inner<H, T>>) -> *mut T {
        // SAFETY: `items` is within the allocation (a zero-sized field at its offset).
        unsafe { ptr::addr_of_mut!((*ptr.as_ptr()).items).cast::<T>() }
    }

    /// The header and the items of `items`, moved into one allocation.
    pub fn from_vec(header: H, mut items: Vec<T>) -> Self {
        let len = items.len();
        let ptr = Self::allocate(header, len);
        // SAFETY: the allocation has room for `len` items; the vector's items are moved (its
        // length is set to 0 so that it only frees its buffer).
        unsafe {
            ptr::copy_nonoverlapping(items.as_ptr(), Self::items_ptr(ptr), len);
            items.set_len(0);
        }
        ThinRc {
            ptr,
            _owns: PhantomData,
        }
    }

    /// The header and `len` items made by `item(i)`, in order.
    pub fn from_fn(header: H, len: usize, mut item: impl FnMut(usize) -> T) -> Self {
        /// Frees a half-built allocation if `item` panics.
        struct Partial<H, T> {
            ptr: NonNull<Inner<H, T>>,
            len: usize,
            done: usize,
        }
        impl<H, T> Drop for Partial<H, T> {
            fn drop(&mut self) {
                // SAFETY: the header and the first `done` items are initialised.
                unsafe {
                    let items = ThinRc::<H, T>::items_ptr(self.ptr);
                    ptr::drop_in_place(ptr::slice_from_raw_parts_mut(items, self.done));
                    ptr::drop_in_place(ptr::addr_of_mut!((*self.ptr.as_ptr()).header));
                    alloc::dealloc(self.ptr.as_ptr().cast(), ThinRc::<H, T>::layout(self.len));
                }
            }
        }
        let ptr = Self::allocate(header, len);
        let mut partial = Partial { ptr, len, done: 0 };
        let items = Self::items_ptr(ptr);
        for i in 0..len {
            let v = item(i);
            // SAFETY: within the allocation, and not yet initialised.
            unsafe { items.add(i).write(v) };
            partial.done = i + 1;
        }
        std::mem::forget(partial);
        ThinRc {
            ptr,
            _owns: PhantomData,
        }
    }

    #[inline]
    fn inner(&self) -> &Inner<H, T> {
        // SAFETY: the allocation lives as long as any `ThinRc` pointing at it.
        unsafe { self.ptr.as_ref() }
    }

    /// The header.
    #[inline]
    pub fn header(&self) -> &H {
        &self.inner().header
    }

    /// The items.
    #[inline]
    pub fn items(&self) -> &[T] {
        let len = self.inner().len as usize;
        // SAFETY: `len` initialised items follow the header, alive as long as `self`.
        unsafe { std::slice::from_raw_parts(Self::items_ptr(self.ptr), len) }
    }

    /// Whether both point at the same allocation.
    #[inline]
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// The reference count (cloning is `retain` on it and a copy of the pointer).
    #[inline]
    pub(crate) fn count(&self) -> &Cell<u32> {
        &self.inner().count
    }

    /// The address of the allocation (an identity for cycle detection).
    #[inline]
    pub fn as_ptr(this: &Self) -> *const () {
        this.ptr.as_ptr().cast()
    }
}

/// Count one more reference (what cloning does); aborts on overflow, as `Rc` does.
#[inline]
pub(crate) fn retain(count: &Cell<u32>) {
    let Some(n) = count.get().checked_add(1) else {
        std::process::abort()
    };
    count.set(n);
}

impl<H, T> Clone for ThinRc<H, T> {
    #[inline]
    fn clone(&self) -> Self {
        retain(self.count());
        ThinRc {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<H, T> Drop for ThinRc<H, T> {
    #[inline]
    fn drop(&mut self) {
        let count = &self.inner().count;
        let n = count.get() - 1;
        count.set(n);
        if n == 0 {
            self.drop_slow();
        }
    }
}

impl<H, T> ThinRc<H, T> {
    #[inline(never)]
    fn drop_slow(&mut self) {
        let len = self.inner().len as usize;
        // SAFETY: the last reference is going away: the header and the `len` items are
        // initialised and nothing else can reach them; then the allocation is freed with the
        // layout it was made with.
        unsafe {
            let items = Self::items_ptr(self.ptr);
            ptr::drop_in_place(ptr::slice_from_raw_parts_mut(items, len));
            ptr::drop_in_place(ptr::addr_of_mut!((*self.ptr.as_ptr()).header));
            alloc::dealloc(self.ptr.as_ptr().cast(), Self::layout(len));
        }
    }
}

impl<H, T> Deref for ThinRc<H, T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        self.items()
    }
}

/// One shared value with a 32-bit count: what `Rc<T>` does, in 8 bytes instead of 16 of
/// bookkeeping (no weak count). Thunks and closures use it.
pub struct Shared<T>(ThinRc<T, ()>);

impl<T> Shared<T> {
    /// Share `value`.
    #[inline]
    pub fn new(value: T) -> Self {
        Shared(ThinRc::from_fn(value, 0, |_| ()))
    }

    /// Whether both point at the same value.
    #[inline]
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        ThinRc::ptr_eq(&a.0, &b.0)
    }

    /// The reference count (see `ThinRc::count`).
    #[inline]
    pub(crate) fn count(&self) -> &Cell<u32> {
        self.0.count()
    }
}

impl<T> Clone for Shared<T> {
    #[inline]
    fn clone(&self) -> Self {
        Shared(self.0.clone())
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        self.0.header()
    }
}

impl<T: PartialEq> PartialEq for Shared<T> {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl<T: Eq> Eq for Shared<T> {}

impl<T: std::fmt::Display> std::fmt::Display for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    #[test]
    fn items_and_header_are_kept_and_dropped_once() {
        let tracker = Rc::new(());
        let a = ThinRc::from_vec(tracker.clone(), vec![tracker.clone(), tracker.clone()]);
        assert_eq!(Rc::strong_count(&tracker), 4);
        let b = a.clone();
        assert!(ThinRc::ptr_eq(&a, &b));
        assert_eq!(b.len(), 2);
        drop(a);
        assert_eq!(Rc::strong_count(&tracker), 4);
        drop(b);
        assert_eq!(Rc::strong_count(&tracker), 1);
    }

    #[test]
    fn from_fn_builds_in_order_and_empty_slices_work() {
        let t = ThinRc::from_fn(7u8, 5, |i| i * 10);
        assert_eq!(&*t, &[0, 10, 20, 30, 40]);
        assert_eq!(*t.header(), 7);
        let e: ThinRc<(), String> = ThinRc::from_vec((), Vec::new());
        assert!(e.is_empty());
    }

    #[test]
    fn a_panic_while_building_drops_what_was_built() {
        let tracker = Rc::new(());
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            ThinRc::from_fn(tracker.clone(), 3, |i| {
                if i == 2 {
                    panic!("stop");
                }
                tracker.clone()
            })
        }));
        assert!(r.is_err());
        assert_eq!(Rc::strong_count(&tracker), 1);
    }
}
