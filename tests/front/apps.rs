//! app: a Python HTTP server as "any service", run in the foreground, through a daemonizing
//! script with a PID file, and found by process match; health by curl with its exit code.

use super::*;

pub struct App {
    pub _stop: StopOnDrop,
    pub run: AgentRun,
    pub instance: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

pub fn http_server(port: u16) -> String {
    format!("python3 -m http.server {port} --bind 127.0.0.1")
}

pub fn health(port: u16) -> String {
    format!("curl -fsS --max-time 2 -o /dev/null http://127.0.0.1:{port}/")
}

/// The service in the foreground: the start command is the main process.
pub fn app(port: u16) -> Option<App> {
    if !can_run("python3", "python3") || !need_program("curl", "curl") {
        return None;
    }
    let dir = open_tempdir();
    let instance = unique_name("app");
    let run = AgentRun::new("app")
        .env("OCF_RESOURCE_INSTANCE", &instance)
        .param("start_command", http_server(port))
        .param("health_command", health(port))
        .param("port", port)
        .param("workdir", dir.path().display());
    Some(App { _stop: StopOnDrop(run.clone()), run, instance, port, dir })
}

#[test]
fn app_foreground_lifecycle() {
    let Some(a) = app(18400) else { return };
    lifecycle(&a.run, "app", &a.instance, &[0, 10], a.port);
}

#[test]
fn app_daemonizing_script_with_pidfile_and_stop_command() {
    let Some(a) = app(18402) else { return };
    let pidfile = a.dir.path().join("app.pid");
    let p = pidfile.display();
    let marker = a.dir.path().join("stopped-by-stop-command");
    let run = a
        .run
        .clone()
        .param("start_command", format!("sh -c '{} >/dev/null 2>&1 & echo $! > {p}'", http_server(a.port)))
        .param("stop_command", format!("sh -c 'touch {}; kill $(cat {p})'", marker.display()))
        .param("pidfile", p);
    let _stop = StopOnDrop(run.clone());
    run.clone().run("start").expect(0);
    let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    assert_eq!(main_pid("app", &a.instance), pid, "the main process is the one in the PID file");
    run.clone().recurring().depth(10).run("monitor").expect(0);
    run.clone().run("start").expect(0);
    run.clone().run("stop").expect(0);
    assert!(marker.exists(), "stop_command ran");
    assert!(!proc::is_alive(pid));
    assert_port_free(a.port);
    run.clone().recurring().run("monitor").expect(7);
}

#[test]
fn app_found_by_process_match_and_failing_health() {
    let Some(a) = app(18404) else { return };
    let run = a
        .run
        .clone()
        .param("start_command", format!("sh -c 'exec {} >/dev/null 2>&1 &'", http_server(a.port)))
        .param("process_match", format!("http.server {}", a.port));
    let _stop = StopOnDrop(run.clone());
    run.clone().run("start").expect(0);
    run.clone().recurring().depth(10).run("monitor").expect(0);
    // Health exit codes: anything but 0 is a failure, with the command's message.
    let sick = run.clone().param("health_command", "sh -c 'echo database unreachable >&2; exit 3'");
    sick.clone().recurring().run("monitor").expect(0);
    sick.recurring().depth(10).run("monitor").expect(1).reason_contains("database unreachable");
    // A health command that hangs is killed at request_timeout, before the monitor timeout.
    let hung = run.clone().param("health_command", "sleep 30").param("request_timeout", 1);
    let m = hung.recurring().depth(10).timeout_ms(10000).run("monitor");
    m.expect(1).reason_contains("did not finish in time");
    assert!(m.elapsed < Duration::from_secs(5), "{:?}", m.elapsed);
    run.clone().run("stop").expect(0);
    assert_port_free(a.port);
}

#[test]
fn app_kill9_of_the_service() {
    let Some(a) = app(18406) else { return };
    kill9(&a.run, "app", &a.instance, a.port);
}

#[test]
fn app_sigstop_is_an_error_before_the_monitor_timeout() {
    let Some(a) = app(18408) else { return };
    sigstop(&a.run, "app", &a.instance, &[0, 10], a.port);
}

#[test]
fn app_failing_start_command_fails_fast_with_its_message() {
    let Some(a) = app(18410) else { return };
    let run = a.run.clone().param("start_command", "sh -c 'echo \"app: bad setting on line 3\" >&2; exit 2'");
    // The app agent has no configuration file of its own: a failing command is a failure (1).
    start_fails_fast(&run, "bad setting on line 3");
    // A command that exits 0 without a pidfile or process match cannot be followed.
    let run = a.run.clone().param("start_command", "true");
    run.run("start").expect(1).reason_contains("set pidfile or process_match");
}

#[test]
fn app_port_taken_fails_start_naming_the_holder() {
    let Some(a) = app(18412) else { return };
    port_taken(&a.run, a.port);
}

#[test]
fn app_missing_software_and_bad_parameters() {
    let Some(a) = app(18414) else { return };
    bad_params(
        &a.run,
        &[
            ("start_command", "/nonexistent/bin/server --port 1"),
            ("health_command", "no-such-program-hst"),
            ("workdir", "/nonexistent"),
        ],
        &[
            ("start_command", "server 'unterminated", "quote"),
            ("start_command", "   ", "no command"),
            ("pidfile", "run/app.pid", "absolute"),
            ("port", "70000", "at most 65535"),
        ],
    );
    a.run.clone().param("start_command", "").run("start").expect(6).reason_contains("start_command");
}

#[test]
fn app_ocf_tester_and_crm_resource() {
    let Some(a) = app(18416) else { return };
    let params =
        [("start_command", http_server(a.port)), ("health_command", health(a.port)), ("port", a.port.to_string())];
    ocf_tester("app", &a.instance, &params);
    assert_port_free(a.port);
    crm_resource("app", &params, a.port);
}
