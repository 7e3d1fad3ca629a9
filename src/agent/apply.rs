//! `hastack agent apply`: polls the console for this cluster's desired changes and applies each
//! one with PLAN, COMMIT, VERIFY and, when verification fails, ROLLBACK, reporting every step.
//!
//! - PLAN reads the live CIB (`cibadmin --query`) and its version, makes the change on a file copy
//!   with Pacemaker's own tools (`CIB_file`: `cibadmin --modify`, `crm_resource
//!   --set-parameter`, `crm_attribute`) and diffs the two with `crm_diff`: that patch is the plan.
//! - COMMIT is `cibadmin --patch` of that patch. Pacemaker applies a patch only to the CIB version
//!   it was made from (admin_epoch, epoch and num_updates all equal, else "Update was older than
//!   existing configuration"): a change racing a local edit is refused by the CIB itself, never
//!   applied over it, and reported with both versions.
//! - VERIFY: `crm_verify -L -V`; for a resource, its agent's `validate-all` (`crm_resource
//!   --validate`); the cluster settles (`crm_resource --wait`); the resource is not failed.
//! - ROLLBACK restores the fragment saved at PLAN (the primitive, or the crm_config/rsc_defaults
//!   section) with `cibadmin --replace`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::cib::{self, Elem, Version};
use super::spec::Spec;

/// Exit codes: 0 every change applied (or nothing to do), 1 a change was refused, rolled back or
/// failed, 3 the console could not be asked (unreachable, token refused) or the CIB could not be
/// read. Usage errors (flags, the token file): 2.
pub const EXIT_NOT_APPLIED: i32 = 1;
pub const EXIT_CONSOLE: i32 = 3;

/// A test hook: a shell command run between PLAN and COMMIT (to race a local edit with it).
pub const BEFORE_COMMIT_ENV: &str = "HASTACK_APPLY_BEFORE_COMMIT";

#[derive(clap::Args, Debug)]
pub struct ApplyArgs {
    /// The console's URL, e.g. https://console.example.com:8080 (the one the alert agent reports to).
    #[arg(long, env = "HASTACK_CONSOLE_URL", value_parser = parse_url)]
    pub console: String,
    /// A file holding the cluster's token (`hastack console cluster add` printed it); the token
    /// says which cluster this is.
    #[arg(long, env = "HASTACK_CONSOLE_TOKEN_FILE")]
    pub token_file: PathBuf,
    /// Poll once, apply every pending change, and exit (for a systemd timer or by hand).
    #[arg(long)]
    pub once: bool,
    /// Time between polls when not --once.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub interval: Duration,
    /// How long VERIFY waits for the cluster to settle (crm_resource --wait).
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    pub settle_timeout: Duration,
    /// This node's name in the reports (default: the host name).
    #[arg(long)]
    pub node: Option<String>,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    crate::alert::settings::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("'{text}' is not a duration such as 30s"))
}

fn parse_url(text: &str) -> Result<String, String> {
    let t = text.trim_end_matches('/');
    let host = t.strip_prefix("http://").or_else(|| t.strip_prefix("https://"));
    match host {
        Some(h) if !h.is_empty() && !h.contains('/') => Ok(t.to_string()),
        _ => Err(format!("'{text}' is not a console URL such as https://console.example.com:8080")),
    }
}

/// How one change ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Applied,
    RolledBack,
    Refused,
    Failed,
}

impl Ended {
    fn state(self) -> &'static str {
        match self {
            Ended::Applied => "applied",
            Ended::RolledBack => "rolled_back",
            Ended::Refused => "refused",
            Ended::Failed => "failed",
        }
    }
}

struct Console {
    url: String,
    token: String,
    node: String,
    http: ureq::Agent,
}

impl Console {
    fn next(&self) -> Result<Option<Value>> {
        let url = format!("{}/api/v1/agent/changes/next", self.url);
        let mut r = self
            .http
            .get(&url)
            .header("Authorization", format!("Bearer {}", self.token))
            .call()
            .with_context(|| format!("cannot reach the console at {url}"))?;
        match r.status().as_u16() {
            204 => Ok(None),
            200 => {
                let text = r.body_mut().read_to_string().context("reading the console's answer")?;
                let v: Value = serde_json::from_str(&text).context("the console's answer is not JSON")?;
                Ok(Some(v["change"].clone()))
            }
            s => bail!("GET {url}: {s} {}", r.body_mut().read_to_string().unwrap_or_default()),
        }
    }

