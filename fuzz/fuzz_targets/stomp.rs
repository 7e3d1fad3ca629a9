//! What a STOMP broker (ActiveMQ, or whatever listens on its port) sends to the agent's client
//! (src/net/stomp.rs): the input is the broker's byte stream, then it closes. Runs the
//! monitor's exchange (CONNECT, then a receipted send and its delivery) and the frame reader.
//!
//! Properties: nothing panics, nothing hangs; a frame the client encodes reads back the same
//! (command, header names and values whatever characters they hold, body).

#![no_main]

use hastack::net::stomp::{encode, take_frame, Stomp};
use hastack_fuzz::{deadline, Script};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    while take_frame(&mut buf).is_some() {}

    // Round trip: a header value and a body from the input. A frame ends at a NUL, which no
    // value the agent sends holds (they come from the environment).
    let text = String::from_utf8_lossy(data);
    let (value, body) = text.split_once('\n').unwrap_or((&text, ""));
    let value = value.replace('\0', "");
    let value = value.as_str();
    let body: String = body.chars().take_while(|c| *c != '\0').collect();
    let mut framed = encode("SEND", &[("destination", "/queue/fuzz"), ("x-fuzz", value)], &body);
    let f = take_frame(&mut framed).expect("an encoded frame is complete");
    assert!(framed.is_empty());
    assert_eq!(f.command, "SEND");
    assert_eq!(f.headers.get("x-fuzz").map(String::as_str), Some(value), "header value");
    assert_eq!(f.body, body);

    let deadline = deadline();
    if let Ok(mut s) = Stomp::handshake(Script::new(data), "fuzz:61613", None, deadline) {
        let _ = s.round_trip("hastack-health", "ping", deadline);
    }
});
