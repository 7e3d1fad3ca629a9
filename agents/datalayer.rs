//! What the four data-layer agents (postgresql, mariadb, activemq, rabbitmq) share: the checks
//! before a start (data directory present, port free), the server's log file, and turning the
//! server's last log lines into an exit reason.

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};

use crate::agents::config_fault::{self, Culprit};
use crate::ocf::{OcfError, OcfResult};
use crate::sys::daemon;
use crate::sys::proc::{self, Account};

/// The account a server runs as; a missing one means the package is not installed here (5).
pub fn account(param: &str, name: &str) -> OcfResult<Account> {
    Account::lookup(name)
        .ok_or_else(|| OcfError::installed(format!("user '{name}' (parameter '{param}') does not exist on this node")))
}

/// The data directory must be there: on the replicated partition it is missing exactly when the
/// partition is not mounted on this node. That is a fact about this node, not about the
/// configuration, so 5 (hard error here, try another node), not 6 (stop everywhere).
pub fn require_data_dir(param: &str, dir: &Path) -> OcfResult<()> {
    if dir.is_dir() {
        Ok(())
    } else {
        Err(OcfError::installed(format!(
            "data directory {} (parameter '{param}') does not exist on this node (is the replicated partition mounted?)",
            dir.display()
        )))
    }
}

/// A config file the agent passes to the server; missing on this node = 5.
pub fn require_file(param: &str, path: &Path) -> OcfResult<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(OcfError::installed(format!("{} (parameter '{param}') does not exist", path.display())))
    }
}

/// "PID 123 (postgres), PID 456 (nc)": who the PIDs are, for an exit reason.
pub fn describe(pids: &[i32]) -> String {
    pids.iter()
        .map(|p| format!("PID {p} ({})", proc::stat(*p).map(|s| s.comm).unwrap_or_else(|| "?".into())))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses a start when another process already listens on a port the server needs: the server
/// would fail (or worse, half-start) later with a less clear message.
pub fn require_port_free(param: &str, port: u16) -> OcfResult<()> {
    let holders = daemon::port_holders(port);
    if holders.is_empty() {
        Ok(())
    } else {
        Err(OcfError::generic(format!("port {port} (parameter '{param}') is already in use by {}", describe(&holders))))
    }
}

/// Opens (appending) the file the server's stdout and stderr go to, creating its directory.
pub fn open_log(path: &Path) -> OcfResult<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| OcfError::generic(format!("cannot create {}: {e}", dir.display())))?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| OcfError::generic(format!("cannot open log file {}: {e}", path.display())))
}

/// The log's size now, so that a failed start quotes only what this start wrote.
pub fn log_mark(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The last `n` non-empty lines written to the log after `mark`, joined with " | ".
pub fn log_since(path: &Path, mark: u64, n: usize) -> String {
    let Ok(bytes) = fs::read(path) else { return String::new() };
    let from = (mark as usize).min(bytes.len()).max(bytes.len().saturating_sub(64 * 1024));
    let text = String::from_utf8_lossy(&bytes[from..]).into_owned();
    let lines: Vec<&str> = text.lines().map(str::trim_end).filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

/// Creates a directory the server writes into (a socket or PID directory under /run, which is
/// empty after a reboot) owned by its account.
pub fn ensure_run_dir(param: &str, dir: &Path, owner: &Account) -> OcfResult<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir)
        .and_then(|_| {
            nix::unistd::chown(dir, Some(owner.uid), Some(owner.gid)).map_err(std::io::Error::from)?;
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o2775))
        })
        .map_err(|e| OcfError::generic(format!("cannot create {} (parameter '{param}'): {e}", dir.display())))
}

/// Whether a directory can be written by `owner` (mode bits; root bypasses them, the server
/// does not).
pub fn writable_by(dir: &Path, owner: &Account) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = fs::metadata(dir) else { return false };
    let mode = m.mode();
    if owner.uid.is_root() {
        return true;
    }
    if m.uid() == owner.uid.as_raw() {
        return mode & 0o200 != 0;
    }
    if m.gid() == owner.gid.as_raw() || owner.groups.iter().any(|g| g.as_raw() == m.gid()) {
        return mode & 0o020 != 0;
    }
    mode & 0o002 != 0
}

/// The default log path of an instance when the parameter is unset.
pub fn default_log(dir: &str, agent: &str, instance: &str) -> PathBuf {
    let safe: String =
        instance.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c } else { '_' }).collect();
    Path::new(dir).join(format!("hastack-{agent}-{safe}.log"))
}

/// The error for a server that exited during start, with its last log lines: when it rejected
/// its configuration (`culprit`, found by the agent in those lines), 6 or 2 by where that
/// configuration lives (`config_fault`; `data_dir` is on the replicated partition); else 1.
pub fn exited_during_start(what: &str, lines: &str, culprit: Option<Culprit>, data_dir: &Path) -> OcfError {
    match culprit {
        Some(c) => config_fault::rejected(what, &c, Some(data_dir), lines),
        None => OcfError::generic(format!("{what} exited during start: {lines}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_since_quotes_only_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        fs::write(&p, "old 1\nold 2\n").unwrap();
        let mark = log_mark(&p);
        fs::write(&p, "old 1\nold 2\nnew 1\n\nnew 2\n").unwrap();
        assert_eq!(log_since(&p, mark, 5), "new 1 | new 2");
        assert_eq!(log_since(&p, mark, 1), "new 2");
    }
}
