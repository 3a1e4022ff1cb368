//! Which pages an engine's process asks the kernel for.
//!
//! mimalloc asks for transparent huge pages (2 MiB) wherever the kernel
//! grants them on request (`madvise` mode, Debian's default). On the 2-core
//! development VM, whose host reclaims the memory a guest frees, the first
//! touch of a fresh huge page zeroes at about 0.5 GB/s against 2.5 GB/s for
//! 4 KiB pages: each new huge page stops the thread that touches it for
//! about 4 ms. Both kinds of run pay for that:
//!
//! - A live engine grows its buffers on the signal path (a burst's batch,
//!   a model's windows): with the shipped LSTM, every steady run stopped
//!   a shard for 20-80 ms about a second in, p99 8-19 ms in 4 runs of 7;
//!   on small pages, p99 54-156 µs (`benches/README.md`, "With the
//!   shipped LSTM").
//! - A backtest touches about 100 MB of fresh memory once (per-bar
//!   curves, batches, output buffers) and exits: a 1M-bar
//!   `candlewick backtest` run on its own took 0.24-0.31 s with huge
//!   pages and 0.16-0.19 s without ("Whole processes").

/// Asks the kernel not to back this process's memory with transparent huge
/// pages from now on (`PR_SET_THP_DISABLE`; it applies at fault time, so
/// mimalloc's regions already requested as huge fall back too). Only speed
/// depends on it: where the kernel refuses, the process runs on as it was.
pub fn prefer_small_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` takes no pointers
        // and only sets a flag on this process's memory descriptor.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "transparent huge pages stay on for this process"
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The kernel reports the flag set: this process's later faults get
    /// small pages.
    #[test]
    fn the_process_is_marked_for_small_pages() {
        super::prefer_small_pages();
        // SAFETY: as in `prefer_small_pages`: no pointers, reads a flag.
        #[allow(unsafe_code)]
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
    }
}
