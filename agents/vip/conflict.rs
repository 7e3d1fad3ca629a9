//! The record of another owner found after start. The address was withdrawn then (RFC 5227 §2.4
//! (a)); the record tells the next monitor to fail, naming the other MAC, and the next start to
//! probe before it adds the address again.
//!
//! One small file per address and network namespace in /run/hastack/vip (cleared at boot):
//! `<ip>@net<inode>.conflict` while the failure stands (monitor: 1), renamed to
//! `<ip>@net<inode>.stopped` by stop (monitor: 7 again; start still probes first), removed by a
//! start that finds the address free. Monitor pays one failed open() for it when there is none.
//!
//! The watcher's "still ours? record, withdraw" and stop's "remove, demote the record" each run
//! under one flock of the directory, so a stop is never followed by a conflict recorded for the
//! address it removed.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Where the records live: below the agents' state directory, cleared with /run at boot.
pub const DIR: &str = "/run/hastack/vip";

/// What the record says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other owner's MAC, `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    pub nic: String,
    /// When it answered (UTC, as the logs write it).
    pub at: String,
}

impl Conflict {
    fn to_text(&self) -> String {
        format!("mac={}\nnic={}\nat={}\n", self.mac, self.nic, self.at)
    }

    fn parse(text: &str) -> Conflict {
        let field = |name: &str| {
            text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix('=')).unwrap_or("?").trim().to_string()
        };
        Conflict { mac: field("mac"), nic: field("nic"), at: field("at") }
    }
}

/// The records of one address in this network namespace.
pub struct Records {
    dir: PathBuf,
    key: String,
}

impl Records {
    pub fn for_address(ip: &IpAddr) -> Records {
        Records::in_dir(Path::new(DIR), ip, &netns_id())
    }

    pub fn in_dir(dir: &Path, ip: &IpAddr, netns: &str) -> Records {
        Records { dir: dir.to_path_buf(), key: format!("{ip}@net{netns}") }
    }

    fn standing(&self) -> PathBuf {
        self.dir.join(format!("{}.conflict", self.key))
    }

    fn stopped(&self) -> PathBuf {
        self.dir.join(format!("{}.stopped", self.key))
    }

    /// The conflict that stands (found after the last start, not yet stopped): monitor's check.
    pub fn standing_conflict(&self) -> Option<Conflict> {
        fs::read_to_string(self.standing()).ok().map(|t| Conflict::parse(&t))
    }

    /// Any conflict since the last start that found the address free (standing or stopped).
    pub fn last_conflict(&self) -> Option<Conflict> {
        self.standing_conflict().or_else(|| fs::read_to_string(self.stopped()).ok().map(|t| Conflict::parse(&t)))
    }

    /// Records a conflict that stands: the next monitor fails.
    pub fn record(&self, c: &Conflict) -> io::Result<()> {
        self.write(&self.standing(), c)
    }

    /// Records a conflict found before anything was added (a start that refused): the next start
    /// probes first, monitor is not affected.
    pub fn record_stopped(&self, c: &Conflict) -> io::Result<()> {
        let _ = fs::remove_file(self.standing());
        self.write(&self.stopped(), c)
    }

    /// Stop: the failure no longer stands, its memory stays for the next start.
    pub fn demote(&self) {
        let _ = fs::rename(self.standing(), self.stopped());
    }

    /// A start that found the address free forgets every earlier conflict.
    pub fn clear(&self) {
        let _ = fs::remove_file(self.standing());
        let _ = fs::remove_file(self.stopped());
    }

    fn write(&self, path: &Path, c: &Conflict) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, c.to_text())?;
        fs::rename(&tmp, path)
    }

    /// Takes the directory's lock (creating the directory), released when the guard drops.
    pub fn lock(&self) -> io::Result<DirLock> {
        fs::create_dir_all(&self.dir)?;
        let dir = fs::File::open(&self.dir)?;
        // SAFETY: flock on a descriptor we own.
        if unsafe { libc::flock(dir.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(DirLock { _dir: dir })
    }
}

/// The held lock of the records' directory (the kernel drops it with the descriptor).
pub struct DirLock {
    _dir: fs::File,
}

/// This process's network namespace, as the inode number the kernel names it by: an address is
/// an address within one namespace (test hosts and lab nodes share /run).
fn netns_id() -> String {
    fs::read_link("/proc/self/ns/net")
        .ok()
        .and_then(|l| {
            let s = l.to_string_lossy().into_owned();
            Some(s.strip_prefix("net:[")?.strip_suffix(']')?.to_string())
        })
        .unwrap_or_else(|| "0".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conflict() -> Conflict {
        Conflict { mac: "02:00:00:00:00:09".into(), nic: "eth0".into(), at: "2026-12-01T10:00:00.000Z".into() }
    }

    #[test]
    fn lifecycle_standing_stopped_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let ip: IpAddr = "2001:db8::5".parse().unwrap();
        let r = Records::in_dir(&dir.path().join("vip"), &ip, "4026531840");
        assert_eq!((r.standing_conflict(), r.last_conflict()), (None, None));
        r.record(&conflict()).unwrap();
        assert_eq!(r.standing_conflict(), Some(conflict()));
        assert!(dir.path().join("vip/2001:db8::5@net4026531840.conflict").exists());
        r.demote();
        assert_eq!(r.standing_conflict(), None, "stopped: monitor is not affected");
        assert_eq!(r.last_conflict(), Some(conflict()), "but the next start knows");
        r.clear();
        assert_eq!(r.last_conflict(), None);
        r.record_stopped(&conflict()).unwrap();
        assert_eq!((r.standing_conflict(), r.last_conflict()), (None, Some(conflict())));
        let _held = r.lock().unwrap();
    }

    #[test]
    fn namespaces_and_addresses_are_kept_apart() {
        let dir = tempfile::tempdir().unwrap();
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        Records::in_dir(dir.path(), &ip, "1").record(&conflict()).unwrap();
        assert_eq!(Records::in_dir(dir.path(), &ip, "2").standing_conflict(), None);
        assert_eq!(Records::in_dir(dir.path(), &"10.0.0.6".parse().unwrap(), "1").standing_conflict(), None);
        assert!(netns_id().chars().all(|c| c.is_ascii_digit()));
    }

    #[test]
    fn an_odd_file_still_fails_the_monitor() {
        let dir = tempfile::tempdir().unwrap();
        let ip: IpAddr = "10.0.0.5".parse().unwrap();
        let r = Records::in_dir(dir.path(), &ip, "1");
        fs::write(r.standing(), "garbage").unwrap();
        assert_eq!(r.standing_conflict().map(|c| c.mac), Some("?".to_string()));
    }
}
