//! `hastack console`: the store and the incident logic on reports made from real Pacemaker
//! output (both stores), ingest over HTTP with every kind of bad input, the pages and the API,
//! a real headless browser watching the fleet live, and the benchmark (ignored; bench/console.sh).

mod advice;
mod bench;
mod browser;
mod changes;
pub(crate) mod client;
mod cluster_stats;
mod fixtures;
mod http;
mod incidents;
mod pg;
mod snapshots;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use hastack::console::ingest::accept_report;
use hastack::console::store::{ingest_batch, DbUrl, Store, Stored};
use hastack::console::token;
use serde_json::Value;

use crate::support::*;

/// A console started as README.md shows, on a free port, with its database in a temporary
/// directory (SQLite) or the given PostgreSQL URL. Stopped with SIGTERM on drop.
pub struct Console {
    pub addr: String,
    pub db: String,
    pub dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl Console {
    pub fn start() -> Console {
        let dir = tempfile::Builder::new().prefix("hst-console").tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("console.db").display());
        Self::start_with(dir, db)
    }

    pub fn start_with(dir: tempfile::TempDir, db: String) -> Console {
        let mut serve = Command::new(bin());
        serve.args(["console", "serve", "--listen", "127.0.0.1:0"]).env("HASTACK_CONSOLE_DB", &db);
        Self::spawn(&mut serve, dir, db)
    }

    /// Starts `serve` (a `hastack console serve`, however wrapped: it must exec the console, whose
    /// PID it keeps), its log in `dir`; waits for the line that says where it listens.
    pub fn spawn(serve: &mut Command, dir: tempfile::TempDir, db: String) -> Console {
        let log = std::fs::File::create(dir.path().join("console.log")).unwrap();
        let mut child = serve.stdout(Stdio::piped()).stderr(log).spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
        let mut console = Console { addr: String::new(), db, dir, child: Some(child) };
        // "hastack console: listening on http://127.0.0.1:PORT/ (database …)"
        let addr = line.split("http://").nth(1).and_then(|r| r.split('/').next()).map(str::to_string);
        console.addr =
            addr.unwrap_or_else(|| panic!("the console did not say where it listens: {line:?}\n{}", console.log()));
        console
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("console.log")).unwrap_or_default()
    }

    /// `hastack console cluster add NAME`, as README.md shows; the token it printed.
    pub fn add_cluster(&self, name: &str) -> String {
        let out = run_with_deadline(
            Command::new(bin()).args(["console", "cluster", "add", name]).env("HASTACK_CONSOLE_DB", &self.db),
            Duration::from_secs(30),
        );
        out.expect(0);
        let token = out.stdout.trim().to_string();
        assert_eq!(out.stdout.lines().count(), 1, "cluster add prints only the token: {:?}", out.stdout);
        token
    }

    /// POSTs a report as the alert agent does.
    pub fn post(&self, token: &str, body: &[u8]) -> client::Response {
        let auth = format!("Bearer {token}");
        client::request(
            &self.addr,
            "POST",
            "/api/v1/reports",
            &[("Authorization", &auth), ("Content-Type", "application/json"), ("X-Hastack-Schema-Version", "1")],
            Some(body),
        )
    }

    pub fn post_json(&self, token: &str, report: &Value) -> client::Response {
        self.post(token, &serde_json::to_vec(report).unwrap())
    }

    pub fn get_json(&self, path: &str) -> Value {
        let r = client::get(&self.addr, path);
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    }

    /// The cluster's summary from the API.
    pub fn cluster(&self, name: &str) -> Value {
        self.get_json(&format!("/api/v1/clusters/{name}"))
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while std::time::Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
            if !std::thread::panicking() {
                panic!("the console did not stop within 10 s of SIGTERM:\n{}", self.log());
            }
        }
    }
}

/// A store on a fresh SQLite file or PostgreSQL database, with the directory/server it lives in.
pub struct TestStore {
    pub store: Store,
    pub label: &'static str,
    _dir: Option<tempfile::TempDir>,
    _pg: Option<std::rc::Rc<pg::Postgres>>,
}

pub fn sqlite_store() -> TestStore {
    let dir = tempfile::Builder::new().prefix("hst-console-db").tempdir().unwrap();
    let url = DbUrl::parse(&format!("sqlite://{}", dir.path().join("c.db").display())).unwrap();
    TestStore { store: Store::open(&url).unwrap(), label: "sqlite", _dir: Some(dir), _pg: None }
}

pub fn postgres_store(server: &std::rc::Rc<pg::Postgres>) -> TestStore {
    let url = server.database(&unique_name("db"));
    TestStore {
        store: Store::open(&DbUrl::parse(&url).unwrap()).unwrap(),
        label: "postgresql",
        _dir: None,
        _pg: Some(server.clone()),
    }
}

/// Runs `test` on SQLite, then on PostgreSQL (a server of its own; skipped off CI without root
/// or the package).
pub fn on_both_stores(test: impl Fn(&TestStore)) {
    for store in [Some(sqlite_store()), None] {
        let store = match store {
            Some(s) => s,
            None if pg::available() => postgres_store(&std::rc::Rc::new(pg::Postgres::start(false))),
            None => return,
        };
        eprintln!("store: {}", store.label);
        test(&store);
    }
}

/// Registers a cluster in a store directly; its id.
pub fn register(store: &Store, name: &str) -> i64 {
    store.add_cluster(name, &token::hash(&token::generate().unwrap()), fixtures::now_us()).unwrap();
    store.cluster(name).unwrap().unwrap().id
}

/// Stores reports one by one, as they would arrive; each outcome.
pub fn ingest(store: &Store, cluster: &str, reports: &[Value]) -> Vec<Stored> {
    let id = store.cluster(cluster).unwrap().unwrap().id;
    let mut db = store.connect().unwrap();
    reports
        .iter()
        .map(|r| {
            let body = serde_json::to_vec(r).unwrap();
            let acc = accept_report(&body, id, cluster, fixtures::now_us()).unwrap_or_else(|e| panic!("refused: {e}"));
            let (mut outcomes, _) = ingest_batch(db.as_mut(), &[acc]).unwrap();
            outcomes.remove(0).unwrap()
        })
        .collect()
}

pub fn screenshot_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
