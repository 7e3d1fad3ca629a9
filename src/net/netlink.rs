//! The netlink client of hastack: addresses, links and routes of the network namespace the
//! process runs in, behind plain synchronous functions (and the socket `net::sockdiag` asks
//! about listeners through).
//!
//! Built on the synchronous lower layer of rtnetlink (netlink-packet-route + netlink-packet-core +
//! netlink-sys) rather than rtnetlink itself: rtnetlink is async and would put a tokio runtime
//! into every monitor call, which must stay as cheap as starting `/bin/true`.
//!
//! Errors are `io::Error`s carrying the kernel's errno (EPERM stays EPERM, so the agent can map it
//! to OCF_ERR_PERM). Each call opens its own socket: agents make a handful of calls per action.

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::time::Duration;

use netlink_packet_core::{
    NetlinkDeserializable, NetlinkHeader, NetlinkMessage, NetlinkPayload, NetlinkSerializable, NLM_F_ACK, NLM_F_CREATE,
    NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
};
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage, State};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteType};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// The kernel answers route-netlink requests synchronously; this only guards against a wedged
/// kernel keeping an agent past its deadline.
const RECV_TIMEOUT: Duration = Duration::from_secs(2);

/// IPv4 or IPv6.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }
    fn netlink(self) -> AddressFamily {
        match self {
            Family::V4 => AddressFamily::Inet,
            Family::V6 => AddressFamily::Inet6,
        }
    }
    /// The longest prefix of the family.
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// The kernel's operational state of a link (RFC 2863, as `ip link` prints it).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum OperState {
    Up,
    /// Drivers that do not report it (loopback, dummy): usable when the flags say so.
    Unknown,
    Down,
    LowerLayerDown,
    Dormant,
    NotPresent,
    Testing,
}

impl OperState {
    pub fn name(self) -> &'static str {
        match self {
            OperState::Up => "UP",
            OperState::Unknown => "UNKNOWN",
            OperState::Down => "DOWN",
            OperState::LowerLayerDown => "LOWERLAYERDOWN",
            OperState::Dormant => "DORMANT",
            OperState::NotPresent => "NOTPRESENT",
            OperState::Testing => "TESTING",
        }
    }
}

/// One network interface.
#[derive(Clone, Debug)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// IFF_UP: administratively up.
    pub admin_up: bool,
    /// IFF_LOWER_UP: the carrier is there.
    pub lower_up: bool,
    pub oper_state: OperState,
    /// IFF_NOARP: the link has no neighbour resolution (loopback, point-to-point tunnels).
    pub noarp: bool,
    /// The link-layer address (6 bytes on Ethernet); empty when the link has none.
    pub mac: Vec<u8>,
}

impl Link {
    /// Why this link cannot carry traffic, or None when it can. Catches administratively down,
    /// no carrier and the lower-layer-down state of a veth or VLAN whose parent is down.
    pub fn down_reason(&self) -> Option<String> {
        if !self.admin_up {
            return Some(format!("link {} is administratively down", self.name));
        }
        let state_ok = matches!(self.oper_state, OperState::Up | OperState::Unknown);
        if !self.lower_up || !state_ok {
            return Some(format!(
                "link {} is down (operstate {}{})",
                self.name,
                self.oper_state.name(),
                if self.lower_up { "" } else { ", no carrier" }
            ));
        }
        None
    }

    /// The MAC as an Ethernet address, when the link has one.
    pub fn ethernet_mac(&self) -> Option<[u8; 6]> {
        self.mac.as_slice().try_into().ok().filter(|m: &[u8; 6]| m.iter().any(|b| *b != 0))
    }
}

/// One address on one interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Addr {
    pub index: u32,
    pub ip: IpAddr,
    pub prefix_len: u8,
    /// IPv4 only: the label (`eth0:vip`); the interface name when none was given.
    pub label: Option<String>,
    /// IPv6: duplicate address detection is still running.
    pub tentative: bool,
    /// IPv6: duplicate address detection found another owner.
    pub dad_failed: bool,
}

/// One route of the main table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub dest: IpAddr,
    pub prefix_len: u8,
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub metric: u32,
    /// A plain unicast route (not unreachable, blackhole, prohibit, local, broadcast...).
    pub unicast: bool,
}

impl Route {
    /// Whether `ip` lies in this route's destination prefix.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        prefix_contains(&self.dest, self.prefix_len, ip)
    }
}

