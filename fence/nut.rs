//! NUT's upsd network protocol (fence-contract.md §2.2): the pure line encoding and reply
//! parsing, and a client over TCP with every read and write bounded by the deadline.
//! Load off: `INSTCMD <ups> load.off` with `SET TRACKING ON`; the apcsmart driver acts only on
//! the second of two requests 3-15 s apart, so for it the command is sent twice; success is
//! `ups.status` containing `OFF`, whatever the driver answered (an `OK` only means forwarded).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use super::apcsmart::Power;
use super::log::FenceLog;
use super::ups::Ups;
use crate::ocf::Deadline;

/// Drivers that act only on the second of two requests 3-15 s apart (NUT drivers/apcsmart.h
/// MINCMDTIME/MAXCMDTIME).
pub const DOUBLE_REQUEST_DRIVERS: &[&str] = &["apcsmart"];
pub const DOUBLE_REQUEST_GAP: Duration = Duration::from_millis(3500);
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Quotes an argument for upsd when it needs it (spaces, quotes, backslashes, empty).
pub fn quote(arg: &str) -> String {
    if !arg.is_empty() && arg.chars().all(|c| c.is_ascii_graphic() && c != '"' && c != '\\') {
        return arg.to_string();
    }
    format!("\"{}\"", arg.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Splits a reply line into words, honouring `"..."` with `\"` and `\\` escapes.
pub fn split_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quoted => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            c => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    words
}

/// An `ERR <code>` reply from upsd.
#[derive(Debug, PartialEq, Eq)]
pub struct UpsdError(pub String);

impl UpsdError {
    /// What an operator should do about it.
    pub fn explain(&self) -> &'static str {
        match self.0.as_str() {
            "ACCESS-DENIED" => {
                "wrong username or password, or the user lacks 'instcmds = load.off load.on' in upsd.users"
            }
            "UNKNOWN-UPS" => "no UPS of that name in upsd (check ups_name against ups.conf)",
            "CMD-NOT-SUPPORTED" => "the UPS's driver does not support this command",
            "DATA-STALE" => "the driver has lost contact with the UPS (stale data)",
            "DRIVER-NOT-CONNECTED" => "upsd has no connection to the UPS's driver",
            "VAR-NOT-SUPPORTED" => "the driver does not report this variable",
            "INSTCMD-FAILED" => "the driver failed to run the command",
            _ => "see NUT's net-protocol documentation",
        }
    }
}

impl std::fmt::Display for UpsdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "upsd answered ERR {}: {}", self.0, self.explain())
    }
}

impl std::error::Error for UpsdError {}

/// `ERR X ...` → Err(UpsdError(X)); anything else is the reply.
pub fn check_reply(line: &str) -> Result<&str, UpsdError> {
    match line.strip_prefix("ERR ") {
        Some(rest) => Err(UpsdError(rest.split_whitespace().next().unwrap_or("").to_string())),
        None => Ok(line),
    }
}

/// `VAR <ups> <name> "<value>"` → value.
pub fn parse_var(line: &str, ups: &str, name: &str) -> Option<String> {
    let w = split_words(line);
    (w.len() == 4 && w[0] == "VAR" && w[1] == ups && w[2] == name).then(|| w[3].clone())
}

/// `ups.status` tokens → load on or off (OFF = not supplying the load).
pub fn status_power(status: &str) -> Power {
    if status.split_whitespace().any(|t| t == "OFF") {
        Power::Off
    } else {
        Power::On
    }
}

/// `OK TRACKING <id>` → Some(id); plain `OK` → None.
pub fn tracking_id(reply: &str) -> Option<&str> {
    reply.strip_prefix("OK TRACKING ").map(str::trim)
}

pub struct NutUps<'a> {
    host: String,
    port: u16,
    ups: String,
    username: Option<String>,
    password: Option<String>,
    stream: Option<(BufReader<TcpStream>, TcpStream)>,
    log: &'a FenceLog,
    logged_in: bool,
    /// The driver's last tracking result, shown if the confirmation never comes.
    last_tracking: Option<String>,
}

