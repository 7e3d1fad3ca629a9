//! The pages in a real browser: Debian's headless Chromium driven through chromedriver
//! (WebDriver, fantoccini). A failure report POSTed while the fleet page is open turns its tile
//! red without a reload; the recovery turns it back; the cluster page shows the requirement the
//! failover broke, and the fleet table its MTTR. Screenshots of the fleet, cluster, incident,
//! snapshot, findings and fleet comparison pages go to target/console-screenshots/. A change's
//! life: requested in the page, applied (or rolled back) by a real `hastack agent apply`, shown.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use super::fixtures::{self, Scenario};
use super::*;

const HOUR_US: i64 = 3_600_000_000;

/// chromedriver in a process group of its own, with the Chromium it starts; both killed on drop
/// (also when the test fails), with Chromium's profile in a temporary directory.
struct ChromeDriver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl ChromeDriver {
    fn start() -> ChromeDriver {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver");
        let profile = tempfile::Builder::new().prefix("hst-chromium").tempdir().unwrap();
        let driver = ChromeDriver { child, port, profile };
        wait_for("chromedriver to answer", Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                && client::get(&format!("127.0.0.1:{port}"), "/status").text().contains("\"ready\":true")
        });
        driver
    }
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        use nix::sys::signal::{kill, Signal};
        use nix::unistd::Pid;
        let pid = self.child.id() as i32;
        // Chromium's processes may leave the group (its zygote): take them by parentage too.
        let descendants = hastack::sys::proc::descendants(pid);
        let _ = kill(Pid::from_raw(-pid), Signal::SIGKILL);
        for p in &descendants {
            let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
        }
        let _ = self.child.wait();
        let left = hastack::sys::proc::wait_gone(&descendants, hastack::ocf::Deadline::after(Duration::from_secs(10)));
        if !left.is_empty() && !std::thread::panicking() {
            panic!("Chromium processes {left:?} survived SIGKILL");
        }
    }
}

async fn browser(driver: &ChromeDriver) -> Client {
    let profile = format!("--user-data-dir={}", driver.profile.path().display());
    let mut caps = serde_json::Map::new();
    // console-notes §3.3: without the networking flags Chromium stalls on this closed network.
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                     "--hide-scrollbars", "--force-device-scale-factor=1", profile],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a Chromium session")
}

