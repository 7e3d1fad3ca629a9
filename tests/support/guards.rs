//! Things tests create on the machine, each undone on drop (also when the test panics).
//! Names carry the prefix `hst` so that `tests/setup/cleanup.sh` can remove leftovers of a
//! test process that was killed before its guards ran.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicU32, Ordering};

use super::sh;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A unique short name: `hst<tag><pid>x<n>` (interface names must stay under 16 bytes).
pub fn unique_name(tag: &str) -> String {
    format!("hst{tag}{}x{}", std::process::id() % 100000, COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// A network namespace, deleted on drop.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Netns {
        let name = unique_name(tag);
        sh("ip", &["netns", "add", &name]);
        let ns = Netns { name };
        ns.exec("ip", &["link", "set", "lo", "up"]);
        ns
    }

    /// Runs a command inside the namespace; it must succeed.
    #[track_caller]
    pub fn exec(&self, program: &str, args: &[&str]) -> String {
        let mut full = vec!["netns", "exec", &self.name, program];
        full.extend_from_slice(args);
        sh("ip", &full)
    }

    /// Runs a command inside the namespace, returning whether it succeeded and its output.
    pub fn try_exec(&self, program: &str, args: &[&str]) -> (bool, String) {
        let out = Command::new("ip").args(["netns", "exec", &self.name, program]).args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
        )
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Processes started in it are the test's to kill; the namespace goes regardless.
        let _ = Command::new("ip").args(["netns", "delete", &self.name]).status();
    }
}

/// A loop device over a sparse file, detached on drop.
pub struct LoopDevice {
    pub device: String,
    pub _file: tempfile::NamedTempFile,
}

impl LoopDevice {
    /// A loop device of `mib` MiB, formatted with `mkfs` args (e.g. `["mkfs.ext4", "-q"]`) if given.
    pub fn new(mib: u64, mkfs: Option<&[&str]>) -> LoopDevice {
        let file = tempfile::Builder::new().prefix("hst-loop").tempfile().unwrap();
        file.as_file().set_len(mib * 1024 * 1024).unwrap();
        let path = file.path().to_str().unwrap().to_string();
        if let Some(cmd) = mkfs {
            let mut args: Vec<&str> = cmd[1..].to_vec();
            args.push(&path);
            sh(cmd[0], &args);
        }
        let device = sh("losetup", &["--find", "--show", &path]).trim().to_string();
        LoopDevice { device, _file: file }
    }
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        // A mount still on it would keep it busy: unmount what the test left first.
        if let Ok(table) = std::fs::read_to_string("/proc/self/mountinfo") {
            for line in table.lines().rev() {
                if let Some(m) = hastack::sys::mount::parse_line(line) {
                    if m.source == self.device {
                        let _ = Command::new("umount").arg("-l").arg(&m.mount_point).status();
                    }
                }
            }
        }
        let _ = Command::new("losetup").args(["-d", &self.device]).status();
    }
}

/// A mount made by the test, lazily unmounted on drop if still there.
pub struct MountGuard {
    pub target: PathBuf,
}

impl MountGuard {
    /// A guard for a mount made some other way (e.g. by the `filesystem` agent).
    pub fn adopt(target: &Path) -> MountGuard {
        MountGuard { target: target.to_path_buf() }
    }

    pub fn mount(args: &[&str], target: &Path) -> MountGuard {
        let mut full: Vec<&str> = args.to_vec();
        full.push(target.to_str().unwrap());
        sh("mount", &full);
        MountGuard { target: target.to_path_buf() }
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.target).stderr(std::process::Stdio::null()).status();
    }
}

/// A child process killed (and reaped) on drop.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
