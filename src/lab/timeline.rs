//! What happened when, from Pacemaker's own log (pacemaker.log, millisecond time stamps): the
//! events a failover is made of, parsed from literal lines (Pacemaker 2.1's messages).

/// One event of a failover, as Pacemaker logged it.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Corosync's membership no longer has the node (`Node X state is now lost`).
    Lost(String),
    /// The controller asks for fencing (`Requesting fencing (reboot) of node X`).
    FenceRequested(String),
    /// The fencer confirms it (`Operation 'reboot' targeting X by Y ...: OK`).
    Fenced(String),
    /// The fencer reports a fencing that failed.
    FenceFailed(String, String),
    /// `Result of <op> operation for <rsc> on <node>: <result>`.
    Op { op: String, rsc: String, node: String, result: String },
}

/// Seconds since the epoch of a pacemaker.log line (`Dec 01 14:38:06.258 node2 ...`), read as
/// local time in `year`; `utc_offset` is the local offset from UTC in seconds.
pub fn line_time(line: &str, year: i32, utc_offset: i64) -> Option<f64> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let month = MONTHS.iter().position(|m| line.get(..3) == Some(m))? as u32 + 1;
    let day: u32 = line.get(4..6)?.trim().parse().ok()?;
    let clock = line.get(7..19)?;
    let (h, rest) = clock.split_once(':')?;
    let (m, s) = rest.split_once(':')?;
    let (h, m, s): (i64, i64, f64) = (h.parse().ok()?, m.parse().ok()?, s.parse().ok()?);
    let days = days_from_civil(year, month, day);
    Some((days * 86400 + h * 3600 + m * 60 - utc_offset) as f64 + s)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(if m <= 2 { y - 1 } else { y });
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let len = text[from..].find(end)?;
    Some(&text[from..from + len])
}

/// The function that logged a pacemaker.log line: `(finalize_op)` at info level, but
/// `(finalize_op@fenced_remote.c:604)` once PCMK_debug is set (`lab up --pacemaker-debug`),
/// which adds the source file and line to every daemon's lines.
fn function(line: &str) -> Option<&str> {
    let name = between(line, "] (", ")")?;
    Some(name.split_once('@').map_or(name, |(f, _)| f))
}

/// The failover event a line records, if any.
pub fn event(line: &str) -> Option<Event> {
    if let Some(node) = between(line, "notice: Node ", " state is now lost") {
        return Some(Event::Lost(node.to_string()));
    }
    if let Some(rest) = line.split_once("notice: Requesting fencing (").map(|(_, r)| r) {
        let node = between(rest, "of node ", " |").or_else(|| rest.split_once("of node ").map(|(_, n)| n.trim()))?;
        return Some(Event::FenceRequested(node.to_string()));
    }
    if function(line) == Some("finalize_op") {
        let target = between(line, "targeting ", " by ")?;
        let result = line.rsplit_once(": ")?.1;
        let result = result.split(" | ").next().unwrap_or(result).trim();
        return Some(if result.starts_with("OK") {
            Event::Fenced(target.to_string())
        } else {
            Event::FenceFailed(target.to_string(), result.to_string())
        });
    }
    if let Some(rest) = line.split_once("notice: Result of ").map(|(_, r)| r) {
        let (op, rest) = rest.split_once(" operation for ")?;
        let (rsc, rest) = rest.split_once(" on ")?;
        let (node, rest) = rest.split_once(": ")?;
        let result = rest.split(" | ").next().unwrap_or(rest).trim();
        return Some(Event::Op { op: op.into(), rsc: rsc.into(), node: node.into(), result: result.into() });
    }
    None
}

/// Every event of `log` with its time.
pub fn events(log: &str, year: i32, utc_offset: i64) -> Vec<(f64, Event)> {
    log.lines().filter_map(|l| Some((line_time(l, year, utc_offset)?, event(l)?))).collect()
}

