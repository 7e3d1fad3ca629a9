//! The few things the store needs from a SQL database, so that its queries and its ingest logic
//! exist once for SQLite and PostgreSQL: run a statement, run a query, and the dialect's handful
//! of differences. Statements use `$1, $2...` placeholders (the SQLite backend rewrites them).

use std::sync::Mutex;

use anyhow::{bail, Result};

/// A SQL value. Integers are 64-bit everywhere (PostgreSQL columns are BIGINT).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

impl Val {
    pub fn int(&self) -> Option<i64> {
        match self {
            Val::Int(i) => Some(*i),
            _ => None,
        }
    }
    pub fn text(&self) -> Option<&str> {
        match self {
            Val::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn string(&self) -> Option<String> {
        self.text().map(str::to_string)
    }
    pub fn blob(&self) -> Option<&[u8]> {
        match self {
            Val::Blob(b) => Some(b),
            _ => None,
        }
    }
}

impl From<i64> for Val {
    fn from(v: i64) -> Val {
        Val::Int(v)
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Val {
        Val::Int(v as i64)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Val {
        Val::Int(v as i64)
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Val {
        Val::Text(v.to_string())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Val {
        Val::Text(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Val {
        Val::Text(v.clone())
    }
}
impl From<Vec<u8>> for Val {
    fn from(v: Vec<u8>) -> Val {
        Val::Blob(v)
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Val {
        v.map_or(Val::Null, Into::into)
    }
}

pub type Row = Vec<Val>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

pub trait Db: Send {
    fn dialect(&self) -> Dialect;
    /// Runs one statement; returns the rows it changed.
    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64>;
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>>;
    /// Runs several statements without parameters (schema, transaction control).
    fn batch(&mut self, sql: &str) -> Result<()>;
    /// Starts a write transaction (SQLite takes the write lock at once: no upgrade deadlock).
    fn begin(&mut self) -> Result<()>;

    fn query_one(&mut self, sql: &str, params: &[Val]) -> Result<Option<Row>> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
    fn commit(&mut self) -> Result<()> {
        self.batch("COMMIT")
    }
    fn rollback(&mut self) -> Result<()> {
        self.batch("ROLLBACK")
    }
}

/// Where the console keeps its data: `sqlite://PATH` (`sqlite:///var/...` is absolute) or a
/// PostgreSQL URL (`postgres://` or `postgresql://`, libpq's syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    Sqlite(std::path::PathBuf),
    Postgres(String),
}

pub use crate::console::args::DEFAULT_DB;

impl DbUrl {
    pub fn parse(url: &str) -> Result<DbUrl> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                bail!("--db {url}: no file after sqlite:// (e.g. sqlite:///var/lib/hastack/console/console.db)");
            }
            return Ok(DbUrl::Sqlite(path.into()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_string()));
        }
        bail!("--db {url}: expected sqlite://PATH or postgres://USER@HOST/DB")
    }

    /// The URL without a password, for logs and pages.
    pub fn display(&self) -> String {
        match self {
            DbUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DbUrl::Postgres(url) => redact_password(url),
        }
    }
}

fn redact_password(url: &str) -> String {
    // scheme://user:password@host... → scheme://user:***@host...
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let Some((userinfo, host)) = rest.split_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

type Connect = dyn Fn() -> Result<Box<dyn Db>> + Send + Sync;

/// Idle connections kept for reuse (readers). A connection is returned on drop unless the work
/// on it failed, which may have left it broken.
pub struct Pool {
    idle: Mutex<Vec<Box<dyn Db>>>,
    connect: Box<Connect>,
}

impl Pool {
    pub fn new(connect: Box<Connect>) -> Pool {
        Pool { idle: Mutex::new(Vec::new()), connect }
    }

    pub fn connect(&self) -> Result<Box<dyn Db>> {
        (self.connect)()
    }

    /// Runs `f` on a pooled connection.
    pub fn with<T>(&self, f: impl FnOnce(&mut dyn Db) -> Result<T>) -> Result<T> {
        let popped = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut db = match popped {
            Some(db) => db,
            None => self.connect()?,
        };
        let result = f(db.as_mut());
        if result.is_ok() {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            if idle.len() < 8 {
                idle.push(db);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_backend_and_hide_passwords() {
        assert_eq!(DbUrl::parse(DEFAULT_DB).unwrap(), DbUrl::Sqlite("/var/lib/hastack/console/console.db".into()));
        assert_eq!(DbUrl::parse("sqlite://rel/c.db").unwrap(), DbUrl::Sqlite("rel/c.db".into()));
        assert!(DbUrl::parse("sqlite://").is_err());
        assert!(DbUrl::parse("/var/lib/console.db").unwrap_err().to_string().contains("expected sqlite://"));
        let pg = DbUrl::parse("postgresql://console:s3cret@db.example:5432/console").unwrap();
        assert_eq!(pg.display(), "postgresql://console:***@db.example:5432/console");
    }
}
