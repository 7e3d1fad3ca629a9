//! Networking edges: netlink, ARP / neighbour advertisements, probes.
