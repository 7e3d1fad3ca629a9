//! Which processes hold a mount busy: their working directory, root, executable, open files
//! or memory-mapped files lie on it. A native replacement for `fuser -m`, matched by **mount
//! identity** (the mount ID of mountinfo), never by path prefix or device number: a process
//! using the same filesystem through a bind mount elsewhere uses another mount and is never
//! reported (resource-agents #1304: `fuser -m` on a bind mount kills every user of `/`).
//!
//! Two ways to learn the mount of a reference:
//! - [`Method::Exact`]: `statx(STATX_MNT_ID)` through the /proc magic links. Exact in every
//!   mount namespace, but the path walk may ask the filesystem to revalidate (a hung NFS server
//!   blocks it).
//! - [`Method::ProcOnly`]: nothing but /proc text: `mnt_id:` of fdinfo for open files (exact),
//!   and for cwd/root/exe/maps the link's path resolved against the mount table. The kernel
//!   prints those paths through the mount they were reached by (a bind mount shows its own
//!   path), so the longest mount point prefix names the mount; processes in another mount
//!   namespace are judged by their open files only. Never calls into the filesystem.

use std::fs;
use std::path::{Path, PathBuf};

use crate::ocf::Deadline;
use crate::sys::mount::{mount_containing, MountInfo};
use crate::sys::proc;

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Exact,
    ProcOnly,
}

/// How a process uses the mount.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Use {
    Cwd,
    Root,
    Exe,
    Fd(u32),
    Mmap,
}

impl std::fmt::Display for Use {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Use::Cwd => write!(f, "cwd"),
            Use::Root => write!(f, "root"),
            Use::Exe => write!(f, "exe"),
            Use::Fd(n) => write!(f, "fd {n}"),
            Use::Mmap => write!(f, "mmap"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: i32,
    pub comm: String,
    /// With the PID, the identity to check before signalling (PIDs are reused).
    pub starttime: u64,
    pub uses: Vec<Use>,
    /// This process, one of its ancestors, or init: reported, never signalled.
    pub protected: bool,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let uses: Vec<String> = self.uses.iter().take(4).map(|u| u.to_string()).collect();
        let more = if self.uses.len() > 4 { ", ..." } else { "" };
        write!(f, "{} ({}: {}{more})", self.pid, self.comm, uses.join(", "))
    }
}

/// The result of one /proc scan.
#[derive(Debug, Default)]
pub struct Scan {
    pub holders: Vec<Holder>,
    /// False if the deadline cut the scan short: holders may be missing.
    pub complete: bool,
}

impl Scan {
    /// The holders that may be signalled.
    pub fn killable(&self) -> Vec<&Holder> {
        self.holders.iter().filter(|h| !h.protected).collect()
    }
}

/// Lists holders: `"1234 (sleep: cwd), 1240 (cat: fd 3)"`, at most `max`, then how many more.
pub fn describe(holders: &[&Holder], max: usize) -> String {
    let mut parts: Vec<String> = holders.iter().take(max).map(|h| h.to_string()).collect();
    if holders.len() > max {
        parts.push(format!("and {} more", holders.len() - max));
    }
    parts.join(", ")
}

// ---- pure parsers -------------------------------------------------------------------------

/// The `mnt_id:` field of /proc/PID/fdinfo/N.
pub fn parse_fdinfo_mnt_id(text: &str) -> Option<u32> {
    text.lines().find_map(|l| l.strip_prefix("mnt_id:")).and_then(|v| v.trim().parse().ok())
}

/// A file-backed mapping of /proc/PID/maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapEntry {
    pub start: u64,
    pub end: u64,
    pub major: u32,
    pub minor: u32,
    pub path: PathBuf,
}

impl MapEntry {
    /// Its name in /proc/PID/map_files (unpadded hex, unlike maps).
    pub fn map_files_name(&self) -> String {
        format!("{:x}-{:x}", self.start, self.end)
    }
}

/// File-backed mappings (inode not 0) of /proc/PID/maps:
/// `7f00-7f10 r-xp 00000000 07:00 12 /srv/data/lib.so`.
pub fn parse_maps(text: &str) -> Vec<MapEntry> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.splitn(6, ' ');
            let (start, end) = f.next()?.split_once('-')?;
            let _perms = f.next()?;
            let _offset = f.next()?;
            let (major, minor) = f.next()?.split_once(':')?;
            let inode: u64 = f.next()?.parse().ok()?;
            let path = f.next()?.trim_start();
            if inode == 0 || !path.starts_with('/') {
                return None;
            }
            Some(MapEntry {
                start: u64::from_str_radix(start, 16).ok()?,
                end: u64::from_str_radix(end, 16).ok()?,
                major: u32::from_str_radix(major, 16).ok()?,
                minor: u32::from_str_radix(minor, 16).ok()?,
                path: PathBuf::from(strip_deleted(path)),
            })
        })
        .collect()
}

