//! hastack: Pacemaker OCF resource agents and a UPS fence agent in one binary.
//!
//! `applets` dispatches on the name the binary was called under; `ocf` is the runtime every
//! resource agent uses; `sys` and `net` hold the I/O edges (processes, mounts, logging, netlink).
//! The agents themselves live in the top-level `agents/` folder, the fence agent in `fence/`.

pub mod agent;
pub mod alert;
pub mod applets;
pub mod cli;
pub mod config;
pub mod console;
pub mod doc;
pub mod lab;
pub mod net;
pub mod ocf;
pub mod suggest;
pub mod sys;

#[path = "../agents/mod.rs"]
pub mod agents;
#[path = "../fence/mod.rs"]
pub mod fence;
