//! IPv6 neighbour discovery of a virtual IP, sent from the binary itself: unsolicited neighbour
//! advertisements (RFC 4861 §7.2.6: to ff02::1, hop limit 255, Override flag, target link-layer
//! address option) and a duplicate-address probe (RFC 4862 §5.4: a neighbour solicitation from
//! the unspecified address to the solicited-node group).
//!
//! The IPv6 header is built here and sent on a link-layer socket, so both work whether or not the
//! address is configured yet, and a probe really comes from `::` (a raw ICMPv6 socket would pick a
//! source address of its own).

use std::io;
use std::net::Ipv6Addr;
use std::time::Instant;

use crate::net::packet::{PacketSocket, ETH_P_IPV6};

const ICMPV6: u8 = 58;
const NEIGHBOUR_SOLICITATION: u8 = 135;
const NEIGHBOUR_ADVERTISEMENT: u8 = 136;
const OPT_TARGET_LL: u8 = 2;
const FLAG_OVERRIDE: u32 = 0x2000_0000;
/// RFC 4861: receivers drop neighbour discovery packets with any other hop limit.
const ND_HOP_LIMIT: u8 = 255;
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The solicited-node multicast group of an address (ff02::1:ffXX:XXXX).
pub fn solicited_node(ip: Ipv6Addr) -> Ipv6Addr {
    let o = ip.octets();
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | o[13] as u16, u16::from_be_bytes([o[14], o[15]]))
}

/// The Ethernet multicast address of an IPv6 multicast group (33:33 + the low 32 bits).
pub fn multicast_mac(group: Ipv6Addr) -> [u8; 6] {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// The unsolicited advertisement of `target` at `mac`, as an IPv6 packet from `target` to ff02::1.
pub fn advertisement(target: Ipv6Addr, mac: [u8; 6]) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[NEIGHBOUR_ADVERTISEMENT, 0, 0, 0]);
    icmp.extend_from_slice(&FLAG_OVERRIDE.to_be_bytes());
    icmp.extend_from_slice(&target.octets());
    icmp.extend_from_slice(&[OPT_TARGET_LL, 1]);
    icmp.extend_from_slice(&mac);
    ipv6_packet(target, ALL_NODES, icmp)
}

/// The duplicate-address probe for `target`: a solicitation from `::` with no options.
pub fn dad_solicitation(target: Ipv6Addr) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(24);
    icmp.extend_from_slice(&[NEIGHBOUR_SOLICITATION, 0, 0, 0, 0, 0, 0, 0]);
    icmp.extend_from_slice(&target.octets());
    ipv6_packet(Ipv6Addr::UNSPECIFIED, solicited_node(target), icmp)
}

/// Wraps an ICMPv6 message in an IPv6 header and fills in its checksum.
fn ipv6_packet(src: Ipv6Addr, dst: Ipv6Addr, mut icmp: Vec<u8>) -> Vec<u8> {
    let sum = checksum(src, dst, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut p = Vec::with_capacity(40 + icmp.len());
    p.extend_from_slice(&[0x60, 0, 0, 0]);
    p.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    p.push(ICMPV6);
    p.push(ND_HOP_LIMIT);
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(&icmp);
    p
}

/// The ICMPv6 checksum over the pseudo-header (RFC 8200 §8.1) and the message.
pub fn checksum(src: Ipv6Addr, dst: Ipv6Addr, icmp: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for chunk in bytes.chunks(2) {
            let word = if chunk.len() == 2 { u16::from_be_bytes([chunk[0], chunk[1]]) } else { (chunk[0] as u16) << 8 };
            sum += word as u32;
        }
    };
    add(&src.octets());
    add(&dst.octets());
    add(&(icmp.len() as u32).to_be_bytes());
    add(&[0, 0, 0, ICMPV6]);
    add(icmp);
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// A neighbour advertisement seen on the wire: its target and the advertiser's link-layer address
/// (the target link-layer option when present).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertisement {
    pub target: Ipv6Addr,
    pub mac: Option<[u8; 6]>,
}

