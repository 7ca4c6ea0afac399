//! Setting socket options whose value is a plain C type, for the sockets
//! nslab opens itself (probes, captures).

use std::io;
use std::mem::size_of;
use std::os::fd::{AsFd, AsRawFd};

/// Sets option `name` of `level` on `fd` to `value` (a plain C value: an
/// int, a struct, an array).
pub(crate) fn set_option<T>(
    fd: impl AsFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
) -> io::Result<()> {
    // SAFETY: `value` points to a live T of the size given, and the fd is
    // open for as long as it is borrowed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_fd().as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Asks for `bytes` of receive buffer past `net.core.rmem_max`
/// (`SO_RCVBUFFORCE`, which needs CAP_NET_ADMIN in the user namespace that
/// owns the socket's net namespace); without that right (EPERM), for as
/// much of it as that limit allows (`SO_RCVBUF`). Any other error is
/// returned as it is.
pub(crate) fn set_receive_buffer(fd: impl AsFd, bytes: libc::c_int) -> io::Result<()> {
    let fd = fd.as_fd();
    match set_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &bytes) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => {
            set_option(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &bytes)
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::UdpSocket;

    fn receive_buffer(socket: &UdpSocket) -> libc::c_int {
        let mut value: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `value` is a live c_int and `len` its size; the fd is open.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&mut value as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0, "{}", io::Error::last_os_error());
        value
    }

    #[test]
    fn the_receive_buffer_is_granted_and_bad_options_fail() {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
        let asked: libc::c_int = 4 << 20;
        set_receive_buffer(&socket, asked).expect("SO_RCVBUFFORCE or SO_RCVBUF");
        // The kernel doubles what it grants, for its bookkeeping; without
        // CAP_NET_ADMIN it caps the size at net.core.rmem_max.
        let rmem_max: libc::c_int = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
            .expect("rmem_max")
            .trim()
            .parse()
            .expect("a number");
        let granted = receive_buffer(&socket);
        assert!(granted >= asked.min(rmem_max), "{granted}");
        let zero: libc::c_int = 0;
        let e = set_option(&socket, libc::SOL_SOCKET, -1, &zero).expect_err("no option -1");
        assert_eq!(e.raw_os_error(), Some(libc::ENOPROTOOPT), "{e}");
    }
}
