//! Checks a parsed stack before anything is rendered; every problem names the line it is on.
//! Errors refuse the stack; warnings are printed and the stack is rendered.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::ops::Range;

use toml::Spanned;

use super::layer_check::{self, ParamProblem};
use super::stack::{param_text, Group, Layer, Monitor, Params, Stack};
use super::{fence_check, storage};

/// One problem: where (a byte range of the source), what, and whether it only warns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub span: Range<usize>,
    pub message: String,
    pub warning: bool,
}

impl Problem {
    pub fn error(span: Range<usize>, message: impl Into<String>) -> Problem {
        Problem { span, message: message.into(), warning: false }
    }
    pub fn warning(span: Range<usize>, message: impl Into<String>) -> Problem {
        Problem { span, message: message.into(), warning: true }
    }
}

/// Operations whose timeout a layer may set in `timeouts`.
pub const TIMED_OPS: &[&str] = &["start", "stop", "promote", "demote", "notify", "migrate_to", "migrate_from"];

/// For one unique parameter: value → (the layer that used it first, where).
type FirstUses = BTreeMap<String, (String, Range<usize>)>;

struct Checker<'a> {
    stack: &'a Stack,
    src: &'a str,
    problems: Vec<Problem>,
    node_names: Vec<&'a str>,
}

/// Every problem of `stack`, parsed from `src`, in source order.
pub fn check(stack: &Stack, src: &str) -> Vec<Problem> {
    let node_names = stack.nodes.iter().map(|n| n.get_ref().name.get_ref().as_str()).collect();
    let mut c = Checker { stack, src, problems: Vec::new(), node_names };
    c.cluster();
    c.nodes();
    c.ids();
    c.layers();
    c.groups();
    c.clones();
    c.warm_standbys();
    c.fences();
    c.alert();
    c.problems.extend(storage::check(stack));
    c.problems.sort_by_key(|p| p.span.start);
    c.problems
}

/// Whether a layer's agent has promote and demote (its meta-data's actions), so it can run as a
/// promotable clone.
fn can_promote(l: &Layer) -> bool {
    layer_check::agent(l.agent.get_ref()).is_some_and(layer_check::is_promotable)
}

/// The 1-based line of a byte offset.
pub fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())].iter().filter(|b| **b == b'\n').count() + 1
}

/// A parameter table as Pacemaker gets it: name → text (None for a value with no text).
fn scalar_params(params: &Params) -> Vec<(&str, Option<String>)> {
    params.get_ref().iter().map(|(k, v)| (k.as_str(), param_text(v.get_ref()))).collect()
}

/// A field's span, or its parent's when the field took a default (empty span).
fn at<T>(field: &Spanned<T>, parent: Range<usize>) -> Range<usize> {
    if field.span().is_empty() {
        parent
    } else {
        field.span()
    }
}