/// The path of a /proc link without the kernel's ` (deleted)` suffix.
pub fn strip_deleted(link: &str) -> &str {
    link.strip_suffix(" (deleted)").unwrap_or(link)
}

/// The mount ID a /proc link path lies on, by the mount table (ProcOnly method).
pub fn mount_id_of_link(table: &[MountInfo], link: &str) -> Option<u32> {
    let path = Path::new(strip_deleted(link));
    path.is_absolute().then(|| mount_containing(table, path).map(|m| m.mount_id)).flatten()
}

// ---- the scan -----------------------------------------------------------------------------

/// The mount ID of the file a /proc magic link points to, by statx (Exact method).
/// AT_STATX_DONT_SYNC: take cached attributes, do not ask a network filesystem's server.
fn statx_mount_id(path: &Path) -> Option<u32> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut buf = std::mem::MaybeUninit::<libc::statx>::zeroed();
    // SAFETY: c_path is a valid NUL-terminated string and buf points to a statx struct the
    // kernel fills; both outlive the call.
    let rc = unsafe {
        libc::statx(libc::AT_FDCWD, c_path.as_ptr(), libc::AT_STATX_DONT_SYNC, libc::STATX_MNT_ID, buf.as_mut_ptr())
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: statx returned 0, so it initialised the struct.
    let stx = unsafe { buf.assume_init() };
    (stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id as u32)
}

/// This process, its ancestors and init: never signalled, whatever they hold.
pub fn protected_pids() -> Vec<i32> {
    let mut pids = vec![1];
    let mut pid = std::process::id() as i32;
    while pid > 1 && !pids.contains(&pid) {
        pids.push(pid);
        pid = proc::stat(pid).map_or(0, |s| s.ppid);
    }
    pids
}

/// Everything that tells which mounts the targets are.
struct Targets<'a> {
    ids: &'a [u32],
    /// Device numbers of the target mounts: a mapping on another device cannot be on them, so
    /// only mappings on these are looked at more closely.
    devs: Vec<(u32, u32)>,
    table: &'a [MountInfo],
    method: Method,
    own_mnt_ns: Option<PathBuf>,
}

impl Targets<'_> {
    fn link_on_target(&self, pid: i32, link: &str, same_ns: bool) -> bool {
        let proc_path = PathBuf::from(format!("/proc/{pid}/{link}"));
        let id = match self.method {
            Method::Exact => statx_mount_id(&proc_path),
            Method::ProcOnly if same_ns => {
                fs::read_link(&proc_path).ok().and_then(|p| mount_id_of_link(self.table, &p.to_string_lossy()))
            }
            Method::ProcOnly => None,
        };
        id.is_some_and(|id| self.ids.contains(&id))
    }

    fn uses_of(&self, pid: i32, deadline: &Deadline) -> Vec<Use> {
        let mut uses = Vec::new();
        let same_ns = self.own_mnt_ns.is_some() && fs::read_link(format!("/proc/{pid}/ns/mnt")).ok() == self.own_mnt_ns;
        for (link, u) in [("cwd", Use::Cwd), ("root", Use::Root), ("exe", Use::Exe)] {
            if self.link_on_target(pid, link, same_ns) {
                uses.push(u);
            }
        }
        // Open files: fdinfo's mnt_id is exact and costs no filesystem call.
        if let Ok(dir) = fs::read_dir(format!("/proc/{pid}/fdinfo")) {
            for entry in dir.flatten() {
                let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
                let on_target = fs::read_to_string(entry.path())
                    .ok()
                    .and_then(|t| parse_fdinfo_mnt_id(&t))
                    .is_some_and(|id| self.ids.contains(&id));
                if on_target {
                    uses.push(Use::Fd(fd));
                }
                if fd % 256 == 255 && deadline.expired() {
                    break;
                }
            }
        }
        if let Ok(maps) = fs::read_to_string(format!("/proc/{pid}/maps")) {
            let mapped = parse_maps(&maps).into_iter().filter(|m| self.devs.contains(&(m.major, m.minor))).any(|m| {
                match self.method {
                    Method::Exact => {
                        statx_mount_id(&PathBuf::from(format!("/proc/{pid}/map_files/{}", m.map_files_name())))
                            .is_some_and(|id| self.ids.contains(&id))
                    }
                    Method::ProcOnly => {
                        same_ns
                            && mount_id_of_link(self.table, &m.path.to_string_lossy())
                                .is_some_and(|id| self.ids.contains(&id))
                    }
                }
            });
            if mapped {
                uses.push(Use::Mmap);
            }
        }
        uses
    }
}