async fn save(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let path = screenshot_dir().join(name);
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// The tile's classes, read by the browser.
async fn tile_class(c: &Client, id: &str) -> String {
    let v = c.execute(&format!("return document.getElementById('{id}').className"), vec![]).await.unwrap();
    v.as_str().unwrap_or_default().to_string()
}

async fn wait_class(c: &Client, id: &str, class: &str) {
    let start = std::time::Instant::now();
    loop {
        let now = tile_class(c, id).await;
        if now.split_whitespace().any(|k| k == class) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "tile {id} is {now:?}, not {class}, after 15 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A small fleet to look at: green, amber (a node down, a clock ahead) and red clusters.
fn populate(console: &Console) {
    let now = fixtures::now_us();
    let nodes_xml = |n2: &str, failed: bool| {
        format!(
            r#"<pacemaker-result api-version="2.25"><summary><current_dc present="true" name="node1" with_quorum="true"/></summary><nodes><node name="node1" online="true"/><node name="node2" online="{n2}"/></nodes><resources><resource id="app" resource_agent="ocf:hastack:app" role="Started" active="true" failed="{failed}"><node name="node1"/></resource></resources></pacemaker-result>"#
        )
    };
    for k in 1..=23 {
        let name = format!("store-{k:03}");
        let token = console.add_cluster(&name);
        if k == 7 {
            continue;
        }
        let (category, severity, rc, task, xml) = match k % 9 {
            3 => ("node_lost", "warning", 0, "", nodes_xml("false", false)),
            5 if k > 10 => ("operation_failed", "critical", 1, "start", nodes_xml("true", true)),
            _ => ("operation_succeeded", "info", 0, "start", nodes_xml("true", false)),
        };
        let (kind, alert, summary) = if category == "node_lost" {
            (
                "node",
                json!({"node": "node2", "nodeid": 2, "desc": "lost", "task": null, "rc": null, "rsc": null, "interval": null, "target_rc": null, "status": null, "exec_time": null, "attribute_name": null, "attribute_value": null}),
                "node node2 is lost".to_string(),
            )
        } else {
            let desc = if rc == 0 { "ok" } else { "error" };
            (
                "resource",
                json!({"node": "node1", "nodeid": null, "desc": desc, "task": task, "rc": rc, "rsc": "app", "interval": 0, "target_rc": 0, "status": 0, "exec_time": 800, "attribute_name": null, "attribute_value": null}),
                if rc == 0 {
                    "app start on node1: ok".to_string()
                } else {
                    "app start on node1 failed: error (rc=1, expected 0)".to_string()
                },
            )
        };
        let t = now - (k as i64) * HOUR_US / 3;
        let report = fixtures::make_report(
            &name,
            "node1",
            t,
            10,
            kind,
            category,
            severity,
            &summary,
            alert,
            Value::Null,
            Some(&xml),
        );
        assert!(console.post_json(&token, &report).status < 300);
    }
}

#[test]
fn a_failure_turns_its_tile_red_live_and_the_recovery_turns_it_back() {
    if !need_program("chromium", "chromium")
        || !need_program("chromedriver", "chromium-driver")
        || !fixtures::available()
    {
        return;
    }
    let console = Console::start();
    populate(&console);
    let token = console.add_cluster("store-042");
    // A real history first: a restart a few hours ago, so that the page has statistics to show.
    let mut s = Scenario::new("store-042", fixtures::now_us() - 6 * HOUR_US);
    s.advance_ms(3_600_000);
    s.monitor_fails("db", 10000, "node1", 7, 1500);
    s.advance_ms(2 * 3_600_000);
    s.set_fail_count("db#monitor_10000", "node1", 2);
    let failure = s.monitor_fails("db", 10000, "node1", 7, 900);
    for r in &s.reports[..failure] {
        assert_eq!(console.post_json(&token, r).status, 201);
    }
    let id = format!("cluster-{}", console.cluster("store-042")["id"]);
    let driver = ChromeDriver::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // One deadline over the whole browser session: a hung WebDriver call fails the test (and the
    // drop guards still run) instead of waiting for nextest to kill it.
    let session = async {
        let c = browser(&driver).await;
        c.goto(&format!("http://{}/", console.addr)).await.unwrap();
        // Live once the page's EventSource is connected; a marker shows the page never reloads.
        c.wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css("header .live.on"))
            .await
            .expect("the live feed connects");
        c.execute("window.hastackNoReload = true; return 1", vec![]).await.unwrap();
        assert!(tile_class(&c, &id).await.contains("amber"), "before: the earlier restart left a failed action");
        save(&c, "fleet-before.png").await;

        // The failure: the tile turns red without a reload.
        assert_eq!(console.post_json(&token, &s.reports[failure]).status, 201);
        wait_class(&c, &id, "red").await;
        let text = c.find(Locator::Id(&id)).await.unwrap().text().await.unwrap();
        assert!(text.contains("open incident") && text.contains("db monitor on node1 failed"), "{text}");
        save(&c, "fleet-red.png").await;

        // The failover: out of red (amber: the failed action waits for a cleanup), still no reload.
        for r in &s.reports[failure + 1..] {
            assert_eq!(console.post_json(&token, r).status, 201);
        }
        wait_class(&c, &id, "amber").await;
        let text = c.find(Locator::Id(&id)).await.unwrap().text().await.unwrap();
        assert!(text.contains("to clean up") && text.contains("MTTR"), "{text}");
        let kept = c.execute("return window.hastackNoReload === true", vec![]).await.unwrap();
        assert_eq!(kept, Value::Bool(true), "the page reloaded");
        save(&c, "fleet-recovered.png").await;

        // The cluster page, the incident and a snapshot, as an operator opens them.
        c.set_window_size(1400, 2600).await.unwrap();
        c.goto(&format!("http://{}/clusters/store-042", console.addr)).await.unwrap();
        c.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css(".plot svg")).await.unwrap();
        let body = c.find(Locator::Css("main")).await.unwrap().text().await.unwrap();
        assert!(body.contains("failover") && body.contains("restart") && body.contains("MTTR median"), "{body}");
        save(&c, "cluster.png").await;
        c.find(Locator::Css("td a[href^='/incidents/']")).await.unwrap().click().await.unwrap();
        c.wait().at_most(Duration::from_secs(15)).for_element(Locator::XPath("//h2[text()='Timeline']")).await.unwrap();
        c.set_window_size(1400, 1200).await.unwrap();
        save(&c, "incident.png").await;
        c.goto(&format!("http://{}/clusters/store-042", console.addr)).await.unwrap();
        c.find(Locator::LinkText("full snapshot")).await.unwrap().click().await.unwrap();
        c.wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::XPath("//h2[text()='Resources']"))
            .await
            .unwrap();
        c.set_window_size(1400, 2200).await.unwrap();
        save(&c, "snapshot.png").await;

        // The requirements: the failover left db's fail-count at its migration-threshold, and the
        // finding shows the values that broke the rule, with its remediation.
        c.set_window_size(1400, 1400).await.unwrap();
        c.goto(&format!("http://{}/clusters/store-042#requirements", console.addr)).await.unwrap();
        let row = c.find(Locator::Css("tr[data-rule='fail-count-below-threshold']")).await.unwrap();
        assert!(row.attr("class").await.unwrap().unwrap_or_default().contains("fail"));
        let text = row.text().await.unwrap();
        assert!(text.contains("db on node1: fail-count 3 reached migration-threshold 3"), "{text}");
        assert!(text.contains("pcs resource cleanup"), "{text}");
        let recs = c.find(Locator::Css("ol.recommendations")).await.unwrap().text().await.unwrap();
        assert!(recs.contains("db on node1: fail-count 3"), "{recs}");
        save(&c, "findings.png").await;

        // The fleet table, from the top bar.
        c.find(Locator::LinkText("Compare")).await.unwrap().click().await.unwrap();
        c.wait().at_most(Duration::from_secs(15)).for_element(Locator::Id("fleet-compare")).await.unwrap();
        let row = c.find(Locator::Css("tr[data-cluster='store-042']")).await.unwrap().text().await.unwrap();
        assert!(row.contains("store-042") && row.contains(" s"), "its MTTR is in the table: {row}");
        let table = c.find(Locator::Id("fleet-compare")).await.unwrap().text().await.unwrap();
        assert!(table.contains("fleet median") && table.contains("fleet p90"), "{table}");
        save(&c, "fleet-compare.png").await;
        c.close().await.unwrap();
    };
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(180), session).await })
        .expect("the browser session finished within 180 s");
}

