//! The SQLite backend (rusqlite, SQLite compiled in): WAL, so pages read while ingest writes;
//! `synchronous=FULL`, so a report answered 2xx survives a power cut (one fsync per batch).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};

use super::db::{Db, Dialect, Row, Val};

pub struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    pub fn open(path: &Path) -> Result<Sqlite> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn =
            Connection::open_with_flags(path, flags).with_context(|| format!("cannot open {}", path.display()))?;
        // The CLI (cluster add) may write while the server does: wait for the lock, do not fail.
        conn.busy_timeout(Duration::from_secs(30))?;
        // Ingest's statements (merges, replays) and the pages' are more than rusqlite's default
        // 16: a statement evicted is compiled again on its next use.
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536;")
            .with_context(|| format!("cannot set up {}", path.display()))?;
        Ok(Sqlite { conn })
    }
}

impl rusqlite::ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Val::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

/// `$1` → `?1`: the store writes PostgreSQL's placeholders; SQLite numbers them with `?`.
/// Runs for every statement (before the prepared-statement cache is asked): slices are copied
/// whole, not char by char.
fn placeholders(sql: &str) -> String {
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = bytes[at..].iter().position(|&b| b == b'$') {
        let dollar = at + found;
        if bytes.get(dollar + 1).is_some_and(u8::is_ascii_digit) {
            out.push_str(&sql[copied..dollar]);
            out.push('?');
            copied = dollar + 1;
        }
        at = dollar + 1;
    }
    out.push_str(&sql[copied..]);
    out
}

fn value(v: ValueRef) -> Val {
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::Int(i),
        ValueRef::Real(f) => Val::Int(f as i64),
        ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Val::Blob(b.to_vec()),
    }
}

impl Db for Sqlite {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn exec(&mut self, sql: &str, params: &[Val]) -> Result<u64> {
        let mut stmt = self.conn.prepare_cached(&placeholders(sql)).with_context(|| format!("SQL: {sql}"))?;
        Ok(stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64)
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>> {
        let mut stmt = self.conn.prepare_cached(&placeholders(sql)).with_context(|| format!("SQL: {sql}"))?;
        let n = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push((0..n).map(|i| row.get_ref(i).map(value)).collect::<rusqlite::Result<Row>>()?);
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<()> {
        Ok(self.conn.execute_batch(sql)?)
    }

    fn begin(&mut self) -> Result<()> {
        self.batch("BEGIN IMMEDIATE")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_are_renumbered_for_sqlite() {
        assert_eq!(super::placeholders("SELECT $1, $12 WHERE a = '$x'"), "SELECT ?1, ?12 WHERE a = '$x'");
        assert_eq!(super::placeholders("$2 = $1$"), "?2 = ?1$");
        assert_eq!(super::placeholders("é $3 ü"), "é ?3 ü");
    }
}
