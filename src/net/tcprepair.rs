//! TCP_REPAIR: reading the exact state of an established TCP connection and recreating it in
//! another socket (on another node), so that the peer's kernel sees one continuous connection.
//!
//! The kernel interface (Linux ≥ 3.5; `TCP_REPAIR_WINDOW` ≥ 4.8), used as CRIU's libsoccr uses it:
//! in repair mode a socket sends nothing on its own; `TCP_REPAIR_QUEUE` selects the send or
//! receive queue, whose first sequence number `TCP_QUEUE_SEQ` reads (and, before `connect`,
//! sets) and whose bytes `recv(MSG_PEEK)` reads (and `send` refills); `TCP_REPAIR_OPTIONS` sets
//! the options negotiated in the handshake (MSS, window scaling, SACK, timestamps),
//! `TCP_TIMESTAMP` the timestamp clock, `TCP_REPAIR_WINDOW` the windows; `connect` in repair
//! mode makes the socket ESTABLISHED without a handshake. Closing a socket still in repair mode
//! sends neither FIN nor RST. Every step needs CAP_NET_ADMIN in the socket's network namespace.
//!
//! Not carried (as with CRIU): data received out of order (beyond a hole, SACKed to the peer),
//! which the peer sends again once it sees it was not kept; ECN state; congestion state.

use std::io;
use std::mem::size_of;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

// include/uapi/linux/tcp.h
const TCP_REPAIR_ON: libc::c_int = 1;
const TCP_REPAIR_OFF: libc::c_int = 0;
const TCP_NO_QUEUE: libc::c_int = 0;
const TCP_RECV_QUEUE: libc::c_int = 1;
const TCP_SEND_QUEUE: libc::c_int = 2;
const TCPOPT_MAXSEG: u32 = 2;
const TCPOPT_WINDOW: u32 = 3;
const TCPOPT_SACK_PERM: u32 = 4;
const TCPOPT_TIMESTAMP: u32 = 8;
const TCPI_OPT_TIMESTAMPS: u8 = 1;
const TCPI_OPT_SACK: u8 = 2;
const TCPI_OPT_WSCALE: u8 = 4;
/// `tcpi_state` of an established connection (include/net/tcp_states.h).
const TCP_ESTABLISHED: u8 = 1;
const SIOCINQ: libc::c_ulong = libc::FIONREAD as libc::c_ulong;
const SIOCOUTQ: libc::c_ulong = libc::TIOCOUTQ as libc::c_ulong;
const SIOCOUTQNSD: libc::c_ulong = 0x894B;

#[repr(C)]
struct RepairOpt {
    code: u32,
    value: u32,
}

/// The windows of a connection (`struct tcp_repair_window`).
#[repr(C)]
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct RepairWindow {
    pub snd_wl1: u32,
    pub snd_wnd: u32,
    pub max_window: u32,
    pub rcv_wnd: u32,
    pub rcv_wup: u32,
}

/// Everything needed to recreate one established connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpState {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    /// Sequence number of the first byte of `send_queue` (the oldest unacknowledged byte).
    pub send_seq: u32,
    /// Bytes written and not acknowledged by the peer: first those sent, then `unsent` bytes the
    /// kernel had not sent yet.
    pub send_queue: Vec<u8>,
    pub unsent: u32,
    /// Sequence number of the first byte of `recv_queue` (the oldest byte not read).
    pub recv_seq: u32,
    /// Bytes received and acknowledged but not read by the application.
    pub recv_queue: Vec<u8>,
    /// The MSS clamp negotiated in the handshake.
    pub mss: u32,
    /// (send, receive) window scale shifts, when negotiated.
    pub wscale: Option<(u8, u8)>,
    pub sack: bool,
    /// The connection's timestamp clock (TCP_TIMESTAMP) when timestamps were negotiated.
    pub timestamp: Option<u32>,
    pub window: RepairWindow,
    /// The socket's buffer sizes (SO_RCVBUF, SO_SNDBUF) when it was read: a queue larger than
    /// a new socket's default buffer needs them back.
    pub rcvbuf: u32,
    pub sndbuf: u32,
}