/// A CIB the test controls: a file that Pacemaker's own tools (and so `hastack agent apply`) use
/// instead of a running cluster when `CIB_file` names it, with one ocf:pacemaker:Dummy resource.
struct FileCib {
    dir: tempfile::TempDir,
}

impl FileCib {
    fn new() -> FileCib {
        let dir = tempfile::Builder::new().prefix("hst-cib").tempdir().unwrap();
        let cib = FileCib { dir };
        let empty = run_with_deadline(Command::new("cibadmin").arg("--empty"), Duration::from_secs(30));
        empty.expect(0);
        std::fs::write(cib.path(), empty.stdout).unwrap();
        cib.tool("crm_attribute", &["--type", "crm_config", "--name", "stonith-enabled", "--update", "false"])
            .expect(0);
        let primitive = r#"<primitive id="dummy" class="ocf" provider="pacemaker" type="Dummy">
  <instance_attributes id="dummy-params"><nvpair id="dummy-op_sleep" name="op_sleep" value="0"/></instance_attributes>
  <operations><op id="dummy-monitor-10s" name="monitor" interval="10s" timeout="20s"/></operations>
</primitive>"#;
        cib.tool("cibadmin", &["--create", "--scope", "resources", "--xml-text", primitive]).expect(0);
        cib
    }

    fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("cib.xml")
    }

    fn tool(&self, program: &str, args: &[&str]) -> Outcome {
        run_with_deadline(Command::new(program).args(args).env("CIB_file", self.path()), Duration::from_secs(60))
    }

    /// `cibadmin --query` of the dummy's resources section.
    fn resources(&self) -> String {
        let out = self.tool("cibadmin", &["--query", "--scope", "resources"]);
        out.expect(0);
        out.stdout
    }

    /// `hastack agent apply --console URL --token-file F --once`, as README.md shows it, on this CIB.
    fn apply(&self, console: &Console, token_file: &std::path::Path) -> Outcome {
        let url = format!("http://{}", console.addr);
        let mut cmd = Command::new(bin());
        cmd.args(["agent", "apply", "--console", &url, "--token-file"])
            .arg(token_file)
            .args(["--once", "--node", "node1", "--settle-timeout", "20s"])
            .env("CIB_file", self.path());
        run_with_deadline(&mut cmd, Duration::from_secs(120))
    }
}

/// A change's life as the page shows it: each stage and whether it is done, failed or to do.
async fn life(c: &Client, id: &str) -> Vec<String> {
    let js = format!(
        "return Array.from(document.querySelectorAll('#{id} ol.life li')).map(li => li.textContent + ':' + li.className)"
    );
    let v = c.execute(&js, vec![]).await.unwrap();
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect()
}

async fn wait_change(c: &Client, state: &str) -> fantoccini::elements::Element {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(&format!("#change-log section.change[data-state='{state}']")))
        .await
        .unwrap_or_else(|e| panic!("no change shown {state} within 20 s: {e}"))
}

/// Types into a form's field (after clearing what is there).
async fn fill(c: &Client, form: &str, name: &str, value: &str) {
    let input = c.find(Locator::Css(&format!("#{form} [name='{name}']"))).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(value).await.unwrap();
}

async fn submit(c: &Client, form: &str) {
    c.find(Locator::Css(&format!("#{form} button[type='submit']"))).await.unwrap().click().await.unwrap();
}

