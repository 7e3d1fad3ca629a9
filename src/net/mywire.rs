//! A minimal MariaDB/MySQL client (client/server protocol 4.1) for the agent's probes: a
//! connection over the Unix socket authenticated by the `unix_socket` plugin (Debian's
//! `root@localhost`), text queries, text results.
//!
//! Why not `mariadb-admin ping`: a process per check, and `ping` answers even while InnoDB
//! cannot serve a query. Why not the `mysql` crate: 105 crates for `SELECT 1`. Without a
//! password there is no scramble to compute: the server knows the client by its peer
//! credentials.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::unistd::Uid;

use crate::net::unix::connect_as;
use crate::net::wire::{read_body, read_exact, write_all, TimedStream};
use crate::ocf::Deadline;

#[derive(Debug)]
pub enum MyError {
    /// No server on the socket.
    NoServer(io::Error),
    /// No answer in time (hung, SIGSTOPped, a lock wait).
    Timeout,
    Io(String),
    /// An ERR packet: error number and message.
    Server {
        code: u16,
        message: String,
    },
}

impl std::fmt::Display for MyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MyError::NoServer(e) => write!(f, "no server on the socket: {e}"),
            MyError::Timeout => write!(f, "no answer from the server in time"),
            MyError::Io(e) => write!(f, "{e}"),
            MyError::Server { code, message } => write!(f, "{message} (error {code})"),
        }
    }
}

fn io_err(e: io::Error) -> MyError {
    if e.kind() == io::ErrorKind::TimedOut {
        MyError::Timeout
    } else {
        MyError::Io(format!("connection: {e}"))
    }
}

pub type Rows = Vec<Vec<Option<String>>>;

const CLIENT_LONG_PASSWORD: u32 = 1;
const CLIENT_PROTOCOL_41: u32 = 0x200;
const CLIENT_TRANSACTIONS: u32 = 0x2000;
const CLIENT_SECURE_CONNECTION: u32 = 0x8000;
const CLIENT_PLUGIN_AUTH: u32 = 0x80000;
/// utf8mb4_general_ci
const CHARSET: u8 = 45;

/// A connection over `S`: the server's Unix socket, or any other byte stream with deadlines
/// (the fuzz targets script a server's answers in memory).
pub struct MyConn<S: TimedStream = UnixStream> {
    stream: S,
    seq: u8,
}

impl MyConn {
    /// Connects as effective user `os_user` (the server maps it to `user` with unix_socket).
    pub fn connect(socket: &Path, os_user: Option<Uid>, user: &str, deadline: Deadline) -> Result<MyConn, MyError> {
        let stream = connect_as(socket, os_user, deadline).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => MyError::NoServer(e),
            _ => io_err(e),
        })?;
        MyConn::handshake(stream, user, deadline)
    }
}

impl<S: TimedStream> MyConn<S> {
    /// The server's greeting and the login as `user` without a password, on a connected stream.
    pub fn handshake(stream: S, user: &str, deadline: Deadline) -> Result<MyConn<S>, MyError> {
        let mut conn = MyConn { stream, seq: 0 };
        let greeting = conn.read_packet(deadline)?;
        match greeting.first() {
            Some(0xFF) => return Err(parse_err(&greeting)),
            Some(10) => {}
            _ => return Err(MyError::Io("the server's greeting is not protocol 10: not MariaDB/MySQL?".into())),
        }
        let mut resp = Vec::new();
        let caps = CLIENT_LONG_PASSWORD
            | CLIENT_PROTOCOL_41
            | CLIENT_TRANSACTIONS
            | CLIENT_SECURE_CONNECTION
            | CLIENT_PLUGIN_AUTH;
        resp.extend_from_slice(&caps.to_le_bytes());
        resp.extend_from_slice(&(16u32 << 20).to_le_bytes());
        resp.push(CHARSET);
        resp.extend_from_slice(&[0u8; 23]);
        resp.extend_from_slice(user.as_bytes());
        resp.push(0);
        resp.push(0); // empty auth response: no password
        resp.extend_from_slice(b"mysql_native_password\0");
        conn.write_packet(&resp, deadline)?;
        loop {
            let p = conn.read_packet(deadline)?;
            match p.first() {
                Some(0x00) => return Ok(conn),
                Some(0xFF) => return Err(parse_err(&p)),
                // Auth switch (e.g. to unix_socket, which needs nothing from the client).
                Some(0xFE) => conn.write_packet(&[], deadline)?,
                _ => {
                    return Err(MyError::Io(format!("unexpected authentication packet {:02x?}", &p[..p.len().min(8)])))
                }
            }
        }
    }

    /// Runs one statement; the rows of its result set (empty for statements without one).
    pub fn query(&mut self, sql: &str, deadline: Deadline) -> Result<Rows, MyError> {
        self.seq = 0;
        let mut p = vec![0x03];
        p.extend_from_slice(sql.as_bytes());
        self.write_packet(&p, deadline)?;
        let first = self.read_packet(deadline)?;
        match first.first() {
            Some(0x00) => return Ok(Vec::new()),
            Some(0xFF) => return Err(parse_err(&first)),
            _ => {}
        }
        let (columns, _) = lenenc_int(&first, 0).ok_or_else(|| MyError::Io("bad column count".into()))?;
        for _ in 0..columns {
            self.read_packet(deadline)?;
        }
        let eof = self.read_packet(deadline)?;
        if !is_eof(&eof) {
            return Err(MyError::Io("no EOF after the column definitions".into()));
        }
        let mut rows = Vec::new();
        loop {
            let p = self.read_packet(deadline)?;
            if is_eof(&p) {
                return Ok(rows);
            }
            if p.first() == Some(&0xFF) {
                return Err(parse_err(&p));
            }
            rows.push(parse_text_row(&p, columns as usize)?);
        }
    }

