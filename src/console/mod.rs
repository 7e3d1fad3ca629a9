//! `hastack console`: the enterprise console. Clusters' alert agents POST their reports
//! (docs/reports.md); the console stores them (SQLite or PostgreSQL), merges what both nodes
//! reported, derives incidents and statistics, and shows the fleet live in server-rendered pages
//! and a JSON API (docs/console-api.md). README.md "Console" is the user's guide.
//!
//! Nothing here runs unless the `console` subcommand does: the OCF agents in the same binary
//! never start the async runtime or open a database.

pub mod api;
mod cli;
pub mod derive;
pub mod health;
pub mod ingest;
pub mod live;
pub mod pages;
pub mod report;
pub mod server;
pub mod snapshot;
pub mod stats;
pub mod store;
pub mod token;

pub use cli::{run, ConsoleCommand};

/// The console's clock, in microseconds since 1970.
pub fn now_us() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    d.as_micros() as i64
}
