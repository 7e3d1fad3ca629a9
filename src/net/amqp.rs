//! A minimal AMQP 0-9-1 client for the RabbitMQ probes: the protocol handshake with a PLAIN
//! login (the broker's reader, auth backend and vhost answer), and on a channel in confirm
//! mode a persistent publish the broker confirms plus a basic.get that returns it.
//!
//! Not `rabbitmqctl node_health_check`: a no-op on current RabbitMQ, and every rabbitmqctl
//! call boots an Erlang VM (seconds of CPU). Not the lapin crate: 192 crates, async.

use std::io;
use std::net::TcpStream;

use crate::net::wire::{connect_tcp, read_body, read_exact, write_all, TimedStream};
use crate::ocf::Deadline;

const FRAME_METHOD: u8 = 1;
const FRAME_HEADER: u8 = 2;
const FRAME_BODY: u8 = 3;
const FRAME_HEARTBEAT: u8 = 8;
const FRAME_END: u8 = 0xCE;
/// The largest message body read back from the health queue (the agent publishes a few bytes).
const MAX_BODY: usize = 64 * 1024 * 1024;

/// The protocol header a client opens with.
pub const PROTOCOL_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";

/// A connection over `S`: TCP to the broker, or any other byte stream with deadlines (the fuzz
/// targets script a broker's answers in memory).
pub struct Amqp<S: TimedStream = TcpStream> {
    stream: S,
    frame_max: u32,
    publish_seq: u64,
}

/// Method arguments, encoded the AMQP way.
#[derive(Default)]
pub struct Args(pub Vec<u8>);

impl Args {
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn short(mut self, s: &str) -> Self {
        let b = &s.as_bytes()[..s.len().min(255)];
        self.0.push(b.len() as u8);
        self.0.extend_from_slice(b);
        self
    }
    pub fn long(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(&(b.len() as u32).to_be_bytes());
        self.0.extend_from_slice(b);
        self
    }
    /// An empty field table.
    pub fn table(self) -> Self {
        self.u32(0)
    }
}

/// One frame: type, channel, payload.
#[derive(Debug)]
pub struct Frame {
    pub kind: u8,
    pub channel: u16,
    pub payload: Vec<u8>,
}

impl Frame {
    /// (class, method) of a method frame.
    pub fn method(&self) -> Option<(u16, u16)> {
        (self.kind == FRAME_METHOD && self.payload.len() >= 4).then(|| {
            (
                u16::from_be_bytes([self.payload[0], self.payload[1]]),
                u16::from_be_bytes([self.payload[2], self.payload[3]]),
            )
        })
    }
}

pub fn encode_frame(kind: u8, channel: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind];
    f.extend_from_slice(&channel.to_be_bytes());
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    f.extend_from_slice(payload);
    f.push(FRAME_END);
    f
}

pub fn encode_method(channel: u16, class: u16, method: u16, args: Args) -> Vec<u8> {
    let mut p = Vec::with_capacity(4 + args.0.len());
    p.extend_from_slice(&class.to_be_bytes());
    p.extend_from_slice(&method.to_be_bytes());
    p.extend_from_slice(&args.0);
    encode_frame(FRAME_METHOD, channel, &p)
}

/// The reply text of a Connection.Close or Channel.Close: code u16, shortstr text.
pub fn close_reason(payload: &[u8]) -> String {
    let code = payload.get(4..6).map(|b| u16::from_be_bytes([b[0], b[1]])).unwrap_or(0);
    let len = *payload.get(6).unwrap_or(&0) as usize;
    let text = payload.get(7..7 + len).map(|t| String::from_utf8_lossy(t).into_owned()).unwrap_or_default();
    format!("{text} (reply code {code})")
}

fn io_text(e: io::Error) -> String {
    if e.kind() == io::ErrorKind::TimedOut {
        "no answer from the broker in time".into()
    } else {
        e.to_string()
    }
}

impl Amqp {
    /// Connects, sends the protocol header and logs in (PLAIN) to `vhost`: the AMQP handshake
    /// up to Connection.Open-Ok.
    pub fn connect(addr: &str, user: &str, password: &str, vhost: &str, deadline: Deadline) -> Result<Amqp, String> {
        let stream = connect_tcp(addr, deadline).map_err(|e| format!("connect to {addr}: {e}"))?;
        Amqp::handshake(stream, user, password, vhost, deadline)
    }
}

