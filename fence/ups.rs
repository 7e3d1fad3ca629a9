//! Power operations independent of how the UPS is reached: identity check, off/on with
//! confirmation polled within the time budget. The transports
//! (smart_ups.rs over a serial line, nut.rs over upsd) only send commands and read state.

use std::time::Duration;

use anyhow::{bail, Result};

pub use super::apcsmart::Power;
use super::log::FenceLog;
use crate::ocf::Deadline;

/// A UPS reached one way or another.
pub trait Ups {
    /// "APC Smart UPS on /dev/ttyS0", "NUT UPS myups@127.0.0.1:3493".
    fn describe(&self) -> String;
    /// The serial number the UPS reports, if it reports one.
    fn serial_number(&mut self, deadline: Deadline) -> Result<Option<String>>;
    fn power(&mut self, deadline: Deadline) -> Result<Power>;
    /// Sends the load-off command(s); the caller confirms.
    fn cut_load(&mut self, deadline: Deadline) -> Result<()>;
    /// Sends the load-on command(s); the caller confirms.
    fn restore_load(&mut self, deadline: Deadline) -> Result<()>;
    /// Hands the connection over to process `pid`, a detached child that inherited it and goes
    /// on with it after this process exits (the serial port's UUCP lock names the child).
    fn hand_over(&mut self, _pid: i32) -> Result<()> {
        Ok(())
    }
}

/// How often the state is re-read while waiting for a confirmation.
const CONFIRM_POLL: Duration = Duration::from_millis(250);

/// Refuses a UPS whose serial number is not the pinned one (a swapped cable or a wrong
/// ups_name would otherwise cut the wrong node's power).
pub fn check_identity(ups: &mut dyn Ups, pinned: Option<&str>, deadline: Deadline, log: &FenceLog) -> Result<()> {
    let Some(want) = pinned else { return Ok(()) };
    match ups.serial_number(deadline)? {
        Some(got) if got.trim() == want => {
            log.debug(format!("{} reports serial number {got}, as ups_serial expects", ups.describe()));
            Ok(())
        }
        Some(got) => bail!(
            "{} reports serial number '{}' but ups_serial is '{want}': refusing to act on another UPS (swapped cable?)",
            ups.describe(),
            got.trim()
        ),
        None => bail!("{} does not report a serial number, so ups_serial '{want}' cannot be checked", ups.describe()),
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    Done,
    Already,
}

/// Turns the load to `target` and waits until the UPS confirms it: at most `confirm_within`
/// (power_timeout) after the command, and never past the deadline.
pub fn set_power(
    ups: &mut dyn Ups,
    target: Power,
    confirm_within: Duration,
    deadline: Deadline,
    log: &FenceLog,
) -> Result<Change> {
    if ups.power(deadline)? == target {
        return Ok(Change::Already);
    }
    match target {
        Power::Off => ups.cut_load(deadline)?,
        Power::On => ups.restore_load(deadline)?,
    }
    let deadline = deadline.at_most(confirm_within);
    let mut last_err = None;
    let confirmed = deadline.poll(CONFIRM_POLL, || match ups.power(deadline) {
        Ok(p) if p == target => Some(()),
        Ok(_) => None,
        Err(e) => {
            log.debug(format!("reading the state while waiting: {e:#}"));
            last_err = Some(e);
            None
        }
    });
    match confirmed {
        Some(()) => Ok(Change::Done),
        None => {
            let word = if target == Power::Off { "OFF" } else { "ON" };
            match last_err {
                Some(e) => bail!("Timed out waiting to power {word} ({} last said: {e:#})", ups.describe()),
                None => bail!(
                    "Timed out waiting to power {word} ({} still reports the load {})",
                    ups.describe(),
                    if target == Power::Off { "on" } else { "off" }
                ),
            }
        }
    }
}
