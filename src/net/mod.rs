//! Networking edges: netlink, ARP / neighbour advertisements, and the probes that speak each
//! service's own protocol with a deadline on every step.

pub mod amqp;
pub mod arp;
pub mod claim;
pub mod http;
pub mod mywire;
pub mod ndisc;
pub mod netlink;
pub mod packet;
pub mod pgwire;
pub mod scram;
pub mod sockdiag;
pub mod stomp;
pub mod unix;
pub mod wire;
