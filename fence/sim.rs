//! A simulated APC Smart UPS on a pseudo-terminal: the tests' and the benchmark's peer for the
//! apcsmart transport, and a lab tool (`hastack ups-sim`) whose "load off" can run a command
//! (the cluster tests use it to cut a node). It answers what fence_ups and cluster-glue's
//! apcsmart plugin send (also the latter's reset, `@nnn`: NUT's "hard hibernate" as a "new"
//! model does it, apcsmart(8)), enforces the double-command timing, records every byte it
//! receives, and has fault modes for the failures a real line shows.
//!
//! The slave side is reached through a symlink (`link`) so that tests name a stable path.

use std::fs;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::termios;

use super::apcsmart as apc;

/// How the simulated UPS misbehaves.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "lower")]
pub enum Fault {
    None,
    /// Never answers, never acts (cable unplugged, UPS dead).
    Silent,
    /// Answers every command with line noise and acts on nothing (wrong speed, bad cable).
    Garbled,
    /// Answers correctly after `slow_delay`.
    Slow,
    /// Answers the handshake, then NA to everything and refuses the load commands.
    #[value(name = "na")]
    NotAvailable,
    /// Sprinkles unsolicited alert characters before and inside every reply.
    Alerts,
}

impl std::str::FromStr for Fault {
    type Err = String;
    fn from_str(s: &str) -> Result<Fault, String> {
        Ok(match s {
            "none" => Fault::None,
            "silent" => Fault::Silent,
            "garbled" => Fault::Garbled,
            "slow" => Fault::Slow,
            "na" => Fault::NotAvailable,
            "alerts" => Fault::Alerts,
            _ => return Err(format!("unknown fault '{s}' (none, silent, garbled, slow, na, alerts)")),
        })
    }
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub serial: String,
    pub fault: Fault,
    pub slow_delay: Duration,
    /// Run (argument vector, no shell) when the load goes off.
    pub on_load_off: Vec<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            serial: "QS0000000001".into(),
            fault: Fault::None,
            slow_delay: Duration::from_millis(700),
            on_load_off: Vec::new(),
        }
    }
}

/// Something the simulated UPS did, for the tests to assert on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    LoadOff,
    LoadOn,
    /// A second Z or ^N came too early (< 1.5 s): ignored, and the first one forgotten.
    TooEarly(u8),
    /// `-`: an EEPROM value was cycled (fence_ups must never cause this).
    EepromWrite,
}

/// The UPS's state, shared with the thread that plays it.
#[derive(Debug)]
pub struct SimState {
    pub load_on: bool,
    /// Every byte received, with the time it arrived.
    pub received: Vec<(Instant, u8)>,
    pub events: Vec<(Instant, Event)>,
    pub fault: Fault,
    armed: Option<(u8, Instant)>,
    shutdown_delay: usize,
    wakeup_delay: usize,
    /// The last value query (`p` or `r`), which `-` cycles.
    last_value_query: Option<u8>,
    /// The digits of an `@nnn` being received.
    at_digits: Option<String>,
    /// An accepted `@nnn`: the load goes off when the grace period (`p`) has passed and comes
    /// back after the wake-up delay (`r`) plus nnn * 6 minutes.
    hibernation: Option<Hibernation>,
}

#[derive(Copy, Clone, Debug)]
struct Hibernation {
    off_at: Instant,
    on_at: Instant,
    asleep: bool,
}

const SHUTDOWN_DELAYS: &[&str] = &["020", "180", "300", "600"];
const REG1_WAKES_ITSELF: u8 = 0x80;
const REG3_ASLEEP_FROM_AT: u8 = 0x08;
const WAKEUP_DELAYS: &[&str] = &["000", "060", "180", "300"];
const DOUBLE_MIN: Duration = Duration::from_millis(1500);
/// How long an `@` hibernation keeps the load off at least. With `r` = 000 and `@000` the
/// documented wake-up delay is nothing, yet a real unit takes seconds to cycle its output; 2 s
/// also lets a client that polls register 3 once a second (cluster-glue) see the sleep.
const MIN_HIBERNATION: Duration = Duration::from_secs(2);
const DOUBLE_MAX: Duration = Duration::from_secs(15);