impl<S: TimedStream> Amqp<S> {
    /// The AMQP handshake on a connected stream: the protocol header, a PLAIN login, `vhost`
    /// opened (Connection.Open-Ok).
    pub fn handshake(
        stream: S,
        user: &str,
        password: &str,
        vhost: &str,
        deadline: Deadline,
    ) -> Result<Amqp<S>, String> {
        let mut c = Amqp { stream, frame_max: 131072, publish_seq: 0 };
        c.write(PROTOCOL_HEADER, deadline)?;
        c.expect(0, (10, 10), deadline).map_err(|e| format!("no Connection.Start: {e}"))?;
        let mut response = vec![0u8];
        response.extend_from_slice(user.as_bytes());
        response.push(0);
        response.extend_from_slice(password.as_bytes());
        c.write(
            &encode_method(0, 10, 11, Args::default().table().short("PLAIN").long(&response).short("en_US")),
            deadline,
        )?;
        let tune = c.expect(0, (10, 30), deadline).map_err(|e| format!("login as '{user}' refused: {e}"))?;
        let server_max = tune.payload.get(6..10).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
        if server_max != 0 {
            c.frame_max = c.frame_max.min(server_max);
        }
        c.write(&encode_method(0, 10, 31, Args::default().u16(1).u32(c.frame_max).u16(0)), deadline)?;
        c.write(&encode_method(0, 10, 40, Args::default().short(vhost).short("").u8(0)), deadline)?;
        c.expect(0, (10, 41), deadline).map_err(|e| format!("vhost '{vhost}': {e}"))?;
        Ok(c)
    }

    /// Opens channel 1 in confirm mode and declares a durable queue on it.
    pub fn open_confirm_channel(&mut self, queue: &str, deadline: Deadline) -> Result<(), String> {
        self.write(&encode_method(1, 20, 10, Args::default().short("")), deadline)?;
        self.expect(1, (20, 11), deadline)?;
        self.write(&encode_method(1, 85, 10, Args::default().u8(0)), deadline)?;
        self.expect(1, (85, 11), deadline)?;
        // durable (bit 1)
        self.write(&encode_method(1, 50, 10, Args::default().u16(0).short(queue).u8(0b10).table()), deadline)?;
        self.expect(1, (50, 11), deadline)?;
        Ok(())
    }

    /// Publishes a persistent message to `queue` and waits for the broker's confirm (it is on
    /// disk when the broker acks a persistent message to a durable queue).
    pub fn publish_confirmed(&mut self, queue: &str, body: &[u8], deadline: Deadline) -> Result<(), String> {
        let mut out = encode_method(1, 60, 40, Args::default().u16(0).short("").short(queue).u8(0));
        let mut header = Vec::new();
        header.extend_from_slice(&60u16.to_be_bytes());
        header.extend_from_slice(&0u16.to_be_bytes());
        header.extend_from_slice(&(body.len() as u64).to_be_bytes());
        header.extend_from_slice(&0x1000u16.to_be_bytes()); // delivery-mode present
        header.push(2); // persistent
        out.extend_from_slice(&encode_frame(FRAME_HEADER, 1, &header));
        for chunk in body.chunks((self.frame_max as usize).saturating_sub(8).max(1)) {
            out.extend_from_slice(&encode_frame(FRAME_BODY, 1, chunk));
        }
        self.write(&out, deadline)?;
        self.publish_seq += 1;
        loop {
            let f = self.expect_any(1, deadline)?;
            match f.method() {
                Some((60, 80)) => {
                    let tag = f.payload.get(4..12).map(|b| u64::from_be_bytes(b.try_into().unwrap())).unwrap_or(0);
                    let multiple = f.payload.get(12).is_some_and(|b| b & 1 == 1);
                    if tag == self.publish_seq || (multiple && tag >= self.publish_seq) {
                        return Ok(());
                    }
                }
                Some((60, 120)) => return Err("the broker refused the message (basic.nack)".into()),
                _ => {}
            }
        }
    }

    /// basic.get with auto-ack: the body of the next message, or None if the queue is empty.
    pub fn get(&mut self, queue: &str, deadline: Deadline) -> Result<Option<Vec<u8>>, String> {
        self.write(&encode_method(1, 60, 70, Args::default().u16(0).short(queue).u8(1)), deadline)?;
        loop {
            let f = self.expect_any(1, deadline)?;
            match f.method() {
                Some((60, 72)) => return Ok(None),
                Some((60, 71)) => break,
                _ => {}
            }
        }
        let header = self.read_frame(deadline)?;
        if header.kind != FRAME_HEADER || header.payload.len() < 12 {
            return Err("no content header after basic.get-ok".into());
        }
        // The size is the broker's word: bounded, and memory follows the bytes that arrive.
        let size = u64::from_be_bytes(header.payload[4..12].try_into().unwrap());
        if size > MAX_BODY as u64 {
            return Err(format!("a message of {size} bytes in the health queue: not the health message"));
        }
        let size = size as usize;
        let mut body = Vec::with_capacity(size.min(64 * 1024));
        while body.len() < size {
            let f = self.read_frame(deadline)?;
            if f.kind != FRAME_BODY {
                return Err("content body frame expected".into());
            }
            body.extend_from_slice(&f.payload);
        }
        Ok(Some(body))
    }

