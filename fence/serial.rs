//! The serial port to the UPS: 2400 8N1 without flow control, held exclusively. Two locks,
//! because Pacemaker SIGKILLs a fence agent at its timeout (no clean-up runs):
//! - `flock` on the open port (taken by the serialport crate with TIOCEXCL): the kernel drops it
//!   when the process dies, so it never goes stale;
//! - a UUCP lock file `/var/lock/LCK..<device>` holding our PID, which other programs (cluster-glue,
//!   minicom, NUT on BSD) honour; a file whose owner is gone is stale and taken over. A fresh /run
//!   without /run/lock (containers, the lab's nodes) gets it made as Debian makes it at boot; where
//!   no lock directory can exist, the port is held by the first two alone (`without_uucp_lock`).

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::ocf::Deadline;

pub const LOCK_DIR: &str = "/var/lock";
pub const BAUD: u32 = 2400;

/// The UUCP lock file for a device: its path below /dev with `/` as `_`, so /dev/ttyS0 gives
/// LCK..ttyS0 and /dev/pts/3 gives LCK..pts_3. Symlinks are resolved first: two names of one
/// port must share one lock.
pub fn lock_file_for(device: &Path, lock_dir: &Path) -> PathBuf {
    let real = fs::canonicalize(device).unwrap_or_else(|_| device.to_path_buf());
    let name = real.strip_prefix("/dev").unwrap_or(&real).to_string_lossy().trim_start_matches('/').replace('/', "_");
    lock_dir.join(format!("LCK..{name}"))
}

/// The PID in a lock file: HDB (ASCII, padded) or the old binary 4-byte form.
pub fn parse_lock_pid(content: &[u8]) -> Option<i32> {
    let text = String::from_utf8_lossy(content);
    if let Ok(pid) = text.trim().parse::<i32>() {
        return Some(pid).filter(|p| *p > 0);
    }
    if content.len() == 4 {
        return Some(i32::from_ne_bytes(content.try_into().ok()?)).filter(|p| *p > 0);
    }
    None
}

/// Where the UUCP lock goes: `dir` when it is a directory. When it is a symlink to a directory
/// that is missing (Debian's /var/lock → /run/lock on a /run that systemd did not set up), the
/// target is made as Debian's run-lock.mount makes it, mode 1777, so that cluster-glue, minicom
/// and NUT keep honouring our lock. Err(why) when neither works.
pub fn lock_dir(dir: &Path) -> Result<PathBuf, String> {
    use std::os::unix::fs::PermissionsExt;
    if fs::metadata(dir).is_ok_and(|m| m.is_dir()) {
        return Ok(dir.to_path_buf());
    }
    let target = match fs::read_link(dir) {
        Ok(t) => dir.parent().unwrap_or(Path::new("/")).join(t),
        Err(_) => return Err(format!("{} does not exist", dir.display())),
    };
    match fs::create_dir(&target) {
        Ok(()) => {
            fs::set_permissions(&target, fs::Permissions::from_mode(0o1777))
                .map_err(|e| format!("cannot set the mode of {}: {e}", target.display()))?;
            Ok(dir.to_path_buf())
        }
        Err(e) if e.kind() == ErrorKind::AlreadyExists && target.is_dir() => Ok(dir.to_path_buf()),
        Err(e) => Err(format!("{} points to {}, which cannot be made: {e}", dir.display(), target.display())),
    }
}

/// A UUCP lock file we own; removed on drop.
#[derive(Debug)]
pub struct UucpLock {
    path: PathBuf,
}

