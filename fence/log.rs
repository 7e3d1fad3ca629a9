//! fence_ups's log, in fence-agents' form (`<time> LEVEL: message` on stderr): Pacemaker's fencer
//! logs every stderr line at warning, so stderr gets only errors unless `verbose` is set;
//! `debug_file` gets everything. Nothing secret is ever passed here (passwords are not logged,
//! the NUT transcript masks them).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::sync::Mutex;

pub struct FenceLog {
    verbose: bool,
    file: Option<Mutex<File>>,
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
        Ok(FenceLog { verbose, file })
    }

    /// A log for errors before the parameters are known.
    pub fn quiet() -> FenceLog {
        FenceLog { verbose: false, file: None }
    }

    pub fn debug(&self, msg: impl AsRef<str>) {
        self.write("DEBUG", msg.as_ref(), self.verbose);
    }
    pub fn warn(&self, msg: impl AsRef<str>) {
        self.write("WARNING", msg.as_ref(), true);
    }
    pub fn error(&self, msg: impl AsRef<str>) {
        self.write("ERROR", msg.as_ref(), true);
    }

    fn write(&self, level: &str, msg: &str, to_stderr: bool) {
        let line = format!("{} {level}: {msg}\n", timestamp());
        if to_stderr {
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
