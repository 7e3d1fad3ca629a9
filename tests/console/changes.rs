//! Configuration changes recorded on the console (the audit log) and the pull API the node agent
//! uses: who asked is required, a Corosync timing change is refused with the manual steps, bad
//! fields are named, only the cluster's own token sees and reports on its changes, a finished
//! change takes no more steps. (The node side, `hastack agent apply`, is tested under the real
//! Pacemaker in tests/agent.rs; here the test speaks its API.)

use serde_json::{json, Value};

use super::*;

fn post(console: &Console, path: &str, headers: &[(&str, &str)], body: &Value) -> client::Response {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    client::request(&console.addr, "POST", path, &h, Some(&serde_json::to_vec(body).unwrap()))
}

#[test]
fn a_change_is_recorded_with_who_asked_and_its_steps_are_the_audit_log() {
    let console = Console::start();
    let token = console.add_cluster("store-change");
    let other = console.add_cluster("store-other");
    let path = "/api/v1/clusters/store-change/changes";
    let monitor = json!({ "kind": "operation", "resource": "haproxy", "operation": "monitor",
                          "interval": "10s", "new_interval": "5s" });

    let r = post(&console, path, &[], &json!({ "change": monitor }));
    assert_eq!(r.status, 422, "{}", r.text());
    assert!(r.text().contains("requested_by"), "{}", r.text());
    let r = post(
        &console,
        path,
        &[],
        &json!({ "requested_by": "alice",
        "change": { "kind": "operation", "resource": "haproxy", "operation": "monitor", "new_interval": "soon" } }),
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("new_interval \\\"soon\\\": expected a Pacemaker duration"), "{}", r.text());
    let r = post(
        &console,
        path,
        &[],
        &json!({ "requested_by": "alice",
        "change": { "kind": "corosync_timing", "name": "token", "value": "5000" } }),
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("never pushed") && r.text().contains("Manual steps"), "{}", r.text());
    assert_eq!(console.get_json(path)["changes"], json!([]), "nothing refused is recorded");

    // The reverse proxy's user wins over the body's.
    let r = post(&console, path, &[("X-Remote-User", "bob")], &json!({ "requested_by": "alice", "change": monitor }));
    assert_eq!(r.status, 201, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let list = console.get_json(path)["changes"].clone();
    assert_eq!(list[0]["requested_by"], "bob");
    assert_eq!(list[0]["state"], "requested");
    assert_eq!(list[0]["spec"]["new_interval"], "5s");

    // The node agent's side: its cluster's token only.
    let next = "/api/v1/agent/changes/next";
    assert_eq!(client::get(&console.addr, next).status, 401);
    let auth = format!("Bearer {token}");
    let r = client::request(&console.addr, "GET", next, &[("Authorization", &auth)], None);
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["change"]["id"], id);
    let other_auth = format!("Bearer {other}");
    assert_eq!(client::request(&console.addr, "GET", next, &[("Authorization", &other_auth)], None).status, 204);
    let steps = format!("/api/v1/agent/changes/{id}/steps");
    let step = |auth: &str, body: Value| post(&console, &steps, &[("Authorization", auth)], &body);
    let r = step(&other_auth, json!({ "node": "node1", "step": "plan", "ok": true, "detail": "x" }));
    assert_eq!(r.status, 409, "another cluster cannot report on it: {}", r.text());
    assert_eq!(step(&auth, json!({ "node": "node1", "step": "guess", "ok": true, "detail": "" })).status, 422);
    let plan = "epoch 41: op haproxy-monitor-interval-10s interval 10s -> 5s";
    assert_eq!(step(&auth, json!({ "node": "node1", "step": "plan", "ok": true, "detail": plan })).status, 201);
    assert_eq!(console.get_json(path)["changes"][0]["state"], "in_progress");
    assert_eq!(step(&auth, json!({ "node": "node1", "step": "commit", "ok": true, "detail": "epoch 42" })).status, 201);
    let r = step(
        &auth,
        json!({ "node": "node1", "step": "verify", "ok": true, "detail": "crm_verify -L: ok", "state": "applied" }),
    );
    assert_eq!(r.status, 201);
    let c = console.get_json(path)["changes"][0].clone();
    assert_eq!(c["state"], "applied", "{c:#}");
    assert_eq!(c["detail"], "crm_verify -L: ok");
    let names: Vec<&str> = c["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
    assert_eq!(names, ["plan", "commit", "verify"]);
    assert_eq!(c["steps"][0]["detail"], plan);
    let r = step(&auth, json!({ "node": "node1", "step": "rollback", "ok": true, "detail": "late" }));
    assert_eq!(r.status, 409, "a finished change takes no more steps: {}", r.text());
    assert_eq!(client::request(&console.addr, "GET", next, &[("Authorization", &auth)], None).status, 204);
}

/// The change store on both databases: recorded, pending until a final step, steps in order.
#[test]
fn changes_and_their_steps_are_stored_alike_in_sqlite_and_postgresql() {
    use hastack::console::changes::{self, Spec, Step};
    on_both_stores(|t| {
        changes::create_tables(&t.store).unwrap();
        changes::create_tables(&t.store).unwrap();
        let cluster = register(&t.store, "store-db");
        let spec = Spec::Maintenance { enabled: true };
        let id = changes::record(&t.store, cluster, "carol", &spec, 1000).unwrap();
        assert_eq!(changes::next_pending(&t.store, cluster).unwrap().map(|c| c.id), Some(id), "{}", t.label);
        let step =
            |s: &str, time_us| Step { time_us, node: "node2".into(), step: s.into(), ok: true, detail: s.into() };
        assert_eq!(changes::add_step(&t.store, cluster, id, &step("plan", 2000), None).unwrap(), None);
        assert!(changes::add_step(&t.store, cluster + 1, id, &step("commit", 2500), None).unwrap().is_some());
        assert_eq!(changes::add_step(&t.store, cluster, id, &step("commit", 3000), Some("applied")).unwrap(), None);
        let c = &changes::list(&t.store, cluster, 10).unwrap()[0];
        assert_eq!(
            (c.state.as_str(), c.requested_by.as_str(), c.detail.as_deref()),
            ("applied", "carol", Some("commit")),
            "{}",
            t.label
        );
        assert_eq!(c.steps.iter().map(|s| s.step.as_str()).collect::<Vec<_>>(), ["plan", "commit"]);
        assert_eq!(c.known(), Some(spec));
        assert!(changes::next_pending(&t.store, cluster).unwrap().is_none(), "{}", t.label);
    });
}

fn form_post(console: &Console, path: &str, headers: &[(&str, &str)], body: &str) -> client::Response {
    let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
    h.extend_from_slice(headers);
    client::request(&console.addr, "POST", path, &h, Some(body.as_bytes()))
}

/// The changes page without JavaScript: the cluster page links it; its forms record a change
/// (303 to it, as a browser follows), a bad one is shown again with the reason and what was sent
/// (422, nothing recorded), a cross-site post is refused (403); the page shows each change with
/// who asked, its life and its steps' output, and the JSON API lists the same.
#[test]
fn the_changes_page_records_a_change_from_its_form_and_shows_its_life() {
    let console = Console::start();
    let token = console.add_cluster("store-form");
    let page = "/clusters/store-form/changes";
    let cluster_page = client::get(&console.addr, "/clusters/store-form").text();
    assert!(cluster_page.contains(&format!("href=\"{page}\"")), "the cluster page links the changes page");
    let r = client::get(&console.addr, page);
    assert_eq!(r.status, 200);
    for form in ["request-operation", "request-parameter", "request-migration_threshold", "request-maintenance"] {
        assert!(r.text().contains(&format!("id=\"{form}\"")), "{form} missing");
    }

    let r = form_post(&console, page, &[], "kind=migration_threshold&resource=db&value=three&requested_by=alice");
    assert_eq!(r.status, 422);
    assert!(r.text().contains("value &quot;three&quot;: expected a whole number"), "{}", r.text());
    assert!(r.text().contains("value=\"three\""), "the form keeps what was sent");
    let r = form_post(&console, page, &[], "kind=maintenance&enabled=true&requested_by=");
    assert_eq!(r.status, 422);
    assert!(r.text().contains("requested_by"), "{}", r.text());
    let r = form_post(
        &console,
        page,
        &[("Sec-Fetch-Site", "cross-site")],
        "kind=maintenance&enabled=true&requested_by=eve",
    );
    assert_eq!(r.status, 403);
    assert_eq!(console.get_json("/api/v1/clusters/store-form/changes")["changes"], json!([]), "nothing recorded");

    let r = form_post(
        &console,
        page,
        &[("Sec-Fetch-Site", "same-origin")],
        "kind=operation&resource=db&operation=monitor&interval=10s&new_interval=5s&new_timeout=&requested_by=alice",
    );
    assert_eq!(r.status, 303, "{}", r.text());
    let list = console.get_json("/api/v1/clusters/store-form/changes")["changes"].clone();
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(r.header("Location"), Some(format!("{page}?requested={id}#change-{id}").as_str()));
    assert_eq!(
        list[0]["spec"],
        json!({ "kind": "operation", "resource": "db", "operation": "monitor",
        "interval": "10s", "new_interval": "5s", "new_timeout": null })
    );
    assert_eq!(list[0]["requested_by"], "alice");
    // The proxy's user wins over the form's.
    let r =
        form_post(&console, page, &[("X-Remote-User", "bob")], "kind=maintenance&enabled=false&requested_by=mallory");
    assert_eq!(r.status, 303);
    assert_eq!(console.get_json("/api/v1/clusters/store-form/changes")["changes"][0]["requested_by"], "bob");

    // The node's report, then the page.
    let auth = format!("Bearer {token}");
    let steps = format!("/api/v1/agent/changes/{id}/steps");
    let plan = "CIB 0.5.2: op db-monitor-10s: interval 10s -> 5s\n<diff format=\"2\"/>";
    let step = |body: Value| post(&console, &steps, &[("Authorization", &auth)], &body).status;
    assert_eq!(step(json!({ "node": "node1", "step": "plan", "ok": true, "detail": plan })), 201);
    assert_eq!(step(json!({ "node": "node1", "step": "commit", "ok": true, "detail": "CIB 0.5.2 -> 0.6.0" })), 201);
    let why = "crm_verify -L -V failed (1): error: bad op";
    assert_eq!(step(json!({ "node": "node1", "step": "verify", "ok": false, "detail": why })), 201);
    let back = format!("restored <primitive id=\"db\"> because {why}");
    assert_eq!(
        step(json!({ "node": "node1", "step": "rollback", "ok": true, "detail": back, "state": "rolled_back" })),
        201
    );
    let html = client::get(&console.addr, &format!("{page}?requested={id}")).text();
    let section = html.split(&format!("id=\"change-{id}\"")).nth(1).unwrap().split("</section>").next().unwrap();
    assert!(section.contains("db monitor (every 10s): interval → 5s"), "{section}");
    assert!(section.contains("requested by <b>alice</b>"), "{section}");
    assert!(
        section.contains("<li class=\"done\">planned</li>") && section.contains("<li class=\"failed\">verified</li>"),
        "{section}"
    );
    assert!(
        section.contains("rolled back: </b>restored &lt;primitive id=&quot;db&quot;&gt; because crm_verify"),
        "{section}"
    );
    assert!(section.contains("&lt;diff format=&quot;2&quot;/&gt;"), "each step's output, escaped: {section}");
    assert!(html.contains(&format!("Change #{id} recorded")), "the redirect's notice");
    assert!(!html.contains("http-equiv=\"refresh\""), "a page with forms does not refresh itself");
    let cluster_page = client::get(&console.addr, "/clusters/store-form").text();
    assert!(
        cluster_page.contains("rolled back") && cluster_page.contains("maintenance-mode = false"),
        "{cluster_page}"
    );
}
