//! The lab's servlet application (lab/app/): built from sources carried in this binary with
//! Debian's javac against Debian's jars, and deployed to Tomcat by a Context file.
//!
//! `build` makes an exploded webapp, `DIR/webapp` (WEB-INF/classes, WEB-INF/lib with copies of
//! the JMS and JDBC client jars: Tomcat does not follow links out of a webapp). A key over the
//! sources, the javac and the jars is kept in `DIR/build.key`: an unchanged build is not redone.

use std::fmt::Write as _;
use std::fs;
use std::hash::{Hash, Hasher};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};

use crate::lab::ledger::DbUrl;

/// The application's sources, as files under the build directory.
const SOURCES: &[(&str, &str)] = &[
    ("src/hastack/lab/App.java", include_str!("../../lab/app/src/hastack/lab/App.java")),
    ("src/hastack/lab/Broker.java", include_str!("../../lab/app/src/hastack/lab/Broker.java")),
    ("src/hastack/lab/Config.java", include_str!("../../lab/app/src/hastack/lab/Config.java")),
    ("src/hastack/lab/Consumer.java", include_str!("../../lab/app/src/hastack/lab/Consumer.java")),
    ("src/hastack/lab/Ledger.java", include_str!("../../lab/app/src/hastack/lab/Ledger.java")),
    ("src/hastack/lab/Producer.java", include_str!("../../lab/app/src/hastack/lab/Producer.java")),
    ("src/hastack/lab/StatusServlet.java", include_str!("../../lab/app/src/hastack/lab/StatusServlet.java")),
    ("src/hastack/lab/Tx.java", include_str!("../../lab/app/src/hastack/lab/Tx.java")),
    ("src/hastack/lab/TxServlet.java", include_str!("../../lab/app/src/hastack/lab/TxServlet.java")),
    ("src/hastack/lab/Waiters.java", include_str!("../../lab/app/src/hastack/lab/Waiters.java")),
];
const WEB_XML: &str = include_str!("../../lab/app/WEB-INF/web.xml");

/// Compile-time only: Tomcat provides it at run time.
const SERVLET_API: (&str, &str) = ("/usr/share/tomcat10/lib/servlet-api.jar", "tomcat10");

/// Shipped in WEB-INF/lib: the ActiveMQ JMS client with what it needs, and the JDBC driver.
const LIBS: &[(&str, &str)] = &[
    ("/usr/share/java/activemq-client.jar", "libactivemq-java"),
    ("/usr/share/java/geronimo-jms_1.1_spec.jar", "libgeronimo-jms-1.1-spec-java"),
    ("/usr/share/java/geronimo-j2ee-management-1.1-spec.jar", "libgeronimo-j2ee-management-1.1-spec-java"),
    ("/usr/share/java/hawtbuf.jar", "libhawtbuf-java"),
    ("/usr/share/java/slf4j-api.jar", "libslf4j-java"),
    // ActiveMQ logs through slf4j: to java.util.logging, i.e. Tomcat's logs.
    ("/usr/share/java/slf4j-jdk14.jar", "libslf4j-java"),
    ("/usr/share/java/postgresql.jar", "libpostgresql-jdbc-java"),
];

const JAVAC: (&str, &str) = ("/usr/bin/javac", "default-jdk-headless");

/// What `build` did.
#[derive(Debug)]
pub struct Built {
    /// The exploded webapp: a Context's docBase.
    pub webapp: PathBuf,
    /// False when the previous build was still current.
    pub compiled: bool,
    pub millis: u128,
}

fn require(path: &str, package: &str) -> Result<()> {
    if !Path::new(path).exists() {
        bail!("{path} is missing: install Debian's package {package}");
    }
    Ok(())
}

/// The build's identity: sources, javac (its resolved path: the JDK version) and each jar's
/// size and modification time (a package update changes them).
fn build_key() -> Result<String> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    SOURCES.hash(&mut h);
    WEB_XML.hash(&mut h);
    fs::canonicalize(JAVAC.0).with_context(|| format!("cannot resolve {}", JAVAC.0))?.hash(&mut h);
    for (jar, _) in LIBS.iter().chain([&SERVLET_API]) {
        let m = fs::metadata(jar).with_context(|| format!("cannot read {jar}"))?;
        (jar, m.len(), m.mtime(), m.mtime_nsec()).hash(&mut h);
    }
    Ok(format!("{:016x} {}", h.finish(), env!("CARGO_PKG_VERSION")))
}

