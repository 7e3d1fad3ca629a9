//! Networking edges: netlink, ARP / neighbour advertisements, probes.

pub mod amqp;
pub mod http;
pub mod mywire;
pub mod pgwire;
pub mod sockdiag;
pub mod stomp;
pub mod unix;
pub mod wire;
