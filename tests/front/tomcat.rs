//! tomcat: Debian's tomcat10 (CATALINA_HOME=/usr/share/tomcat10) with a CATALINA_BASE of the
//! test's own, on its own port, run as Debian's `tomcat` user.

use super::*;

pub fn server_xml(port: u16, broken: bool) -> String {
    let end = if broken { "<Service>" } else { "</Service>" };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Server port=\"-1\" shutdown=\"SHUTDOWN\">\n\
         <Service name=\"Catalina\">\n\
         <Connector port=\"{port}\" address=\"127.0.0.1\" protocol=\"HTTP/1.1\" connectionTimeout=\"20000\"/>\n\
         <Engine name=\"Catalina\" defaultHost=\"localhost\">\n\
         <Host name=\"localhost\" appBase=\"webapps\" unpackWARs=\"false\" autoDeploy=\"false\"/>\n\
         </Engine>\n{end}\n</Server>\n"
    )
}

pub struct Tomcat {
    pub _stop: StopOnDrop,
    pub run: AgentRun,
    pub instance: String,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

pub fn tomcat(port: u16) -> Option<Tomcat> {
    if !can_run("java", "default-jre-headless")
        || !Path::new("/usr/share/tomcat10/bin/bootstrap.jar").exists()
            && !skip_or_fail("tomcat10 is not installed (tests/setup/install-deps.sh installs it)")
    {
        return None;
    }
    let dir = open_tempdir();
    let base = dir.path();
    // Debian's /var/lib/tomcat10/conf is a link to /etc/tomcat10: copy the files (-L), never
    // the link, or the test would write the system's server.xml.
    let conf = base.join("conf");
    sh("cp", &["-rL", "/var/lib/tomcat10/conf/", conf.to_str().unwrap()]);
    assert!(!conf.is_symlink());
    for sub in ["webapps/ROOT", "webapps/deep", "logs", "work", "temp"] {
        std::fs::create_dir_all(base.join(sub)).unwrap();
    }
    write(&base.join("webapps/ROOT/index.html"), "ok\n");
    write(&base.join("webapps/deep/index.html"), "deep\n");
    write(&base.join("conf/server.xml"), &server_xml(port, false));
    sh("chown", &["-R", "tomcat:tomcat", base.to_str().unwrap()]);
    let instance = unique_name("tc");
    let run = AgentRun::new("tomcat")
        .env("OCF_RESOURCE_INSTANCE", &instance)
        .param("catalina_base", base.display())
        .param("statusurl", format!("http://127.0.0.1:{port}/"))
        .param("deep_url", format!("http://127.0.0.1:{port}/deep/"))
        .param("java_opts", "-Xmx128m -XX:TieredStopAtLevel=1 -Dhst.test=\"a b\"")
        .timeout_ms(120000);
    Some(Tomcat { _stop: StopOnDrop(run.clone()), run, instance, port, dir })
}

#[test]
fn tomcat_lifecycle_with_health_and_deep_urls() {
    let Some(t) = tomcat(18300) else { return };
    lifecycle(&t.run, "tomcat", &t.instance, &[0, 10, 20], t.port);
    // The JVM runs as the tomcat user with the quoted option kept as one word.
    t.run.clone().run("start").expect(0);
    let pid = main_pid("tomcat", &t.instance);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let uid = sh("id", &["-u", "tomcat"]);
    assert!(status.lines().any(|l| l.starts_with("Uid:") && l.contains(uid.trim())), "{status}");
    assert!(proc::cmdline(pid).unwrap().contains(&"-Dhst.test=a b".to_string()));
    // A deep URL that fails is an error at depth 20 only.
    let bad = t.run.clone().param("deep_url", format!("http://127.0.0.1:{}/nothing/", t.port));
    bad.clone().recurring().depth(10).run("monitor").expect(0);
    bad.recurring().depth(20).run("monitor").expect(1).reason_contains("HTTP 404");
    t.run.clone().run("stop").expect(0);
}

#[test]
fn tomcat_kill9_of_the_jvm() {
    let Some(t) = tomcat(18302) else { return };
    kill9(&t.run, "tomcat", &t.instance, t.port);
}

#[test]
fn tomcat_sigstop_is_an_error_before_the_monitor_timeout() {
    let Some(t) = tomcat(18304) else { return };
    sigstop(&t.run, "tomcat", &t.instance, &[0, 10, 20], t.port);
}

#[test]
fn tomcat_config_error_bans_this_node_with_tomcat_message() {
    let Some(t) = tomcat(18306) else { return };
    let conf = t.dir.path().join("conf/server.xml");
    write(&conf, &server_xml(t.port, true));
    config_rejected(&t.run, "tomcat", &conf, "must be terminated by the matching end-tag");
}

#[test]
fn tomcat_port_taken_fails_start_naming_the_holder() {
    let Some(t) = tomcat(18308) else { return };
    port_taken(&t.run, t.port);
}

#[test]
fn tomcat_missing_software_and_bad_parameters() {
    let Some(t) = tomcat(18310) else { return };
    bad_params(
        &t.run,
        &[
            ("catalina_home", "/nonexistent/tomcat"),
            ("catalina_base", "/nonexistent/base"),
            ("java_home", "/nonexistent/jvm"),
            ("tomcat_user", "hst-no-such-user"),
        ],
        &[
            ("catalina_base", "var/lib/tomcat10", "absolute"),
            ("java_opts", "-Dx='unterminated", "quote"),
            ("deep_url", "not-a-url", "http://"),
        ],
    );
}

#[test]
fn tomcat_ocf_tester_and_crm_resource() {
    let Some(t) = tomcat(18312) else { return };
    let params =
        [("catalina_base", t.dir.path().display().to_string()), ("statusurl", format!("http://127.0.0.1:{}/", t.port))];
    ocf_tester("tomcat", &t.instance, &params);
    assert_port_free(t.port);
    crm_resource("tomcat", &params, t.port);
}