/// Builds the webapp under `dir` (created if needed) unless the last build is still current.
pub fn build(dir: &Path) -> Result<Built> {
    let started = Instant::now();
    require(JAVAC.0, JAVAC.1)?;
    require(SERVLET_API.0, SERVLET_API.1)?;
    for (jar, package) in LIBS {
        require(jar, package)?;
    }
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    // One builder at a time per directory; a second one then finds the build current.
    let lock = fs::File::create(dir.join("build.lock"))?;
    let _lock = nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| anyhow!("cannot lock {}: {e}", dir.join("build.lock").display()))?;
    let webapp = dir.join("webapp");
    let key_file = dir.join("build.key");
    let key = build_key()?;
    if webapp.join("WEB-INF/web.xml").is_file() && fs::read_to_string(&key_file).is_ok_and(|k| k == key) {
        return Ok(Built { webapp, compiled: false, millis: started.elapsed().as_millis() });
    }
    // Build beside the result, then swap it in: a failed build leaves the last good one.
    let work = dir.join("build.tmp");
    let _ = fs::remove_dir_all(&work);
    let next = work.join("webapp");
    let classes = next.join("WEB-INF/classes");
    let lib = next.join("WEB-INF/lib");
    fs::create_dir_all(&classes)?;
    fs::create_dir_all(&lib)?;
    let mut sources = Vec::new();
    for (rel, text) in SOURCES {
        let path = work.join(rel);
        fs::create_dir_all(path.parent().expect("sources are in a package directory"))?;
        fs::write(&path, text)?;
        sources.push(path);
    }
    fs::write(next.join("WEB-INF/web.xml"), WEB_XML)?;
    let classpath: Vec<&str> = [SERVLET_API.0].into_iter().chain(LIBS.iter().map(|(j, _)| *j)).collect();
    let out = Command::new(JAVAC.0)
        // C1 only: javac's run is too short for the optimizing compiler to pay (half the CPU).
        .args(["-J-XX:TieredStopAtLevel=1", "--release", "17", "-encoding", "UTF-8", "-Xlint:all", "-Werror", "-d"])
        .arg(&classes)
        .arg("-cp")
        .arg(classpath.join(":"))
        .args(&sources)
        .output()
        .with_context(|| format!("cannot run {}", JAVAC.0))?;
    if !out.status.success() {
        bail!("javac failed:\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    for (jar, _) in LIBS {
        let name = Path::new(jar).file_name().expect("jar paths have a name");
        fs::copy(jar, lib.join(name)).with_context(|| format!("cannot copy {jar}"))?;
    }
    let old = dir.join("webapp.old");
    let _ = fs::remove_dir_all(&old);
    if webapp.exists() {
        fs::rename(&webapp, &old)?;
    }
    fs::rename(&next, &webapp)?;
    let _ = fs::remove_dir_all(&old);
    let _ = fs::remove_dir_all(&work);
    fs::write(&key_file, &key)?;
    Ok(Built { webapp, compiled: true, millis: started.elapsed().as_millis() })
}

/// Where the application reaches its data layer, as the lab writes it into the Context file.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The exploded webapp (`Built::webapp`).
    pub webapp: PathBuf,
    /// ActiveMQ's OpenWire address, `HOST:PORT` (the data-layer address).
    pub broker: String,
    pub db: DbUrl,
    pub queue: String,
    pub table: String,
    pub consumers: u32,
    pub commit_wait_ms: u64,
    pub io_timeout_ms: u64,
    /// The consumer's name in the ledger (default: the host name).
    pub node: Option<String>,
}

fn xml_attr(s: &str) -> String {
    s.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The Context file (`$CATALINA_BASE/conf/Catalina/localhost/lab.xml` deploys it at /lab).
/// `override="false"`: these values win over web.xml's loopback defaults.
pub fn context_xml(s: &Settings) -> Result<String> {
    let (bhost, bport) = s
        .broker
        .rsplit_once(':')
        .and_then(|(h, p)| p.parse::<u16>().ok().map(|p| (h.trim_matches(['[', ']']), p)))
        .ok_or_else(|| anyhow!("broker '{}' is not HOST:PORT", s.broker))?;
    if s.db.host.starts_with('/') {
        bail!("the application reaches PostgreSQL over TCP: give the database URL a host, not a socket directory");
    }
    let mut params: Vec<(&str, String)> = vec![
        ("lab.broker.host", bhost.to_string()),
        ("lab.broker.port", bport.to_string()),
        ("lab.db.host", s.db.host.clone()),
        ("lab.db.port", s.db.port.to_string()),
        ("lab.db.name", s.db.database.clone()),
        ("lab.db.user", s.db.user.clone()),
        ("lab.queue", s.queue.clone()),
        ("lab.table", s.table.clone()),
        ("lab.consumers", s.consumers.to_string()),
        ("lab.commit_wait_ms", s.commit_wait_ms.to_string()),
        ("lab.io_timeout_ms", s.io_timeout_ms.to_string()),
    ];
    if let Some(p) = &s.db.password {
        params.push(("lab.db.password", p.clone()));
    }
    if let Some(n) = &s.node {
        params.push(("lab.node", n.clone()));
    }
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- hastack lab application (written by hastack lab app-context) -->\n\
         <Context docBase=\"{}\" reloadable=\"false\">\n",
        xml_attr(&s.webapp.display().to_string())
    );
    for (name, value) in params {
        writeln!(xml, "  <Parameter name=\"{name}\" value=\"{}\" override=\"false\"/>", xml_attr(&value))?;
    }
    // Nothing to scan in the client jars: no TLDs, no annotations (web.xml is metadata-complete).
    xml.push_str("  <JarScanner scanClassPath=\"false\" scanManifest=\"false\">\n    <JarScanFilter defaultTldScan=\"false\"/>\n  </JarScanner>\n</Context>\n");
    Ok(xml)
}