/// Whether `ip` lies in `net/len` (false across families).
pub fn prefix_contains(net: &IpAddr, len: u8, ip: &IpAddr) -> bool {
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(a)) => mask_eq(u32::from(*n) as u128, u32::from(*a) as u128, len, 32),
        (IpAddr::V6(n), IpAddr::V6(a)) => mask_eq(u128::from(*n), u128::from(*a), len, 128),
        _ => false,
    }
}

fn mask_eq(a: u128, b: u128, len: u8, bits: u8) -> bool {
    if len == 0 {
        return true;
    }
    let len = len.min(bits);
    let shift = bits - len;
    (a >> shift) == (b >> shift)
}

/// The route an address would be configured through, as IPaddr2's findif picks it: among the
/// on-link unicast routes of the main table that contain `ip` (no default route, no gateway, no
/// unreachable/blackhole), the longest prefix, then the lowest metric, then the lowest ifindex.
/// With `oif`, only routes through that interface count.
pub fn pick_onlink_route<'a>(routes: &'a [Route], ip: &IpAddr, oif: Option<u32>) -> Option<&'a Route> {
    routes
        .iter()
        .filter(|r| r.unicast && r.prefix_len > 0 && r.gateway.is_none() && r.oif.is_some())
        .filter(|r| oif.is_none() || r.oif == oif)
        .filter(|r| r.contains(ip))
        .min_by_key(|r| (std::cmp::Reverse(r.prefix_len), r.metric, r.oif))
}

/// The outcome of an idempotent change.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Done,
    /// Already in the wanted state (EEXIST on add, EADDRNOTAVAIL on delete).
    AlreadyThere,
}

/// The link with this name, or None if there is none.
pub fn link_by_name(name: &str) -> io::Result<Option<Link>> {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    get_link(msg)
}

/// The link with this index, or None if there is none.
pub fn link_by_index(index: u32) -> io::Result<Option<Link>> {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    get_link(msg)
}

fn get_link(msg: LinkMessage) -> io::Result<Option<Link>> {
    match Conn::open(NETLINK_ROUTE)?.request(RouteNetlinkMessage::GetLink(msg), NLM_F_ACK) {
        Ok(replies) => Ok(replies.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(link_from(l)),
            _ => None,
        })),
        Err(e) if e.raw_os_error() == Some(libc::ENODEV) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Every link of the namespace.
pub fn links() -> io::Result<Vec<Link>> {
    let replies =
        Conn::open(NETLINK_ROUTE)?.request(RouteNetlinkMessage::GetLink(LinkMessage::default()), NLM_F_DUMP)?;
    Ok(replies
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) => Some(link_from(l)),
            _ => None,
        })
        .collect())
}

fn link_from(msg: LinkMessage) -> Link {
    let flags = msg.header.flags;
    let mut link = Link {
        index: msg.header.index,
        name: String::new(),
        admin_up: flags.contains(LinkFlags::Up),
        lower_up: flags.contains(LinkFlags::LowerUp),
        oper_state: OperState::Unknown,
        noarp: flags.contains(LinkFlags::Noarp),
        mac: Vec::new(),
    };
    for attr in msg.attributes {
        match attr {
            LinkAttribute::IfName(n) => link.name = n,
            LinkAttribute::Address(a) => link.mac = a,
            LinkAttribute::OperState(s) => {
                link.oper_state = match s {
                    State::Up => OperState::Up,
                    State::Down => OperState::Down,
                    State::LowerLayerDown => OperState::LowerLayerDown,
                    State::Dormant => OperState::Dormant,
                    State::NotPresent => OperState::NotPresent,
                    State::Testing => OperState::Testing,
                    _ => OperState::Unknown,
                }
            }
            _ => {}
        }
    }
    link
}

/// Every address of one family in the namespace.
pub fn addresses(family: Family) -> io::Result<Vec<Addr>> {
    let mut msg = AddressMessage::default();
    msg.header.family = family.netlink();
    let replies = Conn::open(NETLINK_ROUTE)?.request(RouteNetlinkMessage::GetAddress(msg), NLM_F_DUMP)?;
    Ok(replies
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewAddress(a) => addr_from(a),
            _ => None,
        })
        .filter(|a| Family::of(&a.ip) == family)
        .collect())
}

/// The interfaces holding `ip` (compared as addresses, so any IPv6 notation matches).
pub fn find_address(ip: &IpAddr) -> io::Result<Vec<Addr>> {
    Ok(addresses(Family::of(ip))?.into_iter().filter(|a| a.ip == *ip).collect())
}

