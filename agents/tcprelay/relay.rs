//! The relay daemon (`hastack tcprelay-daemon`, started by the agent in a session of its own):
//! it owns the client-facing sockets on the virtual address and relays every connection to the
//! application on this node, byte for byte, in one thread around poll(2).
//!
//! A live migration, source side (`freeze`, from migrate_to):
//! 1. boundary: stop reading the clients, except those whose bytes given to the application so
//!    far end inside a message (`framing=line`: a line), until that message has gone through;
//!    nothing irreversible has happened yet, so a timeout here resumes relaying;
//! 2. drain: half-close every application connection and read it until the application closes
//!    it, writing the answers to the clients (what the clients cannot take yet is kept);
//! 3. release: remove the virtual address (from now on no segment of a client reaches this
//!    node, so nothing it sends can be acknowledged here and then lost), accept what is still in
//!    the listen backlog, close the listener;
//! 4. snapshot: read every client socket's state with TCP_REPAIR and close it in repair mode
//!    (no FIN, no RST reaches the client);
//! 5. hand off: serve the state to the target (handoff.rs) for at most [`HOLD`], then exit.
//!
//! Target side (`--restore`, from migrate_from): recreate every socket in repair mode before the
//! address is here, add the address, open the listener, leave repair mode (each socket sends a
//! window probe, the client answers and goes on), announce the address, connect to the
//! application and relay, starting with what the relay on the source still held.

use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::control::{self, Answer};
use super::handoff::{self, Key};
use super::state::{Carried, Migration};
use crate::net::netlink;
use crate::net::tcprepair::{self, RepairError};

/// What one direction of a connection may hold in the relay while relaying.
const CAP: usize = 256 * 1024;
/// What the application may still answer while a migration drains it.
const DRAIN_CAP: usize = 64 << 20;
const CHUNK: usize = 64 * 1024;
/// How long a frozen source keeps the state for the target (migrate_from runs right after
/// migrate_to; Pacemaker's stop of the source ends it sooner).
pub const HOLD: Duration = Duration::from_secs(60);
/// Wake up at least this often (signals, deadlines).
const TICK: Duration = Duration::from_millis(100);

static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
}

/// How the byte stream divides into messages, so that a migration cuts it between two.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Framing {
    /// Messages end with `\n`.
    Line,
    /// No boundaries known: the stream is cut wherever it stands.
    None,
}

impl Framing {
    pub fn name(self) -> &'static str {
        match self {
            Framing::Line => "line",
            Framing::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<Framing> {
        match s {
            "line" => Some(Framing::Line),
            "none" => Some(Framing::None),
            _ => None,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct DaemonArgs {
    /// The resource (OCF_RESOURCE_INSTANCE).
    #[arg(long)]
    pub resource: String,
    /// The virtual address and port the clients connect to.
    #[arg(long)]
    pub listen: SocketAddr,
    /// The application on this node.
    #[arg(long)]
    pub backend: SocketAddr,
    /// line or none.
    #[arg(long, default_value = "line")]
    pub framing: String,
    /// The control socket.
    #[arg(long)]
    pub control: PathBuf,
    /// Restore the connections in this migration state (then remove the file).
    #[arg(long)]
    pub restore: Option<PathBuf>,
    /// With --restore: the interface index, prefix and label the address goes on.
    #[arg(long)]
    pub vip_dev: Option<u32>,
    #[arg(long)]
    pub vip_prefix: Option<u8>,
    #[arg(long)]
    pub vip_label: Option<String>,
}

fn log(msg: impl AsRef<str>) {
    let ms = wall_ms();
    eprintln!("{}.{:03} tcprelay[{}]: {}", ms / 1000, ms % 1000, std::process::id(), msg.as_ref());
}

pub fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// The daemon's entry point; returns the exit code.
pub fn main(args: DaemonArgs) -> i32 {
    let Some(framing) = Framing::parse(&args.framing) else {
        log(format!("unknown framing '{}'", args.framing));
        return 2;
    };
    // SAFETY: the handler only stores to an atomic.
    unsafe {
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_term),
            nix::sys::signal::SaFlags::empty(),
            nix::sys::signal::SigSet::empty(),
        );
        let _ = nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGTERM, &action);
        let _ = nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGINT, &action);
    }
    let mut relay = Relay {
        resource: args.resource.clone(),
        listen: args.listen,
        backend: args.backend,
        framing,
        listener: None,
        control: None,
        conns: Vec::new(),
        mode: Mode::Running,
        restored: None,
    };
    let result = match &args.restore {
        Some(file) => relay.restore(file, &args),
        None => relay.open_listener(),
    };
    if let Err(e) = result.and_then(|_| relay.open_control(&args.control)) {
        log(&e);
        eprintln!("{e}");
        return 1;
    }
    log(format!("relaying {} to {} ({} connections)", args.listen, args.backend, relay.conns.len()));
    match relay.run() {
        Ok(Some(frozen)) => serve_handoff(frozen, relay.control.take().expect("control socket")),
        Ok(None) => 0,
        Err(e) => {
            log(format!("giving up: {e}"));
            1
        }
    }
}

