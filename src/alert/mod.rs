//! The Pacemaker alert agent (`/usr/lib/hastack/alert`, README.md "Alert agent"). Pacemaker runs
//! it once per recipient with `CRM_alert_*` set and kills it without warning at the alert's
//! timeout (30 s by default), so: decide first whether the event is routine (nothing else is
//! done for those); then snapshot (bounded), spool durably, notify, send (bounded); and a
//! watchdog ends the run at the deadline whatever a child or the network does.
//!
//! event: the variables and the routine/reported decision · settings: recipient and instance
//! attributes · snapshot: crm_mon · findings: "group has no node left" · report: the wire format
//! · spool: durable files · send: HTTP · notify: syslog, file, mail.

pub mod clock;
pub mod event;
pub mod fast;
pub mod findings;
pub mod notify;
pub mod report;
pub mod send;
pub mod settings;
pub mod snapshot;
pub mod spool;

use std::path::{Path, PathBuf};
use std::time::Duration;

use event::{AlertEnv, Category, Classified, Decision, Severity};
use report::{Cluster, Report, Reporter, Time};
use settings::{Channel, Settings};
use snapshot::{Facts, Snapshot};

use crate::ocf::Deadline;

/// Entry point when called as `alert` (Pacemaker passes no arguments). Returns the exit code:
/// Pacemaker only logs it; 1 means the event reached none of the places it should have.
pub fn main() -> i32 {
    let started = clock::now();
    let env = AlertEnv::from_process();
    if env.get("version").is_none() {
        let msg =
            "not run by Pacemaker (CRM_alert_version is not set; Pacemaker 1.1.15 and later set it): nothing done";
        eprintln!("hastack-alert: {msg}");
        notify::syslog(Severity::Warning, msg);
        return 0;
    }
    // Routine events end here, before any set-up: this path must cost about as much as /bin/true.
    let classified = match event::decide(&env) {
        Decision::Ignore(_) => return 0,
        Decision::Report(c) => c,
    };
    let (settings, problems) = Settings::read(|name| std::env::var(name).ok());
    for p in &problems {
        eprintln!("hastack-alert: {p}");
        notify::syslog(Severity::Warning, &format!("bad alert attribute: {p}"));
    }
    start_watchdog(settings.deadline + Duration::from_secs(2));
    report_event(&env, classified, &settings, started)
}

/// Ends the process if a run overstays its deadline (a stuck filesystem, a resolver that ignores
/// timeouts): whatever was spooled stays spooled, and Pacemaker's SIGKILL never has to come.
fn start_watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let msg = format!("run exceeded its {} s deadline; ending it (spooled reports are kept)", limit.as_secs());
        eprintln!("hastack-alert: {msg}");
        notify::syslog(Severity::Warning, &msg);
        std::process::exit(0);
    });
}

/// Whether this event can end a group's last chance: the stop of a group's first member (the
/// group is down), a node lost or fenced.
fn may_exhaust_a_group(env: &AlertEnv, c: &Classified) -> bool {
    match c.category {
        Category::NodeLost | Category::FencingSucceeded => true,
        Category::OperationSucceeded => env.get("task") == Some("stop"),
        _ => false,
    }
}