    /// Connection.Close and its Close-Ok: a clean goodbye the broker does not log as an error.
    pub fn close(mut self, deadline: Deadline) {
        let _ = self.write(&encode_method(0, 10, 50, Args::default().u16(200).short("bye").u16(0).u16(0)), deadline);
        let _ = self.expect(0, (10, 51), deadline);
    }

    fn write(&mut self, bytes: &[u8], deadline: Deadline) -> Result<(), String> {
        write_all(&mut self.stream, bytes, deadline).map_err(io_text)
    }

    pub fn read_frame(&mut self, deadline: Deadline) -> Result<Frame, String> {
        let mut head = [0u8; 7];
        read_exact(&mut self.stream, &mut head, deadline).map_err(io_text)?;
        if &head[..4] == b"AMQP" {
            return Err("the broker does not speak AMQP 0-9-1".into());
        }
        let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
        if size > 64 * 1024 * 1024 {
            return Err(format!("bad frame size {size}: not an AMQP broker?"));
        }
        let mut payload = read_body(&mut self.stream, size + 1, deadline).map_err(io_text)?;
        if payload.pop() != Some(FRAME_END) {
            return Err("bad frame end: not an AMQP broker?".into());
        }
        Ok(Frame { kind: head[0], channel: u16::from_be_bytes([head[1], head[2]]), payload })
    }

    /// The next frame for `channel` (heartbeats skipped; a Close from the broker is an error).
    fn expect_any(&mut self, channel: u16, deadline: Deadline) -> Result<Frame, String> {
        loop {
            let f = self.read_frame(deadline)?;
            if f.kind == FRAME_HEARTBEAT {
                continue;
            }
            match f.method() {
                Some((10, 50)) | Some((20, 40)) => {
                    return Err(format!("the broker closed: {}", close_reason(&f.payload)))
                }
                _ if f.channel == channel => return Ok(f),
                _ => {}
            }
        }
    }

    fn expect(&mut self, channel: u16, method: (u16, u16), deadline: Deadline) -> Result<Frame, String> {
        let f = self.expect_any(channel, deadline)?;
        match f.method() {
            Some(m) if m == method => Ok(f),
            other => Err(format!("expected method {method:?}, got {other:?}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz finding (fuzz/seeds/amqp/regress-huge-body-size): a content header announcing a
    /// terabyte made basic.get allocate it up front and abort the agent.
    #[test]
    fn a_huge_announced_body_is_an_error_not_an_allocation() {
        use std::io::Write;
        use std::os::unix::net::UnixStream;
        let (client, mut broker) = UnixStream::pair().unwrap();
        broker.write_all(include_bytes!("../../fuzz/seeds/amqp/regress-huge-body-size")).unwrap();
        broker.shutdown(std::net::Shutdown::Write).unwrap();
        let deadline = Deadline::after(std::time::Duration::from_secs(10));
        let mut c = Amqp::handshake(client, "guest", "guest", "/", deadline).unwrap();
        c.open_confirm_channel("hastack-health", deadline).unwrap();
        c.publish_confirmed("hastack-health", b"ping", deadline).unwrap();
        let e = c.get("hastack-health", deadline).unwrap_err();
        assert!(e.contains("not the health message"), "{e}");
    }

    #[test]
    fn encodes_frames_and_reads_close_reasons() {
        let f = encode_method(0, 10, 31, Args::default().u16(1).u32(131072).u16(0));
        assert_eq!(&f[..7], &[1, 0, 0, 0, 0, 0, 12]);
        assert_eq!(&f[7..11], &[0, 10, 0, 31]);
        assert_eq!(*f.last().unwrap(), FRAME_END);
        let args = Args::default().short("ab").long(b"xyz").table();
        assert_eq!(args.0, vec![2, b'a', b'b', 0, 0, 0, 3, b'x', b'y', b'z', 0, 0, 0, 0]);
        let mut close = vec![0, 10, 0, 50, 1, 147];
        close.push(14);
        close.extend_from_slice(b"ACCESS_REFUSED");
        assert_eq!(close_reason(&close), "ACCESS_REFUSED (reply code 403)");
    }
}
