//! A real Corosync + Pacemaker cluster on one machine: each node is a host of a `Lan` (its own
//! network namespace) where `corosync -f` and `pacemakerd` run in a mount namespace of their own,
//! with the node's own /etc/corosync, /var/lib/pacemaker, /var/lib/corosync, /var/log, /run,
//! /dev/shm (libqb's IPC buffers) and this build's agents bound over
//! /usr/lib/ocf/resource.d/hastack (another build's `install --root /` cannot swap them). The
//! cluster's tools run in the node's namespaces (`nsenter`), as an administrator on that node.
//! On drop every process of the node's network namespace is killed, which ends the mount
//! namespaces and their mounts; the directories are temporary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{bin, run_with_deadline, wait_for, ChildGuard, Lan, Outcome};

/// One node: the supervisor shell whose mount namespace the node's daemons share.
pub struct PcmkNode {
    pub name: String,
    pub ns: String,
    pub dir: tempfile::TempDir,
    supervisor: ChildGuard,
}

/// The nodes of a cluster, `node1`..`nodeN` on hosts 1..N of the LAN.
pub struct Pacemaker {
    pub nodes: Vec<PcmkNode>,
    /// Corosync's key, also the handoff key of agents that default to it.
    pub authkey: Vec<u8>,
}

/// What each node runs as its "init": its mounts, then Corosync, then pacemakerd.
const NODE_SCRIPT: &str = r#"set -e
D="$1"; NAME="$2"
mount --make-rprivate /
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount --bind "$D/etc-corosync" /etc/corosync
mount --bind "$D/lib-pacemaker" /var/lib/pacemaker
mount --bind "$D/lib-corosync" /var/lib/corosync
mount --bind "$D/log" /var/log
mount --bind "$D/ocf/usr/lib/ocf/resource.d/hastack" /usr/lib/ocf/resource.d/hastack
hostname "$NAME"
corosync -f >/var/log/corosync.console 2>&1 &
i=0
until corosync-cfgtool -s >/dev/null 2>&1; do
  i=$((i+1)); [ $i -lt 300 ] || { echo "corosync did not come up" >&2; exit 1; }
  sleep 0.1
done
export PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none
exec pacemakerd >/var/log/pacemakerd.console 2>&1
"#;

impl Pacemaker {
    /// Starts Corosync and Pacemaker on hosts `1..=n` of `lan` and waits until every node is
    /// online and a DC is elected. Two nodes: `two_node` quorum. No fencing (stonith-enabled is
    /// set false once the cluster is up): the tests move resources, they do not lose nodes.
    pub fn start(lan: &Lan, n: usize) -> Pacemaker {
        let mut authkey = vec![0u8; 128];
        std::io::Read::read_exact(&mut std::fs::File::open("/dev/urandom").unwrap(), &mut authkey).unwrap();
        std::fs::create_dir_all("/usr/lib/ocf/resource.d/hastack").unwrap();
        let mut nodelist = String::new();
        for i in 1..=n {
            nodelist +=
                &format!("  node {{\n    ring0_addr: {}\n    name: node{i}\n    nodeid: {i}\n  }}\n", lan.v4(i as u8));
        }
        let two_node = if n == 2 { "  two_node: 1\n" } else { "" };
        let conf = format!(
            "totem {{\n  version: 2\n  cluster_name: hsttest\n  transport: knet\n  crypto_cipher: none\n  crypto_hash: none\n  token: 3000\n}}\n\
             nodelist {{\n{nodelist}}}\nquorum {{\n  provider: corosync_votequorum\n{two_node}}}\n\
             logging {{\n  to_syslog: no\n  to_stderr: no\n  to_logfile: yes\n  logfile: /var/log/corosync.log\n  timestamp: on\n}}\n"
        );
        let mut nodes = Vec::new();
        for i in 1..=n {
            let dir = tempfile::Builder::new().prefix("hst-pcmk").tempdir().unwrap();
            let d = dir.path();
            for sub in ["etc-corosync", "lib-pacemaker", "lib-corosync", "log/pacemaker", "ocf"] {
                std::fs::create_dir_all(d.join(sub)).unwrap();
            }
            std::fs::write(d.join("etc-corosync/corosync.conf"), &conf).unwrap();
            std::fs::write(d.join("etc-corosync/authkey"), &authkey).unwrap();
            set_mode(&d.join("etc-corosync/authkey"), 0o400);
            for sub in ["cib", "pengine", "blackbox", "cores"] {
                std::fs::create_dir_all(d.join("lib-pacemaker").join(sub)).unwrap();
            }
            // The daemons run as hacluster:haclient and write their CIB and logs.
            let mut chown = Command::new("chown");
            chown.args(["-R", "hacluster:haclient"]).arg(d.join("lib-pacemaker")).arg(d.join("log/pacemaker"));
            run_with_deadline(&mut chown, Duration::from_secs(10)).expect(0);
            set_mode(d, 0o755);
            let mut install = Command::new(bin());
            install.args(["install", "--root"]).arg(d.join("ocf"));
            run_with_deadline(&mut install, Duration::from_secs(10)).expect(0);
            let name = format!("node{i}");
            let supervisor = ChildGuard(
                Command::new("ip")
                    .args([
                        "netns",
                        "exec",
                        lan.ns(i),
                        "unshare",
                        "--mount",
                        "--uts",
                        "--",
                        "sh",
                        "-c",
                        NODE_SCRIPT,
                        "sh",
                    ])
                    .arg(d)
                    .arg(&name)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap(),
            );
            nodes.push(PcmkNode { name, ns: lan.ns(i).to_string(), dir, supervisor });
        }
        let cluster = Pacemaker { nodes, authkey };
        wait_for("every node online with a DC", Duration::from_secs(180), || {
            let out = cluster.tool(1, "crm_mon", &["--one-shot", "--output-as=xml"]);
            out.code == 0
                && out.stdout.contains("<current_dc present=\"true\"")
                && out.stdout.matches("online=\"true\"").count() == n
        });
        cluster
            .tool(1, "crm_attribute", &["--type", "crm_config", "--name", "stonith-enabled", "--update", "false"])
            .expect(0);
        cluster
    }

