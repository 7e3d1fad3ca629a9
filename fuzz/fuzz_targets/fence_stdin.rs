//! fence_ups's options as Pacemaker's fencer writes them to stdin: `name=value` lines. Parses
//! them, then runs validate-all's checks (fence/config.rs) on what was parsed.
//!
//! Properties: nothing panics; what was parsed, written back as `name="value"` lines, parses to
//! the same options (a line round-trips); a configuration that passes the checks has the
//! limits they promise.

#![no_main]

use hastack::fence::args::{parse_stdin, Args, OPTIONS};
use libfuzzer_sys::fuzz_target;

/// Every option as it would be written back: the stored (canonical) name, the value quoted.
fn written(args: &Args) -> String {
    let mut out = String::new();
    for o in OPTIONS.iter().filter(|o| o.name == o.key) {
        if let Some(v) = args.get(o.key) {
            out.push_str(&format!("{}=\"{v}\"\n", o.key));
        }
    }
    for name in &args.unknown {
        out.push_str(&format!("{name}=\n"));
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(args) = parse_stdin(&text) else { return };
    let again = parse_stdin(&written(&args)).expect("written options parse");
    for o in OPTIONS {
        assert_eq!(args.get(o.key), again.get(o.key), "option {}", o.key);
    }
    assert_eq!(args.unknown, again.unknown);
    hastack_fuzz::fence::check_config(&args);
});