/// Every process (but this one) using one of the mounts `mount_ids` of `table`. Bounded by the
/// deadline: a scan cut short says so in [`Scan::complete`].
pub fn find_holders(mount_ids: &[u32], table: &[MountInfo], method: Method, deadline: Deadline) -> Scan {
    let targets = Targets {
        ids: mount_ids,
        devs: table.iter().filter(|m| mount_ids.contains(&m.mount_id)).map(|m| (m.major, m.minor)).collect(),
        table,
        method,
        own_mnt_ns: fs::read_link("/proc/self/ns/mnt").ok(),
    };
    let me = std::process::id() as i32;
    let protected = protected_pids();
    let mut scan = Scan { holders: Vec::new(), complete: true };
    for pid in proc::all_pids() {
        if deadline.expired() {
            scan.complete = false;
            break;
        }
        let Some(stat) = proc::stat(pid) else { continue };
        // Ourselves; kernel threads (kthreadd, pid 2, and its children) hold no files.
        if pid == me || pid == 2 || stat.ppid == 2 {
            continue;
        }
        let uses = targets.uses_of(pid, &deadline);
        if !uses.is_empty() {
            scan.holders.push(Holder {
                pid,
                comm: stat.comm,
                starttime: stat.starttime,
                uses,
                protected: protected.contains(&pid),
            });
        }
    }
    scan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::mount::parse;
    use std::time::Duration;

    const TABLE: &str = "\
22 1 8:1 / / rw - ext4 /dev/sda1 rw
36 22 7:0 / /srv/data rw - ext4 /dev/loop0 rw
37 22 7:0 / /mnt/bind rw - ext4 /dev/loop0 rw
38 36 0:40 / /srv/data/tmp rw - tmpfs tmpfs rw
";

    #[test]
    fn reads_mnt_id_from_fdinfo() {
        assert_eq!(parse_fdinfo_mnt_id("pos:\t0\nflags:\t0100002\nmnt_id:\t36\nino:\t12\n"), Some(36));
        assert_eq!(parse_fdinfo_mnt_id("pos:\t0\n"), None);
    }

    #[test]
    fn parses_file_backed_maps_only() {
        let maps = "\
00400000-00452000 r-xp 00000000 07:00 173521     /srv/data/bin/app
7f2c4a000000-7f2c4a021000 rw-p 00000000 00:00 0 
7f2c4b000000-7f2c4b001000 r--p 00000000 fd:01 99 /mnt/bind/data file (deleted)
7ffd5e000000-7ffd5e021000 rw-p 00000000 00:00 0                          [stack]
";
        let m = parse_maps(maps);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].major, m[0].minor), (7, 0));
        assert_eq!(m[0].map_files_name(), "400000-452000");
        assert_eq!(m[1].path, PathBuf::from("/mnt/bind/data file"));
        assert_eq!((m[1].major, m[1].minor), (0xfd, 1));
    }

    #[test]
    fn a_bind_mount_elsewhere_is_another_mount() {
        let t = parse(TABLE);
        assert_eq!(mount_id_of_link(&t, "/srv/data/dir"), Some(36));
        // Same filesystem, same device, reached through the bind mount: not mount 36.
        assert_eq!(mount_id_of_link(&t, "/mnt/bind/dir"), Some(37));
        assert_eq!(mount_id_of_link(&t, "/srv/data/tmp/x (deleted)"), Some(38));
        assert_eq!(mount_id_of_link(&t, "/srv/database"), Some(22));
        assert_eq!(mount_id_of_link(&t, "socket:[1234]"), None);
    }

    #[test]
    fn describes_holders_briefly() {
        let h = |pid, uses| Holder { pid, comm: "sleep".into(), starttime: 1, uses, protected: false };
        let a = h(10, vec![Use::Cwd, Use::Fd(3)]);
        let b = h(11, vec![Use::Mmap]);
        let c = h(12, vec![Use::Exe]);
        assert_eq!(describe(&[&a, &b], 5), "10 (sleep: cwd, fd 3), 11 (sleep: mmap)");
        assert_eq!(describe(&[&a, &b, &c], 2), "10 (sleep: cwd, fd 3), 11 (sleep: mmap), and 1 more");
    }

    #[test]
    fn own_process_and_ancestors_are_protected() {
        let p = protected_pids();
        assert!(p.contains(&1));
        assert!(p.contains(&(std::process::id() as i32)));
        assert!(p.contains(&(std::os::unix::process::parent_id() as i32)));
    }

    /// A live check on this process's real mount table: a file we hold open on the root
    /// mount makes us a holder of it, but this process is never listed.
    #[test]
    fn never_lists_itself() {
        let table = crate::sys::mount::mounts().unwrap();
        let exe = std::env::current_exe().unwrap();
        let Some(m) = mount_containing(&table, &exe) else { return };
        let _f = std::fs::File::open(&exe).unwrap();
        for method in [Method::Exact, Method::ProcOnly] {
            let scan = find_holders(&[m.mount_id], &table, method, Deadline::after(Duration::from_secs(10)));
            assert!(scan.holders.iter().all(|h| h.pid != std::process::id() as i32));
        }
    }
}