pub struct UpsSim {
    link: PathBuf,
    state: Arc<Mutex<SimState>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl UpsSim {
    /// Creates the pseudo-terminal, links `link` to its slave side and starts answering.
    pub fn start(link: &Path, config: SimConfig) -> Result<UpsSim> {
        let pty = nix::pty::openpty(None, None).context("openpty")?;
        // Raw from the start: with the default line discipline the slave would echo the
        // simulator's own replies back to it before a client sets the port up.
        let mut t = termios::tcgetattr(pty.slave.as_fd())?;
        termios::cfmakeraw(&mut t);
        termios::tcsetattr(pty.slave.as_fd(), termios::SetArg::TCSANOW, &t)?;
        let slave_path = fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))?;
        let _ = fs::remove_file(link);
        std::os::unix::fs::symlink(&slave_path, link)
            .with_context(|| format!("cannot link {} to {}", link.display(), slave_path.display()))?;
        let state = Arc::new(Mutex::new(SimState {
            load_on: true,
            received: Vec::new(),
            events: Vec::new(),
            fault: config.fault,
            armed: None,
            shutdown_delay: 0,
            wakeup_delay: 0,
            last_value_query: None,
            at_digits: None,
            hibernation: None,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("ups-sim".into())
            .spawn(move || serve(pty.master, pty.slave, config, s, st))?;
        Ok(UpsSim { link: link.to_path_buf(), state, stop, thread: Some(thread) })
    }

    pub fn link(&self) -> &Path {
        &self.link
    }
    pub fn load_on(&self) -> bool {
        self.state.lock().unwrap().load_on
    }
    pub fn set_load(&self, on: bool) {
        self.state.lock().unwrap().load_on = on;
    }
    pub fn set_fault(&self, fault: Fault) {
        self.state.lock().unwrap().fault = fault;
    }
    /// The bytes received so far, as a transcript (`Y n Q ~ Z Z ^N`).
    pub fn transcript(&self) -> String {
        self.state.lock().unwrap().received.iter().map(|(_, b)| apc::show_byte(*b)).collect::<Vec<_>>().join(" ")
    }
    pub fn received(&self) -> Vec<(Instant, u8)> {
        self.state.lock().unwrap().received.clone()
    }
    pub fn events(&self) -> Vec<(Instant, Event)> {
        self.state.lock().unwrap().events.clone()
    }
    pub fn clear_log(&self) {
        let mut s = self.state.lock().unwrap();
        s.received.clear();
        s.events.clear();
    }
}

impl Drop for UpsSim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = fs::remove_file(&self.link);
    }
}

/// The simulator's loop: one byte in, its reply out.
fn serve(master: OwnedFd, _slave: OwnedFd, config: SimConfig, state: Arc<Mutex<SimState>>, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; 64];
    let mut noise: u32 = 0x9e37_79b9;
    while !stop.load(Ordering::SeqCst) {
        let went_off = hibernate(&mut state.lock().unwrap(), Instant::now());
        if went_off && !config.on_load_off.is_empty() {
            run_hook(&config.on_load_off);
        }
        let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(50u16)) {
            Ok(n) if n > 0 => {}
            _ => continue,
        }
        let n = match nix::unistd::read(&master, &mut buf) {
            Ok(0) | Err(_) => {
                std::thread::sleep(Duration::from_millis(20));
                continue;
            }
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            let (reply, fault, went_off) = {
                let mut s = state.lock().unwrap();
                s.received.push((Instant::now(), b));
                let fault = s.fault;
                let was_on = s.load_on;
                let reply = match fault {
                    Fault::Silent => None,
                    Fault::Garbled => Some(garble(&mut noise)),
                    Fault::NotAvailable if b != apc::SMART_MODE => Some("NA".to_string()),
                    _ => answer(&mut s, b, &config),
                };
                (reply, fault, was_on && !s.load_on)
            };
            if went_off && !config.on_load_off.is_empty() {
                run_hook(&config.on_load_off);
            }
            let Some(reply) = reply else { continue };
            if fault == Fault::Slow {
                std::thread::sleep(config.slow_delay);
            }
            let bytes = if fault == Fault::Alerts { with_alerts(&reply) } else { format!("{reply}\r\n").into_bytes() };
            let _ = nix::unistd::write(&master, &bytes);
        }
    }
}

