//! Requirements, recommendations and the fleet comparison on reports made from crm_simulate runs
//! of the hastack stack (fixtures.rs): the shipped rules on the settled stack, a stricter rule
//! that fails and shows its evidence, a fail-count at its threshold, failed fencing, repeated
//! timeouts and failovers, a silent node; over HTTP, a cluster three times slower than the fleet
//! flagged on the fleet table, its page and the API; a bad rules file refused with its rule and
//! field.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use hastack::console::advice::{advise, latest_snapshot, Advice};
use hastack::console::rules::{Finding, RuleSet, Status};
use serde_json::Value;

use super::fixtures::{self, Scenario};
use super::*;

const DAY_US: i64 = 86_400_000_000;

fn shipped_rules() -> RuleSet {
    RuleSet::load(Some(Path::new("crm-config/console-rules.toml"))).unwrap()
}

/// The scenario's reports stored in a fresh SQLite store, then the cluster's advice under `rules`.
fn advice_of(s: &Scenario, rules: &RuleSet) -> Advice {
    let t = sqlite_store();
    register(&t.store, &s.cluster);
    ingest(&t.store, &s.cluster, &s.reports);
    let c = t.store.cluster(&s.cluster).unwrap().unwrap();
    let snapshot = latest_snapshot(&t.store, &c).unwrap();
    assert!(snapshot.is_some(), "the latest report carries crm_mon's XML");
    advise(&t.store, rules, &c, snapshot.as_ref(), fixtures::now_us()).unwrap()
}

fn finding<'a>(a: &'a Advice, rule: &str) -> &'a Finding {
    a.findings.iter().find(|f| f.rule == rule).unwrap_or_else(|| panic!("no finding {rule}: {:#?}", a.findings))
}

#[test]
fn the_shipped_rules_pass_on_the_hastack_stack_and_a_stricter_monitor_rule_fails_with_its_evidence() {
    if !fixtures::available() {
        return;
    }
    let mut s = Scenario::new("store-rules", fixtures::now_us() - DAY_US);
    s.advance_ms(60_000);
    s.monitor_fails("haproxy", 10000, "node1", 7, 1500);
    let a = advice_of(&s, &shipped_rules());
    assert_eq!(a.rules_version, "hastack-defaults-2026-12-01");
    for rule in ["fencing-enabled", "fence-devices-monitored", "monitor-interval", "migration-threshold", "mttr"] {
        assert_eq!(finding(&a, rule).status, Status::Pass, "{:#?}", finding(&a, rule));
    }
    assert_eq!(
        finding(&a, "fence-devices-monitored").evidence,
        vec!["fence-node1 every 1 min 00 s, fence-node2 every 1 min 00 s"]
    );
    assert_eq!(finding(&a, "migration-threshold").evidence, vec!["11 resources, migration-threshold 3"]);
    // One restart (stop and start, 1.5 s apart) measured.
    assert_eq!(finding(&a, "mttr").evidence, vec!["MTTR p90 3.0 s over 1 recoveries in 90 days (limit 1 min 00 s)"]);
    // The haproxy failure counts once; migration-threshold is 3.
    assert_eq!(finding(&a, "fail-count-below-threshold").status, Status::Pass);
    let links = finding(&a, "corosync-two-links");
    assert_eq!(links.status, Status::NoData);
    assert!(links.evidence[0].contains("corosync-cfgtool -s"), "{links:#?}");
    assert_eq!(finding(&a, "fence-success").status, Status::NoData, "no fencing happened");
    assert!(a.recommendations.is_empty(), "{:#?}", a.recommendations);

    // The same cluster against stricter requirements: DRBD's unpromoted instance and the
    // filesystem are monitored every 20 s.
    let strict =
        std::fs::read_to_string("crm-config/console-rules.toml").unwrap().replace("max = \"30s\"", "max = \"15s\"");
    let a = advice_of(&s, &RuleSet::parse(&strict, "strict").unwrap());
    let f = finding(&a, "monitor-interval");
    assert_eq!(f.status, Status::Fail);
    let mut evidence = f.evidence.clone();
    evidence.sort();
    assert_eq!(
        evidence,
        vec!["drbd: monitor every 20.0 s (more than 15.0 s)", "fs: monitor every 20.0 s (more than 15.0 s)"]
    );
    let rec =
        a.recommendations.iter().find(|r| r.rule.as_deref() == Some("monitor-interval")).expect("a recommendation");
    assert!(rec.title.contains("pcs resource op add"), "{rec:#?}");
    assert!(rec.evidence.contains(&"drbd: monitor every 20.0 s (more than 15.0 s)".to_string()), "{rec:#?}");
}