enum Backend {
    /// Not connected (a restored connection before its connect, or during a freeze).
    Idle,
    Connecting(Socket),
    Up(TcpStream),
}

/// One client connection and its connection to the application.
struct Conn {
    client: TcpStream,
    peer: SocketAddr,
    backend: Backend,
    to_backend: VecDeque<u8>,
    to_client: VecDeque<u8>,
    /// The bytes given to the application so far end inside a message.
    mid_message: bool,
    client_eof: bool,
    backend_eof: bool,
    client_shut: bool,
    backend_shut: bool,
    closed: bool,
}

impl Conn {
    fn new(client: TcpStream, peer: SocketAddr) -> Conn {
        client.set_nonblocking(true).ok();
        client.set_nodelay(true).ok();
        Conn {
            client,
            peer,
            backend: Backend::Idle,
            to_backend: VecDeque::new(),
            to_client: VecDeque::new(),
            mid_message: false,
            client_eof: false,
            backend_eof: false,
            client_shut: false,
            backend_shut: false,
            closed: false,
        }
    }

    fn connect_backend(&mut self, to: SocketAddr) {
        let sock = match Socket::new(Domain::for_address(to), Type::STREAM, Some(Protocol::TCP)) {
            Ok(s) => s,
            Err(e) => {
                log(format!("{}: cannot make a socket to the application: {e}", self.peer));
                self.closed = true;
                return;
            }
        };
        sock.set_nonblocking(true).ok();
        sock.set_tcp_nodelay(true).ok();
        match sock.connect(&SockAddr::from(to)) {
            Ok(()) => self.backend = Backend::Up(sock.into()),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => self.backend = Backend::Connecting(sock),
            Err(e) => {
                log(format!("{}: the application at {to} refuses: {e}", self.peer));
                self.closed = true;
            }
        }
    }

    fn backend_fd(&self) -> Option<RawFd> {
        match &self.backend {
            Backend::Idle => None,
            Backend::Connecting(s) => Some(s.as_raw_fd()),
            Backend::Up(s) => Some(s.as_raw_fd()),
        }
    }

    /// How many bytes at the front of `to_backend` may go to the application now.
    fn forwardable(&self, freezing: bool, framing: Framing) -> usize {
        if !freezing {
            return self.to_backend.len();
        }
        if !self.mid_message || framing == Framing::None {
            return 0;
        }
        // Only the rest of the message under way.
        self.to_backend.iter().position(|b| *b == b'\n').map(|i| i + 1).unwrap_or(self.to_backend.len())
    }

    fn wants_client_read(&self, mode: Phase) -> bool {
        if self.client_eof || self.closed || self.to_backend.len() >= CAP {
            return false;
        }
        match mode {
            Phase::Running => true,
            // Only to complete a message the application has the start of.
            Phase::Boundary => self.mid_message && !self.to_backend.contains(&b'\n'),
            Phase::Draining => false,
        }
    }

    fn read_client(&mut self) {
        let mut buf = [0u8; CHUNK];
        let room = CAP.saturating_sub(self.to_backend.len()).min(CHUNK);
        match self.client.read(&mut buf[..room.max(1)]) {
            Ok(0) => self.client_eof = true,
            Ok(n) => self.to_backend.extend(&buf[..n]),
            Err(e) if would_block(&e) => {}
            Err(e) => self.fail("client", e),
        }
    }