/// Moves an `@` hibernation along at `now`; true when the load just went off.
fn hibernate(s: &mut SimState, now: Instant) -> bool {
    let Some(mut h) = s.hibernation else { return false };
    if !h.asleep && now >= h.off_at {
        h.asleep = true;
        s.hibernation = Some(h);
        if s.load_on {
            s.load_on = false;
            s.events.push((now, Event::LoadOff));
            return true;
        }
    } else if h.asleep && now >= h.on_at {
        s.hibernation = None;
        s.load_on = true;
        s.events.push((now, Event::LoadOn));
    }
    false
}

/// The next byte of `@nnn`: digits are collected (no reply) until the third, which the UPS
/// answers `OK`, scheduling the hibernation; anything else ends the command with `NA`.
fn at_command(s: &mut SimState, b: u8) -> Option<String> {
    let digits = s.at_digits.as_mut()?;
    if !b.is_ascii_digit() {
        s.at_digits = None;
        return Some("NA".into());
    }
    digits.push(b as char);
    if digits.len() < 3 {
        return None;
    }
    let nnn: u64 = digits.parse().unwrap_or(0);
    s.at_digits = None;
    let seconds = |table: &[&str], i: usize| Duration::from_secs(table[i].parse().unwrap_or(0));
    let now = Instant::now();
    let off_at = now + seconds(SHUTDOWN_DELAYS, s.shutdown_delay);
    let wake = (seconds(WAKEUP_DELAYS, s.wakeup_delay) + Duration::from_secs(nnn * 360)).max(MIN_HIBERNATION);
    s.hibernation = Some(Hibernation { off_at, on_at: off_at + wake, asleep: false });
    Some("OK".into())
}

/// The reply to one command byte, updating the state; None for commands without a reply.
fn answer(s: &mut SimState, b: u8, config: &SimConfig) -> Option<String> {
    let hex = |v: u8| format!("{v:02X}");
    if s.at_digits.is_some() {
        return at_command(s, b);
    }
    if b != b'-' && b != apc::SMART_MODE {
        s.last_value_query = None;
    }
    let asleep = s.hibernation.is_some_and(|h| h.asleep);
    Some(match b {
        apc::SMART_MODE => "SM".into(),
        apc::SERIAL_NUMBER => config.serial.clone(),
        apc::MODEL => "Smart-UPS 1000".into(),
        b'a' => "3.!$%+?=#|.\u{1}\u{e}\u{1a}'+-89@ABDEFGKLMNOPQRSUVWXYZabcefgjklmnopqrsuxyz~".into(),
        b'b' => "50.9.D".into(),
        b'c' => "UPS_IDEN".into(),
        b'V' => "GWD".into(),
        apc::STATUS => hex(if s.load_on { apc::STATUS_ONLINE } else { 0x00 }),
        // Asleep after @: bit 7, "ready to power the load on user command or return of line
        // power"; off after Z: bit 6, on user command only.
        apc::REGISTER1 => hex(match (s.load_on, asleep) {
            (true, _) => 0x00,
            (false, true) => REG1_WAKES_ITSELF,
            (false, false) => apc::REG1_LOAD_OFF,
        }),
        // Register 3 bit 3: "in sleep mode from @".
        b'8' => hex(if asleep { REG3_ASLEEP_FROM_AT } else { 0x00 }),
        b'p' => {
            s.last_value_query = Some(b'p');
            SHUTDOWN_DELAYS[s.shutdown_delay].into()
        }
        b'r' => {
            s.last_value_query = Some(b'r');
            WAKEUP_DELAYS[s.wakeup_delay].into()
        }
        b'-' => {
            s.events.push((Instant::now(), Event::EepromWrite));
            match s.last_value_query {
                Some(b'p') => s.shutdown_delay = (s.shutdown_delay + 1) % SHUTDOWN_DELAYS.len(),
                Some(b'r') => s.wakeup_delay = (s.wakeup_delay + 1) % WAKEUP_DELAYS.len(),
                _ => return Some("NA".into()),
            }
            "OK".into()
        }
        apc::LOAD_OFF | apc::LOAD_ON => {
            double_command(s, b);
            return None;
        }
        // DEL aborts a pending @ (one whose grace period is still running).
        0x7f => {
            if s.hibernation.is_some_and(|h| !h.asleep) {
                s.hibernation = None;
            }
            "OK".into()
        }
        // S (soft hibernate) only works on battery, and the simulated UPS is on line power.
        b'S' => "NA".into(),
        b'@' => {
            s.at_digits = Some(String::new());
            return None;
        }
        apc::ESC | b'\r' | b'\n' => return None,
        _ => "NA".into(),
    })
}

