//! `hastack lab verify`: compares what the client holds as committed (its log) with what the
//! ledger table in PostgreSQL recorded, counting rows per transaction.
//!
//! The table has no unique constraint on purpose (see lab/app/README.md): exactly once is the
//! application's de-duplication, and this check is what proves it, so it must be able to fail.
//! It reports sent, acknowledged, missing (acknowledged but not recorded: must be 0), duplicated
//! (recorded more than once: must be 0), recorded but never acknowledged (allowed: the answer
//! was lost or the client stopped first) and recorded but never sent (must be 0: rows the
//! client never asked for).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use crate::lab::client::{Kind, Log};
use crate::net::pgwire::{self, PgConn};
use crate::ocf::Deadline;

/// Where the ledger is: `postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE`, as libpq writes
/// it. The password may instead come from PGPASSWORD (kept out of the process list). A Unix
/// socket is `postgresql://USER@/DATABASE?host=/run/postgresql` (peer or trust).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbUrl {
    pub user: String,
    pub password: Option<String>,
    pub host: String,
    pub port: u16,
    pub database: String,
}

impl DbUrl {
    pub fn parse(url: &str) -> Result<DbUrl, String> {
        let rest = url
            .strip_prefix("postgresql://")
            .or_else(|| url.strip_prefix("postgres://"))
            .ok_or(format!("'{url}' is not a postgresql:// URL"))?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
        let (user, password) = match userinfo.split_once(':') {
            Some((u, p)) => (decode(u)?, Some(decode(p)?)),
            None => (decode(userinfo)?, None),
        };
        let (mut host, mut port) = split_host_port(hostport).map_err(|e| format!("'{url}': {e}"))?;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=') {
                Some(("host", h)) => host = decode(h)?,
                Some(("port", p)) => port = Some(p.parse().map_err(|_| format!("'{url}': bad port '{p}'"))?),
                _ => return Err(format!("'{url}': unsupported parameter '{pair}' (host and port are)")),
            }
        }
        Ok(DbUrl {
            user: if user.is_empty() { "postgres".into() } else { user },
            password: password.filter(|p| !p.is_empty()),
            host: if host.is_empty() { "127.0.0.1".into() } else { host },
            port: port.unwrap_or(5432),
            database: if database.is_empty() { "postgres".into() } else { decode(database)? },
        })
    }

    /// The password from the URL, else from PGPASSWORD.
    pub fn with_env_password(mut self) -> DbUrl {
        if self.password.is_none() {
            self.password = std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty());
        }
        self
    }

    pub fn connect(&self, deadline: Deadline) -> Result<PgConn> {
        let params = [("application_name", "hastack-lab-verify")];
        let conn = if self.host.starts_with('/') {
            let socket = pgwire::socket_path(self.host.as_ref(), self.port);
            PgConn::connect(&socket, None, &self.user, &self.database, &params, deadline)
        } else {
            let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
            let addr = format!("{host}:{}", self.port);
            PgConn::connect_tcp(&addr, &self.user, self.password.as_deref(), &self.database, &params, deadline)
        };
        conn.map_err(|e| {
            anyhow!("cannot connect to database '{}' on {} as '{}': {e}", self.database, self.host, self.user)
        })
    }
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("unclosed '['")?;
        (h, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = port.map(|p| p.parse::<u16>().map_err(|_| format!("bad port '{p}'"))).transpose()?;
    Ok((decode(host)?, port))
}

/// Percent-decoding (a password may hold '@', ':' or '/').
fn decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok());
            out.push(hex.ok_or(format!("bad percent escape in '{s}'"))?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("'{s}' is not UTF-8 once decoded"))
}

/// The ledger's rows for one run: transaction → number of rows (and deliveries absorbed).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recorded {
    pub rows: BTreeMap<u64, u64>,
    /// Deliveries beyond the first that the application recognised and did not record again.
    pub redeliveries: u64,
}

/// Reads the run's rows from the ledger table.
pub fn read_ledger(db: &DbUrl, table: &str, run: &str, deadline: Deadline) -> Result<Recorded> {
    if table.is_empty() || !table.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        bail!("--table '{table}' is not a plain lower-case SQL identifier");
    }
    let mut conn = db.connect(deadline)?;
    let sql = format!(
        "SELECT tx, count(*), sum(deliveries) - count(*) FROM {} WHERE run = {} GROUP BY tx",
        pgwire::ident(table),
        pgwire::literal(run)
    );
    let rows = conn.query(&sql, deadline).map_err(|e| anyhow!("cannot read the ledger table {table}: {e}"))?;
    let mut recorded = Recorded::default();
    for row in rows {
        let num = |i: usize| row.get(i).cloned().flatten().and_then(|v| v.parse::<u64>().ok());
        let (Some(tx), Some(n)) = (num(0), num(1)) else { bail!("unexpected ledger row {row:?}") };
        recorded.rows.insert(tx, n);
        recorded.redeliveries += num(2).unwrap_or(0);
    }
    Ok(recorded)
}

