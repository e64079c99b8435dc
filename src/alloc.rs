//! The binary's allocator: mimalloc, asked the way the system allocator
//! is asked by Rust's standard library.
//!
//! The `mimalloc` crate passes every request to `mi_malloc_aligned`, with the
//! type's alignment. mimalloc's aligned entry takes its fast path only for a
//! block of at most 1 KiB with a free block at hand; anything else (every
//! larger text or list, and every request that finds its page full) goes
//! through the generic aligned path, which over-allocates by the alignment
//! and costs several times the plain one. Every `mi_malloc` block is a
//! whole number of machine words from a word-aligned start (its size
//! classes are 8, 16, 24, 32, … bytes), so a request aligned to at most a
//! word is a plain one, as mimalloc's own `mi_realloc_aligned` decides; any
//! other (16 bytes and more) goes to the aligned entry as before.

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// What every `mi_malloc` block is aligned to: a machine word.
const PLAIN_ALIGNMENT: usize = std::mem::size_of::<usize>();

pub struct Mimalloc;

/// Whether any block `mi_malloc` gives is aligned enough.
fn plain(align: usize) -> bool {
    align <= PLAIN_ALIGNMENT
}

// SAFETY: each method forwards to the mimalloc function with the same
// contract (a block of at least `size` bytes aligned to `align`, or null;
// `mi_free` takes any block either gives), choosing the plain one only when
// the alignment every block of it has covers `align`.
unsafe impl GlobalAlloc for Mimalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if plain(layout.align()) {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if plain(layout.align()) {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from one of the allocations above.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from one of the allocations above.
        unsafe {
            if plain(layout.align()) {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of every size class up to 64 KiB, at every alignment a Rust
    /// type here asks, come back aligned, writable, and survive a realloc.
    #[test]
    fn blocks_are_aligned_and_keep_their_bytes_across_a_realloc() {
        let allocator = Mimalloc;
        for align in [1, 2, 4, 8, 16, 32, 64, 128, 4096] {
            for size in (1..=64 * 1024).step_by(97).chain([1, 8, 16, 1024, 1025]) {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero size; the block is freed below.
                unsafe {
                    let p = allocator.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "size {size} align {align}");
                    p.write_bytes(0xA5, size);
                    let bigger = size * 3 + 5;
                    let q = allocator.realloc(p, layout, bigger);
                    assert_eq!(
                        q as usize % align,
                        0,
                        "realloc of {size} to {bigger}, align {align}"
                    );
                    assert!((0..size).all(|i| *q.add(i) == 0xA5));
                    allocator.dealloc(q, Layout::from_size_align(bigger, align).unwrap());
                    let z = allocator.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    allocator.dealloc(z, layout);
                }
            }
        }
    }
}
