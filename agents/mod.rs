//! The OCF resource agents, one module each (DESIGN.md §2). Each holds its parameter table and
//! its actions; everything shared lives in the `ocf`, `sys` and `net` runtime modules.

use crate::ocf::Agent;

pub mod drbd;
pub mod filesystem;
pub mod vip;

/// Every OCF agent, in the order `hastack list` shows them.
pub static AGENTS: &[&dyn Agent] = &[&vip::Vip, &filesystem::FILESYSTEM, &drbd::Drbd];
