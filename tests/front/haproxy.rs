//! haproxy: master-worker, stats socket, backend health (depth 10), graceful reload.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;

use super::*;

/// A line-echo server on loopback: the backend the test's haproxy balances to.
pub fn echo_server(port: u16) -> TcpListener {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let l = listener.try_clone().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(conn) = conn else { return };
            std::thread::spawn(move || {
                let mut out = conn.try_clone().unwrap();
                for line in BufReader::new(conn).lines() {
                    let Ok(line) = line else { return };
                    if out.write_all(format!("{line}\n").as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    listener
}

/// Frontend on `port`, backend `be` with a server on port+1 (the test's echo server) and, if
/// `with_down`, one on port+2 where nothing listens.
pub fn haproxy_conf(dir: &Path, port: u16, with_down: bool, extra: &str) -> PathBuf {
    let d = dir.display();
    let down =
        if with_down { format!("    server s2 127.0.0.1:{} check inter 100ms\n", port + 2) } else { String::new() };
    let conf = dir.join("haproxy.cfg");
    write(
        &conf,
        &format!(
            "global\n    stats socket {d}/stats.sock mode 600 level admin\n{extra}\
             defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30s\n    timeout server 30s\n\
             frontend fe\n    bind 127.0.0.1:{port}\n    default_backend be\n\
             backend be\n    server s1 127.0.0.1:{} check inter 100ms\n{down}",
            port + 1
        ),
    );
    conf
}

pub struct Haproxy {
    pub _stop: StopOnDrop,
    pub run: AgentRun,
    pub instance: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub _backend: TcpListener,
}

pub fn haproxy(port: u16, with_down: bool) -> Option<Haproxy> {
    if !can_run("haproxy", "haproxy") {
        return None;
    }
    let dir = open_tempdir();
    let conf = haproxy_conf(dir.path(), port, with_down, "");
    let instance = unique_name("hap");
    let run = AgentRun::new("haproxy")
        .env("OCF_RESOURCE_INSTANCE", &instance)
        .param("configfile", conf.display())
        .param("pidfile", dir.path().join("haproxy.pid").display());
    let backend = echo_server(port + 1);
    Some(Haproxy { _stop: StopOnDrop(run.clone()), run, instance, port, dir, _backend: backend })
}

fn echo(conn: &mut TcpStream, reader: &mut BufReader<TcpStream>, text: &str) -> String {
    conn.write_all(format!("{text}\n").as_bytes()).unwrap();
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    line.trim().to_string()
}

#[test]
fn haproxy_lifecycle() {
    let Some(h) = haproxy(18100, false) else { return };
    lifecycle(&h.run, "haproxy", &h.instance, &[0, 10], h.port);
}

#[test]
fn haproxy_backend_health_at_depth_10() {
    let Some(h) = haproxy(18104, true) else { return };
    h.run.clone().run("start").expect(0);
    // s1 answers, s2 does not: degraded, naming the server.
    let m = || h.run.clone().recurring().depth(10).run("monitor");
    wait_for("s2 to be seen DOWN", Duration::from_secs(10), || m().code == 190);
    m().reason_contains("backend be: s2 DOWN");
    // Depth 0 does not look at backends.
    h.run.clone().recurring().run("monitor").expect(0);
    // With the echo server gone too, the backend has no server UP: an error.
    // (shutdown, not drop: the accept thread holds a clone of the socket)
    use std::os::fd::AsRawFd;
    nix::sys::socket::shutdown(h._backend.as_raw_fd(), nix::sys::socket::Shutdown::Both).unwrap();
    wait_for("s1 to be seen DOWN", Duration::from_secs(10), || m().code == 1);
    m().reason_contains("backend be has no server UP");
    h.run.clone().run("stop").expect(0);
}

#[test]
fn haproxy_reload_keeps_established_connections() {
    let Some(h) = haproxy(18108, false) else { return };
    h.run.clone().run("start").expect(0);
    let master = main_pid("haproxy", &h.instance);
    let old_workers = proc::descendants(master);
    let mut conn = TcpStream::connect(("127.0.0.1", h.port)).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    assert_eq!(echo(&mut conn, &mut reader, "before"), "before");
    let reload = h.run.clone().run("reload");
    reload.expect(0);
    assert!(reload.elapsed < Duration::from_secs(20));
    assert_eq!(main_pid("haproxy", &h.instance), master, "reload keeps the master");
    let workers = proc::descendants(master);
    assert!(workers.iter().any(|w| !old_workers.contains(w)), "a new worker: {old_workers:?} -> {workers:?}");
    // The established connection still works through the old worker, and new ones work too.
    assert_eq!(echo(&mut conn, &mut reader, "after"), "after");
    let mut fresh = TcpStream::connect(("127.0.0.1", h.port)).unwrap();
    fresh.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut fresh_reader = BufReader::new(fresh.try_clone().unwrap());
    assert_eq!(echo(&mut fresh, &mut fresh_reader, "new"), "new");
    drop((conn, reader, fresh, fresh_reader));
    h.run.clone().recurring().depth(10).run("monitor").expect(0);
    // A broken configuration is refused before the master is touched.
    let conf = haproxy_conf(h.dir.path(), h.port, false, "    no_such_keyword 1\n");
    let bad = h.run.clone().run("reload");
    bad.expect(2)
        .reason_contains(&format!("node-local configuration file {} rejected by haproxy", conf.display()))
        .reason_contains("no_such_keyword");
    assert_eq!(main_pid("haproxy", &h.instance), master);
    h.run.clone().recurring().run("monitor").expect(0);
    h.run.clone().run("stop").expect(0);
    assert_port_free(h.port);
}

/// With OCF 1.0 meta-data Pacemaker reloads, not restarts, when `binary` changes (it is not
/// unique): reload then restarts the master on the new binary; a reload with the same binary
/// keeps the master.
#[test]
fn haproxy_reload_with_a_new_binary_restarts_the_master() {
    // Two consecutive free ports: the frontend and the echo backend.
    let port = loop {
        let p = crate::data::free_port();
        if TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            break p;
        }
    };
    let Some(h) = haproxy(port, false) else { return };
    h.run.clone().run("start").expect(0);
    let master = main_pid("haproxy", &h.instance);
    let copy = h.dir.path().join("haproxy-new");
    std::fs::copy("/usr/sbin/haproxy", &copy).unwrap();
    let run = h.run.clone().param("binary", copy.display());
    run.clone().run("reload").expect(0);
    let new_master = main_pid("haproxy", &h.instance);
    assert_ne!(new_master, master, "a new binary needs a new master");
    assert_eq!(std::fs::read_link(format!("/proc/{new_master}/exe")).unwrap(), copy);
    run.clone().recurring().depth(10).run("monitor").expect(0);
    run.clone().run("reload").expect(0);
    assert_eq!(main_pid("haproxy", &h.instance), new_master, "same binary: the master stays");
    run.clone().run("stop").expect(0);
    assert_port_free(port);
}

#[test]
fn haproxy_kill9_of_master() {
    let Some(h) = haproxy(18112, false) else { return };
    kill9(&h.run, "haproxy", &h.instance, h.port);
}

#[test]
fn haproxy_sigstop_is_an_error_before_the_monitor_timeout() {
    let Some(h) = haproxy(18116, false) else { return };
    sigstop(&h.run, "haproxy", &h.instance, &[0, 10], h.port);
}

#[test]
fn haproxy_config_error_bans_this_node_with_haproxy_message() {
    let Some(h) = haproxy(18120, false) else { return };
    let conf = haproxy_conf(h.dir.path(), h.port, false, "    no_such_keyword 1\n");
    config_rejected(&h.run, "haproxy", &conf, "unknown keyword 'no_such_keyword'");
}

#[test]
fn haproxy_port_taken_fails_start_naming_the_holder() {
    let Some(h) = haproxy(18124, false) else { return };
    port_taken(&h.run, h.port);
}

#[test]
fn haproxy_missing_software_and_bad_parameters() {
    let Some(h) = haproxy(18128, false) else { return };
    bad_params(
        &h.run,
        &[("binary", "/nonexistent/haproxy"), ("configfile", "/nonexistent/haproxy.cfg")],
        &[("configfile", "haproxy.cfg", "absolute"), ("stats_socket", "relative.sock", "host:port")],
    );
    // A node-local configuration without a stats socket cannot be monitored: banned on this
    // node (2), not fatal everywhere (the peer's copy may have one).
    let conf = h.dir.path().join("nostats.cfg");
    write(&conf, "defaults\n    mode tcp\n");
    h.run
        .clone()
        .param("configfile", conf.display())
        .run("start")
        .expect(2)
        .reason_contains(&format!("node-local configuration file {} has no 'stats socket'", conf.display()))
        .reason_contains("stats_socket");
}

#[test]
fn haproxy_ocf_tester_and_crm_resource() {
    let Some(h) = haproxy(18132, false) else { return };
    let params = [
        ("configfile", h.dir.path().join("haproxy.cfg").display().to_string()),
        ("pidfile", h.dir.path().join("haproxy.pid").display().to_string()),
    ];
    ocf_tester("haproxy", &h.instance, &params);
    assert_port_free(h.port);
    crm_resource("haproxy", &params, h.port);
}
