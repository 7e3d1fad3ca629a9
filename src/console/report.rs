//! The alert report as the console reads it (docs/reports.md; docs/report-schema.json,
//! schema_version 1). Lenient where the versioning rule asks for it (unknown fields are ignored,
//! unknown categories and severities are kept as text and read as `other` and `warning`), strict
//! on what the console keys on: the schema, its version and the idempotency key's recipe.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const SCHEMA: &str = "hastack.alert-report";
/// The schema versions this console reads.
pub const SCHEMA_VERSIONS: &[i64] = &[1];

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Report {
    pub schema: String,
    pub schema_version: i64,
    pub idempotency_key: String,
    pub agent: Agent,
    pub cluster: ClusterRef,
    pub reporter: Reporter,
    pub event: Event,
    pub snapshot: Snapshot,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Agent {
    pub name: String,
    pub version: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ClusterRef {
    pub id: String,
    pub id_source: String,
    pub name: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Reporter {
    pub node: String,
    pub hostname: String,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Event {
    pub kind: String,
    pub category: String,
    pub severity: String,
    pub summary: String,
    pub time: EventTime,
    pub pacemaker_version: String,
    pub alert: Alert,
    pub fencing: Option<Fencing>,
    pub findings: Vec<serde_json::Value>,
    pub raw: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EventTime {
    pub epoch: i64,
    pub usec: i64,
    pub node_sequence: Option<i64>,
    pub text: Option<String>,
    pub source: String,
}

/// The alert agent's own type: one definition of the wire format's `event.alert`.
pub use crate::alert::event::Typed as Alert;

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Fencing {
    pub action: String,
    pub target: String,
    pub executioner: String,
    pub client: String,
    pub origin: String,
    pub status: String,
    pub reason: Option<String>,
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    pub succeeded: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Snapshot {
    pub format: String,
    pub command: String,
    pub taken_at: Stamp,
    pub duration_ms: i64,
    pub exit_code: Option<i64>,
    pub xml: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
pub struct Stamp {
    pub epoch: i64,
    pub usec: i64,
}

/// The agent's classification (docs/reports.md "Categories"); a value this console does not know
/// reads as `Other`, as the versioning rule says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    NodeMember,
    NodeLost,
    NodeState,
    FencingSucceeded,
    FencingFailed,
    OperationSucceeded,
    OperationFailed,
    Degraded,
    FoundActive,
    AttributeChanged,
    Other,
}

impl Category {
    pub fn parse(s: &str) -> Category {
        match s {
            "node_member" => Category::NodeMember,
            "node_lost" => Category::NodeLost,
            "node_state" => Category::NodeState,
            "fencing_succeeded" => Category::FencingSucceeded,
            "fencing_failed" => Category::FencingFailed,
            "operation_succeeded" => Category::OperationSucceeded,
            "operation_failed" => Category::OperationFailed,
            "degraded" => Category::Degraded,
            "found_active" => Category::FoundActive,
            "attribute_changed" => Category::AttributeChanged,
            _ => Category::Other,
        }
    }
}

/// `info`, `warning`, `critical`; anything else reads as warning (docs/reports.md, Versioning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn parse(s: &str) -> Severity {
        match s {
            "info" => Severity::Info,
            "critical" => Severity::Critical,
            _ => Severity::Warning,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Why a report is refused: an HTTP status, a stable code for machines, a sentence for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
}

impl Rejection {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Rejection {
        Rejection { status, code, message: message.into() }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl Report {
    /// Parses a request body: 400 for text that is not JSON, 422 for JSON that is not a report.
    pub fn parse(body: &[u8]) -> Result<Report, Rejection> {
        // JSON is UTF-8 (RFC 8259). serde_json checks the fields it reads but skips unknown ones
        // unchecked, and the stored body is shown again as JSON: check the whole body first.
        let text = std::str::from_utf8(body).map_err(|e| {
            Rejection::new(400, "malformed_json", format!("the body is not JSON: it is not UTF-8 ({e})"))
        })?;
        let report: Report = serde_json::from_str(text).map_err(|e| {
            use serde_json::error::Category as C;
            match e.classify() {
                C::Syntax | C::Eof | C::Io => {
                    Rejection::new(400, "malformed_json", format!("the body is not JSON: {e}"))
                }
                C::Data => Rejection::new(422, "not_a_report", format!("the JSON is not an alert report: {e}")),
            }
        })?;
        report.validate()?;
        Ok(report)
    }

    /// The checks serde cannot make: document type and version, the key and its recipe, ranges.
    pub fn validate(&self) -> Result<(), Rejection> {
        if self.schema != SCHEMA {
            return Err(Rejection::new(
                422,
                "wrong_schema",
                format!("schema is {:?}, expected {SCHEMA:?}", self.schema),
            ));
        }
        if !SCHEMA_VERSIONS.contains(&self.schema_version) {
            return Err(Rejection::new(
                422,
                "unsupported_schema_version",
                format!(
                    "schema_version {} is not one this console reads ({:?}); upgrade the console",
                    self.schema_version, SCHEMA_VERSIONS
                ),
            ));
        }
        let key = &self.idempotency_key;
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
            return Err(Rejection::new(422, "bad_idempotency_key", "idempotency_key must be 64 lower-case hex digits"));
        }
        let expected = self.expected_key();
        if *key != expected {
            return Err(Rejection::new(
                422,
                "idempotency_key_mismatch",
                format!("idempotency_key does not match the report's fields (docs/reports.md recipe gives {expected})"),
            ));
        }
        if self.cluster.id.is_empty() {
            return Err(Rejection::new(422, "empty_cluster_id", "cluster.id is empty"));
        }
        for (what, usec) in
            [("event.time.usec", self.event.time.usec), ("snapshot.taken_at.usec", self.snapshot.taken_at.usec)]
        {
            if !(0..=999_999).contains(&usec) {
                return Err(Rejection::new(422, "bad_usec", format!("{what} is {usec}, not within 0..=999999")));
            }
        }
        Ok(())
    }

    /// The idempotency key docs/reports.md defines: SHA-256 of the event's identity fields.
    pub fn expected_key(&self) -> String {
        fn opt<T: ToString>(v: &Option<T>) -> String {
            v.as_ref().map(T::to_string).unwrap_or_default()
        }
        let e = &self.event;
        let a = &e.alert;
        let fields = [
            "hastack-report-v1".to_string(),
            self.cluster.id.clone(),
            self.reporter.node.clone(),
            e.time.epoch.to_string(),
            format!("{:06}", e.time.usec),
            opt(&e.time.node_sequence),
            e.kind.clone(),
            opt(&a.node),
            opt(&a.rsc),
            opt(&a.task),
            opt(&a.interval),
            opt(&a.rc),
        ];
        let mut hasher = ring::digest::Context::new(&ring::digest::SHA256);
        for f in &fields {
            hasher.update(f.as_bytes());
            hasher.update(b"\n");
        }
        hex(hasher.finish().as_ref())
    }

    /// The event's time in microseconds since 1970, saturating (a wild epoch stays comparable).
    pub fn event_time_us(&self) -> i64 {
        micros(self.event.time.epoch, self.event.time.usec)
    }

    pub fn category(&self) -> Category {
        Category::parse(&self.event.category)
    }

    pub fn severity(&self) -> Severity {
        Severity::parse(&self.event.severity)
    }
}

pub fn micros(epoch: i64, usec: i64) -> i64 {
    epoch.saturating_mul(1_000_000).saturating_add(usec)
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../docs/report-example.json");

    #[test]
    fn the_documented_example_parses_and_its_key_follows_the_recipe() {
        let r = Report::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(r.cluster.id, "store-042");
        assert_eq!(r.category(), Category::OperationFailed);
        assert_eq!(r.event_time_us(), 1_767_225_600_123_456);
    }

    #[test]
    fn malformed_json_is_400_and_a_wrong_shape_is_422() {
        assert_eq!(Report::parse(b"{\"schema\": ").unwrap_err().status, 400);
        assert_eq!(Report::parse(b"[1,2]").unwrap_err().status, 422);
        let missing = EXAMPLE.replace("\"reporter\"", "\"reporter_gone\"");
        let err = Report::parse(missing.as_bytes()).unwrap_err();
        assert_eq!((err.status, err.code), (422, "not_a_report"));
        assert!(err.message.contains("reporter"), "{}", err.message);
    }

    #[test]
    fn a_body_that_is_not_utf8_is_malformed_even_inside_an_unknown_field() {
        // Found by the console_report fuzz target: serde_json skips an unknown field's string
        // without checking it, so this body was stored although it is not JSON.
        let mut body = EXAMPLE.replacen('{', "{\"extra\": \"@\",", 1).into_bytes();
        let at = body.iter().position(|&b| b == b'@').unwrap();
        body[at] = 0xff;
        assert!(serde_json::from_slice::<Report>(&body).is_ok(), "serde_json alone accepts it");
        let err = Report::parse(&body).unwrap_err();
        assert_eq!((err.status, err.code), (400, "malformed_json"), "{}", err.message);
        assert!(err.message.contains("UTF-8"), "{}", err.message);
    }

    #[test]
    fn a_changed_identity_field_breaks_the_key() {
        let changed = EXAMPLE.replace("\"rc\": 7", "\"rc\": 1");
        let err = Report::parse(changed.as_bytes()).unwrap_err();
        assert_eq!(err.code, "idempotency_key_mismatch");
    }

    #[test]
    fn unknown_fields_and_enum_values_are_accepted() {
        let newer = EXAMPLE
            .replace("\"category\": \"operation_failed\"", "\"category\": \"something_new\", \"extra\": {\"x\": 1}")
            .replace("\"severity\": \"warning\"", "\"severity\": \"emergency\"");
        let r = Report::parse(newer.as_bytes()).unwrap();
        assert_eq!(r.category(), Category::Other);
        assert_eq!(r.severity(), Severity::Warning);
    }

    #[test]
    fn another_schema_version_is_refused_with_a_reason() {
        let v2 = EXAMPLE.replace("\"schema_version\": 1", "\"schema_version\": 2");
        let err = Report::parse(v2.as_bytes()).unwrap_err();
        assert_eq!((err.status, err.code), (422, "unsupported_schema_version"));
    }
}