#[test]
fn a_fail_count_at_its_threshold_failed_fencing_and_repeated_failovers_and_timeouts_are_found_and_recommended() {
    if !fixtures::available() {
        return;
    }
    let mut s = Scenario::new("store-pattern", fixtures::now_us() - 3 * DAY_US);
    s.advance_ms(60_000);
    // db reaches migration-threshold=3 on node1 and fails over to node2...
    s.set_fail_count("db#monitor_10000", "node1", 2);
    s.monitor_fails("db", 10000, "node1", 7, 1000);
    s.advance_ms(3_600_000);
    // ...then on node2, back to node1 once node1's count was cleaned up.
    s.set_fail_count("db#monitor_10000", "node1", 0);
    s.set_fail_count("db#monitor_10000", "node2", 2);
    s.monitor_fails("db", 10000, "node2", 7, 1000);
    s.advance_ms(3_600_000);
    // haproxy's monitor times out three times (restarted in place, then moved).
    let mut timeouts = Vec::new();
    for _ in 0..3 {
        timeouts.push(s.monitor_fails("haproxy", 10000, "node1", 1, 800));
        s.advance_ms(600_000);
    }
    for &k in &timeouts {
        // What Pacemaker sends for a timeout: execution status 2, "Timed Out" (docs/reports.md);
        // neither is part of the idempotency key.
        let alert = &mut s.reports[k]["event"]["alert"];
        alert["status"] = 2.into();
        alert["desc"] = "Timed Out".into();
    }
    // A fencing attempt fails.
    let xml = s.crm_mon();
    s.fencing_report("node2", "node1", false, &xml);

    let a = advice_of(&s, &shipped_rules());
    let f = finding(&a, "fail-count-below-threshold");
    assert_eq!(f.status, Status::Fail, "{f:#?}");
    assert!(
        f.evidence.iter().any(|e| e.starts_with("db on node2: fail-count 3 reached migration-threshold 3")),
        "{f:#?}"
    );
    let f = finding(&a, "fence-success");
    assert_eq!(
        (f.status, f.evidence.clone()),
        (Status::Fail, vec!["0 of 1 fencing operations succeeded (0%, required 100%); 1 failed".to_string()])
    );

    let kinds: Vec<&str> = a.recommendations.iter().map(|r| r.kind).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "rule").count(), 2, "{kinds:?}");
    let fencing = a.recommendations.iter().find(|r| r.kind == "fencing_failed").expect("fencing recommendation");
    assert!(fencing.title.contains("check the UPS"), "{fencing:#?}");
    assert_eq!(fencing.evidence.len(), 1);
    let timeouts = a.recommendations.iter().find(|r| r.kind == "repeated_timeouts").expect("timeouts recommendation");
    assert!(timeouts.title.starts_with("haproxy monitor timed out 3 times: raise its timeout"), "{timeouts:#?}");
    assert_eq!(timeouts.evidence[0], "3 timeouts of haproxy monitor (every 10.0 s) on node1");
    let failovers =
        a.recommendations.iter().find(|r| r.kind == "repeated_failovers").expect("failovers recommendation");
    assert!(
        failovers.title.starts_with("db reached its migration-threshold and failed over 2 times"),
        "{failovers:#?}"
    );
    assert_eq!(failovers.evidence.len(), 2);
    assert!(
        failovers.evidence[0].ends_with("node1 → node2") && failovers.evidence[1].ends_with("node2 → node1"),
        "{failovers:#?}"
    );
    // The critical ones come first.
    assert_eq!(a.recommendations[0].severity, hastack::console::rules::Severity::Critical);
    assert!(!kinds.contains(&"node_silent"), "both nodes reported: {kinds:?}");
}

#[test]
fn a_node_silent_for_a_week_while_its_peer_reports_is_recommended_a_look() {
    if !fixtures::available() {
        return;
    }
    let mut s = Scenario::new("store-silent", fixtures::now_us() - 20 * DAY_US);
    // node1 reports a restart of haproxy (it runs there)...
    s.monitor_fails("haproxy", 10000, "node1", 7, 1000);
    s.advance_ms(8 * DAY_US / 1000);
    // ...and eight days later only node2 reports (the web clone instance there fails).
    s.monitor_fails("web", 10000, "node2", 7, 1000);
    let a = advice_of(&s, &shipped_rules());
    let silent: Vec<_> = a.recommendations.iter().filter(|r| r.kind == "node_silent").collect();
    assert_eq!(silent.len(), 1, "{:#?}", a.recommendations);
    assert!(silent[0].title.starts_with("node1 reports nothing for too long"), "{:#?}", silent[0]);
    assert!(silent[0].evidence[0].starts_with("node1 last reported "), "{:#?}", silent[0]);
}

fn post_all(console: &Console, token: &str, reports: &[Value]) {
    for r in reports {
        let resp = console.post_json(token, r);
        assert!(resp.status == 201 || resp.status == 200, "{}: {}", resp.status, resp.text());
    }
}

