//! Forwarded ports (`ports:`): a small relay process per port, as
//! Docker's userland proxy is, between a socket of the host's and a node's
//! management address. `up` binds the socket first (a port in use fails
//! before anything is built), then starts the relay with the socket as its
//! standard input, in the pid namespace of the management bridge's init:
//! the kernel ends the relay with that init, at `down` or after a crash,
//! with no record to keep. The relay stays in the host's other namespaces,
//! so its connections to the node cross the management network.

use std::ffi::CString;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::spec::Protocol;

/// The relay's name in `ps`, and how `nslab` knows it is started as one.
pub(crate) const FORWARD_ARGV0: &str = "nslab-forward";

/// How long a relay waits for the node to accept a connection.
const CONNECT_WITHIN: Duration = Duration::from_secs(5);
/// How long a UDP client's mapping lives without traffic (Docker's too).
const UDP_IDLE: Duration = Duration::from_secs(60);

/// Binds the host's socket of one forwarded port. The unspecified IPv6
/// address takes IPv4 too (as Docker listens on both); on a host without
/// IPv6 the IPv4 one stands in for it.
pub(crate) fn bind_socket(listen_on: SocketAddr, protocol: Protocol) -> io::Result<OwnedFd> {
    match open_bound(listen_on, protocol) {
        Err(e)
            if e.raw_os_error() == Some(libc::EAFNOSUPPORT)
                && listen_on.ip() == IpAddr::from([0u16; 8]) =>
        {
            open_bound(SocketAddr::new([0u8; 4].into(), listen_on.port()), protocol)
        }
        other => other,
    }
}

fn open_bound(at: SocketAddr, protocol: Protocol) -> io::Result<OwnedFd> {
    let kind = match protocol {
        Protocol::Tcp => Type::STREAM,
        Protocol::Udp => Type::DGRAM,
    };
    let socket = Socket::new(Domain::for_address(at), kind.cloexec(), None)?;
    // A listener may take a port whose old connections linger; a UDP
    // socket must not: SO_REUSEADDR would let it share a port in use.
    if protocol == Protocol::Tcp {
        socket.set_reuse_address(true)?;
    }
    if at.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.bind(&at.into())?;
    if protocol == Protocol::Tcp {
        socket.listen(128)?;
    }
    Ok(socket.into())
}

/// Starts the relay of `socket` to `to`, in the pid namespace of the init
/// `holder` (it ends with it), as `exe` (see the zygote's). Returns once
/// the relay is started; it is the holder's child from then on.
pub(crate) fn start(
    exe: &Path,
    holder: i32,
    label: &str,
    socket: OwnedFd,
    to: SocketAddr,
    protocol: Protocol,
) -> io::Result<()> {
    let pid_ns = std::fs::File::open(format!("/proc/{holder}/ns/pid"))?;
    let text =
        |s: String| CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
    let program = text(exe.display().to_string())?;
    let args = [
        text(FORWARD_ARGV0.to_owned())?,
        text(label.to_owned())?,
        text(protocol.to_string())?,
        text(to.to_string())?,
    ];
    let argv: Vec<*const libc::c_char> = (args.iter().map(|a| a.as_ptr()))
        .chain([std::ptr::null()])
        .collect();
    let envp = [std::ptr::null::<libc::c_char>()];
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    // The relay's exec (or its setns) failing comes back on this pipe as
    // an errno; its closing on exec, with nothing written, is success.
    let (report_read, report_write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (ns_fd, socket_fd, null_fd, report_fd) = (
        pid_ns.as_raw_fd(),
        socket.as_raw_fd(),
        null.as_raw_fd(),
        report_write.as_raw_fd(),
    );
    // SAFETY: fork(2); the child makes only async-signal-safe calls
    // (setns, a raw clone, setsid, dup2, fcntl, sigprocmask, close_range,
    // write, execve, _exit) on data prepared above, and never returns.
    let child = unsafe { libc::fork() };
    if child == 0 {
        // SAFETY: see above.
        unsafe {
            let fail = |errno: i32| -> ! {
                let bytes = errno.to_ne_bytes();
                libc::write(report_fd, bytes.as_ptr().cast(), bytes.len());
                libc::_exit(1)
            };
            if libc::setns(ns_fd, libc::CLONE_NEWPID) != 0 {
                fail(errno());
            }
            // Entering a pid namespace places only children in it. A raw
            // clone, not fork(3): no atfork handlers in a forked child.
            let relay = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0);
            if relay == 0 {
                libc::setsid();
                libc::dup2(socket_fd, 0);
                libc::dup2(null_fd, 1);
                libc::dup2(null_fd, 2);
                // dup2 onto itself keeps close-on-exec: clear it.
                libc::fcntl(0, libc::F_SETFD, 0);
                let mut none: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut none);
                libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
                super::fds::close_all_except([report_fd, -1, -1, -1]);
                libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr());
                fail(errno());
            }
            if relay < 0 {
                fail(errno());
            }
            libc::_exit(0);
        }
    }
    drop(report_write);
    if child < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut status = 0;
    // SAFETY: waits for our own child.
    while unsafe { libc::waitpid(child, &mut status, 0) } < 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let mut report = [0u8; 4];
    let mut read = std::fs::File::from(report_read);
    match read.read(&mut report) {
        Ok(4) => Err(io::Error::from_raw_os_error(i32::from_ne_bytes(report))),
        Ok(_) => Ok(()),
        Err(e) => Err(e),
    }
}

