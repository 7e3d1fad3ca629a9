//! fence_ups's log, in fence-agents' form (`<time> LEVEL: message` on stderr): Pacemaker's fencer
//! logs every stderr line at warning, so stderr gets only errors unless `verbose` is set;
//! `debug_file` gets everything. Nothing secret is ever passed here (passwords are not logged,
//! the NUT transcript masks them).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

use crate::ocf::log::{to_pacemaker_syslog, Level};

pub struct FenceLog {
    verbose: bool,
    file: Option<Mutex<File>>,
    /// In a detached child (stderr is /dev/null): syslog takes what stderr would have.
    detached: bool,
}

impl FenceLog {
    pub fn new(verbose: bool, debug_file: Option<&str>) -> Result<FenceLog, String> {
        let file = match debug_file {
            Some(path) => Some(Mutex::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| format!("parameter debug_file: cannot open {path}: {e}"))?,
            )),
            None => None,
        };
        Ok(FenceLog { verbose, file, detached: false })
    }

    /// A log for errors before the parameters are known.
    pub fn quiet() -> FenceLog {
        FenceLog { verbose: false, file: None, detached: false }
    }

    /// This log for a detached child (`sys::proc::detach`), called in the child: its warnings,
    /// errors and `info` lines go to syslog (tagged `fence_ups[child PID]`) and the debug file.
    pub fn detached(&self) -> FenceLog {
        let file = self.file.as_ref().and_then(|f| f.lock().ok()?.try_clone().ok()).map(Mutex::new);
        FenceLog { verbose: self.verbose, file, detached: true }
    }

    pub fn debug(&self, msg: impl AsRef<str>) {
        self.write("DEBUG", msg.as_ref(), self.verbose);
    }
    /// What a detached child did: like debug, and to syslog when detached.
    pub fn info(&self, msg: impl AsRef<str>) {
        self.write("INFO", msg.as_ref(), self.verbose || self.detached);
    }
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.write("WARNING", msg.as_ref(), true);
    }
    pub fn error(&self, msg: impl AsRef<str>) {
        self.write("ERROR", msg.as_ref(), true);
    }

    fn write(&self, level: &str, msg: &str, to_stderr: bool) {
        let line = format!("{} {level}: {msg}\n", timestamp());
        if to_stderr && self.detached {
            let severity = match level {
                "ERROR" => Level::Error,
                "WARNING" => Level::Warn,
                _ => Level::Info,
            };
            to_pacemaker_syslog(severity, &format!("fence_ups[{}]: {level}: {msg}", std::process::id()));
        } else if to_stderr {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        if let Some(f) = &self.file {
            if let Ok(mut f) = f.lock() {
                let _ = f.write_all(line.as_bytes());
            }
        }
    }
}

/// fencing.py's time format: `2026-11-22 04:08:15,807`.
fn timestamp() -> String {
    let t = crate::ocf::log::timestamp(); // 2026-11-22T04:08:15.807Z
    t.trim_end_matches('Z').replacen('T', " ", 1).replacen('.', ",", 1)
}
