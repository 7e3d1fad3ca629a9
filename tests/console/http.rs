//! The console as its users run it: `hastack console serve` and `cluster add`, reports POSTed
//! over HTTP as the alert agent sends them, every kind of bad input (each a clear 4xx, nothing
//! stored twice, nothing lost), the JSON API and the pages.

use std::time::Duration;

use serde_json::{json, Value};

use super::fixtures::{self, Scenario};
use super::*;

const DAY_US: i64 = 86_400_000_000;

/// A report for `cluster` that is accepted on its own (a resource start, with a snapshot).
fn simple_report(cluster: &str, time_us: i64, seq: i64) -> Value {
    let alert = json!({
        "node": "node1", "nodeid": null, "desc": "ok", "task": "start", "rc": 0, "rsc": "db", "interval": 0,
        "target_rc": 0, "status": 0, "exec_time": 40, "attribute_name": null, "attribute_value": null,
    });
    let xml = r#"<pacemaker-result api-version="2.25"><summary><current_dc present="true" name="node1" with_quorum="true"/></summary><nodes><node name="node1" online="true"/><node name="node2" online="true"/></nodes><resources><resource id="db" resource_agent="ocf:hastack:postgresql" role="Started" active="true" failed="false"><node name="node1"/></resource></resources><status code="0" message="OK"/></pacemaker-result>"#;
    fixtures::make_report(
        cluster,
        "node1",
        time_us,
        seq,
        "resource",
        "operation_succeeded",
        "info",
        "db start on node1: ok",
        alert,
        Value::Null,
        Some(xml),
    )
}

fn counts(console: &Console, cluster: &str) -> (i64, i64) {
    let c = console.cluster(cluster);
    (c["reports"].as_i64().unwrap(), c["events"].as_i64().unwrap())
}

fn error_code(r: &client::Response) -> String {
    r.json()["error"].as_str().unwrap_or_default().to_string()
}

/// One group commit (the writer's batch) with a report whose token was rotated away, a report of
/// another cluster, and a replay of a report earlier in the same batch: the replay is stored
/// once, the stale token's report is refused (nothing stored), and the others are stored.
#[test]
fn a_batch_stores_a_replay_inside_it_once_and_refuses_only_a_stale_token() {
    on_both_stores(|ts| {
        let store = &ts.store;
        let (a, b) = (register(store, "store-a"), register(store, "store-b"));
        let hash_of = |id: i64| {
            store
                .read(move |db| db.query_one("SELECT token_hash FROM clusters WHERE id = $1", &[id.into()]))
                .unwrap()
                .unwrap()[0]
                .string()
                .unwrap()
        };
        let now = fixtures::now_us();
        let accepted = |cluster: &str, id: i64, seq: i64, hash: String| {
            let body = serde_json::to_vec(&simple_report(cluster, now - 60_000_000 + seq, seq)).unwrap();
            let mut acc = accept_report(&body, id, cluster, now).unwrap();
            acc.token_hash = Some(hash);
            acc
        };
        let first = accepted("store-a", a, 1, hash_of(a));
        let stale = accepted("store-a", a, 2, token::hash("hsc_rotated_away"));
        let other = accepted("store-b", b, 3, hash_of(b));
        let mut db = store.connect().unwrap();
        let (outcomes, changed) = ingest_batch(db.as_mut(), &[first.clone(), stale, other, first.clone()]).unwrap();
        let outcomes: Vec<Stored> = outcomes.into_iter().map(Result::unwrap).collect();
        assert!(matches!(outcomes[0], Stored::New { merged: false, .. }), "{outcomes:?}");
        assert_eq!(outcomes[1], Stored::TokenRevoked, "{outcomes:?}");
        assert!(matches!(outcomes[2], Stored::New { .. }), "{outcomes:?}");
        let Stored::New { report_id, event_id, .. } = outcomes[0] else { unreachable!() };
        assert_eq!(outcomes[3], Stored::Duplicate { report_id, event_id: Some(event_id) }, "the replay");
        assert_eq!(changed.len(), 2);
        let count = |sql: &'static str, id: i64| {
            store.read(move |db| Ok(db.query_one(sql, &[id.into()])?.unwrap()[0].int().unwrap())).unwrap()
        };
        for (id, name) in [(a, "store-a"), (b, "store-b")] {
            assert_eq!(count("SELECT COUNT(*) FROM reports WHERE cluster_id = $1", id), 1, "{name}: {}", ts.label);
            assert_eq!(count("SELECT COUNT(*) FROM events WHERE cluster_id = $1", id), 1, "{name}: {}", ts.label);
            assert_eq!(store.cluster(name).unwrap().unwrap().reports, 1, "{name}'s summary");
        }
    });
}

