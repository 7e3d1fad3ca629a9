//! Filesystem types: which ones this kernel can mount (/proc/filesystems, or a module the kernel
//! would load on the first mount), and the one superblock fact an fsck decision needs.

use std::fs;
use std::io::Read;
use std::path::Path;

/// Filesystem type names Linux knows: the kernel's own (the names its filesystems register,
/// as /proc/filesystems lists them) and the common out-of-tree ones. Which of them a node can
/// mount is a fact of that node (`lookup`); this list only tells a typo from a name.
#[rustfmt::skip]
pub const KNOWN: &[&str] = &[
    "9p", "adfs", "affs", "afs", "anon_inodefs", "autofs", "bcachefs", "bdev", "befs", "bfs", "binder",
    "binfmt_misc", "bpf", "btrfs", "ceph", "cgroup", "cgroup2", "cifs", "coda", "configfs", "cpuset",
    "cramfs", "dax", "debugfs", "devpts", "devtmpfs", "ecryptfs", "efivarfs", "efs", "erofs", "exfat",
    "ext2", "ext3", "ext4", "f2fs", "fuse", "fuseblk", "fusectl", "gfs2", "gfs2meta", "hfs", "hfsplus",
    "hostfs", "hpfs", "hugetlbfs", "iso9660", "jffs2", "jfs", "minix", "mqueue", "msdos", "nfs", "nfs4",
    "nfsd", "nilfs2", "nsfs", "ntfs", "ntfs3", "ocfs2", "ocfs2_dlmfs", "omfs", "openpromfs", "orangefs",
    "overlay", "pipefs", "proc", "pstore", "qnx4", "qnx6", "ramfs", "reiserfs", "resctrl", "romfs", "rootfs",
    "rpc_pipefs", "secretmem", "securityfs", "selinuxfs", "smackfs", "smb3", "sockfs", "squashfs", "sysfs",
    "sysv", "tmpfs", "tracefs", "ubifs", "udf", "ufs", "v7", "vboxsf", "vfat", "virtiofs", "vxfs", "xenfs",
    "xfs", "zonefs",
    // Out of tree.
    "zfs", "lustre", "gpfs", "beegfs", "aufs", "vmhgfs",
];

/// The known name `fstype` is one typing slip away from (`ext44` → `ext4`, `xsf` → `xfs`), if
/// it is not itself known: such a name is a typo on every node, whatever their kernels have.
/// Names further from every known one (an exotic module, a FUSE subtype) are left to the node.
pub fn typo_of(fstype: &str) -> Option<&'static str> {
    if KNOWN.contains(&fstype) || fstype.starts_with("fuse.") {
        return None;
    }
    KNOWN.iter().copied().find(|k| crate::suggest::distance(fstype, k) == 1)
}

/// One line of /proc/filesystems: `nodev\ttmpfs` or `\text4`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsType {
    pub name: String,
    /// Needs no block device (tmpfs, nfs, fuse...).
    pub nodev: bool,
}

pub fn parse_proc_filesystems(text: &str) -> Vec<FsType> {
    text.lines()
        .filter_map(|l| {
            let (flag, name) = l.split_once('\t')?;
            let name = name.trim();
            (!name.is_empty()).then(|| FsType { name: name.to_string(), nodev: flag.trim() == "nodev" })
        })
        .collect()
}

/// Whether modules.alias offers a module for `fs-<fstype>`, the alias the kernel requests when a
/// mount names a type it does not have yet.
pub fn alias_offers(modules_alias: &str, fstype: &str) -> bool {
    let wanted = format!("fs-{fstype}");
    modules_alias.lines().any(|l| {
        let mut f = l.split_whitespace();
        f.next() == Some("alias") && f.next() == Some(wanted.as_str())
    })
}

/// What the running kernel says about `fstype`: Some(type) if registered, or if a module for it
/// is installed (it is registered then with `nodev` unknown: assume a block filesystem).
pub fn lookup(fstype: &str) -> Option<FsType> {
    let registered = fs::read_to_string("/proc/filesystems").unwrap_or_default();
    if let Some(t) = parse_proc_filesystems(&registered).into_iter().find(|t| t.name == fstype) {
        return Some(t);
    }
    let release = fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    let release = release.trim();
    let aliases = fs::read_to_string(format!("/lib/modules/{release}/modules.alias")).unwrap_or_default();
    alias_offers(&aliases, fstype).then(|| FsType { name: fstype.to_string(), nodev: false })
}

