//! One relayed connection: the client's socket, the application's, the bytes in between, and the
//! rules that decide what may go where (message boundaries for a migration's cut, buffer caps
//! for back pressure, half-closes passed on).

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::relay::log;

/// What one direction of a connection may hold in the relay while relaying.
pub(super) const CAP: usize = 256 * 1024;
/// What the application may still answer while a migration drains it.
pub(super) const DRAIN_CAP: usize = 64 << 20;
const CHUNK: usize = 64 * 1024;
/// SO_SNDBUF of a connection to the application (the kernel doubles it).
const BACKEND_SNDBUF: usize = 64 * 1024;

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

pub(super) enum Backend {
    /// Not connected (a restored connection before its connect, or during a freeze).
    Idle,
    Connecting(Socket),
    Up(TcpStream),
}

/// One client connection and its connection to the application.
pub(super) struct Conn {
    pub(super) client: TcpStream,
    pub(super) peer: SocketAddr,
    pub(super) backend: Backend,
    pub(super) to_backend: VecDeque<u8>,
    pub(super) to_client: VecDeque<u8>,
    /// The bytes given to the application so far end inside a message.
    pub(super) mid_message: bool,
    pub(super) client_eof: bool,
    pub(super) backend_eof: bool,
    pub(super) client_shut: bool,
    pub(super) backend_shut: bool,
    pub(super) closed: bool,
}

impl Conn {
    pub(super) fn new(client: TcpStream, peer: SocketAddr) -> Conn {
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

    pub(super) fn connect_backend(&mut self, to: SocketAddr) {
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
        // A bounded queue toward the application: what it has not taken stays in the relay, where
        // a migration carries it to the target's application instead of waiting for this one to
        // read it (the kernel would otherwise grow this buffer to megabytes).
        sock.set_send_buffer_size(BACKEND_SNDBUF).ok();
        match sock.connect(&SockAddr::from(to)) {
            Ok(()) => self.backend = Backend::Up(sock.into()),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => self.backend = Backend::Connecting(sock),
            Err(e) => {
                log(format!("{}: the application at {to} refuses: {e}", self.peer));
                self.closed = true;
            }
        }
    }

    pub(super) fn backend_fd(&self) -> Option<RawFd> {
        match &self.backend {
            Backend::Idle => None,
            Backend::Connecting(s) => Some(s.as_raw_fd()),
            Backend::Up(s) => Some(s.as_raw_fd()),
        }
    }

    /// How many bytes at the front of `to_backend` may go to the application now. With line
    /// framing the application gets whole lines only (a line longer than the relay's buffer
    /// goes in pieces, and the last one when the client has finished), so a migration finds it
    /// between two messages and carries the start of the next with the connection; during a
    /// migration only the rest of a message under way goes.
    pub(super) fn forwardable(&self, freezing: bool, framing: Framing) -> usize {
        let all = self.to_backend.len();
        let through_first_newline = || self.to_backend.iter().position(|b| *b == b'\n').map(|i| i + 1);
        match (framing, freezing) {
            (Framing::None, false) => all,
            (Framing::None, true) => 0,
            (Framing::Line, true) if self.mid_message => through_first_newline().unwrap_or(all),
            (Framing::Line, true) => 0,
            (Framing::Line, false) if self.mid_message => through_first_newline().unwrap_or(all),
            (Framing::Line, false) if self.client_eof => all,
            (Framing::Line, false) => match self.to_backend.iter().rposition(|b| *b == b'\n') {
                Some(i) => i + 1,
                None if all >= CAP => all,
                None => 0,
            },
        }
    }

    pub(super) fn wants_client_read(&self, mode: Phase) -> bool {
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

    pub(super) fn read_client(&mut self) {
        let mut buf = [0u8; CHUNK];
        let room = CAP.saturating_sub(self.to_backend.len()).min(CHUNK);
        match self.client.read(&mut buf[..room.max(1)]) {
            Ok(0) => self.client_eof = true,
            Ok(n) => self.to_backend.extend(&buf[..n]),
            Err(e) if would_block(&e) => {}
            Err(e) => self.fail("client", e),
        }
    }

    pub(super) fn write_backend(&mut self, limit: usize, framing: Framing) {
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

    pub(super) fn read_backend(&mut self, cap: usize) {
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

    pub(super) fn write_client(&mut self) {
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
    pub(super) fn finish_connect(&mut self) {
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

    pub(super) fn fail(&mut self, side: &str, e: io::Error) {
        log(format!("{}: {side}: {e}", self.peer));
        self.closed = true;
    }

    /// Passes a half-close on once everything before it went through; marks the connection done.
    pub(super) fn propagate_close(&mut self) {
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

pub(super) fn would_block(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted)
}

/// Where a connection stands in the relay's life: relaying, or a migration's two phases.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub(super) enum Phase {
    Running,
    Boundary,
    Draining,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

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
    fn whole_lines_go_to_the_application_and_a_freeze_cuts_between_them() {
        let mut c = conn();
        c.to_backend.extend(b"end of line\nnext line\npart");
        assert_eq!(c.forwardable(false, Framing::Line), 22, "whole lines only");
        assert_eq!(c.forwardable(false, Framing::None), 26);
        assert_eq!(c.forwardable(true, Framing::Line), 0, "at a boundary nothing more goes");
        assert_eq!(c.forwardable(true, Framing::None), 0);
        c.mid_message = true;
        assert_eq!(c.forwardable(true, Framing::Line), 12, "up to the end of the line under way");
        assert_eq!(c.forwardable(false, Framing::Line), 12);
        assert!(!c.wants_client_read(Phase::Boundary), "the end of the message is here already");
        c.to_backend.clear();
        c.to_backend.extend(b"no end yet");
        assert!(c.wants_client_read(Phase::Boundary));
        assert!(!c.wants_client_read(Phase::Draining));
        c.mid_message = false;
        assert_eq!(c.forwardable(false, Framing::Line), 0, "the start of a line waits for its end");
        c.client_eof = true;
        assert_eq!(c.forwardable(false, Framing::Line), 10, "a client that finished gets its last bytes through");
        c.client_eof = false;
        c.to_backend.extend(std::iter::repeat_n(b'x', CAP));
        assert_eq!(c.forwardable(false, Framing::Line), CAP + 10, "a line longer than the buffer goes in pieces");
    }
}
