//! What the kernel shows the agents in /proc and on a device (src/sys): /proc/PID/stat lines
//! (a `comm` may hold spaces and parentheses), /proc/net/tcp, /proc/self/mountinfo with its
//! octal escapes, /proc/PID/maps and fdinfo, /proc/filesystems, modules.alias, an ext
//! superblock, /proc/drbd's version line. A process can name itself anything, a mount point can
//! be any path: these texts carry what users chose.
//!
//! Properties: nothing panics or hangs (the mount-tree walk ends whatever the parent links
//! say); a mountinfo line written with the kernel's escapes reads back its fields; the mounts
//! found at, below and containing a path are consistent with the table.

#![no_main]

use std::path::Path;

use hastack::sys::fs_types::{alias_offers, parse_ext_superblock, parse_proc_filesystems};
use hastack::sys::holders::{parse_fdinfo_mnt_id, parse_maps};
use hastack::sys::mount::{self, mount_containing, mounted_at, mounted_below, subtree_post_order, unescape};
use hastack::sys::proc::parse_stat;
use libfuzzer_sys::fuzz_target;

/// The kernel's escaping of a mountinfo field (space, tab, newline, backslash as octal).
fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' ' | '\t' | '\n' | '\\' => format!("\\{:03o}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_ext_superblock(data);
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Some(s) = parse_stat(line) {
            assert!(line.contains(&format!("({})", s.comm)));
        }
    }
    let _ = hastack::sys::listeners::parse_listeners(&text);
    let _ = parse_fdinfo_mnt_id(&text);
    let _ = parse_maps(&text);
    let _ = parse_proc_filesystems(&text);
    let _ = alias_offers(&text, "ext4");
    let _ = hastack::agents::drbd::state::parse_proc_version(&text);

    let table = mount::parse(&text);
    for m in table.iter().take(8) {
        let _ = subtree_post_order(&table, m.mount_id);
        if let Some(at) = mounted_at(&table, &m.mount_point) {
            assert_eq!(at.mount_point, m.mount_point);
        }
        for below in mounted_below(&table, &m.mount_point) {
            assert!(below.mount_point.starts_with(&m.mount_point) && below.mount_point != m.mount_point);
        }
        let inside = m.mount_point.join("x");
        let c = mount_containing(&table, &inside).expect("a path inside a mount point lies on a mount");
        assert!(inside.starts_with(&c.mount_point));
    }
    let _ = mount_containing(&table, Path::new("/srv/data"));

    // A mount point with any characters, written as the kernel writes it, reads back.
    let point = format!("/{}", text.lines().next().unwrap_or(""));
    let line = format!("36 22 7:0 / {} rw,relatime shared:20 - ext4 /dev/loop0 rw", escape(&point));
    let m = mount::parse_line(&line).unwrap_or_else(|| panic!("{line}"));
    assert_eq!(m.mount_point, Path::new(&point));
    assert_eq!(unescape(&escape(&point)), point);
});
