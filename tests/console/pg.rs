//! A PostgreSQL 15 server from Debian's package for the console's PostgreSQL store: initdb in a
//! temporary directory, listening on 127.0.0.1 on a free port, stopped on drop.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::support::*;

const BINDIR: &str = "/usr/lib/postgresql/15/bin";

pub struct Postgres {
    dir: tempfile::TempDir,
    pgdata: PathBuf,
    pub port: u16,
}

/// Whether PostgreSQL tests can run here (root for runuser, the package installed).
pub fn available() -> bool {
    need_root("the console's PostgreSQL store tests (initdb runs as postgres)")
        && (Path::new(BINDIR).join("postgres").exists()
            || skip_or_fail("PostgreSQL 15 (package postgresql) is not installed"))
}

/// Runs a PostgreSQL program as postgres, inside `netns` if given.
fn as_postgres(netns: Option<&str>, args: &[&str], limit: Duration) -> Outcome {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "runuser"]);
            c
        }
        None => Command::new("runuser"),
    };
    cmd.args(["-u", "postgres", "--"]).args(args);
    run_with_deadline(&mut cmd, limit)
}

impl Postgres {
    /// `durable`: fsync as in production (the benchmark); tests turn it off for speed.
    pub fn start(durable: bool) -> Postgres {
        Self::start_in(durable, None)
    }

    /// A server inside network namespace `netns` on PostgreSQL's own port, 5432 (the namespace is
    /// the test's: nothing else listens there), or on the host's loopback on a free port.
    pub fn start_in(durable: bool, netns: Option<&str>) -> Postgres {
        let dir = tempfile::Builder::new().prefix("hst-console-pg").tempdir().unwrap();
        sh("chown", &["postgres:", dir.path().to_str().unwrap()]);
        let pgdata = dir.path().join("data");
        let initdb = format!("{BINDIR}/initdb");
        let out = as_postgres(
            None,
            &[&initdb, "-N", "-A", "trust", "-U", "postgres", "-D", pgdata.to_str().unwrap()],
            Duration::from_secs(120),
        );
        assert_eq!(out.code, 0, "initdb: {}", out.stderr);
        let port = match netns {
            Some(_) => 5432,
            None => std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port(),
        };
        let fsync = if durable { "on" } else { "off" };
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={} -c fsync={fsync} -c max_connections=50",
            dir.path().display()
        );
        let pg_ctl = format!("{BINDIR}/pg_ctl");
        let log = dir.path().join("pg.log");
        let out = as_postgres(
            netns,
            &[
                &pg_ctl,
                "-D",
                pgdata.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
                "-w",
                "-t",
                "120",
                "start",
            ],
            Duration::from_secs(150),
        );
        assert_eq!(out.code, 0, "pg_ctl start: {}\n{}", out.stderr, std::fs::read_to_string(&log).unwrap_or_default());
        Postgres { dir, pgdata, port }
    }

    /// The server's main process (its backends are its children).
    pub fn postmaster(&self) -> i32 {
        let pid = std::fs::read_to_string(self.pgdata.join("postmaster.pid")).unwrap();
        pid.lines().next().unwrap().trim().parse().unwrap()
    }

    /// Runs SQL as the superuser over the server's Unix socket (reachable from any namespace).
    pub fn admin_sql(&self, sql: &str) {
        let conn = format!("host={} port={} user=postgres dbname=postgres", self.dir.path().display(), self.port);
        let mut client = postgres::Client::connect(&conn, postgres::NoTls).unwrap();
        client.batch_execute(sql).unwrap();
    }

    /// A new empty database; its URL.
    pub fn database(&self, name: &str) -> String {
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
        client.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let pg_ctl = format!("{BINDIR}/pg_ctl");
        let _ = as_postgres(
            None,
            &[&pg_ctl, "-D", self.pgdata.to_str().unwrap(), "-m", "immediate", "-w", "stop"],
            Duration::from_secs(60),
        );
    }
}
