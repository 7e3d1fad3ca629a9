//! What a PostgreSQL server (or whatever listens on its socket or port) sends to the agent's
//! client (src/net/pgwire.rs): the input is the server's byte stream, then it closes. Runs the
//! monitor's exchange: startup with authentication (a password is given, so the `password` and
//! SCRAM paths run), then a query; and the row and error parsers on the raw bytes.
//!
//! Properties: nothing panics, nothing hangs (a broken or hostile server gives an error,
//! within the input).

#![no_main]

use hastack::net::pgwire::{parse_error, parse_row, PgConn};
use hastack_fuzz::{deadline, Script};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_row(data);
    let _ = parse_error(data).to_string();
    let deadline = deadline();
    match PgConn::startup(
        Script::new(data),
        "postgres",
        Some("s3cret"),
        "postgres",
        &[("application_name", "hastack")],
        deadline,
    ) {
        Ok(mut conn) => {
            if let Ok(rows) = conn.query("SELECT 1", deadline) {
                let _ = rows.len();
            }
            let _ = conn.query("SELECT 2", deadline);
        }
        Err(e) => {
            let _ = (e.to_string(), e.is_starting());
        }
    }
});
