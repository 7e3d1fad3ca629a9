//! The console's benchmark (ignored; `bench/console.sh` runs it on a release build): a fleet of
//! 1,000 clusters with 1,000,000 stored events, then
//! - ingest throughput: real reports (a crm_mon snapshot of the hastack stack each, ~14 KB) POSTed
//!   over HTTP by keep-alive clients (8 unless BENCH_CLIENTS says), reports/s until every one
//!   was answered 201;
//! - fleet page latency: the console's own time for `GET /` (Server-Timing), 1,000 tiles;
//! - cluster page latency: `GET /clusters/NAME` and the JSON behind it, for 30 clusters, and the
//!   page just after a report for its cluster; and each part of the page timed on the store.
//!
//! BENCH_STORE=sqlite|postgresql (default sqlite), BENCH_CLUSTERS, BENCH_EVENTS, BENCH_REPORTS
//! override the sizes, BENCH_PAGES the cluster pages asked, BENCH_CLIENTS the clients sending at
//! once (a fleet's clusters report independently, so a burst reaches the console from many
//! connections). The prefill ingests one cluster's history through the store (not HTTP, the JSON
//! and XML work done once per kind of report) and copies its rows to the other clusters by SQL
//! (`copy_history`), so that a million events take minutes, not an hour.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use hastack::console::store::{deflate, ingest_batch, Accepted, Db, Dialect};
use serde_json::Value;

use super::fixtures::{self, key_of, Scenario};
use super::*;

/// CPU time (user + system, ms) used so far by `pids` and, with `children`, their children
/// (PostgreSQL's backends).
fn cpu_ms(pids: &[i32], children: bool) -> f64 {
    let tick = 1000.0 / nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).unwrap().unwrap() as f64;
    let mut all: Vec<i32> = pids.to_vec();
    if children {
        all.extend(
            hastack::sys::proc::all_pids()
                .into_iter()
                .filter(|p| hastack::sys::proc::stat(*p).is_some_and(|s| pids.contains(&s.ppid))),
        );
    }
    all.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .map(|stat| {
            // Fields after the command's closing parenthesis: utime and stime are the 12th and 13th.
            let rest = &stat[stat.rfind(')').unwrap() + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) * tick
        })
        .sum()
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The kinds of report a cluster's history is made of, cycled: a restart in place and a
/// failover of the data group (real crm_simulate output, see fixtures.rs).
fn templates() -> Vec<Value> {
    let mut s = Scenario::new("bench-template", fixtures::now_us() - 400 * 86_400_000_000);
    s.monitor_fails("db", 10000, "node1", 7, 1500);
    s.set_fail_count("db#monitor_10000", "node1", 2);
    s.monitor_fails("db", 10000, "node1", 7, 1000);
    s.reports
}

/// `template` for another cluster, time and sequence, with its key recomputed.
fn variant(template: &Value, cluster: &str, time_us: i64, seq: i64) -> Value {
    let mut r = template.clone();
    r["cluster"]["id"] = cluster.into();
    r["event"]["time"]["epoch"] = (time_us / 1_000_000).into();
    r["event"]["time"]["usec"] = (time_us % 1_000_000).into();
    r["event"]["time"]["node_sequence"] = seq.into();
    r["snapshot"]["taken_at"]["epoch"] = (time_us / 1_000_000).into();
    r["idempotency_key"] = key_of(&r).into();
    r
}