/// The comparison of a client log with the ledger.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub run: String,
    /// Distinct transactions the client sent (at least once).
    pub sent: usize,
    /// POSTs, resends included.
    pub sends: usize,
    pub acknowledged: usize,
    /// Acknowledged but not recorded: an acknowledged transaction was lost.
    pub missing: Vec<u64>,
    /// Recorded more than once: (transaction, rows).
    pub duplicated: Vec<(u64, u64)>,
    /// Recorded, but the client never held it as committed (allowed).
    pub unacknowledged_recorded: usize,
    /// Rows for transactions this log never sent. While the client still runs, rows beyond its
    /// last logged send are not counted: the log was read first, they may be sent since.
    pub never_sent: Vec<u64>,
    /// The client stopped before it learned these transactions' fate.
    pub abandoned: usize,
    pub redeliveries: u64,
}

impl Report {
    pub fn compare(log: &Log, recorded: &Recorded) -> Report {
        let sent: BTreeSet<u64> = log.events.iter().filter(|e| e.kind == Kind::Send).map(|e| e.tx).collect();
        let acked: BTreeSet<u64> = log.events.iter().filter(|e| e.kind.acknowledges()).map(|e| e.tx).collect();
        let abandoned: BTreeSet<u64> = log
            .events
            .iter()
            .filter(|e| e.kind == Kind::Abandoned)
            .map(|e| e.tx)
            .filter(|t| !acked.contains(t))
            .collect();
        let rows = |tx: &u64| recorded.rows.get(tx).copied().unwrap_or(0);
        let last_sent = sent.last().copied().unwrap_or(0);
        let foreign = |tx: &u64| !sent.contains(tx) && (log.finished || *tx < last_sent);
        Report {
            run: log.run.clone(),
            sent: sent.len(),
            sends: log.events.iter().filter(|e| e.kind == Kind::Send).count(),
            acknowledged: acked.len(),
            missing: acked.iter().filter(|t| rows(t) == 0).copied().collect(),
            duplicated: recorded.rows.iter().filter(|(_, n)| **n > 1).map(|(t, n)| (*t, *n)).collect(),
            unacknowledged_recorded: recorded.rows.keys().filter(|t| !acked.contains(t) && sent.contains(t)).count(),
            never_sent: recorded.rows.keys().filter(|t| foreign(t)).copied().collect(),
            abandoned: abandoned.len(),
            redeliveries: recorded.redeliveries,
        }
    }

    /// Nothing acknowledged was lost, nothing recorded twice, nothing recorded that was not sent.
    pub fn ok(&self) -> bool {
        self.missing.is_empty() && self.duplicated.is_empty() && self.never_sent.is_empty()
    }

    /// `name value` lines, stable for scripts; the lists show their first transactions.
    pub fn text(&self) -> String {
        fn some<T: std::fmt::Debug>(v: &[T]) -> String {
            if v.is_empty() {
                String::new()
            } else {
                let shown: Vec<String> = v.iter().take(10).map(|x| format!("{x:?}")).collect();
                format!(" ({}{})", shown.join(" "), if v.len() > 10 { " ..." } else { "" })
            }
        }
        format!(
            "run {}\nsent {}\nsends {}\nacknowledged {}\nmissing {}{}\nduplicated {}{}\n\
             recorded_not_acknowledged {}\nrecorded_never_sent {}{}\nabandoned {}\nredeliveries_absorbed {}\nresult {}\n",
            self.run,
            self.sent,
            self.sends,
            self.acknowledged,
            self.missing.len(),
            some(&self.missing),
            self.duplicated.len(),
            some(&self.duplicated),
            self.unacknowledged_recorded,
            self.never_sent.len(),
            some(&self.never_sent),
            self.abandoned,
            self.redeliveries,
            if self.ok() { "ok" } else { "FAILED" }
        )
    }
}

#[derive(clap::Args, Clone, Debug)]
pub struct VerifyArgs {
    /// The client's log.
    #[arg(long)]
    pub log: PathBuf,
    /// The ledger database: postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE (or PGPASSWORD).
    #[arg(long)]
    pub db: String,
    /// The ledger table (the application's lab.table).
    #[arg(long, default_value = "hastack_ledger")]
    pub table: String,
    /// Seconds to wait for the database to answer.
    #[arg(long, default_value_t = 10)]
    pub timeout: u64,
}

/// Exit code when the check found a lost or duplicated transaction (2: could not check).
pub const FAILED: i32 = 1;