fn report_event(env: &AlertEnv, mut classified: Classified, settings: &Settings, started: clock::Stamp) -> i32 {
    let deadline = Deadline::after(settings.deadline);
    let channel = Channel::from_recipient(env.recipient()).unwrap_or_else(|why| {
        eprintln!("hastack-alert: {why}");
        notify::syslog(Severity::Warning, &why);
        Channel::SyslogOnly
    });
    let console = matches!(channel, Channel::Console(_));

    // The snapshot: for the console always, for the others only when it can change the words.
    let want_snapshot = settings.snapshot && (console || may_exhaust_a_group(env, &classified));
    let snapshot = if want_snapshot {
        // Keep at least half the budget for spooling and sending.
        let limit = settings.snapshot_timeout.min(deadline.remaining() / 2);
        snapshot::take(limit)
    } else if settings.snapshot {
        Snapshot::missing("not needed for this recipient")
    } else {
        Snapshot::missing("disabled by the alert's snapshot=off attribute")
    };
    let facts = snapshot.xml.as_deref().and_then(Facts::parse);

    let found = facts.as_ref().map(|f| group_findings(env, &classified, f)).unwrap_or_default();
    if !found.is_empty() {
        let sentences: Vec<String> = found.iter().map(|f| f.sentence()).collect();
        classified.summary = format!("{} [after: {}]", sentences.join("; "), classified.summary);
        classified.severity = Severity::Critical;
    }

    let cluster =
        Cluster::identify(settings.cluster_id.clone(), settings.cluster_name.clone().or_else(corosync_cluster_name));
    let reporter = reporter(env, facts.as_ref());
    let time = Time::of(env, started);
    let stamp = clock::Stamp { epoch: time.epoch, usec: time.usec };
    let line = format!("{}: {}", classified.severity.label(), classified.summary);
    let event = report::Event::new(env, &classified, time, found);

    let (outcome, ok) = match &channel {
        Channel::SyslogOnly => (String::new(), true),
        Channel::File(path) if classified.severity >= settings.min_severity => {
            let text = format!("{} [{}] {line}", stamp.iso(), cluster.id);
            match notify::append(path, &text) {
                Ok(()) => (format!(" (written to {})", path.display()), true),
                Err(e) => (format!(" (cannot append to {}: {e})", path.display()), false),
            }
        }
        Channel::Mail(to) if classified.severity >= settings.min_severity => {
            let subject = format!("[hastack {}] {line}", cluster.id);
            let body = mail_body(&classified, &cluster, &reporter, &event, &stamp);
            let m = notify::Mail { to, from: settings.mail_from.as_deref(), subject: &subject, body: &body };
            match notify::mail(&settings.sendmail, &m, deadline.at_most(Duration::from_secs(5))) {
                Ok(()) => (format!(" (mailed to {})", to.join(", ")), true),
                Err(e) => (format!(" (mail to {} failed: {e})", to.join(", ")), false),
            }
        }
        Channel::File(_) | Channel::Mail(_) => (" (below min_severity for this recipient)".to_string(), true),
        Channel::Console(url) => {
            let report = Report::new(cluster.clone(), reporter.clone(), event, snapshot);
            to_console(url, &report, settings, deadline)
        }
    };
    let text = format!("{line}{outcome}");
    eprintln!("hastack-alert: {text}");
    notify::syslog(if ok { classified.severity } else { Severity::Critical }, &text);
    if ok {
        0
    } else {
        1
    }
}

/// Spools the report, then sends what is spooled for this console, oldest first.
fn to_console(url: &str, report: &Report, settings: &Settings, deadline: Deadline) -> (String, bool) {
    let key = &report.idempotency_key;
    let short = &key[..12];
    let token_file = if settings.token_file_explicit || settings.token_file.exists() {
        Some(settings.token_file.clone())
    } else {
        None
    };
    let dest = spool::Destination {
        url: url.to_string(),
        token_file,
        ca_file: settings.ca_file.clone(),
        send_timeout_ms: settings.send_timeout.as_millis() as u64,
    };
    let body = report.to_json();
    let t = &report.event.time;
    let name = spool::file_name(t.epoch, t.usec, t.node_sequence, key);
    let spooled = spool::write(&settings.spool_dir, &name, &dest, &body);
    let spooled_path = match spooled {
        Ok(p) => p,
        Err(e) => {
            // Not durable: one direct try, so the event is not lost if the console is up.
            let why = format!("cannot spool to {}: {e}", settings.spool_dir.display());
            let timeout = settings.send_timeout.min(deadline.remaining());
            return match send::post(&dest, &body, timeout) {
                Ok(()) => (format!(" (report {short} {why}; sent directly)"), true),
                Err(send_err) => (format!(" (report {short} LOST: {why}; direct send failed: {send_err})"), false),
            };
        }
    };
    match send::drain(&settings.spool_dir, deadline, Some(url)) {
        Ok(d) => {
            let mine = if d.delivered.contains(&spooled_path) { "delivered" } else { "spooled" };
            let mut text = format!(" (report {short} {mine}");
            if d.delivered.len() > usize::from(mine == "delivered") {
                text.push_str(&format!(", {} older delivered", d.delivered.len() - usize::from(mine == "delivered")));
            }
            if d.left > 0 {
                text.push_str(&format!(", {} waiting in {}", d.left, settings.spool_dir.display()));
            }
            for (url, e) in &d.failed {
                text.push_str(&format!("; {url}: {e}"));
            }
            for b in &d.broken {
                text.push_str(&format!("; unreadable spool file {b}"));
            }
            text.push(')');
            (text, true)
        }
        Err(e) => (format!(" (report {short} spooled; cannot read {}: {e})", settings.spool_dir.display()), true),
    }
}