impl TcpState {
    /// The part of the send queue that was sent (restored in repair mode).
    pub fn sent_part(&self) -> &[u8] {
        &self.send_queue[..self.send_queue.len() - self.unsent_len()]
    }
    /// The part the kernel had not sent yet (written normally once the socket is live).
    pub fn unsent_part(&self) -> &[u8] {
        &self.send_queue[self.send_queue.len() - self.unsent_len()..]
    }
    fn unsent_len(&self) -> usize {
        (self.unsent as usize).min(self.send_queue.len())
    }
}

/// Why TCP_REPAIR cannot be used, or a step failed.
#[derive(Debug)]
pub enum RepairError {
    /// The kernel has no TCP_REPAIR (Linux < 3.5) or no TCP_REPAIR_WINDOW (Linux < 4.8).
    Unsupported(String),
    /// The process lacks CAP_NET_ADMIN in the socket's network namespace.
    NotPermitted(String),
    /// The connection is not established (the peer or we already began to close it).
    NotEstablished(u8),
    Io(String, io::Error),
}

impl std::fmt::Display for RepairError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepairError::Unsupported(what) => write!(f, "{what}"),
            RepairError::NotPermitted(what) => write!(f, "{what}"),
            RepairError::NotEstablished(state) => {
                write!(f, "the connection is closing (TCP state {}), not established", state_name(*state))
            }
            RepairError::Io(step, e) => write!(f, "{step}: {e}"),
        }
    }
}

impl std::error::Error for RepairError {}

fn state_name(state: u8) -> &'static str {
    match state {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        _ => "unknown",
    }
}

