//! Claiming an IPv4 or IPv6 address on a link, as RFC 5227 describes it: probes that ask whether
//! another host owns the address (ARP from 0.0.0.0; a neighbour solicitation from `::`),
//! announcements that tell the link it is ours (gratuitous ARP; unsolicited neighbour
//! advertisements), and watching what comes back for another owner. One packet socket does all
//! three; opened before the address is added, it queues every answer from the first probe on, so
//! nothing is missed between the agent's start and the process that keeps watching.

use std::cell::OnceCell;
use std::io;
use std::net::IpAddr;
use std::time::Instant;

use crate::net::arp::{self, ArpMode, ArpPacket};
use crate::net::packet::{PacketSocket, BROADCAST_MAC, ETH_P_ARP, ETH_P_IPV6};
use crate::net::{ndisc, netlink};

pub struct Claim {
    socket: PacketSocket,
    ip: IpAddr,
    mac: [u8; 6],
    mode: ArpMode,
    /// The MACs of this host's interfaces, looked up when the first candidate shows up: with two
    /// interfaces on one link, Linux answers ARP for any of its addresses on either of them
    /// (arp_ignore 0), so once the address is added our own host would look like another owner.
    own_macs: OnceCell<Vec<[u8; 6]>>,
}

impl Claim {
    /// A claim of `ip` by `mac` on interface `ifindex` (CAP_NET_RAW). `mode` is the form of the
    /// IPv4 announcements.
    pub fn open(ifindex: u32, mac: [u8; 6], ip: IpAddr, mode: ArpMode) -> io::Result<Claim> {
        let ethertype = if ip.is_ipv4() { ETH_P_ARP } else { ETH_P_IPV6 };
        Ok(Claim { socket: PacketSocket::open(ifindex, ethertype)?, ip, mac, mode, own_macs: OnceCell::new() })
    }

    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// Asks the link whether anyone holds the address, without claiming it (no cache learns
    /// anything from a probe). Another owner answers it.
    pub fn probe(&self) -> io::Result<()> {
        match self.ip {
            IpAddr::V4(v4) => self.socket.send(&ArpPacket::probe(self.mac, v4).encode(), BROADCAST_MAC),
            IpAddr::V6(v6) => {
                self.socket.send(&ndisc::dad_solicitation(v6), ndisc::multicast_mac(ndisc::solicited_node(v6)))
            }
        }
    }

    /// Tells the link that the address is at our MAC.
    pub fn announce(&self) -> io::Result<()> {
        match self.ip {
            IpAddr::V4(v4) => {
                self.socket.send(&ArpPacket::announcement(self.mode, self.mac, v4).encode(), BROADCAST_MAC)
            }
            IpAddr::V6(v6) => {
                self.socket.send(&ndisc::advertisement(v6, self.mac), ndisc::multicast_mac(ndisc::ALL_NODES))
            }
        }
    }

    /// Reads what arrives until `until` (when that has passed: only what is already queued) and
    /// returns the MAC of another owner as soon as a frame shows one: an ARP packet whose sender
    /// is the address (an answer to our probe, or their own announcement), or an overriding
    /// neighbour advertisement for it, from a MAC that is not one of this host's.
    pub fn other_owner(&self, until: Instant) -> io::Result<Option<[u8; 6]>> {
        let mut buf = [0u8; 2048];
        while let Some((n, origin)) = self.socket.recv_until(&mut buf, until)? {
            if origin.outgoing {
                continue;
            }
            let owner = match self.ip {
                IpAddr::V4(v4) => ArpPacket::decode(&buf[..n])
                    .filter(|p| arp::shows_other_owner(p, v4, self.mac))
                    .map(|p| p.sender_mac),
                IpAddr::V6(v6) => ndisc::other_owner(&buf[..n], origin.src_mac, v6, self.mac),
            };
            if let Some(mac) = owner.filter(|m| !self.is_own(m)) {
                return Ok(Some(mac));
            }
        }
        Ok(None)
    }

    fn is_own(&self, mac: &[u8; 6]) -> bool {
        self.own_macs
            .get_or_init(|| {
                netlink::links().map(|l| l.iter().filter_map(|l| l.ethernet_mac()).collect()).unwrap_or_default()
            })
            .contains(mac)
    }
}

/// The probe phase before an address is taken (RFC 5227 §2.1.1): `probes` probes spread over the
/// time up to `until` (the first at once, the last leaving a share of the time for its answer),
/// listening until then. Returns the other owner's MAC, or None if nobody answered.
pub fn probe_owner(claim: &Claim, probes: u32, until: Instant) -> io::Result<Option<[u8; 6]>> {
    let start = Instant::now();
    let probes = probes.max(1);
    let step = until.saturating_duration_since(start) / (probes + 1);
    for k in 0..probes {
        claim.probe()?;
        let next = if k + 1 < probes { (start + step * (k + 1)).min(until) } else { until };
        if let Some(mac) = claim.other_owner(next)? {
            return Ok(Some(mac));
        }
    }
    Ok(None)
}