impl<'a> NutUps<'a> {
    pub fn new(
        host: &str,
        port: u16,
        ups: &str,
        username: Option<String>,
        password: Option<String>,
        log: &'a FenceLog,
    ) -> Self {
        NutUps {
            host: host.to_string(),
            port,
            ups: ups.to_string(),
            username,
            password,
            stream: None,
            log,
            logged_in: false,
            last_tracking: None,
        }
    }

    fn connect(&mut self, deadline: Deadline) -> Result<()> {
        if self.stream.is_some() {
            return Ok(());
        }
        let addrs: Vec<_> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve upsd host {}", self.host))?
            .collect();
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(
                &addr,
                deadline.at_most(IO_TIMEOUT).remaining().max(Duration::from_millis(1)),
            ) {
                Ok(s) => {
                    let reader = BufReader::new(s.try_clone()?);
                    self.stream = Some((reader, s));
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(anyhow!(
            "cannot connect to upsd at {}:{}: {}",
            self.host,
            self.port,
            last.map(|e| e.to_string()).unwrap_or_else(|| "no address".into())
        ))
    }

    /// Sends one request line and reads one reply line, both within the deadline.
    fn request(&mut self, line: &str, shown: &str, deadline: Deadline) -> Result<String> {
        self.connect(deadline)?;
        let limit = deadline.at_most(IO_TIMEOUT).remaining().max(Duration::from_millis(1));
        let (reader, writer) = self.stream.as_mut().expect("connected");
        writer.set_write_timeout(Some(limit))?;
        reader.get_ref().set_read_timeout(Some(limit))?;
        self.log.debug(format!("upsd {}:{} > {shown}", self.host, self.port));
        writer.write_all(format!("{line}\n").as_bytes()).context("cannot send to upsd")?;
        let mut reply = String::new();
        match reader.read_line(&mut reply) {
            Ok(0) => bail!("upsd at {}:{} closed the connection", self.host, self.port),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                bail!("upsd at {}:{} did not answer {shown} in time", self.host, self.port)
            }
            Err(e) => return Err(anyhow!("cannot read from upsd: {e}")),
        }
        let reply = reply.trim_end().to_string();
        self.log.debug(format!("upsd {}:{} < {reply}", self.host, self.port));
        Ok(reply)
    }

    fn checked(&mut self, line: &str, deadline: Deadline) -> Result<String> {
        let reply = self.request(line, line, deadline)?;
        check_reply(&reply).map(str::to_string).map_err(|e| anyhow!(e).context(line.to_string()))
    }

    fn login(&mut self, deadline: Deadline) -> Result<()> {
        if self.logged_in {
            return Ok(());
        }
        if let Some(user) = self.username.clone() {
            self.checked(&format!("USERNAME {}", quote(&user)), deadline)?;
        }
        if let Some(pw) = self.password.clone() {
            let reply = self.request(&format!("PASSWORD {}", quote(&pw)), "PASSWORD ********", deadline)?;
            check_reply(&reply).map_err(|e| anyhow!(e).context("PASSWORD"))?;
        }
        self.logged_in = true;
        Ok(())
    }

    pub fn get_var(&mut self, name: &str, deadline: Deadline) -> Result<String> {
        let reply = self.checked(&format!("GET VAR {} {name}", quote(&self.ups.clone())), deadline)?;
        parse_var(&reply, &self.ups, name)
            .ok_or_else(|| anyhow!("unexpected reply from upsd to GET VAR {name}: {reply:?}"))
    }

    /// Runs an instant command, with tracking when upsd has it; logs the driver's result.
    fn instcmd(&mut self, cmd: &str, deadline: Deadline) -> Result<()> {
        self.login(deadline)?;
        let tracking = match self.checked("SET TRACKING ON", deadline) {
            Ok(_) => true,
            Err(e) => {
                self.log.debug(format!("upsd has no command tracking (older than NUT 2.8.0?): {e:#}"));
                false
            }
        };
        let reply = self.checked(&format!("INSTCMD {} {cmd}", quote(&self.ups.clone())), deadline)?;
        if let (true, Some(id)) = (tracking, tracking_id(&reply).map(str::to_string)) {
            // The result is informative: nut#3535 shows FAILED for commands the UPS ran, so the
            // variable ups.status decides.
            let result = deadline.at_most(Duration::from_secs(5)).poll(Duration::from_millis(200), || {
                match self.request(&format!("GET TRACKING {id}"), &format!("GET TRACKING {id}"), deadline) {
                    Ok(r) if r == "PENDING" => None,
                    Ok(r) => Some(r),
                    Err(e) => Some(format!("{e:#}")),
                }
            });
            let result = result.unwrap_or_else(|| "PENDING".into());
            self.log.debug(format!("the driver's result for {cmd}: {result}; ups.status decides"));
            self.last_tracking = Some(format!("{cmd}: {result}"));
        }
        Ok(())
    }

    /// Sends a command once, or twice 3.5 s apart for drivers that need it.
    fn nasty_command(&mut self, cmd: &str, deadline: Deadline) -> Result<()> {
        let driver = self.get_var("driver.name", deadline).unwrap_or_default();
        self.instcmd(cmd, deadline)?;
        if DOUBLE_REQUEST_DRIVERS.contains(&driver.as_str()) {
            self.log.debug(format!("driver {driver} acts on the second request only: repeating {cmd} in 3.5 s"));
            if deadline.remaining() < DOUBLE_REQUEST_GAP {
                bail!("not enough time left to repeat {cmd} for the {driver} driver (needs 3-15 s between requests)");
            }
            std::thread::sleep(DOUBLE_REQUEST_GAP);
            self.instcmd(cmd, deadline)?;
        }
        Ok(())
    }
}

impl Drop for NutUps<'_> {
    fn drop(&mut self) {
        if let Some((_, mut w)) = self.stream.take() {
            let _ = w.set_write_timeout(Some(Duration::from_millis(200)));
            let _ = w.write_all(b"LOGOUT\n");
        }
    }
}

