//! fence_ups's command line (a person at a shell, or `stonith_admin`): the arguments are the
//! input split at NUL bytes (which no argument can hold). Parses them, then runs validate-all's
//! checks (fence/config.rs).
//!
//! Properties: nothing panics; what was parsed, written back as `--long=value`, parses to the
//! same options; a configuration that passes the checks has the limits they promise.

#![no_main]

use hastack::fence::args::{parse_argv, Args, OPTIONS};
use libfuzzer_sys::fuzz_target;

/// Every option set, as `--long-name=value` with its current (not deprecated) spelling.
fn written(args: &Args) -> Vec<String> {
    OPTIONS
        .iter()
        .filter(|o| o.name == o.key && !o.long.is_empty())
        .filter_map(|o| args.get(o.key).map(|v| format!("--{}={v}", o.long)))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let argv: Vec<String> = if text.is_empty() { Vec::new() } else { text.split('\0').map(String::from).collect() };
    let Ok(args) = parse_argv(&argv) else { return };
    let again = parse_argv(&written(&args)).expect("written options parse");
    for o in OPTIONS.iter().filter(|o| !o.long.is_empty()) {
        assert_eq!(args.get(o.key), again.get(o.key), "option {}", o.key);
    }
    hastack_fuzz::fence::check_config(&args);
});