fn addr_from(msg: AddressMessage) -> Option<Addr> {
    let mut local = None;
    let mut address = None;
    let mut label = None;
    let mut flags = AddressFlags::from_bits_retain(msg.header.flags.bits() as u32);
    for attr in msg.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(ip),
            AddressAttribute::Address(ip) => address = Some(ip),
            AddressAttribute::Label(l) => label = Some(l),
            AddressAttribute::Flags(f) => flags = f,
            _ => {}
        }
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer on point-to-point links.
    let ip = local.or(address)?;
    Some(Addr {
        index: msg.header.index,
        ip,
        prefix_len: msg.header.prefix_len,
        label,
        tentative: flags.contains(AddressFlags::Tentative),
        dad_failed: flags.contains(AddressFlags::Dadfailed),
    })
}

/// Adds `ip/prefix_len` to the interface. IPv4 gets the subnet's broadcast address and the label;
/// IPv6 is added without kernel DAD (the caller probes for a duplicate itself, within its time
/// budget, instead of the kernel's one-second tentative phase). EEXIST = already there.
pub fn add_address(index: u32, ip: IpAddr, prefix_len: u8, label: Option<&str>) -> io::Result<Change> {
    let mut msg = AddressMessage::default();
    msg.header.family = Family::of(&ip).netlink();
    msg.header.prefix_len = prefix_len;
    msg.header.index = index;
    match ip {
        IpAddr::V4(v4) => {
            msg.attributes.push(AddressAttribute::Local(ip));
            msg.attributes.push(AddressAttribute::Address(ip));
            if let Some(brd) = broadcast(v4, prefix_len) {
                msg.attributes.push(AddressAttribute::Broadcast(brd));
            }
            if let Some(label) = label {
                msg.attributes.push(AddressAttribute::Label(label.to_string()));
            }
        }
        IpAddr::V6(_) => {
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes.push(AddressAttribute::Address(ip));
            msg.attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    let flags = NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
    match Conn::open(NETLINK_ROUTE)?.request(RouteNetlinkMessage::NewAddress(msg), flags) {
        Ok(_) => Ok(Change::Done),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(Change::AlreadyThere),
        Err(e) => Err(e),
    }
}

/// Removes `ip/prefix_len` from the interface. EADDRNOTAVAIL (not there) = already done.
pub fn del_address(index: u32, ip: IpAddr, prefix_len: u8) -> io::Result<Change> {
    let mut msg = AddressMessage::default();
    msg.header.family = Family::of(&ip).netlink();
    msg.header.prefix_len = prefix_len;
    msg.header.index = index;
    if ip.is_ipv4() {
        msg.attributes.push(AddressAttribute::Local(ip));
    }
    msg.attributes.push(AddressAttribute::Address(ip));
    match Conn::open(NETLINK_ROUTE)?.request(RouteNetlinkMessage::DelAddress(msg), NLM_F_ACK) {
        Ok(_) => Ok(Change::Done),
        Err(e) if e.raw_os_error() == Some(libc::EADDRNOTAVAIL) => Ok(Change::AlreadyThere),
        Err(e) => Err(e),
    }
}

/// The IPv4 broadcast address of a subnet; none for /31 and /32 (RFC 3021).
pub fn broadcast(ip: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    if prefix_len >= 31 {
        return None;
    }
    let host_bits = u32::MAX >> prefix_len;
    Some(Ipv4Addr::from(u32::from(ip) | host_bits))
}

/// The routes of the main table for one family.
pub fn main_routes(family: Family) -> io::Result<Vec<Route>> {
    let mut msg = RouteMessage::default();
    msg.header.address_family = family.netlink();
    let replies = Conn::open(NETLINK_ROUTE)?.request(RouteNetlinkMessage::GetRoute(msg), NLM_F_DUMP)?;
    Ok(replies
        .into_iter()
        .filter_map(|m| match m {
            RouteNetlinkMessage::NewRoute(r) => route_from(r, family),
            _ => None,
        })
        .collect())
}

fn route_from(msg: RouteMessage, family: Family) -> Option<Route> {
    let mut table = msg.header.table as u32;
    let mut route = Route {
        dest: match family {
            Family::V4 => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Family::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        },
        prefix_len: msg.header.destination_prefix_length,
        oif: None,
        gateway: None,
        metric: 0,
        unicast: msg.header.kind == RouteType::Unicast,
    };
    for attr in msg.attributes {
        match attr {
            RouteAttribute::Destination(a) => route.dest = route_ip(a)?,
            RouteAttribute::Gateway(a) => route.gateway = route_ip(a),
            RouteAttribute::Oif(i) => route.oif = Some(i),
            RouteAttribute::Priority(p) => route.metric = p,
            RouteAttribute::Table(t) => table = t,
            _ => {}
        }
    }
    (table == RouteHeader::RT_TABLE_MAIN as u32).then_some(route)
}

fn route_ip(a: RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(v6)),
        _ => None,
    }
}

