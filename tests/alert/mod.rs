//! The alert agent's contract tests: the applet run by its link with only the environment
//! Pacemaker 2.1 gives an alert (`env -i`, `CRM_alert_*`, instance attributes under their own
//! names), snapshots taken by the real crm_mon from a CIB file (`CIB_file`, states made by
//! crm_simulate), a console stand-in on 127.0.0.1, mail through Debian's msmtp.

pub mod receiver;
mod smtp;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hastack::config::{self, simulate::Sim, Format};
use receiver::{down_url, free_addr, url_of, Mode, Receiver};

use crate::support::*;

/// The alert's budget in these tests (the `deadline` attribute's default is 15 s): a run must
/// end well inside Pacemaker's default 30 s alert timeout whatever the console does.
const BUDGET: Duration = Duration::from_secs(15);

fn alert_path() -> PathBuf {
    install_root().join("usr/lib/hastack/alert")
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crm-config").join(name)
}

fn need_pacemaker_tools() -> bool {
    need_program("crm_mon", "pacemaker-cli-utils") && need_program("crm_simulate", "pacemaker-cli-utils")
}

/// The shipped two-node stack, running (crm_simulate), saved where this test process keeps it.
pub(crate) fn running_cib() -> &'static Path {
    static CIB: OnceLock<PathBuf> = OnceLock::new();
    CIB.get_or_init(|| {
        let loaded = config::load(&example("stack.toml")).unwrap();
        let facts = hastack::config::check::Facts::of(&loaded);
        let sim = Sim::start(&loaded.render(Format::Cib), &facts.nodes, &facts.promotable).unwrap();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("alert-cib-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("running.xml");
        std::fs::copy(sim.state(), &path).unwrap();
        path
    })
}

/// One alert run as pacemaker-execd makes it.
#[derive(Clone)]
pub(crate) struct AlertRun {
    env: BTreeMap<String, String>,
}

static SEQUENCE: AtomicU32 = AtomicU32::new(1);

impl AlertRun {
    pub(crate) fn new(kind: &str) -> AlertRun {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let mut env = BTreeMap::new();
        env.insert("PATH".into(), "/usr/sbin:/usr/bin:/sbin:/bin".into());
        let mut run = AlertRun { env };
        run = run
            .var("version", "2.1.5")
            .var("kind", kind)
            .var("recipient", "")
            .var("node_sequence", &SEQUENCE.fetch_add(1, Ordering::SeqCst).to_string())
            .var("timestamp_epoch", &now.as_secs().to_string())
            .var("timestamp_usec", &format!("{:06}", now.subsec_micros()))
            .var("timestamp", "12:00:00.000000");
        run
    }
    pub(crate) fn var(mut self, name: &str, value: &str) -> AlertRun {
        self.env.insert(format!("CRM_alert_{name}"), value.to_string());
        self
    }
    fn without(mut self, name: &str) -> AlertRun {
        self.env.remove(&format!("CRM_alert_{name}"));
        self
    }
    /// An instance attribute (Pacemaker passes them under their literal names).
    pub(crate) fn attr(mut self, name: &str, value: impl AsRef<str>) -> AlertRun {
        self.env.insert(name.to_string(), value.as_ref().to_string());
        self
    }
    pub(crate) fn recipient(self, value: &str) -> AlertRun {
        self.var("recipient", value)
    }
    pub(crate) fn cib(self, file: &Path) -> AlertRun {
        self.attr("CIB_file", file.to_str().unwrap())
    }
    pub(crate) fn spool(self, dir: &Path) -> AlertRun {
        self.attr("spool_dir", dir.to_str().unwrap())
    }
    pub(crate) fn run(&self) -> Outcome {
        let mut cmd = Command::new(alert_path());
        cmd.env_clear().envs(&self.env);
        // Pacemaker's SIGKILL comes at 30 s: the test fails well before that.
        run_with_deadline(&mut cmd, Duration::from_secs(30))
    }
}