/// Writes the Context file atomically, mode 0640 with the group of its directory (Tomcat's
/// `conf/Catalina/localhost` belongs to group tomcat): Tomcat reads it, other users cannot
/// read the database password in it.
pub fn write_context(path: &Path, xml: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| anyhow!("{} is not a file name", path.display()))?;
    let tmp = dir.join(format!(".{}.hastack-{}", name.to_string_lossy(), std::process::id()));
    let write = || -> std::io::Result<()> {
        fs::write(&tmp, xml)?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o640))?;
        let gid = fs::metadata(dir)?.gid();
        std::os::unix::fs::chown(&tmp, None, Some(gid))?;
        fs::rename(&tmp, path)
    };
    write()
        .inspect_err(|_| {
            let _ = fs::remove_file(&tmp);
        })
        .with_context(|| format!("cannot write {}", path.display()))
}

#[derive(clap::Args, Clone, Debug)]
pub struct ContextArgs {
    /// The built webapp directory (printed by build-app).
    #[arg(long)]
    pub webapp: PathBuf,
    /// ActiveMQ's OpenWire address through the data-layer address, HOST:PORT.
    #[arg(long)]
    pub broker: String,
    /// postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE (the password may come from PGPASSWORD).
    #[arg(long)]
    pub db: String,
    #[arg(long, default_value = "hastack.lab.tx")]
    pub queue: String,
    #[arg(long, default_value = "hastack_ledger")]
    pub table: String,
    /// Consumer threads per application server.
    #[arg(long, default_value_t = 4)]
    pub consumers: u32,
    /// How long a POST waits for its commit before it answers 503.
    #[arg(long, default_value_t = 2000)]
    pub commit_wait_ms: u64,
    /// Bound on each connect and exchange with the broker and the database.
    #[arg(long, default_value_t = 3000)]
    pub io_timeout_ms: u64,
    /// The consumer's name in the ledger (default: the host name).
    #[arg(long)]
    pub node: Option<String>,
    /// Write here (atomically, mode 0640: it holds the password) instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

impl ContextArgs {
    pub fn settings(&self) -> Result<Settings> {
        Ok(Settings {
            webapp: self.webapp.clone(),
            broker: self.broker.clone(),
            db: DbUrl::parse(&self.db).map_err(|e| anyhow!("--db: {e}"))?.with_env_password(),
            queue: self.queue.clone(),
            table: self.table.clone(),
            consumers: self.consumers.max(1),
            commit_wait_ms: self.commit_wait_ms.max(1),
            io_timeout_ms: self.io_timeout_ms.max(1),
            node: self.node.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_file_carries_every_setting_escaped() {
        let s = Settings {
            webapp: "/srv/lab/webapp".into(),
            broker: "10.0.2.100:61616".into(),
            db: DbUrl::parse("postgresql://lab:p%22w%3C@10.0.2.100:5432/ledger").unwrap(),
            queue: "hastack.lab.tx".into(),
            table: "hastack_ledger".into(),
            consumers: 4,
            commit_wait_ms: 2000,
            io_timeout_ms: 3000,
            node: Some("node1".into()),
        };
        let xml = context_xml(&s).unwrap();
        assert!(xml.contains("<Context docBase=\"/srv/lab/webapp\""), "{xml}");
        for (k, v) in [
            ("lab.broker.host", "10.0.2.100"),
            ("lab.broker.port", "61616"),
            ("lab.db.name", "ledger"),
            ("lab.db.password", "p&quot;w&lt;"),
            ("lab.node", "node1"),
        ] {
            assert!(xml.contains(&format!("<Parameter name=\"{k}\" value=\"{v}\" override=\"false\"/>")), "{k}: {xml}");
        }
        let bad = Settings { broker: "10.0.2.100".into(), ..s.clone() };
        assert!(context_xml(&bad).unwrap_err().to_string().contains("HOST:PORT"));
        let socket = Settings { db: DbUrl::parse("postgresql://u@/d?host=/run/postgresql").unwrap(), ..s };
        assert!(context_xml(&socket).is_err());
    }

    #[test]
    fn every_java_source_is_carried() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab/app/src/hastack/lab");
        let mut on_disk: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| format!("src/hastack/lab/{}", e.unwrap().file_name().to_string_lossy()))
            .collect();
        on_disk.sort();
        let carried: Vec<String> = SOURCES.iter().map(|(p, _)| p.to_string()).collect();
        assert_eq!(carried, on_disk, "lab/app sources and app::SOURCES must list the same files");
    }
}
