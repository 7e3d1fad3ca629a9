//! Networking edges: netlink, ARP / neighbour advertisements, probes.

pub mod arp;
pub mod http;
pub mod ndisc;
pub mod netlink;
pub mod packet;
pub mod sockdiag;