/// Copies cluster `from`'s events, reports and incidents (ids up to `max_event`/`max_report`:
/// they are all it has) to cluster `to`, the `c`-th: ids offset by `c` times the maxima, keys
/// made unique (their last 8 hex digits are `c`), times 1 ms later per cluster; then its row's
/// summary from `from`'s, with the same offsets.
fn copy_history(db: &mut dyn Db, from: i64, to: i64, c: i64, max_event: i64, max_report: i64) {
    let (event_off, report_off, time_off) = (c * max_event, c * max_report, c * 1000);
    db.exec(
        "INSERT INTO events (id, cluster_id, time_us, kind, category, severity, summary, node, rsc, task, \
         interval_ms, rc, target_rc, status, descr, fence_ref, fence_action, reporters, report_count, \
         primary_report_id, incident_id, placement, time_flag) \
         SELECT id + $1, $2, time_us + $3, kind, category, severity, summary, node, rsc, task, interval_ms, rc, \
         target_rc, status, descr, fence_ref, fence_action, reporters, report_count, primary_report_id + $4, \
         incident_id + $1, placement, time_flag FROM events WHERE cluster_id = $5 AND id <= $6",
        &[event_off.into(), to.into(), time_off.into(), report_off.into(), from.into(), max_event.into()],
    )
    .unwrap();
    db.exec(
        "INSERT INTO reports (id, cluster_id, event_id, idem_key, reporter, received_us, event_time_us, \
         clock_ahead_ms, snapshot_us, snapshot_error, snapshot_summary, body) \
         SELECT id + $1, $2, event_id + $3, substr(idem_key, 1, 56) || $4, reporter, received_us, \
         event_time_us + $5, clock_ahead_ms, snapshot_us + $5, snapshot_error, snapshot_summary, body \
         FROM reports WHERE id <= $6",
        &[
            report_off.into(),
            to.into(),
            event_off.into(),
            format!("{c:08x}").into(),
            time_off.into(),
            max_report.into(),
        ],
    )
    .unwrap();
    db.exec(
        "INSERT INTO incidents (id, cluster_id, kind, rsc, node, detected_us, recovered_us, outcome, mttr_ms, \
         recovered_on, affected, pending, fence_ok, fence_failed, summary) \
         SELECT id + $1, $2, kind, rsc, node, detected_us + $3, recovered_us + $3, outcome, mttr_ms, recovered_on, \
         affected, pending, fence_ok, fence_failed, summary FROM incidents WHERE cluster_id = $4",
        &[event_off.into(), to.into(), time_off.into(), from.into()],
    )
    .unwrap();
    db.exec(
        "UPDATE clusters SET (cluster_name, id_source, reports, events, first_event_us, last_report_us, \
         last_event_id, last_event_us, last_event_summary, last_event_severity, snapshot_us, snapshot_report_id, \
         snapshot_summary, snapshot_error, open_incidents, open_down, open_since_us, open_summary, \
         last_incident_us, recent_mttr, derive_cursor_us, derive_placement) = \
         (SELECT cluster_name, id_source, reports, events, first_event_us + $1, last_report_us, \
         last_event_id + $2, last_event_us + $1, last_event_summary, last_event_severity, snapshot_us + $1, \
         snapshot_report_id + $3, snapshot_summary, snapshot_error, open_incidents, open_down, \
         open_since_us + $1, open_summary, last_incident_us + $1, recent_mttr, derive_cursor_us + $1, \
         derive_placement FROM clusters WHERE id = $4) WHERE id = $5",
        &[time_off.into(), event_off.into(), report_off.into(), from.into(), to.into()],
    )
    .unwrap();
}

