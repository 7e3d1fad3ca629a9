//! A live migration inside the relay daemon. Source (`freeze`, from migrate_to): reach a
//! message boundary, drain the application, release the address, snapshot every client socket
//! with TCP_REPAIR, hand the state off. Target (`--restore`, from migrate_from): recreate the
//! sockets, take the address, relay on. The steps and why they come in this order: relay.rs.

use std::io::{self, BufRead, BufReader, ErrorKind, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::conn::{Backend, Conn, Phase};
use super::control::{self, Answer};
use super::handoff::{self, Key};
use super::relay::{log, wall_ms, DaemonArgs, Mode, Relay, TERMINATE, TICK};
use super::state::{Carried, Migration};
use crate::net::netlink;
use crate::net::tcprepair::{self, RepairError};

/// A migration under way on the source.
pub(super) struct Freeze {
    started: Instant,
    started_ms: u64,
    boundary_by: Instant,
    done_by: Instant,
    reply: UnixStream,
    handoff: TcpListener,
    key: Key,
    hold: Duration,
}

/// What the source keeps after the release: the state and the means to hand it over.
pub(super) struct Frozen {
    resource: String,
    state: Vec<u8>,
    handoff: TcpListener,
    key: Key,
    hold: Duration,
}

impl Relay {
    /// Starts a migration: everything that can refuse it is checked before anything changes.
    pub(super) fn begin_freeze(&mut self, stream: UnixStream, req: &Answer) {
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
                hold: Duration::from_millis(req.num("hold_ms").max(1000)),
            }),
        );
    }

    /// Moves a migration on when its phase is complete (or out of time).
    pub(super) fn advance_freeze(&mut self) -> Result<Option<Frozen>, String> {
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
        Ok(Frozen { resource: self.resource.clone(), state, handoff: f.handoff, key: f.key, hold: f.hold })
    }

    /// The target side: recreate the carried connections, then take the address.
    pub(super) fn restore(&mut self, file: &Path, args: &DaemonArgs) -> Result<(), String> {
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
    let sent =
        crate::net::claim::Claim::open(ifindex, mac, ip, crate::net::arp::ArpMode::Request).and_then(|c| c.announce());
    if let Err(e) = sent {
        log(format!("cannot announce {ip}: {e}"));
    }
}

/// Step 5: hand the state to the target, answer `status` meanwhile, and exit when it is
/// delivered, after the hold time, or on a signal.
pub(super) fn serve_handoff(frozen: Frozen, control: UnixListener) -> i32 {
    let until = Instant::now() + frozen.hold;
    frozen.handoff.set_nonblocking(true).ok();
    loop {
        if TERMINATE.load(Ordering::SeqCst) {
            log("terminated before the target fetched the state: the connections are dropped");
            return 0;
        }
        if Instant::now() >= until {
            log(format!("no target fetched the state within {} s: the connections are dropped", frozen.hold.as_secs()));
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
pub(super) fn describe_state(data: &[u8]) -> Result<String, String> {
    let m = Migration::decode(data)?;
    let (unacked, unsent, unread, held) = m.totals();
    Ok(format!(
        "{} connections, {unacked} bytes sent and unacknowledged, {unsent} unsent, {unread} unread, {held} held by the relay",
        m.connections.len()
    ))
}