    fn write_backend(&mut self, limit: usize, framing: Framing) {
        let Backend::Up(s) = &mut self.backend else { return };
        let (front, _) = self.to_backend.as_slices();
        let n = front.len().min(limit);
        if n == 0 {
            return;
        }
        match s.write(&front[..n]) {
            Ok(w) => {
                let last = front[w - 1];
                self.to_backend.drain(..w);
                self.mid_message = framing == Framing::Line && last != b'\n';
            }
            Err(e) if would_block(&e) => {}
            Err(e) => self.fail("application", e),
        }
    }

    fn read_backend(&mut self, cap: usize) {
        let Backend::Up(s) = &mut self.backend else { return };
        let mut buf = [0u8; CHUNK];
        let room = cap.saturating_sub(self.to_client.len()).min(CHUNK);
        if room == 0 {
            return;
        }
        match s.read(&mut buf[..room]) {
            Ok(0) => self.backend_eof = true,
            Ok(n) => self.to_client.extend(&buf[..n]),
            Err(e) if would_block(&e) => {}
            Err(e) => self.fail("application", e),
        }
    }

    fn write_client(&mut self) {
        let (front, _) = self.to_client.as_slices();
        if front.is_empty() {
            return;
        }
        match self.client.write(front) {
            Ok(w) => {
                self.to_client.drain(..w);
            }
            Err(e) if would_block(&e) => {}
            Err(e) => self.fail("client", e),
        }
    }

    /// A connect under way has finished (or failed).
    fn finish_connect(&mut self) {
        if let Backend::Connecting(s) = &self.backend {
            match s.take_error() {
                Ok(None) => {
                    let Backend::Connecting(s) = std::mem::replace(&mut self.backend, Backend::Idle) else {
                        unreachable!()
                    };
                    self.backend = Backend::Up(s.into());
                }
                Ok(Some(e)) | Err(e) => {
                    log(format!("{}: cannot reach the application: {e}", self.peer));
                    self.closed = true;
                }
            }
        }
    }

    fn fail(&mut self, side: &str, e: io::Error) {
        log(format!("{}: {side}: {e}", self.peer));
        self.closed = true;
    }

    /// Passes a half-close on once everything before it went through; marks the connection done.
    fn propagate_close(&mut self) {
        if self.client_eof && self.to_backend.is_empty() && !self.backend_shut {
            if let Backend::Up(s) = &self.backend {
                let _ = s.shutdown(Shutdown::Write);
                self.backend_shut = true;
            }
        }
        if self.backend_eof && self.to_client.is_empty() && !self.client_shut {
            let _ = self.client.shutdown(Shutdown::Write);
            self.client_shut = true;
        }
        if self.client_eof && self.client_shut {
            self.closed = true;
        }
    }
}

fn would_block(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted)
}

#[derive(Copy, Clone, PartialEq, Eq, Debug)]
enum Phase {
    Running,
    Boundary,
    Draining,
}

/// A migration under way on the source.
struct Freeze {
    started: Instant,
    started_ms: u64,
    boundary_by: Instant,
    done_by: Instant,
    reply: UnixStream,
    handoff: TcpListener,
    key: Key,
}

enum Mode {
    Running,
    Freezing(Phase, Box<Freeze>),
}

/// What the source keeps after the release: the state and the means to hand it over.
pub struct Frozen {
    resource: String,
    state: Vec<u8>,
    handoff: TcpListener,
    key: Key,
}

struct Relay {
    resource: String,
    listen: SocketAddr,
    backend: SocketAddr,
    framing: Framing,
    listener: Option<TcpListener>,
    control: Option<UnixListener>,
    conns: Vec<Conn>,
    mode: Mode,
    /// Restored connections, those that failed, and the freeze the clients saw (ms).
    restored: Option<(usize, usize, u64)>,
}

#[derive(Copy, Clone)]
enum Slot {
    Control,
    Listener,
    Client(usize),
    Backend(usize),
}

impl Relay {
    fn phase(&self) -> Phase {
        match &self.mode {
            Mode::Running => Phase::Running,
            Mode::Freezing(p, _) => *p,
        }
    }