fn group_findings(env: &AlertEnv, c: &Classified, facts: &Facts) -> Vec<findings::NoNodeLeft> {
    if !may_exhaust_a_group(env, c) {
        return Vec::new();
    }
    match c.category {
        Category::NodeLost | Category::FencingSucceeded => {
            let gone: Vec<&str> = env.get("node").into_iter().collect();
            findings::all_without_node(facts, &gone)
        }
        _ => {
            // The stop of the group's first member: the whole group is down now.
            let rsc = env.get("rsc").unwrap_or("");
            let base = rsc.split(':').next().unwrap_or(rsc);
            facts
                .unit_of(rsc)
                .filter(|u| u.members.first().map(String::as_str) == Some(base))
                .and_then(|u| findings::no_node_left(facts, u, &[]))
                .into_iter()
                .collect()
        }
    }
}

fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}

/// The reporter's Pacemaker node name (docs/reports.md `reporter.node`).
fn reporter(env: &AlertEnv, facts: Option<&Facts>) -> Reporter {
    let host = hostname();
    let short = host.split('.').next().unwrap_or(&host).to_string();
    let node = match (env.kind(), env.get("node")) {
        ("resource", Some(n)) if !n.is_empty() => n.to_string(),
        _ => facts
            .and_then(|f| f.nodes.iter().find(|n| n.name == host || n.name == short))
            .map(|n| n.name.clone())
            .unwrap_or(short),
    };
    Reporter { node, hostname: host }
}

/// corosync's `totem { cluster_name: ... }` (the file corosync itself reads; readable by all).
pub fn corosync_cluster_name() -> Option<String> {
    let path = std::env::var_os("COROSYNC_MAIN_CONFIG_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/etc/corosync/corosync.conf"));
    parse_cluster_name(&std::fs::read_to_string(path).ok()?)
}

fn parse_cluster_name(conf: &str) -> Option<String> {
    let mut depth = 0usize;
    let mut in_totem = false;
    for raw in conf.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if let Some(section) = line.strip_suffix('{') {
            depth += 1;
            if depth == 1 {
                in_totem = section.trim() == "totem";
            }
        } else if line == "}" {
            depth = depth.saturating_sub(1);
        } else if depth == 1 && in_totem {
            if let Some(v) = line.strip_prefix("cluster_name:") {
                return Some(v.trim().to_string()).filter(|v| !v.is_empty());
            }
        }
    }
    None
}

fn mail_body(
    c: &Classified,
    cluster: &Cluster,
    reporter: &Reporter,
    event: &report::Event,
    at: &clock::Stamp,
) -> String {
    let mut b = format!("{}\n\n", c.summary);
    let name = cluster.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default();
    b.push_str(&format!("cluster:     {}{name}\n", cluster.id));
    b.push_str(&format!("reported by: {} ({})\n", reporter.node, reporter.hostname));
    b.push_str(&format!("event:       {} / {:?} at {}\n", event.kind, c.category, at.iso()));
    for (k, v) in &event.raw {
        if !k.starts_with("timestamp") {
            b.push_str(&format!("  {k} = {v}\n"));
        }
    }
    b
}

/// A program from PATH, else from /usr/sbin (where Debian puts Pacemaker's tools).
pub fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new("/usr/sbin").join(name))
}

/// `hastack alert flush`: sends every spooled report (for a timer, or by hand after an outage).
/// Exit 0 when the spool is empty afterwards, 1 when reports wait (each console's error shown).
pub fn flush(spool_dir: &Path, budget: Duration) -> i32 {
    if !spool_dir.is_dir() {
        println!("{}: no spool directory, nothing to send", spool_dir.display());
        return 0;
    }
    spool::remove_stale_temporaries(spool_dir);
    match send::drain(spool_dir, Deadline::after(budget), None) {
        Ok(d) => {
            println!("{} report(s) delivered, {} waiting", d.delivered.len(), d.left);
            for (url, e) in &d.failed {
                eprintln!("hastack alert flush: {url}: {e}");
            }
            for b in &d.broken {
                eprintln!("hastack alert flush: unreadable spool file {b}");
            }
            if d.left == 0 && d.broken.is_empty() {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("hastack alert flush: cannot read {}: {e}", spool_dir.display());
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_name_from_corosync_conf() {
        let conf = "# c\ntotem {\n  version: 2\n  cluster_name: hastack3 # the stack\n  interface {\n    cluster_name: no\n  }\n}\nnodelist {\n}\n";
        assert_eq!(parse_cluster_name(conf).as_deref(), Some("hastack3"));
        assert_eq!(parse_cluster_name("logging {\n cluster_name: x\n}\n"), None);
    }
}
