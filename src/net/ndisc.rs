//! IPv6 neighbour discovery of a virtual IP, sent from the binary itself: unsolicited neighbour
//! advertisements (RFC 4861 §7.2.6: to ff02::1, hop limit 255, Override flag, target link-layer
//! address option), a duplicate-address probe (RFC 4862 §5.4: a neighbour solicitation from
//! the unspecified address to the solicited-node group), and the test of an advertisement for
//! another owner. `net::claim` sends and watches them.
//!
//! The IPv6 header is built here and sent on a link-layer socket, so both work whether or not the
//! address is configured yet, and a probe really comes from `::` (a raw ICMPv6 socket would pick a
//! source address of its own).

use std::net::Ipv6Addr;

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

/// A neighbour advertisement seen on the wire: its target, the advertiser's link-layer address
/// (the target link-layer option when present) and its Override flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advertisement {
    pub target: Ipv6Addr,
    pub mac: Option<[u8; 6]>,
    /// Set by the address's owner; clear in a proxy's (or an anycast) advertisement (RFC 4861
    /// §7.2.4, §7.2.8), which does not claim the address.
    pub override_flag: bool,
}

/// Parses an IPv6 packet that is a neighbour advertisement; None for anything else.
pub fn parse_advertisement(p: &[u8]) -> Option<Advertisement> {
    if p.len() < 40 + 24 || p[0] >> 4 != 6 || p[6] != ICMPV6 || p[40] != NEIGHBOUR_ADVERTISEMENT {
        return None;
    }
    let icmp_len = u16::from_be_bytes([p[4], p[5]]) as usize;
    let icmp = p.get(40..40 + icmp_len)?;
    let flags = u32::from_be_bytes(icmp.get(4..8)?.try_into().ok()?);
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
    Some(Advertisement { target, mac, override_flag: flags & FLAG_OVERRIDE != 0 })
}

/// The MAC of another owner of `ip` that an IPv6 frame from `src_mac` shows, if it does: a
/// neighbour advertisement for `ip` with the Override flag (what an owner sends, also in answer to
/// a duplicate-address probe) from a link-layer address that is not ours.
pub fn other_owner(frame: &[u8], src_mac: [u8; 6], ip: Ipv6Addr, our_mac: [u8; 6]) -> Option<[u8; 6]> {
    let na = parse_advertisement(frame)?;
    let owner = na.mac.unwrap_or(src_mac);
    (na.target == ip && na.override_flag && owner != our_mac && src_mac != our_mac).then_some(owner)
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
        assert_eq!(parse_advertisement(&p), Some(Advertisement { target: ip, mac: Some(MAC), override_flag: true }));
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

    #[test]
    fn only_an_overriding_advertisement_from_another_mac_is_an_owner() {
        let ip: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let other = [2, 0, 0, 0, 0, 9];
        let theirs = advertisement(ip, other);
        assert_eq!(other_owner(&theirs, other, ip, MAC), Some(other));
        // Ours, seen on the wire; one for another address; a solicitation.
        assert_eq!(other_owner(&advertisement(ip, MAC), MAC, ip, MAC), None);
        assert_eq!(other_owner(&theirs, other, "2001:db8::2".parse().unwrap(), MAC), None);
        assert_eq!(other_owner(&dad_solicitation(ip), other, ip, MAC), None);
        // A proxy's advertisement (no Override flag) claims nothing.
        let mut proxy = theirs.clone();
        proxy[44] &= !0x20;
        assert!(!parse_advertisement(&proxy).unwrap().override_flag);
        assert_eq!(other_owner(&proxy, other, ip, MAC), None);
    }
}