/// Maps the errno of a repair step: EPERM is the missing capability, ENOPROTOOPT the kernel.
fn step_error(step: &str, e: io::Error) -> RepairError {
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::EACCES) => RepairError::NotPermitted(format!(
            "{step}: not permitted: TCP_REPAIR needs CAP_NET_ADMIN in the network namespace ({e})"
        )),
        Some(libc::ENOPROTOOPT) => RepairError::Unsupported(format!("{step}: the kernel does not support it ({e})")),
        _ => RepairError::Io(step.to_string(), e),
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T, len: usize) -> io::Result<()> {
    // SAFETY: `value` points to `len` readable bytes for the duration of the call.
    let rc = unsafe { libc::setsockopt(fd, level, name, value as *const T as *const libc::c_void, len as u32) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: libc::c_int) -> io::Result<()> {
    setsockopt(fd, level, name, &value, size_of::<libc::c_int>())
}

/// Reads a socket option into `T`; returns how many bytes the kernel filled.
fn getsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &mut T) -> io::Result<usize> {
    let mut len = size_of::<T>() as libc::socklen_t;
    // SAFETY: `value` is a valid, writable `T` of `len` bytes.
    let rc = unsafe { libc::getsockopt(fd, level, name, value as *mut T as *mut libc::c_void, &mut len) };
    if rc == 0 {
        Ok(len as usize)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn get_u32(fd: RawFd, name: libc::c_int) -> io::Result<u32> {
    let mut v: u32 = 0;
    getsockopt(fd, libc::SOL_TCP, name, &mut v)?;
    Ok(v)
}

fn ioctl_int(fd: RawFd, request: libc::c_ulong) -> io::Result<usize> {
    let mut v: libc::c_int = 0;
    // SAFETY: these ioctls write one int.
    let rc = unsafe { libc::ioctl(fd, request as _, &mut v) };
    if rc == 0 {
        Ok(v.max(0) as usize)
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_repair(fd: RawFd, on: bool) -> io::Result<()> {
    set_int(fd, libc::SOL_TCP, libc::TCP_REPAIR, if on { TCP_REPAIR_ON } else { TCP_REPAIR_OFF })
}

fn select_queue(fd: RawFd, queue: libc::c_int) -> io::Result<()> {
    set_int(fd, libc::SOL_TCP, libc::TCP_REPAIR_QUEUE, queue)
}

/// Copies (MSG_PEEK) the selected queue; it holds at most `expected` bytes (one more is asked
/// for, so that a queue that grew shows as longer).
fn peek_queue(fd: RawFd, expected: usize) -> io::Result<Vec<u8>> {
    if expected == 0 {
        return Ok(Vec::new());
    }
    let mut buf = vec![0u8; expected + 1];
    // SAFETY: `buf` is writable for its length.
    let n = unsafe {
        libc::recv(fd, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), libc::MSG_PEEK | libc::MSG_DONTWAIT)
    };
    if n < 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            return Ok(Vec::new());
        }
        return Err(e);
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Refills the selected queue (in repair mode `send` appends to it without transmitting). The
/// kernel may refuse one large buffer; halve the chunk then, as libsoccr does.
fn fill_queue(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    let mut chunk = data.len().max(1);
    while !data.is_empty() {
        let n = chunk.min(data.len());
        // SAFETY: `data[..n]` is readable.
        let sent = unsafe { libc::send(fd, data.as_ptr() as *const libc::c_void, n, libc::MSG_NOSIGNAL) };
        if sent <= 0 {
            let e = io::Error::last_os_error();
            if chunk > 1024 && e.raw_os_error() == Some(libc::ENOMEM) {
                chunk /= 2;
                continue;
            }
            return Err(if sent == 0 { io::Error::new(io::ErrorKind::WriteZero, "the queue took nothing") } else { e });
        }
        data = &data[sent as usize..];
    }
    Ok(())
}

fn tcp_info(fd: RawFd) -> io::Result<libc::tcp_info> {
    // SAFETY: tcp_info is plain old data; all-zero is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    getsockopt(fd, libc::SOL_TCP, libc::TCP_INFO, &mut info)?;
    Ok(info)
}

fn sockaddr(addr: Option<SocketAddr>, what: &str) -> Result<SocketAddr, RepairError> {
    addr.ok_or_else(|| RepairError::Io(what.into(), io::Error::other("not an IP socket address")))
}

/// Whether this process can use TCP_REPAIR here (kernel and capability), checked on a fresh
/// socket without touching any connection.
pub fn check_support() -> Result<(), RepairError> {
    let sock = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| RepairError::Io("socket".into(), e))?;
    let fd = sock.as_raw_fd();
    set_repair(fd, true).map_err(|e| match step_error("TCP_REPAIR", e) {
        RepairError::Unsupported(_) => {
            RepairError::Unsupported("the kernel has no TCP_REPAIR (needs Linux 3.5 or later)".into())
        }
        other => other,
    })?;
    let mut window = RepairWindow::default();
    getsockopt(fd, libc::SOL_TCP, libc::TCP_REPAIR_WINDOW, &mut window).map_err(|e| {
        match step_error("TCP_REPAIR_WINDOW", e) {
            RepairError::Unsupported(_) => {
                RepairError::Unsupported("the kernel has no TCP_REPAIR_WINDOW (needs Linux 4.8 or later)".into())
            }
            other => other,
        }
    })?;
    Ok(())
}

/// Puts an established connection into repair mode and reads its state. The socket stays in
/// repair mode: close it (silently: no FIN, no RST) or [`leave_repair`] to resume it.
///
/// The caller must first stop the peer's segments from reaching the socket (remove the address
/// they are sent to): a segment acknowledged after the state was read would be lost. The receive
/// queue and its sequence number are read until two reads agree, so a segment still in flight
/// inside the kernel when the address went cannot make them disagree.
pub fn capture(sock: BorrowedFd) -> Result<TcpState, RepairError> {
    let fd = sock.as_raw_fd();
    let s = socket2::SockRef::from(&sock);
    let local = sockaddr(s.local_addr().map_err(|e| RepairError::Io("local address".into(), e))?.as_socket(), "local")?;
    let peer = sockaddr(s.peer_addr().map_err(|e| RepairError::Io("peer address".into(), e))?.as_socket(), "peer")?;
    set_repair(fd, true).map_err(|e| step_error("TCP_REPAIR", e))?;
    let mut last_err = None;
    for _ in 0..10 {
        match read_state(fd, local, peer) {
            Ok(Some(state)) => return Ok(state),
            Ok(None) => continue,
            Err(e) => {
                last_err = Some(e);
                break;
            }
        }
    }
    Err(last_err.unwrap_or_else(|| {
        RepairError::Io("capture".into(), io::Error::other("the receive queue kept changing while it was read"))
    }))
}

/// One consistent reading, or None when the receive side changed while it was read.
fn read_state(fd: RawFd, local: SocketAddr, peer: SocketAddr) -> Result<Option<TcpState>, RepairError> {
    let io_step = |step: &str| {
        let step = step.to_string();
        move |e: io::Error| step_error(&step, e)
    };
    let info = tcp_info(fd).map_err(io_step("TCP_INFO"))?;
    if info.tcpi_state != TCP_ESTABLISHED {
        return Err(RepairError::NotEstablished(info.tcpi_state));
    }
    let outq = ioctl_int(fd, SIOCOUTQ).map_err(io_step("SIOCOUTQ"))?;
    let unsent = ioctl_int(fd, SIOCOUTQNSD).map_err(io_step("SIOCOUTQNSD"))?;
    let inq = ioctl_int(fd, SIOCINQ).map_err(io_step("SIOCINQ"))?;
    // In repair mode TCP_MAXSEG reads the MSS clamp negotiated in the handshake.
    let mss = get_u32(fd, libc::TCP_MAXSEG).map_err(io_step("TCP_MAXSEG"))?;
    let timestamp = if info.tcpi_options & TCPI_OPT_TIMESTAMPS != 0 {
        Some(get_u32(fd, libc::TCP_TIMESTAMP).map_err(io_step("TCP_TIMESTAMP"))?)
    } else {
        None
    };
    let wscale = (info.tcpi_options & TCPI_OPT_WSCALE != 0)
        .then_some((info.tcpi_snd_rcv_wscale & 0x0f, info.tcpi_snd_rcv_wscale >> 4));
    let mut window = RepairWindow::default();
    getsockopt(fd, libc::SOL_TCP, libc::TCP_REPAIR_WINDOW, &mut window).map_err(io_step("TCP_REPAIR_WINDOW"))?;

    select_queue(fd, TCP_RECV_QUEUE).map_err(io_step("TCP_REPAIR_QUEUE"))?;
    let rcv_nxt = get_u32(fd, libc::TCP_QUEUE_SEQ).map_err(io_step("TCP_QUEUE_SEQ"))?;
    let recv_queue = peek_queue(fd, inq).map_err(io_step("reading the receive queue"))?;
    select_queue(fd, TCP_SEND_QUEUE).map_err(io_step("TCP_REPAIR_QUEUE"))?;
    let write_seq = get_u32(fd, libc::TCP_QUEUE_SEQ).map_err(io_step("TCP_QUEUE_SEQ"))?;
    // The send queue can only shrink here (acknowledged data freed): its length as read is the
    // truth, and it always ends at write_seq.
    let send_queue = peek_queue(fd, outq).map_err(io_step("reading the send queue"))?;
    select_queue(fd, TCP_RECV_QUEUE).map_err(io_step("TCP_REPAIR_QUEUE"))?;
    let rcv_nxt_again = get_u32(fd, libc::TCP_QUEUE_SEQ).map_err(io_step("TCP_QUEUE_SEQ"))?;
    let inq_again = ioctl_int(fd, SIOCINQ).map_err(io_step("SIOCINQ"))?;
    select_queue(fd, TCP_NO_QUEUE).map_err(io_step("TCP_REPAIR_QUEUE"))?;
    let mut rcvbuf: libc::c_int = 0;
    let mut sndbuf: libc::c_int = 0;
    getsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVBUF, &mut rcvbuf).map_err(io_step("SO_RCVBUF"))?;
    getsockopt(fd, libc::SOL_SOCKET, libc::SO_SNDBUF, &mut sndbuf).map_err(io_step("SO_SNDBUF"))?;
    if rcv_nxt_again != rcv_nxt || recv_queue.len() != inq || inq_again != inq {
        return Ok(None);
    }
    Ok(Some(TcpState {
        local,
        peer,
        send_seq: write_seq.wrapping_sub(send_queue.len() as u32),
        unsent: unsent.min(send_queue.len()) as u32,
        send_queue,
        recv_seq: rcv_nxt.wrapping_sub(recv_queue.len() as u32),
        recv_queue,
        mss,
        wscale,
        sack: info.tcpi_options & TCPI_OPT_SACK != 0,
        timestamp,
        window,
        rcvbuf: rcvbuf.max(0) as u32,
        sndbuf: sndbuf.max(0) as u32,
    }))
}

/// Queues up to this size fit a new socket's default buffers (tcp_rmem/tcp_wmem's defaults are
/// 128 KiB and 16 KiB; the kernel counts about twice the payload).
const DEFAULT_FIT: usize = 8 * 1024;

/// Gives the new socket buffers that hold the queues about to be restored: the source's sizes,
/// or twice the queue if that is more. Only where needed, because a size set by hand turns the
/// kernel's buffer autotuning off for the socket.
fn size_buffers(fd: RawFd, state: &TcpState) -> Result<(), RepairError> {
    let want = |queue: usize, had: u32| (queue * 2 + 64 * 1024).max(had as usize).min(i32::MAX as usize) as libc::c_int;
    if state.recv_queue.len() > DEFAULT_FIT {
        // SO_*BUFFORCE sets twice the value given.
        let v = want(state.recv_queue.len(), state.rcvbuf) / 2;
        set_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, v).map_err(|e| step_error("SO_RCVBUFFORCE", e))?;
    }
    if state.send_queue.len() > DEFAULT_FIT {
        let v = want(state.send_queue.len(), state.sndbuf) / 2;
        set_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, v).map_err(|e| step_error("SO_SNDBUFFORCE", e))?;
    }
    Ok(())
}