    fn open_listener(&mut self) -> Result<(), String> {
        let sock = Socket::new(Domain::for_address(self.listen), Type::STREAM, Some(Protocol::TCP))
            .map_err(|e| format!("socket: {e}"))?;
        sock.set_reuse_address(true).ok();
        if self.listen.is_ipv6() {
            sock.set_only_v6(true).ok();
        }
        sock.bind(&SockAddr::from(self.listen)).map_err(|e| format!("cannot listen on {}: {e}", self.listen))?;
        sock.listen(1024).map_err(|e| format!("cannot listen on {}: {e}", self.listen))?;
        sock.set_nonblocking(true).ok();
        self.listener = Some(sock.into());
        Ok(())
    }

    fn open_control(&mut self, path: &Path) -> Result<(), String> {
        let _ = std::fs::remove_file(path);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let l =
            UnixListener::bind(path).map_err(|e| format!("cannot open the control socket {}: {e}", path.display()))?;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        l.set_nonblocking(true).ok();
        self.control = Some(l);
        Ok(())
    }

    /// Relays until a signal (Ok(None)) or a migration froze everything (Ok(Some)).
    fn run(&mut self) -> Result<Option<Frozen>, String> {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut slots: Vec<Slot> = Vec::new();
        loop {
            if TERMINATE.load(Ordering::SeqCst) {
                log(format!("terminating: closing {} connections", self.conns.len()));
                return Ok(None);
            }
            let phase = self.phase();
            fds.clear();
            slots.clear();
            let mut add = |fd: RawFd, events: i16, slot: Slot| {
                fds.push(libc::pollfd { fd, events, revents: 0 });
                slots.push(slot);
            };
            if let Some(c) = &self.control {
                add(c.as_raw_fd(), libc::POLLIN, Slot::Control);
            }
            if let Some(l) = &self.listener {
                add(l.as_raw_fd(), libc::POLLIN, Slot::Listener);
            }
            let freezing = phase != Phase::Running;
            let cap = if phase == Phase::Draining { DRAIN_CAP } else { CAP };
            for (i, c) in self.conns.iter().enumerate() {
                let mut ev = 0;
                if c.wants_client_read(phase) {
                    ev |= libc::POLLIN;
                }
                if !c.to_client.is_empty() && !c.client_shut {
                    ev |= libc::POLLOUT;
                }
                add(c.client.as_raw_fd(), ev, Slot::Client(i));
                if let Some(fd) = c.backend_fd() {
                    let mut ev = 0;
                    match &c.backend {
                        Backend::Connecting(_) => ev |= libc::POLLOUT,
                        _ => {
                            if !c.backend_eof && c.to_client.len() < cap {
                                ev |= libc::POLLIN;
                            }
                            if !c.backend_shut && c.forwardable(freezing, self.framing) > 0 {
                                ev |= libc::POLLOUT;
                            }
                        }
                    }
                    add(fd, ev, Slot::Backend(i));
                }
            }
            // SAFETY: `fds` is a valid array of pollfd for its length.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, TICK.as_millis() as i32) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(format!("poll: {e}"));
            }
            let mut accept = false;
            let mut control = false;
            for (pfd, slot) in fds.iter().zip(&slots) {
                if pfd.revents == 0 {
                    continue;
                }
                let r = pfd.revents;
                let readable = r & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0;
                let writable = r & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) != 0;
                match *slot {
                    Slot::Control => control = true,
                    Slot::Listener => accept = true,
                    Slot::Client(i) => {
                        let c = &mut self.conns[i];
                        if readable && c.wants_client_read(phase) {
                            c.read_client();
                        }
                        if writable {
                            c.write_client();
                        }
                    }
                    Slot::Backend(i) => {
                        let framing = self.framing;
                        let c = &mut self.conns[i];
                        if matches!(c.backend, Backend::Connecting(_)) {
                            if writable {
                                c.finish_connect();
                            }
                            continue;
                        }
                        if writable {
                            let limit = c.forwardable(freezing, framing);
                            c.write_backend(limit, framing);
                        }
                        if readable {
                            c.read_backend(cap);
                        }
                    }
                }
            }
            // Data read this round may be writable at once (saves a poll round trip).
            for c in &mut self.conns {
                if !c.closed {
                    let limit = c.forwardable(freezing, self.framing);
                    c.write_backend(limit, self.framing);
                    c.write_client();
                    // A migration half-closes the application connections itself: their end
                    // must never reach the clients.
                    if !freezing {
                        c.propagate_close();
                    }
                }
            }
            if accept {
                self.accept_all(phase == Phase::Running);
            }
            if control {
                self.serve_control()?;
            }
            self.conns.retain(|c| !c.closed);
            if let Some(frozen) = self.advance_freeze()? {
                return Ok(Some(frozen));
            }
        }
    }

    /// Accepts every pending connection; during a migration they wait for the target's
    /// application instead of this node's.
    fn accept_all(&mut self, connect_now: bool) {
        let Some(l) = &self.listener else { return };
        loop {
            match l.accept() {
                Ok((s, peer)) => {
                    let mut c = Conn::new(s, peer);
                    if connect_now {
                        c.connect_backend(self.backend);
                    }
                    self.conns.push(c);
                }
                Err(e) if would_block(&e) => break,
                Err(e) => {
                    log(format!("accept: {e}"));
                    break;
                }
            }
        }
    }

    fn serve_control(&mut self) -> Result<(), String> {
        loop {
            let Some(l) = &self.control else { return Ok(()) };
            let (stream, _) = match l.accept() {
                Ok(x) => x,
                Err(e) if would_block(&e) => return Ok(()),
                Err(e) => return Err(format!("control socket: {e}")),
            };
            stream.set_nonblocking(false).ok();
            stream.set_read_timeout(Some(Duration::from_secs(1))).ok();
            stream.set_write_timeout(Some(Duration::from_secs(1))).ok();
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_err() {
                continue;
            }
            let request = Answer::parse(&line);
            match request.word.as_str() {
                "status" => {
                    let answer = self.status();
                    let _ = (&stream).write_all(format!("{answer}\n").as_bytes());
                }
                "freeze" => self.begin_freeze(stream, &request),
                other => {
                    let _ = (&stream).write_all(format!("error unknown request '{other}'\n").as_bytes());
                }
            }
        }
    }

    fn status(&self) -> String {
        let mut fields = vec![("connections", self.conns.len().to_string())];
        if let Some((restored, failed, freeze)) = self.restored {
            fields.push(("restored", restored.to_string()));
            fields.push(("restore_failed", failed.to_string()));
            fields.push(("freeze_ms", freeze.to_string()));
        }
        let word = match self.phase() {
            Phase::Running => "running",
            _ => "freezing",
        };
        control::format(word, &fields)
    }

    /// Starts a migration: everything that can refuse it is checked before anything changes.
    fn begin_freeze(&mut self, stream: UnixStream, req: &Answer) {
        let refuse = |stream: &UnixStream, why: String| {
            log(format!("migration refused: {why}"));
            let _ = (&*stream).write_all(format!("error {why}\n").as_bytes());
        };
        if self.phase() != Phase::Running {
            return refuse(&stream, "a migration is already under way".into());
        }
        if let Err(e) = tcprepair::check_support() {
            return refuse(&stream, format!("cannot freeze connections: {e}"));
        }
        let key = match req.get("key").map(|k| Key::load(Path::new(k))) {
            Some(Ok(k)) => k,
            Some(Err(e)) => return refuse(&stream, e),
            None => return refuse(&stream, "freeze without key=".into()),
        };
        let port: u16 = req.get("port").and_then(|p| p.parse().ok()).unwrap_or(0);
        let handoff = match listen_any(port) {
            Ok(l) => l,
            Err(e) => return refuse(&stream, format!("cannot listen on handoff port {port}: {e}")),
        };
        let now = Instant::now();
        let within = Duration::from_millis(req.num("within_ms").max(100));
        let drain = Duration::from_millis(req.num("drain_ms").max(1)).min(within);
        stream.set_write_timeout(Some(within)).ok();
        log(format!("freezing {} connections for a migration", self.conns.len()));
        self.mode = Mode::Freezing(
            Phase::Boundary,
            Box::new(Freeze {
                started: now,
                started_ms: wall_ms(),
                boundary_by: now + drain,
                done_by: now + within,
                reply: stream,
                handoff,
                key,
            }),
        );
    }

    /// Moves a migration on when its phase is complete (or out of time).
    fn advance_freeze(&mut self) -> Result<Option<Frozen>, String> {
        let Mode::Freezing(phase, f) = &self.mode else { return Ok(None) };
        let now = Instant::now();
        match phase {
            Phase::Boundary => {
                // A client that closed will not finish its message: it is not carried anyway.
                let waiting = self.conns.iter().filter(|c| c.mid_message && !c.client_eof && !c.closed).count();
                if waiting == 0 {
                    // Half-close every application connection: it answers what it has and closes.
                    for c in &mut self.conns {
                        match &c.backend {
                            Backend::Up(s) => {
                                let _ = s.shutdown(Shutdown::Write);
                                c.backend_shut = true;
                            }
                            // Nothing reached the application yet: the target connects instead.
                            Backend::Connecting(_) => c.backend = Backend::Idle,
                            Backend::Idle => {}
                        }
                    }
                    let Mode::Freezing(_, f) = std::mem::replace(&mut self.mode, Mode::Running) else { unreachable!() };
                    self.mode = Mode::Freezing(Phase::Draining, f);
                } else if now >= f.boundary_by {
                    let why = format!(
                        "{waiting} connections stayed in the middle of a message (framing=line) for {} ms; nothing was moved, relaying goes on",
                        f.started.elapsed().as_millis()
                    );
                    self.abort_freeze(why);
                }
                Ok(None)
            }
            Phase::Draining => {
                let open = self
                    .conns
                    .iter()
                    .filter(|c| matches!(c.backend, Backend::Up(_)) && !c.backend_eof && !c.closed)
                    .count();
                if open == 0 {
                    return self.release().map(Some);
                }
                if now >= f.done_by {
                    let why = format!(
                        "the application did not finish answering {open} connections within {} ms of the migration's budget",
                        f.started.elapsed().as_millis()
                    );
                    self.abort_freeze(why.clone());
                    // The application connections are half-closed: relaying cannot go on. Stop
                    // (Pacemaker stops the resource after a failed migrate_to anyway).
                    TERMINATE.store(true, Ordering::SeqCst);
                }
                Ok(None)
            }
            Phase::Running => Ok(None),
        }
    }

    fn abort_freeze(&mut self, why: String) {
        log(format!("migration aborted: {why}"));
        if let Mode::Freezing(_, f) = std::mem::replace(&mut self.mode, Mode::Running) {
            let _ = (&f.reply).write_all(format!("error {why}\n").as_bytes());
        }
        // Connections that waited for the freeze get their application connection now.
        for c in &mut self.conns {
            if matches!(c.backend, Backend::Idle) && !c.closed {
                c.connect_backend(self.backend);
            }
        }
    }

    /// Steps 3 and 4: release the address, snapshot every connection, close them silently.
    fn release(&mut self) -> Result<Frozen, String> {
        let Mode::Freezing(_, f) = std::mem::replace(&mut self.mode, Mode::Running) else { unreachable!() };
        let drained_ms = f.started.elapsed().as_millis();
        if let Err(e) = remove_address(self.listen.ip()) {
            let why = format!("cannot remove {}: {e}", self.listen.ip());
            let _ = (&f.reply).write_all(format!("error {why}\n").as_bytes());
            return Err(why);
        }
        let released_ms = wall_ms();
        // Connections still in the backlog come along; closing the listener then answers nothing
        // (the address is gone), so half-open ones retry their SYN to the target.
        self.accept_all(false);
        self.listener = None;
        let mut carried = Vec::new();
        let mut dropped = Vec::new();
        for c in self.conns.drain(..) {
            match tcprepair::capture(c.client.as_fd()) {
                Ok(tcp) => carried.push(Carried {
                    tcp,
                    to_backend: c.to_backend.into_iter().collect(),
                    to_client: c.to_client.into_iter().collect(),
                }),
                Err(e) => dropped.push(format!("{} ({e})", c.peer)),
            }
            // Dropping the socket in repair mode closes it without FIN or RST.
        }
        if !dropped.is_empty() {
            log(format!("not carried: {}", dropped.join(", ")));
        }
        let migration = Migration {
            resource: self.resource.clone(),
            listen: self.listen,
            frozen_at_ms: f.started_ms,
            released_at_ms: released_ms,
            connections: carried,
        };
        let (unacked, unsent, unread, held) = migration.totals();
        let state = migration.encode();
        let report = control::format(
            "ok",
            &[
                ("connections", migration.connections.len().to_string()),
                ("dropped", dropped.len().to_string()),
                ("unacked", unacked.to_string()),
                ("unsent", unsent.to_string()),
                ("unread", unread.to_string()),
                ("held", held.to_string()),
                ("state_bytes", state.len().to_string()),
                ("drain_ms", drained_ms.to_string()),
                ("freeze_ms", f.started.elapsed().as_millis().to_string()),
            ],
        );
        log(format!("frozen: {report}"));
        let _ = (&f.reply).write_all(format!("{report}\n").as_bytes());
        Ok(Frozen { resource: self.resource.clone(), state, handoff: f.handoff, key: f.key })
    }

    /// The target side: recreate the carried connections, then take the address.
    fn restore(&mut self, file: &Path, args: &DaemonArgs) -> Result<(), String> {
        let data = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let _ = std::fs::remove_file(file);
        let m = Migration::decode(&data)?;
        if m.listen != self.listen || m.resource != self.resource {
            return Err(format!(
                "the state is of {} on {}, not {} on {}",
                m.resource, m.listen, self.resource, self.listen
            ));
        }
        let (Some(dev), Some(prefix)) = (args.vip_dev, args.vip_prefix) else {
            return Err("--restore needs --vip-dev and --vip-prefix".into());
        };
        let mut live: Vec<(OwnedFd, Carried)> = Vec::new();
        let mut failed = 0;
        for c in m.connections {
            match tcprepair::restore(&c.tcp, true) {
                Ok(fd) => live.push((fd, c)),
                Err(e @ (RepairError::NotPermitted(_) | RepairError::Unsupported(_))) => {
                    return Err(format!("cannot restore connections here: {e}"))
                }
                Err(e) => {
                    log(format!("{}: not restored: {e}", c.tcp.peer));
                    failed += 1;
                }
            }
        }
        netlink::add_address(dev, self.listen.ip(), prefix, args.vip_label.as_deref())
            .map_err(|e| format!("cannot add {}/{prefix}: {e}", self.listen.ip()))?;
        self.open_listener()?;
        for (fd, c) in live {
            if let Err(e) = tcprepair::leave_repair(fd.as_fd(), true) {
                log(format!("{}: {e}", c.tcp.peer));
                failed += 1;
                continue;
            }
            let mut conn = Conn::new(TcpStream::from(fd), c.tcp.peer);
            conn.to_client.extend(c.tcp.unsent_part());
            conn.to_client.extend(&c.to_client);
            conn.to_backend.extend(&c.to_backend);
            conn.connect_backend(self.backend);
            self.conns.push(conn);
        }
        announce(dev, self.listen.ip());
        let freeze = wall_ms().saturating_sub(m.frozen_at_ms);
        log(format!(
            "restored {} connections ({failed} failed); {freeze} ms since the source froze them, {} ms since it released the address",
            self.conns.len(),
            wall_ms().saturating_sub(m.released_at_ms)
        ));
        self.restored = Some((self.conns.len(), failed, freeze));
        Ok(())
    }
}