pub fn verify(args: &VerifyArgs) -> Result<Report> {
    let log = Log::read(&args.log)?;
    let db = DbUrl::parse(&args.db).map_err(|e| anyhow!("--db: {e}"))?.with_env_password();
    let recorded = read_ledger(&db, &args.table, &log.run, Deadline::after(Duration::from_secs(args.timeout)))?;
    Ok(Report::compare(&log, &recorded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(text: &str) -> Log {
        Log::parse(format!("# hastack lab client run=t1\n{text}# end run=t1\n").as_bytes()).unwrap()
    }

    fn recorded(rows: &[(u64, u64)]) -> Recorded {
        Recorded { rows: rows.iter().copied().collect(), redeliveries: 0 }
    }

    const RUN: &str = "1 0 SEND 1 1\n2 0 ACK 1 1 1.0\n\
                       3 0 SEND 2 1\n4 0 FAIL 2 1 timeout\n5 0 QUERY 2 1 absent\n6 0 SEND 2 2\n7 0 ACK 2 2 1.0\n\
                       8 0 SEND 3 1\n9 0 FAIL 3 1 HTTP 503\n10 0 QUERY 3 1 committed\n11 0 CONFIRMED 3 1\n\
                       12 0 SEND 4 1\n13 0 FAIL 4 1 timeout\n14 0 ABANDONED 4 1 stopped\n\
                       15 0 SEND 5 1\n16 0 FAIL 5 1 timeout\n17 0 ABANDONED 5 1 stopped\n";

    #[test]
    fn a_clean_run_passes() {
        // tx 4 was recorded after all (its answer was lost): allowed; tx 5 never was.
        let r = Report::compare(&log(RUN), &recorded(&[(1, 1), (2, 1), (3, 1), (4, 1)]));
        assert_eq!((r.sent, r.sends, r.acknowledged, r.abandoned), (5, 6, 3, 2));
        assert!(r.missing.is_empty() && r.duplicated.is_empty() && r.never_sent.is_empty());
        assert_eq!(r.unacknowledged_recorded, 1);
        assert!(r.ok());
        assert!(r.text().contains("\nmissing 0\nduplicated 0\n"), "{}", r.text());
        assert!(r.text().ends_with("result ok\n"));
    }

    #[test]
    fn a_lost_a_duplicated_and_a_foreign_row_fail() {
        // tx 2 acknowledged but not recorded; tx 3 recorded twice; tx 9 never sent.
        let r = Report::compare(&log(RUN), &recorded(&[(1, 1), (3, 2), (9, 1)]));
        assert_eq!(r.missing, vec![2]);
        assert_eq!(r.duplicated, vec![(3, 2)]);
        assert_eq!(r.never_sent, vec![9]);
        assert!(!r.ok());
        let text = r.text();
        assert!(text.contains("\nmissing 1 (2)\nduplicated 1 ((3, 2))\n"), "{text}");
        assert!(text.contains("\nrecorded_never_sent 1 (9)\n"), "{text}");
        assert!(text.ends_with("result FAILED\n"));
        // The log of a client still running: a row beyond its last send may be one sent since
        // the log was read, not a foreign one; below it, it is foreign.
        let running = Log::parse(format!("# run=t1\n{RUN}").as_bytes()).unwrap();
        assert!(Report::compare(&running, &recorded(&[(1, 1), (2, 1), (3, 1), (6, 1)])).ok());
        let gap = Log::parse("# run=t1\n1 0 SEND 1 1\n2 0 ACK 1 1 1.0\n3 0 SEND 3 1\n".as_bytes()).unwrap();
        assert_eq!(Report::compare(&gap, &recorded(&[(1, 1), (2, 1)])).never_sent, vec![2]);
        // A duplicate of a transaction that was never acknowledged fails too.
        assert!(!Report::compare(&log(RUN), &recorded(&[(1, 1), (2, 1), (3, 1), (4, 3)])).ok());
    }

    #[test]
    fn database_urls() {
        let u = DbUrl::parse("postgresql://lab:s%40cret@10.0.0.2:5433/ledger").unwrap();
        assert_eq!(
            u,
            DbUrl {
                user: "lab".into(),
                password: Some("s@cret".into()),
                host: "10.0.0.2".into(),
                port: 5433,
                database: "ledger".into()
            }
        );
        let d = DbUrl::parse("postgres://").unwrap();
        assert_eq!(
            (d.user.as_str(), d.host.as_str(), d.port, d.database.as_str()),
            ("postgres", "127.0.0.1", 5432, "postgres")
        );
        let s = DbUrl::parse("postgresql://postgres@/postgres?host=%2Frun%2Fpostgresql&port=5439").unwrap();
        assert_eq!((s.host.as_str(), s.port), ("/run/postgresql", 5439));
        assert_eq!(DbUrl::parse("postgresql://u@[::1]:6000/x").unwrap().host, "::1");
        for bad in
            ["mysql://x", "postgresql://u@h:port/x", "postgresql://h/x?sslmode=require", "postgresql://u:%zz@h/x"]
        {
            assert!(DbUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
