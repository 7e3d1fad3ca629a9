//! Fence agents (DESIGN.md §4).

use std::ffi::OsString;

/// A fence agent's entry point: the whole argv in, the exit code out.
pub type FenceMain = fn(&[OsString]) -> i32;

/// Every fence agent: its name (the link under /usr/sbin) and its entry point.
pub static FENCE_AGENTS: &[(&str, FenceMain)] = &[];

/// Man pages of the fence agents, `(name, roff)`, for `hastack doc`.
pub fn man_pages() -> Vec<(&'static str, String)> {
    Vec::new()
}
