//! `hastack agent apply` under the real Pacemaker, against a real `hastack console serve`: one
//! two-node cluster for the three stories (an interval change applied within one poll, a change
//! that fails verification rolled back, a change racing a local edit refused). The console runs
//! in node1's network namespace on loopback, where the agent (run on node1 with `nsenter`)
//! reaches it; the test speaks to it from a thread that joined that namespace.

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::console::Console;
use crate::support::pacemaker::Pacemaker;
use crate::support::*;

const CLUSTER: &str = "store-apply";

fn ready() -> bool {
    need_root("a Pacemaker cluster in namespaces")
        && need_program("ip", "iproute2")
        && need_program("corosync", "corosync")
        && need_program("pacemakerd", "pacemaker")
        && need_program("crm_resource", "pacemaker-cli-utils")
        && need_program("nsenter", "util-linux")
}

/// One HTTP request to the console (a POST with a body, else a GET), from inside the namespace `ns` (a socket keeps the
/// namespace of the thread that made it).
fn http(ns: &str, url: String, body: Option<Value>) -> (u16, Value) {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        let file = std::fs::File::open(format!("/run/netns/{ns}")).unwrap();
        // SAFETY: setns on this thread with a valid namespace fd.
        assert_eq!(unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) }, 0);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into();
        let mut r = match body {
            Some(b) => agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(serde_json::to_vec(&b).unwrap())
                .unwrap(),
            None => agent.get(&url).call().unwrap(),
        };
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    })
    .join()
    .unwrap()
}

struct Setup {
    ns: String,
    token_file: tempfile::NamedTempFile,
    // Dropped first: the console lives in node1's namespace, which the cluster's drop empties.
    console: Console,
    pcmk: Pacemaker,
    _lan: Lan,
}

impl Setup {
    fn url(&self) -> String {
        format!("http://{}", self.console.addr)
    }

    /// Records a change as an operator would (POST /api/v1/clusters/NAME/changes); its id.
    fn request(&self, change: Value) -> i64 {
        let url = format!("{}/api/v1/clusters/{CLUSTER}/changes", self.url());
        let (status, answer) = http(&self.ns, url, Some(json!({ "requested_by": "alice", "change": change })));
        assert_eq!(status, 201, "{answer}");
        answer["id"].as_i64().unwrap()
    }

    /// The change as the console's audit log shows it.
    fn change(&self, id: i64) -> Value {
        let url = format!("{}/api/v1/clusters/{CLUSTER}/changes", self.url());
        let (status, answer) = http(&self.ns, url, None);
        assert_eq!(status, 200, "{answer}");
        answer["changes"].as_array().unwrap().iter().find(|c| c["id"] == id).cloned().expect("the change is listed")
    }

    /// `hastack agent apply --console URL --token-file F --once` on node1, as README.md shows.
    fn apply(&self, env: &[String]) -> Outcome {
        let url = self.url();
        let token = self.token_file.path().to_str().unwrap();
        let binary = bin();
        let mut args: Vec<&str> = env.iter().map(String::as_str).collect();
        args.extend([binary.to_str().unwrap(), "agent", "apply", "--console", &url, "--token-file", token, "--once"]);
        self.pcmk.tool(1, "env", &args)
    }

    fn monitor_op(&self) -> String {
        let out =
            self.pcmk.tool(1, "cibadmin", &["--query", "--xpath", "//primitive[@id='dummy']//op[@name='monitor']"]);
        out.expect(0);
        out.stdout
    }

    fn resources(&self) -> String {
        let out = self.pcmk.tool(1, "cibadmin", &["--query", "--scope", "resources"]);
        out.expect(0);
        out.stdout
    }
}

