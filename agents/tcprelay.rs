//! `tcprelay`: a virtual IP and a TCP relay on it, in front of the application that runs on
//! every node; with `allow-migrate=true` a planned move carries the clients' open connections
//! to the other node (TCP_REPAIR) instead of resetting them.
//!
//! The relay (relay.rs) is a daemon of ours that owns the client-facing sockets; the
//! application behind it (a clone of `app`, `tomcat`...) sees one connection from the relay on
//! its own node. The agent owns the address too (the `vip` agent's parameters and code), so the
//! address moves inside the migration, between the moment the source stops answering and the
//! moment the target's sockets exist: a separate `vip` resource would be stopped and started
//! around the migration by Pacemaker, at the wrong moments.
//!
//! migrate_to (source): the relay freezes its connections and releases the address
//! (relay.rs); migrate_from (target): fetch the state from the source (handoff.rs), then start
//! the relay with it. A failed migrate_to or migrate_from makes Pacemaker stop the resource on
//! both nodes and start it on the target: the clients are reset, as without migration.

mod conn;
pub mod control;
pub mod handoff;
mod migrate;
pub mod relay;
pub mod state;

use std::net::{SocketAddr, ToSocketAddrs};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::agents::service::{self, checks, Found, Instance, Probe, Service, StopStep};
use crate::agents::vip::{self, Vip, VipConfig, VIP_PARAMS};
use crate::net::tcprepair::{self, RepairError};
use crate::ocf::agent::VALIDATE_HOST;
use crate::ocf::{ActionSpec, Agent, AgentSpec, Ctx, Deadline, OcfError, OcfResult, OcfStatus, ParamSpec};
use relay::Framing;

pub struct Tcprelay;

const OWN_PARAMS: [ParamSpec; 8] = [
    ParamSpec::integer("port", Some(1), Some(65535))
        .required()
        .short("Port on the virtual address")
        .long("The TCP port the relay listens on at the virtual address `ip`; clients connect to ip:port."),
    ParamSpec::string("backend").required().short("The application on each node").long(
        "Where the relay on each node forwards the connections: the application's address and port on \
         that node, as an IP literal, e.g. 127.0.0.1:8080 or [::1]:8080 (no names: the relay must not \
         depend on a resolver).",
    ),
    ParamSpec::select("framing", &["line", "none"]).default("line").short("Message boundaries").long(
        "Where a migration may cut the byte stream between the application on the source and the one on \
         the target. line: messages end with a newline; the application on the source receives only \
         whole messages (a message under way is completed first) and answers them before the move. \
         none: no boundaries known; the stream is cut where it stands, which suits only protocols whose \
         client waits for each answer before it sends again.",
    ),
    ParamSpec::integer("drain_timeout", Some(1), Some(300)).default("5").short("Drain budget (s)").long(
        "Seconds a migration waits for messages under way to complete and for the application on the \
         source to answer what it received (it sees its connections half-closed), within the \
         migrate_to timeout; past it the migration fails and Pacemaker stops and starts the resource.",
    ),
    ParamSpec::integer("handoff_port", Some(1), Some(65535)).default("7480").short("Handoff port").long(
        "The TCP port a frozen source serves the connections' state on (every address of the source \
         node), for at most handoff_timeout after migrate_to; the target fetches it in migrate_from.",
    ),
    ParamSpec::integer("handoff_timeout", Some(1), Some(3600)).default("60").short("Handoff wait (s)").long(
        "Seconds a frozen source keeps the state for the target. Pacemaker runs migrate_from right \
         after migrate_to and stops the source after it, which ends the wait; if migrate_from never \
         comes, the state is dropped then, and with it the frozen connections (their clients are \
         reset when they reach the address again).",
    ),
    ParamSpec::string("handoff_key").default("/etc/corosync/authkey").short("Shared key file").long(
        "A file with the same secret (at least 16 bytes) on every node; source and target prove they \
         hold it (HMAC-SHA-256) before the state moves. The default is Corosync's authkey.",
    ),
    ParamSpec::string("migration_network_suffix").short("Suffix to the node name for the handoff").long(
        "Appended to the Pacemaker node name of the source before it is resolved, to reach it over \
         another network (as VirtualDomain's parameter of the same name): node1 becomes node1-mig.",
    ),
];