#[test]
fn a_report_is_stored_once_201_then_200_for_its_retry() {
    let console = Console::start();
    let token = console.add_cluster("store-042");
    let report = simple_report("store-042", fixtures::now_us() - 5_000_000, 1);
    let first = console.post_json(&token, &report);
    assert_eq!(first.status, 201, "{}", first.text());
    assert_eq!(first.json()["status"], "stored");
    let retry = console.post_json(&token, &report);
    assert_eq!(retry.status, 200, "a retry must be 2xx (docs/reports.md): {}", retry.text());
    assert_eq!(retry.json()["status"], "duplicate");
    assert_eq!(retry.json()["report_id"], first.json()["report_id"]);
    assert_eq!(counts(&console, "store-042"), (1, 1));
    // The report is kept as sent.
    let id = first.json()["report_id"].as_i64().unwrap();
    let raw = client::get(&console.addr, &format!("/api/v1/reports/{id}"));
    assert_eq!(raw.json(), report);
}

#[test]
fn the_documented_example_report_is_accepted() {
    let console = Console::start();
    let token = console.add_cluster("store-042");
    let example = std::fs::read("docs/report-example.json").unwrap();
    let r = console.post(&token, &example);
    assert_eq!(r.status, 201, "{}", r.text());
    let c = console.cluster("store-042");
    assert_eq!(c["open_incidents"], 1, "a failed monitor opens an incident: {c}");
    assert_eq!(c["health"]["level"], "red");
}

#[test]
fn bad_input_gets_a_clear_4xx_and_nothing_is_stored_or_lost() {
    let console = Console::start();
    let token = console.add_cluster("store-001");
    let other = console.add_cluster("store-002");
    let now = fixtures::now_us();
    let good = simple_report("store-001", now - 60_000_000, 1);
    let body = serde_json::to_vec(&good).unwrap();

    // Malformed JSON: 400.
    let r = console.post(&token, &body[..body.len() / 2]);
    assert_eq!((r.status, error_code(&r).as_str()), (400, "malformed_json"), "{}", r.text());
    // Not UTF-8, even in a field the console does not read: 400 (found by the console_report
    // fuzz target; serde_json alone skips such a field unchecked).
    let mut not_utf8 = good.clone();
    not_utf8["extra"] = json!("@");
    let mut not_utf8 = serde_json::to_vec(&not_utf8).unwrap();
    let at = not_utf8.iter().position(|&b| b == b'@').unwrap();
    not_utf8[at] = 0xff;
    let r = console.post(&token, &not_utf8);
    assert_eq!((r.status, error_code(&r).as_str()), (400, "malformed_json"), "{}", r.text());
    // JSON that is not a report: 422, naming what is missing.
    let r = console.post(&token, br#"{"schema": "hastack.alert-report"}"#);
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.json()["message"].as_str().unwrap().contains("schema_version"), "{}", r.text());
    // No token, a wrong token: 401; another cluster's token: 403.
    let r = client::request(&console.addr, "POST", "/api/v1/reports", &[], Some(&body));
    assert_eq!((r.status, error_code(&r).as_str()), (401, "missing_token"));
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    let r = console.post("hsc_0000", &body);
    assert_eq!((r.status, error_code(&r).as_str()), (401, "unknown_token"));
    let r = console.post(&other, &body);
    assert_eq!((r.status, error_code(&r).as_str()), (403, "wrong_cluster"), "{}", r.text());
    // Oversized: 413 (8 MiB at most).
    let mut huge = good.clone();
    huge["snapshot"]["xml"] = Value::String("x".repeat(9 * 1024 * 1024));
    let r = console.post_json(&token, &huge);
    assert_eq!((r.status, error_code(&r).as_str()), (413, "body_too_large"), "{}", r.text());
    // A field changed after the key was computed (a tampered or corrupted replay): 422.
    let mut tampered = good.clone();
    tampered["event"]["alert"]["rc"] = json!(1);
    let r = console.post_json(&token, &tampered);
    assert_eq!((r.status, error_code(&r).as_str()), (422, "idempotency_key_mismatch"));
    // A schema version this console does not read: 422 (the agent keeps it until an upgrade).
    let auth = format!("Bearer {token}");
    let r = client::request(
        &console.addr,
        "POST",
        "/api/v1/reports",
        &[("Authorization", &auth), ("X-Hastack-Schema-Version", "2")],
        Some(&body),
    );
    assert_eq!((r.status, error_code(&r).as_str()), (422, "unsupported_schema_version"));
    // An Idempotency-Key header that is not the body's: 400.
    let r = client::request(
        &console.addr,
        "POST",
        "/api/v1/reports",
        &[("Authorization", &auth), ("Idempotency-Key", &"0".repeat(64))],
        Some(&body),
    );
    assert_eq!((r.status, error_code(&r).as_str()), (400, "idempotency_key_header"));
    assert_eq!(counts(&console, "store-001"), (0, 0), "nothing refused was stored");
    assert_eq!(counts(&console, "store-002"), (0, 0));

    // Nothing lost: the good report, sent after all that, and its replay, are stored once.
    assert_eq!(console.post(&token, &body).status, 201);
    assert_eq!(console.post(&token, &body).status, 200);
    assert_eq!(counts(&console, "store-001"), (1, 1));

    // Every refusal is visible to the operator, with the cluster it claimed to be for.
    let refused = console.get_json("/api/v1/rejections");
    let list = refused["rejections"].as_array().unwrap();
    assert_eq!(list.len(), 10, "{refused:#}");
    assert!(
        list.iter().any(|r| r["code"] == "unknown_token" && r["cluster"] == "store-001 (unverified)"),
        "{refused:#}"
    );
    let page = client::get(&console.addr, "/clusters/store-001").text();
    assert!(page.contains("idempotency_key_mismatch"), "the cluster page lists its refused reports");
}