fn steps(change: &Value) -> Vec<(String, bool)> {
    change["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap().to_string(), s["ok"].as_bool().unwrap()))
        .collect()
}

fn step_detail(change: &Value, step: &str) -> String {
    change["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step)
        .map_or(String::new(), |s| s["detail"].as_str().unwrap().to_string())
}

fn setup() -> Setup {
    let lan = Lan::new(2);
    let pcmk = Pacemaker::start(&lan, 2);
    let ns = lan.ns(1).to_string();
    let dir = tempfile::Builder::new().prefix("hst-console").tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("console.db").display());
    let mut serve = Command::new("ip");
    serve.args(["netns", "exec", &ns]).arg(bin()).args(["console", "serve", "--listen", "127.0.0.1:0"]);
    serve.env("HASTACK_CONSOLE_DB", &db);
    let console = Console::spawn(&mut serve, dir, db);
    let token = console.add_cluster(CLUSTER);
    let token_file = tempfile::Builder::new().prefix("hst-token").tempfile().unwrap();
    std::fs::write(token_file.path(), format!("{token}\n")).unwrap();
    let primitive = r#"<primitive id="dummy" class="ocf" provider="pacemaker" type="Dummy">
  <instance_attributes id="dummy-params">
    <nvpair id="dummy-op_sleep" name="op_sleep" value="0"/>
  </instance_attributes>
  <operations>
    <op id="dummy-monitor-10s" name="monitor" interval="10s" timeout="20s"/>
  </operations>
</primitive>"#;
    pcmk.tool(1, "cibadmin", &["--create", "--scope", "resources", "--xml-text", primitive]).expect(0);
    wait_for("Pacemaker to start the dummy", Duration::from_secs(60), || pcmk.located("dummy").is_some());
    Setup { ns, token_file, console, pcmk, _lan: lan }
}

/// The three stories on one cluster (starting one takes most of the time), and a change naming
/// an operation the CIB does not have.
#[test]
fn agent_apply_plans_commits_verifies_rolls_back_and_refuses_a_race() {
    if !ready() {
        return;
    }
    let s = setup();

    // 1. An interval changed from the console reaches the CIB within one poll.
    let id = s.request(json!({ "kind": "operation", "resource": "dummy", "operation": "monitor",
                               "interval": "10s", "new_interval": "5s" }));
    assert!(s.monitor_op().contains(r#"interval="10s""#));
    s.apply(&[]).expect(0);
    assert!(s.monitor_op().contains(r#"interval="5s""#), "{}", s.monitor_op());
    s.pcmk.tool(1, "crm_verify", &["-L", "-V"]).expect(0);
    let c = s.change(id);
    assert_eq!(c["state"], "applied", "{c:#}");
    assert_eq!(c["requested_by"], "alice");
    let want: Vec<(String, bool)> = ["plan", "commit", "verify"].iter().map(|s| (s.to_string(), true)).collect();
    assert_eq!(steps(&c), want, "{c:#}");
    assert!(step_detail(&c, "plan").contains(r#"interval="5s""#), "the plan shows the diff: {c:#}");
    eprintln!(
        "plan: {}\ncommit: {}\nverify: {}",
        step_detail(&c, "plan"),
        step_detail(&c, "commit"),
        step_detail(&c, "verify")
    );
    assert!(step_detail(&c, "commit").contains("->"), "{c:#}");
    // Nothing waits: another poll has nothing to do.
    s.apply(&[]).expect(0);

    // 2. A parameter the agent's validate-all rejects (Dummy: op_sleep must be a number) is
    //    rolled back, and the console says why.
    let before = s.resources();
    let id = s.request(json!({ "kind": "parameter", "resource": "dummy", "name": "op_sleep", "value": "soon" }));
    let out = s.apply(&[]);
    out.expect(1);
    let c = s.change(id);
    assert_eq!(c["state"], "rolled_back", "{c:#}");
    let want =
        vec![("plan".into(), true), ("commit".into(), true), ("verify".into(), false), ("rollback".into(), true)];
    assert_eq!(steps(&c), want, "{c:#}");
    eprintln!("rolled back: {}", c["detail"]);
    assert!(step_detail(&c, "verify").contains("validate-all"), "{c:#}");
    assert!(c["detail"].as_str().unwrap().contains("because"), "{c:#}");
    assert_eq!(s.resources(), before, "the CIB's resources are back to the original");
    s.pcmk.tool(1, "crm_verify", &["-L", "-V"]).expect(0);

    // 3. A local edit between PLAN and COMMIT (the epoch moves): refused by the CIB, not applied.
    let id = s.request(json!({ "kind": "operation", "resource": "dummy", "operation": "monitor",
                               "new_interval": "7s" }));
    let race = format!(
        "{}=crm_attribute --type crm_config --name hst-local-edit --update 1",
        hastack::agent::apply::BEFORE_COMMIT_ENV
    );
    let out = s.apply(&[race]);
    out.expect(1);
    let c = s.change(id);
    assert_eq!(c["state"], "refused", "{c:#}");
    assert_eq!(steps(&c), vec![("plan".into(), true), ("refused".into(), false)], "{c:#}");
    eprintln!("race refused: {}", step_detail(&c, "refused"));
    assert!(step_detail(&c, "refused").contains("moved from"), "{c:#}");
    // Pacemaker's own guard refused the patch (its version is not the CIB's any more).
    assert!(step_detail(&c, "refused").contains("older than existing configuration"), "{c:#}");
    assert!(s.monitor_op().contains(r#"interval="5s""#), "not applied: {}", s.monitor_op());
    let local = s.pcmk.tool(1, "crm_attribute", &["--type", "crm_config", "--name", "hst-local-edit", "--query"]);
    assert!(local.stdout.contains("value=1"), "the local edit stays: {}", local.stdout);

    // 4. An operation the CIB does not have: refused at plan with what there is, nothing written.
    let before = s.resources();
    let id = s.request(json!({ "kind": "operation", "resource": "dummy", "operation": "monitor",
                               "interval": "99s", "new_interval": "30s" }));
    s.apply(&[]).expect(1);
    let c = s.change(id);
    assert_eq!(c["state"], "refused", "{c:#}");
    assert_eq!(steps(&c), vec![("refused".into(), false)], "{c:#}");
    assert!(
        step_detail(&c, "refused")
            .contains(r#"dummy has no monitor operation with interval 99s (its monitor intervals: ["5s"])"#),
        "{c:#}"
    );
    assert_eq!(s.resources(), before);
}

/// Bad flags and an unreadable token file name themselves and exit 2.
#[test]
fn agent_apply_refuses_bad_flags() {
    let out = run_with_deadline(Command::new(bin()).args(["agent", "apply"]), Duration::from_secs(10));
    out.expect(2);
    assert!(out.stderr.contains("--console"), "{}", out.stderr);
    let out = run_with_deadline(
        Command::new(bin()).args(["agent", "apply", "--console", "ftp://x", "--token-file", "/nonexistent"]),
        Duration::from_secs(10),
    );
    out.expect(2);
    assert!(out.stderr.contains("is not a console URL"), "{}", out.stderr);
    let out = run_with_deadline(
        Command::new(bin()).args([
            "agent",
            "apply",
            "--console",
            "http://127.0.0.1:9",
            "--token-file",
            "/nonexistent/token",
            "--once",
        ]),
        Duration::from_secs(10),
    );
    out.expect(2);
    assert!(out.stderr.contains("/nonexistent/token"), "{}", out.stderr);
}

/// `hastack agent apply` polling (no --once) on node1, as README.md shows it with a short
/// `--interval`; stopped (SIGTERM, then SIGKILL) on drop.
struct Poller {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Poller {
    fn start(s: &Setup, interval_s: u64, dir: &std::path::Path) -> Poller {
        let log = dir.join("apply.log");
        let mut cmd = Command::new("nsenter");
        cmd.args(["--target", &s.pcmk.pid(1).to_string(), "--mount", "--net", "--uts", "--"])
            .arg(bin())
            .args(["agent", "apply", "--console", &s.url(), "--token-file"])
            .arg(s.token_file.path())
            .args(["--interval", &format!("{interval_s}s")])
            .stdin(std::process::Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(&log).unwrap());
        Poller { child: cmd.spawn().unwrap(), log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if self.child.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const POLL_S: u64 = 3;

/// Waits (deadline) for the change to end while the poller keeps running; the change.
fn wait_finished(s: &Setup, poller: &mut Poller, id: i64) -> Value {
    let mut last = Value::Null;
    wait_for("the poller to finish the change", Duration::from_secs(120), || {
        assert!(poller.running(), "the poller exited:\n{}", poller.log());
        last = s.change(id);
        hastack::agent::spec::FINAL.contains(&last["state"].as_str().unwrap_or_default())
    });
    last
}

/// Seconds from the request to the agent's first step.
fn picked_up_after_s(c: &Value) -> f64 {
    (c["steps"][0]["time_us"].as_i64().unwrap() - c["created_us"].as_i64().unwrap()) as f64 / 1e6
}

fn configuration(s: &Setup) -> String {
    let out = s.pcmk.tool(1, "cibadmin", &["--query", "--scope", "configuration"]);
    out.expect(0);
    out.stdout
}

/// The polling loop (no --once) picks each change up within one poll interval and reports every
/// step; a migration-threshold change (one resource, and rsc_defaults) and a maintenance-mode
/// change are applied and verified under the real Pacemaker; a change kind this agent does not
/// know (a newer console's) is refused at plan with nothing written to the CIB.
#[test]
fn agent_apply_polls_and_applies_thresholds_and_maintenance_and_refuses_an_unknown_kind() {
    if !ready() {
        return;
    }
    let s = setup();
    let dir = tempfile::Builder::new().prefix("hst-apply").tempdir().unwrap();
    let mut poller = Poller::start(&s, POLL_S, dir.path());
    let ok3 = |c: &Value| {
        assert_eq!(
            steps(c),
            [("plan", true), ("commit", true), ("verify", true)].map(|(s, o)| (s.to_string(), o)),
            "{c:#}"
        )
    };
    let within_one_poll = |c: &Value| {
        let after = picked_up_after_s(c);
        eprintln!("change {} picked up {after:.1} s after the request (poll every {POLL_S} s)", c["id"]);
        // One interval, plus the CIB's read and the step's report.
        assert!(after <= POLL_S as f64 + 3.0, "picked up {after:.1} s after the request: {c:#}");
    };

    // migration-threshold of one resource.
    let id = s.request(json!({ "kind": "migration_threshold", "resource": "dummy", "value": 3 }));
    let c = wait_finished(&s, &mut poller, id);
    assert_eq!(c["state"], "applied", "{c:#}\n{}", poller.log());
    ok3(&c);
    within_one_poll(&c);
    let meta =
        s.pcmk.tool(1, "crm_resource", &["--resource", "dummy", "--meta", "--get-parameter", "migration-threshold"]);
    assert_eq!(meta.stdout.trim(), "3", "{}", meta.stderr);
    assert!(step_detail(&c, "verify").contains("dummy validate-all: ok"), "{c:#}");

    // migration-threshold for every resource (rsc_defaults).
    let id = s.request(json!({ "kind": "migration_threshold", "value": 5 }));
    let c = wait_finished(&s, &mut poller, id);
    assert_eq!(c["state"], "applied", "{c:#}\n{}", poller.log());
    ok3(&c);
    within_one_poll(&c);
    let q = s.pcmk.tool(1, "crm_attribute", &["--type", "rsc_defaults", "--name", "migration-threshold", "--query"]);
    assert!(q.stdout.contains("value=5"), "{}", q.stdout);

    // Maintenance mode on.
    let id = s.request(json!({ "kind": "maintenance", "enabled": true }));
    let c = wait_finished(&s, &mut poller, id);
    assert_eq!(c["state"], "applied", "{c:#}\n{}", poller.log());
    ok3(&c);
    within_one_poll(&c);
    assert!(step_detail(&c, "plan").contains("maintenance-mode"), "{c:#}");
    let q = s.pcmk.tool(1, "crm_attribute", &["--type", "crm_config", "--name", "maintenance-mode", "--query"]);
    assert!(q.stdout.contains("value=true"), "{}", q.stdout);
    s.pcmk.tool(1, "crm_verify", &["-L", "-V"]).expect(0);

    // A kind this agent does not know, as a newer console would offer it (written straight into
    // the console's database: this console's API refuses it).
    let before = configuration(&s);
    let url = hastack::console::store::DbUrl::parse(&s.console.db).unwrap();
    let store = hastack::console::store::Store::open(&url).unwrap();
    let cluster = store.cluster(CLUSTER).unwrap().unwrap().id;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let id = store
        .read(|db| {
            let row = db.query_one(
                "INSERT INTO changes (cluster_id, created_us, requested_by, spec, state, updated_us)
                 VALUES ($1, $2, 'carol', '{\"kind\": \"stonith_timeout\", \"value\": \"90s\"}', 'requested', $2) RETURNING id",
                &[cluster.into(), now.into()],
            )?;
            Ok(row.and_then(|r| r[0].int()).unwrap())
        })
        .unwrap();
    let c = wait_finished(&s, &mut poller, id);
    assert_eq!(c["state"], "refused", "{c:#}");
    assert_eq!(steps(&c), vec![("refused".into(), false)], "refused before plan wrote anything: {c:#}");
    assert!(step_detail(&c, "refused").contains("does not know this change"), "{c:#}");
    within_one_poll(&c);
    assert_eq!(configuration(&s), before, "nothing written to the CIB's configuration");

    // The poller is still polling and said each step of each change.
    assert!(poller.running(), "{}", poller.log());
    let said = poller.log();
    eprintln!("the poller said:\n{said}");
    for step in ["plan", "commit", "verify"] {
        assert!(said.contains(&format!(": {step}: ")), "{step} not in the agent's log:\n{said}");
    }
    assert!(said.contains(&format!("change {id}: refused (failed): ")), "{said}");
    drop(poller);
}
