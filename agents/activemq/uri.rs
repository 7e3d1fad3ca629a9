//! `broker_uri`: an ActiveMQ broker configured by a `broker:` URI (ActiveMQ's own
//! BrokerFactory, the form `activemq start broker:(...)` takes) instead of activemq.xml. It has
//! no Spring context to build and no schema to validate: a start costs about a third less CPU
//! (BENCHMARKS.md "Where the broker's start goes").
//!
//! The agent reads the URI as ActiveMQ does (URISupport.parseComposite): `broker:(C1,C2,...)`
//! then an optional `/NAME` (the broker's name) and `?OPTIONS` that are set on the
//! BrokerService; without parentheses the whole text is one connector and every `?` belongs to
//! it. It checks only what the agent depends on (the store on `data_dir`, kept persistently and
//! never wiped, a clean stop on SIGTERM, the STOMP connector its probes use) and leaves every
//! other option to ActiveMQ, which refuses unknown ones at start.

use std::path::Path;

/// A parsed `broker:` URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokerUri {
    /// The transport connectors (`tcp://...`, `stomp://...`, `network:...`), as written.
    pub connectors: Vec<String>,
    /// Text between the closing parenthesis and `?` (`/NAME`), as written.
    path: String,
    /// The broker options, `name` → raw (still URL-encoded) value, in order.
    options: Vec<(String, Option<String>)>,
}

/// Broker options whose value the agent decides or must refuse (compared case-insensitively,
/// as ActiveMQ's setter lookup ignores the case of the first letter).
const DATA_DIRECTORY: &[&str] = &["dataDirectory", "dataDirectoryFile"];

impl BrokerUri {
    /// Reads `text`; the error says what is wrong, for "parameter 'broker_uri' ...".
    pub fn parse(text: &str) -> Result<BrokerUri, String> {
        let text = text.trim();
        let Some(rest) = text.strip_prefix("broker:") else {
            return Err(format!(
                "must be an ActiveMQ broker URI starting with 'broker:' \
                 (e.g. broker:(tcp://0.0.0.0:61616,stomp://127.0.0.1:61613)?useJmx=false), got '{text}'"
            ));
        };
        if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("must not contain {c:?} (a URI has no blanks; encode them as %20)"));
        }
        if !balanced(rest) {
            return Err(format!("has unbalanced parentheses: '{text}'"));
        }
        let (components, tail) = match rest.strip_prefix('(') {
            Some(inner) => {
                let close = inner.rfind(')').expect("balanced");
                (&inner[..close], &inner[close + 1..])
            }
            None => (rest, ""),
        };
        let connectors: Vec<String> = split_top_level(components).into_iter().map(str::to_string).collect();
        if connectors.iter().any(|c| c.is_empty()) {
            return Err(format!("has an empty connector in '{text}'"));
        }
        let (path, query) = match tail.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (tail, None),
        };
        let options = query
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|kv| !kv.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (kv.to_string(), None),
            })
            .collect();
        Ok(BrokerUri { connectors, path: path.to_string(), options })
    }

    /// The decoded value of a broker option (names compared case-insensitively).
    pub fn option(&self, name: &str) -> Option<String> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().map(decode).unwrap_or_default())
    }

    /// The ports of the STOMP connectors (`stomp://`, `stomp+nio://`, `stomp+ssl://`...).
    pub fn stomp_ports(&self) -> Vec<u16> {
        self.connectors.iter().filter(|c| c.starts_with("stomp")).filter_map(|c| port_of(c)).collect()
    }

    /// The URI the agent launches: this one, checked against what the agent needs, with its
    /// store on `data_dir` (`dataDirectory` added when the URI does not set it) and in
    /// ActiveMQ's composite form, so that the options always reach the broker.
    pub fn for_agent(&self, data_dir: &Path, stomp_port: u16) -> Result<String, String> {
        let data = data_dir.to_string_lossy();
        let data = data.trim_end_matches('/');
        let mut options = self.options.clone();
        let set: Vec<String> = DATA_DIRECTORY.iter().filter_map(|n| self.option(n)).collect();
        match set.iter().find(|d| d.trim_end_matches('/') != data) {
            Some(other) => {
                return Err(format!(
                    "keeps the store in {other}, not in data_dir {data} (the replicated partition): \
                     leave dataDirectory out, the agent sets it"
                ))
            }
            None if set.is_empty() => options.push(("dataDirectory".into(), Some(encode(data)))),
            None => {}
        }
        if let Some(p) = self.option("persistent").filter(|p| !p.eq_ignore_ascii_case("true")) {
            return Err(format!(
                "sets persistent={p}: the broker would keep its messages in memory, not in data_dir, \
                 and lose them at every failover"
            ));
        }
        if self.option("deleteAllMessagesOnStartup").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Err(
                "sets deleteAllMessagesOnStartup=true: every start (every failover) would delete the store".into()
            );
        }
        if self.option("useShutdownHook").is_some_and(|v| !v.eq_ignore_ascii_case("true")) {
            return Err("sets useShutdownHook=false: the agent stops the broker with SIGTERM, which then \
                        would not close the store"
                .into());
        }
        if !self.stomp_ports().contains(&stomp_port) {
            return Err(format!(
                "has no STOMP connector on port {stomp_port} (parameter 'stomp_port'), which the agent's \
                 readiness check and monitor use: add stomp://127.0.0.1:{stomp_port}"
            ));
        }
        let query: Vec<String> = options
            .iter()
            .map(|(k, v)| match v {
                Some(v) => format!("{k}={v}"),
                None => k.clone(),
            })
            .collect();
        Ok(format!("broker:({}){}?{}", self.connectors.join(","), self.path, query.join("&")))
    }
}

