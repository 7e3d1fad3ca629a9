//! The cluster's state as `crm_mon --output-as=xml` reports it on a node: which nodes are online,
//! where each resource runs, what failed. Parsed from the XML (pure, tested on literal output).

use quick_xml::events::Event;
use quick_xml::Reader;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterState {
    /// The designated controller (DC), if there is one.
    pub dc: Option<String>,
    /// (node, online)
    pub nodes: Vec<(String, bool)>,
    pub resources: Vec<Resource>,
    /// `op_key on node: exit reason` of each failed action.
    pub failures: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resource {
    pub id: String,
    pub agent: String,
    pub role: String,
    pub active: bool,
    pub failed: bool,
    /// The nodes it runs on.
    pub on: Vec<String>,
}

impl ClusterState {
    pub fn online(&self) -> Vec<&str> {
        self.nodes.iter().filter(|(_, on)| *on).map(|(n, _)| n.as_str()).collect()
    }

    /// Whether every configured resource instance has started (not still starting) and nothing
    /// failed (what `up` waits for, with an idle controller). A promotable clone's instances are
    /// settled in either of their roles (a warm standby stays Unpromoted).
    pub fn settled(&self) -> bool {
        const SETTLED: &[&str] = &["Started", "Promoted", "Unpromoted"];
        !self.resources.is_empty()
            && self.failures.is_empty()
            && self.resources.iter().all(|r| r.active && !r.failed && SETTLED.contains(&r.role.as_str()))
    }

    /// The nodes `id` runs on (one per active instance).
    pub fn where_runs(&self, id: &str) -> Vec<&str> {
        self.resources.iter().filter(|r| r.id == id && r.active).flat_map(|r| r.on.iter().map(String::as_str)).collect()
    }
}

fn attr(e: &quick_xml::events::BytesStart, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.as_ref() == name.as_bytes())
        .and_then(|a| a.unescape_value().ok())
        .map(|v| v.into_owned())
}

/// Parses `crm_mon --output-as=xml`.
pub fn parse(xml: &str) -> ClusterState {
    let mut state = ClusterState::default();
    let mut reader = Reader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    loop {
        let (e, empty) = match reader.read_event() {
            Ok(Event::Start(e)) => (e, false),
            Ok(Event::Empty(e)) => (e, true),
            Ok(Event::End(_)) => {
                path.pop();
                continue;
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => continue,
        };
        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let parent = path.last().map(String::as_str);
        match (name.as_str(), parent) {
            ("current_dc", _) => state.dc = attr(&e, "name"),
            ("node", Some("nodes")) => {
                let online = attr(&e, "online").as_deref() == Some("true");
                state.nodes.push((attr(&e, "name").unwrap_or_default(), online));
            }
            ("resource", _) => state.resources.push(Resource {
                id: attr(&e, "id").unwrap_or_default(),
                agent: attr(&e, "resource_agent").unwrap_or_default(),
                role: attr(&e, "role").unwrap_or_default(),
                active: attr(&e, "active").as_deref() == Some("true"),
                failed: attr(&e, "failed").as_deref() == Some("true"),
                on: Vec::new(),
            }),
            ("node", Some("resource")) => {
                if let (Some(r), Some(n)) = (state.resources.last_mut(), attr(&e, "name")) {
                    r.on.push(n);
                }
            }
            ("failure", _) => state.failures.push(format!(
                "{} on {}: {} {}",
                attr(&e, "op_key").unwrap_or_default(),
                attr(&e, "node").unwrap_or_default(),
                attr(&e, "exitstatus").unwrap_or_default(),
                attr(&e, "exitreason").unwrap_or_default()
            )),
            _ => {}
        }
        if !empty {
            path.push(name);
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    const XML: &str = r#"<pacemaker-result api-version="2.29" request="crm_mon --output-as=xml">
  <summary>
    <current_dc present="true" version="2.1.5-a3f44794f94" name="node2" id="2" with_quorum="true" mixed_version="false"/>
  </summary>
  <nodes>
    <node name="node1" id="1" online="true" standby="false" type="member"/>
    <node name="node2" id="2" online="false" standby="false" type="member"/>
  </nodes>
  <resources>
    <resource id="fence-node1" resource_agent="stonith:fence_ups" role="Stopped" active="false" orphaned="false" blocked="false" managed="true" failed="false" nodes_running_on="0"/>
    <group id="entry" number_resources="2" managed="true" disabled="false">
      <resource id="vip1" resource_agent="ocf:hastack:vip" role="Started" active="true" failed="false" nodes_running_on="1">
        <node name="node1" id="1" cached="true"/>
      </resource>
    </group>
    <clone id="web-clone" multi_state="false" unique="false" managed="true" failed="false">
      <resource id="web" resource_agent="ocf:hastack:nginx" role="Started" active="true" failed="false" nodes_running_on="1">
        <node name="node1" id="1" cached="true"/>
      </resource>
      <resource id="web" resource_agent="ocf:hastack:nginx" role="Stopped" active="false" failed="false" nodes_running_on="0"/>
    </clone>
  </resources>
  <failures>
    <failure op_key="db_monitor_10000" node="node1" exitstatus="not running" exitreason="" exitcode="7" call="12" status="complete"/>
  </failures>
</pacemaker-result>"#;

    #[test]
    fn nodes_resources_and_failures() {
        let s = parse(XML);
        assert_eq!(s.online(), vec!["node1"]);
        assert_eq!(s.dc.as_deref(), Some("node2"));
        assert_eq!(s.resources.len(), 4);
        assert_eq!(s.where_runs("vip1"), vec!["node1"]);
        assert_eq!(s.where_runs("web"), vec!["node1"]);
        assert_eq!(s.failures, vec!["db_monitor_10000 on node1: not running ".to_string()]);
        assert!(!s.settled());
        assert!(!parse("").settled());
    }

    /// A warm-standby clone (one Promoted, one Unpromoted instance) is settled; an instance still
    /// promoting or stopped is not.
    #[test]
    fn a_promotable_clone_is_settled_in_both_roles() {
        let with = |second: &str| {
            format!(
                r#"<pacemaker-result><resources><clone id="broker-clone" multi_state="true">
      <resource id="broker" resource_agent="ocf:hastack:activemq" role="Promoted" active="true" failed="false"><node name="node1" id="1"/></resource>
      {second}
    </clone></resources></pacemaker-result>"#
            )
        };
        let unpromoted = r#"<resource id="broker" resource_agent="ocf:hastack:activemq" role="Unpromoted" active="true" failed="false"><node name="node2" id="2"/></resource>"#;
        let s = parse(&with(unpromoted));
        assert!(s.settled(), "{s:?}");
        assert_eq!(s.where_runs("broker"), vec!["node1", "node2"]);
        assert!(!parse(&with(&unpromoted.replace("Unpromoted", "Promoting"))).settled());
        assert!(!parse(&with(&unpromoted.replace("\"true\"", "\"false\""))).settled());
    }
}