/// What an ext2/3/4 superblock says about the need for a check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExtState {
    pub has_journal: bool,
    /// Unmounted cleanly last time (s_state VALID, no ERROR bit).
    pub clean: bool,
}

const EXT_SUPER_OFFSET: usize = 1024;
const EXT_MAGIC: u16 = 0xEF53;

/// Parses the ext superblock from the first 2 KiB of a device; None if it is not ext2/3/4.
pub fn parse_ext_superblock(head: &[u8]) -> Option<ExtState> {
    let sb = head.get(EXT_SUPER_OFFSET..EXT_SUPER_OFFSET + 1024)?;
    let u16_at = |o: usize| u16::from_le_bytes([sb[o], sb[o + 1]]);
    let u32_at = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
    if u16_at(0x38) != EXT_MAGIC {
        return None;
    }
    let state = u16_at(0x3A);
    let has_journal = u32_at(0x5C) & 0x4 != 0;
    Some(ExtState { has_journal, clean: state & 0x1 != 0 && state & 0x2 == 0 })
}

/// Reads the ext superblock of a device (None: not ext, or unreadable).
pub fn ext_state(device: &Path) -> Option<ExtState> {
    let mut head = vec![0u8; 2048];
    fs::File::open(device).ok()?.read_exact(&mut head).ok()?;
    parse_ext_superblock(&head)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_of_known_types() {
        assert_eq!(typo_of("ext44"), Some("ext4"));
        assert_eq!(typo_of("xsf"), Some("xfs"));
        assert_eq!(typo_of("btfrs"), Some("btrfs"));
        assert_eq!(typo_of("ext4"), None);
        assert_eq!(typo_of("ntfs-3g"), None, "two edits from ntfs3: a name of its own");
        assert_eq!(typo_of("fuse.sshfs"), None);
        assert_eq!(typo_of("myclusterfs"), None, "unknown, but no typo of a known name");
        // The running kernel's own types are all known or far from every known one.
        let here = std::fs::read_to_string("/proc/filesystems").unwrap_or_default();
        for t in parse_proc_filesystems(&here) {
            assert_eq!(typo_of(&t.name), None, "{} is registered here", t.name);
        }
    }

    #[test]
    fn parses_proc_filesystems() {
        let t = parse_proc_filesystems("nodev\tsysfs\nnodev\ttmpfs\n\text4\n\txfs\nnodev\tfuse\n");
        assert_eq!(t.len(), 5);
        assert_eq!(t[2], FsType { name: "ext4".into(), nodev: false });
        assert!(t[1].nodev);
    }

    #[test]
    fn finds_filesystem_module_aliases() {
        let aliases = "alias fs-xfs xfs\nalias fs-btrfs btrfs\nalias devname:fuse fuse\n";
        assert!(alias_offers(aliases, "xfs"));
        assert!(!alias_offers(aliases, "fuse"));
        assert!(!alias_offers(aliases, "xf"));
    }

    fn superblock(state: u16, compat: u32) -> Vec<u8> {
        let mut head = vec![0u8; 2048];
        head[1024 + 0x38..1024 + 0x3A].copy_from_slice(&EXT_MAGIC.to_le_bytes());
        head[1024 + 0x3A..1024 + 0x3C].copy_from_slice(&state.to_le_bytes());
        head[1024 + 0x5C..1024 + 0x60].copy_from_slice(&compat.to_le_bytes());
        head
    }

    #[test]
    fn reads_journal_and_clean_state_from_ext_superblock() {
        assert_eq!(parse_ext_superblock(&superblock(1, 0x3c)), Some(ExtState { has_journal: true, clean: true }));
        assert_eq!(parse_ext_superblock(&superblock(1, 0x38)), Some(ExtState { has_journal: false, clean: true }));
        assert_eq!(parse_ext_superblock(&superblock(3, 0x3c)), Some(ExtState { has_journal: true, clean: false }));
        assert_eq!(parse_ext_superblock(&vec![0u8; 2048]), None);
        assert_eq!(parse_ext_superblock(&[0u8; 100]), None);
    }
}
