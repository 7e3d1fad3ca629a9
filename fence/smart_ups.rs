//! The APC Smart dialogue over a serial line: handshake, queries with bounded reads, the double
//! commands with their 1.5 s gap, alerts taken out of the stream and logged.

use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use super::apcsmart::{self as apc, Alert, Incoming, LineSplitter, Power};
use super::log::FenceLog;
use super::serial::SerialLine;
use super::ups::Ups;
use crate::ocf::Deadline;

/// One reply may take this long (cluster-glue and NUT wait 3 s).
const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// The handshake is retried this often, with ESC between tries (NUT does the same).
const HANDSHAKE_TRIES: usize = 3;
const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(1500);

pub struct SmartUps<'a> {
    line: SerialLine,
    splitter: LineSplitter,
    log: &'a FenceLog,
    in_smart_mode: bool,
    /// `*` seen: the UPS announced the load is going off.
    pub turning_off: bool,
}

impl<'a> SmartUps<'a> {
    pub fn new(line: SerialLine, log: &'a FenceLog) -> Self {
        if let Some(why) = &line.without_uucp_lock {
            log.warn(format!(
                "no UUCP lock for {}: {why}; the port is held with flock and TIOCEXCL only (programs that honour \
                 only UUCP lock files, such as minicom, are not kept out)",
                line.name
            ));
        }
        SmartUps { line, splitter: LineSplitter::default(), log, in_smart_mode: false, turning_off: false }
    }

    fn note_alert(&mut self, a: Alert) {
        self.log.debug(format!("{}: alert {}", self.line.name, a.describe()));
        if a == Alert::TurningOff {
            self.turning_off = true;
        }
    }

    /// Drops stale input, keeping the alerts in it.
    fn drain(&mut self) -> Result<()> {
        let quick = Deadline::after(Duration::from_millis(1));
        loop {
            let bytes = self.line.read_some(quick)?;
            if bytes.is_empty() {
                break;
            }
            for item in self.splitter.feed(&bytes) {
                match item {
                    Incoming::Alert(a) => self.note_alert(a),
                    Incoming::Line(l) => self.log.debug(format!("{}: ignoring stale reply {l:?}", self.line.name)),
                }
            }
        }
        self.splitter.clear();
        Ok(())
    }

    fn send(&mut self, b: u8) -> Result<()> {
        self.log.debug(format!("{}: > {}", self.line.name, apc::show_byte(b)));
        self.line.write_byte(b)
    }

    /// The next reply line before the deadline; None on timeout.
    fn read_line(&mut self, deadline: Deadline) -> Result<Option<String>> {
        loop {
            let bytes = self.line.read_some(deadline)?;
            if bytes.is_empty() {
                if deadline.expired() {
                    return Ok(None);
                }
                continue;
            }
            for item in self.splitter.feed(&bytes) {
                match item {
                    Incoming::Alert(a) => self.note_alert(a),
                    Incoming::Line(l) => {
                        self.log.debug(format!("{}: < {l:?}", self.line.name));
                        return Ok(Some(l));
                    }
                }
            }
        }
    }

    /// `Y` → `SM`: the UPS answers commands only in smart mode.
    fn smart_mode(&mut self, deadline: Deadline) -> Result<()> {
        if self.in_smart_mode {
            return Ok(());
        }
        let mut heard = Vec::new();
        for attempt in 0..HANDSHAKE_TRIES {
            if deadline.expired() {
                break;
            }
            if attempt > 0 {
                self.send(apc::ESC)?;
            }
            self.drain()?;
            self.send(apc::SMART_MODE)?;
            match self.read_line(deadline.at_most(HANDSHAKE_TIMEOUT))? {
                Some(l) if l == apc::SMART_MODE_REPLY => {
                    self.in_smart_mode = true;
                    return Ok(());
                }
                Some(l) => heard.push(l),
                None if !self.splitter.pending().is_empty() => {
                    heard.push(String::from_utf8_lossy(self.splitter.pending()).into_owned());
                    self.splitter.clear();
                }
                None => {}
            }
        }
        if heard.is_empty() {
            bail!("no answer from the UPS on {} to the smart-mode handshake (Y, expecting SM): check the cable (APC 940-0024C) and that no other program uses the port", self.line.name)
        }
        let shown: Vec<String> = heard.iter().map(|l| l.bytes().map(apc::show_byte).collect()).collect();
        bail!(
            "the device on {} does not speak APC Smart: answered {:?} to the smart-mode handshake (Y, expecting SM)",
            self.line.name,
            shown
        )
    }