/// Recreates a connection in repair mode: bound to `state.local`, connected to `state.peer`
/// (without a handshake), with the same sequence numbers, options, timestamp clock, windows and
/// queues (the unsent part of the send queue excepted: write it once the socket is live).
/// `transparent` allows `state.local` not to be an address of this host yet (IP_TRANSPARENT),
/// so the socket exists before the address arrives and no segment of the peer meets a host
/// that would answer it with a reset. Call [`leave_repair`] to make it send.
pub fn restore(state: &TcpState, transparent: bool) -> Result<OwnedFd, RepairError> {
    let sock = Socket::new(Domain::for_address(state.local), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| RepairError::Io("socket".into(), e))?;
    let fd = sock.as_raw_fd();
    let io_step = |step: &'static str| move |e: io::Error| step_error(step, e);
    set_repair(fd, true).map_err(io_step("TCP_REPAIR"))?;
    // Never block on a full queue: a failure is an error, not a hung relay.
    sock.set_nonblocking(true).map_err(io_step("O_NONBLOCK"))?;
    size_buffers(fd, state)?;
    if transparent {
        let (level, name) = match state.local {
            SocketAddr::V4(_) => (libc::SOL_IP, libc::IP_TRANSPARENT),
            SocketAddr::V6(_) => (libc::SOL_IPV6, libc::IPV6_TRANSPARENT),
        };
        set_int(fd, level, name, 1).map_err(io_step("IP_TRANSPARENT"))?;
    }
    select_queue(fd, TCP_RECV_QUEUE).map_err(io_step("TCP_REPAIR_QUEUE"))?;
    set_int(fd, libc::SOL_TCP, libc::TCP_QUEUE_SEQ, state.recv_seq as libc::c_int).map_err(io_step("TCP_QUEUE_SEQ"))?;
    select_queue(fd, TCP_SEND_QUEUE).map_err(io_step("TCP_REPAIR_QUEUE"))?;
    set_int(fd, libc::SOL_TCP, libc::TCP_QUEUE_SEQ, state.send_seq as libc::c_int).map_err(io_step("TCP_QUEUE_SEQ"))?;
    // Repair mode lets the socket share the listener's port (SK_FORCE_REUSE).
    sock.bind(&SockAddr::from(state.local)).map_err(io_step("bind"))?;
    // In repair mode connect completes at once, without a handshake.
    sock.connect(&SockAddr::from(state.peer)).map_err(io_step("connect"))?;

    let mut opts = Vec::new();
    if state.sack {
        opts.push(RepairOpt { code: TCPOPT_SACK_PERM, value: 0 });
    }
    if let Some((snd, rcv)) = state.wscale {
        opts.push(RepairOpt { code: TCPOPT_WINDOW, value: snd as u32 | ((rcv as u32) << 16) });
    }
    if state.timestamp.is_some() {
        opts.push(RepairOpt { code: TCPOPT_TIMESTAMP, value: 0 });
    }
    opts.push(RepairOpt { code: TCPOPT_MAXSEG, value: state.mss });
    // SAFETY: `opts` is a contiguous array of repr(C) pairs of u32, as the kernel reads them.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_TCP,
            libc::TCP_REPAIR_OPTIONS,
            opts.as_ptr() as *const libc::c_void,
            (opts.len() * size_of::<RepairOpt>()) as u32,
        )
    };
    if rc != 0 {
        return Err(step_error("TCP_REPAIR_OPTIONS", io::Error::last_os_error()));
    }
    if let Some(ts) = state.timestamp {
        set_int(fd, libc::SOL_TCP, libc::TCP_TIMESTAMP, ts as libc::c_int).map_err(io_step("TCP_TIMESTAMP"))?;
    }
    select_queue(fd, TCP_RECV_QUEUE).map_err(io_step("TCP_REPAIR_QUEUE"))?;
    fill_queue(fd, &state.recv_queue).map_err(io_step("restoring the receive queue"))?;
    select_queue(fd, TCP_SEND_QUEUE).map_err(io_step("TCP_REPAIR_QUEUE"))?;
    fill_queue(fd, state.sent_part()).map_err(io_step("restoring the send queue"))?;
    select_queue(fd, TCP_NO_QUEUE).map_err(io_step("TCP_REPAIR_QUEUE"))?;
    setsockopt(fd, libc::SOL_TCP, libc::TCP_REPAIR_WINDOW, &state.window, size_of::<RepairWindow>())
        .map_err(io_step("TCP_REPAIR_WINDOW"))?;
    sock.set_nonblocking(false).map_err(io_step("O_NONBLOCK"))?;
    Ok(sock.into())
}