    fn step(&self, id: i64, step: &str, ok: bool, detail: &str, end: Option<Ended>) -> Result<()> {
        let url = format!("{}/api/v1/agent/changes/{id}/steps", self.url);
        let mut body = json!({ "node": self.node, "step": step, "ok": ok, "detail": detail });
        if let Some(e) = end {
            body["state"] = json!(e.state());
        }
        eprintln!("hastack agent apply: change {id}: {step}{}: {detail}", if ok { "" } else { " (failed)" });
        let mut r = self
            .http
            .post(&url)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Content-Type", "application/json")
            .send(serde_json::to_vec(&body)?)
            .with_context(|| format!("cannot reach the console at {url}"))?;
        match r.status().as_u16() {
            200 | 201 => Ok(()),
            s => bail!("POST {url}: {s} {}", r.body_mut().read_to_string().unwrap_or_default()),
        }
    }
}

pub fn run(args: ApplyArgs) -> i32 {
    // The token file is part of the command line: unreadable is a usage error.
    let token = match std::fs::read_to_string(&args.token_file) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_string(),
        Ok(_) => {
            eprintln!("hastack agent apply: --token-file {}: the file is empty", args.token_file.display());
            return 2;
        }
        Err(e) => {
            eprintln!("hastack agent apply: --token-file {}: {e}", args.token_file.display());
            return 2;
        }
    };
    match run_inner(args, token) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("hastack agent apply: {e:#}");
            EXIT_CONSOLE
        }
    }
}

