//! TCP sockets through the kernel's sock_diag netlink interface: the listening ones, and the
//! destruction of the connections to one remote address. The listening sockets: one request per address
//! family, and the kernel walks only its (small) listening hash. Reading /proc/net/tcp walks
//! every connection bucket on each read() (about 2 ms per file on this machine), which made a
//! depth-0 monitor cost 10 ms; this answers in tens of microseconds.
//!
//! The messages are netlink-packet-sock-diag's, sent through `net::netlink`'s one client: no raw
//! offsets and no `unsafe` here.

use std::io;
use std::net::IpAddr;

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP};
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::{SockDiagDestroy, SockDiagMessage};
use netlink_sys::protocols::NETLINK_SOCK_DIAG;

use crate::net::netlink::Conn;

/// (local port, socket inode) of every TCP socket in LISTEN state, IPv4 and IPv6.
pub fn tcp_listeners() -> io::Result<Vec<(u16, u64)>> {
    let mut conn = Conn::open(NETLINK_SOCK_DIAG)?;
    let mut out = Vec::new();
    for (family, socket_id) in [(AF_INET, SocketId::new_v4()), (AF_INET6, SocketId::new_v6())] {
        let request = InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::LISTEN,
            socket_id,
        };
        for reply in conn.request(SockDiagMessage::InetRequest(request), NLM_F_DUMP)? {
            if let SockDiagMessage::InetResponse(r) = reply {
                out.push((r.header.socket_id.source_port, u64::from(r.header.inode)));
            }
        }
    }
    Ok(out)
}

/// The TCP states a connection to a peer can be in (not LISTEN; not TIME_WAIT, which holds no
/// socket an application waits on, and which SOCK_DESTROY does not take).
fn connected_states() -> StateFlags {
    StateFlags::ESTABLISHED
        | StateFlags::SYN_SENT
        | StateFlags::SYN_RECV
        | StateFlags::FIN_WAIT1
        | StateFlags::FIN_WAIT2
        | StateFlags::CLOSE_WAIT
        | StateFlags::LAST_ACK
        | StateFlags::CLOSING
}

/// Whether a socket's remote address is `remote`, also as an IPv4-mapped IPv6 address (a Java
/// program's sockets are IPv6 sockets by default, their IPv4 peers mapped).
fn is_peer(found: &IpAddr, remote: &IpAddr) -> bool {
    match (found, remote) {
        (IpAddr::V6(v6), IpAddr::V4(v4)) => v6.to_ipv4_mapped().as_ref() == Some(v4),
        _ => found == remote,
    }
}

/// Destroys (SOCK_DESTROY, as `ss -K`) every TCP connection of this network namespace whose
/// remote address is `remote`: its owner gets ECONNABORTED at once. Returns how many. Needs
/// CAP_NET_ADMIN and a kernel with CONFIG_INET_DIAG_DESTROY (Debian's has it); a connection that
/// ended meanwhile is not an error.
pub fn destroy_tcp_connections_to(remote: IpAddr) -> io::Result<usize> {
    let mut conn = Conn::open(NETLINK_SOCK_DIAG)?;
    let mut found = Vec::new();
    let families: &[(u8, SocketId)] = match remote {
        IpAddr::V4(_) => &[(AF_INET, SocketId::new_v4()), (AF_INET6, SocketId::new_v6())],
        IpAddr::V6(_) => &[(AF_INET6, SocketId::new_v6())],
    };
    for (family, socket_id) in families {
        let request = InetRequest {
            family: *family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: connected_states(),
            socket_id: socket_id.clone(),
        };
        for reply in conn.request(SockDiagMessage::InetRequest(request), NLM_F_DUMP)? {
            if let SockDiagMessage::InetResponse(r) = reply {
                if is_peer(&r.header.socket_id.destination_address, &remote) {
                    found.push((*family, r.header.socket_id.clone()));
                }
            }
        }
    }
    let mut destroyed = 0;
    for (family, socket_id) in found {
        let request = InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::all(),
            socket_id,
        };
        match conn.request(SockDiagDestroy::new(SockDiagMessage::InetRequest(request)), NLM_F_ACK) {
            Ok(_) => destroyed += 1,
            // Closed by its owner since the dump.
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENOENT as i32) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(destroyed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_own_listener_like_proc_does() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let l6 = std::net::TcpListener::bind("[::1]:0").ok();
        let found = tcp_listeners().unwrap();
        let from_proc: Vec<(u16, u64)> =
            crate::sys::listeners::parse_listeners(&std::fs::read_to_string("/proc/net/tcp").unwrap());
        let ours: Vec<_> = found.iter().filter(|(p, _)| *p == port).collect();
        assert_eq!(ours.len(), 1, "{found:?}");
        assert!(from_proc.contains(ours[0]), "same inode as /proc/net/tcp");
        if let Some(l6) = l6 {
            let port6 = l6.local_addr().unwrap().port();
            let from_proc6 =
                crate::sys::listeners::parse_listeners(&std::fs::read_to_string("/proc/net/tcp6").unwrap());
            let ours6: Vec<_> = found.iter().filter(|(p, _)| *p == port6).collect();
            assert!(ours6.iter().any(|o| from_proc6.contains(o)), "IPv6 listeners too: {found:?}");
        }
    }

    /// Connections to the address, over IPv4 and as an IPv4-mapped IPv6 peer (as a JVM makes
    /// them), are aborted; a connection to another address is left alone.
    #[test]
    fn connections_to_the_address_are_aborted_and_no_other() {
        use std::io::Read;
        use std::net::{Ipv4Addr, TcpListener, TcpStream};
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var_os("CI").is_none(), "CI runs as root: SOCK_DESTROY needs CAP_NET_ADMIN");
            eprintln!("skipped: SOCK_DESTROY needs root");
            return;
        }
        let target = Ipv4Addr::new(127, 77, 0, 1);
        let other = Ipv4Addr::new(127, 77, 0, 2);
        let listener = TcpListener::bind((target, 0)).unwrap();
        let bystander_listener = TcpListener::bind((other, 0)).unwrap();
        let mut v4 = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let mapped = std::net::SocketAddr::new(target.to_ipv6_mapped().into(), listener.local_addr().unwrap().port());
        let mut v6 = TcpStream::connect(mapped).unwrap();
        let mut bystander = TcpStream::connect(bystander_listener.local_addr().unwrap()).unwrap();
        let _accepted: Vec<TcpStream> = (0..2).map(|_| listener.accept().unwrap().0).collect();
        let _accepted_bystander = bystander_listener.accept().unwrap().0;

        let destroyed = destroy_tcp_connections_to(IpAddr::V4(target)).unwrap();
        assert!(destroyed >= 2, "destroyed {destroyed}");
        for (name, stream) in [("IPv4", &mut v4), ("IPv4-mapped IPv6", &mut v6)] {
            let err = stream.read(&mut [0u8; 1]).expect_err(name);
            assert_eq!(err.raw_os_error(), Some(nix::errno::Errno::ECONNABORTED as i32), "{name}: {err}");
        }
        bystander.set_nonblocking(true).unwrap();
        let err = bystander.read(&mut [0u8; 1]).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "the other connection is alive: {err}");
    }
}