const fn concat<const N: usize>(a: &[ParamSpec], b: &[ParamSpec]) -> [ParamSpec; N] {
    assert!(a.len() + b.len() == N);
    let mut out = [a[0]; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < b.len() {
        out[a.len() + j] = b[j];
        j += 1;
    }
    out
}

static PARAMS: [ParamSpec; 18] = concat(&VIP_PARAMS, &OWN_PARAMS);

static SPEC: AgentSpec = AgentSpec {
    name: "tcprelay",
    shortdesc: "Virtual IP with a TCP relay whose connections survive a live migration",
    longdesc: "Owns a virtual IP (the vip agent's parameters) and relays TCP connections from ip:port to \
        the application on the node (backend), which runs on every node (a clone). \
        LIVE MIGRATION: with the meta attribute allow-migrate=true, a planned move (pcs resource move, \
        crm_resource --move) carries the clients' open connections to the target: migrate_to lets the \
        application answer what it received, freezes every client connection with TCP_REPAIR, \
        releases the address and hands the connections' exact state to the target; migrate_from \
        recreates them there, takes the address and relays to the application on the target. Clients \
        see a pause, no reset, no byte lost or repeated. The connection moves, not the application's \
        session: each message (a line with framing=line) must make sense to the application on the \
        target. A node failure is never a migration: the resource starts on the survivor and clients \
        reconnect. REQUIREMENTS: Linux 4.8 or later (TCP_REPAIR, TCP_REPAIR_WINDOW), CAP_NET_ADMIN (the \
        agent runs as root), the same handoff_key on both nodes, the source node's name resolvable on \
        the target, handoff_port reachable between the nodes. Where one is missing, validate-all with \
        OCF_CHECK_LEVEL=10 says so (4: no capability, 5: kernel or key), migrate_to fails at once and \
        Pacemaker stops the resource and starts it on the target (clients reset, as without \
        migration). MONITOR: depth 0, the relay runs and the address is up; depth 10, also the \
        application accepts a connection.",
    params: &PARAMS,
    actions: &[
        ActionSpec::new("start", "20s"),
        ActionSpec::new("stop", "20s"),
        ActionSpec::monitor("10s", "20s"),
        ActionSpec::monitor("30s", "20s").depth(10),
        ActionSpec::new("migrate_to", "20s"),
        ActionSpec::new("migrate_from", "20s"),
        ActionSpec::new("meta-data", "5s"),
        ActionSpec::new("validate-all", "20s"),
    ],
};

/// The relay's own parameters, checked (level 0).
struct Cfg {
    listen: SocketAddr,
    backend: SocketAddr,
    framing: Framing,
    drain: Duration,
    handoff_port: u16,
    handoff_timeout: Duration,
    key: PathBuf,
    suffix: String,
}

fn cfg(ctx: &Ctx) -> OcfResult<Cfg> {
    let vip = VipConfig::from_params(&ctx.params)?;
    let port = ctx.params.int("port").expect("required") as u16;
    let backend_text = ctx.params.str("backend");
    let backend: SocketAddr = backend_text.trim().parse().map_err(|_| {
        OcfError::configured(format!(
            "parameter 'backend' must be an IP address and port such as 127.0.0.1:8080 or [::1]:8080, got '{backend_text}'"
        ))
    })?;
    if backend.port() == 0 {
        return Err(OcfError::configured("parameter 'backend' needs a port other than 0"));
    }
    let key = ctx.params.str("handoff_key");
    checks::require_absolute("handoff_key", key)?;
    if key.chars().any(char::is_whitespace) {
        return Err(OcfError::configured(format!("parameter 'handoff_key' must not contain spaces: '{key}'")));
    }
    let suffix = ctx.params.get("migration_network_suffix").unwrap_or("");
    if suffix.chars().any(|c| c.is_whitespace() || c == '/' || c == ':') {
        return Err(OcfError::configured(format!(
            "parameter 'migration_network_suffix' is not a host name part: '{suffix}'"
        )));
    }
    Ok(Cfg {
        listen: SocketAddr::new(vip.ip, port),
        backend,
        framing: Framing::parse(ctx.params.str("framing")).expect("checked choice"),
        drain: Duration::from_secs(ctx.params.int("drain_timeout").unwrap_or(5) as u64),
        handoff_port: ctx.params.int("handoff_port").unwrap_or(7480) as u16,
        handoff_timeout: Duration::from_secs(ctx.params.int("handoff_timeout").unwrap_or(60) as u64),
        key: PathBuf::from(key),
        suffix: suffix.to_string(),
    })
}

fn resource(ctx: &Ctx) -> String {
    let r = ctx.env.resource();
    if r.is_empty() {
        "default".into()
    } else {
        r.to_string()
    }
}

/// Why live migration cannot work here, with the code validate-all gives it: no capability is 4,
/// a kernel without TCP_REPAIR or a missing key 5.
fn migration_blocker(c: &Cfg) -> Option<OcfError> {
    let consequence = "a move of this resource is a stop and a start (clients reset)";
    if let Err(e) = tcprepair::check_support() {
        let reason = format!("live migration cannot work on this node: {e}; {consequence}");
        return Some(match e {
            RepairError::NotPermitted(_) => OcfError::perm(reason),
            _ => OcfError::installed(reason),
        });
    }
    if let Err(e) = handoff::Key::load(&c.key) {
        return Some(OcfError::installed(format!("parameter 'handoff_key': {e}; {consequence}")));
    }
    None
}

/// Whether the relay daemon of this instance lives (found by the identity start saved).
fn running(ctx: &Ctx) -> bool {
    matches!(Instance::new(Relay::AGENT, ctx).found(Relay::SERVER, None), Found::Running(_))
}

/// The daemon's answer to `status`, within a short per-request budget.
fn ask_status(ctx: &Ctx) -> Result<control::Answer, String> {
    control::ask(&control::socket_path(&resource(ctx)), "status", ctx.deadline.at_most(Duration::from_secs(3)))
}

/// The relay daemon on the service model: launched in a session of its own, ready when its
/// control socket answers `running`, stopped with SIGTERM (it closes its connections, or drops a
/// state nobody fetched) and SIGKILL after.
struct Relay {
    cfg: Cfg,
    resource: String,
    /// migrate_from: the fetched connections' state, and where the address goes once they exist.
    restore: Option<(PathBuf, vip::Placement)>,
}

impl Relay {
    fn control(&self) -> PathBuf {
        control::socket_path(&self.resource)
    }
}

impl Service for Relay {
    const AGENT: &'static str = "tcprelay";
    const SERVER: &'static str = "the relay";
    const STOP: &'static [StopStep] = &[StopStep::new(Signal::SIGTERM, 0.9, "closing its connections")];

    fn of(ctx: &Ctx) -> OcfResult<Relay> {
        Ok(Relay { cfg: cfg(ctx)?, resource: resource(ctx), restore: None })
    }

    fn prepare(&self, _ctx: &Ctx) -> OcfResult<()> {
        // A socket left by a killed daemon would answer nothing and hide the new one's.
        let _ = std::fs::remove_file(self.control());
        Ok(())
    }

    fn command(&self, _ctx: &Ctx) -> OcfResult<Command> {
        let exe =
            std::env::current_exe().map_err(|e| OcfError::installed(format!("cannot find the hastack binary: {e}")))?;
        let c = &self.cfg;
        let mut cmd = Command::new(exe);
        cmd.arg("tcprelay-daemon")
            .args(["--resource", &self.resource])
            .args(["--listen", &c.listen.to_string()])
            .args(["--backend", &c.backend.to_string()])
            .args(["--framing", c.framing.name()])
            .arg("--control")
            .arg(self.control())
            .env_clear();
        if let Some((file, place)) = &self.restore {
            cmd.arg("--restore").arg(file);
            cmd.args(["--vip-dev", &place.link.index.to_string(), "--vip-prefix", &place.prefix.to_string()]);
            if let Some(label) = &place.label {
                cmd.args(["--vip-label", label]);
            }
        }
        Ok(cmd)
    }

    fn ready(&self, _ctx: &Ctx, _pid: i32) -> Probe {
        match control::ask(&self.control(), "status", Deadline::after(Duration::from_millis(500))) {
            Ok(a) if a.word == "running" => Probe::Ready,
            Ok(a) => Probe::NotYet(Some(format!("it answers {}", a.text))),
            Err(_) => Probe::NotYet(None),
        }
    }

    /// The agent's monitor does the relay's checks (it owns the address too); a start that finds
    /// the daemon running is answered by that monitor before the model is asked.
    fn check(&self, _ctx: &Ctx, _main: i32) -> OcfResult {
        Ok(OcfStatus::Success)
    }
}

/// The depth-10 check: the application on this node accepts a connection.
fn backend_answers(ctx: &Ctx, c: &Cfg) -> OcfResult<()> {
    let left = ctx.deadline.at_most(Duration::from_secs(5)).remaining().max(Duration::from_millis(1));
    std::net::TcpStream::connect_timeout(&c.backend, left)
        .map(|_| ())
        .map_err(|e| OcfError::generic(format!("the application at {} (parameter 'backend'): {e}", c.backend)))
}

impl Agent for Tcprelay {
    fn spec(&self) -> &'static AgentSpec {
        &SPEC
    }

    fn validate(&self, ctx: &Ctx, level: u32) -> OcfResult<()> {
        Vip.validate(ctx, level)?;
        let c = cfg(ctx)?;
        // Only validate-all looks at live migration: the relay runs fine without it, so a start
        // must not fail for it. (Pacemaker does not pass allow-migrate to the agent: whether
        // the resource is configured to migrate is unknown here, so level 10 always checks.)
        if level >= VALIDATE_HOST && ctx.action == "validate-all" {
            if let Some(e) = migration_blocker(&c) {
                return Err(e);
            }
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx) -> OcfResult {
        let relay = Relay::of(ctx)?;
        if running(ctx) {
            return self.monitor(ctx);
        }
        Vip.start(ctx)?;
        match service::start(&relay, ctx) {
            Ok(status) => {
                ctx.log.info(format!("relaying {} to {}", relay.cfg.listen, relay.cfg.backend));
                Ok(status)
            }
            Err(e) => {
                let _ = Vip.stop(ctx);
                Err(e)
            }
        }
    }

    fn stop(&self, ctx: &Ctx) -> OcfResult {
        // TERM: the relay closes its connections (or drops a state nobody fetched) and exits.
        service::stop(&Relay::of(ctx)?, ctx)?;
        let _ = std::fs::remove_file(control::socket_path(&resource(ctx)));
        let _ = std::fs::remove_file(control::state_path(&resource(ctx)));
        Vip.stop(ctx)
    }

    fn monitor(&self, ctx: &Ctx) -> OcfResult {
        let relay = Relay::of(ctx)?;
        let c = &relay.cfg;
        // Ok(Success): the address is here and its link up (a probe without it answers Ok(7)).
        let address = Vip.monitor(ctx).and_then(|s| match s {
            OcfStatus::Success => Ok(s),
            _ => Err(OcfError::not_running(format!("{} is not configured", c.listen.ip()))),
        });
        // Orphans of a killed daemon, or a stopped (hung) one: 1, named.
        if let Err(e) = service::running(&relay, ctx) {
            if e.status != OcfStatus::NotRunning {
                return Err(e);
            }
            return match address {
                Ok(_) => Err(OcfError::generic(format!(
                    "the relay is not running but {} is still on this node; stop removes it",
                    c.listen.ip()
                ))),
                Err(_) if ctx.is_probe() => Ok(OcfStatus::NotRunning),
                Err(_) => Err(OcfError::not_running("the relay is not running")),
            };
        }
        let answer = ask_status(ctx).map_err(OcfError::generic)?;
        match answer.word.as_str() {
            "running" => {}
            "freezing" => return Ok(OcfStatus::Success),
            // The connections were handed to the target; only the state waits here, for at most
            // a minute: nothing of the resource is active on this node.
            "frozen" => {
                return match address {
                    Ok(_) => Err(OcfError::generic(format!(
                        "the relay handed its connections off but {} is still here",
                        c.listen.ip()
                    ))),
                    Err(_) => Err(OcfError::not_running("the connections were handed off to another node")),
                }
            }
            _ => return Err(OcfError::generic(format!("the relay answered: {}", answer.text))),
        }
        // The relay runs: a missing address or a downed link is a failure here, not a stop.
        address.map_err(|e| OcfError::generic(format!("the relay runs but {}", e.reason)))?;
        if ctx.check_level() >= 10 {
            backend_answers(ctx, c)?;
        }
        Ok(OcfStatus::Success)
    }

    fn migrate_to(&self, ctx: &Ctx) -> OcfResult {
        let c = cfg(ctx)?;
        let target = ctx.env.migrate_target().ok_or_else(|| {
            OcfError::generic("migrate_to without CRM_meta_migrate_target (Pacemaker names the target)")
        })?;
        if !running(ctx) {
            return Err(OcfError::generic("the relay is not running on this node: nothing to migrate"));
        }
        if let Some(e) = migration_blocker(&c) {
            return Err(OcfError::generic(e.reason));
        }
        // Keep a tenth of the budget (at least a second) to report.
        let budget =
            ctx.deadline.remaining().saturating_sub((ctx.deadline.remaining() / 10).max(Duration::from_secs(1)));
        let request = control::format(
            "freeze",
            &[
                ("port", c.handoff_port.to_string()),
                ("key", c.key.display().to_string()),
                ("drain_ms", c.drain.min(budget).as_millis().to_string()),
                ("within_ms", budget.as_millis().to_string()),
                ("hold_ms", c.handoff_timeout.as_millis().to_string()),
            ],
        );
        let answer =
            control::ask(&control::socket_path(&resource(ctx)), &request, ctx.deadline).map_err(OcfError::generic)?;
        if answer.word != "ok" {
            return Err(OcfError::generic(format!("migration to {target} refused: {}", answer.text)));
        }
        ctx.log.info(format!(
            "froze {} connections for {target} in {} ms ({} bytes sent and unacknowledged, {} unsent, {} unread, {} held by the relay, {} dropped); state of {} bytes on port {}",
            answer.num("connections"),
            answer.num("freeze_ms"),
            answer.num("unacked"),
            answer.num("unsent"),
            answer.num("unread"),
            answer.num("held"),
            answer.num("dropped"),
            answer.num("state_bytes"),
            c.handoff_port
        ));
        Ok(OcfStatus::Success)
    }

    fn migrate_from(&self, ctx: &Ctx) -> OcfResult {
        let c = cfg(ctx)?;
        let source = ctx.env.migrate_source().ok_or_else(|| {
            OcfError::generic("migrate_from without CRM_meta_migrate_source (Pacemaker names the source)")
        })?;
        if running(ctx) && ask_status(ctx).is_ok_and(|a| a.word == "running") {
            ctx.log.info("the relay already runs here");
            return Ok(OcfStatus::Success);
        }
        if let Some(e) = migration_blocker(&c) {
            return Err(OcfError::generic(e.reason));
        }
        let key = handoff::Key::load(&c.key).map_err(OcfError::generic)?;
        let host = format!("{source}{}", c.suffix);
        let addrs: Vec<SocketAddr> = (host.as_str(), c.handoff_port)
            .to_socket_addrs()
            .map_err(|e| OcfError::generic(format!("cannot resolve the source node '{host}': {e}")))?
            .collect();
        let fetch_by = ctx.deadline.fraction(0.5);
        let mut errors = Vec::new();
        let mut state = None;
        for addr in &addrs {
            match handoff::fetch(*addr, &key, &resource(ctx), fetch_by) {
                Ok(s) => {
                    state = Some(s);
                    break;
                }
                Err(e) => errors.push(format!("{addr}: {e}")),
            }
        }
        let state = state.ok_or_else(|| {
            OcfError::generic(format!("cannot fetch the connections' state from {host}: {}", errors.join("; ")))
        })?;
        ctx.log.info(format!(
            "fetched the state from {host}: {}",
            migrate::describe_state(&state).map_err(OcfError::generic)?
        ));
        let file = control::state_path(&resource(ctx));
        write_private(&file, &state)?;
        let vip_cfg = VipConfig::from_params(&ctx.params)?;
        let place = vip::place(&vip_cfg)?;
        let relay = Relay { cfg: c, resource: resource(ctx), restore: Some((file.clone(), place)) };
        let started = service::start(&relay, ctx);
        let _ = std::fs::remove_file(&file);
        started?;
        let (_, place) = relay.restore.as_ref().expect("set above");
        // The relay added the address once its connections existed (and announced it once).
        vip::announce_and_watch_after_takeover(ctx, &vip_cfg, place, std::time::Instant::now())?;
        let a = ask_status(ctx).map_err(OcfError::generic)?;
        ctx.log.info(format!(
            "restored {} connections from {source} ({} failed); they were frozen for {} ms",
            a.num("restored"),
            a.num("restore_failed"),
            a.num("freeze_ms")
        ));
        Ok(OcfStatus::Success)
    }
}

fn write_private(path: &Path, data: &[u8]) -> OcfResult<()> {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, b"")
        .and_then(|_| std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)))
        .and_then(|_| std::fs::write(&tmp, data))
        .and_then(|_| std::fs::rename(&tmp, path))
        .map_err(|e| OcfError::generic(format!("cannot write {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocf::agent::{env_from, run_agent_with};

    fn run(action: &str, pairs: &[(&str, &str)]) -> (i32, String) {
        run_agent_with(&Tcprelay, Some(action), &env_from(pairs))
    }

    #[test]
    fn meta_data_lists_the_migration_actions_and_every_parameter() {
        let (code, xml) = run("meta-data", &[]);
        assert_eq!(code, 0);
        for needle in [
            r#"<action name="migrate_to""#,
            r#"<action name="migrate_from""#,
            r#"name="backend""#,
            r#"name="dad_check""#,
        ] {
            assert!(xml.contains(needle), "{needle}");
        }
        assert_eq!(PARAMS.len(), VIP_PARAMS.len() + OWN_PARAMS.len());
    }

    #[test]
    fn bad_parameters_name_themselves() {
        let base =
            [("OCF_RESKEY_ip", "10.9.0.10"), ("OCF_RESKEY_port", "80"), ("OCF_RESKEY_backend", "127.0.0.1:8080")];
        assert_eq!(run("validate-all", &base).0, 0);
        for (name, value) in [
            ("backend", "localhost:8080"),
            ("backend", "127.0.0.1"),
            ("framing", "http"),
            ("handoff_key", "relative/key"),
            ("port", "0"),
            ("ip", "nonsense"),
            ("migration_network_suffix", "a b"),
        ] {
            let mut pairs: Vec<(String, String)> = base.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            pairs.retain(|(k, _)| k != &format!("OCF_RESKEY_{name}"));
            pairs.push((format!("OCF_RESKEY_{name}"), value.to_string()));
            let env = crate::ocf::OcfEnv::from_vars(pairs);
            let (code, _) = run_agent_with(&Tcprelay, Some("validate-all"), &env);
            assert_eq!(code, 6, "{name}={value}");
        }
    }

    #[test]
    fn migration_needs_pacemakers_node_names() {
        let base =
            [("OCF_RESKEY_ip", "10.9.0.10"), ("OCF_RESKEY_port", "80"), ("OCF_RESKEY_backend", "127.0.0.1:8080")];
        // Not running here, or no target: a soft error, never a hard one (the node stays usable).
        assert_eq!(run("migrate_to", &base).0, 1);
    }
}
