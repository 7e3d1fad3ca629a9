//! A minimal PostgreSQL client (frontend/backend protocol 3.0) for the agent's probes: startup
//! over the Unix socket with `peer` or `trust` authentication, simple queries, text results.
//!
//! Why not `psql`: on Debian `psql` is a Perl wrapper (pg_wrapper) that costs tens of
//! milliseconds of CPU before it even connects; a monitor every few seconds should not. Why not
//! the `postgres` crate: 68 crates and tokio for `SELECT 1`. The agent needs no password: it
//! connects as the database owner's OS user through the socket, as the ClusterLabs agent's
//! `psql` run as `pgdba` does.

use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;

use nix::unistd::Uid;

use crate::net::unix::connect_as;
use crate::net::wire::{read_exact, write_all};
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

pub struct PgConn {
    stream: UnixStream,
}

/// Where a server with socket directory `dir` and `port` listens: `DIR/.s.PGSQL.PORT`.
pub fn socket_path(dir: &Path, port: u16) -> std::path::PathBuf {
    dir.join(format!(".s.PGSQL.{port}"))
}

impl PgConn {
    /// Connects and authenticates. `params` are startup parameters beyond user and database
    /// (e.g. `statement_timeout`, `application_name`).
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
        loop {
            let (kind, body) = conn.read_message(deadline)?;
            match kind {
                b'R' => {
                    let code = be_i32(&body, 0)?;
                    if code != 0 {
                        return Err(PgError::Io(format!(
                            "the server asks for a password (authentication method {code}) for user '{user}': \
                             the monitor connects through the Unix socket and needs `peer` or `trust` there"
                        )));
                    }
                }
                b'E' => return Err(parse_error(&body)),
                b'Z' => return Ok(conn),
                _ => {} // ParameterStatus, BackendKeyData, NoticeResponse
            }
        }
    }

    /// Runs one simple query (several statements separated by `;` run as one transaction) and
    /// returns the rows of the last result set.
    pub fn query(&mut self, sql: &str, deadline: Deadline) -> Result<Rows, PgError> {
        let mut msg = vec![b'Q'];
        msg.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
        msg.extend_from_slice(sql.as_bytes());
        msg.push(0);
        write_all(&mut self.stream, &msg, deadline).map_err(io_err)?;
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
        let mut body = vec![0u8; len as usize - 4];
        read_exact(&mut self.stream, &mut body, deadline).map_err(io_err)?;
        Ok((head[0], body))
    }
}

impl Drop for PgConn {
    fn drop(&mut self) {
        // Terminate, so the server logs no "unexpected EOF"; best effort.
        use std::io::Write;
        let _ = self.stream.write_all(&[b'X', 0, 0, 0, 4]);
    }
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
