//! A minimal PostgreSQL client (frontend/backend protocol 3.0) for the agent's probes: startup
//! over the Unix socket with `peer` or `trust` authentication, simple queries, text results.
//! Over TCP (the lab's ledger check, through the data-layer address) it also answers `password`
//! and `scram-sha-256` authentication (`net::scram`); `md5` is refused with a clear message.
//!
//! Why not `psql`: on Debian `psql` is a Perl wrapper (pg_wrapper) that costs tens of
//! milliseconds of CPU before it even connects; a monitor every few seconds should not. Why not
//! the `postgres` crate: 68 crates and tokio for `SELECT 1`. The agent needs no password: it
//! connects as the database owner's OS user through the socket, as the ClusterLabs agent's
//! `psql` run as `pgdba` does.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use nix::unistd::Uid;

use crate::net::scram::Scram;
use crate::net::unix::connect_as;
use crate::net::wire::{connect_tcp, read_body, read_exact, write_all, TimedStream};
use crate::ocf::Deadline;

/// What went wrong, in a form the agent can map to an OCF code.
#[derive(Debug)]
pub enum PgError {
    /// No server on the socket (missing socket file, connection refused).
    NoServer(io::Error),
    /// The server did not answer in time (hung, SIGSTOPped, overloaded).
    Timeout,
    /// Connection broken, or bytes that are not the protocol.
    Io(String),
    /// An ErrorResponse: SQLSTATE and message.
    Server { code: String, message: String },
}

impl PgError {
    /// SQLSTATE 57P03: "the database system is starting up" (or in recovery): wait, don't fail.
    pub fn is_starting(&self) -> bool {
        matches!(self, PgError::Server { code, .. } if code == "57P03")
    }
}

impl std::fmt::Display for PgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PgError::NoServer(e) => write!(f, "no server on the socket: {e}"),
            PgError::Timeout => write!(f, "no answer from the server in time"),
            PgError::Io(e) => write!(f, "{e}"),
            PgError::Server { code, message } => write!(f, "{message} (SQLSTATE {code})"),
        }
    }
}

fn io_err(e: io::Error) -> PgError {
    if e.kind() == io::ErrorKind::TimedOut {
        PgError::Timeout
    } else {
        PgError::Io(format!("connection: {e}"))
    }
}

/// Rows of text values (None = NULL).
pub type Rows = Vec<Vec<Option<String>>>;

/// The connection: the server's Unix socket, or TCP.
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TimedStream for Stream {
    fn set_timeouts(&self, t: Duration) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_timeouts(t),
            Stream::Tcp(s) => s.set_timeouts(t),
        }
    }
}

/// A connection over `S`: the server's socket ([`Stream`]), or any other byte stream with
/// deadlines (the fuzz targets script a server's answers in memory).
pub struct PgConn<S: TimedStream = Stream> {
    stream: S,
}

/// Where a server with socket directory `dir` and `port` listens: `DIR/.s.PGSQL.PORT`.
pub fn socket_path(dir: &Path, port: u16) -> std::path::PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

impl PgConn {
    /// Connects through the Unix socket and authenticates (`peer` or `trust`). `params` are
    /// startup parameters beyond user and database (e.g. `statement_timeout`, `application_name`).
    pub fn connect(
        socket: &Path,
        os_user: Option<Uid>,
        user: &str,
        database: &str,
        params: &[(&str, &str)],
        deadline: Deadline,
    ) -> Result<PgConn, PgError> {
        let stream = connect_as(socket, os_user, deadline).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => PgError::NoServer(e),
            _ => io_err(e),
        })?;
        PgConn::startup(Stream::Unix(stream), user, None, database, params, deadline)
    }

    /// Connects over TCP to `addr` (`host:port`) and authenticates with `password` if the server
    /// asks for one (`password` or `scram-sha-256` in pg_hba.conf), or none (`trust`).
    pub fn connect_tcp(
        addr: &str,
        user: &str,
        password: Option<&str>,
        database: &str,
        params: &[(&str, &str)],
        deadline: Deadline,
    ) -> Result<PgConn, PgError> {
        let stream = connect_tcp(addr, deadline).map_err(|e| match e.kind() {
            io::ErrorKind::ConnectionRefused => PgError::NoServer(e),
            _ => io_err(e),
        })?;
        PgConn::startup(Stream::Tcp(stream), user, password, database, params, deadline)
    }
}