/// Parses an IPv6 packet that is a neighbour advertisement; None for anything else.
pub fn parse_advertisement(p: &[u8]) -> Option<Advertisement> {
    if p.len() < 40 + 24 || p[0] >> 4 != 6 || p[6] != ICMPV6 || p[40] != NEIGHBOUR_ADVERTISEMENT {
        return None;
    }
    let icmp_len = u16::from_be_bytes([p[4], p[5]]) as usize;
    let icmp = p.get(40..40 + icmp_len)?;
    let target = Ipv6Addr::from(<[u8; 16]>::try_from(icmp.get(8..24)?).ok()?);
    let mut mac = None;
    let mut opts = &icmp[24..];
    while opts.len() >= 8 {
        let len = opts[1] as usize * 8;
        if len == 0 || len > opts.len() {
            break;
        }
        if opts[0] == OPT_TARGET_LL && len >= 8 {
            mac = opts[2..8].try_into().ok();
        }
        opts = &opts[len..];
    }
    Some(Advertisement { target, mac })
}

/// Sends one unsolicited neighbour advertisement for `ip` from `mac` out of interface `ifindex`.
pub fn announce(ifindex: u32, mac: [u8; 6], ip: Ipv6Addr) -> io::Result<()> {
    let socket = PacketSocket::open(ifindex, ETH_P_IPV6)?;
    socket.send(&advertisement(ip, mac), multicast_mac(ALL_NODES))
}

/// Asks the link whether anyone holds `ip` (duplicate address detection), sending `probes`
/// solicitations spread over the time up to `until` and listening until then. Returns the other
/// owner's MAC, or None if nobody answered.
pub fn probe_owner(
    ifindex: u32,
    our_mac: [u8; 6],
    ip: Ipv6Addr,
    probes: u32,
    until: Instant,
) -> io::Result<Option<[u8; 6]>> {
    let socket = PacketSocket::open(ifindex, ETH_P_IPV6)?;
    let probe = dad_solicitation(ip);
    let dest = multicast_mac(solicited_node(ip));
    let start = Instant::now();
    let probes = probes.max(1);
    let step = until.saturating_duration_since(start) / (probes + 1);
    let mut sent = 0;
    let mut buf = [0u8; 2048];
    loop {
        if sent < probes && Instant::now() >= start + step * sent {
            socket.send(&probe, dest)?;
            sent += 1;
        }
        let wait_until = if sent < probes { (start + step * sent).min(until) } else { until };
        match socket.recv_until(&mut buf, wait_until)? {
            Some((n, origin)) if !origin.outgoing && origin.src_mac != our_mac => {
                if let Some(na) = parse_advertisement(&buf[..n]) {
                    if na.target == ip {
                        return Ok(Some(na.mac.unwrap_or(origin.src_mac)));
                    }
                }
            }
            Some(_) => {}
            None if sent >= probes || Instant::now() >= until => return Ok(None),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    #[test]
    fn solicited_node_group_and_mac() {
        let ip: Ipv6Addr = "2001:db8::12:3456".parse().unwrap();
        assert_eq!(solicited_node(ip), "ff02::1:ff12:3456".parse::<Ipv6Addr>().unwrap());
        assert_eq!(multicast_mac(solicited_node(ip)), [0x33, 0x33, 0xff, 0x12, 0x34, 0x56]);
        assert_eq!(multicast_mac(ALL_NODES), [0x33, 0x33, 0, 0, 0, 1]);
    }

    #[test]
    fn advertisement_layout() {
        let ip: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let p = advertisement(ip, MAC);
        assert_eq!(p.len(), 40 + 32);
        assert_eq!((p[0] >> 4, p[6], p[7]), (6, 58, 255));
        assert_eq!(&p[24..40], &ALL_NODES.octets());
        assert_eq!(p[40], 136);
        assert_eq!(p[44] & 0x20, 0x20, "override flag");
        assert_eq!(p[44] & 0xc0, 0, "neither router nor solicited");
        assert_eq!(parse_advertisement(&p), Some(Advertisement { target: ip, mac: Some(MAC) }));
    }

    #[test]
    fn checksum_verifies_to_zero() {
        // A correct checksum makes the sum over pseudo-header + message (checksum included) 0xffff.
        let ip: Ipv6Addr = "2001:db8::1".parse().unwrap();
        for p in [advertisement(ip, MAC), dad_solicitation(ip)] {
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&p[8..24]).unwrap());
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&p[24..40]).unwrap());
            assert_eq!(checksum(src, dst, &p[40..]), 0);
        }
    }

    #[test]
    fn dad_probe_comes_from_unspecified() {
        let ip: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let p = dad_solicitation(ip);
        assert_eq!(&p[8..24], &[0u8; 16]);
        assert_eq!(p[40], 135);
        assert_eq!(&p[48..64], &ip.octets());
        assert!(parse_advertisement(&p).is_none());
    }
}
