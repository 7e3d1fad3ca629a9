//! `hastack console`: the enterprise console. Clusters' alert agents POST their reports
//! (docs/reports.md); the console stores them (SQLite or PostgreSQL), merges what both nodes
//! reported, derives incidents and statistics, and shows the fleet live in server-rendered pages
//! and a JSON API (docs/console-api.md). README.md "Console" is the user's guide.
//!
//! The console is its own binary, `hastack-console` (src/bin/hastack-console.rs), which
//! `hastack console ...` execs: the agents' binary links only `args` (the clap definitions, for
//! its help, man page and completions) and `launch` (finding and exec'ing `hastack-console`), and
//! none of the HTTP server, async runtime or databases.

pub mod advice;
pub mod api;
pub mod args;
pub mod changes;
mod cli;
pub mod compare;
pub mod derive;
pub mod health;
pub mod ingest;
pub mod launch;
pub mod live;
pub mod pages;
pub mod recommend;
pub mod report;
pub mod rules;
pub mod server;
pub mod snapshot;
pub mod stats;
pub mod store;
pub mod token;

pub use args::ConsoleCommand;
pub use cli::run;

/// The console's clock, in microseconds since 1970.
pub fn now_us() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    d.as_micros() as i64
}
