//! nginx and apache: the web servers, each test with its own instance and port block.

use std::path::Path;

use super::*;

// ---------------------------------------------------------------- nginx

pub fn nginx_conf(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let d = dir.display();
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let conf = dir.join("nginx.conf");
    write(
        &conf,
        &format!(
            "pid {d}/nginx.pid;\nerror_log {d}/error.log;\nworker_processes 2;\n{extra}\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp;\n  \
             fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n  \
             server {{ listen 127.0.0.1:{port}; location = / {{ return 200 \"ok\\n\"; }} location /missing {{ return 404; }} \
             location /status {{ stub_status; }} }}\n}}\n"
        ),
    );
    conf
}

pub struct Nginx {
    pub _stop: StopOnDrop,
    pub run: AgentRun,
    pub instance: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

pub fn nginx(port: u16) -> Option<Nginx> {
    if !can_run("nginx", "nginx") {
        return None;
    }
    let dir = open_tempdir();
    let conf = nginx_conf(dir.path(), port, "");
    let instance = unique_name("ngx");
    let run = AgentRun::new("nginx")
        .env("OCF_RESOURCE_INSTANCE", &instance)
        .param("configfile", conf.display())
        .param("pidfile", dir.path().join("nginx.pid").display());
    Some(Nginx { _stop: StopOnDrop(run.clone()), run, instance, port, dir })
}

#[test]
fn nginx_lifecycle_and_status_url() {
    let Some(n) = nginx(18000) else { return };
    lifecycle(&n.run, "nginx", &n.instance, &[0, 10], n.port);
    // An explicit status URL (stub_status) at depth 10, and one that answers 404 fails.
    let run = n.run.clone().param("statusurl", format!("http://127.0.0.1:{}/status", n.port));
    run.clone().run("start").expect(0);
    run.clone().recurring().depth(10).run("monitor").expect(0);
    let bad = run.clone().param("statusurl", format!("http://127.0.0.1:{}/missing", n.port));
    bad.clone().recurring().depth(10).run("monitor").expect(1).reason_contains("HTTP 404");
    run.run("stop").expect(0);
}

#[test]
fn nginx_kill9_of_master_leaves_no_orphan_on_the_port() {
    let Some(n) = nginx(18002) else { return };
    kill9(&n.run, "nginx", &n.instance, n.port);
}

#[test]
fn nginx_sigstop_is_an_error_before_the_monitor_timeout() {
    let Some(n) = nginx(18004) else { return };
    sigstop(&n.run, "nginx", &n.instance, &[0, 10], n.port);
}

#[test]
fn nginx_hung_workers_give_an_error_at_depth_10_within_the_request_timeout() {
    use nix::sys::signal::Signal;
    let Some(n) = nginx(18016) else { return };
    let run = n.run.clone().param("request_timeout", 1);
    run.clone().run("start").expect(0);
    let workers = proc::descendants(main_pid("nginx", &n.instance));
    for w in &workers {
        proc::signal(*w, Signal::SIGSTOP);
    }
    wait_for("the workers to stop", Duration::from_secs(10), || {
        workers.iter().all(|p| proc::stat(*p).is_none_or(|s| s.state == 'T'))
    });
    // The master alone looks fine at depth 0; the request at depth 10 times out after 1 s.
    run.clone().recurring().run("monitor").expect(0);
    let m = run.clone().recurring().depth(10).timeout_ms(20000).run("monitor");
    m.expect(1).reason_contains("in time");
    assert!(m.elapsed < Duration::from_secs(3), "{:?}", m.elapsed);
    run.run("stop").expect(0);
    assert_port_free(n.port);
}

#[test]
fn nginx_config_error_bans_this_node_with_nginx_message() {
    let Some(n) = nginx(18006) else { return };
    let conf = nginx_conf(n.dir.path(), n.port, "");
    // The file nginx names is the one at fault: here a file the configuration includes.
    let included = n.dir.path().join("extra.conf");
    write(&included, "this_is_not_a_directive on;\n");
    nginx_conf(n.dir.path(), n.port, &format!("include {};", included.display()));
    config_rejected(&n.run, "nginx", &included, "unknown directive \"this_is_not_a_directive\"");
    nginx_conf(n.dir.path(), n.port, "this_is_not_a_directive on;");
    config_rejected(&n.run, "nginx", &conf, "unknown directive \"this_is_not_a_directive\"");
}

#[test]
fn nginx_port_taken_fails_start_naming_the_holder() {
    let Some(n) = nginx(18008) else { return };
    port_taken(&n.run, n.port);
}

#[test]
fn nginx_missing_software_and_bad_parameters() {
    let Some(n) = nginx(18010) else { return };
    bad_params(
        &n.run,
        &[("binary", "/nonexistent/nginx"), ("configfile", "/nonexistent/nginx.conf")],
        &[
            ("configfile", "relative/nginx.conf", "absolute"),
            ("statusurl", "ftp://127.0.0.1/", "http://"),
            ("request_timeout", "0", "at least 1"),
        ],
    );
}

#[test]
fn nginx_ocf_tester_and_crm_resource() {
    let Some(n) = nginx(18012) else { return };
    let conf = n.dir.path().join("nginx.conf").display().to_string();
    ocf_tester("nginx", &n.instance, &[("configfile", conf.clone())]);
    assert_port_free(n.port);
    crm_resource("nginx", &[("configfile", conf)], n.port);
}

#[test]
fn nginx_with_config_and_logs_on_a_mounted_filesystem() {
    if !can_run("nginx", "nginx") || !need_program("mkfs.ext4", "e2fsprogs") {
        return;
    }
    let mounted = MountedDir::new();
    let port = 18014;
    let conf = nginx_conf(&mounted.path, port, "");
    let instance = unique_name("ngx");
    let run = AgentRun::new("nginx").env("OCF_RESOURCE_INSTANCE", &instance).param("configfile", conf.display());
    let _stop = StopOnDrop(run.clone());
    lifecycle(&run, "nginx", &instance, &[0, 10], port);
    assert!(mounted.path.join("error.log").exists(), "nginx logged on the mounted filesystem");
}

// ---------------------------------------------------------------- apache

pub fn apache_conf(dir: &Path, port: u16, extra: &str) -> PathBuf {
    let d = dir.display();
    let m = "/usr/lib/apache2/modules";
    for sub in ["htdocs", "run"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    write(&dir.join("htdocs/index.html"), "<html>ok</html>\n");
    let conf = dir.join("httpd.conf");
    write(
        &conf,
        &format!(
            "LoadModule mpm_event_module {m}/mod_mpm_event.so\nLoadModule authz_core_module {m}/mod_authz_core.so\n\
             LoadModule dir_module {m}/mod_dir.so\nLoadModule status_module {m}/mod_status.so\n\
             ServerName localhost\nListen 127.0.0.1:{port}\nPidFile {d}/httpd.pid\nErrorLog {d}/error.log\n\
             DefaultRuntimeDir {d}/run\nUser www-data\nGroup www-data\nStartServers 1\n\
             DocumentRoot {d}/htdocs\nDirectoryIndex index.html\n\
             <Directory {d}/htdocs>\n  Require all granted\n</Directory>\n\
             <Location /server-status>\n  SetHandler server-status\n  Require all granted\n</Location>\n{extra}\n"
        ),
    );
    conf
}

pub struct Apache {
    pub _stop: StopOnDrop,
    pub run: AgentRun,
    pub instance: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

pub fn apache(port: u16) -> Option<Apache> {
    if !can_run("apache2", "apache2") {
        return None;
    }
    let dir = open_tempdir();
    let conf = apache_conf(dir.path(), port, "");
    let instance = unique_name("apa");
    let run = AgentRun::new("apache")
        .env("OCF_RESOURCE_INSTANCE", &instance)
        .param("configfile", conf.display())
        .param("pidfile", dir.path().join("httpd.pid").display());
    Some(Apache { _stop: StopOnDrop(run.clone()), run, instance, port, dir })
}

#[test]
fn apache_lifecycle_and_status_url() {
    let Some(a) = apache(18200) else { return };
    lifecycle(&a.run, "apache", &a.instance, &[0, 10], a.port);
    let run = a.run.clone().param("statusurl", format!("http://127.0.0.1:{}/server-status", a.port));
    run.clone().run("start").expect(0);
    run.clone().recurring().depth(10).run("monitor").expect(0);
    let bad = run.clone().param("statusurl", format!("http://127.0.0.1:{}/missing", a.port));
    bad.recurring().depth(10).run("monitor").expect(1).reason_contains("HTTP 404");
    run.run("stop").expect(0);
}

#[test]
fn apache_kill9_of_parent_leaves_no_orphan_on_the_port() {
    let Some(a) = apache(18202) else { return };
    kill9(&a.run, "apache", &a.instance, a.port);
}

#[test]
fn apache_sigstop_is_an_error_before_the_monitor_timeout() {
    let Some(a) = apache(18204) else { return };
    sigstop(&a.run, "apache", &a.instance, &[0, 10], a.port);
}

#[test]
fn apache_config_error_bans_this_node_with_httpd_message() {
    let Some(a) = apache(18206) else { return };
    let conf = apache_conf(a.dir.path(), a.port, "NoSuchDirective on");
    config_rejected(&a.run, "httpd", &conf, "Invalid command 'NoSuchDirective'");
}

#[test]
fn apache_port_taken_fails_start_naming_the_holder() {
    let Some(a) = apache(18208) else { return };
    port_taken(&a.run, a.port);
}

#[test]
fn apache_missing_software_and_bad_parameters() {
    let Some(a) = apache(18210) else { return };
    bad_params(
        &a.run,
        &[
            ("binary", "/nonexistent/apache2"),
            ("configfile", "/nonexistent/httpd.conf"),
            ("envfile", "/nonexistent/envvars"),
            ("server_root", "/nonexistent"),
        ],
        &[("configfile", "httpd.conf", "absolute"), ("statusurl", "https://127.0.0.1/", "https")],
    );
}

#[test]
fn apache_ocf_tester_and_crm_resource() {
    let Some(a) = apache(18212) else { return };
    let conf = a.dir.path().join("httpd.conf").display().to_string();
    ocf_tester("apache", &a.instance, &[("configfile", conf.clone())]);
    assert_port_free(a.port);
    crm_resource("apache", &[("configfile", conf)], a.port);
}
