//! Fence agents (DESIGN.md §4).
//!
//! `fence_ups` cuts a node's power through its UPS. Pure parts: `args` (the argument contract
//! and the option table), `config` (checks), `metadata`, `apcsmart` (protocol encode/parse).
//! I/O edges: `serial` (the locked port), `smart_ups` (APC dialogue), `nut` (upsd client).
//! `ups` holds the transport-independent off/on/confirm logic; `sim` a simulated APC UPS.

use std::ffi::OsString;

pub mod apcsmart;
pub mod args;
pub mod config;
pub mod fence_ups;
pub mod log;
pub mod metadata;
pub mod nut;
pub mod serial;
pub mod sim;
pub mod smart_ups;
pub mod ups;

/// A fence agent's entry point: the whole argv in, the exit code out.
pub type FenceMain = fn(&[OsString]) -> i32;

/// Every fence agent: its name (the link under /usr/sbin) and its entry point.
pub static FENCE_AGENTS: &[(&str, FenceMain)] = &[("fence_ups", fence_ups::main)];

/// Man pages of the fence agents, `(name, roff)`, for `hastack doc`.
pub fn man_pages() -> Vec<(&'static str, String)> {
    vec![(fence_ups::NAME, metadata::man_page(fence_ups::NAME))]
}
