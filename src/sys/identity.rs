//! Knowing a daemon by identity (DESIGN.md §3.4): a PID with its start time, kept in a state
//! file under /run/hastack between actions, so a PID reused after a crash or a reboot is never
//! mistaken for the daemon; and reading the PID files daemons write themselves.

use std::fs;
use std::path::{Path, PathBuf};

use crate::sys::proc;

/// A process known by PID and start time, so a reused PID is never mistaken for our daemon.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub pid: i32,
    pub starttime: u64,
}

impl Identity {
    /// The identity of a live process.
    pub fn of(pid: i32) -> Option<Identity> {
        let s = proc::stat(pid)?;
        (s.state != 'Z' && s.state != 'X').then_some(Identity { pid, starttime: s.starttime })
    }

    pub fn is_alive(&self) -> bool {
        proc::is_same_process(self.pid, self.starttime)
    }

    /// `PID STARTTIME`, as kept in a state file.
    pub fn to_line(self) -> String {
        format!("{} {}\n", self.pid, self.starttime)
    }

    pub fn parse(line: &str) -> Option<Identity> {
        let mut it = line.split_whitespace();
        Some(Identity { pid: it.next()?.parse().ok()?, starttime: it.next()?.parse().ok()? })
    }
}

/// Where agents keep what they know between actions (identities), cleared at boot with /run.
pub const STATE_DIR: &str = "/run/hastack";

/// A resource instance's name made safe for a file name: letters, digits, `-_.` kept, anything
/// else `_`; an agent run without one (by hand, outside Pacemaker) is `default`.
pub fn instance_name(instance: &str) -> String {
    if instance.is_empty() {
        return "default".into();
    }
    instance.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect()
}

/// The state file of one resource instance, e.g. `/run/hastack/nginx-web1.id`.
pub fn state_file(agent: &str, instance: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{agent}-{}.id", instance_name(instance)))
}

pub fn save_identity(path: &Path, id: Identity) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, id.to_line())?;
    fs::rename(tmp, path)
}

/// The saved identity, whether or not that process still lives.
pub fn load_identity(path: &Path) -> Option<Identity> {
    Identity::parse(&fs::read_to_string(path).ok()?)
}

/// The saved identity if that process still lives.
pub fn load_live_identity(path: &Path) -> Option<Identity> {
    load_identity(path).filter(Identity::is_alive)
}

/// The PID in a PID file (first token), if it names a live process.
pub fn read_pidfile(path: &Path) -> Option<i32> {
    let pid: i32 = fs::read_to_string(path).ok()?.split_whitespace().next()?.parse().ok()?;
    (pid > 0 && proc::is_alive(pid)).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trip_and_liveness() {
        let me = Identity::of(std::process::id() as i32).unwrap();
        assert_eq!(Identity::parse(&me.to_line()), Some(me));
        assert!(me.is_alive());
        assert!(!Identity { starttime: me.starttime + 1, ..me }.is_alive());
        assert_eq!(Identity::parse("garbage"), None);
    }

    #[test]
    fn instance_names_are_safe_file_names() {
        assert_eq!(state_file("nginx", "web1"), Path::new("/run/hastack/nginx-web1.id"));
        assert_eq!(instance_name("a/b c:1"), "a_b_c_1");
        assert_eq!(instance_name(""), "default");
    }
}
