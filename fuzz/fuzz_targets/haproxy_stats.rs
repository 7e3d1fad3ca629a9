//! What HAProxy answers on its stats socket (`show info`, `show stat` CSV), and the
//! `stats socket` line of its configuration, as the haproxy agent reads them (agents/haproxy.rs).
//!
//! Properties: nothing panics; the depth-10 verdict is an error exactly when a backend has no server
//! UP, degraded exactly when one is DOWN.

#![no_main]

use hastack::agents::haproxy::{info_field, judge, parse_stat, parse_stats_addr, stats_socket_in_config};
use hastack::ocf::OcfStatus;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for name in ["Pid", "Uptime_sec", "Stopping", "Version"] {
        if let Some(v) = info_field(&text, name) {
            assert_eq!(v, v.trim());
        }
    }
    if let Some(addr) = stats_socket_in_config(&text) {
        let _ = parse_stats_addr(&addr);
    }
    for line in text.lines() {
        let _ = parse_stats_addr(line);
    }
    if let Ok(backends) = parse_stat(&text) {
        match judge(&backends) {
            Ok(status) => {
                assert!(backends.iter().all(|b| !b.up.is_empty() && b.down.is_empty()));
                assert_eq!(status, OcfStatus::Success);
            }
            Err(e) if e.status == OcfStatus::Degraded => {
                assert!(backends.iter().all(|b| !b.up.is_empty()) && backends.iter().any(|b| !b.down.is_empty()));
            }
            Err(e) => {
                assert_eq!(e.status, OcfStatus::ErrGeneric);
                assert!(backends.iter().any(|b| b.up.is_empty()));
            }
        }
    }
});