pub(crate) fn resource(task: &str, rsc: &str, node: &str, rc: u32, target: u32, interval: u32) -> AlertRun {
    let desc = match rc {
        0 => "ok",
        1 => "error",
        7 => "not running",
        8 => "promoted",
        _ => "other",
    };
    AlertRun::new("resource")
        .var("node", node)
        .var("rsc", rsc)
        .var("task", task)
        .var("interval", &interval.to_string())
        .var("rc", &rc.to_string())
        .var("target_rc", &target.to_string())
        .var("status", "0")
        .var("exec_time", "12")
        .var("desc", desc)
}

/// Every kind Pacemaker fires, as 2.1.5 fills it, plus one it does not know.
fn one_of_each_kind() -> Vec<(&'static str, AlertRun)> {
    vec![
        ("node_member", AlertRun::new("node").var("node", "node2").var("nodeid", "2").var("desc", "member")),
        ("node_lost", AlertRun::new("node").var("node", "node2").var("nodeid", "2").var("desc", "lost")),
        (
            "fencing_succeeded",
            AlertRun::new("fencing").var("node", "node2").var("task", "st_notify_fence").var("rc", "0").var(
                "desc",
                "Operation reboot of node2 by node1 for pacemaker-controld.811@node1: OK (ref=4e6a3f5b-9d1c-4b43-9a7e-1f2a3b4c5d6e)",
            ),
        ),
        (
            "fencing_failed",
            AlertRun::new("fencing").var("node", "node2").var("task", "st_notify_fence").var("rc", "-62").var(
                "desc",
                "Operation off of node2 by node1 for pacemaker-controld.811@node1: Timed Out (ref=0a1b)",
            ),
        ),
        ("operation_failed", resource("monitor", "haproxy", "node1", 7, 0, 10000)),
        ("operation_succeeded", resource("start", "haproxy", "node1", 0, 0, 0)),
        ("degraded", resource("monitor", "drbd", "node1", 191, 8, 20000)),
        (
            "attribute_changed",
            AlertRun::new("attribute")
                .var("node", "node1")
                .var("nodeid", "1")
                .var("attribute_name", "site-health")
                .var("attribute_value", "green"),
        ),
        ("other", AlertRun::new("ticket").var("node", "node1").var("ticket_name", "t1").var("desc", "granted")),
    ]
}

/// Validates report bodies against docs/report-schema.json with Debian's python3-jsonschema.
pub fn assert_valid_reports(bodies: &[String]) {
    if !need_program("python3", "python3") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for (i, b) in bodies.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i:03}.json")), b).unwrap();
    }
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report-schema.json");
    let script = "import json,sys,glob,jsonschema\n\
                  s=json.load(open(sys.argv[1]))\n\
                  v=jsonschema.Draft202012Validator(s)\n\
                  bad=0\n\
                  for f in sorted(glob.glob(sys.argv[2]+'/*.json')):\n\
                  \x20   for e in v.iter_errors(json.load(open(f))): print(f, list(e.absolute_path), e.message); bad+=1\n\
                  sys.exit(1 if bad else 0)\n";
    let out = Command::new("/usr/bin/python3")
        .args(["-c", script, schema.to_str().unwrap(), dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "reports do not match docs/report-schema.json (python3-jsonschema installed?):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spooled(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(list) => list.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "report")).collect(),
        Err(_) => Vec::new(),
    };
    v.sort();
    v
}

/// The idempotency keys of the spooled reports.
fn spooled_keys(dir: &Path) -> BTreeSet<String> {
    spooled(dir)
        .iter()
        .map(|p| {
            let text = std::fs::read_to_string(p).unwrap();
            let body = text.split_once('\n').unwrap().1;
            let v: serde_json::Value = serde_json::from_str(body).unwrap();
            v["idempotency_key"].as_str().unwrap().to_string()
        })
        .collect()
}

fn flush(spool: &Path) -> Outcome {
    let mut cmd = Command::new(bin());
    cmd.args(["alert", "flush", "--spool-dir", spool.to_str().unwrap(), "--deadline", "20s"]);
    run_with_deadline(&mut cmd, Duration::from_secs(40))
}

