//! What a `no_std` wasm32 plugin needs from its runtime: a global allocator
//! and a panic handler. Compiled only for wasm32 with the `guest` feature.

use core::alloc::{GlobalAlloc, Layout};
use core::arch::wasm32;
use core::cell::{Cell, UnsafeCell};

/// The allocator: dlmalloc, the one Rust's own `std` uses on wasm32, fed
/// by [`Break`] in 1 KiB steps instead of its usual 64 KiB segments.
///
/// Why: an engine holds one instance per stream and strategy (30,000 at
/// 10,000 streams x 3), so every 4 KiB page an instance touches costs
/// about 120 MB. With 64 KiB segments dlmalloc put the heap in a fresh
/// page past the module's initial memory and wrote the segment's footer
/// 60 KiB further on: two pages touched for nothing. Fed from the end of
/// the module's data, the heap shares the data's last page and its footer
/// stays beside what is in use.
#[global_allocator]
static ALLOCATOR: Heap = Heap(UnsafeCell::new(heap()));

/// What dlmalloc asks [`Break`] for at a time: small, so that the top
/// chunk's footer lies next to the last allocation (in 4 KiB steps the
/// example strategies touched a fourth page).
const STEP: usize = 1024;
const PAGE: usize = 4096;
const WASM_PAGE: usize = 65536;

const fn heap() -> dlmalloc::Dlmalloc<Break> {
    let mut heap = dlmalloc::Dlmalloc::new_with_allocator(Break { next: Cell::new(0) });
    // A power of two above the malloc alignment: always accepted.
    heap.set_granularity(STEP);
    heap
}

/// dlmalloc behind a `GlobalAlloc`, without a lock.
struct Heap(UnsafeCell<dlmalloc::Dlmalloc<Break>>);

// SAFETY: wasm32-unknown-unknown without the atomics feature runs one
// thread, so the heap is never reached from two at once.
unsafe impl Sync for Heap {}

unsafe impl GlobalAlloc for Heap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded (above), and no call re-enters the heap.
        unsafe { (*self.0.get()).malloc(layout.size(), layout.align()) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { (*self.0.get()).free(ptr, layout.size(), layout.align()) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        unsafe { (*self.0.get()).calloc(layout.size(), layout.align()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { (*self.0.get()).realloc(ptr, layout.size(), layout.align(), new_size) }
    }
}

unsafe extern "C" {
    /// First byte past the module's data, placed by the linker.
    static __heap_base: u8;
}

/// A program break over linear memory: hands out the bytes from
/// `__heap_base` on, in order, growing the memory when they run out, so
/// that each region continues the last one and dlmalloc extends its one
/// segment instead of starting another. Nothing is ever given back (a
/// wasm memory cannot shrink).
struct Break {
    /// The next byte to hand out; 0 before the first request.
    next: Cell<usize>,
}

// SAFETY: the regions are disjoint, zeroed (memory past the data is zero
// at instantiation, and grown memory is zero), and never freed, which
// `free`, `free_part` and `can_release_part` say.
unsafe impl dlmalloc::Allocator for Break {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        let base = match self.next.get() {
            // Only the symbol's address is taken: the linker defines it.
            0 => core::ptr::addr_of!(__heap_base) as usize,
            next => next,
        };
        let Some(end) = base.checked_add(size) else {
            return (core::ptr::null_mut(), 0, 0);
        };
        let have = wasm32::memory_size(0) * WASM_PAGE;
        if end > have && wasm32::memory_grow(0, (end - have).div_ceil(WASM_PAGE)) == usize::MAX {
            return (core::ptr::null_mut(), 0, 0);
        }
        self.next.set(end);
        (base as *mut u8, size, 0)
    }

    fn remap(&self, _ptr: *mut u8, _old: usize, _new: usize, _can_move: bool) -> *mut u8 {
        core::ptr::null_mut()
    }

    fn free_part(&self, _ptr: *mut u8, _old: usize, _new: usize) -> bool {
        false
    }

    fn free(&self, _ptr: *mut u8, _size: usize) -> bool {
        false
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        false
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        PAGE
    }
}

/// Logs where (and, for a literal message, why) the plugin panicked, then
/// traps. The host sees the trap and quarantines the plugin; the log line
/// tells the author which line to look at.
///
/// It formats into a fixed buffer on the stack, without `core::fmt` (which
/// would cost kilobytes) and without allocating (the panic may be an
/// allocation failure).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let mut line = Line {
        buf: [0; 256],
        len: 0,
    };
    line.push(b"panic");
    if let Some(loc) = info.location() {
        line.push(b" at ");
        line.push(loc.file().as_bytes());
        line.push(b":");
        line.push_u32(loc.line());
    }
    if let Some(msg) = info.message().as_str() {
        line.push(b": ");
        line.push(msg.as_bytes());
    }
    let text = core::str::from_utf8(&line.buf[..line.len]).unwrap_or("panic");
    crate::host::log(crate::host::Level::Error, text);
    core::arch::wasm32::unreachable()
}

/// A truncating byte buffer. Truncation may split a UTF-8 character, in
/// which case the plain word "panic" is logged instead.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn push(&mut self, bytes: &[u8]) {
        let n = bytes.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&bytes[..n]);
        self.len += n;
    }

    fn push_u32(&mut self, mut n: u32) {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        self.push(&digits[i..]);
    }
}
