//! Blocking byte streams with a deadline, shared by the protocol probes (PostgreSQL, MariaDB,
//! STOMP, AMQP): every read and write is bounded by what is left of the action's budget, so a
//! hung server gives a prompt error instead of a monitor timeout.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use crate::ocf::Deadline;

pub trait TimedStream: Read + Write {
    fn set_timeouts(&self, t: Duration) -> io::Result<()>;
}

impl TimedStream for UnixStream {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

impl TimedStream for TcpStream {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "no answer in time")
}

fn arm(stream: &impl TimedStream, deadline: Deadline) -> io::Result<()> {
    let left = deadline.remaining();
    if left.is_zero() {
        return Err(timed_out());
    }
    stream.set_timeouts(left)
}

/// Reads exactly `buf.len()` bytes before the deadline.
pub fn read_exact(stream: &mut impl TimedStream, buf: &mut [u8], deadline: Deadline) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        arm(stream, deadline)?;
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(timed_out())
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads whatever arrives next (at least one byte) before the deadline.
pub fn read_some(stream: &mut impl TimedStream, buf: &mut [u8], deadline: Deadline) -> io::Result<usize> {
    loop {
        arm(stream, deadline)?;
        match stream.read(buf) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection")),
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                return Err(timed_out())
            }
            Err(e) => return Err(e),
        }
    }
}

/// Writes all of `data` before the deadline.
pub fn write_all(stream: &mut impl TimedStream, data: &[u8], deadline: Deadline) -> io::Result<()> {
    arm(stream, deadline)?;
    stream.write_all(data).map_err(|e| {
        if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) {
            timed_out()
        } else {
            e
        }
    })
}

/// A TCP connection to `addr` made within the deadline.
pub fn connect_tcp(addr: &str, deadline: Deadline) -> io::Result<TcpStream> {
    use std::net::ToSocketAddrs;
    let target = addr
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("cannot resolve {addr}")))?;
    let left = deadline.remaining();
    if left.is_zero() {
        return Err(timed_out());
    }
    let s = TcpStream::connect_timeout(&target, left)?;
    s.set_nodelay(true).ok();
    Ok(s)
}