/// A listening socket on every address of this node (IPv6 and IPv4 where the host has IPv6).
fn listen_any(port: u16) -> io::Result<TcpListener> {
    let v6 = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP)).and_then(|s| {
        s.set_only_v6(false)?;
        s.set_reuse_address(true)?;
        s.bind(&SockAddr::from(SocketAddr::from(([0u16; 8], port))))?;
        Ok(s)
    });
    let sock = match v6 {
        Ok(s) => s,
        Err(e) if e.kind() == ErrorKind::AddrInUse => return Err(e),
        Err(_) => {
            let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
            s.set_reuse_address(true)?;
            s.bind(&SockAddr::from(SocketAddr::from(([0u8; 4], port))))?;
            s
        }
    };
    sock.listen(16)?;
    sock.set_nonblocking(true)?;
    Ok(sock.into())
}

fn remove_address(ip: IpAddr) -> io::Result<()> {
    for a in netlink::find_address(&ip)? {
        netlink::del_address(a.index, a.ip, a.prefix_len)?;
    }
    Ok(())
}

/// One gratuitous ARP (IPv4) or unsolicited neighbour advertisement (IPv6) at once; the agent
/// sends the configured series afterwards.
fn announce(ifindex: u32, ip: IpAddr) {
    let Ok(Some(link)) = netlink::link_by_index(ifindex) else { return };
    let Some(mac) = link.ethernet_mac().filter(|_| !link.noarp) else { return };
    let sent = match ip {
        IpAddr::V4(v4) => crate::net::arp::announce(ifindex, mac, v4, crate::net::arp::ArpMode::Request),
        IpAddr::V6(v6) => crate::net::ndisc::announce(ifindex, mac, v6),
    };
    if let Err(e) = sent {
        log(format!("cannot announce {ip}: {e}"));
    }
}