/// Every '(' closed, never more ')' than '(' so far.
fn balanced(text: &str) -> bool {
    let mut depth = 0i32;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    depth == 0
}

/// Splits at the commas outside parentheses (a `network:(static:(tcp://a,tcp://b))` connector
/// is one).
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut parts) = (0i32, 0, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(text[start..].trim());
    parts
}

/// The port of `scheme://host:port[/...][?...]` (IPv6 hosts in brackets).
fn port_of(connector: &str) -> Option<u16> {
    let authority = connector.split_once("://")?.1;
    let authority = authority.split(['/', '?']).next()?;
    let port = match authority.rsplit_once(']') {
        Some((_, after)) => after.strip_prefix(':')?,
        None => authority.rsplit_once(':')?.1,
    };
    port.parse().ok()
}

/// URL decoding as ActiveMQ's (Java's URLDecoder): `%XX` and `+` for a blank.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// URL encoding of a path for an option value: everything but unreserved characters and '/'.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => (b as char).to_string(),
            b => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAB: &str = "broker:(tcp://0.0.0.0:61616,stomp://127.0.0.1:61613)?useJmx=false&brokerName=lab";

    fn agent_uri(text: &str) -> Result<String, String> {
        BrokerUri::parse(text)?.for_agent(Path::new("/srv/data/activemq"), 61613)
    }

    #[test]
    fn the_store_goes_to_data_dir() {
        assert_eq!(
            agent_uri(LAB).unwrap(),
            "broker:(tcp://0.0.0.0:61616,stomp://127.0.0.1:61613)?useJmx=false&brokerName=lab&dataDirectory=/srv/data/activemq"
        );
        // Already there (also with a trailing slash): kept as written.
        let same = format!("{LAB}&dataDirectory=/srv/data/activemq/");
        assert_eq!(agent_uri(&same).unwrap(), same);
        let err = agent_uri(&format!("{LAB}&DataDirectory=/var/lib/activemq")).unwrap_err();
        assert!(err.contains("keeps the store in /var/lib/activemq, not in data_dir /srv/data/activemq"), "{err}");
        assert!(agent_uri(&format!("{LAB}&dataDirectoryFile=/tmp/x")).is_err());
        // A data directory with characters a query must encode.
        let odd = BrokerUri::parse(LAB).unwrap().for_agent(Path::new("/srv/a b&c"), 61613).unwrap();
        assert!(odd.ends_with("&dataDirectory=/srv/a%20b%26c"), "{odd}");
        assert_eq!(decode("/srv/a%20b%26c+d"), "/srv/a b&c d");
    }

    #[test]
    fn a_single_connector_gets_the_composite_form() {
        // Without parentheses every '?' is the connector's: the agent's options must not join it.
        assert_eq!(
            agent_uri("broker:stomp://127.0.0.1:61613?transport.closeAsync=false").unwrap(),
            "broker:(stomp://127.0.0.1:61613?transport.closeAsync=false)?dataDirectory=/srv/data/activemq"
        );
        let named = agent_uri("broker:(stomp://127.0.0.1:61613)/main?useJmx=false").unwrap();
        assert_eq!(named, "broker:(stomp://127.0.0.1:61613)/main?useJmx=false&dataDirectory=/srv/data/activemq");
    }

    #[test]
    fn options_that_lose_messages_or_the_clean_stop_are_refused() {
        for (option, says) in [
            ("persistent=false", "persistent=false"),
            ("persistent=maybe", "persistent=maybe"),
            ("deleteAllMessagesOnStartup=true", "delete the store"),
            ("useShutdownHook=false", "SIGTERM"),
        ] {
            let err = agent_uri(&format!("{LAB}&{option}")).unwrap_err();
            assert!(err.contains(says), "{option}: {err}");
        }
        assert!(agent_uri(&format!("{LAB}&persistent=TRUE&useShutdownHook=true")).is_ok());
    }

    #[test]
    fn the_probes_need_a_stomp_connector_on_stomp_port() {
        let err = agent_uri("broker:(tcp://0.0.0.0:61616)").unwrap_err();
        assert!(err.contains("no STOMP connector on port 61613"), "{err}");
        assert!(agent_uri("broker:(tcp://0.0.0.0:61616,stomp://0.0.0.0:61614)").is_err());
        assert!(agent_uri("broker:(stomp+nio://[::1]:61613?maximumConnections=10)").is_ok());
        let nested = BrokerUri::parse("broker:(network:(static:(tcp://a:1,tcp://b:2)),stomp://h:61613)").unwrap();
        assert_eq!(nested.connectors, ["network:(static:(tcp://a:1,tcp://b:2))", "stomp://h:61613"]);
        assert_eq!(nested.stomp_ports(), [61613]);
    }

    #[test]
    fn what_is_not_a_broker_uri() {
        for (bad, says) in [
            ("xbean:activemq.xml", "starting with 'broker:'"),
            ("/etc/activemq/activemq.xml", "starting with 'broker:'"),
            ("broker:(stomp://h:61613", "unbalanced"),
            ("broker:(stomp://h:61613))(", "unbalanced"),
            ("broker:(stomp://h:61613)?a=b c", "blanks"),
            ("broker:(,stomp://h:61613)", "empty connector"),
        ] {
            let err = BrokerUri::parse(bad).unwrap_err();
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
