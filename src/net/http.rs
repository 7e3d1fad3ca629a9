//! A minimal HTTP client for health URLs on the service's own addresses and the lab's
//! transaction client, with a deadline on connect, write and every read: a hung service gives a
//! fast error, not a monitor timeout. One request per connection (`Connection: close`).
//! Plain http only (status URLs are local); https is refused with a clear message.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use crate::ocf::Deadline;

#[derive(Debug, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    pub path: String,
}

/// Parses `http://host[:port][/path]` (IPv6 hosts in brackets).
pub fn parse_url(url: &str) -> Result<Url, String> {
    if url.starts_with("https://") {
        return Err(format!("'{url}': https is not supported for health checks; use the plain http port"));
    }
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("'{url}' is not an http:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| format!("'{url}': unclosed '['"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("'{url}' has no host"));
    }
    let port = match port {
        Some(p) => p.parse().map_err(|_| format!("'{url}' has a bad port '{p}'"))?,
        None => 80,
    };
    Ok(Url { host, port, path: path.to_string() })
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// GETs `url` within the deadline (HTTP/1.0). Errors are one line, fit for an exit reason.
pub fn get(url: &Url, deadline: Deadline) -> Result<Response, String> {
    exchange("GET", "1.0", url, None, deadline)
}

/// One HTTP/1.1 request (e.g. a POST with a body) within the deadline.
pub fn request(method: &str, url: &Url, body: Option<&[u8]>, deadline: Deadline) -> Result<Response, String> {
    exchange(method, "1.1", url, body, deadline)
}

fn exchange(
    method: &str,
    version: &str,
    url: &Url,
    body: Option<&[u8]>,
    deadline: Deadline,
) -> Result<Response, String> {
    let addr = (url.host.as_str(), url.port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {}: {e}", url.host))?
        .next()
        .ok_or_else(|| format!("cannot resolve {}", url.host))?;
    let timeout = |d: Deadline| d.remaining().max(Duration::from_millis(1));
    let mut stream =
        TcpStream::connect_timeout(&addr, timeout(deadline)).map_err(|e| format!("connect to {addr}: {e}"))?;
    stream.set_write_timeout(Some(timeout(deadline))).ok();
    let host = if url.host.contains(':') { format!("[{}]", url.host) } else { url.host.clone() };
    let mut request = format!(
        "{method} {} HTTP/{version}\r\nHost: {host}:{}\r\nUser-Agent: hastack\r\nConnection: close\r\n",
        url.path, url.port
    )
    .into_bytes();
    if let Some(body) = body {
        request.extend_from_slice(format!("Content-Type: text/plain\r\nContent-Length: {}\r\n", body.len()).as_bytes());
    } else if method == "POST" {
        request.extend_from_slice(b"Content-Length: 0\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(body.unwrap_or_default());
    stream.write_all(&request).map_err(|e| format!("send to {addr}: {e}"))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        if deadline.expired() {
            return Err(format!("no complete answer from {addr} in time"));
        }
        stream.set_read_timeout(Some(timeout(deadline))).ok();
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return Err(format!("no answer from {addr} in time"))
            }
            Err(e) => return Err(format!("read from {addr}: {e}")),
        }
        // Stop at the end of a Content-Length body (a server may ignore `Connection: close`),
        // and don't read a huge body to the end: health pages are small.
        if body_complete(&raw) || raw.len() > 1024 * 1024 {
            break;
        }
    }
    parse_response(&raw).ok_or_else(|| format!("{addr} did not answer HTTP"))
}

/// Whether the headers are in and the body has the length they announce (or its last chunk).
fn body_complete(raw: &[u8]) -> bool {
    let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else { return false };
    let headers = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    if is_chunked(&headers) {
        return raw.ends_with(b"\r\n0\r\n\r\n") || raw.len() == end + 9 && raw.ends_with(b"0\r\n\r\n");
    }
    let length =
        headers.lines().find_map(|l| l.strip_prefix("content-length:").and_then(|v| v.trim().parse::<usize>().ok()));
    length.is_some_and(|len| raw.len() >= end + 4 + len)
}

fn is_chunked(lower_headers: &str) -> bool {
    lower_headers.lines().any(|l| l.strip_prefix("transfer-encoding:").is_some_and(|v| v.contains("chunked")))
}

pub fn parse_response(raw: &[u8]) -> Option<Response> {
    let text = String::from_utf8_lossy(raw);
    let status_line = text.lines().next()?;
    let mut parts = status_line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/") {
        return None;
    }
    let status = parts.next()?.parse().ok()?;
    let (headers, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if is_chunked(&headers.to_ascii_lowercase()) { dechunk(body) } else { body.to_string() };
    Some(Response { status, body })
}

/// The data of a chunked body (chunk extensions and trailers dropped).
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16) else { break };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].strip_prefix("\r\n").unwrap_or(&after[n..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:8080/health").unwrap(),
            Url { host: "127.0.0.1".into(), port: 8080, path: "/health".into() }
        );
        assert_eq!(parse_url("http://localhost").unwrap().port, 80);
        assert_eq!(parse_url("http://[::1]:81/x").unwrap().host, "::1");
        assert!(parse_url("https://x/").unwrap_err().contains("https"));
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("http://h:port/").is_err());
    }

    #[test]
    fn reads_chunked_and_sized_bodies() {
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc";
        assert!(body_complete(sized));
        assert_eq!(parse_response(sized).unwrap().body, "abc");
        let chunked = b"HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nnot \r\n5\r\nyet\r\n\r\n0\r\n\r\n";
        assert!(!body_complete(&chunked[..chunked.len() - 5]));
        assert!(body_complete(chunked));
        let r = parse_response(chunked).unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "not yet\r\n"));
    }

    #[test]
    fn posts_a_body_with_its_length() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"hello") {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0, "request ended early: {}", String::from_utf8_lossy(&got));
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\ncommitted\n").unwrap();
            String::from_utf8(got).unwrap()
        });
        let url = parse_url(&format!("http://127.0.0.1:{port}/lab/tx/r/1")).unwrap();
        let r = request("POST", &url, Some(b"hello"), Deadline::after(Duration::from_secs(2))).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "committed\n"));
        let req = server.join().unwrap();
        assert!(req.starts_with("POST /lab/tx/r/1 HTTP/1.1\r\n"), "{req}");
        assert!(req.contains("Content-Length: 5\r\n"), "{req}");
    }

    #[test]
    fn gets_a_page_and_times_out_on_a_silent_server() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap();
            // (kept open: the client must stop at Content-Length)
            // Second connection: accept and say nothing.
            let (_silent, _) = l.accept().unwrap();
            std::thread::sleep(Duration::from_millis(500));
        });
        let url = parse_url(&format!("http://127.0.0.1:{port}/")).unwrap();
        let r = get(&url, Deadline::after(Duration::from_secs(2))).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "ok"));
        let started = std::time::Instant::now();
        let e = get(&url, Deadline::after(Duration::from_millis(150))).unwrap_err();
        assert!(e.contains("in time"), "{e}");
        assert!(started.elapsed() < Duration::from_millis(450));
        server.join().unwrap();
    }
}