impl UucpLock {
    /// Takes the lock, waiting (until the deadline) while a live process holds it, and taking
    /// over a file whose owner is gone.
    pub fn acquire(device: &Path, lock_dir: &Path, deadline: Deadline) -> Result<UucpLock> {
        let path = lock_file_for(device, lock_dir);
        let me = std::process::id() as i32;
        let content = format!("{me:>10}\n");
        // Write a private file, then link() it into place: the lock appears whole or not at all.
        let tmp = lock_dir.join(format!("LTMP.{me}"));
        fs::write(&tmp, &content).with_context(|| format!("cannot write lock file in {}", lock_dir.display()))?;
        let result = loop {
            match fs::hard_link(&tmp, &path) {
                Ok(()) => break Ok(UucpLock { path: path.clone() }),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
                Err(e) => break Err(anyhow!("cannot create lock file {}: {e}", path.display())),
            }
            let owner = fs::read(&path).ok().and_then(|c| parse_lock_pid(&c));
            match owner {
                Some(pid) if pid == me => break Ok(UucpLock { path: path.clone() }),
                Some(pid) if crate::sys::proc::is_alive(pid) => {
                    if deadline.expired() {
                        break Err(anyhow!(
                            "serial port {} is locked by process {pid} ({})",
                            device.display(),
                            path.display()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(100).min(deadline.remaining()));
                }
                // Stale (owner gone, e.g. SIGKILLed at its timeout) or unreadable: take it over.
                _ => {
                    let _ = fs::remove_file(&path);
                }
            }
        };
        let _ = fs::remove_file(&tmp);
        result
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the lock name process `pid` (a child that goes on with the port after we exit):
    /// rewritten in place by rename, so it never names nobody.
    pub fn hand_over(&self, pid: i32) -> Result<()> {
        let tmp = self.path.with_file_name(format!("LTMP.{pid}"));
        fs::write(&tmp, format!("{pid:>10}\n")).with_context(|| format!("cannot write {}", tmp.display()))?;
        fs::rename(&tmp, &self.path).with_context(|| format!("cannot rewrite {}", self.path.display()))
    }
}

impl Drop for UucpLock {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// The port must exist and be a character device: a regular file or a directory named by
/// mistake is refused before anything is locked or opened.
fn require_character_device(device: &Path) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let meta = match fs::metadata(device) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => bail!("serial port {} does not exist", device.display()),
        Err(e) => bail!("cannot examine serial port {}: {e}", device.display()),
    };
    let t = meta.file_type();
    if t.is_char_device() {
        return Ok(());
    }
    let what = if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "not a device"
    };
    bail!(
        "serial port {} is {what}, not a serial line (a terminal device such as /dev/ttyS0 or /dev/ttyUSB0)",
        device.display()
    )
}

/// An open, locked serial port. The UUCP lock is released after the port is closed.
pub struct SerialLine {
    port: serialport::TTYPort,
    lock: Option<UucpLock>,
    pub name: String,
    /// Why there is no UUCP lock (no lock directory can exist here), for a warning.
    pub without_uucp_lock: Option<String>,
}

impl SerialLine {
    pub fn open(device: &Path, deadline: Deadline) -> Result<SerialLine> {
        Self::open_with_lock_dir(device, Path::new(LOCK_DIR), deadline)
    }

    pub fn open_with_lock_dir(device: &Path, lock_dir: &Path, deadline: Deadline) -> Result<SerialLine> {
        require_character_device(device)?;
        let (lock, without_uucp_lock) = match self::lock_dir(lock_dir) {
            Ok(dir) => (Some(UucpLock::acquire(device, &dir, deadline)?), None),
            Err(why) => (None, Some(why)),
        };
        let name = device.display().to_string();
        let builder = serialport::new(&name, BAUD)
            .data_bits(serialport::DataBits::Eight)
            .parity(serialport::Parity::None)
            .stop_bits(serialport::StopBits::One)
            .flow_control(serialport::FlowControl::None)
            .timeout(Duration::from_millis(100));
        // flock is non-blocking in the crate: retry while another process holds the port.
        let port = loop {
            match serialport::TTYPort::open(&builder) {
                Ok(p) => break p,
                Err(e) if e.kind == serialport::ErrorKind::NoDevice && !deadline.expired() => {
                    std::thread::sleep(Duration::from_millis(100).min(deadline.remaining()));
                }
                // A character device that is no terminal (/dev/null, /dev/zero): the crate's
                // first ioctl says ENOTTY, in words ("Not a typewriter") nobody expects here.
                Err(e) if e.description == nix::errno::Errno::ENOTTY.desc() => {
                    bail!("serial port {name} is not a serial line (a terminal device such as /dev/ttyS0 or /dev/ttyUSB0)")
                }
                Err(e) => bail!("cannot open serial port {name}: {e}"),
            }
        };
        let mut line = SerialLine { port, lock, name, without_uucp_lock };
        line.discard_input();
        Ok(line)
    }

    /// Hands the port over to process `pid`, a detached child that inherited it and goes on with
    /// it after we exit: the flock and TIOCEXCL go with the shared descriptor by themselves, the
    /// UUCP lock is rewritten to name the child. The caller must then leave without dropping
    /// this line (`std::mem::forget`), or the lock file would go with it.
    pub fn hand_over(&self, pid: i32) -> Result<()> {
        match &self.lock {
            Some(lock) => lock.hand_over(pid),
            None => Ok(()),
        }
    }

    pub fn write_byte(&mut self, b: u8) -> Result<()> {
        self.port.write_all(&[b]).with_context(|| format!("cannot write to {}", self.name))?;
        let _ = self.port.flush();
        Ok(())
    }

    /// Reads what arrives before `deadline`; empty on timeout.
    pub fn read_some(&mut self, deadline: Deadline) -> Result<Vec<u8>> {
        let wait = deadline.remaining();
        if wait.is_zero() {
            return Ok(Vec::new());
        }
        serialport::SerialPort::set_timeout(&mut self.port, wait).ok();
        let mut buf = [0u8; 256];
        match self.port.read(&mut buf) {
            Ok(n) => Ok(buf[..n].to_vec()),
            Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => Ok(Vec::new()),
            Err(e) => Err(anyhow!("cannot read from {}: {e}", self.name)),
        }
    }

