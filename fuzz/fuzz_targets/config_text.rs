//! Text an administrator writes that the agents split themselves: a command parameter split
//! into words without a shell (src/sys/argv.rs: app's start_command...), a mount option string
//! (src/sys/mount_options.rs: filesystem's options), Apache's envvars file (agents/apache.rs),
//! corosync.conf's cluster name (src/alert), HAProxy's `stats socket` line.
//!
//! Properties: nothing panics or grows without bound (envvars expansion stays proportionate
//! to the file); words quoted as the README tells administrators split back to themselves;
//! mount options refuse what mount(2) cannot do and keep every option they pass on.

#![no_main]

use std::collections::BTreeMap;

use hastack::sys::{argv, mount_options};
use libfuzzer_sys::fuzz_target;

/// Single quotes, as a shell user would write a word (`'` as `'\''`).
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(words) = argv::split(&text) {
        let line = words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" ");
        assert_eq!(argv::split(&line).as_deref(), Ok(words.as_slice()), "{line}");
    }
    let words: Vec<String> = text.split('\0').map(str::to_string).collect();
    let line = words.iter().map(|w| quote(w)).collect::<Vec<_>>().join(" \t\n");
    assert_eq!(argv::split(&line), Ok(words));

    if let Ok(opts) = mount_options::parse(&text) {
        for o in opts.data.split(',').filter(|o| !o.is_empty()) {
            assert!(text.contains(o), "{o}");
        }
    }

    let initial = BTreeMap::from([("SUFFIX".to_string(), String::new())]);
    let vars = hastack::agents::apache::parse_envvars(&text, &initial);
    let total: usize = vars.values().map(String::len).sum();
    assert!(total <= 64 * 1024 + 64 * text.len(), "{total} bytes of variables from {} bytes", text.len());

    let _ = hastack::alert::parse_cluster_name(&text);
    let _ = hastack::agents::haproxy::stats_socket_in_config(&text);
});