impl Ups for NutUps<'_> {
    fn describe(&self) -> String {
        match &self.last_tracking {
            Some(t) => format!("NUT UPS {}@{}:{} (driver's result for {t})", self.ups, self.host, self.port),
            None => format!("NUT UPS {}@{}:{}", self.ups, self.host, self.port),
        }
    }

    fn serial_number(&mut self, deadline: Deadline) -> Result<Option<String>> {
        match self.get_var("ups.serial", deadline) {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.downcast_ref::<UpsdError>().is_some_and(|u| u.0 == "VAR-NOT-SUPPORTED") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn power(&mut self, deadline: Deadline) -> Result<Power> {
        let status = self.get_var("ups.status", deadline)?;
        Ok(status_power(&status))
    }

    fn cut_load(&mut self, deadline: Deadline) -> Result<()> {
        self.nasty_command("load.off", deadline)
    }

    fn restore_load(&mut self, deadline: Deadline) -> Result<()> {
        self.nasty_command("load.on", deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_round_trips() {
        assert_eq!(quote("myups"), "myups");
        assert_eq!(quote("pa ss"), "\"pa ss\"");
        assert_eq!(quote("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(split_words(&format!("PASSWORD {}", quote("a\"b\\c d"))), vec!["PASSWORD", "a\"b\\c d"]);
    }

    #[test]
    fn replies() {
        assert_eq!(parse_var("VAR fake ups.status \"OL\"", "fake", "ups.status"), Some("OL".into()));
        assert_eq!(parse_var("VAR fake ups.status \"OFF OB\"", "fake", "ups.status"), Some("OFF OB".into()));
        assert_eq!(parse_var("VAR other ups.status \"OL\"", "fake", "ups.status"), None);
        assert_eq!(check_reply("ERR ACCESS-DENIED"), Err(UpsdError("ACCESS-DENIED".into())));
        assert_eq!(check_reply("OK"), Ok("OK"));
        assert_eq!(
            tracking_id("OK TRACKING 1bd31808-cb49-4aec-9d75-d056e6f018d2"),
            Some("1bd31808-cb49-4aec-9d75-d056e6f018d2")
        );
        assert_eq!(tracking_id("OK"), None);
    }

    #[test]
    fn status_tokens() {
        assert_eq!(status_power("OL"), Power::On);
        assert_eq!(status_power("OB LB"), Power::On);
        assert_eq!(status_power("OFF"), Power::Off);
        assert_eq!(status_power("OL OFF"), Power::Off);
        assert_eq!(status_power("OFFLINE"), Power::On, "a token, not a substring");
    }
}
