//! `hastack console`: the enterprise console. Clusters' alert agents POST their reports
//! (docs/reports.md); the console stores them, merges what both nodes reported, derives incidents
//! and statistics, and shows the fleet live. README.md "Console" is the user's guide.
//!
//! Nothing here runs unless the `console` subcommand does: the OCF agents in the same binary
//! never start the async runtime or open a database.

pub mod derive;
pub mod report;
pub mod snapshot;
pub mod stats;
pub mod store;

/// The console's clock, in microseconds since 1970.
pub fn now_us() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    d.as_micros() as i64
}
