//! File descriptors in freshly forked children, and passing them over
//! unix sockets.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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

/// Room for a control message carrying one fd (as cmsghdr alignment needs).
#[repr(C, align(8))]
struct FdControl([u8; 64]);

// SAFETY: CMSG_SPACE only computes a size.
const FD_CONTROL_SPACE: usize = unsafe { libc::CMSG_SPACE(size_of::<RawFd>() as u32) } as usize;
const _: () = assert!(FD_CONTROL_SPACE <= size_of::<FdControl>());

/// A msghdr of the one buffer `iov`, without control data (the caller
/// adds it); no allocation, so async-signal-safe.
fn message_of(iov: &mut libc::iovec) -> libc::msghdr {
    // SAFETY: an all-zero msghdr is a valid empty one.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = iov;
    msg.msg_iovlen = 1;
    msg
}

/// Sends `buf` as one message on `socket`, with `fd` attached when given.
/// Async-signal-safe: no allocation, one sendmsg(2), never SIGPIPE.
pub(crate) fn send_with_fd(
    socket: BorrowedFd<'_>,
    buf: &[u8],
    fd: Option<BorrowedFd<'_>>,
) -> std::io::Result<()> {
    let mut control = FdControl([0; 64]);
    let mut iov = libc::iovec {
        iov_base: buf.as_ptr().cast_mut().cast(),
        iov_len: buf.len(),
    };
    let mut msg = message_of(&mut iov);
    if let Some(fd) = fd {
        msg.msg_control = control.0.as_mut_ptr().cast();
        msg.msg_controllen = FD_CONTROL_SPACE as _;
        // SAFETY: msg_control points at `control`, aligned for a cmsghdr
        // and large enough for one carrying one fd (checked at compile
        // time), so CMSG_FIRSTHDR is not null and its data has room.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<RawFd>() as u32) as _;
            libc::CMSG_DATA(cmsg)
                .cast::<RawFd>()
                .write_unaligned(fd.as_raw_fd());
        }
    }
    // SAFETY: msg points at `iov`, `buf` and `control`, which outlive the
    // call (sendmsg only reads the buffer); the fd sent is one we borrow.
    match unsafe { libc::sendmsg(socket.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) } {
        n if n >= 0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

/// Receives one message into `buf`: its length (0 once every sender is
/// gone) and the first fd that came with it (any others are closed).
/// Received fds are close-on-exec.
pub(crate) fn recv_with_fd(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
) -> std::io::Result<(usize, Option<OwnedFd>)> {
    let mut control = FdControl([0; 64]);
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut msg = message_of(&mut iov);
    msg.msg_control = control.0.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<FdControl>() as _;
    // SAFETY: msg points at `iov`, `buf` and `control`, which outlive the
    // call; fds received are made close-on-exec.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut first = None;
    // SAFETY: walks the control messages the kernel wrote into `control`
    // (msg_controllen was updated to their length); each SCM_RIGHTS one
    // holds fds that are now ours.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg).cast::<RawFd>();
                let len = ((*cmsg).cmsg_len as usize).saturating_sub(libc::CMSG_LEN(0) as usize);
                for i in 0..len / size_of::<RawFd>() {
                    let fd = OwnedFd::from_raw_fd(data.add(i).read_unaligned());
                    // Any fd beyond the first is closed here.
                    first.get_or_insert(fd);
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok((n as usize, first))
}
