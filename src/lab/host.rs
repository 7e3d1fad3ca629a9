//! Running the host's tools (ip, losetup, mkfs, nsenter, crm_mon...) from the lab: argument
//! vectors, a deadline each, and errors that say which command failed and what it printed.

use std::ffi::OsStr;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Result};

use crate::ocf::Deadline;
use crate::sys::proc;

/// How long a host tool may take unless the caller says otherwise.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(60);

/// The environment the lab's commands get: nothing of the caller's but these.
pub fn clean_env(cmd: &mut Command) -> &mut Command {
    cmd.env_clear().env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").env("LANG", "C.UTF-8")
}

/// Runs `cmd` to completion; its stdout, or an error naming it with what it printed.
pub fn output(cmd: &mut Command, limit: Duration) -> Result<String> {
    let shown = show(cmd);
    match proc::run(cmd, Deadline::after(limit)) {
        Ok(out) if out.success() => Ok(out.stdout),
        Ok(out) => bail!("`{shown}` failed ({}): {}", out.status, out.message()),
        Err(e) => bail!("`{shown}`: {e}"),
    }
}

/// `program args...` with the default limit and a clean environment.
pub fn run<S: AsRef<OsStr>>(program: &str, args: &[S]) -> Result<String> {
    output(clean_env(Command::new(program).args(args)), DEFAULT_LIMIT)
}

/// Whether `program args...` succeeds (for probes: "does this exist").
pub fn succeeds<S: AsRef<OsStr>>(program: &str, args: &[S]) -> bool {
    run(program, args).is_ok()
}

fn show(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