/// Pacemaker ids are XML ids; node names must be usable in `#uname` rules and fence host lists.
pub fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// A Pacemaker duration as this format accepts it: a number with an optional unit.
pub fn is_valid_duration(d: &str) -> bool {
    let digits = d.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &d[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(unit, "" | "ms" | "msec" | "s" | "sec" | "m" | "min" | "h" | "hr")
}

/// A duration in milliseconds (for comparing monitor intervals).
pub fn duration_ms(d: &str) -> Option<u64> {
    if !is_valid_duration(d) {
        return None;
    }
    let digits = d.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let n: u64 = digits.parse().ok()?;
    let factor = match &d[digits.len()..] {
        "ms" | "msec" => 1,
        "" | "s" | "sec" => 1000,
        "m" | "min" => 60_000,
        _ => 3_600_000,
    };
    n.checked_mul(factor)
}

impl<'a> Checker<'a> {
    fn problem(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.problems.push(Problem::error(span, message));
    }

    fn warn(&mut self, span: Range<usize>, message: impl Into<String>) {
        self.problems.push(Problem::warning(span, message));
    }

    fn duration(&mut self, what: &str, d: &Spanned<String>, parent: Range<usize>) {
        if !is_valid_duration(d.get_ref()) {
            self.problem(at(d, parent), format!("{what}: '{}' is not a duration (e.g. 10s, 500ms, 2min)", d.get_ref()));
        }
    }

    fn node_ref(&mut self, what: &str, node: &Spanned<String>) -> bool {
        if self.node_names.contains(&node.get_ref().as_str()) {
            return true;
        }
        self.problem(
            node.span(),
            format!("{what}: unknown node '{}' (nodes: {})", node.get_ref(), self.node_names.join(", ")),
        );
        false
    }

    fn cluster(&mut self) {
        let c = &self.stack.cluster;
        if !is_valid_id(c.name.get_ref()) {
            self.problem(c.name.span(), format!("cluster name '{}' is not a valid name", c.name.get_ref()));
        }
        if *c.migration_threshold.get_ref() < 1 {
            self.problem(c.migration_threshold.span(), "migration_threshold must be at least 1");
        }
        if *c.resource_stickiness.get_ref() < 0 {
            self.problem(c.resource_stickiness.span(), "resource_stickiness must not be negative");
        }
        for (what, d) in [("failure_timeout", &c.failure_timeout), ("fence_delay", &c.fence_delay)] {
            if let Some(d) = d {
                self.duration(what, d, d.span());
            }
        }
        if let Some(token) = &c.token {
            if duration_ms(token.get_ref()).is_none_or(|ms| ms == 0) {
                self.problem(
                    token.span(),
                    format!("token: '{}' is not a duration above 0 (e.g. 1000ms, 3s)", token.get_ref()),
                );
            }
        }
        if let Some(consensus) = &c.consensus {
            // Corosync refuses a consensus below its join timeout (50 ms by default).
            if duration_ms(consensus.get_ref()).is_none_or(|ms| ms < 50) {
                self.problem(
                    consensus.span(),
                    format!(
                        "consensus: '{}' is not a duration of at least 50ms (Corosync's join timeout)",
                        consensus.get_ref()
                    ),
                );
            }
        }
        for (name, value) in c.properties.get_ref() {
            if let Some(why) = super::properties::check(name, param_text(value.get_ref()).as_deref()) {
                self.problem(value.span(), why);
            }
        }
        if let (Some(delay), false) = (&c.fence_delay, self.stack.nodes.len() == 2) {
            self.problem(
                delay.span(),
                "fence_delay is for two-node clusters (it decides which node wins a fence race)",
            );
        }
    }

    fn nodes(&mut self) {
        if self.stack.nodes.len() < 2 {
            self.problem(0..0, "a cluster needs at least two [[node]] entries");
        }
        let mut seen_names: HashMap<&str, usize> = HashMap::new();
        let mut seen_addrs: HashMap<IpAddr, &str> = HashMap::new();
        for node in &self.stack.nodes {
            let n = node.get_ref();
            let name = n.name.get_ref().as_str();
            if !is_valid_id(name) {
                self.problem(n.name.span(), format!("node name '{name}' is not a valid name"));
            }
            if seen_names.insert(name, n.name.span().start).is_some() {
                self.problem(n.name.span(), format!("duplicate node '{name}'"));
            }
            if n.links.get_ref().len() != 2 {
                self.problem(
                    n.links.span(),
                    format!(
                        "node '{name}' needs exactly two links (crossover, public), got {}",
                        n.links.get_ref().len()
                    ),
                );
            }
            for link in n.links.get_ref() {
                match link.get_ref().parse::<IpAddr>() {
                    Err(_) => self.problem(
                        link.span(),
                        format!("node '{name}': link address '{}' is not an IP address", link.get_ref()),
                    ),
                    Ok(addr) => {
                        if let Some(other) = seen_addrs.insert(addr, name) {
                            self.problem(
                                link.span(),
                                format!("node '{name}': link address {addr} is already used by node '{other}'"),
                            );
                        }
                    }
                }
            }
        }
    }

    /// Every resource-like id in one namespace, as in the CIB.
    fn ids(&mut self) {
        let s = self.stack;
        // (id, where it is written, what it is when it is not written as such)
        let mut ids: Vec<(String, Range<usize>, Option<String>)> = Vec::new();
        let mut written = |id: &Spanned<String>| ids.push((id.get_ref().clone(), id.span(), None));
        for g in &s.groups {
            written(&g.get_ref().id);
            g.get_ref().layers.iter().for_each(|l| written(&l.get_ref().id));
        }
        for c in &s.clones {
            written(&c.get_ref().id);
            written(&c.get_ref().layer.get_ref().id);
        }
        s.fences.iter().for_each(|f| written(&f.get_ref().id));
        s.alert.iter().for_each(|a| written(&a.get_ref().id));
        // A warm standby's clone is named after its layer.
        for l in s.groups.iter().flat_map(|g| &g.get_ref().layers).map(|l| l.get_ref()) {
            if let (Some(flag), true) = (&l.warm_standby, l.is_warm_standby()) {
                let id = super::build::warm_standby_clone(l.id.get_ref());
                let what = format!("the clone of warm_standby layer '{}'", l.id.get_ref());
                ids.push((id, flag.span(), Some(what)));
            }
        }
        let mut seen: HashMap<String, Range<usize>> = HashMap::new();
        for (text, span, what) in ids {
            if !is_valid_id(&text) {
                let named = what.map_or_else(|| format!("'{text}'"), |w| format!("'{text}' ({w})"));
                self.problem(span, format!("id {named} is not valid (a letter, then letters, digits, '_', '-', '.')"));
            } else if let Some(first) = seen.get(&text) {
                let line = line_of(self.src, first.start);
                let message = match what {
                    None => format!("duplicate id '{text}' (first used on line {line})"),
                    Some(w) => format!("duplicate id '{text}' ({w}): already used on line {line}"),
                };
                self.problem(span, message);
            } else {
                seen.insert(text, span);
            }
        }
    }

    /// Every layer, with whether it is cloned and if so whether promotable.
    fn all_layers(&self) -> Vec<(&'a Spanned<Layer>, Option<bool>)> {
        let s = self.stack;
        // A warm standby runs as a promotable clone (when its agent can be one).
        let grouped = s.groups.iter().flat_map(|g| {
            g.get_ref()
                .layers
                .iter()
                .map(|l| (l, (l.get_ref().is_warm_standby() && can_promote(l.get_ref())).then_some(true)))
        });
        let cloned = s.clones.iter().map(|c| (&c.get_ref().layer, Some(c.get_ref().promotable)));
        grouped.chain(cloned).collect()
    }

    /// The meta attributes Pacemaker gives a layer's agent: a clone's (as rendered), with
    /// clone-max, which Pacemaker sets to the number of nodes.
    fn meta_of(&self, clone: Option<bool>) -> BTreeMap<String, String> {
        let Some(promotable) = clone else { return BTreeMap::new() };
        let mut meta: BTreeMap<String, String> = super::build::clone_meta(promotable).into_iter().collect();
        meta.insert("clone-max".into(), self.stack.nodes.len().to_string());
        meta
    }

    /// Reports an agent's problems with a parameter set at the parameter each one names.
    fn place(&mut self, owner: &str, found: Vec<ParamProblem>, params: &Params, parent: Range<usize>) {
        for (param, message) in found {
            let span = match param.as_deref().and_then(|p| params.get_ref().get(p)) {
                Some(v) => v.span(),
                None => at(params, parent.clone()),
            };
            self.problem(span, format!("{owner}: {message}"));
        }
    }

    /// Explicit timeouts below the agent's advice (crmsh warns alike: "start 60s is smaller than
    /// the advised 120s"). Unset ones take the advised value (build.rs).
    fn advised_timeouts(&mut self, id: &str, agent: &dyn crate::ocf::Agent, l: &Layer) {
        let mut timed: Vec<(&str, Option<&str>, &Spanned<String>)> =
            l.timeouts.iter().map(|(op, d)| (op.as_str(), None, d)).collect();
        timed.extend(l.monitor.iter().map(|m| ("monitor", None, &m.get_ref().timeout)));
        timed.extend(l.promoted_monitor.iter().map(|m| ("monitor", Some("Promoted"), &m.get_ref().timeout)));
        for (op, role, d) in timed {
            let Some(ms) = duration_ms(d.get_ref()) else { continue };
            if let Some(advised) = layer_check::short_timeout(agent, op, role, ms) {
                let what = if role.is_some() { "promoted_monitor" } else { op };
                self.warn(
                    d.span(),
                    format!(
                        "layer '{id}': specified timeout {} for {what} is smaller than the advised {advised} (ocf:hastack:{} meta-data)",
                        d.get_ref(),
                        agent.spec().name
                    ),
                );
            }
        }
    }

    fn layers(&mut self) {
        // Parameter values that must be unique per agent: (agent, param) -> value -> first layer.
        let mut unique_seen: BTreeMap<(String, String), FirstUses> = BTreeMap::new();
        for (layer, clone) in self.all_layers() {
            let l = layer.get_ref();
            let id = l.id.get_ref().clone();
            self.layer_agent(&id, l, clone, layer.span(), &mut unique_seen);
            self.layer_monitors(&id, l, clone == Some(true));
            self.layer_operations(&id, l, layer.span());
            self.allow_migrate(&id, l, clone.is_some());
        }
    }

    /// The layer's agent exists and takes its parameters; values unique per agent are.
    fn layer_agent(
        &mut self,
        id: &str,
        l: &'a Layer,
        clone: Option<bool>,
        span: Range<usize>,
        unique_seen: &mut BTreeMap<(String, String), FirstUses>,
    ) {
        let agent = l.agent.get_ref().as_str();
        let Some(ocf) = layer_check::agent(agent) else {
            let known = layer_check::agent_names();
            let hint = crate::suggest::hint(agent, known.iter().copied());
            self.problem(
                l.agent.span(),
                format!("layer '{id}': unknown agent '{agent}'{hint} (known: {})", known.join(", ")),
            );
            return;
        };
        let meta = self.meta_of(clone);
        let given = scalar_params(&l.params).into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let found = layer_check::check_params(ocf, &given, &meta);
        self.place(&format!("layer '{id}'"), found, &l.params, span);
        self.advised_timeouts(id, ocf, l);
        let unique = ocf.spec().params.iter().filter(|p| p.unique).map(|p| p.name);
        for name in unique {
            let Some(value) = l.params.get_ref().get(name) else { continue };
            let Some(text) = param_text(value.get_ref()) else { continue };
            // tcprelay owns its virtual IP as vip does: one address, one owner.
            let owns_ip = matches!(agent, "vip" | "tcprelay") && name == "ip";
            let space = if owns_ip { "vip" } else { agent };
            let firsts = unique_seen.entry((space.to_string(), name.to_string())).or_default();
            if let Some((first, first_span)) = firsts.get(&text) {
                let what = if owns_ip { "duplicate virtual IP" } else { "duplicate value" };
                let msg = format!(
                    "layer '{id}': {what} {name}={text}, already used by layer '{first}' on line {}",
                    line_of(self.src, first_span.start)
                );
                self.problem(value.span(), msg);
            } else {
                firsts.insert(text, (id.to_string(), value.span()));
            }
        }
    }

    /// monitor, and promoted_monitor (promotable clones only, at another interval).
    fn layer_monitors(&mut self, id: &str, l: &Layer, promotable: bool) {
        if let Some(m) = &l.monitor {
            self.monitor(id, m);
        }
        match (&l.promoted_monitor, promotable) {
            (Some(pm), true) => {
                self.monitor(id, pm);
                let interval = |m: &Monitor| duration_ms(m.interval.get_ref());
                let mine = interval(pm.get_ref());
                let other = l
                    .monitor
                    .as_ref()
                    .map_or(Some(super::build::DEFAULT_MONITOR_INTERVAL_MS), |m| interval(m.get_ref()));
                if mine.is_some() && mine == other {
                    self.problem(
                        pm.get_ref().interval.span(),
                        format!("layer '{id}': promoted_monitor needs an interval different from monitor's"),
                    );
                }
            }
            (Some(pm), false) => self.problem(
                pm.span(),
                format!("layer '{id}': promoted_monitor is only for promotable clones and warm_standby layers"),
            ),
            (None, _) => {}
        }
    }

    /// Operation timeouts and the migration threshold.
    fn layer_operations(&mut self, id: &str, l: &Layer, span: Range<usize>) {
        for (op, d) in &l.timeouts {
            if !TIMED_OPS.contains(&op.as_str()) {
                self.problem(
                    d.span(),
                    format!("layer '{id}': unknown operation '{op}' in timeouts (known: {})", TIMED_OPS.join(", ")),
                );
            }
            self.duration(&format!("layer '{id}': timeouts.{op}"), d, span.clone());
        }
        if let Some(t) = &l.migration_threshold {
            if *t.get_ref() < 1 {
                self.problem(t.span(), format!("layer '{id}': migration_threshold must be at least 1"));
            }
        }
    }

    /// `allow_migrate = true` needs an agent with migrate_to and migrate_from, and a layer of a
    /// group: Pacemaker moves a clone's instances by stop and start.
    fn allow_migrate(&mut self, id: &str, l: &Layer, in_clone: bool) {
        let migrating = l.allow_migrate.as_ref().is_some_and(|f| *f.get_ref());
        if let (Some(flag), true) = (&l.allow_migrate, migrating) {
            if in_clone {
                self.problem(
                    flag.span(),
                    format!(
                        "layer '{id}': allow_migrate is for layers of a group (a clone's instances are not migrated)"
                    ),
                );
            }
            if let Some(ocf) = layer_check::agent(l.agent.get_ref()) {
                let has = |op: &str| ocf.spec().actions.iter().any(|a| a.name == op);
                if !(has("migrate_to") && has("migrate_from")) {
                    let able: Vec<&str> = crate::agents::AGENTS
                        .iter()
                        .filter(|a| a.spec().actions.iter().any(|x| x.name == "migrate_to"))
                        .map(|a| a.spec().name)
                        .collect();
                    self.problem(
                        flag.span(),
                        format!(
                            "layer '{id}': agent '{}' cannot live-migrate (no migrate_to/migrate_from); allow_migrate is for: {}",
                            l.agent.get_ref(),
                            able.join(", ")
                        ),
                    );
                }
            }
        }
        for op in ["migrate_to", "migrate_from"] {
            if let (Some(d), false) = (l.timeouts.get(op), migrating) {
                self.problem(d.span(), format!("layer '{id}': timeouts.{op} without allow_migrate = true"));
            }
        }
    }

    fn monitor(&mut self, id: &str, m: &Spanned<Monitor>) {
        let span = m.span();
        self.duration(&format!("layer '{id}': monitor interval"), &m.get_ref().interval, span.clone());
        self.duration(&format!("layer '{id}': monitor timeout"), &m.get_ref().timeout, span);
        if duration_ms(m.get_ref().interval.get_ref()) == Some(0) {
            self.problem(m.get_ref().interval.span(), format!("layer '{id}': a monitor interval must not be 0"));
        }
    }

    fn groups(&mut self) {
        let promotable: Vec<&str> = self
            .stack
            .clones
            .iter()
            .filter(|c| c.get_ref().promotable)
            .map(|c| c.get_ref().id.get_ref().as_str())
            .collect();
        for group in &self.stack.groups {
            let g = group.get_ref();
            let id = g.id.get_ref();
            if g.layers.is_empty() {
                self.problem(group.span(), format!("group '{id}' has no [[group.layer]]"));
            }
            let mut listed: Vec<&str> = Vec::new();
            if let Some(prefer) = &g.prefer {
                if self.node_ref(&format!("group '{id}': prefer"), prefer) {
                    listed.push(prefer.get_ref());
                }
            }
            if let Some(failover) = &g.failover {
                if g.prefer.is_none() {
                    self.problem(failover.span(), format!("group '{id}': failover needs a prefer node first"));
                }
                for node in failover.get_ref() {
                    if !self.node_ref(&format!("group '{id}': failover"), node) {
                        continue;
                    }
                    if listed.contains(&node.get_ref().as_str()) {
                        self.problem(node.span(), format!("group '{id}': node '{}' listed twice", node.get_ref()));
                    }
                    listed.push(node.get_ref());
                }
            }
            if let (Some(failover), None) = (&g.failover, &self.stack.alert) {
                self.problem(
                    failover.span(),
                    format!("group '{id}' has a failover list but the stack has no [alert]: nobody would hear when it stops for good"),
                );
            }
            self.parallel(g);
            if let Some(p) = &g.with_promoted {
                if !promotable.contains(&p.get_ref().as_str()) {
                    self.problem(
                        p.span(),
                        format!(
                            "group '{id}': with_promoted '{}' is not a promotable clone (promotable clones: {})",
                            p.get_ref(),
                            promotable.join(", ")
                        ),
                    );
                }
                if g.failover.is_some() {
                    self.problem(
                        p.span(),
                        format!("group '{id}': with_promoted and failover exclude each other (the group follows the promotion)"),
                    );
                }
            }
        }
    }

    /// `parallel`: at least two of the group's layers, its last ones, each once, and at least one
    /// layer before them (the group that stays a Pacemaker group).
    fn parallel(&mut self, g: &Group) {
        let Some(parallel) = &g.parallel else { return };
        let id = g.id.get_ref();
        let named: Vec<&str> = parallel.get_ref().iter().map(|l| l.get_ref().as_str()).collect();
        let layers: Vec<&str> = g.layers.iter().map(|l| l.get_ref().id.get_ref().as_str()).collect();
        for (i, layer) in parallel.get_ref().iter().enumerate() {
            if !layers.contains(&layer.get_ref().as_str()) {
                self.problem(
                    layer.span(),
                    format!(
                        "group '{id}': parallel '{}' is not a layer of the group (layers: {})",
                        layer.get_ref(),
                        layers.join(", ")
                    ),
                );
            } else if named[..i].contains(&layer.get_ref().as_str()) {
                self.problem(layer.span(), format!("group '{id}': parallel lists '{}' twice", layer.get_ref()));
            }
        }
        if named.len() < 2 {
            self.problem(
                parallel.span(),
                format!("group '{id}': parallel needs at least two layers (one layer alone is what the group does)"),
            );
            return;
        }
        if named.len() >= layers.len() {
            self.problem(
                parallel.span(),
                format!("group '{id}': parallel must leave at least one layer before it (the layers the parallel ones start after)"),
            );
            return;
        }
        let tail = &layers[layers.len() - named.len()..];
        if tail.iter().any(|l| !named.contains(l)) {
            self.problem(
                parallel.span(),
                format!(
                    "group '{id}': parallel must name the group's last {} layers ({}): the layers after it would have to wait for all of them",
                    named.len(),
                    tail.join(", ")
                ),
            );
        }
    }

    fn clones(&mut self) {
        let groups: Vec<&str> = self.stack.groups.iter().map(|g| g.get_ref().id.get_ref().as_str()).collect();
        for clone in &self.stack.clones {
            let c = clone.get_ref();
            for after in &c.after {
                if !groups.contains(&after.get_ref().as_str()) {
                    self.problem(
                        after.span(),
                        format!(
                            "clone '{}': after '{}' is not a group (groups: {})",
                            c.id.get_ref(),
                            after.get_ref(),
                            groups.join(", ")
                        ),
                    );
                }
            }
        }
    }

    /// `warm_standby = true`: on a layer of a group in its `parallel` list, whose agent can be
    /// promoted. (For activemq, the agent's own check, run with the promotable clone's meta
    /// attributes by `layer_agent`, refuses `broker_uri`.)
    fn warm_standbys(&mut self) {
        for group in &self.stack.groups {
            let g = group.get_ref();
            let parallel: Vec<&str> =
                g.parallel.iter().flat_map(|p| p.get_ref().iter().map(|l| l.get_ref().as_str())).collect();
            for l in g.layers.iter().map(|l| l.get_ref()) {
                let Some(flag) = l.warm_standby.as_ref().filter(|f| *f.get_ref()) else { continue };
                let id = l.id.get_ref();
                if !parallel.contains(&id.as_str()) {
                    self.problem(
                        flag.span(),
                        format!(
                            "layer '{id}': warm_standby is only for a layer in its group's parallel list (group '{}' parallel: {}): its promotion waits for the group's start, so it cannot be a member of the group",
                            g.id.get_ref(),
                            if parallel.is_empty() { "none".to_string() } else { parallel.join(", ") }
                        ),
                    );
                }
                self.warm_standby_agent(id, l, flag);
            }
        }
        for clone in &self.stack.clones {
            let c = clone.get_ref();
            let l = c.layer.get_ref();
            if let Some(flag) = l.warm_standby.as_ref().filter(|f| *f.get_ref()) {
                self.problem(
                    flag.span(),
                    format!(
                        "layer '{}': warm_standby is for a parallel layer of a group; clone '{}' is made promotable with promotable = true",
                        l.id.get_ref(),
                        c.id.get_ref()
                    ),
                );
            }
        }
    }

    fn warm_standby_agent(&mut self, id: &str, l: &Layer, flag: &Spanned<bool>) {
        if layer_check::agent(l.agent.get_ref()).is_none() || can_promote(l) {
            return; // an unknown agent is reported by itself
        }
        let able: Vec<&str> = crate::agents::AGENTS
            .iter()
            .copied()
            .filter(|a| layer_check::is_promotable(*a))
            .map(|a| a.spec().name)
            .collect();
        self.problem(
            flag.span(),
            format!(
                "layer '{id}': agent '{}' cannot be a warm standby (its meta-data has no promote/demote actions); warm_standby is for: {}",
                l.agent.get_ref(),
                able.join(", ")
            ),
        );
    }

    fn fences(&mut self) {
        let mut fenced: Vec<&str> = Vec::new();
        for fence in &self.stack.fences {
            let f = fence.get_ref();
            let id = f.id.get_ref();
            let agent = f.agent.get_ref().as_str();
            let known = fence_check::agent_names();
            if known.contains(&agent) {
                let found = fence_check::check_params(&scalar_params(&f.params));
                self.place(&format!("fence device '{id}'"), found, &f.params, fence.span());
            } else {
                self.problem(
                    at(&f.agent, fence.span()),
                    format!("fence device '{id}': unknown fence agent '{agent}' (known: {})", known.join(", ")),
                );
            }
            if self.node_ref(&format!("fence device '{id}': fences"), &f.fences) {
                fenced.push(f.fences.get_ref());
            }
            match &f.cable {
                None => self.problem(
                    fence.span(),
                    format!(
                        "fence device '{id}' has no cable node: set cable = \"<node>\", the node its UPS's serial cable is plugged into"
                    ),
                ),
                Some(cable) => {
                    if self.node_ref(&format!("fence device '{id}': cable"), cable) && cable.get_ref() == f.fences.get_ref()
                    {
                        self.problem(
                            cable.span(),
                            format!(
                                "fence device '{id}': the cable node must not be the node it fences ('{}'): a node cannot fence itself",
                                cable.get_ref()
                            ),
                        );
                    }
                }
            }
            if let Some(m) = &f.monitor {
                self.monitor(id, m);
            }
        }
        if !self.stack.fences.is_empty() || !self.stack.groups.is_empty() || !self.stack.clones.is_empty() {
            for node in &self.stack.nodes {
                let name = node.get_ref().name.get_ref().as_str();
                if !fenced.contains(&name) {
                    self.problem(
                        node.span(),
                        format!("node '{name}' has no fence device ([[fence]] with fences = \"{name}\"): fencing is required"),
                    );
                }
            }
        }
    }

    fn alert(&mut self) {
        use crate::alert::settings::{Channel, Settings, ATTRIBUTES};
        let Some(alert) = &self.stack.alert else { return };
        let a = alert.get_ref();
        if let Some(path) = &a.path {
            if !path.get_ref().starts_with('/') {
                self.problem(path.span(), format!("alert path '{}' must be absolute", path.get_ref()));
            }
        }
        let options = a.options.as_ref().map(|o| o.get_ref());
        // No secret in the CIB, whatever the agent: the CIB is readable cluster-wide and in reports.
        for (name, value) in options.into_iter().flatten() {
            let lower = name.to_ascii_lowercase();
            if ["password", "passwd", "secret"].iter().any(|s| lower.contains(s))
                || (lower.contains("token") && lower != "token_file")
            {
                self.problem(
                    value.span(),
                    format!("alert option '{name}' looks like a secret: keep secrets out of the CIB (hastack's agent reads its token from token_file)"),
                );
            }
        }
        if a.path.as_ref().is_some_and(|p| p.get_ref() != super::model::HASTACK_ALERT) {
            return; // another agent: its recipients and options are its own business
        }
        for r in a.recipient.iter().chain(a.recipients.iter().flatten()) {
            if let Err(why) = Channel::from_recipient(r.get_ref()) {
                self.problem(r.span(), why);
            }
        }
        if let (Some(opts), Some(spanned)) = (options, a.options.as_ref()) {
            for (name, value) in opts {
                if !ATTRIBUTES.contains(&name.as_str()) {
                    self.problem(
                        value.span(),
                        format!(
                            "unknown alert option '{name}' (hastack's alert agent reads: {})",
                            ATTRIBUTES.join(", ")
                        ),
                    );
                }
            }
            let (_, bad) = Settings::read(|n| opts.get(n).and_then(|v| param_text(v.get_ref())));
            for message in bad {
                let message = message.split("; using").next().unwrap_or(&message).to_string();
                self.problem(spanned.span(), format!("alert option {message}"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_lines() {
        assert_eq!(duration_ms("10s"), Some(10_000));
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("2min"), Some(120_000));
        assert_eq!(duration_ms("15"), Some(15_000));
        for bad in ["", "s", "10 s", "-1s", "1.5s", "10sec5"] {
            assert!(!is_valid_duration(bad), "{bad:?} accepted");
        }
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
        assert!(is_valid_id("fence-node1") && !is_valid_id("1node") && !is_valid_id("a b"));
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let src = "[cluster]\nname = \"c\"\n\n[[node]]\nname = \"n1\"\nlinks = [\"10.0.0.1\"]\n\n[[node]]\nname = \"n1\"\nlinks = [\"10.0.0.2\", \"nonsense\"]\n";
        let stack: Stack = toml::from_str(src).unwrap();
        let problems: Vec<(usize, String)> =
            check(&stack, src).into_iter().map(|p| (line_of(src, p.span.start), p.message)).collect();
        let has = |line: usize, words: &str| problems.iter().any(|(l, m)| *l == line && m.contains(words));
        assert!(has(6, "needs exactly two links"), "{problems:?}");
        assert!(has(9, "duplicate node 'n1'"), "{problems:?}");
        assert!(has(10, "'nonsense' is not an IP address"), "{problems:?}");
    }

    #[test]
    fn cluster_properties_are_checked_on_their_line() {
        let src = "[cluster]\nname = \"c\"\nproperties = { node-action-limit = 8, no-quorum-policy = \"stay\", node-action-limt = 4 }\n\n[[node]]\nname = \"n1\"\nlinks = [\"10.0.0.1\", \"10.1.0.1\"]\n\n[[node]]\nname = \"n2\"\nlinks = [\"10.0.0.2\", \"10.1.0.2\"]\n";
        let stack: Stack = toml::from_str(src).unwrap();
        let problems: Vec<(usize, String)> =
            check(&stack, src).into_iter().map(|p| (line_of(src, p.span.start), p.message)).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems.iter().all(|(line, _)| *line == 3), "{problems:?}");
        assert!(problems.iter().any(|(_, m)| m.contains("no-quorum-policy = 'stay' is not one of")), "{problems:?}");
        assert!(problems.iter().any(|(_, m)| m.contains("did you mean 'node-action-limit'")), "{problems:?}");
    }

    #[test]
    fn alert_recipients_and_options_are_checked() {
        let base = "[cluster]\nname = \"c\"\n\n[[node]]\nname = \"n1\"\nlinks = [\"10.0.0.1\", \"10.1.0.1\"]\n\n[[node]]\nname = \"n2\"\nlinks = [\"10.0.0.2\", \"10.1.0.2\"]\n\n";
        let problems = |alert: &str| -> Vec<(usize, String)> {
            let src = format!("{base}{alert}");
            let stack: Stack = toml::from_str(&src).unwrap();
            check(&stack, &src).into_iter().map(|p| (line_of(&src, p.span.start), p.message)).collect()
        };
        let ok = "[alert]\nid = \"a\"\nrecipients = [\"/var/log/x\", \"ops@example.com\", \"https://c.example/r\"]\noptions = { cluster_id = \"s1\", send_timeout = \"2s\" }\n";
        assert_eq!(problems(ok), vec![]);
        let bad = "[alert]\nid = \"a\"\nrecipient = \"ops\"\noptions = { cluster_id = \"s1\", token = \"x\", deadline = \"forever\" }\n";
        let found = problems(bad);
        let has = |line: usize, words: &str| found.iter().any(|(l, m)| *l == line && m.contains(words));
        assert!(has(14, "recipient 'ops' is neither"), "{found:?}");
        assert!(has(15, "'token' looks like a secret"), "{found:?}");
        assert!(has(15, "unknown alert option 'token'"), "{found:?}");
        assert!(has(15, "alert option deadline='forever' must be a duration"), "{found:?}");
        // Another agent's recipients and options are its own; secrets are refused for all.
        let other = "[alert]\nid = \"a\"\npath = \"/usr/local/bin/notify\"\nrecipient = \"anything\"\noptions = { level = \"x\", api_password = \"y\" }\n";
        let found = problems(other);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].1.contains("'api_password' looks like a secret"), "{found:?}");
    }

    /// The problems of the warm-standby stack with `edits` (from, to) made, with their lines.
    fn warm_problems(edits: &[(&str, &str)]) -> (String, Vec<(usize, String)>) {
        let mut src = super::super::build::tests::WARM.to_string();
        for (from, to) in edits {
            assert!(src.contains(from), "{from:?} not in the stack");
            src = src.replacen(from, to, 1);
        }
        let stack: Stack = toml::from_str(&src).unwrap();
        let found = check(&stack, &src).into_iter().map(|p| (line_of(&src, p.span.start), p.message)).collect();
        (src, found)
    }

    /// The 1-based line of the first line of `src` containing `words`.
    fn line_with(src: &str, words: &str) -> usize {
        src.lines().position(|l| l.contains(words)).unwrap_or_else(|| panic!("{words:?} not in the stack")) + 1
    }

    #[test]
    fn warm_standby_is_accepted_with_a_promoted_monitor() {
        let (_, found) = warm_problems(&[(
            "  warm_standby = true\n",
            "  warm_standby = true\n  promoted_monitor = { interval = \"5s\", timeout = \"30s\" }\n",
        )]);
        assert_eq!(found, vec![]);
    }

    #[test]
    fn warm_standby_mistakes_are_refused_by_layer_and_field() {
        let one = |edits: &[(&str, &str)], at: &str, words: &str| {
            let (src, found) = warm_problems(edits);
            let line = line_with(&src, at);
            assert!(
                found.iter().any(|(l, m)| *l == line && m.contains(words)),
                "line {line}: {words:?} not in {found:?}"
            );
        };
        // Not in the group's parallel list.
        one(
            &[("parallel = [\"broker\", \"db\"]\n", "")],
            "warm_standby = true",
            "layer 'broker': warm_standby is only for a layer in its group's parallel list (group 'data' parallel: none)",
        );
        // An agent without promote and demote.
        let (src, found) =
            warm_problems(&[("  agent = \"postgresql\"\n", "  agent = \"postgresql\"\n  warm_standby = true\n")]);
        let line = line_with(&src, "agent = \"postgresql\"") + 1;
        assert!(
            found.iter().any(|(l, m)| *l == line
                && m.contains("layer 'db': agent 'postgresql' cannot be a warm standby (its meta-data has no promote/demote actions); warm_standby is for: ")
                && m.contains("activemq")),
            "{found:?}"
        );
        // A broker: URI cannot configure a warm standby: the agent's own check, by name.
        let uri = "broker_uri = \"broker:(stomp://127.0.0.1:61613)\"";
        one(
            &[("config = \"/srv/conf/activemq/activemq.xml\"", uri)],
            uri,
            "layer 'broker': parameter 'broker_uri' cannot configure a warm standby",
        );
        // On a [[clone]]'s layer: that is `promotable`.
        let (src, found) =
            warm_problems(&[("  agent = \"tomcat\"\n", "  agent = \"tomcat\"\n  warm_standby = true\n")]);
        let line = line_with(&src, "agent = \"tomcat\"") + 1;
        assert!(
            found.iter().any(|(l, m)| *l == line
                && m == "layer 'tomcat': warm_standby is for a parallel layer of a group; clone 'app-clone' is made promotable with promotable = true"),
            "{found:?}"
        );
        // Its clone's id is taken.
        one(
            &[("id = \"app-clone\"", "id = \"broker-clone\"")],
            "warm_standby = true",
            "duplicate id 'broker-clone' (the clone of warm_standby layer 'broker'): already used on line",
        );
        // promoted_monitor stays refused on a parallel layer that is no warm standby.
        one(
            &[("  warm_standby = true\n", "  promoted_monitor = { interval = \"5s\", timeout = \"30s\" }\n")],
            "promoted_monitor",
            "layer 'broker': promoted_monitor is only for promotable clones and warm_standby layers",
        );
    }
}