/// Step 5: hand the state to the target, answer `status` meanwhile, and exit when it is
/// delivered, after [`HOLD`], or on a signal.
fn serve_handoff(frozen: Frozen, control: UnixListener) -> i32 {
    let until = Instant::now() + HOLD;
    frozen.handoff.set_nonblocking(true).ok();
    loop {
        if TERMINATE.load(Ordering::SeqCst) {
            log("terminated before the target fetched the state: the connections are dropped");
            return 0;
        }
        if Instant::now() >= until {
            log(format!("no target fetched the state within {} s: the connections are dropped", HOLD.as_secs()));
            return 0;
        }
        let mut fds = [
            libc::pollfd { fd: frozen.handoff.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: control.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: a valid array of two pollfd.
        unsafe { libc::poll(fds.as_mut_ptr(), 2, TICK.as_millis() as i32) };
        if fds[1].revents != 0 {
            while let Ok((s, _)) = control.accept() {
                s.set_nonblocking(false).ok();
                s.set_read_timeout(Some(Duration::from_secs(1))).ok();
                let mut line = String::new();
                let _ = BufReader::new(&s).read_line(&mut line);
                let answer = if line.trim() == "status" {
                    control::format("frozen", &[("state_bytes", frozen.state.len().to_string())])
                } else {
                    "error frozen: the connections were handed off".to_string()
                };
                let _ = (&s).write_all(format!("{answer}\n").as_bytes());
            }
        }
        if fds[0].revents != 0 {
            while let Ok((s, peer)) = frozen.handoff.accept() {
                s.set_nonblocking(false).ok();
                match handoff::serve(s, &frozen.key, &frozen.resource, &frozen.state) {
                    Ok(true) => {
                        log(format!("state delivered to {peer}"));
                        return 0;
                    }
                    Ok(false) => log(format!("handoff refused to {peer}")),
                    Err(e) => log(format!("handoff to {peer} failed: {e}")),
                }
            }
        }
    }
}

/// Reads a state file's summary for logs (used by the agent).
pub fn describe_state(data: &[u8]) -> Result<String, String> {
    let m = Migration::decode(data)?;
    let (unacked, unsent, unread, held) = m.totals();
    Ok(format!(
        "{} connections, {unacked} bytes sent and unacknowledged, {unsent} unsent, {unread} unread, {held} held by the relay",
        m.connections.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_names() {
        assert_eq!(Framing::parse("line"), Some(Framing::Line));
        assert_eq!(Framing::parse("none"), Some(Framing::None));
        assert_eq!(Framing::parse("http"), None);
    }

    fn conn() -> Conn {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let peer = c.local_addr().unwrap();
        Conn::new(c, peer)
    }

    #[test]
    fn a_freeze_forwards_only_the_rest_of_the_message_under_way() {
        let mut c = conn();
        c.to_backend.extend(b"end of line\nnext line\npart");
        assert_eq!(c.forwardable(false, Framing::Line), 26);
        assert_eq!(c.forwardable(true, Framing::Line), 0, "at a boundary nothing more goes");
        c.mid_message = true;
        assert_eq!(c.forwardable(true, Framing::Line), 12, "up to the end of the line under way");
        assert_eq!(c.forwardable(true, Framing::None), 0);
        assert!(!c.wants_client_read(Phase::Boundary), "the end of the message is here already");
        c.to_backend.clear();
        c.to_backend.extend(b"no end yet");
        assert!(c.wants_client_read(Phase::Boundary));
        assert!(!c.wants_client_read(Phase::Draining));
    }
}
