//! Reply lines from upsd (NUT's network protocol), as fence_ups reads them: `VAR ups name
//! "value"`, `ERR code`, `OK TRACKING id`, anything a broken or hostile server sends. Each line
//! of the input is one reply.
//!
//! Properties: nothing panics; quoting round-trips (any string, quoted as fence_ups quotes its
//! arguments, splits back to itself, alone or as the value of a VAR line); a VAR line's value is
//! found for its own UPS and variable and for no other.

#![no_main]

use hastack::fence::nut::{check_reply, parse_var, quote, split_words, status_power, tracking_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for line in text.lines() {
        if let Err(e) = check_reply(line) {
            let _ = (e.explain(), e.to_string());
        }
        let _ = tracking_id(line);
        let _ = status_power(line);
        let words = split_words(line);
        if let [var, ups, name, value] = words.as_slice() {
            if var == "VAR" {
                assert_eq!(parse_var(line, ups, name).as_deref(), Some(value.as_str()));
                assert_eq!(parse_var(line, &format!("{ups}x"), name), None);
                let _ = status_power(value);
            }
        }
        let _ = parse_var(line, "fake", "ups.status");

        // Quoting: the line itself as one argument, and as a variable's value.
        assert_eq!(split_words(&quote(line)), vec![line.to_string()]);
        let reply = format!("VAR {} ups.status {}", quote("ups 1"), quote(line));
        assert_eq!(parse_var(&reply, "ups 1", "ups.status").as_deref(), Some(line));
    }
});
