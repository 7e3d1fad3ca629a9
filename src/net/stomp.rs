//! A minimal STOMP 1.2 client for the broker probes: CONNECT → CONNECTED (the protocol
//! handshake: the broker's transport and its session machinery answer), and a send with a
//! receipt plus its delivery on a subscription (the store and the dispatch work).

use std::collections::BTreeMap;
use std::io;
use std::net::TcpStream;

use crate::net::wire::{connect_tcp, read_some, write_all, TimedStream};
use crate::ocf::Deadline;

/// One frame: command, headers, body.
#[derive(Debug, Default, PartialEq)]
pub struct Frame {
    pub command: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// A session over `S`: a TCP connection to the broker, or any other byte stream with deadlines
/// (the fuzz targets script a broker's answers in memory).
pub struct Stomp<S: TimedStream = TcpStream> {
    stream: S,
    buf: Vec<u8>,
}

/// Encodes a frame; header values are escaped as STOMP 1.2 requires (\\, \n, \r, :).
pub fn encode(command: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let esc = |s: &str| s.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r").replace(':', "\\c");
    let mut out = format!("{command}\n");
    for (k, v) in headers {
        out.push_str(&format!("{}:{}\n", esc(k), esc(v)));
    }
    out.push('\n');
    out.push_str(body);
    let mut bytes = out.into_bytes();
    bytes.push(0);
    bytes
}

/// Takes one complete frame off the front of `buf` (heart-beat newlines before it skipped).
pub fn take_frame(buf: &mut Vec<u8>) -> Option<Frame> {
    let start = buf.iter().position(|b| *b != b'\n' && *b != b'\r')?;
    let end = start + buf[start..].iter().position(|b| *b == 0)?;
    let text = String::from_utf8_lossy(&buf[start..end]).into_owned();
    buf.drain(..=end);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let command = lines.next().unwrap_or("").trim().to_string();
    let mut headers = BTreeMap::new();
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            // The first occurrence of a repeated header wins (STOMP 1.2).
            headers.entry(unescape(k)).or_insert_with(|| unescape(v));
        }
    }
    Some(Frame { command, headers, body: body.to_string() })
}

/// STOMP 1.2 header unescaping, in one pass: `\\c` is a backslash and a `c`, not a
/// backslash and a colon. An undefined escape (a protocol error) is kept as it came.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('c') => out.push(':'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

fn describe_error(f: &Frame) -> String {
    let msg = f.headers.get("message").cloned().unwrap_or_default();
    format!("the broker answered ERROR: {msg} {}", f.body.trim()).trim().to_string()
}

impl Stomp {
    /// Connects and completes the STOMP handshake (CONNECT → CONNECTED).
    pub fn connect(addr: &str, login: Option<(&str, &str)>, deadline: Deadline) -> Result<Stomp, String> {
        let stream = connect_tcp(addr, deadline).map_err(|e| format!("connect to {addr}: {e}"))?;
        Stomp::handshake(stream, addr, login, deadline)
    }
}

impl<S: TimedStream> Stomp<S> {
    /// The STOMP handshake (CONNECT → CONNECTED) on a connected stream; `addr` names the broker
    /// in errors.
    pub fn handshake(
        stream: S,
        addr: &str,
        login: Option<(&str, &str)>,
        deadline: Deadline,
    ) -> Result<Stomp<S>, String> {
        let mut s = Stomp { stream, buf: Vec::new() };
        let mut headers = vec![("accept-version", "1.2"), ("host", "localhost"), ("heart-beat", "0,0")];
        if let Some((user, pass)) = login {
            headers.push(("login", user));
            headers.push(("passcode", pass));
        }
        s.send_frame(&encode("CONNECT", &headers, ""), deadline)?;
        let f = s.read_frame(deadline)?;
        match f.command.as_str() {
            "CONNECTED" => Ok(s),
            "ERROR" => Err(describe_error(&f)),
            other => Err(format!("expected CONNECTED from {addr}, got '{other}': not a STOMP broker?")),
        }
    }

    pub fn send_frame(&mut self, bytes: &[u8], deadline: Deadline) -> Result<(), String> {
        write_all(&mut self.stream, bytes, deadline).map_err(|e| format!("send: {}", describe_io(&e)))
    }

    pub fn read_frame(&mut self, deadline: Deadline) -> Result<Frame, String> {
        loop {
            if let Some(f) = take_frame(&mut self.buf) {
                return Ok(f);
            }
            let mut chunk = [0u8; 4096];
            let n = read_some(&mut self.stream, &mut chunk, deadline).map_err(|e| describe_io(&e))?;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Sends a persistent message with a receipt to `queue` and waits for both the receipt and
    /// its delivery through a subscription: the store accepted it and the broker dispatches.
    pub fn round_trip(&mut self, queue: &str, body: &str, deadline: Deadline) -> Result<(), String> {
        let dest = format!("/queue/{queue}");
        self.send_frame(&encode("SUBSCRIBE", &[("id", "0"), ("destination", &dest), ("ack", "auto")], ""), deadline)?;
        self.send_frame(
            &encode("SEND", &[("destination", &dest), ("persistent", "true"), ("receipt", "hastack-send")], body),
            deadline,
        )?;
        let (mut receipt, mut delivered) = (false, false);
        while !(receipt && delivered) {
            let f = self.read_frame(deadline)?;
            match f.command.as_str() {
                "RECEIPT" => receipt = true,
                // Older health messages (from a probe that timed out) are consumed and skipped.
                "MESSAGE" => delivered |= f.body == body,
                "ERROR" => return Err(describe_error(&f)),
                _ => {}
            }
        }
        let _ = self.send_frame(&encode("DISCONNECT", &[], ""), deadline);
        Ok(())
    }
}

fn describe_io(e: &io::Error) -> String {
    if e.kind() == io::ErrorKind::TimedOut {
        "no answer from the broker in time".into()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz finding (fuzz/seeds/stomp/regress-escaped-backslash): `\\c` (an escaped
    /// backslash, then `c`) was read as a backslash and a colon.
    #[test]
    fn an_escaped_backslash_before_c_stays_a_backslash() {
        let mut bytes = encode("SEND", &[("x", r"ID\c1"), ("y", "a\\:\n")], "");
        let f = take_frame(&mut bytes).unwrap();
        assert_eq!(f.headers["x"], r"ID\c1");
        assert_eq!(f.headers["y"], "a\\:\n");
        let mut raw = b"ERROR\nmessage:a\\\\cb\\c\\q\n\n\0".to_vec();
        assert_eq!(take_frame(&mut raw).unwrap().headers["message"], r"a\cb:\q");
    }

    #[test]
    fn frames_round_trip() {
        let bytes = encode("SEND", &[("destination", "/queue/a:b")], "hello");
        assert_eq!(bytes, b"SEND\ndestination:/queue/a\\cb\n\nhello\0");
        let mut buf = b"\n\nCONNECTED\nversion:1.2\nversion:1.0\n\n\0MESSAGE\n".to_vec();
        let f = take_frame(&mut buf).unwrap();
        assert_eq!(f.command, "CONNECTED");
        assert_eq!(f.headers["version"], "1.2");
        assert_eq!(buf, b"MESSAGE\n");
        assert_eq!(take_frame(&mut buf), None, "incomplete frame stays");
        let mut buf = bytes.clone();
        let f = take_frame(&mut buf).unwrap();
        assert_eq!((f.headers["destination"].as_str(), f.body.as_str()), ("/queue/a:b", "hello"));
    }
}
