//! TCP listening sockets from the kernel's sock_diag netlink interface: one request per address
//! family, and the kernel walks only its (small) listening hash. Reading /proc/net/tcp walks
//! every connection bucket on each read() (about 2 ms per file on this machine), which made a
//! depth-0 monitor cost 10 ms; this answers in tens of microseconds.
//!
//! The messages are netlink-packet-sock-diag's, sent through `net::netlink`'s one client: no raw
//! offsets and no `unsafe` here.

use std::io;

use netlink_packet_core::NLM_F_DUMP;
use netlink_packet_sock_diag::constants::{AF_INET, AF_INET6, IPPROTO_TCP};
use netlink_packet_sock_diag::inet::{ExtensionFlags, InetRequest, SocketId, StateFlags};
use netlink_packet_sock_diag::SockDiagMessage;
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
}