/// The second of two identical bytes 1.5-15 s apart acts; one too early cancels the first.
fn double_command(s: &mut SimState, b: u8) {
    let now = Instant::now();
    match s.armed {
        Some((armed, at)) if armed == b && now - at >= DOUBLE_MIN && now - at <= DOUBLE_MAX => {
            s.armed = None;
            let on = b == apc::LOAD_ON;
            s.load_on = on;
            s.events.push((now, if on { Event::LoadOn } else { Event::LoadOff }));
        }
        Some((armed, at)) if armed == b && now - at < DOUBLE_MIN => {
            s.armed = None;
            s.events.push((now, Event::TooEarly(b)));
        }
        _ => s.armed = Some((b, now)),
    }
}

fn garble(state: &mut u32) -> String {
    (0..6)
        .map(|_| {
            *state ^= *state << 13;
            *state ^= *state >> 17;
            *state ^= *state << 5;
            // Bytes that are neither printable nor alerts nor line ends.
            char::from(0x80 + (*state % 0x7f) as u8)
        })
        .collect::<String>()
        + "\r\n"
}

fn with_alerts(reply: &str) -> Vec<u8> {
    let mut out = b"$".to_vec();
    let bytes = reply.as_bytes();
    let mid = bytes.len() / 2;
    out.extend_from_slice(&bytes[..mid]);
    out.push(b'!');
    out.extend_from_slice(&bytes[mid..]);
    out.extend_from_slice(b"\r\n+");
    out
}

fn run_hook(argv: &[String]) {
    let argv = argv.to_vec();
    std::thread::spawn(move || {
        if let Ok(mut child) = std::process::Command::new(&argv[0]).args(&argv[1..]).spawn() {
            let _ = child.wait();
        }
    });
}

/// `hastack ups-sim`: runs a simulated UPS until SIGTERM or SIGINT, printing one line per
/// event on stdout (`ready`, `load off`, `load on`, ...), and removes its link on the way out.
#[derive(clap::Args, Debug)]
pub struct SimArgs {
    /// The symlink to create to the pseudo-terminal's slave side (the UPS's "serial port").
    #[arg(long)]
    pub link: PathBuf,
    /// The serial number the UPS reports (`n`).
    #[arg(long, default_value = "QS0000000001")]
    pub serial: String,
    /// none, silent, garbled, slow, na, alerts.
    #[arg(long, default_value = "none")]
    pub fault: Fault,
    /// Start with the load off.
    #[arg(long)]
    pub off: bool,
    /// A command (argument vector, no shell) run each time the load goes off; the rest of the
    /// command line is its arguments.
    #[arg(long, num_args = 1.., allow_hyphen_values = true, trailing_var_arg = true)]
    pub on_load_off: Vec<String>,
}