impl<S: TimedStream> PgConn<S> {
    /// Starts a session on a connected stream: the startup message, authentication (`trust`,
    /// `password` or `scram-sha-256` with `password`), until the server is ready for a query.
    pub fn startup(
        stream: S,
        user: &str,
        password: Option<&str>,
        database: &str,
        params: &[(&str, &str)],
        deadline: Deadline,
    ) -> Result<PgConn<S>, PgError> {
        let mut conn = PgConn { stream };
        let mut body = Vec::new();
        body.extend_from_slice(&196608i32.to_be_bytes()); // protocol 3.0
        for (k, v) in [("user", user), ("database", database)].iter().chain(params.iter()) {
            body.extend_from_slice(k.as_bytes());
            body.push(0);
            body.extend_from_slice(v.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        msg.extend_from_slice(&body);
        write_all(&mut conn.stream, &msg, deadline).map_err(io_err)?;
        let mut scram: Option<Scram> = None;
        loop {
            let (kind, body) = conn.read_message(deadline)?;
            match kind {
                b'R' => match be_i32(&body, 0)? {
                    0 => {} // AuthenticationOk
                    3 => {
                        let pw = need_password(password, user, "password")?;
                        let mut reply = pw.as_bytes().to_vec();
                        reply.push(0);
                        conn.send(b'p', &reply, deadline)?;
                    }
                    10 => {
                        let pw = need_password(password, user, "scram-sha-256")?;
                        let mechanisms = String::from_utf8_lossy(&body[4..]);
                        if !mechanisms.split('\0').any(|m| m == "SCRAM-SHA-256") {
                            return Err(PgError::Io(format!("the server offers only SASL {mechanisms:?}")));
                        }
                        let nonce = Scram::random_nonce().map_err(|e| PgError::Io(format!("no random nonce: {e}")))?;
                        let s = Scram::new("", pw, &nonce);
                        let first = s.client_first();
                        let mut reply = b"SCRAM-SHA-256\0".to_vec();
                        reply.extend_from_slice(&(first.len() as i32).to_be_bytes());
                        reply.extend_from_slice(first.as_bytes());
                        conn.send(b'p', &reply, deadline)?;
                        scram = Some(s);
                    }
                    11 => {
                        let s = scram.as_mut().ok_or_else(|| PgError::Io("SASL continue without a start".into()))?;
                        let fin = s.client_final(&String::from_utf8_lossy(&body[4..])).map_err(PgError::Io)?;
                        conn.send(b'p', fin.as_bytes(), deadline)?;
                    }
                    12 => {
                        let s = scram.as_ref().ok_or_else(|| PgError::Io("SASL final without a start".into()))?;
                        s.verify_server(&String::from_utf8_lossy(&body[4..])).map_err(PgError::Io)?;
                    }
                    5 => {
                        return Err(PgError::Io(format!(
                            "the server asks for md5 authentication for user '{user}', which this client does not \
                             speak: use scram-sha-256 (PostgreSQL's default since 14) in pg_hba.conf"
                        )))
                    }
                    code => {
                        return Err(PgError::Io(format!(
                            "the server asks for authentication method {code} for user '{user}', which this client \
                             does not speak: use peer or trust (Unix socket), scram-sha-256 or password (TCP)"
                        )))
                    }
                },
                b'E' => return Err(parse_error(&body)),
                b'Z' => return Ok(conn),
                _ => {} // ParameterStatus, BackendKeyData, NoticeResponse
            }
        }
    }

    fn send(&mut self, kind: u8, body: &[u8], deadline: Deadline) -> Result<(), PgError> {
        let mut msg = vec![kind];
        msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        msg.extend_from_slice(body);
        write_all(&mut self.stream, &msg, deadline).map_err(io_err)
    }

    /// Runs one simple query (several statements separated by `;` run as one transaction) and
    /// returns the rows of the last result set.
    pub fn query(&mut self, sql: &str, deadline: Deadline) -> Result<Rows, PgError> {
        let mut text = sql.as_bytes().to_vec();
        text.push(0);
        self.send(b'Q', &text, deadline)?;
        let mut rows = Vec::new();
        let mut error = None;
        loop {
            let (kind, body) = self.read_message(deadline)?;
            match kind {
                b'T' => rows.clear(),
                b'D' => rows.push(parse_row(&body)?),
                b'E' => error = Some(parse_error(&body)),
                b'Z' => return error.map_or(Ok(rows), Err),
                _ => {} // CommandComplete, EmptyQueryResponse, notices
            }
        }
    }

    fn read_message(&mut self, deadline: Deadline) -> Result<(u8, Vec<u8>), PgError> {
        let mut head = [0u8; 5];
        read_exact(&mut self.stream, &mut head, deadline).map_err(io_err)?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]);
        if !(4..=64 * 1024 * 1024).contains(&len) {
            return Err(PgError::Io(format!("bad message length {len}: not a PostgreSQL server?")));
        }
        let body = read_body(&mut self.stream, len as usize - 4, deadline).map_err(io_err)?;
        Ok((head[0], body))
    }
}