    fn read_packet(&mut self, deadline: Deadline) -> Result<Vec<u8>, MyError> {
        let mut head = [0u8; 4];
        read_exact(&mut self.stream, &mut head, deadline).map_err(io_err)?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], 0]) as usize;
        self.seq = head[3].wrapping_add(1);
        read_body(&mut self.stream, len, deadline).map_err(io_err)
    }

    fn write_packet(&mut self, payload: &[u8], deadline: Deadline) -> Result<(), MyError> {
        let len = payload.len() as u32;
        let mut p = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, self.seq];
        p.extend_from_slice(payload);
        self.seq = self.seq.wrapping_add(1);
        write_all(&mut self.stream, &p, deadline).map_err(io_err)
    }
}

impl<S: TimedStream> Drop for MyConn<S> {
    fn drop(&mut self) {
        // COM_QUIT, so the server does not count an aborted connection; best effort.
        let _ = self.stream.write_all(&[1, 0, 0, 0, 0x01]);
    }
}

fn is_eof(p: &[u8]) -> bool {
    p.first() == Some(&0xFE) && p.len() < 9
}

/// A length-encoded integer at `at`: (value, bytes used).
pub fn lenenc_int(p: &[u8], at: usize) -> Option<(u64, usize)> {
    let n = |k: usize| -> Option<u64> {
        let b = p.get(at + 1..at + 1 + k)?;
        Some(b.iter().rev().fold(0u64, |acc, x| (acc << 8) | *x as u64))
    };
    match *p.get(at)? {
        x @ 0..=0xFA => Some((x as u64, 1)),
        0xFC => Some((n(2)?, 3)),
        0xFD => Some((n(3)?, 4)),
        0xFE => Some((n(8)?, 9)),
        _ => None,
    }
}

/// A text-protocol row: per column 0xFB (NULL) or a length-encoded string.
pub fn parse_text_row(p: &[u8], columns: usize) -> Result<Vec<Option<String>>, MyError> {
    let bad = || MyError::Io("truncated row".into());
    let mut at = 0;
    let mut row = Vec::with_capacity(columns);
    for _ in 0..columns {
        if p.get(at) == Some(&0xFB) {
            row.push(None);
            at += 1;
            continue;
        }
        let (len, used) = lenenc_int(p, at).ok_or_else(bad)?;
        let start = at + used;
        // The length is the server's word: 2^64 - 1 must not wrap around (or panic).
        let end = usize::try_from(len).ok().and_then(|len| start.checked_add(len)).ok_or_else(bad)?;
        row.push(Some(String::from_utf8_lossy(p.get(start..end).ok_or_else(bad)?).into_owned()));
        at = end;
    }
    Ok(row)
}

/// ERR packet: 0xFF, error code (LE u16), optional '#' + SQLSTATE, message.
pub fn parse_err(p: &[u8]) -> MyError {
    let code = u16::from_le_bytes([*p.get(1).unwrap_or(&0), *p.get(2).unwrap_or(&0)]);
    let mut rest = p.get(3..).unwrap_or(&[]);
    if rest.first() == Some(&b'#') && rest.len() >= 6 {
        rest = &rest[6..];
    }
    MyError::Server { code, message: String::from_utf8_lossy(rest).into_owned() }
}

/// A string literal: backslashes and quotes escaped (the default sql_mode has backslash
/// escapes on).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fuzz finding (fuzz/seeds/mywire/regress-row-length-overflow): a column length of
    /// 2^64 - 1 overflowed the end offset (a panic with overflow checks, a wrap without).
    #[test]
    fn a_column_length_near_2_64_is_a_truncated_row() {
        let mut row = vec![0xFE];
        row.extend_from_slice(&[0xFF; 8]);
        row.extend_from_slice(b"abc");
        assert!(matches!(parse_text_row(&row, 1), Err(MyError::Io(e)) if e == "truncated row"));
        assert_eq!(parse_text_row(b"\x03abc\xFB", 2).unwrap(), vec![Some("abc".to_string()), None]);
    }

    #[test]
    fn parses_rows_errors_and_lengths() {
        assert_eq!(lenenc_int(&[0xFC, 0x10, 0x01], 0), Some((0x110, 3)));
        assert_eq!(lenenc_int(&[5], 0), Some((5, 1)));
        let row = [1, b'1', 0xFB, 2, b'a', b'b'];
        assert_eq!(parse_text_row(&row, 3).unwrap(), vec![Some("1".into()), None, Some("ab".into())]);
        assert!(parse_text_row(&[4, b'a'], 1).is_err());
        let mut err = vec![0xFF, 0x15, 0x04, b'#'];
        err.extend_from_slice(b"28000Access denied");
        assert_eq!(parse_err(&err).to_string(), "Access denied (error 1045)");
        assert!(is_eof(&[0xFE, 0, 0, 2, 0]));
        assert_eq!(literal("a'b\\"), "'a\\'b\\\\'");
    }
}
