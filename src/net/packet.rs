//! Link-layer (AF_PACKET, SOCK_DGRAM) sockets: the kernel adds and strips the Ethernet header,
//! we send and read the ARP or IPv6 payload. Used for gratuitous ARP, unsolicited neighbour
//! advertisements and duplicate-address probes, which must work before (and regardless of
//! whether) the address is configured.

use std::io;
use std::mem::MaybeUninit;
use std::time::Instant;

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
pub const BROADCAST_MAC: [u8; 6] = [0xff; 6];

/// A received frame's origin.
#[derive(Copy, Clone, Debug)]
pub struct Origin {
    pub src_mac: [u8; 6],
    /// We see our own outgoing frames on a packet socket too.
    pub outgoing: bool,
}

/// A packet socket bound to one interface and one ethertype.
pub struct PacketSocket {
    socket: Socket,
    ifindex: u32,
    ethertype: u16,
}

impl PacketSocket {
    /// Needs CAP_NET_RAW (EPERM otherwise).
    pub fn open(ifindex: u32, ethertype: u16) -> io::Result<PacketSocket> {
        let socket = Socket::new(Domain::PACKET, Type::DGRAM, Some(Protocol::from(ethertype.to_be() as i32)))?;
        socket.bind(&link_addr(ifindex, ethertype, [0; 6]))?;
        Ok(PacketSocket { socket, ifindex, ethertype })
    }

    /// Sends one payload to `dest_mac`.
    pub fn send(&self, payload: &[u8], dest_mac: [u8; 6]) -> io::Result<()> {
        self.socket.send_to(payload, &link_addr(self.ifindex, self.ethertype, dest_mac))?;
        Ok(())
    }

    /// Receives one frame, waiting until `until` at the latest; None when the time is up. A
    /// frame already queued is returned even when `until` has passed.
    pub fn recv_until(&self, buf: &mut [u8], until: Instant) -> io::Result<Option<(usize, Origin)>> {
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return self.recv_queued(buf);
            }
            self.socket.set_read_timeout(Some(left))?;
            // SAFETY: u8 and MaybeUninit<u8> have the same layout; recv_from only writes.
            let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
            match self.socket.recv_from(uninit) {
                Ok((n, addr)) => return Ok(Some((n, origin(addr)))),
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// One frame that has already arrived, without waiting; None if there is none.
    fn recv_queued(&self, buf: &mut [u8]) -> io::Result<Option<(usize, Origin)>> {
        // SAFETY: u8 and MaybeUninit<u8> have the same layout; recv_from only writes.
        let uninit = unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) };
        loop {
            match self.socket.recv_from_with_flags(uninit, libc::MSG_DONTWAIT) {
                Ok((n, addr)) => return Ok(Some((n, origin(addr)))),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn link_addr(ifindex: u32, ethertype: u16, mac: [u8; 6]) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is one of the platform's sockaddr types and fits the storage.
    let ll: &mut libc::sockaddr_ll = unsafe { storage.view_as() };
    ll.sll_family = libc::AF_PACKET as u16;
    ll.sll_protocol = ethertype.to_be();
    ll.sll_ifindex = ifindex as i32;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&mac);
    // SAFETY: the storage holds an AF_PACKET address of exactly this length.
    unsafe { SockAddr::new(storage, std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t) }
}

fn origin(addr: SockAddr) -> Origin {
    let mut storage = addr.as_storage();
    // SAFETY: a packet socket's recvfrom fills in a sockaddr_ll.
    let ll: &mut libc::sockaddr_ll = unsafe { storage.view_as() };
    let mut src_mac = [0u8; 6];
    src_mac.copy_from_slice(&ll.sll_addr[..6]);
    Origin { src_mac, outgoing: ll.sll_pkttype == libc::PACKET_OUTGOING }
}

/// `aa:bb:cc:dd:ee:ff`
pub fn format_mac(mac: &[u8]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}
