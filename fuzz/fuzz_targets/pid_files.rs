//! PID and lock files other programs (or a crash) leave behind, as the agents read them:
//! postmaster.pid (agents/postgresql.rs), a daemon's PID file and the agents' identity state
//! files (src/sys/daemon.rs), the UUCP lock file of the UPS's serial port, in its ASCII and
//! its old binary form (fence/serial.rs).
//!
//! Properties: nothing panics; a PID read from a file is positive; what the agents write
//! themselves (an identity line, an HDB lock file) reads back as written.

#![no_main]

use std::path::Path;

use hastack::agents::postgresql::parse_pidfile;
use hastack::agents::service::instance::adopt_from_pidfile;
use hastack::fence::serial::parse_lock_pid;
use hastack::sys::identity::{load_live_identity, read_pidfile, Identity};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(pf) = parse_pidfile(&text) {
        assert_eq!(Some(pf.pid), text.lines().next().and_then(|l| l.trim().parse().ok()));
    }
    if let Some(pid) = parse_lock_pid(data) {
        assert!(pid > 0);
    }
    let _ = Identity::parse(&text);

    let file = hastack_fuzz::memory_file(data);
    if let Some(pid) = read_pidfile(&file) {
        assert!(pid > 0);
    }
    let _ = load_live_identity(&file);
    let _ = adopt_from_pidfile(file.to_str(), "/usr/sbin/nginx");
    assert_eq!(read_pidfile(Path::new("/nonexistent/hastack-fuzz.pid")), None);

    // What hastack writes reads back: numbers taken from the input.
    let mut n = [0u8; 12];
    for (i, b) in data.iter().take(12).enumerate() {
        n[i] = *b;
    }
    let pid = i32::from_le_bytes([n[0], n[1], n[2], n[3]]);
    let starttime = u64::from_le_bytes([n[4], n[5], n[6], n[7], n[8], n[9], n[10], n[11]]);
    let id = Identity { pid, starttime };
    assert_eq!(Identity::parse(&id.to_line()), Some(id));
    if pid > 0 {
        assert_eq!(parse_lock_pid(format!("{pid:>10}\n").as_bytes()), Some(pid));
    }
    // The old binary form, for any PID the kernel can give (PID_MAX_LIMIT is 2^22).
    if pid > 0 && pid < 1 << 22 {
        assert_eq!(parse_lock_pid(&pid.to_ne_bytes()), Some(pid));
    }
});