/// Decision (README.md "Console"): an event time more than 5 minutes ahead of the console's clock
/// is stored, timed at its arrival and flagged; refusing it would block the node's spool.
#[test]
fn a_report_from_the_future_is_stored_at_its_arrival_time_and_flagged() {
    let console = Console::start();
    let token = console.add_cluster("store-clock");
    let now = fixtures::now_us();
    let near = simple_report("store-clock", now + 60_000_000, 1);
    let r = console.post_json(&token, &near);
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.json()["clock_ahead_ms"].is_null(), "one minute ahead is within the tolerance");
    let far = simple_report("store-clock", now + 2 * 3_600_000_000, 2);
    let r = console.post_json(&token, &far);
    assert_eq!(r.status, 201, "{}", r.text());
    let ahead = r.json()["clock_ahead_ms"].as_i64().expect("flagged");
    assert!((7_100_000..=7_200_000).contains(&ahead), "{ahead}");
    let event = console.get_json(&format!("/api/v1/events/{}", r.json()["event_id"]));
    let t = event["event"]["time_us"].as_i64().unwrap();
    assert!((t - fixtures::now_us()).abs() < 60_000_000, "timed at arrival, not two hours ahead: {event:#}");
    assert_eq!(event["event"]["time_flag"], "clock_ahead");
    assert_eq!(event["reports"][0]["clock_ahead_ms"], ahead);
    let c = console.cluster("store-clock");
    assert_eq!(c["health"]["level"], "amber");
    assert!(c["health"]["reasons"].to_string().contains("node1's clock is 1 h 59 min ahead"), "{c:#}");
    // Its retry is still a duplicate.
    assert_eq!(console.post_json(&token, &far).status, 200);
    assert_eq!(counts(&console, "store-clock"), (2, 2));
}