/// A change's life in the pages: requested with the page's form, applied by a real `hastack agent
/// apply --once` to a CIB the test controls, shown applied (live, without a reload) with each
/// step's output; a parameter the resource agent rejects is rolled back and the page says why; a
/// bad request is refused by the form with the field named. Screenshots: change-*.png.
#[test]
fn a_change_requested_in_the_page_is_applied_or_rolled_back_and_shown_with_why() {
    if !need_program("chromium", "chromium")
        || !need_program("chromedriver", "chromium-driver")
        || !need_program("cibadmin", "pacemaker-cli-utils")
        || !need_program("crm_resource", "pacemaker-cli-utils")
    {
        return;
    }
    let console = Console::start();
    let token = console.add_cluster("store-cfg");
    let token_file = console.dir.path().join("store-cfg.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let cib = FileCib::new();
    let driver = ChromeDriver::start();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let session = async {
        let c = browser(&driver).await;
        c.set_window_size(1400, 1800).await.unwrap();
        // From the cluster page, as an operator gets there.
        c.goto(&format!("http://{}/clusters/store-cfg", console.addr)).await.unwrap();
        c.find(Locator::LinkText("configuration changes")).await.unwrap().click().await.unwrap();
        c.wait().at_most(Duration::from_secs(15)).for_element(Locator::Id("request-operation")).await.unwrap();

        // A bad request: refused by the console with the field named, nothing recorded, the form kept.
        fill(&c, "request-operation", "resource", "dummy").await;
        fill(&c, "request-operation", "new_interval", "soon").await;
        fill(&c, "request-operation", "requested_by", "alice").await;
        submit(&c, "request-operation").await;
        let refused = c.wait().at_most(Duration::from_secs(15)).for_element(Locator::Id("refused")).await.unwrap();
        let text = refused.text().await.unwrap();
        assert!(text.contains("new_interval \"soon\": expected a Pacemaker duration"), "{text}");
        let kept = c.find(Locator::Css("#request-operation [name='new_interval']")).await.unwrap();
        assert_eq!(kept.prop("value").await.unwrap().as_deref(), Some("soon"), "the form keeps what was sent");
        assert_eq!(console.get_json("/api/v1/clusters/store-cfg/changes")["changes"], json!([]));

        // 1. The monitor interval, requested in the page.
        fill(&c, "request-operation", "interval", "10s").await;
        fill(&c, "request-operation", "new_interval", "5s").await;
        submit(&c, "request-operation").await;
        let requested = wait_change(&c, "requested").await;
        let text = requested.text().await.unwrap();
        assert!(text.contains("dummy monitor (every 10s): interval → 5s") && text.contains("alice"), "{text}");
        assert!(text.contains("Waiting for the cluster"), "{text}");
        c.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("header .live.on")).await.unwrap();
        c.execute("window.hastackNoReload = true; return 1", vec![]).await.unwrap();
        save(&c, "change-requested.png").await;

        // The node's agent polls once and applies it to the CIB; the page shows it without a reload.
        let out = cib.apply(&console, &token_file);
        out.expect(0);
        assert!(cib.resources().contains(r#"interval="5s""#), "{}", cib.resources());
        let applied = wait_change(&c, "applied").await;
        let text = applied.text().await.unwrap();
        let id = applied.attr("id").await.unwrap().unwrap();
        let stages = ["requested:done", "planned:done", "committed:done", "verified:done", "applied:done"];
        assert_eq!(life(&c, &id).await, stages, "{text}");
        assert!(text.contains("node1") && text.contains(r#"interval="5s""#), "the plan's diff is shown: {text}");
        assert!(text.contains("crm_verify -L -V: ok"), "verify's output is shown: {text}");
        let steps = applied.find_all(Locator::Css("tr[data-step]")).await.unwrap();
        let mut names = Vec::new();
        for s in &steps {
            names.push(s.attr("data-step").await.unwrap().unwrap_or_default());
        }
        assert_eq!(names, ["plan", "commit", "verify"]);
        let kept = c.execute("return window.hastackNoReload === true", vec![]).await.unwrap();
        assert_eq!(kept, Value::Bool(true), "the page reloaded");
        save(&c, "change-applied.png").await;

        // 2. A parameter Dummy's validate-all rejects: committed, verify fails, rolled back; the
        //    page says why.
        let before = cib.resources();
        fill(&c, "request-parameter", "resource", "dummy").await;
        fill(&c, "request-parameter", "name", "op_sleep").await;
        fill(&c, "request-parameter", "value", "soon").await;
        fill(&c, "request-parameter", "requested_by", "bob").await;
        submit(&c, "request-parameter").await;
        wait_change(&c, "requested").await;
        c.wait().at_most(Duration::from_secs(15)).for_element(Locator::Css("header .live.on")).await.unwrap();
        cib.apply(&console, &token_file).expect(1);
        assert_eq!(cib.resources(), before, "rolled back: the CIB's resources are as before");
        let rolled = wait_change(&c, "rolled_back").await;
        let id = rolled.attr("id").await.unwrap().unwrap();
        let stages = ["requested:done", "planned:done", "committed:done", "verified:failed", "rolled back:failed"];
        assert_eq!(life(&c, &id).await, stages);
        let why = rolled.find(Locator::Css(".reason")).await.unwrap().text().await.unwrap();
        assert!(why.starts_with("rolled back: restored") && why.contains("because"), "{why}");
        assert!(why.contains("validate-all"), "the reason names the check that failed: {why}");
        save(&c, "change-rolled-back.png").await;

        // The cluster page lists both with their states.
        c.goto(&format!("http://{}/clusters/store-cfg#changes", console.addr)).await.unwrap();
        let section = c.find(Locator::Css("h2#changes + table")).await.unwrap().text().await.unwrap();
        assert!(section.contains("rolled back") && section.contains("applied") && section.contains("bob"), "{section}");
        c.close().await.unwrap();
    };
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(240), session).await })
        .expect("the browser session finished within 240 s");
}
