//! Networking edges: netlink, ARP / neighbour advertisements, probes.

pub mod http;
