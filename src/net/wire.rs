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

/// Reads a body of `len` bytes, as a length field announced it, before the deadline. The buffer
/// grows as the bytes arrive: the length is the peer's word, and a wrong one (up to the 16 or
/// 64 MiB the protocols allow) must not cost that much zeroed memory before any of it came.
pub fn read_body(stream: &mut impl TimedStream, len: usize, deadline: Deadline) -> io::Result<Vec<u8>> {
    const CHUNK: usize = 64 * 1024;
    let mut body = Vec::with_capacity(len.min(CHUNK));
    while body.len() < len {
        let at = body.len();
        body.resize(at + (len - at).min(CHUNK), 0);
        read_exact(stream, &mut body[at..], deadline)?;
    }
    Ok(body)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_body_reads_across_its_chunks_and_fails_on_a_short_stream() {
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let sent = sent.clone();
            std::thread::spawn(move || theirs.write_all(&sent).map(|_| theirs))
        };
        let deadline = Deadline::after(Duration::from_secs(30));
        assert_eq!(read_body(&mut ours, 150_000, deadline).unwrap(), sent[..150_000]);
        drop(writer.join().unwrap().unwrap());
        // 50,000 bytes are left and the peer is gone: a length announcing 16 MiB is an error.
        let err = read_body(&mut ours, 16 << 20, deadline).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert!(read_body(&mut ours, 0, deadline).unwrap().is_empty());
    }
}
