//! What a MariaDB server (or whatever listens on its socket) sends to the agent's client
//! (src/net/mywire.rs): the input is the server's byte stream, then it closes. Runs the
//! monitor's exchange: greeting, login, a query; and the packet parsers on the raw bytes.
//!
//! Properties: nothing panics, nothing hangs.

#![no_main]

use hastack::net::mywire::{lenenc_int, parse_err, parse_text_row, MyConn};
use hastack_fuzz::{deadline, Script};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lenenc_int(data, 0);
    let _ = parse_err(data).to_string();
    for columns in [0, 1, 3] {
        let _ = parse_text_row(data, columns);
    }
    let deadline = deadline();
    if let Ok(mut conn) = MyConn::handshake(Script::new(data), "root", deadline) {
        let _ = conn.query("SELECT 1", deadline);
        let _ = conn.query("SELECT 2", deadline);
    }
});
