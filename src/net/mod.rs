//! Networking edges: netlink, ARP / neighbour advertisements, probes.

pub mod http;
pub mod sockdiag;
