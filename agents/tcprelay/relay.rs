//! The relay daemon (`hastack tcprelay-daemon`, started by the agent in a session of its own):
//! it owns the client-facing sockets on the virtual address and relays every connection to the
//! application on this node, byte for byte, in one thread around poll(2).
//!
//! Connections: conn.rs. Migration (migrate.rs), source side (`freeze`, from migrate_to):
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
//! 5. hand off: serve the state to the target (handoff.rs) for at most `hold_ms` (the agent's
//!    handoff_timeout), then exit.
//!
//! Target side (`--restore`, from migrate_from): recreate every socket in repair mode before the
//! address is here, add the address, open the listener, leave repair mode (each socket sends a
//! window probe, the client answers and goes on), announce the address, connect to the
//! application and relay, starting with what the relay on the source still held.

use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

pub use super::conn::Framing;
use super::conn::{would_block, Backend, Conn, Phase, CAP, DRAIN_CAP};
use super::control::{self, Answer};
use super::migrate::{serve_handoff, Freeze, Frozen};

/// Wake up at least this often (signals, deadlines).
pub(super) const TICK: Duration = Duration::from_millis(100);

pub(super) static TERMINATE: AtomicBool = AtomicBool::new(false);

extern "C" fn on_term(_: libc::c_int) {
    TERMINATE.store(true, Ordering::SeqCst);
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

pub(super) fn log(msg: impl AsRef<str>) {
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

pub(super) enum Mode {
    Running,
    Freezing(Phase, Box<Freeze>),
}

pub(super) struct Relay {
    pub(super) resource: String,
    pub(super) listen: SocketAddr,
    pub(super) backend: SocketAddr,
    pub(super) framing: Framing,
    pub(super) listener: Option<TcpListener>,
    pub(super) control: Option<UnixListener>,
    pub(super) conns: Vec<Conn>,
    pub(super) mode: Mode,
    /// Restored connections, those that failed, and the freeze the clients saw (ms).
    pub(super) restored: Option<(usize, usize, u64)>,
}

#[derive(Copy, Clone)]
enum Slot {
    Control,
    Listener,
    Client(usize),
    Backend(usize),
}

impl Relay {
    pub(super) fn phase(&self) -> Phase {
        match &self.mode {
            Mode::Running => Phase::Running,
            Mode::Freezing(p, _) => *p,
        }
    }

    pub(super) fn open_listener(&mut self) -> Result<(), String> {
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
    pub(super) fn accept_all(&mut self, connect_now: bool) {
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
}