/// Leaves repair mode: the connection is live again and sends a window probe, which makes the
/// peer acknowledge at once (and so learn that the connection goes on). Also clears
/// IP_TRANSPARENT, needed only while the address was not yet here.
pub fn leave_repair(sock: BorrowedFd, transparent: bool) -> Result<(), RepairError> {
    let fd = sock.as_raw_fd();
    set_repair(fd, false).map_err(|e| step_error("leaving TCP_REPAIR", e))?;
    if transparent {
        let local = socket2::SockRef::from(&sock).local_addr().ok().and_then(|a| a.as_socket());
        let (level, name) = match local {
            Some(SocketAddr::V6(_)) => (libc::SOL_IPV6, libc::IPV6_TRANSPARENT),
            _ => (libc::SOL_IP, libc::IP_TRANSPARENT),
        };
        let _ = set_int(fd, level, name, 0);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_tells_the_kernel_from_the_capability() {
        let e = step_error("TCP_REPAIR", io::Error::from_raw_os_error(libc::EPERM));
        assert!(matches!(e, RepairError::NotPermitted(_)) && e.to_string().contains("CAP_NET_ADMIN"), "{e}");
        let e = step_error("TCP_REPAIR", io::Error::from_raw_os_error(libc::ENOPROTOOPT));
        assert!(matches!(e, RepairError::Unsupported(_)), "{e}");
        let e = step_error("bind", io::Error::from_raw_os_error(libc::EADDRINUSE));
        assert!(matches!(e, RepairError::Io(..)) && e.to_string().starts_with("bind: "), "{e}");
        assert!(RepairError::NotEstablished(8).to_string().contains("CLOSE_WAIT"));
    }

    #[test]
    fn the_send_queue_splits_into_sent_and_unsent() {
        let mut s = TcpState {
            local: "10.0.0.1:80".parse().unwrap(),
            peer: "10.0.0.2:4000".parse().unwrap(),
            send_seq: 0,
            send_queue: b"sentnot yet".to_vec(),
            unsent: 7,
            recv_seq: 0,
            recv_queue: vec![],
            mss: 1460,
            wscale: None,
            sack: false,
            timestamp: None,
            window: RepairWindow::default(),
            rcvbuf: 0,
            sndbuf: 0,
        };
        assert_eq!((s.sent_part(), s.unsent_part()), (&b"sent"[..], &b"not yet"[..]));
        s.unsent = 100;
        assert_eq!((s.sent_part(), s.unsent_part()), (&b""[..], &b"sentnot yet"[..]));
    }
}
