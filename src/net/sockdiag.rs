//! Listening TCP sockets from the kernel's sock_diag netlink interface (what `ss -lt` uses): one
//! request, and the kernel answers with listeners only. Reading /proc/net/tcp instead costs
//! milliseconds on a host with many TIME_WAIT sockets (every 4 KiB read walks the table again),
//! which was most of a monitor's CPU.

use std::io;

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_LISTEN: u32 = 10;
const NLMSG_HDRLEN: usize = 16;
/// struct inet_diag_req_v2: family, protocol, ext, pad, states, inet_diag_sockid (48 bytes).
const REQ_LEN: usize = 56;
/// struct inet_diag_msg up to and including idiag_inode.
const MSG_LEN: usize = 72;

/// (port, socket inode) of every TCP socket in LISTEN state in this network namespace.
pub fn tcp_listeners() -> io::Result<Vec<(u16, u64)>> {
    let mut out = Vec::new();
    for family in [libc::AF_INET, libc::AF_INET6] {
        out.extend(dump(family as u8)?);
    }
    Ok(out)
}

fn dump(family: u8) -> io::Result<Vec<(u16, u64)>> {
    // SAFETY: plain socket syscalls on a descriptor this function owns and closes.
    let fd = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, libc::NETLINK_SOCK_DIAG) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let result = exchange(fd, family);
    // SAFETY: fd is ours.
    unsafe { libc::close(fd) };
    result
}

fn exchange(fd: i32, family: u8) -> io::Result<Vec<(u16, u64)>> {
    let mut req = [0u8; NLMSG_HDRLEN + REQ_LEN];
    req[0..4].copy_from_slice(&((NLMSG_HDRLEN + REQ_LEN) as u32).to_ne_bytes());
    req[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    req[6..8].copy_from_slice(&((libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16).to_ne_bytes());
    req[8..12].copy_from_slice(&1u32.to_ne_bytes());
    req[16] = family;
    req[17] = libc::IPPROTO_TCP as u8;
    req[20..24].copy_from_slice(&(1u32 << TCP_LISTEN).to_ne_bytes());
    // SAFETY: sockaddr_nl is plain data; zero means "the kernel".
    let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    addr.nl_family = libc::AF_NETLINK as u16;
    // SAFETY: req and addr outlive the call; lengths are theirs.
    let sent = unsafe {
        libc::sendto(
            fd,
            req.as_ptr().cast(),
            req.len(),
            0,
            (&addr as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as u32,
        )
    };
    if sent < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: buf is writable for its length.
        let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        match parse(&buf[..n as usize], &mut out) {
            Parsed::More => continue,
            Parsed::Done => return Ok(out),
            Parsed::Error(errno) => return Err(io::Error::from_raw_os_error(errno)),
        }
    }
}

enum Parsed {
    More,
    Done,
    Error(i32),
}

/// Parses one datagram of netlink messages, appending (port, inode) of each socket.
fn parse(mut data: &[u8], out: &mut Vec<(u16, u64)>) -> Parsed {
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes(data[0..4].try_into().unwrap()) as usize;
        let kind = u16::from_ne_bytes(data[4..6].try_into().unwrap());
        if len < NLMSG_HDRLEN || len > data.len() {
            return Parsed::Error(libc::EBADMSG);
        }
        let body = &data[NLMSG_HDRLEN..len];
        match kind {
            NLMSG_DONE => return Parsed::Done,
            NLMSG_ERROR => {
                let errno = body.get(0..4).map(|b| i32::from_ne_bytes(b.try_into().unwrap())).unwrap_or(-libc::EIO);
                return if errno == 0 { Parsed::Done } else { Parsed::Error(-errno) };
            }
            SOCK_DIAG_BY_FAMILY if body.len() >= MSG_LEN => {
                let port = u16::from_be_bytes([body[4], body[5]]);
                let inode = u32::from_ne_bytes(body[68..72].try_into().unwrap());
                out.push((port, inode as u64));
            }
            _ => {}
        }
        // Messages are 4-byte aligned.
        let step = (len + 3) & !3;
        data = &data[step.min(data.len())..];
    }
    Parsed::More
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_listener_of_this_process() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let found = tcp_listeners().unwrap();
        assert!(found.iter().any(|(p, inode)| *p == port && *inode > 0), "{port} not in {found:?}");
        drop(l);
        assert!(!tcp_listeners().unwrap().iter().any(|(p, _)| *p == port));
    }

    #[test]
    fn parses_messages() {
        let mut msg = vec![0u8; NLMSG_HDRLEN + MSG_LEN];
        msg[0..4].copy_from_slice(&((NLMSG_HDRLEN + MSG_LEN) as u32).to_ne_bytes());
        msg[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        msg[NLMSG_HDRLEN + 4..NLMSG_HDRLEN + 6].copy_from_slice(&8080u16.to_be_bytes());
        msg[NLMSG_HDRLEN + 68..NLMSG_HDRLEN + 72].copy_from_slice(&4242u32.to_ne_bytes());
        let mut done = vec![0u8; NLMSG_HDRLEN + 4];
        done[0..4].copy_from_slice(&((NLMSG_HDRLEN + 4) as u32).to_ne_bytes());
        done[4..6].copy_from_slice(&NLMSG_DONE.to_ne_bytes());
        msg.extend(done);
        let mut out = Vec::new();
        assert!(matches!(parse(&msg, &mut out), Parsed::Done));
        assert_eq!(out, vec![(8080, 4242)]);
        assert!(matches!(parse(&[1, 0, 0, 0], &mut out), Parsed::More));
    }
}
