//! IPv4 neighbour traffic of a virtual IP, sent from the binary itself (no external arping):
//! gratuitous ARP announcements (request or reply form, as resource-agents' send_arp), the
//! RFC 5227 ARP probe that asks whether another host owns the address, and the test of a packet
//! for another owner. `net::claim` sends and watches them.

use std::net::Ipv4Addr;

const OP_REQUEST: u16 = 1;
const OP_REPLY: u16 = 2;

/// The form of a gratuitous ARP. Most hosts update their caches from either; some switches and
/// routers only from replies (resource-agents PR #977).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ArpMode {
    Request,
    Reply,
}

/// An Ethernet/IPv4 ARP packet (the kernel adds the Ethernet header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArpPacket {
    pub op: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: Ipv4Addr,
    pub target_mac: [u8; 6],
    pub target_ip: Ipv4Addr,
}

impl ArpPacket {
    /// The announcement of `ip` at `mac`. Request form: target MAC zero (RFC 5227 §2.3);
    /// reply form: target MAC ours, as send_arp -A sends it.
    pub fn announcement(mode: ArpMode, mac: [u8; 6], ip: Ipv4Addr) -> ArpPacket {
        let (op, target_mac) = match mode {
            ArpMode::Request => (OP_REQUEST, [0; 6]),
            ArpMode::Reply => (OP_REPLY, mac),
        };
        ArpPacket { op, sender_mac: mac, sender_ip: ip, target_mac, target_ip: ip }
    }

    /// The RFC 5227 probe: who has `ip`? asked from 0.0.0.0, so no cache learns anything from it.
    pub fn probe(mac: [u8; 6], ip: Ipv4Addr) -> ArpPacket {
        ArpPacket {
            op: OP_REQUEST,
            sender_mac: mac,
            sender_ip: Ipv4Addr::UNSPECIFIED,
            target_mac: [0; 6],
            target_ip: ip,
        }
    }

    pub fn encode(&self) -> [u8; 28] {
        let mut b = [0u8; 28];
        b[0..2].copy_from_slice(&1u16.to_be_bytes()); // hardware: Ethernet
        b[2..4].copy_from_slice(&0x0800u16.to_be_bytes()); // protocol: IPv4
        b[4] = 6;
        b[5] = 4;
        b[6..8].copy_from_slice(&self.op.to_be_bytes());
        b[8..14].copy_from_slice(&self.sender_mac);
        b[14..18].copy_from_slice(&self.sender_ip.octets());
        b[18..24].copy_from_slice(&self.target_mac);
        b[24..28].copy_from_slice(&self.target_ip.octets());
        b
    }

    pub fn decode(b: &[u8]) -> Option<ArpPacket> {
        if b.len() < 28 || b[0..2] != [0, 1] || b[2..4] != [8, 0] || b[4] != 6 || b[5] != 4 {
            return None;
        }
        let ip = |r: std::ops::Range<usize>| Ipv4Addr::new(b[r.start], b[r.start + 1], b[r.start + 2], b[r.start + 3]);
        Some(ArpPacket {
            op: u16::from_be_bytes([b[6], b[7]]),
            sender_mac: b[8..14].try_into().ok()?,
            sender_ip: ip(14..18),
            target_mac: b[18..24].try_into().ok()?,
            target_ip: ip(24..28),
        })
    }
}

/// Whether an ARP packet from someone else shows that they use `ip`: any packet whose sender
/// address is `ip` (their reply to our probe, or their own announcement), as RFC 5227 §2.1.1.
pub fn shows_other_owner(packet: &ArpPacket, ip: Ipv4Addr, our_mac: [u8; 6]) -> bool {
    packet.sender_ip == ip && packet.sender_mac != our_mac
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

    #[test]
    fn announcement_forms() {
        let ip: Ipv4Addr = "10.0.0.5".parse().unwrap();
        let req = ArpPacket::announcement(ArpMode::Request, MAC, ip);
        assert_eq!((req.op, req.target_mac, req.sender_ip, req.target_ip), (1, [0; 6], ip, ip));
        let rep = ArpPacket::announcement(ArpMode::Reply, MAC, ip);
        assert_eq!((rep.op, rep.target_mac), (2, MAC));
    }

    #[test]
    fn encode_decode_roundtrip_and_wire_layout() {
        let p = ArpPacket::probe(MAC, "10.0.0.5".parse().unwrap());
        let bytes = p.encode();
        assert_eq!(&bytes[..8], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&bytes[14..18], &[0, 0, 0, 0]);
        assert_eq!(&bytes[24..28], &[10, 0, 0, 5]);
        assert_eq!(ArpPacket::decode(&bytes), Some(p));
        assert_eq!(ArpPacket::decode(&bytes[..20]), None);
    }

    #[test]
    fn other_owner_detection() {
        let ip: Ipv4Addr = "10.0.0.5".parse().unwrap();
        let other = [2, 0, 0, 0, 0, 9];
        let reply =
            ArpPacket { op: 2, sender_mac: other, sender_ip: ip, target_mac: MAC, target_ip: Ipv4Addr::UNSPECIFIED };
        assert!(shows_other_owner(&reply, ip, MAC));
        // Our own announcement, and someone else's probe (sender 0.0.0.0), are not owners.
        assert!(!shows_other_owner(&ArpPacket::announcement(ArpMode::Request, MAC, ip), ip, MAC));
        assert!(!shows_other_owner(&ArpPacket::probe(other, ip), ip, MAC));
    }
}
