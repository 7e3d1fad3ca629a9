//! The durable spool: one file per report, written before any attempt to send it (write, fsync,
//! rename, fsync the directory), deleted only after the console answered 2xx. Several alert
//! processes and `hastack alert flush` may drain it at once: each report is claimed with an
//! exclusive flock, and one already deleted by another process is skipped, so a report is sent
//! by one process at a time (a 2xx followed by a crash before the delete may re-send it; the
//! idempotency key makes that harmless).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

const SUFFIX: &str = ".report";

/// Where a report goes, stored with it so that `flush` needs nothing from the CIB.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Destination {
    pub url: String,
    /// The bearer token's file (read at each send: the token can be rotated while reports wait).
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub send_timeout_ms: u64,
}

/// A spool file's name: sorts by event time, then sequence.
pub fn file_name(epoch: i64, usec: u32, sequence: Option<i64>, key: &str) -> String {
    format!("{epoch:011}.{usec:06}-{:010}-{}{SUFFIX}", sequence.unwrap_or(0).max(0), &key[..16.min(key.len())])
}

/// Writes a report durably; returns its path. The directory is created if it can be (tests,
/// a custom `spool_dir`); the default one is made by the packages and `make install`.
pub fn write(dir: &Path, name: &str, dest: &Destination, body: &[u8]) -> io::Result<PathBuf> {
    if !dir.is_dir() {
        fs::create_dir_all(dir)?;
    }
    let final_path = dir.join(name);
    let tmp = dir.join(format!(".tmp-{name}"));
    let mut header = serde_json::to_vec(dest).expect("a destination serialises");
    header.push(b'\n');
    let result = (|| {
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o640).open(&tmp)?;
        f.write_all(&header)?;
        f.write_all(body)?;
        f.sync_all()?;
        fs::rename(&tmp, &final_path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|_| final_path)
}

/// The spooled reports, oldest first.
pub fn entries(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with(SUFFIX) && !n.starts_with('.')))
        .collect();
    out.sort();
    Ok(out)
}

/// A report this process holds the lock on.
pub struct Claimed {
    pub path: PathBuf,
    pub destination: Destination,
    pub body: Vec<u8>,
    _lock: Flock<File>,
}

pub enum Claim {
    Mine(Box<Claimed>),
    /// Another process is sending it, or has just delivered it.
    Busy,
    /// Unreadable or not a report (named in the error); left in place for a human.
    Broken(String),
}

/// Locks a spooled report for sending.
pub fn claim(path: &Path) -> Claim {
    let file = match OpenOptions::new().read(true).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Claim::Busy,
        Err(e) => return Claim::Broken(format!("{}: {e}", path.display())),
    };
    let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err((_, _)) => return Claim::Busy,
    };
    // Deleted between our open and our lock: someone delivered it.
    if lock.metadata().map(|m| m.nlink() == 0).unwrap_or(true) {
        return Claim::Busy;
    }
    let mut content = Vec::new();
    if let Err(e) = lock.read_to_end(&mut content) {
        return Claim::Broken(format!("{}: {e}", path.display()));
    }
    let Some(newline) = content.iter().position(|&b| b == b'\n') else {
        return Claim::Broken(format!("{}: no destination line", path.display()));
    };
    let destination: Destination = match serde_json::from_slice(&content[..newline]) {
        Ok(d) => d,
        Err(e) => return Claim::Broken(format!("{}: bad destination line: {e}", path.display())),
    };
    let body = content[newline + 1..].to_vec();
    Claim::Mine(Box::new(Claimed { path: path.to_path_buf(), destination, body, _lock: lock }))
}

impl Claimed {
    /// Delivered: remove it (still holding the lock, so no one else sends it meanwhile).
    pub fn delete(self) -> io::Result<()> {
        fs::remove_file(&self.path)
    }
}

/// Removes temporary files an agent killed mid-write left behind (older than an hour).
pub fn remove_stale_temporaries(dir: &Path) {
    let Ok(list) = fs::read_dir(dir) else { return };
    for entry in list.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age.as_secs() > 3600);
        if old && entry.file_name().to_str().is_some_and(|n| n.starts_with(".tmp-")) {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest() -> Destination {
        Destination { url: "http://127.0.0.1:1/r".into(), token_file: None, ca_file: None, send_timeout_ms: 1000 }
    }

    #[test]
    fn write_list_claim_delete() {
        let dir = tempfile::tempdir().unwrap();
        let spool = dir.path().join("spool");
        let b = write(&spool, &file_name(20, 5, Some(2), "bbbbbbbbbbbbbbbbbbbb"), &dest(), b"{\"b\":1}").unwrap();
        let a = write(&spool, &file_name(10, 5, Some(9), "aaaaaaaaaaaaaaaaaaaa"), &dest(), b"{\"a\":1}").unwrap();
        assert_eq!(entries(&spool).unwrap(), vec![a.clone(), b.clone()], "oldest first");
        let Claim::Mine(claimed) = claim(&a) else { panic!("not claimed") };
        assert_eq!(claimed.body, b"{\"a\":1}");
        assert_eq!(claimed.destination, dest());
        assert!(matches!(claim(&a), Claim::Busy), "a second claim must wait");
        claimed.delete().unwrap();
        assert_eq!(entries(&spool).unwrap(), vec![b]);
        assert!(matches!(claim(&a), Claim::Busy));
        fs::write(spool.join("x.report"), b"garbage").unwrap();
        assert!(matches!(claim(&spool.join("x.report")), Claim::Broken(_)));
    }

    #[test]
    fn names_sort_by_time() {
        assert_eq!(
            file_name(1767225600, 42, Some(7), "0123456789abcdef0123"),
            "01767225600.000042-0000000007-0123456789abcdef.report"
        );
    }
}
