//! What an HTTP server (a health URL of nginx, Apache, Tomcat, the app) answers the agents'
//! client (src/net/http.rs): the input is the server's byte stream, then it closes. Runs the
//! reader the monitors use (until close, the announced length, or 1 MiB) and the URL parser
//! on the same text.
//!
//! Properties: nothing panics, nothing hangs; a URL that parses names a host.

#![no_main]

use hastack::net::http::{parse_response, parse_url, read_response};
use hastack_fuzz::{deadline, Script};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_response(data);
    if let Ok(r) = read_response(&mut Script::new(data), "fuzz:80", deadline()) {
        let _ = (r.status, r.body.len());
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(url) = parse_url(&text) {
        assert!(!url.host.is_empty() && url.path.starts_with('/'), "{url:?}");
    }
});