#[test]
fn cluster_add_prints_a_token_once_and_refuses_a_taken_or_bad_name() {
    let console = Console::start();
    let token = console.add_cluster("store-7");
    assert!(token.starts_with("hsc_") && token.len() == 68, "{token}");
    let again = run_with_deadline(
        Command::new(bin()).args(["console", "cluster", "add", "store-7"]).env("HASTACK_CONSOLE_DB", &console.db),
        Duration::from_secs(30),
    );
    again.expect(1);
    assert!(again.stderr.contains("already registered"), "{}", again.stderr);
    assert!(again.stdout.is_empty());
    let bad = run_with_deadline(
        Command::new(bin()).args(["console", "cluster", "add", "store 7/x"]).env("HASTACK_CONSOLE_DB", &console.db),
        Duration::from_secs(30),
    );
    bad.expect(1);
    assert!(bad.stderr.contains("letters, digits"), "{}", bad.stderr);
    // The database keeps only the token's hash.
    let db = console.db.strip_prefix("sqlite://").unwrap();
    let bytes = std::fs::read(db).unwrap();
    assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "the token is stored in clear");
    // Rotation: the old token stops working at once, also when the console has seen it (its
    // token cache knows it: the writer's check against the cluster's row refuses it), and also
    // for the replay of a report it stored before.
    let before = simple_report("store-7", fixtures::now_us(), 1);
    assert_eq!(console.post_json(&token, &before).status, 201);
    let rotated = run_with_deadline(
        Command::new(bin()).args(["console", "cluster", "rotate", "store-7"]).env("HASTACK_CONSOLE_DB", &console.db),
        Duration::from_secs(30),
    );
    rotated.expect(0);
    let new_token = rotated.stdout.trim();
    let report = simple_report("store-7", fixtures::now_us(), 2);
    let refused = console.post_json(&token, &report);
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert!(refused.text().contains("unknown_token"), "{}", refused.text());
    assert_eq!(console.post_json(&token, &before).status, 401, "a replay with the old token");
    assert_eq!(console.post_json(new_token, &report).status, 201);
    assert_eq!(console.post_json(new_token, &before).status, 200, "the replay with the new token");
    let list = run_with_deadline(
        Command::new(bin()).args(["console", "cluster", "list"]).env("HASTACK_CONSOLE_DB", &console.db),
        Duration::from_secs(30),
    );
    list.expect(0);
    assert!(list.stdout.lines().any(|l| l.starts_with("store-7 ") && l.contains(" 2 ")), "{}", list.stdout);
}

#[test]
fn a_bad_database_url_is_refused_with_the_reason() {
    let out = run_with_deadline(
        Command::new(bin()).args(["console", "serve", "--db", "/tmp/console.db", "--listen", "127.0.0.1:0"]),
        Duration::from_secs(30),
    );
    out.expect(1);
    assert!(out.stderr.contains("expected sqlite://PATH or postgres://"), "{}", out.stderr);
}

