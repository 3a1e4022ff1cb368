//! Which pages a one-shot batch job asks the kernel for.
//!
//! mimalloc asks for transparent huge pages (2 MiB) wherever the kernel
//! grants them on request (`madvise` mode, Debian's default). A process
//! that lives long and reuses its memory gains fewer TLB misses from them.
//! A backtest does the opposite: it touches about 100 MB of fresh memory
//! once (per-bar curves, batches, output buffers) and exits. On the 2-core
//! development VM, whose host reclaims the memory a guest frees, the first
//! touch of a fresh huge page zeroes at about 0.5 GB/s against 2.5 GB/s for
//! 4 KiB pages, and a 1M-bar `candlewick backtest` run on its own (as a user
//! runs it, not back to back) took 0.24-0.31 s with huge pages and 0.16-0.19
//! s without (`benches/README.md`, "Whole processes").

/// Asks the kernel not to back this process's memory with transparent huge
/// pages from now on (`PR_SET_THP_DISABLE`; it applies at fault time, so
/// mimalloc's regions already requested as huge fall back too). Only speed
/// depends on it: where the kernel refuses, the job runs on as it was.
pub fn prefer_small_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0)` takes no pointers
        // and only sets a flag on this process's memory descriptor.
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if rc != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "transparent huge pages stay on for this backtest"
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    /// The kernel reports the flag set: this process's later faults get
    /// small pages.
    #[test]
    fn a_backtest_process_is_marked_for_small_pages() {
        super::prefer_small_pages();
        // SAFETY: as in `prefer_small_pages`: no pointers, reads a flag.
        let flag = unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) };
        assert_eq!(flag, 1);
    }
}