/// The local offset from UTC now, in seconds (for reading the logs' local times).
pub fn local_utc_offset() -> (i32, i64) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    let t = now as libc::time_t;
    // SAFETY: localtime_r writes into the tm we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::localtime_r(&t, &mut tm) };
    (tm.tm_year + 1900, tm.tm_gmtoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lines from a lab failover (node2's pacemaker.log).
    const LOG: &str = "\
Dec 01 14:38:06.258 node2 pacemaker-attrd     [20] (update_peer_state_iter) 	notice: Node node1 state is now lost | nodeid=1 previous=member source=crm_update_peer_proc
Dec 01 14:38:06.454 node2 pacemaker-controld  [22] (controld_execute_fence_action) 	notice: Requesting fencing (reboot) of node node1 | action=1 timeout=60000
Dec 01 14:38:09.722 node2 pacemaker-fenced    [18] (log_async_result) 	notice: Operation 'reboot' [121] targeting node1 using fence-node1 returned 0 | call 11 from pacemaker-controld.22
Dec 01 14:38:09.730 node2 pacemaker-fenced    [18] (finalize_op) 	notice: Operation 'reboot' targeting node1 by node2 for pacemaker-controld.22@node2: OK (complete) | id=5980bdcb
Dec 01 14:38:10.158 node2 pacemaker-controld  [22] (log_executor_event) 	notice: Result of start operation for vip1 on node2: ok | CIB update 76, graph action confirmed; call=59 key=vip1_start_0 rc=0
Dec 01 14:39:10.001 node2 pacemaker-controld  [22] (log_executor_event) 	notice: Result of monitor operation for db on node2: not running | CIB update 90, graph action unconfirmed; call=81 key=db_monitor_10000 rc=7
Dec 01 14:40:00.000 node2 pacemaker-fenced    [18] (finalize_op) 	error: Operation 'reboot' targeting node1 by node2 for pacemaker-controld.22@node2: Timeout occurred | id=1
2026-12-01T14:37:33.871Z hastack-nginx(web)[111]: INFO: monitor: OCF_SUCCESS (0) in 1 ms
";

    // The same failover with PCMK_debug set (`lab up --pacemaker-debug`; node2's pacemaker.log
    // of a lab up with it): every function name carries its source file and line, and the
    // controller's debug lines come in between.
    const DEBUG_LOG: &str = "\
Dec 02 20:26:05.283 node2 pacemaker-controld  [22] (do_pe_invoke_callback@controld_schedulerd.c:458) \tdebug: Re-asking for the CIB: 3 other peer updates still pending
Dec 02 20:26:17.355 node2 pacemaker-controld  [22] (update_peer_state_iter@membership.c:1028) \tnotice: Node node1 state is now lost | nodeid=1 previous=member source=pcmk__reap_unseen_nodes
Dec 02 20:26:17.363 node2 pacemaker-controld  [22] (cib_client_register_callback_full@cib_client.c:677) \ttrace: Adding callback do_pe_invoke_callback for call 109
Dec 02 20:26:17.363 node2 pacemaker-controld  [22] (cib_native_callback@cib_utils.c:497) \ttrace: Invoking callback search_conflicting_node_callback for call 105
Dec 02 20:26:17.395 node2 pacemaker-controld  [22] (controld_execute_fence_action@controld_fencing.c:938) \tnotice: Requesting fencing (reboot) of node node1 | action=1 timeout=60000
Dec 02 20:26:17.395 node2 pacemaker-fenced    [18] (initiate_remote_stonith_op@fenced_remote.c:1299) \tnotice: Requesting peer fencing (reboot) targeting node1 | id=f84f6a53 state=querying base_timeout=60
Dec 02 20:26:19.015 node2 pacemaker-fenced    [18] (log_async_result@fenced_commands.c:2570) \tnotice: Operation 'reboot' [155] targeting node1 using fence-node1 returned 0 | call 9 from pacemaker-controld.22
Dec 02 20:26:19.015 node2 pacemaker-fenced    [18] (finalize_op@fenced_remote.c:604) \tnotice: Operation 'reboot' targeting node1 by node2 for pacemaker-controld.22@node2: OK (complete) | id=f84f6a53
Dec 02 20:26:19.023 node2 pacemaker-controld  [22] (match_down_event@controld_te_events.c:357) \tdebug: Shutdown action 1 (stonith-node1-reboot) found for node 1
Dec 02 20:26:19.043 node2 pacemaker-controld  [22] (log_executor_event@controld_execd.c:2675) \tnotice: Result of start operation for fs on node2: ok | CIB update 126, graph action confirmed; call=67 key=fs_start_0 rc=0
";

    #[test]
    fn debug_lines_carry_source_locations_and_the_same_events_are_read() {
        let kinds: Vec<Event> = events(DEBUG_LOG, 2026, 0).into_iter().map(|(_, e)| e).collect();
        assert_eq!(
            kinds,
            vec![
                Event::Lost("node1".into()),
                Event::FenceRequested("node1".into()),
                Event::Fenced("node1".into()),
                Event::Op { op: "start".into(), rsc: "fs".into(), node: "node2".into(), result: "ok".into() },
            ]
        );
        // Both formats name the same function.
        assert_eq!(function(DEBUG_LOG.lines().nth(7).unwrap()), Some("finalize_op"));
        assert_eq!(function(LOG.lines().nth(3).unwrap()), Some("finalize_op"));
        assert_eq!(function("2026-12-01T14:37:33.871Z hastack-nginx(web)[111]: INFO: up"), None);
    }

    #[test]
    fn failover_events_with_their_times() {
        let ev = events(LOG, 2026, 0);
        let kinds: Vec<&Event> = ev.iter().map(|(_, e)| e).collect();
        assert_eq!(
            kinds,
            vec![
                &Event::Lost("node1".into()),
                &Event::FenceRequested("node1".into()),
                &Event::Fenced("node1".into()),
                &Event::Op { op: "start".into(), rsc: "vip1".into(), node: "node2".into(), result: "ok".into() },
                &Event::Op {
                    op: "monitor".into(),
                    rsc: "db".into(),
                    node: "node2".into(),
                    result: "not running".into()
                },
                &Event::FenceFailed("node1".into(), "Timeout occurred".into()),
            ]
        );
        // 2026-12-01T14:38:06.258Z
        assert!((ev[0].0 - 1796135886.258).abs() < 1e-6, "{}", ev[0].0);
        assert!((ev[2].0 - ev[0].0 - 3.472).abs() < 1e-6);
        // Local time one hour ahead of UTC is one hour earlier in epoch seconds.
        assert!((line_time(LOG, 2026, 3600).unwrap() - (1796135886.258 - 3600.0)).abs() < 1e-6);
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11017);
    }
}