/// The pages and the API after a real failover: what an operator opens.
#[test]
fn the_pages_and_the_api_show_the_fleet_a_cluster_its_incident_and_snapshots() {
    if !fixtures::available() {
        return;
    }
    let console = Console::start();
    let token = console.add_cluster("store-pages");
    console.add_cluster("store-silent");
    let mut s = Scenario::new("store-pages", fixtures::now_us() - DAY_US);
    s.set_fail_count("db#monitor_10000", "node1", 2);
    let failure = s.monitor_fails("db", 10000, "node1", 7, 1000);
    for r in &s.reports {
        let resp = console.post_json(&token, r);
        assert_eq!(resp.status, 201, "{}", resp.text());
    }
    // The fleet: both clusters, one waiting for its first report.
    let fleet = console.get_json("/api/v1/fleet");
    let clusters = fleet["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 2);
    assert_eq!(clusters[1]["health"]["level"], "grey");
    let html = client::get(&console.addr, "/").text();
    assert!(html.contains("store-pages") && html.contains("waiting for its first report"), "{html}");
    assert!(html.contains("MTTR "), "the tile shows the MTTR");
    // The cluster: statistics, plots, incidents, events, the current state.
    let stats = console.get_json("/api/v1/clusters/store-pages/stats?days=30");
    assert_eq!(stats["stats"]["failovers"], 1);
    let mttr = stats["stats"]["mttr_median_ms"].as_i64().unwrap();
    let page = client::get(&console.addr, "/clusters/store-pages");
    assert_eq!(page.status, 200);
    let html = page.text();
    for needle in
        ["MTTR median", "Incidents per", "<svg", "failover", "Cluster state", "node2", "Failed resource actions"]
    {
        assert!(html.contains(needle), "the cluster page lacks {needle:?}");
    }
    assert!(html.contains(&hastack::console::pages::format::duration_ms(mttr)));
    // The incident and its timeline.
    let incidents = console.get_json("/api/v1/clusters/store-pages/incidents");
    let incident_id = incidents["incidents"][0]["id"].as_i64().unwrap();
    let incident = console.get_json(&format!("/api/v1/incidents/{incident_id}"));
    assert_eq!(incident["incident"]["outcome"], "failover");
    let timeline = incident["timeline"].as_array().unwrap();
    assert!(timeline.len() >= 8, "the whole group's stop and start: {incident:#}");
    let own: Vec<_> =
        timeline.iter().filter(|e| e["incident_id"] == incident_id).map(|e| e["task"].as_str().unwrap()).collect();
    assert_eq!(own, vec!["monitor", "stop", "start"], "db's own events belong to the incident");
    let html = client::get(&console.addr, &format!("/incidents/{incident_id}")).text();
    assert!(html.contains("after detection") && html.contains("drbd promote on node2"), "{html}");
    // An event's reports and their snapshots, rendered, and the raw XML.
    let events = console.get_json("/api/v1/clusters/store-pages/events?limit=5");
    assert_eq!(events["events"].as_array().unwrap().len(), 5);
    assert!(events["next_before"].is_string());
    let older = console.get_json(&format!(
        "/api/v1/clusters/store-pages/events?limit=5&before={}",
        events["next_before"].as_str().unwrap()
    ));
    assert_ne!(older["events"][0]["id"], events["events"][0]["id"]);
    let failure_key = s.reports[failure]["idempotency_key"].as_str().unwrap().to_string();
    let report_id = (1..=s.reports.len() as i64)
        .find(|id| console.get_json(&format!("/api/v1/reports/{id}"))["idempotency_key"] == failure_key.as_str())
        .unwrap();
    let snap = console.get_json(&format!("/api/v1/reports/{report_id}/snapshot"));
    assert_eq!(snap["snapshot"]["summary"]["failed_resources"], json!(["db"]), "{snap:#}");
    let html = client::get(&console.addr, &format!("/reports/{report_id}/snapshot")).text();
    for needle in ["Nodes", "Resources", "FAILED", "Fail-counts", "db_monitor_10000", "Promoted"] {
        assert!(html.contains(needle), "the snapshot page lacks {needle:?}");
    }
    let xml = client::get(&console.addr, &format!("/reports/{report_id}/snapshot.xml"));
    assert!(xml.text().starts_with("<pacemaker-result"), "{}", xml.text());
    // Unknown things are 404s, bad parameters 400s.
    assert_eq!(client::get(&console.addr, "/clusters/nope").status, 404);
    assert_eq!(client::get(&console.addr, "/api/v1/clusters/nope").status, 404);
    assert_eq!(client::get(&console.addr, "/api/v1/clusters/store-pages/stats?days=0").status, 400);
    assert_eq!(client::get(&console.addr, "/?only=purple").status, 400);
    // The API is documented where the console serves it.
    assert!(client::get(&console.addr, "/api").text().contains("GET /api/v1/fleet"));
}

/// Live updates for API clients: a report's cluster summary arrives on the event stream.
#[test]
fn the_event_stream_carries_each_changed_cluster() {
    let console = Console::start();
    let token = console.add_cluster("store-live");
    let mut stream = client::EventStream::open(&console.addr, "/api/v1/stream");
    let mut tiles = client::EventStream::open(&console.addr, "/live/fleet");
    // The subscriptions exist once the server answered their headers: post now.
    assert_eq!(console.post_json(&token, &simple_report("store-live", fixtures::now_us(), 1)).status, 201);
    let (event, data) = stream.next_event();
    assert_eq!(event, "cluster");
    let summary: Value = serde_json::from_str(&data).unwrap();
    assert_eq!((summary["name"].as_str(), summary["reports"].as_i64()), (Some("store-live"), Some(1)));
    assert_eq!(summary["health"]["level"], "green");
    let (event, html) = tiles.next_event();
    assert_eq!(event, "tile");
    assert!(html.contains("class=\"tile green\"") && html.contains("store-live"), "{html}");
}

/// README.md's console commands, run as shown (the database from HASTACK_CONSOLE_DB).
#[test]
fn the_readme_console_commands_work_as_shown() {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let add = "hastack console cluster add store-042 > store-042.token";
    let list = "hastack console cluster list";
    for line in [add, "hastack console serve --listen 127.0.0.1:0", list] {
        assert!(readme.contains(line), "README.md no longer shows {line:?}");
    }
    let dir = tempfile::Builder::new().prefix("hst-console").tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("console.db").display());
    let path = format!("{}:{}", bin().parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let shell = |line: &str| {
        run_with_deadline(
            Command::new("sh")
                .args(["-c", line])
                .current_dir(dir.path())
                .env("PATH", &path)
                .env("HASTACK_CONSOLE_DB", &db),
            Duration::from_secs(30),
        )
    };
    shell(add).expect(0);
    let token = std::fs::read_to_string(dir.path().join("store-042.token")).unwrap();
    // `serve --listen 127.0.0.1:0` is what Console runs.
    let console = Console::start_with(tempfile::tempdir().unwrap(), db.clone());
    let r = console.post_json(token.trim(), &simple_report("store-042", fixtures::now_us(), 1));
    assert_eq!(r.status, 201, "{}", r.text());
    let out = shell(list);
    out.expect(0);
    assert!(out.stdout.lines().any(|l| l.starts_with("store-042 ") && l.contains(" 1 ")), "{}", out.stdout);

    // The node's side: the token installed for the alert, in a private mount namespace where
    // /etc is an overlay whose changes land in the test's directory (the host's /etc untouched).
    let install = readme_line("install -D -m 0640 -o root -g haclient store-042.token /etc/hastack/console.token");
    if need_root("an overlay over /etc") && need_program("unshare", "util-linux") {
        for sub in ["etc-upper", "etc-work"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let script = format!(
            "mount -t overlay overlay -o lowerdir=/etc,upperdir={0}/etc-upper,workdir={0}/etc-work /etc && {install}",
            dir.path().display()
        );
        let out = run_with_deadline(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sh", "-c", &script])
                .current_dir(dir.path())
                .env("PATH", &path),
            Duration::from_secs(30),
        );
        out.expect(0);
        let installed = dir.path().join("etc-upper/hastack/console.token");
        assert_eq!(std::fs::read_to_string(&installed).unwrap(), token);
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let meta = std::fs::metadata(&installed).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640);
        let haclient = sh("getent", &["group", "haclient"]);
        assert_eq!(meta.gid().to_string(), haclient.split(':').nth(2).unwrap().trim());
    }
}

/// crm_mon can time out on a node: its report is stored, the cluster keeps the last state it knew
/// and says why the newest report has none.
#[test]
fn a_report_without_a_snapshot_keeps_the_last_known_state() {
    let console = Console::start();
    let token = console.add_cluster("store-nosnap");
    let now = fixtures::now_us();
    assert_eq!(console.post_json(&token, &simple_report("store-nosnap", now - 60_000_000, 1)).status, 201);
    let alert = json!({
        "node": "node1", "nodeid": null, "desc": "ok", "task": "stop", "rc": 0, "rsc": "db", "interval": 0,
        "target_rc": 0, "status": 0, "exec_time": 40, "attribute_name": null, "attribute_value": null,
    });
    let bare = fixtures::make_report(
        "store-nosnap",
        "node1",
        now - 30_000_000,
        2,
        "resource",
        "operation_succeeded",
        "info",
        "db stop on node1: ok",
        alert,
        Value::Null,
        None,
    );
    assert_eq!(console.post_json(&token, &bare).status, 201);
    let c = console.cluster("store-nosnap");
    assert_eq!(c["snapshot"]["placement"]["db"], json!(["node1"]), "the last known state stays: {c:#}");
    assert_eq!(c["snapshot_error"], "crm_mon did not finish within 5 s");
    assert_eq!(c["last_event"]["summary"], "db stop on node1: ok");
    assert_eq!(c["health"]["level"], "green");
    let page = client::get(&console.addr, "/clusters/store-nosnap").text();
    assert!(page.contains("The latest report has no snapshot"), "{page}");
}

/// The line of README.md's console block that starts with `command` (its comment included, as a
/// shell reads it).
fn readme_line(command: &str) -> String {
    let readme = std::fs::read_to_string("README.md").unwrap();
    let line = readme.lines().map(str::trim).find(|l| l.split(" #").next().unwrap().trim_end() == command);
    line.unwrap_or_else(|| panic!("README.md no longer shows {command:?}")).to_string()
}

/// README.md's console lines that name fixed places (port 7480, the default database under
/// /var/lib/hastack/console, a PostgreSQL server on db.example) and `cluster rotate`, run exactly
/// as shown: inside a network namespace of the test's, each in a private mount namespace where
/// /var/lib and /etc/hosts are the test's (db.example is the namespace's loopback, where a
/// PostgreSQL server of the test's listens on 5432).
#[test]
fn the_readme_serve_and_rotate_lines_run_as_shown_in_a_namespace() {
    if !need_root("network and mount namespaces") || !pg::available() || !need_program("curl", "curl") {
        return;
    }
    let add = readme_line("hastack console cluster add store-042");
    let serve = readme_line("hastack console serve");
    let serve_pg =
        readme_line("hastack console serve --listen 0.0.0.0:7480 --db postgres://console@db.example/console");
    let rotate = readme_line("hastack console cluster rotate store-042");

    let ns = Netns::new("con");
    let dir = tempfile::Builder::new().prefix("hst-console-ns").tempdir().unwrap();
    let varlib = dir.path().join("varlib");
    std::fs::create_dir(&varlib).unwrap();
    let hosts = dir.path().join("hosts");
    std::fs::write(&hosts, "127.0.0.1 localhost\n127.0.0.1 db.example\n").unwrap();
    let path = format!("{}:{}", bin().parent().unwrap().display(), std::env::var("PATH").unwrap_or_default());
    let wrapped = |line: &str| {
        let script = format!(
            "mount --bind {} /var/lib && mount --bind {} /etc/hosts && exec {line}",
            varlib.display(),
            hosts.display()
        );
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns.name, "unshare", "--mount", "--propagation", "private", "sh", "-c", &script])
            .current_dir(dir.path())
            .env("PATH", &path)
            .env_remove("HASTACK_CONSOLE_DB");
        cmd
    };
    let report_file = dir.path().join("report.json");
    let post = |token: &str, seq: i64| {
        let body = simple_report("store-042", fixtures::now_us() - 10_000_000 + seq, seq);
        std::fs::write(&report_file, serde_json::to_vec(&body).unwrap()).unwrap();
        let auth = format!("Authorization: Bearer {}", token.trim());
        let (_, code) = ns.try_exec(
            "curl",
            &[
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "20",
                "-H",
                &auth,
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &format!("@{}", report_file.display()),
                "http://127.0.0.1:7480/api/v1/reports",
            ],
        );
        code
    };
    let fleet = || {
        let (ok, body) = ns.try_exec("curl", &["-s", "--max-time", "20", "http://127.0.0.1:7480/api/v1/fleet"]);
        assert!(ok, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };

    // The default database: /var/lib/hastack/console/console.db, its directory made 0750.
    let out = run_with_deadline(&mut wrapped(&add), Duration::from_secs(30));
    out.expect(0);
    let first = out.stdout.trim().to_string();
    let home = varlib.join("hastack/console");
    assert!(home.join("console.db").exists(), "no database under /var/lib/hastack/console");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&home).unwrap().permissions().mode() & 0o777, 0o750);
    {
        let console = Console::spawn(&mut wrapped(&serve), tempfile::tempdir().unwrap(), String::new());
        assert_eq!(console.addr, "127.0.0.1:7480", "the default address");
        assert_eq!(post(&first, 1), "201");
        // rotate: a new token; the old one stops working at once.
        let out = run_with_deadline(&mut wrapped(&rotate), Duration::from_secs(30));
        out.expect(0);
        let second = out.stdout.trim().to_string();
        assert_ne!(second, first);
        assert_eq!(post(&first, 2), "401", "the old token after rotate");
        assert_eq!(post(&second, 3), "201", "the new token");
        let clusters = fleet()["clusters"].clone();
        assert_eq!(clusters[0]["name"], "store-042");
        assert_eq!(clusters[0]["reports"], 2);
    }

    // PostgreSQL at db.example, as the console's user (the cluster registered the same way).
    let server = pg::Postgres::start_in(false, Some(&ns.name));
    server.admin_sql("CREATE ROLE console LOGIN");
    server.admin_sql("CREATE DATABASE console OWNER console");
    let mut add_pg = wrapped(&add);
    add_pg.env("HASTACK_CONSOLE_DB", "postgres://console@db.example/console");
    let out = run_with_deadline(&mut add_pg, Duration::from_secs(30));
    out.expect(0);
    let token = out.stdout.trim().to_string();
    let console = Console::spawn(&mut wrapped(&serve_pg), tempfile::tempdir().unwrap(), String::new());
    assert_eq!(console.addr, "0.0.0.0:7480");
    assert_eq!(post(&token, 4), "201");
    let clusters = fleet()["clusters"].clone();
    assert_eq!(clusters.as_array().unwrap().len(), 1);
    assert_eq!(clusters[0]["reports"], 1);
    drop(console);
    drop(server);
}