    /// The PID of a process in the node's mount namespace (the supervisor shell, or pacemakerd
    /// once it has replaced it).
    pub fn pid(&self, node: usize) -> u32 {
        self.nodes[node - 1].supervisor.0.id()
    }

    /// Runs a cluster tool on a node (its network, mount and UTS namespaces).
    pub fn tool(&self, node: usize, program: &str, args: &[&str]) -> Outcome {
        let mut cmd = Command::new("nsenter");
        cmd.args(["--target", &self.pid(node).to_string(), "--mount", "--net", "--uts", "--", program]).args(args);
        run_with_deadline(&mut cmd, Duration::from_secs(60))
    }

    /// A file of the node's /var/log.
    pub fn log(&self, node: usize, name: &str) -> String {
        std::fs::read_to_string(self.nodes[node - 1].dir.path().join("log").join(name)).unwrap_or_default()
    }

    /// The node a primitive is started on, as crm_resource locates it (None while stopped or
    /// on more than one node).
    pub fn located(&self, rsc: &str) -> Option<String> {
        let out = self.tool(1, "crm_resource", &["--locate", "--resource", rsc]);
        let nodes: Vec<String> = out
            .stdout
            .lines()
            .filter_map(|l| l.split("is running on: ").nth(1))
            .map(|n| n.trim().to_string())
            .collect();
        (nodes.len() == 1).then(|| nodes[0].clone())
    }

    /// The node directory (for a failed test's logs).
    pub fn dir(&self, node: usize) -> &Path {
        self.nodes[node - 1].dir.path()
    }
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

impl Drop for Pacemaker {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for (i, node) in self.nodes.iter().enumerate() {
                let p: PathBuf = node.dir.path().join("log/pacemaker/pacemaker.log");
                let text = std::fs::read_to_string(&p).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(60).collect();
                eprintln!("--- node{} pacemaker.log (last lines):", i + 1);
                for l in tail.iter().rev() {
                    eprintln!("{l}");
                }
                eprintln!("--- node{} corosync.console: {}", i + 1, self.log(i + 1, "corosync.console"));
                eprintln!("--- node{} pacemakerd.console: {}", i + 1, self.log(i + 1, "pacemakerd.console"));
            }
        }
        // Every process of the node's network namespace: Corosync, Pacemaker's daemons, the
        // agents' daemons (in sessions of their own). Their mount namespaces end with them.
        for node in &self.nodes {
            for pid in netns_processes(&node.ns) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        // (No wait_for here: a panic inside a drop that runs for a panic aborts the run.)
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.nodes.iter().any(|n| !netns_processes(&n.ns).is_empty()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The processes living in a network namespace.
pub fn netns_processes(ns: &str) -> Vec<i32> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(format!("/run/netns/{ns}")) else { return Vec::new() };
    let ino = meta.ino();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::metadata(format!("/proc/{pid}/ns/net")).is_ok_and(|m| m.ino() == ino))
        .collect()
}
