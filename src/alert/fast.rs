//! The routine-event exit. Most alerts are routine (a monitor confirming "running", a cancelled
//! recurring operation) and the agent must cost about what `/bin/true` costs for them, so the
//! decision is taken in an ELF constructor (`.init_array`, run by glibc with argc/argv before
//! Rust's runtime sets up the main thread's stack guard and signal stack): no allocation, no
//! Rust runtime, `_exit(0)`. Every other run, and every other applet, returns from here at once.

use std::ffi::{c_char, c_int, CStr};

/// Called by glibc before `main` with the process's argc and argv (see `main.rs`).
///
/// # Safety
/// `argv` must be the process's argument vector as glibc passes it to `.init_array` functions.
pub unsafe extern "C" fn routine_exit(argc: c_int, argv: *const *const c_char, _envp: *const *const c_char) {
    if argc < 1 || argv.is_null() {
        return;
    }
    // SAFETY: glibc passes the process's argv, whose first entry is a NUL-terminated string.
    let arg0 = unsafe { *argv };
    if arg0.is_null() {
        return;
    }
    let arg0 = unsafe { CStr::from_ptr(arg0) }.to_bytes();
    if arg0.rsplit(|&b| b == b'/').next() != Some(b"alert".as_slice()) {
        return;
    }
    if super::event::routine(alert_var).is_some() {
        // SAFETY: ends the process; nothing has been buffered or started yet.
        unsafe { libc::_exit(0) };
    }
}

/// `CRM_alert_<name>` from the environment, without allocating (names are short constants).
fn alert_var(name: &str) -> Option<&'static str> {
    const PREFIX: &[u8] = b"CRM_alert_";
    let mut buf = [0u8; 64];
    if PREFIX.len() + name.len() + 1 > buf.len() {
        return None;
    }
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    buf[PREFIX.len()..PREFIX.len() + name.len()].copy_from_slice(name.as_bytes());
    // SAFETY: buf is NUL-terminated; getenv's result points into the environment, which nothing
    // modifies before this constructor returns.
    let value = unsafe { libc::getenv(buf.as_ptr().cast()) };
    if value.is_null() {
        return None;
    }
    unsafe { CStr::from_ptr(value) }.to_str().ok()
}
