//! A small HTTP/1.1 client over std's TcpStream: enough for the console's JSON, pages and
//! server-sent events, with no dependency (and keep-alive for the benchmark).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    /// The console's own time for the request, from `Server-Timing: app;dur=…`.
    pub fn server_ms(&self) -> f64 {
        let v = self.header("server-timing").expect("a Server-Timing header");
        v.split("dur=").nth(1).and_then(|d| d.parse().ok()).expect("a duration")
    }
}

fn request_text(
    host: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
    keep_alive: bool,
) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    if !keep_alive {
        req.push_str("Connection: close\r\n");
    }
    req.push_str("\r\n");
    let mut bytes = req.into_bytes();
    if let Some(b) = body {
        bytes.extend_from_slice(b);
    }
    bytes
}

/// One request on a new connection.
pub fn request(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Response {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut conn = Connection { reader: BufReader::new(stream) };
    conn.send(method, path, headers, body, false)
}

pub fn get(addr: &str, path: &str) -> Response {
    request(addr, "GET", path, &[], None)
}

/// A keep-alive connection (the benchmark's clients).
pub struct Connection {
    reader: BufReader<TcpStream>,
}

impl Connection {
    pub fn open(addr: &str) -> Connection {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        Connection { reader: BufReader::new(stream) }
    }

    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        keep_alive: bool,
    ) -> Response {
        let host = self.reader.get_ref().peer_addr().map(|a| a.to_string()).unwrap_or_default();
        let bytes = request_text(&host, method, path, headers, body, keep_alive);
        if bytes.len() > 1 << 20 {
            // A server may answer (413) and close before taking a large body: write it from a
            // thread, ignore its errors, and read the answer meanwhile.
            let mut w = self.reader.get_ref().try_clone().unwrap();
            std::thread::spawn(move || {
                let _ = w.write_all(&bytes);
            });
        } else {
            self.reader.get_mut().write_all(&bytes).unwrap();
        }
        let (status, headers) = read_head(&mut self.reader);
        let find = |name: &str| headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
        let body = if let Some(len) = find("content-length") {
            let mut b = vec![0; len.parse().unwrap()];
            self.reader.read_exact(&mut b).unwrap();
            b
        } else if find("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
            read_chunked(&mut self.reader)
        } else {
            let mut b = Vec::new();
            self.reader.read_to_end(&mut b).unwrap();
            b
        };
        Response { status, headers, body }
    }
}

fn read_head(r: &mut impl BufRead) -> (u16, Vec<(String, String)>) {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {line:?}"));
    let mut headers = Vec::new();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    (status, headers)
}

fn read_chunked(r: &mut impl BufRead) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size).unwrap();
        let n = usize::from_str_radix(size.trim().split(';').next().unwrap(), 16).unwrap();
        let mut chunk = vec![0; n + 2];
        r.read_exact(&mut chunk).unwrap();
        if n == 0 {
            return body;
        }
        body.extend_from_slice(&chunk[..n]);
    }
}

/// A server-sent events subscription: `next_event` returns (event, data) pairs.
pub struct EventStream {
    reader: BufReader<TcpStream>,
}

impl EventStream {
    pub fn open(addr: &str, path: &str) -> EventStream {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        stream.write_all(&request_text(addr, "GET", path, &[("Accept", "text/event-stream")], None, true)).unwrap();
        let mut reader = BufReader::new(stream);
        let (status, _) = read_head(&mut reader);
        assert_eq!(status, 200, "SSE {path}");
        EventStream { reader }
    }

    /// The next event that is not a keep-alive comment (chunk framing lines are skipped).
    pub fn next_event(&mut self) -> (String, String) {
        let (mut event, mut data) = (String::new(), Vec::new());
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("an SSE line before the read timeout");
            assert!(n > 0, "the event stream ended");
            let l = line.trim_end_matches(['\r', '\n']);
            if let Some(v) = l.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = l.strip_prefix("data:") {
                data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
            } else if l.is_empty() && !event.is_empty() {
                return (event, data.join("\n"));
            }
        }
    }
}