/// Four stores restart a failed monitor in place; one takes four times as long. The fleet table
/// (page and API) and that store's page flag it; its page shows the requirements and the advice.
#[test]
fn a_store_whose_restarts_take_four_times_the_fleets_is_flagged_on_the_fleet_table_and_its_page() {
    if !fixtures::available() {
        return;
    }
    let console = Console::start();
    for (name, step_ms) in [("shop-a", 1000), ("shop-b", 1100), ("shop-c", 900), ("shop-slow", 4000)] {
        let token = console.add_cluster(name);
        let mut s = Scenario::new(name, fixtures::now_us() - DAY_US);
        s.monitor_fails("haproxy", 10000, "node1", 7, step_ms);
        post_all(&console, &token, &s.reports);
    }
    let c = console.get_json("/api/v1/fleet/compare?days=30");
    assert_eq!(c["window_days"], 30);
    let metric = c["metrics"].as_array().unwrap().iter().find(|m| m["metric"] == "mttr_median_ms").unwrap().clone();
    assert_eq!((metric["clusters"].as_i64(), metric["median"].as_f64()), (Some(4), Some(2000.0)), "{metric:#}");
    let rows = c["clusters"].as_array().unwrap();
    let row = |n: &str| rows.iter().find(|r| r["name"] == n).unwrap().clone();
    let slow = row("shop-slow");
    assert_eq!(slow["cells"][0]["value"].as_f64(), Some(8000.0), "{slow:#}");
    assert_eq!(slow["cells"][0]["outlier"], true, "{slow:#}");
    assert_eq!(slow["outliers"][0], "MTTR median 8.0 s is 4.0× the fleet's median (2.0 s)");
    for n in ["shop-a", "shop-b", "shop-c"] {
        assert_eq!(row(n)["outliers"].as_array().map(Vec::len), Some(0), "{:#}", row(n));
    }
    let page = client::get(&console.addr, "/fleet/compare?days=30");
    assert_eq!(page.status, 200);
    let html = page.text();
    assert!(
        html.contains("MTTR median 8.0 s is 4.0× the fleet&#39;s median (2.0 s)")
            || html.contains("MTTR median 8.0 s is 4.0× the fleet's median (2.0 s)"),
        "{html}"
    );
    assert!(html.contains("data-cluster=\"shop-slow\""));

    let page = client::get(&console.addr, "/clusters/shop-slow?days=30").text();
    for part in [
        "id=\"requirements\"",
        "data-rule=\"monitor-interval\"",
        "id=\"recommendations\"",
        "id=\"fleet-comparison\"",
        "is 4.0× the fleet",
    ] {
        assert!(page.contains(part), "the cluster page has {part}: {page}");
    }
    let findings = console.get_json("/api/v1/clusters/shop-slow/findings");
    assert_eq!(findings["rules_source"], "built-in", "{findings:#}");
    assert_eq!(findings["failed"], 0, "{findings:#}");
    let rules = console.get_json("/api/v1/rules");
    assert_eq!(rules["rules"]["rules"].as_array().map(Vec::len), Some(8));
    let recs = console.get_json("/api/v1/clusters/shop-slow/recommendations");
    assert_eq!(recs["recommendations"], serde_json::json!([]));
    assert_eq!(client::get(&console.addr, "/api/v1/clusters/nope/findings").status, 404);
}

/// `serve --rules FILE` with a mistake in a rule: refused before listening, naming the rule and
/// its field; a good file is used (its version in the findings).
#[test]
fn serve_refuses_a_bad_rules_file_naming_the_rule_and_field_and_uses_a_good_one() {
    let dir = tempfile::Builder::new().prefix("hst-console-rules").tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    let shipped = std::fs::read_to_string("crm-config/console-rules.toml").unwrap();
    std::fs::write(&bad, shipped.replace("max = \"30s\"", "max = \"thirty\"")).unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let out = run_with_deadline(
        Command::new(bin())
            .args(["console", "serve", "--listen", "127.0.0.1:0", "--rules"])
            .arg(&bad)
            .env("HASTACK_CONSOLE_DB", &db),
        Duration::from_secs(30),
    );
    out.expect(1);
    assert!(
        out.stderr.contains(&format!(
            "rules file {}: rule \"monitor-interval\" (rule 3): field max: \"thirty\" is not a duration",
            bad.display()
        )),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty(), "nothing listened: {}", out.stdout);

    let good = dir.path().join("rules.toml");
    std::fs::write(&good, shipped.replace("hastack-defaults-2026-12-01", "store-policy-7")).unwrap();
    let mut serve = Command::new(bin());
    serve.args(["console", "serve", "--listen", "127.0.0.1:0", "--rules"]).arg(&good).env("HASTACK_CONSOLE_DB", &db);
    let console = Console::spawn(&mut serve, tempfile::Builder::new().prefix("hst-console").tempdir().unwrap(), db);
    let rules = console.get_json("/api/v1/rules");
    assert_eq!(rules["rules"]["version"], "store-policy-7");
    assert_eq!(rules["rules"]["source"], good.display().to_string());
}