impl<S: TimedStream> Drop for PgConn<S> {
    fn drop(&mut self) {
        // Terminate, so the server logs no "unexpected EOF"; best effort.
        let _ = self.stream.write_all(&[b'X', 0, 0, 0, 4]);
    }
}

fn need_password<'a>(password: Option<&'a str>, user: &str, method: &str) -> Result<&'a str, PgError> {
    password.ok_or_else(|| {
        PgError::Io(format!(
            "the server asks for a password ({method}) for user '{user}': the monitor connects through the Unix \
             socket and needs `peer` or `trust` there; over TCP give a password"
        ))
    })
}

fn be_i32(b: &[u8], at: usize) -> Result<i32, PgError> {
    b.get(at..at + 4)
        .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| PgError::Io("truncated message".into()))
}

/// DataRow: Int16 column count, then per column Int32 length (-1 = NULL) and the bytes.
pub fn parse_row(body: &[u8]) -> Result<Vec<Option<String>>, PgError> {
    let bad = || PgError::Io("truncated data row".into());
    let n = u16::from_be_bytes([*body.first().ok_or_else(bad)?, *body.get(1).ok_or_else(bad)?]) as usize;
    let mut at = 2;
    let mut row = Vec::with_capacity(n);
    for _ in 0..n {
        let len = be_i32(body, at)?;
        at += 4;
        if len < 0 {
            row.push(None);
        } else {
            let end = at + len as usize;
            row.push(Some(String::from_utf8_lossy(body.get(at..end).ok_or_else(bad)?).into_owned()));
            at = end;
        }
    }
    Ok(row)
}

/// ErrorResponse: (field type byte, C string)* then 0. Keeps SQLSTATE (C) and message (M).
pub fn parse_error(body: &[u8]) -> PgError {
    let (mut code, mut message) = (String::new(), String::new());
    for field in body.split(|b| *b == 0).filter(|f| !f.is_empty()) {
        let text = String::from_utf8_lossy(&field[1..]).into_owned();
        match field[0] {
            b'C' => code = text,
            b'M' => message = text,
            _ => {}
        }
    }
    PgError::Server { code, message }
}

/// A string literal for SQL text: single quotes doubled (standard_conforming_strings is on
/// since 9.1, so backslashes are plain characters).
pub fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// An identifier, double-quoted.
pub fn ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rows_and_errors() {
        let row = [0, 2, 0, 0, 0, 1, b'1', 0xff, 0xff, 0xff, 0xff];
        assert_eq!(parse_row(&row).unwrap(), vec![Some("1".to_string()), None]);
        assert!(parse_row(&[0, 1, 0, 0, 0, 9, b'x']).is_err());
        let err = b"SFATAL\0C57P03\0Mthe database system is starting up\0\0";
        let e = parse_error(err);
        assert!(e.is_starting());
        assert_eq!(e.to_string(), "the database system is starting up (SQLSTATE 57P03)");
    }

    #[test]
    fn quotes_literals_and_identifiers() {
        assert_eq!(literal("it's"), "'it''s'");
        assert_eq!(ident("a\"b"), "\"a\"\"b\"");
    }
}