    /// Drops whatever is buffered in the input (a stale reply, noise).
    pub fn discard_input(&mut self) {
        let _ = serialport::SerialPort::clear(&self.port, serialport::ClearBuffer::Input);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_names() {
        let d = Path::new("/var/lock");
        assert_eq!(lock_file_for(Path::new("/dev/ttyS0"), d), PathBuf::from("/var/lock/LCK..ttyS0"));
        assert_eq!(lock_file_for(Path::new("/dev/pts/3"), d), PathBuf::from("/var/lock/LCK..pts_3"));
    }

    #[test]
    fn what_is_no_serial_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, "").unwrap();
        let open = |p: &Path| {
            SerialLine::open_with_lock_dir(p, dir.path(), Deadline::after(Duration::from_secs(1))).err().unwrap()
        };
        for (path, words) in [
            (file.as_path(), "is a regular file, not a serial line"),
            (dir.path(), "is a directory, not a serial line"),
            (Path::new("/dev/null"), "/dev/null is not a serial line"),
            (Path::new("/nonexistent/ttyS9"), "does not exist"),
        ] {
            let e = open(path).to_string();
            assert!(e.contains(words) && !e.contains("typewriter"), "{path:?}: {e}");
        }
        let locks: Vec<_> = fs::read_dir(dir.path()).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
        assert_eq!(locks, vec![std::ffi::OsString::from("plain")], "no lock file left behind");
    }

    #[test]
    fn a_dangling_lock_dir_link_is_made_a_sticky_world_writable_dir() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().unwrap();
        let (run, var) = (root.path().join("run"), root.path().join("var"));
        fs::create_dir_all(&run).unwrap();
        fs::create_dir_all(&var).unwrap();
        let link = var.join("lock");
        std::os::unix::fs::symlink("../run/lock", &link).unwrap();
        assert_eq!(lock_dir(&link), Ok(link.clone()));
        let made = fs::metadata(run.join("lock")).unwrap();
        assert!(made.is_dir());
        assert_eq!(made.permissions().mode() & 0o7777, 0o1777, "as Debian's /run/lock");
        assert_eq!(lock_dir(&link), Ok(link.clone()), "and it is used from then on");

        // Not makeable: the target's parent is missing, or a file is in the way.
        let nowhere = var.join("nolock");
        std::os::unix::fs::symlink("../gone/lock", &nowhere).unwrap();
        assert!(lock_dir(&nowhere).unwrap_err().contains("cannot be made"));
        fs::write(run.join("file"), "").unwrap();
        let blocked = var.join("blocked");
        std::os::unix::fs::symlink("../run/file", &blocked).unwrap();
        assert!(lock_dir(&blocked).is_err());
        assert!(lock_dir(&root.path().join("missing")).unwrap_err().contains("does not exist"));
    }

    #[test]
    fn a_lock_handed_over_names_the_new_owner() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("ttyFAKE");
        fs::write(&dev, "").unwrap();
        let lock = UucpLock::acquire(&dev, dir.path(), Deadline::after(Duration::from_secs(1))).unwrap();
        lock.hand_over(1).unwrap();
        assert_eq!(parse_lock_pid(&fs::read(lock.path()).unwrap()), Some(1));
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 2, "the device and the lock, no temporary file: {names:?}");
    }

    #[test]
    fn lock_pid_formats() {
        assert_eq!(parse_lock_pid(b"      1234\n"), Some(1234));
        assert_eq!(parse_lock_pid(&4321i32.to_ne_bytes()), Some(4321));
        assert_eq!(parse_lock_pid(b"garbage"), None);
        assert_eq!(parse_lock_pid(b"0\n"), None);
    }

    #[test]
    fn stale_lock_is_taken_over_live_one_waits_then_fails() {
        let dir = tempfile::tempdir().unwrap();
        let dev = dir.path().join("ttyFAKE");
        fs::write(&dev, "").unwrap();
        let lock = lock_file_for(&dev, dir.path());
        // A PID that cannot exist (above pid_max) is a dead owner.
        fs::write(&lock, format!("{:>10}\n", 99_999_999)).unwrap();
        let held = UucpLock::acquire(&dev, dir.path(), Deadline::after(Duration::from_secs(1))).unwrap();
        assert_eq!(parse_lock_pid(&fs::read(&lock).unwrap()), Some(std::process::id() as i32));
        drop(held);
        assert!(!lock.exists(), "released on drop");

        // Owned by a live process (PID 1): we wait until the deadline, then name the owner.
        fs::write(&lock, format!("{:>10}\n", 1)).unwrap();
        let err = UucpLock::acquire(&dev, dir.path(), Deadline::after(Duration::from_millis(200))).unwrap_err();
        assert!(err.to_string().contains("locked by process 1"), "{err}");
        assert!(lock.exists(), "someone else's lock is left alone");
    }
}