    /// Sends a one-byte query and returns its reply; NA is an error naming the command.
    fn query(&mut self, cmd: u8, what: &str, deadline: Deadline) -> Result<String> {
        self.smart_mode(deadline)?;
        self.drain()?;
        self.send(cmd)?;
        let reply = self.read_line(deadline.at_most(REPLY_TIMEOUT))?.ok_or_else(|| {
            anyhow!("the UPS on {} did not answer the {what} query ({})", self.line.name, apc::show_byte(cmd))
        })?;
        if !apc::is_clean(&reply) {
            bail!("garbled reply from the UPS on {} to the {what} query: {:?}", self.line.name, reply);
        }
        if reply == apc::NOT_AVAILABLE {
            return Err(anyhow!(NotAvailable(what.to_string())));
        }
        Ok(reply)
    }

    /// Sends a command byte twice, more than 1.5 s apart, as the UPS requires. A reply to the
    /// first byte (NA) means it was refused: the second is not sent.
    fn double_command(&mut self, cmd: u8, what: &str, deadline: Deadline) -> Result<()> {
        if deadline.remaining() < apc::DOUBLE_COMMAND_GAP {
            bail!("not enough time left for the {what} command (it takes two bytes 1.5 s apart)");
        }
        self.smart_mode(deadline)?;
        self.drain()?;
        self.send(cmd)?;
        let gap = Deadline::after(apc::DOUBLE_COMMAND_GAP);
        while !gap.expired() {
            if let Some(reply) = self.read_line(gap)? {
                bail!("the UPS on {} refused the {what} command: it answered {reply:?}", self.line.name);
            }
        }
        self.send(cmd)
    }
}

/// The UPS answered NA: it does not have or refused this.
#[derive(Debug)]
pub struct NotAvailable(pub String);

impl std::fmt::Display for NotAvailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the UPS answered NA (not available) to the {} query", self.0)
    }
}

impl std::error::Error for NotAvailable {}

impl Ups for SmartUps<'_> {
    fn describe(&self) -> String {
        format!("APC Smart UPS on {}", self.line.name)
    }

    fn serial_number(&mut self, deadline: Deadline) -> Result<Option<String>> {
        match self.query(apc::SERIAL_NUMBER, "serial number (n)", deadline) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is::<NotAvailable>() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn power(&mut self, deadline: Deadline) -> Result<Power> {
        let status = apc::parse_hex_byte(&self.query(apc::STATUS, "status (Q)", deadline)?)
            .map_err(|e| anyhow!("status reply from the UPS on {}: {e}", self.line.name))?;
        let register1 = match self.query(apc::REGISTER1, "register 1 (~)", deadline) {
            Ok(r) => Some(apc::parse_hex_byte(&r).map_err(|e| anyhow!("register 1 reply: {e}"))?),
            Err(e) if e.is::<NotAvailable>() => None,
            Err(e) => return Err(e),
        };
        let power = apc::decode_power(status, register1);
        self.log.debug(format!(
            "{}: status {status:02X}, register 1 {}: load {power:?}",
            self.line.name,
            register1.map(|r| format!("{r:02X}")).unwrap_or_else(|| "NA".into())
        ));
        Ok(power)
    }

    fn cut_load(&mut self, deadline: Deadline) -> Result<()> {
        self.double_command(apc::LOAD_OFF, "load off (Z Z)", deadline)
    }

    fn restore_load(&mut self, deadline: Deadline) -> Result<()> {
        self.double_command(apc::LOAD_ON, "load on (^N ^N)", deadline)
    }

    fn hand_over(&mut self, pid: i32) -> Result<()> {
        self.line.hand_over(pid)
    }
}
