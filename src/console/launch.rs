//! `hastack console ...` runs the console's own binary, `hastack-console`: the agents' binary
//! stays small (the alert agent's routine event must stay within 2x `/bin/true`, bench/alert.sh),
//! so it links none of the console (HTTP server, async runtime, databases).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// The console's binary, installed beside `hastack` (/usr/sbin/hastack-console).
pub const CONSOLE_BINARY: &str = "hastack-console";
/// Where it is looked for when it is not beside the running `hastack`.
pub const INSTALLED_DIR: &str = "/usr/sbin";

/// Exit code when the console is not installed (the shell's "command not found").
pub const EXIT_NOT_FOUND: i32 = 127;
/// Exit code when it is there but cannot be run (the shell's "cannot execute").
pub const EXIT_CANNOT_RUN: i32 = 126;

/// Where `hastack-console` is looked for, in order: beside the running `hastack` (a build tree,
/// `make install`, the packages), then /usr/sbin.
pub fn candidates() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::current_exe().ok().and_then(|exe| exe.parent().map(Path::to_path_buf)) {
        dirs.push(dir);
    }
    if !dirs.iter().any(|d| d == Path::new(INSTALLED_DIR)) {
        dirs.push(INSTALLED_DIR.into());
    }
    dirs.into_iter().map(|d| d.join(CONSOLE_BINARY)).collect()
}

/// Replaces this process with `hastack-console ARGS` (ARGS: what followed `console`), so the
/// console keeps this process's PID, standard streams and environment. Returns only on failure,
/// with the exit code after printing why.
pub fn exec(args: &[OsString]) -> i32 {
    let tried = candidates();
    let Some(binary) = tried.iter().find(|p| p.is_file()) else {
        let list: Vec<String> = tried.iter().map(|p| p.display().to_string()).collect();
        eprintln!(
            "hastack: the console is not installed: no {CONSOLE_BINARY} at {} (it comes with hastack's packages and `make install`)",
            list.join(" or ")
        );
        return EXIT_NOT_FOUND;
    };
    let err = std::process::Command::new(binary).arg0(CONSOLE_BINARY).args(args).exec();
    eprintln!("hastack: cannot run the console {}: {err}", binary.display());
    EXIT_CANNOT_RUN
}