/// The real alert agent (the applet, run with the environment pacemaker-execd gives it, a
/// crm_mon snapshot of the running stack) reporting to a real console: a failed monitor and the
/// start in place after it are one restart, its MTTR the time between the two events; the
/// agent's retry of a report is stored once.
#[test]
fn the_alert_agents_own_reports_make_one_restart_with_its_mttr() {
    if !need_program("crm_mon", "pacemaker-cli-utils") || !need_program("crm_simulate", "pacemaker-cli-utils") {
        return;
    }
    let console = Console::start();
    let token = console.add_cluster("store-alert");
    let dir = tempfile::Builder::new().prefix("hst-console-alert").tempdir().unwrap();
    let token_file = dir.path().join("console.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let url = format!("http://{}/api/v1/reports", console.addr);
    let failed_at = fixtures::now_us() - 120_000_000;
    let started_at = failed_at + 3_500_000;
    let at = |run: crate::alert::AlertRun, us: i64| {
        run.var("timestamp_epoch", &(us / 1_000_000).to_string())
            .var("timestamp_usec", &format!("{:06}", us % 1_000_000))
            .recipient(&url)
            .cib(crate::alert::running_cib())
            .spool(&dir.path().join("spool"))
            .attr("cluster_id", "store-alert")
            .attr("token_file", token_file.to_str().unwrap())
    };
    let failed = at(crate::alert::resource("monitor", "haproxy", "node1", 7, 0, 10000), failed_at);
    let started = at(crate::alert::resource("start", "haproxy", "node1", 0, 0, 0), started_at);
    for run in [&failed, &started, &started] {
        let out = run.run();
        out.expect(0);
        assert!(out.stderr.contains("delivered"), "{}", out.stderr);
    }
    let c = console.cluster("store-alert");
    assert_eq!((c["reports"].as_i64(), c["events"].as_i64()), (Some(2), Some(2)), "the retry is stored once: {c:#}");
    let list = console.get_json("/api/v1/clusters/store-alert/incidents")["incidents"].clone();
    let incidents = list.as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{list:#}");
    let i = &incidents[0];
    assert_eq!(i["outcome"], "restart", "{i:#}");
    assert_eq!(i["rsc"], "haproxy");
    assert_eq!(i["detected_us"], failed_at);
    assert_eq!(i["recovered_us"], started_at);
    assert!(c["snapshot"]["placement"]["haproxy"].is_array(), "the agent's crm_mon snapshot is read: {c:#}");
}

/// README's console section: the two pcs lines that point the alert at the console, run as shown
/// against an empty CIB (CIB_file, pcs -f: as the alert tests run the alert section's lines).
#[test]
fn the_readme_pcs_lines_point_the_alert_at_the_console() {
    if !need_program("pcs", "pcs") || !need_program("cibadmin", "pacemaker-cli-utils") {
        return;
    }
    let create = readme_line(
        "pcs alert create id=hastack path=/usr/lib/hastack/alert options cluster_id=store-042 meta timeout=30s",
    );
    let recipient = readme_line(
        "pcs alert recipient add hastack value=https://console.example.com/api/v1/reports id=hastack-console",
    );
    let dir = tempfile::Builder::new().prefix("hst-console-cib").tempdir().unwrap();
    let cib = dir.path().join("cib.xml");
    std::fs::write(&cib, sh("cibadmin", &["--empty"])).unwrap();
    let script = format!(
        "set -e\nexport CIB_file={}\npcs() {{ command pcs -f \"$CIB_file\" \"$@\"; }}\n{create}\n{recipient}\n",
        cib.display()
    );
    run_with_deadline(Command::new("sh").args(["-c", &script]), Duration::from_secs(120)).expect(0);
    let xml = std::fs::read_to_string(&cib).unwrap();
    let alerts = xml.split("<alerts>").nth(1).unwrap_or_else(|| panic!("no alerts in\n{xml}"));
    for needle in [
        "<alert id=\"hastack\" path=\"/usr/lib/hastack/alert\"",
        "name=\"cluster_id\" value=\"store-042\"",
        "name=\"timeout\" value=\"30s\"",
        "<recipient id=\"hastack-console\" value=\"https://console.example.com/api/v1/reports\"",
    ] {
        assert!(alerts.contains(needle), "{needle} missing from\n{alerts}");
    }
}
