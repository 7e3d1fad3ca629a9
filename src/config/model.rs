//! The Pacemaker objects a stack becomes. The three renderers (CIB XML, pcs, crmsh) only print
//! this model, so they cannot disagree about what the cluster is.

/// A name/value pair (instance or meta attribute, cluster property).
pub type Nv = (String, String);

#[derive(Debug, Default)]
pub struct Cluster {
    /// `cib-bootstrap-options`.
    pub properties: Vec<Nv>,
    /// Meta attributes every resource inherits.
    pub rsc_defaults: Vec<Nv>,
    pub resources: Vec<Resource>,
    pub constraints: Vec<Constraint>,
    pub alerts: Vec<Alert>,
}

#[derive(Debug)]
pub enum Resource {
    Primitive(Primitive),
    Group(Group),
    Clone(Clone),
}

#[derive(Debug)]
pub struct Primitive {
    pub id: String,
    pub class: Class,
    pub agent: String,
    pub params: Vec<Nv>,
    pub meta: Vec<Nv>,
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// `ocf:<provider>:<agent>`: `hastack` ([`OCF_PROVIDER`]) for everything `hastack config`
    /// renders; the lab's ClusterLabs mode swaps in `heartbeat` agents.
    Ocf(&'static str),
    /// `stonith:<agent>`.
    Stonith,
}

pub const OCF_PROVIDER: &str = "hastack";

#[derive(Debug)]
pub struct Op {
    pub name: String,
    /// A Pacemaker duration; "0s" for non-recurring operations.
    pub interval: String,
    pub timeout: String,
    pub role: Option<String>,
}

/// Members run on one node, start in order, stop in reverse.
#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub members: Vec<Primitive>,
}

#[derive(Debug)]
pub struct Clone {
    pub id: String,
    pub promotable: bool,
    pub meta: Vec<Nv>,
    pub child: Primitive,
}

#[derive(Debug)]
pub enum Constraint {
    /// `rsc` on `node` with `score`.
    Location { id: String, rsc: String, node: String, score: String },
    /// `rsc` (in `rsc_role`: its Promoted instance) runs where `with_rsc` runs (in `with_role`).
    /// With a role on one side only, pcs and crmsh write the other side in role Started.
    Colocation {
        id: String,
        rsc: String,
        rsc_role: Option<String>,
        with_rsc: String,
        with_role: Option<String>,
        score: String,
    },
    /// A mandatory order: `then_action` of `then` never happens before `first_action` of `first`
    /// has succeeded. Symmetrical: `then` also stops before `first` stops (and so restarts with
    /// it). Not symmetrical: only the start is ordered; a later stop/move of `first` implies
    /// nothing for `then`.
    Order { id: String, first: String, first_action: String, then: String, then_action: String, symmetrical: bool },
}

#[derive(Debug)]
pub struct Alert {
    pub id: String,
    pub path: String,
    /// Instance attributes (the agent's environment).
    pub params: Vec<Nv>,
    /// Meta attributes (timeout).
    pub meta: Vec<Nv>,
    /// The kinds selected: `nodes`, `fencing`, `resources` (CIB `select_<kind>`).
    pub select: Vec<&'static str>,
    /// (recipient id, value)
    pub recipients: Vec<Nv>,
}

/// hastack's alert agent (`hastack install` links it there).
pub const HASTACK_ALERT: &str = "/usr/lib/hastack/alert";
/// Pacemaker's default alert timeout, written out: the agent's 15 s deadline is half of it.
pub const ALERT_TIMEOUT: &str = "30s";

impl Resource {
    pub fn id(&self) -> &str {
        match self {
            Resource::Primitive(p) => &p.id,
            Resource::Group(g) => &g.id,
            Resource::Clone(c) => &c.id,
        }
    }
}

impl Primitive {
    /// `ocf:hastack:vip`, `ocf:heartbeat:IPaddr2` or `stonith:fence_ups`.
    pub fn agent_spec(&self) -> String {
        match self.class {
            Class::Ocf(provider) => format!("ocf:{provider}:{}", self.agent),
            Class::Stonith => format!("stonith:{}", self.agent),
        }
    }
}
