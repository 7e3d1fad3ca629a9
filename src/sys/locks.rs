//! Who holds a file lock: the kernel's word on who owns a data directory (InnoDB's ibdata1,
//! KahaDB's `lock`), not a guess from a PID file.

use std::fs;
use std::path::Path;

/// The process holding a POSIX record lock (fcntl, as Java's FileChannel.lock and InnoDB use)
/// on `path`, asked with F_GETLK. None if the file is unlocked, missing, or locked only by this
/// process.
pub fn lock_holder(path: &Path) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let file = fs::OpenOptions::new().read(true).write(true).open(path).ok()?;
    // SAFETY: a zeroed flock is a valid argument; F_GETLK only writes into it.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    // SAFETY: a valid fd and a valid flock pointer.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_GETLK, &mut lock) };
    (rc == 0 && lock.l_type != libc::F_UNLCK as libc::c_short && lock.l_pid > 0).then_some(lock.l_pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_holder_sees_another_process_lock() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("lock");
        fs::write(&p, "").unwrap();
        assert_eq!(lock_holder(&p), None);
        // flock(1) takes BSD locks, which F_GETLK does not see; a child taking an fcntl lock does.
        let mut child = std::process::Command::new("/usr/bin/python3")
            .args(["-c", "import fcntl,sys,time;f=open(sys.argv[1],'r+');fcntl.lockf(f,fcntl.LOCK_EX);print('x',flush=True);time.sleep(30)"])
            .arg(&p)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert_eq!(lock_holder(&p), Some(child.id() as i32));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(lock_holder(&p), None);
    }
}