#[test]
fn every_kind_reaches_the_console_with_a_real_crm_mon_snapshot() {
    if !need_pacemaker_tools() {
        return;
    }
    let console = Receiver::start(Mode::Ok);
    let spool = tempfile::tempdir().unwrap();
    let cases = one_of_each_kind();
    for (category, run) in &cases {
        let out = run
            .clone()
            .recipient(&console.url)
            .cib(running_cib())
            .spool(spool.path())
            .attr("cluster_id", "store-042")
            .run();
        out.expect(0);
        assert!(out.elapsed < BUDGET, "{category}: {:?}", out.elapsed);
        assert!(out.stderr.contains("delivered"), "{category}: {}", out.stderr);
        let _ = category;
    }
    let posts = console.posts();
    assert_eq!(posts.len(), cases.len(), "one report per event");
    assert!(spooled(spool.path()).is_empty(), "delivered reports leave the spool");
    for ((category, _), post) in cases.iter().zip(&posts) {
        let r = &post.body;
        assert_eq!(r["event"]["category"], *category, "{}", post.raw);
        assert_eq!(r["cluster"]["id"], "store-042");
        assert_eq!(post.headers.get("idempotency-key").map(String::as_str), r["idempotency_key"].as_str());
        assert_eq!(post.headers.get("content-type").map(String::as_str), Some("application/json"));
        let xml = r["snapshot"]["xml"].as_str().unwrap_or_else(|| panic!("no snapshot: {}", r["snapshot"]));
        assert!(xml.starts_with("<pacemaker-result"), "{xml}");
        assert!(xml.contains("<node name=\"node1\"") && xml.contains("resource id=\"haproxy\""), "{xml}");
        assert_eq!(r["snapshot"]["exit_code"], 0);
        assert_eq!(r["event"]["pacemaker_version"], "2.1.5");
    }
    // Typed fields, the parsed fencing description, unknown kinds kept raw.
    let by = |c: &str| &posts[cases.iter().position(|(k, _)| *k == c).unwrap()].body;
    let failed = &by("operation_failed")["event"];
    assert_eq!(failed["alert"]["rc"], 7);
    assert_eq!(failed["alert"]["interval"], 10000);
    assert_eq!(failed["alert"]["rsc"], "haproxy");
    assert_eq!(failed["summary"], "haproxy monitor (10s) on node1 failed: not running (rc=7, expected 0)");
    assert_eq!(by("operation_failed")["reporter"]["node"], "node1");
    let fenced = &by("fencing_succeeded")["event"]["fencing"];
    assert_eq!(fenced["ref"], "4e6a3f5b-9d1c-4b43-9a7e-1f2a3b4c5d6e");
    assert_eq!(fenced["action"], "reboot");
    assert_eq!(fenced["succeeded"], true);
    assert_eq!(by("fencing_failed")["event"]["alert"]["rc"], -62);
    let other = &by("other")["event"];
    assert_eq!(other["kind"], "ticket");
    assert_eq!(other["raw"]["ticket_name"], "t1");
    assert!(other["raw"].get("recipient").is_none(), "the recipient URL is not echoed");
    // Keys are distinct and are what the spool named them by.
    let keys: BTreeSet<String> = posts.iter().map(|p| p.key()).collect();
    assert_eq!(keys.len(), posts.len());
    let mut bodies: Vec<String> = posts.iter().map(|p| p.raw.clone()).collect();
    // The documented example is a valid report too (the console's developers start from it).
    bodies
        .push(std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report-example.json")).unwrap());
    assert_valid_reports(&bodies);
}

#[test]
fn routine_events_are_ignored_without_a_trace() {
    let console = Receiver::start(Mode::Ok);
    let spool = tempfile::tempdir().unwrap();
    let spool_dir = spool.path().join("never-made");
    let cancelled = resource("monitor", "haproxy", "node1", 0, 0, 10000).var("status", "1").var("desc", "Cancelled");
    for run in [
        resource("monitor", "haproxy", "node1", 0, 0, 10000),
        resource("monitor", "drbd", "node1", 8, 8, 20000),
        resource("monitor", "haproxy", "node2", 7, 7, 0),
        resource("notify", "drbd", "node1", 0, 0, 0),
        cancelled.clone(),
        cancelled.without("status"),
    ] {
        let out = run.recipient(&console.url).spool(&spool_dir).run();
        out.expect(0);
        assert!(out.stderr.is_empty(), "a routine event says nothing: {}", out.stderr);
    }
    assert!(console.posts().is_empty());
    assert!(!spool_dir.exists(), "routine events never touch the spool");
}

#[test]
fn empty_recipient_missing_version_and_bad_recipient_exit_0() {
    let spool = tempfile::tempdir().unwrap();
    let out = resource("monitor", "haproxy", "node1", 7, 0, 10000).spool(spool.path()).run();
    out.expect(0);
    assert!(out.stderr.contains("haproxy monitor (10s) on node1 failed"), "{}", out.stderr);
    assert!(spooled(spool.path()).is_empty(), "no console, no report");

    let out = resource("monitor", "haproxy", "node1", 7, 0, 10000).without("version").spool(spool.path()).run();
    out.expect(0);
    assert!(out.stderr.contains("CRM_alert_version is not set"), "{}", out.stderr);

    let out = resource("start", "haproxy", "node1", 0, 0, 0).recipient("not a recipient").run();
    out.expect(0);
    assert!(out.stderr.contains("recipient 'not a recipient' is neither"), "{}", out.stderr);
}

/// A console that is down, then slow, then failing: every run ends within budget with exit 0 and
/// its report spooled; once the console answers, `flush` delivers each report exactly once.
#[test]
fn console_down_slow_or_failing_loses_nothing_and_flush_delivers_each_once() {
    if !need_pacemaker_tools() {
        return;
    }
    let spool = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let url = url_of(&addr);
    let event = |n: u32| {
        resource("monitor", "haproxy", "node1", 7, 0, 10000)
            .var("exec_time", &n.to_string())
            .cib(running_cib())
            .spool(spool.path())
            .attr("send_timeout", "1s")
            .recipient(&url)
    };

    for n in 0..2 {
        let out = event(n).run();
        out.expect(0);
        assert!(out.elapsed < BUDGET);
        assert!(out.stderr.contains("spooled") && out.stderr.contains("connection failed"), "{}", out.stderr);
    }
    // Back, but it answers after the agent's send timeout (it stores the oldest report, late).
    let console = Receiver::start_on(&addr, Mode::Slow(Duration::from_secs(6)));
    let out = event(2).run();
    out.expect(0);
    assert!(out.elapsed < Duration::from_secs(5), "the send gives up at send_timeout: {:?}", out.elapsed);
    assert!(out.stderr.contains("no answer within 1000 ms"), "{}", out.stderr);
    console.set_mode(Mode::Status(500));
    let out = event(3).run();
    out.expect(0);
    assert!(out.elapsed < BUDGET);
    assert!(out.stderr.contains("HTTP 500"), "{}", out.stderr);

    let waiting = spooled_keys(spool.path());
    assert_eq!(waiting.len(), 4, "the spool holds every undelivered report");
    assert_eq!(console.posts().len(), 2, "each run stopped at the first failure (the oldest report)");

    console.set_mode(Mode::Ok);
    let before = console.posts().len();
    let out = flush(spool.path());
    out.expect(0);
    assert!(out.stdout.contains("4 report(s) delivered, 0 waiting"), "{}", out.stdout);
    let flushed: Vec<String> = console.posts()[before..].iter().map(|p| p.key()).collect();
    assert_eq!(flushed.len(), 4, "flush sends each report once: {flushed:?}");
    assert_eq!(flushed.iter().cloned().collect::<BTreeSet<_>>(), waiting, "exactly the spooled reports");
    let times: Vec<i64> =
        console.posts()[before..].iter().map(|p| p.body["event"]["alert"]["exec_time"].as_i64().unwrap()).collect();
    assert_eq!(times, vec![0, 1, 2, 3], "oldest first");
    assert_eq!(console.stored(), waiting, "the console stores each report once (the late one too)");
    assert!(spooled(spool.path()).is_empty());
    flush(spool.path()).expect(0);
    assert_eq!(console.posts().len(), before + 4, "a second flush has nothing to send");
}

#[test]
fn older_spooled_reports_go_first_on_the_next_event() {
    let spool = tempfile::tempdir().unwrap();
    let console = Receiver::start(Mode::Status(503));
    let event = |rsc: &str| resource("monitor", rsc, "node1", 7, 0, 10000).spool(spool.path()).recipient(&console.url);
    event("first").run().expect(0);
    event("second").run().expect(0);
    assert_eq!(spooled(spool.path()).len(), 2);
    console.set_mode(Mode::Ok);
    let out = event("third").run();
    out.expect(0);
    assert!(out.stderr.contains("delivered, 2 older delivered"), "{}", out.stderr);
    let order: Vec<String> = console
        .posts()
        .iter()
        .filter(|p| p.stored)
        .map(|p| p.body["event"]["alert"]["rsc"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(order, vec!["first", "second", "third"]);
    assert!(spooled(spool.path()).is_empty());
}

#[test]
fn token_file_gives_the_bearer_token_and_a_missing_one_keeps_the_report() {
    let spool = tempfile::tempdir().unwrap();
    let console = Receiver::start(Mode::Ok);
    let token = spool.path().join("console.token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let event =
        || resource("start", "haproxy", "node1", 0, 0, 0).spool(&spool.path().join("q")).recipient(&console.url);
    event().attr("token_file", token.to_str().unwrap()).run().expect(0);
    let posts = console.posts();
    assert_eq!(posts[0].headers.get("authorization").map(String::as_str), Some("Bearer s3cret-token"));
    assert!(!posts[0].raw.contains("s3cret"), "the token is not in the report");

    let missing = spool.path().join("nope.token");
    let out = event().attr("token_file", missing.to_str().unwrap()).run();
    out.expect(0);
    assert!(out.stderr.contains("cannot read the token file"), "{}", out.stderr);
    assert_eq!(console.posts().len(), 1, "not sent without its token");
    assert_eq!(spooled(&spool.path().join("q")).len(), 1, "kept for when the token is there");
}

/// crm_mon that never answers (its CIB_file is a FIFO nobody writes): the snapshot is given up at
/// snapshot_timeout and the report still goes out, saying why it has no snapshot.
#[test]
fn a_hung_crm_mon_costs_only_its_deadline() {
    if !need_pacemaker_tools() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("cib.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let console = Receiver::start(Mode::Ok);
    let out = resource("monitor", "haproxy", "node1", 7, 0, 10000)
        .cib(&fifo)
        .spool(&dir.path().join("spool"))
        .attr("snapshot_timeout", "1s")
        .recipient(&console.url)
        .run();
    out.expect(0);
    assert!(out.elapsed < Duration::from_secs(5), "{:?}", out.elapsed);
    let snap = &console.posts()[0].body["snapshot"];
    assert!(snap["xml"].is_null());
    assert!(snap["error"].as_str().unwrap().contains("did not answer within 1000 ms"), "{snap}");
    assert_valid_reports(&[console.posts()[0].raw.clone()]);
}

#[test]
fn unwritable_spool_sends_directly_or_fails_loudly() {
    let console = Receiver::start(Mode::Ok);
    let not_a_dir = "/dev/null/spool";
    let out = resource("start", "haproxy", "node1", 0, 0, 0).spool(Path::new(not_a_dir)).recipient(&console.url).run();
    out.expect(0);
    assert!(out.stderr.contains("sent directly"), "{}", out.stderr);
    assert_eq!(console.posts().len(), 1);
    let out = resource("start", "haproxy", "node1", 0, 0, 0).spool(Path::new(not_a_dir)).recipient(&down_url()).run();
    out.expect(1);
    assert!(out.stderr.contains("LOST"), "{}", out.stderr);
}

#[test]
fn file_recipient_appends_one_line_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("alerts.log");
    resource("monitor", "haproxy", "node1", 7, 0, 10000)
        .recipient(log.to_str().unwrap())
        .attr("cluster_name", "hastack")
        .run()
        .expect(0);
    AlertRun::new("node").var("node", "node2").var("desc", "member").recipient(log.to_str().unwrap()).run().expect(0);
    AlertRun::new("node")
        .var("node", "node2")
        .var("desc", "member")
        .recipient(log.to_str().unwrap())
        .attr("min_severity", "warning")
        .run()
        .expect(0);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].ends_with("[hastack] warning: haproxy monitor (10s) on node1 failed: not running (rc=7, expected 0)"),
        "{text}"
    );
    assert!(lines[0].starts_with("20") && lines[0].contains('T'), "ISO date first: {text}");
    assert!(lines[1].contains("info: node node2 joined the cluster"), "{text}");
}

/// Mail through the real sendmail of Debian's msmtp-mta, relaying to an SMTP server in the test
/// (msmtp reads $HOME/.msmtprc: nothing on the machine is configured).
#[test]
fn mail_recipient_gets_the_event_through_sendmail() {
    if !need_program("msmtp", "msmtp-mta") {
        return;
    }
    let smtp = smtp::SmtpReceiver::start();
    let home = tempfile::tempdir().unwrap();
    let rc = home.path().join(".msmtprc");
    std::fs::write(
        &rc,
        format!(
            "account default\nhost 127.0.0.1\nport {}\nfrom hacluster@node1.example\nauth off\ntls off\n",
            smtp.port
        ),
    )
    .unwrap();
    std::fs::set_permissions(&rc, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let out = resource("stop", "haproxy", "node1", 1, 0, 0)
        .recipient("ops@example.com,oncall@example.com")
        .attr("HOME", home.path().to_str().unwrap())
        .attr("cluster_id", "store-042")
        .run();
    out.expect(0);
    assert!(out.stderr.contains("mailed to ops@example.com, oncall@example.com"), "{}", out.stderr);
    let mails = smtp.messages();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, vec!["ops@example.com", "oncall@example.com"]);
    assert!(
        mails[0].data.contains("Subject: [hastack store-042] CRITICAL: haproxy stop on node1 failed"),
        "{}",
        mails[0].data
    );
    assert!(mails[0].data.contains("rsc = haproxy"), "{}", mails[0].data);
}

/// The 3-node stack's promise: after the last node of a group's failover list has failed too,
/// the group stays stopped and the operator is told so, in those words. The cluster state is
/// crm_simulate's, the snapshot the real crm_mon's.
#[test]
fn group_with_no_node_left_is_recognised_and_worded_as_such() {
    if !need_pacemaker_tools() {
        return;
    }
    let loaded = config::load(&example("stack-3node.toml")).unwrap();
    let facts = hastack::config::check::Facts::of(&loaded);
    let mut sim = Sim::start(&loaded.render(Format::Cib), &facts.nodes, &facts.promotable).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("alerts.log");
    let console = Receiver::start(Mode::Ok);
    let stop_alert = |node: &str, state: &Path| {
        let out = resource("stop", "orders-ip", node, 0, 0, 0).cib(state).recipient(log.to_str().unwrap()).run();
        out.expect(0);
        let out2 = resource("stop", "orders-ip", node, 0, 0, 0)
            .cib(state)
            .spool(&dir.path().join("spool"))
            .recipient(&console.url)
            .run();
        out2.expect(0);
        out
    };
    // Fail orders-app's monitor wherever it runs until it runs nowhere; the stop alert of the
    // group's first member on each node it leaves.
    let mut left = Vec::new();
    for _ in 0..12 {
        let Some(node) = sim.nodes_of("orders-app").unwrap().first().cloned() else { break };
        sim.step(&["--op-inject".into(), format!("orders-app_monitor_10000@{node}=7")]).unwrap();
        sim.settle().unwrap();
        if !sim.nodes_of("orders-app").unwrap().contains(&node) {
            let state = dir.path().join(format!("after-{node}.xml"));
            std::fs::copy(sim.state(), &state).unwrap();
            left.push((node.clone(), stop_alert(&node, &state)));
        }
    }
    let order: Vec<&str> = left.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(order, vec!["alpha", "beta", "gamma"], "the group walked its failover list");
    for (node, out) in &left[..2] {
        assert!(!out.stderr.contains("no node left"), "{node}: a node was still left: {}", out.stderr);
    }
    let last = &left[2].1.stderr;
    assert!(
        last.contains(
            "CRITICAL: group orders has no node left and stays stopped: alpha failed (orders-app 2 of 2 failures), \
             beta failed (orders-app 2 of 2 failures), gamma failed (orders-app 2 of 2 failures)"
        ),
        "{last}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("no node left").count(), 1, "{text}");
    let reports = console.posts();
    let findings: Vec<&serde_json::Value> = reports.iter().map(|p| &p.body["event"]["findings"]).collect();
    assert_eq!(findings[..2], [&serde_json::json!([]), &serde_json::json!([])]);
    assert_eq!(findings[2][0]["type"], "group_has_no_node_left");
    assert_eq!(findings[2][0]["group"], "orders");
    assert_eq!(reports[2].body["event"]["severity"], "critical");
    assert_valid_reports(&reports.iter().map(|p| p.raw.clone()).collect::<Vec<_>>());

    // Billing is banned from alpha; losing gamma while beta has exhausted it leaves no node.
    let out = AlertRun::new("node")
        .var("node", "gamma")
        .var("desc", "lost")
        .cib(sim.state())
        .recipient(log.to_str().unwrap())
        .run();
    out.expect(0);
    assert!(!out.stderr.contains("billing has no node left"), "billing still has beta: {}", out.stderr);
}

/// The configuration commands README.md's "Alert agent" section shows, run as shown (pcs offline
/// with `-f`, cibadmin and crm on a CIB file), each give the alert with its select filters.
#[test]
fn readme_alert_configuration_commands_work() {
    if !need_pacemaker_tools() || !need_program("pcs", "pcs") || !need_program("crm", "crmsh") {
        return;
    }
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let section = readme.split("## Alert agent").nth(1).unwrap().split("\n## ").next().unwrap();
    // Indented code lines, continuation lines joined.
    let code: Vec<String> = section
        .lines()
        .filter_map(|l| l.strip_prefix("    "))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("\\\n", " ")
        .lines()
        .map(str::to_string)
        .collect();
    let pcs_block: Vec<&String> =
        code.iter().filter(|l| l.starts_with("pcs alert") || l.starts_with("cibadmin --modify")).collect();
    let crm_block: Vec<&String> = code.iter().filter(|l| l.starts_with("crm configure alert")).collect();
    assert_eq!((pcs_block.len(), crm_block.len()), (5, 1), "{code:#?}");

    let dir = tempfile::tempdir().unwrap();
    for (name, lines) in [("pcs", pcs_block), ("crm", crm_block)] {
        let cib = dir.path().join(format!("{name}.xml"));
        std::fs::write(&cib, sh("cibadmin", &["--empty"])).unwrap();
        let script = format!(
            "set -e\nexport CIB_file={cib}\npcs() {{ command pcs -f \"$CIB_file\" \"$@\"; }}\n{}\n",
            lines.iter().map(|l| l.as_str()).collect::<Vec<_>>().join("\n"),
            cib = cib.display()
        );
        let out = run_with_deadline(Command::new("sh").args(["-c", &script]), Duration::from_secs(120));
        out.expect(0);
        let xml = std::fs::read_to_string(&cib).unwrap();
        let alerts = xml.split("<alerts>").nth(1).unwrap_or_else(|| panic!("{name}: no alerts in\n{xml}"));
        for needle in [
            "path=\"/usr/lib/hastack/alert\"",
            "<select_nodes/>",
            "<select_fencing/>",
            "<select_resources/>",
            "value=\"https://console.example.com/api/v1/reports\"",
            "name=\"cluster_id\" value=\"store-042\"",
            "name=\"timeout\" value=\"30s\"",
        ] {
            assert!(alerts.contains(needle), "{name}: {needle} missing from\n{alerts}");
        }
    }
}