fn run_inner(args: ApplyArgs, token: String) -> Result<i32> {
    let node = match args.node {
        Some(n) => n,
        None => nix::unistd::gethostname()?.to_string_lossy().into_owned(),
    };
    let http: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(format!("hastack-agent/{}", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let console = Console { url: args.console, token, node, http };
    let mut worst = 0;
    loop {
        let mut seen = Vec::new();
        while let Some(change) = console.next()? {
            let id = change["id"].as_i64().context("a change without an id")?;
            if seen.contains(&id) {
                bail!("the console offers change {id} again after it was reported");
            }
            seen.push(id);
            let ended = apply_one(&console, id, &change["spec"], args.settle_timeout)?;
            if ended != Ended::Applied {
                worst = EXIT_NOT_APPLIED;
            }
        }
        if args.once {
            return Ok(worst);
        }
        std::thread::sleep(args.interval);
    }
}

/// A directory of our own for the CIB copies, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Result<Scratch> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        let dir = std::env::temp_dir().join(format!("hastack-apply-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir))
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a rollback puts back.
enum Fragment {
    /// An element found by its id (`cibadmin --replace --xml-text`).
    Element(String),
    /// A whole section (`cibadmin --replace --scope S --xml-text`).
    Section(&'static str, String),
}

impl Fragment {
    fn restore(&self) -> Result<cib::Ran> {
        match self {
            Fragment::Element(text) => cib::tool("cibadmin", &["--replace", "--xml-text", text], None),
            Fragment::Section(scope, text) => {
                cib::tool("cibadmin", &["--replace", "--scope", scope, "--xml-text", text], None)
            }
        }
    }
    fn describe(&self) -> String {
        match self {
            Fragment::Element(text) => text.lines().next().unwrap_or_default().trim().to_string(),
            Fragment::Section(scope, _) => format!("the {scope} section"),
        }
    }
}

/// The edit PLAN makes on the copy, and what a rollback restores.
struct Edit {
    what: String,
    resource: Option<String>,
    fragment: Fragment,
}

/// Makes the change on the file copy `copy` of `live`; Err is a refusal with its reason.
fn edit(spec: &Spec, live: &str, copy: &Path) -> Result<Result<Edit, String>> {
    let elems = cib::elements(live)?;
    let primitive = |id: &str| elems.iter().find(|e| e.name == "primitive" && e.attr("id") == Some(id)).cloned();
    let on_copy = |program: &str, args: &[&str]| -> Result<()> {
        let ran = cib::tool(program, args, Some(copy))?;
        if !ran.ok() {
            bail!("{program} {} on the copy: {}", args.join(" "), ran.said());
        }
        Ok(())
    };
    let section = |name: &'static str, empty: &str| {
        let text = elems.iter().find(|e| e.name == name).map_or(empty.to_string(), |e| e.text(live).to_string());
        Fragment::Section(name, text)
    };
    Ok(Ok(match spec {
        Spec::Operation { resource, operation, interval, new_interval, new_timeout } => {
            let Some(p) = primitive(resource) else { return Ok(Err(format!("no primitive {resource:?} in the CIB"))) };
            let ops: Vec<&Elem> = elems
                .iter()
                .filter(|e| e.name == "op" && e.parent.as_deref() == Some("operations"))
                .filter(|e| e.primitive.as_deref() == Some(resource.as_str()) && e.attr("name") == Some(operation))
                .collect();
            let ms = |d: Option<&str>| d.and_then(crate::config::validate::duration_ms);
            let wanted: Vec<&Elem> = ops
                .iter()
                .copied()
                .filter(|e| interval.is_none() || ms(e.attr("interval")) == ms(interval.as_deref()))
                .collect();
            let intervals: Vec<&str> = ops.iter().map(|e| e.attr("interval").unwrap_or("0")).collect();
            let op = match wanted.as_slice() {
                [op] => *op,
                [] => {
                    return Ok(Err(format!(
                        "{resource} has no {operation} operation{} (its {operation} intervals: {intervals:?})",
                        interval.as_ref().map(|i| format!(" with interval {i}")).unwrap_or_default()
                    )))
                }
                _ => {
                    return Ok(Err(format!(
                    "{resource} has {} {operation} operations (intervals {intervals:?}): say which with \"interval\"",
                    wanted.len()
                )))
                }
            };
            let id = op.attr("id").unwrap_or_default();
            let mut xml = format!("<op id=\"{}\"", cib::escape(id));
            let mut what = format!("op {id}:");
            if let Some(i) = new_interval {
                xml += &format!(" interval=\"{}\"", cib::escape(i));
                what += &format!(" interval {} -> {i}", op.attr("interval").unwrap_or("0"));
            }
            if let Some(t) = new_timeout {
                xml += &format!(" timeout=\"{}\"", cib::escape(t));
                what += &format!(" timeout {} -> {t}", op.attr("timeout").unwrap_or("(default)"));
            }
            xml += "/>";
            on_copy("cibadmin", &["--modify", "--xml-text", &xml])?;
            Edit { what, resource: Some(resource.clone()), fragment: Fragment::Element(p.text(live).to_string()) }
        }
        Spec::Parameter { resource, name, value } => {
            let Some(p) = primitive(resource) else { return Ok(Err(format!("no primitive {resource:?} in the CIB"))) };
            on_copy("crm_resource", &["--resource", resource, "--set-parameter", name, "--parameter-value", value])?;
            Edit {
                what: format!("{resource} parameter {name}={value}"),
                resource: Some(resource.clone()),
                fragment: Fragment::Element(p.text(live).to_string()),
            }
        }
        Spec::MigrationThreshold { resource: Some(resource), value } => {
            let Some(p) = primitive(resource) else { return Ok(Err(format!("no primitive {resource:?} in the CIB"))) };
            let v = value.to_string();
            on_copy(
                "crm_resource",
                &["--resource", resource, "--meta", "--set-parameter", "migration-threshold", "--parameter-value", &v],
            )?;
            Edit {
                what: format!("{resource} migration-threshold={v}"),
                resource: Some(resource.clone()),
                fragment: Fragment::Element(p.text(live).to_string()),
            }
        }
        Spec::MigrationThreshold { resource: None, value } => {
            let v = value.to_string();
            on_copy("crm_attribute", &["--type", "rsc_defaults", "--name", "migration-threshold", "--update", &v])?;
            Edit {
                what: format!("rsc_defaults migration-threshold={v}"),
                resource: None,
                fragment: section("rsc_defaults", "<rsc_defaults/>"),
            }
        }
        Spec::Maintenance { enabled } => {
            let v = enabled.to_string();
            on_copy("crm_attribute", &["--type", "crm_config", "--name", "maintenance-mode", "--update", &v])?;
            Edit {
                what: format!("maintenance-mode={v}"),
                resource: None,
                fragment: section("crm_config", "<crm_config/>"),
            }
        }
        Spec::CorosyncTiming { .. } => unreachable!("validate refuses it"),
    }))
}

/// Runs one change through PLAN, COMMIT, VERIFY (and ROLLBACK); reports each step.
fn apply_one(console: &Console, id: i64, spec: &Value, settle: Duration) -> Result<Ended> {
    let spec: Spec = match serde_json::from_value(spec.clone()) {
        Ok(s) => s,
        Err(e) => {
            let why = format!("this agent does not know this change ({e}); upgrade hastack on the node");
            console.step(id, "refused", false, &why, Some(Ended::Refused))?;
            return Ok(Ended::Refused);
        }
    };
    if let Err(e) = spec.validate() {
        console.step(id, "refused", false, &format!("{e:#}"), Some(Ended::Refused))?;
        return Ok(Ended::Refused);
    }

    // PLAN
    let scratch = Scratch::new()?;
    let live = cib::query()?;
    let planned = Version::of(&live)?;
    let (original, copy, patch) =
        (scratch.path("original.xml"), scratch.path("changed.xml"), scratch.path("patch.xml"));
    std::fs::write(&original, &live)?;
    std::fs::write(&copy, &live)?;
    let edit = match edit(&spec, &live, &copy) {
        Ok(Ok(e)) => e,
        Ok(Err(why)) => {
            console.step(id, "refused", false, &format!("CIB {planned}: {why}"), Some(Ended::Refused))?;
            return Ok(Ended::Refused);
        }
        Err(e) => {
            console.step(id, "plan", false, &format!("CIB {planned}: {e:#}"), Some(Ended::Failed))?;
            return Ok(Ended::Failed);
        }
    };
    let original_s = original.to_string_lossy().into_owned();
    let copy_s = copy.to_string_lossy().into_owned();
    let diff = cib::tool("crm_diff", &["--original", &original_s, "--new", &copy_s], None)?;
    match diff.code {
        0 => {
            let detail = format!("CIB {planned}: {}: the CIB already says so, nothing to change", edit.what);
            console.step(id, "plan", true, &detail, Some(Ended::Applied))?;
            return Ok(Ended::Applied);
        }
        1 => {}
        _ => {
            console.step(id, "plan", false, &format!("crm_diff: {}", diff.said()), Some(Ended::Failed))?;
            return Ok(Ended::Failed);
        }
    }
    std::fs::write(&patch, &diff.stdout)?;
    console.step(id, "plan", true, &format!("CIB {planned}: {}\n{}", edit.what, diff.stdout.trim()), None)?;

    if let Ok(hook) = std::env::var(BEFORE_COMMIT_ENV) {
        let _ = std::process::Command::new("sh").args(["-c", &hook]).status();
    }

    // COMMIT: the CIB applies the patch only to the version it was made from.
    let patch_s = patch.to_string_lossy().into_owned();
    let committed = cib::tool("cibadmin", &["--patch", "--xml-file", &patch_s], None)?;
    let now = Version::of(&cib::query()?)?;
    if !committed.ok() {
        if now != planned {
            let why = format!(
                "the CIB moved from {planned} (plan) to {now} (a local edit?): not applied; cibadmin --patch: {}",
                committed.said()
            );
            console.step(id, "refused", false, &why, Some(Ended::Refused))?;
            return Ok(Ended::Refused);
        }
        let why = format!("cibadmin --patch on CIB {planned}: {}", committed.said());
        console.step(id, "commit", false, &why, Some(Ended::Failed))?;
        return Ok(Ended::Failed);
    }
    console.step(id, "commit", true, &format!("CIB {planned} -> {now}: {}", edit.what), None)?;

    // VERIFY
    match verify(edit.resource.as_deref(), settle)? {
        Ok(detail) => {
            console.step(id, "verify", true, &detail, Some(Ended::Applied))?;
            Ok(Ended::Applied)
        }
        Err(why) => {
            console.step(id, "verify", false, &why, None)?;
            // ROLLBACK
            let restored = edit.fragment.restore()?;
            if restored.ok() {
                let detail = format!("restored {} because {why}", edit.fragment.describe());
                console.step(id, "rollback", true, &detail, Some(Ended::RolledBack))?;
                Ok(Ended::RolledBack)
            } else {
                let detail = format!(
                    "could not restore {} ({}); verify said: {why}. Restore it by hand from: {}",
                    edit.fragment.describe(),
                    restored.said(),
                    original_s
                );
                // Keep the copy for the administrator.
                std::mem::forget(scratch);
                console.step(id, "rollback", false, &detail, Some(Ended::Failed))?;
                Ok(Ended::Failed)
            }
        }
    }
}

/// crm_verify, the resource agent's validate-all, the cluster settled, the resource not failed.
fn verify(resource: Option<&str>, settle: Duration) -> Result<Result<String, String>> {
    let ran = cib::tool("crm_verify", &["-L", "-V"], None)?;
    if !ran.ok() {
        return Ok(Err(format!("crm_verify -L -V failed ({}): {}", ran.code, ran.said())));
    }
    if let Some(r) = resource {
        let ran = cib::tool("crm_resource", &["--validate", "--resource", r], None)?;
        if !ran.ok() {
            return Ok(Err(format!(
                "{r}'s agent rejects its configuration (validate-all, {}): {}",
                ran.code,
                ran.said()
            )));
        }
    }
    let secs = format!("{}s", settle.as_secs().max(1));
    let ran = cib::tool("crm_resource", &["--wait", "--timeout", &secs], None)?;
    if !ran.ok() {
        return Ok(Err(format!("the cluster did not settle within {secs}: {}", ran.said())));
    }
    if let Some(r) = resource {
        let mon = cib::tool("crm_mon", &["--one-shot", "--output-as=xml"], None)?;
        let elems = cib::elements(&mon.stdout).unwrap_or_default();
        if elems.iter().any(|e| e.name == "resource" && e.attr("id") == Some(r) && e.attr("failed") == Some("true")) {
            return Ok(Err(format!("{r} failed after the change (crm_mon)")));
        }
    }
    Ok(Ok(format!(
        "crm_verify -L -V: ok; {}cluster settled",
        resource.map(|r| format!("{r} validate-all: ok; ")).unwrap_or_default()
    )))
}