/// One netlink socket connected to the kernel (route-netlink here, sock_diag in
/// `net::sockdiag`): the one place hastack sends netlink requests and reads their replies.
pub(crate) struct Conn {
    socket: Socket,
    seq: u32,
}

impl Conn {
    pub(crate) fn open(protocol: isize) -> io::Result<Conn> {
        let mut socket = Socket::new(protocol)?;
        socket.bind_auto()?;
        socket.connect(&SocketAddr::new(0, 0))?;
        let tv = nix::sys::time::TimeVal::new(RECV_TIMEOUT.as_secs() as _, RECV_TIMEOUT.subsec_micros() as _);
        nix::sys::socket::setsockopt(&socket.as_fd(), nix::sys::socket::sockopt::ReceiveTimeout, &tv)?;
        Ok(Conn { socket, seq: 0 })
    }

    /// Sends one request and collects the replies up to the final ACK, error or end of dump.
    pub(crate) fn request<M>(&mut self, msg: M, flags: u16) -> io::Result<Vec<M>>
    where
        M: NetlinkSerializable + NetlinkDeserializable + std::fmt::Debug,
    {
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.seq;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(msg));
        packet.finalize();
        let mut out = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut out);
        self.socket.send(&out, 0)?;

        let mut replies = Vec::new();
        let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
        loop {
            buf.clear();
            let n = self.socket.recv(&mut buf, 0)?;
            let mut offset = 0;
            while offset < n {
                let reply = NetlinkMessage::<M>::deserialize(&buf[offset..n])
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad netlink reply: {e}")))?;
                let len = reply.header.length as usize;
                if reply.header.sequence_number == self.seq {
                    match reply.payload {
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(replies),
                                Some(code) => Err(io::Error::from_raw_os_error(-code.get())),
                            }
                        }
                        NetlinkPayload::InnerMessage(m) => replies.push(m),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(dest: &str, len: u8, oif: u32, metric: u32) -> Route {
        Route { dest: dest.parse().unwrap(), prefix_len: len, oif: Some(oif), gateway: None, metric, unicast: true }
    }

    #[test]
    fn longest_prefix_then_lowest_metric() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let routes = vec![
            route("0.0.0.0", 0, 1, 0),
            route("10.0.0.0", 8, 2, 0),
            route("10.1.2.0", 24, 3, 200),
            route("10.1.2.0", 24, 4, 100),
            route("10.9.0.0", 16, 5, 0),
        ];
        assert_eq!(pick_onlink_route(&routes, &ip, None).unwrap().oif, Some(4));
        assert_eq!(pick_onlink_route(&routes, &ip, Some(3)).unwrap().oif, Some(3));
        assert_eq!(pick_onlink_route(&routes, &ip, Some(2)).unwrap().prefix_len, 8);
        assert!(pick_onlink_route(&routes, &"192.168.0.1".parse().unwrap(), None).is_none());
    }

    #[test]
    fn default_gateway_and_unreachable_routes_are_ignored() {
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let mut via = route("10.1.2.0", 24, 7, 0);
        via.gateway = Some("10.0.0.1".parse().unwrap());
        let mut unreachable = route("10.1.0.0", 16, 8, 0);
        unreachable.unicast = false;
        let routes = vec![route("0.0.0.0", 0, 1, 0), via, unreachable];
        assert!(pick_onlink_route(&routes, &ip, None).is_none());
    }

    #[test]
    fn ipv6_prefixes() {
        let ip: IpAddr = "2001:db8::1".parse().unwrap();
        let routes = vec![route("2001:db8::", 64, 2, 256), route("fe80::", 64, 2, 256)];
        assert_eq!(pick_onlink_route(&routes, &ip, None).unwrap().dest, "2001:db8::".parse::<IpAddr>().unwrap());
        assert!(prefix_contains(&"2001:db8::".parse().unwrap(), 32, &"2001:0db8:ffff::9".parse().unwrap()));
        assert!(!prefix_contains(&"2001:db8::".parse().unwrap(), 64, &"10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn broadcast_addresses() {
        assert_eq!(broadcast("10.1.2.3".parse().unwrap(), 24), Some("10.1.2.255".parse().unwrap()));
        assert_eq!(broadcast("10.1.2.3".parse().unwrap(), 8), Some("10.255.255.255".parse().unwrap()));
        assert_eq!(broadcast("10.1.2.3".parse().unwrap(), 31), None);
        assert_eq!(broadcast("10.1.2.3".parse().unwrap(), 32), None);
    }
}