pub fn run_cli(args: SimArgs) -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    use std::io::Write;
    // Block the stop signals before the simulator's thread exists, so only sigwait sees them.
    let mut stop_signals = SigSet::empty();
    stop_signals.add(Signal::SIGTERM);
    stop_signals.add(Signal::SIGINT);
    stop_signals.thread_block()?;
    let config =
        SimConfig { serial: args.serial, fault: args.fault, on_load_off: args.on_load_off, ..SimConfig::default() };
    let link = args.link.clone();
    let sim = UpsSim::start(&link, config)?;
    sim.set_load(!args.off);
    let sim = Arc::new(sim);
    let watcher = {
        let sim = sim.clone();
        std::thread::spawn(move || {
            let mut seen = 0;
            loop {
                let events = sim.events();
                for (_, e) in &events[seen..] {
                    let line = match e {
                        Event::LoadOff => "load off".to_string(),
                        Event::LoadOn => "load on".to_string(),
                        Event::TooEarly(b) => format!("too early {}", apc::show_byte(*b)),
                        Event::EepromWrite => "eeprom write".to_string(),
                    };
                    let _ = writeln!(std::io::stdout(), "{line}");
                }
                seen = events.len();
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    println!("ready {}", link.display());
    let _ = std::io::stdout().flush();
    let _ = stop_signals.wait();
    // The watcher thread holds the simulator until the process ends: remove the link here.
    drop(watcher);
    let _ = fs::remove_file(&link);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> SimState {
        SimState {
            load_on: true,
            received: Vec::new(),
            events: Vec::new(),
            fault: Fault::None,
            armed: None,
            shutdown_delay: 0,
            wakeup_delay: 0,
            last_value_query: None,
            at_digits: None,
            hibernation: None,
        }
    }

    fn feed(s: &mut SimState, bytes: &[u8]) -> Vec<String> {
        bytes.iter().filter_map(|b| answer(s, *b, &SimConfig::default())).collect()
    }

    #[test]
    fn at_hibernates_after_the_grace_period_and_wakes_up() {
        let mut s = state();
        assert_eq!(feed(&mut s, b"@00"), Vec::<String>::new(), "no reply before the third digit");
        assert_eq!(feed(&mut s, b"0"), vec!["OK"]);
        let h = s.hibernation.unwrap();
        let grace = h.off_at.saturating_duration_since(Instant::now());
        assert!(grace > Duration::from_secs(15) && grace <= Duration::from_secs(20), "the grace period p (020 s)");
        assert_eq!(h.on_at - h.off_at, MIN_HIBERNATION, "r 000 and @000: the shortest sleep");
        assert_eq!(feed(&mut s, b"Q8"), vec!["08", "00"], "still on line during the grace period");
        assert!(!hibernate(&mut s, h.off_at - Duration::from_millis(1)));
        assert!(hibernate(&mut s, h.off_at), "the load goes off");
        assert_eq!(feed(&mut s, b"Q~8"), vec!["00", "80", "08"], "off, waking by itself, asleep from @");
        assert!(!hibernate(&mut s, h.on_at));
        assert!(s.load_on && s.hibernation.is_none());
        let kinds: Vec<Event> = s.events.iter().map(|(_, e)| e.clone()).collect();
        assert_eq!(kinds, vec![Event::LoadOff, Event::LoadOn]);
        assert_eq!(feed(&mut s, b"8"), vec!["00"]);
    }

    #[test]
    fn at_takes_the_wakeup_delay_and_nnn_and_del_aborts_it() {
        let mut s = state();
        s.wakeup_delay = 1; // 060 s
        feed(&mut s, b"@002");
        let h = s.hibernation.unwrap();
        assert_eq!(h.on_at - h.off_at, Duration::from_secs(60 + 2 * 360));
        assert_eq!(feed(&mut s, &[0x7f]), vec!["OK"]);
        assert!(s.hibernation.is_none(), "aborted within the grace period");
        assert_eq!(feed(&mut s, b"@0x"), vec!["NA"], "not a digit");
        assert!(s.at_digits.is_none() && s.hibernation.is_none());
        assert_eq!(feed(&mut s, b"Y"), vec!["SM"]);
    }
}
