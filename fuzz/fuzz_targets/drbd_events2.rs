//! `drbdsetup events2 --now RESOURCE` output (agents/drbd/state.rs), as the drbd agent reads it
//! for its monitor code and promotion score, and the first line of /proc/drbd.
//!
//! Properties: nothing panics; the decisions agree with each other: a promotion score is only
//! set for data the agent would let DRBD promote, on a resource that is up; a failed Primary is
//! a Primary without good data; the monitor code is one a running resource can have.

#![no_main]

use hastack::agents::drbd::state::{parse_events2, parse_proc_version, ScoreChange};
use hastack::ocf::OcfStatus;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = parse_proc_version(&text);
    let s = parse_events2(&text);
    let _ = (s.disk_summary(), s.connection_summary(), s.peers_connected(), s.has_good_data());
    let status = s.monitor_status();
    assert!(matches!(
        status,
        OcfStatus::Success
            | OcfStatus::Degraded
            | OcfStatus::RunningPromoted
            | OcfStatus::DegradedPromoted
            | OcfStatus::FailedPromoted
    ));
    assert_eq!(status == OcfStatus::FailedPromoted, s.is_primary() && !s.has_good_data());
    if matches!(status, OcfStatus::RunningPromoted | OcfStatus::DegradedPromoted | OcfStatus::FailedPromoted) {
        assert!(s.is_primary());
    }
    match s.promotion_score() {
        ScoreChange::Set(_) => assert!(s.is_up() && s.promotable_data(), "{s:?}"),
        ScoreChange::Remove | ScoreChange::Keep => {}
    }
    // Lines that are not `exists` lines change nothing.
    let only_exists: String =
        text.lines().filter(|l| l.split_whitespace().next() == Some("exists")).map(|l| format!("{l}\n")).collect();
    assert_eq!(parse_events2(&only_exists), s);
});