#[test]
#[ignore = "benchmark: run by bench/console.sh on a release build"]
fn console_benchmark() {
    if !fixtures::available() {
        return;
    }
    let backend = std::env::var("BENCH_STORE").unwrap_or_else(|_| "sqlite".into());
    let clusters = env_or("BENCH_CLUSTERS", 1000);
    let events = env_or("BENCH_EVENTS", 1_000_000);
    let measured = env_or("BENCH_REPORTS", 20_000);
    let senders = env_or("BENCH_CLIENTS", 8);
    let templates = templates();
    let per_cluster = events / clusters;

    let dir = tempfile::Builder::new().prefix("hst-console-bench").tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let pg = (backend == "postgresql").then(|| pg::Postgres::start(true));
    let db = match &pg {
        Some(server) => server.database("bench"),
        None => format!("sqlite://{}", dir.path().join("console.db").display()),
    };
    let store = Store::open(&DbUrl::parse(&db).unwrap()).unwrap();
    let names: Vec<String> = (0..clusters).map(|k| format!("store-{k:04}")).collect();
    let tokens: Vec<String> = names
        .iter()
        .map(|n| {
            let t = token::generate().unwrap();
            store.add_cluster(n, &token::hash(&t), fixtures::now_us()).unwrap();
            t
        })
        .collect();

    // Prefill, in two steps so that a million events take minutes, not an hour:
    // 1. the first cluster's history over the past year, in time order, through the store's
    //    ingest (derivation, incidents, summary: the real writes), 500 reports a batch;
    // 2. every other cluster gets a copy of those rows by SQL (`copy_history`): same rows, sizes
    //    and indexes as ingest would leave, its own ids, keys and times (shifted by 1 ms a cluster).
    let start = Instant::now();
    let year_us = 365 * 86_400_000_000i64;
    let first_us = fixtures::now_us() - year_us - 3_600_000_000;
    let step_us = year_us / per_cluster as i64;
    let prepared: Vec<Accepted> = templates
        .iter()
        .map(|t| {
            let body = serde_json::to_vec(t).unwrap();
            let mut a =
                hastack::console::ingest::accept_report(&body, 0, "bench-template", fixtures::now_us()).unwrap();
            a.body = deflate(&body);
            a
        })
        .collect();
    let ids: Vec<i64> = names.iter().map(|n| store.cluster(n).unwrap().unwrap().id).collect();
    let mut conn = store.connect().unwrap();
    let mut batch = Vec::with_capacity(500);
    let mut stored = 0usize;
    for k in 0..per_cluster {
        let mut a = prepared[k % prepared.len()].clone();
        let t = first_us + k as i64 * step_us;
        a.cluster_id = ids[0];
        a.report.cluster.id = names[0].clone();
        a.report.event.time.epoch = t / 1_000_000;
        a.report.event.time.usec = t % 1_000_000;
        a.report.event.time.node_sequence = Some(k as i64);
        a.report.snapshot.taken_at.epoch = t / 1_000_000;
        a.report.idempotency_key = a.report.expected_key();
        a.time_us = t;
        batch.push(a);
        if batch.len() == 500 || k + 1 == per_cluster {
            stored += ingest_batch(conn.as_mut(), &batch).unwrap().0.iter().filter(|o| o.is_ok()).count();
            batch.clear();
        }
    }
    let through_store_s = start.elapsed().as_secs_f64();
    let max = |db: &mut dyn Db, table: &str| {
        db.query_one(&format!("SELECT MAX(id) FROM {table}"), &[]).unwrap().unwrap()[0].int().unwrap_or(0)
    };
    let (max_event, max_report) = (max(conn.as_mut(), "events"), max(conn.as_mut(), "reports"));
    for chunk in (1..clusters).collect::<Vec<_>>().chunks(50) {
        conn.begin().unwrap();
        for &c in chunk {
            copy_history(conn.as_mut(), ids[0], ids[c], c as i64, max_event, max_report);
        }
        conn.commit().unwrap();
        stored += per_cluster * chunk.len();
    }
    if conn.dialect() == Dialect::Postgres {
        // Explicit ids leave the identity sequences behind; autovacuum would analyse the tables.
        conn.batch(
            "SELECT setval(pg_get_serial_sequence('events', 'id'), (SELECT MAX(id) FROM events)); \
             SELECT setval(pg_get_serial_sequence('reports', 'id'), (SELECT MAX(id) FROM reports)); ANALYZE",
        )
        .unwrap();
    }
    drop(conn);
    let prefill_s = start.elapsed().as_secs_f64();
    let incidents: i64 =
        store.read(|db| Ok(db.query_one("SELECT COUNT(*) FROM incidents", &[])?.unwrap()[0].int().unwrap())).unwrap();
    eprintln!(
        "prefill: {stored} events, {incidents} incidents, {clusters} clusters in {prefill_s:.0} s \
         ({per_cluster} through the store in {through_store_s:.1} s, the rest copied)"
    );
    assert_eq!(stored, per_cluster * clusters);
    let parts = cluster_page_parts(&store, &names[0]);
    drop(store);

    let console =
        Console::start_with(tempfile::Builder::new().prefix("hst-console-run").tempdir().unwrap(), db.clone());

    // Ingest over HTTP: real, distinct reports, prepared before the clock starts.
    let bodies: Vec<(usize, Vec<u8>)> = (0..measured)
        .map(|k| {
            let c = k % clusters;
            let t = fixtures::now_us() - 3_000_000_000 + (k / clusters) as i64 * 10_000_000 + c as i64;
            let r = variant(&templates[(k / clusters) % templates.len()], &names[c], t, 1_000_000 + k as i64);
            (c, serde_json::to_vec(&r).unwrap())
        })
        .collect();
    let avg_kb = bodies.iter().map(|b| b.1.len()).sum::<usize>() as f64 / bodies.len() as f64 / 1024.0;
    let bodies = Arc::new(bodies);
    let tokens = Arc::new(tokens);
    let next = Arc::new(AtomicUsize::new(0));
    let server_pids: Vec<i32> =
        [Some(console.pid()), pg.as_ref().map(|p| p.postmaster())].into_iter().flatten().collect();
    let load_before = loadavg();
    let cpu_before = (cpu_ms(&[console.pid()], false), cpu_ms(&server_pids[1..], true));
    let start = Instant::now();
    let workers: Vec<_> = (0..senders)
        .map(|_| {
            let (bodies, tokens, next, addr) = (bodies.clone(), tokens.clone(), next.clone(), console.addr.clone());
            std::thread::spawn(move || {
                let mut conn = client::Connection::open(&addr);
                loop {
                    let k = next.fetch_add(1, Ordering::Relaxed);
                    let Some((c, body)) = bodies.get(k) else { return };
                    let auth = format!("Bearer {}", tokens[*c]);
                    let r = conn.send(
                        "POST",
                        "/api/v1/reports",
                        &[("Authorization", &auth), ("Content-Type", "application/json")],
                        Some(body),
                        true,
                    );
                    assert_eq!(r.status, 201, "{}", r.text());
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let ingest_s = start.elapsed().as_secs_f64();
    let rate = measured as f64 / ingest_s;
    let console_cpu = cpu_ms(&[console.pid()], false) - cpu_before.0;
    let db_cpu = cpu_ms(&server_pids[1..], true) - cpu_before.1;
    let load_after = loadavg();

    // The fleet page: the console's time per request, 1,000 tiles.
    let mut fleet_ms: Vec<f64> = Vec::new();
    let mut api_ms: Vec<f64> = Vec::new();
    let mut conn = client::Connection::open(&console.addr);
    let mut size = 0;
    let mut fleet_cpu = 0.0;
    for k in 0..60 {
        let before = cpu_ms(&server_pids, true);
        let page = conn.send("GET", "/", &[], None, true);
        if k >= 10 {
            fleet_cpu += cpu_ms(&server_pids, true) - before;
        }
        assert_eq!(page.status, 200);
        size = page.body.len();
        let api = conn.send("GET", "/api/v1/fleet", &[], None, true);
        assert_eq!(api.status, 200);
        if k >= 10 {
            fleet_ms.push(page.server_ms());
            api_ms.push(api.server_ms());
        }
    }
    let q = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1]
    };
    // A cluster's page and the API behind it, each request for another cluster (`BENCH_PAGES`
    // of them after 5 of warm-up): the page, then its JSON.
    let pages = env_or("BENCH_PAGES", 30);
    let cluster_paths = |name: &str| {
        [
            format!("/clusters/{name}"),
            format!("/api/v1/clusters/{name}"),
            format!("/api/v1/clusters/{name}/stats"),
            format!("/api/v1/clusters/{name}/findings"),
            format!("/api/v1/clusters/{name}/recommendations"),
            "/api/v1/fleet/compare".to_string(),
        ]
    };
    let mut cluster_ms: Vec<Vec<f64>> = vec![Vec::new(); 6];
    let mut cluster_size = 0;
    for k in 0..pages + 5 {
        let name = &names[(k * 7) % clusters];
        for (i, path) in cluster_paths(name).iter().enumerate() {
            let r = conn.send("GET", path, &[], None, true);
            assert_eq!(r.status, 200, "{path}");
            if k >= 5 {
                cluster_ms[i].push(r.server_ms());
            }
            if i == 0 {
                cluster_size = r.body.len();
            }
        }
    }
    // The first cluster page after a report: each time one more report for that cluster.
    let mut after_report_ms: Vec<f64> = Vec::new();
    for k in 0..10 {
        let c = (k * 13 + 3) % clusters;
        let t = fixtures::now_us() - 1_000_000_000 + k as i64 * 1_000_000;
        let r = variant(&templates[k % templates.len()], &names[c], t, 5_000_000 + k as i64);
        let auth = format!("Bearer {}", tokens[c]);
        let body = serde_json::to_vec(&r).unwrap();
        let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
        let posted = conn.send("POST", "/api/v1/reports", &headers, Some(&body), true);
        assert_eq!(posted.status, 201, "{}", posted.text());
        let page = conn.send("GET", &format!("/clusters/{}", names[c]), &[], None, true);
        assert_eq!(page.status, 200);
        after_report_ms.push(page.server_ms());
    }
    let total_events = console.get_json("/api/v1/fleet")["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["events"].as_i64().unwrap())
        .sum::<i64>();
    println!("console benchmark, store {backend}: {clusters} clusters, {total_events} events after the run; load average {load_before} before and {load_after} after the ingest");
    println!("| measure | value |");
    println!("|---|---|");
    println!(
        "| prefill: one cluster through the store, copied to the others by SQL | {stored} events in {prefill_s:.0} s ({per_cluster} through the store: {:.0} reports/s) |",
        per_cluster as f64 / through_store_s
    );
    println!("| ingest over HTTP, {senders} clients, {avg_kb:.1} KiB reports | **{rate:.0} reports/s** ({measured} in {ingest_s:.1} s) |");
    let per_report = (console_cpu + db_cpu) / measured as f64;
    println!(
        "| CPU per report: console + database server | {:.0} + {:.0} µs = {:.0} µs: {:.0} reports/s per core |",
        console_cpu * 1000.0 / measured as f64,
        db_cpu * 1000.0 / measured as f64,
        per_report * 1000.0,
        1000.0 / per_report
    );
    println!(
        "| fleet page `GET /`, server time, median / p95 | **{:.1} / {:.1} ms** ({} tiles, {} KiB) |",
        q(&mut fleet_ms, 0.5),
        q(&mut fleet_ms, 0.95),
        clusters,
        size / 1024
    );
    println!(
        "| fleet page, CPU per request (console + database server) | {:.1} ms |",
        fleet_cpu / fleet_ms.len() as f64
    );
    println!(
        "| `GET /api/v1/fleet`, server time, median / p95 | {:.1} / {:.1} ms |",
        q(&mut api_ms, 0.5),
        q(&mut api_ms, 0.95)
    );
    let labels = [
        format!("cluster page `GET /clusters/NAME` ({} KiB)", cluster_size / 1024),
        "`GET /api/v1/clusters/NAME`".to_string(),
        "`GET /api/v1/clusters/NAME/stats`".to_string(),
        "`GET /api/v1/clusters/NAME/findings`".to_string(),
        "`GET /api/v1/clusters/NAME/recommendations`".to_string(),
        "`GET /api/v1/fleet/compare`".to_string(),
    ];
    for (label, ms) in labels.iter().zip(cluster_ms.iter_mut()) {
        println!(
            "| {label}, server time, median / p95 of {} | **{:.1} / {:.1} ms** |",
            ms.len(),
            q(ms, 0.5),
            q(ms, 0.95)
        );
    }
    println!(
        "| cluster page just after a report for that cluster, median / max of {} | {:.1} / {:.1} ms |",
        after_report_ms.len(),
        q(&mut after_report_ms, 0.5),
        q(&mut after_report_ms, 1.0)
    );
    println!("{parts}");
}

/// Where a cluster page's time goes: each of its reads, timed on the store directly (before the
/// console starts, so nothing was read before), first and second call.
fn cluster_page_parts(store: &Store, name: &str) -> String {
    use hastack::console::{advice, changes, rules::RuleSet, stats::DAY_US};
    changes::create_tables(store).unwrap();
    let rules = RuleSet::load(None).unwrap();
    let now = fixtures::now_us();
    let days = 90;
    let mut out = String::from("\n| cluster page part (store calls, one cluster) | first / second call |\n|---|---|\n");
    let mut time = |label: &str, f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        let first = t.elapsed().as_secs_f64() * 1000.0;
        let t = Instant::now();
        f();
        out += &format!("| {label} | {first:.1} / {:.1} ms |\n", t.elapsed().as_secs_f64() * 1000.0);
    };
    let c = store.cluster(name).unwrap().unwrap();
    time("cluster row", &mut || {
        std::hint::black_box(store.cluster(name).unwrap());
    });
    time("stats (90 days)", &mut || {
        std::hint::black_box(store.stats(&c, days, now).unwrap());
    });
    time("incidents of the window", &mut || {
        std::hint::black_box(store.incidents(c.id, now - days * DAY_US, i64::MAX).unwrap());
    });
    time("open incidents", &mut || {
        std::hint::black_box(store.incidents(c.id, i64::MIN, 1000).unwrap());
    });
    time("50 events", &mut || {
        std::hint::black_box(store.events(c.id, None, 50).unwrap());
    });
    let mut snap = None;
    time("latest snapshot, parsed", &mut || snap = advice::latest_snapshot(store, &c).unwrap());
    time("advise (findings, recommendations)", &mut || {
        std::hint::black_box(advice::advise(store, &rules, &c, snap.as_ref(), now).unwrap());
    });
    time("fleet comparison", &mut || {
        std::hint::black_box(advice::fleet_comparison(store, days, now).unwrap());
    });
    time(
        "every cluster's statistics read from the rows, 2 queries a cluster (the comparison before issue 15)",
        &mut || {
            for c in store.fleet().unwrap() {
                let since = now - days * DAY_US;
                std::hint::black_box(store.incidents(c.id, since, i64::MAX).unwrap());
                store
                    .read(|db| {
                        db.query(
                            "SELECT category, COUNT(*) FROM events WHERE cluster_id = $1 AND time_us >= $2 \
                             AND kind = 'fencing' GROUP BY category",
                            &[c.id.into(), since.into()],
                        )
                    })
                    .unwrap();
            }
        },
    );
    time("last five changes", &mut || {
        std::hint::black_box(changes::list(store, c.id, 5).unwrap());
    });
    out
}
