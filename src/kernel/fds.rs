//! File descriptors in freshly forked children.

use std::os::fd::RawFd;

/// Closes every fd from 3 up except those in `keep`. Async-signal-safe.
pub(crate) unsafe fn close_all_except(mut keep: [RawFd; 4]) {
    keep.sort_unstable();
    let mut next: u32 = 3;
    for fd in keep {
        if fd < next as RawFd {
            continue;
        }
        if fd > next as RawFd {
            // SAFETY: close_range(2) only closes fds of this process.
            unsafe { libc::syscall(libc::SYS_close_range, next, fd as u32 - 1, 0) };
        }
        next = fd as u32 + 1;
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, next, u32::MAX, 0) };
}