fn errno() -> i32 {
    io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// The relay: `nslab-forward LABEL tcp|udp ADDR:PORT`, its socket on
/// standard input. Runs until its pid namespace ends.
pub(crate) fn relay_main() -> i32 {
    let args: Vec<String> = std::env::args().collect();
    let (Some(protocol), Some(Ok(to))) = (args.get(2), args.get(3).map(|a| a.parse())) else {
        eprintln!("{FORWARD_ARGV0}: not started by nslab");
        return 2;
    };
    // What `ps` and `top` show (started as /proc/self/exe, it would be "exe").
    let _ = nix::sys::prctl::set_name(c"nslab-forward");
    // SAFETY: fd 0 is the socket `start` made our standard input; we own it
    // from here on.
    let socket = unsafe { OwnedFd::from_raw_fd(0) };
    match protocol.as_str() {
        "tcp" => relay_tcp(TcpListener::from(socket), to),
        "udp" => relay_udp(UdpSocket::from(socket), to),
        _ => 2,
    }
}

fn relay_tcp(listener: TcpListener, to: SocketAddr) -> i32 {
    loop {
        let Ok((client, _)) = listener.accept() else {
            // Out of file descriptors, say: wait rather than spin.
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        // Past the most threads the system gives, a connection is closed,
        // not the relay ended.
        let _ = spawn(move || {
            if let Ok(node) = TcpStream::connect_timeout(&to, CONNECT_WITHIN) {
                splice_both(client, node);
            }
        });
    }
}

/// A thread, or an error where `std::thread::spawn` would panic.
fn spawn<F: FnOnce() + Send + 'static>(f: F) -> io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().stack_size(64 * 1024).spawn(f)
}

/// Copies each way until both ends have finished sending.
fn splice_both(client: TcpStream, node: TcpStream) {
    let (Ok(client_in), Ok(node_out)) = (client.try_clone(), node.try_clone()) else {
        return;
    };
    let Ok(upstream) = spawn(move || copy_then_close(client_in, node_out)) else {
        return;
    };
    copy_then_close(node, client);
    let _ = upstream.join();
}

fn copy_then_close(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Each UDP client with its own socket towards the node.
type Clients = Arc<Mutex<Vec<(SocketAddr, Arc<UdpSocket>)>>>;

fn relay_udp(socket: UdpSocket, to: SocketAddr) -> i32 {
    let socket = Arc::new(socket);
    let clients: Clients = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf) else {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        };
        let known = clients
            .lock()
            .ok()
            .and_then(|c| c.iter().find(|(a, _)| *a == client).map(|(_, s)| s.clone()));
        let upstream = match known {
            Some(upstream) => upstream,
            None => {
                let Ok(upstream) = open_upstream(to) else {
                    continue;
                };
                let upstream = Arc::new(upstream);
                let (socket, list, replies) = (socket.clone(), clients.clone(), upstream.clone());
                let replying = spawn(move || {
                    let mut buf = vec![0u8; 65536];
                    while let Ok(n) = replies.recv(&mut buf) {
                        let _ = socket.send_to(&buf[..n], client);
                    }
                    if let Ok(mut c) = list.lock() {
                        c.retain(|(a, _)| *a != client);
                    }
                });
                if replying.is_err() {
                    continue;
                }
                if let Ok(mut c) = clients.lock() {
                    c.push((client, upstream.clone()));
                }
                upstream
            }
        };
        let _ = upstream.send(&buf[..n]);
    }
}

/// A socket of the client's own towards the node, so that replies come
/// back to it; it ends after [`UDP_IDLE`] without a reply.
fn open_upstream(to: SocketAddr) -> io::Result<UdpSocket> {
    let any: SocketAddr = match to {
        SocketAddr::V4(_) => ([0u8; 4], 0).into(),
        SocketAddr::V6(_) => ([0u16; 8], 0).into(),
    };
    let socket = UdpSocket::bind(any)?;
    socket.connect(to)?;
    socket.set_read_timeout(Some(UDP_IDLE))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listening(protocol: Protocol) -> (OwnedFd, SocketAddr) {
        let fd = bind_socket("127.0.0.1:0".parse().unwrap(), protocol).expect("bind");
        let address = Socket::from(fd.try_clone().unwrap()).local_addr().unwrap();
        (fd, address.as_socket().unwrap())
    }

    #[test]
    fn tcp_is_relayed_both_ways_with_each_end_closed() {
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let to = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut client in echo.incoming().flatten() {
                let mut text = String::new();
                let _ = client.read_to_string(&mut text);
                let _ = client.write_all(text.to_uppercase().as_bytes());
            }
        });
        let (fd, relay) = listening(Protocol::Tcp);
        std::thread::spawn(move || relay_tcp(TcpListener::from(fd), to));
        for word in ["first", "second"] {
            let mut client = TcpStream::connect(relay).unwrap();
            client.write_all(word.as_bytes()).unwrap();
            client.shutdown(Shutdown::Write).unwrap();
            let mut answer = String::new();
            client.read_to_string(&mut answer).unwrap();
            assert_eq!(answer, word.to_uppercase());
        }
    }

    #[test]
    fn udp_is_relayed_to_each_client_from_its_own_socket() {
        let echo = UdpSocket::bind("127.0.0.1:0").unwrap();
        let to = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            while let Ok((n, from)) = echo.recv_from(&mut buf) {
                let _ = echo.send_to(&buf[..n], from);
            }
        });
        let (fd, relay) = listening(Protocol::Udp);
        std::thread::spawn(move || relay_udp(UdpSocket::from(fd), to));
        for word in [&b"one"[..], b"two"] {
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            client.send_to(word, relay).unwrap();
            let mut buf = [0u8; 64];
            let (n, from) = client.recv_from(&mut buf).unwrap();
            assert_eq!((&buf[..n], from), (word, relay));
        }
    }
}
