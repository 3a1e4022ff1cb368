//! What a `no_std` wasm32 plugin needs from its runtime: a global allocator
//! and a panic handler. Compiled only for wasm32 with the `guest` feature.

/// The allocator: dlmalloc, the one Rust's own `std` uses on wasm32.
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

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
