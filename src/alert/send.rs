//! Delivering spooled reports to the console: HTTP POST with ureq (blocking, rustls: no async
//! runtime in a short-lived agent, https to a console across a WAN, proxies from the usual
//! environment variables, one global timeout per request that covers DNS, connect, TLS, send
//! and the answer). The oldest reports go first; the first failure for a console stops its
//! sending in this run, so a console that is down costs one connect attempt, not one per report.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::spool::{self, Claim, Destination};
use crate::ocf::Deadline;

/// Well-known CA bundles (Debian/Ubuntu, RHEL/Fedora, SUSE): the site's own CA is trusted once
/// the administrator adds it to the system store (update-ca-certificates), as with curl.
const SYSTEM_BUNDLES: &[&str] =
    &["/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/ca-bundle.pem"];

/// Why a report was not delivered.
#[derive(Debug, PartialEq)]
pub enum SendError {
    /// The console answered, but not 2xx.
    Status(u16),
    /// No answer in time, no connection, TLS or DNS failure.
    Transport(String),
    /// Our side: unreadable token or CA file.
    Local(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Status(s) => write!(f, "the console answered HTTP {s}"),
            SendError::Transport(e) => write!(f, "{e}"),
            SendError::Local(e) => write!(f, "{e}"),
        }
    }
}

/// What one drain of the spool did.
#[derive(Debug, Default)]
pub struct Drained {
    pub delivered: Vec<PathBuf>,
    /// Consoles that failed in this run, with the first error.
    pub failed: Vec<(String, String)>,
    /// Reports left for later (failed console, no time left, claimed by another process).
    pub left: usize,
    pub broken: Vec<String>,
}

/// Sends every spooled report (oldest first) until the deadline. `only` limits it to one console.
pub fn drain(dir: &Path, deadline: Deadline, only: Option<&str>) -> std::io::Result<Drained> {
    let mut result = Drained::default();
    let mut failed_urls = BTreeSet::new();
    for path in spool::entries(dir)? {
        let claimed = match spool::claim(&path) {
            Claim::Mine(c) => c,
            Claim::Busy => {
                result.left += path.exists() as usize;
                continue;
            }
            Claim::Broken(why) => {
                result.broken.push(why);
                continue;
            }
        };
        let url = claimed.destination.url.clone();
        // A report for a console that failed in this run, or for another console, waits.
        if failed_urls.contains(&url) || only.is_some_and(|o| o != url) {
            result.left += 1;
            continue;
        }
        // Keep a little time in hand: a request cut short by the deadline is wasted.
        let left = deadline.remaining();
        if left < Duration::from_millis(200) {
            result.left += 1;
            continue;
        }
        let timeout = Duration::from_millis(claimed.destination.send_timeout_ms).min(left);
        match post(&claimed.destination, &claimed.body, timeout) {
            Ok(()) => {
                let p = claimed.path.clone();
                match claimed.delete() {
                    Ok(()) => result.delivered.push(p),
                    Err(e) => result.broken.push(format!("{}: delivered but not deleted: {e}", p.display())),
                }
            }
            Err(e) => {
                failed_urls.insert(url.clone());
                result.failed.push((url, e.to_string()));
                result.left += 1;
            }
        }
    }
    Ok(result)
}

/// One POST of a report; Ok only on 2xx.
pub fn post(dest: &Destination, body: &[u8], timeout: Duration) -> Result<(), SendError> {
    let token = match &dest.token_file {
        Some(file) => Some(read_token(file)?),
        None => None,
    };
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        // A redirect is not a delivery; the console's URL must be the final one.
        .max_redirects(0)
        .user_agent(format!("hastack-alert/{}", env!("CARGO_PKG_VERSION")));
    if dest.url.starts_with("https://") {
        config = config.tls_config(tls_config(dest.ca_file.as_deref())?);
    }
    let agent: ureq::Agent = config.build().into();
    let key = idempotency_key_of(body);
    let mut request = agent
        .post(&dest.url)
        .header("Content-Type", "application/json")
        .header("X-Hastack-Schema-Version", super::report::SCHEMA_VERSION.to_string());
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    if let Some(token) = token {
        request = request.header("Authorization", format!("Bearer {token}"));
    }
    match request.send(body) {
        Ok(response) if response.status().is_success() => Ok(()),
        Ok(response) => Err(SendError::Status(response.status().as_u16())),
        Err(e) => Err(SendError::Transport(describe(&e, timeout))),
    }
}

fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("no answer within {} ms", timeout.as_millis()),
        ureq::Error::Io(io) => format!("connection failed: {io}"),
        other => other.to_string(),
    }
}

/// The key from the report itself, for the header (a report is always ours, but a hand-edited
/// spool file must not stop the sending).
fn idempotency_key_of(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Key {
        idempotency_key: String,
    }
    serde_json::from_slice::<Key>(body).ok().map(|k| k.idempotency_key)
}

/// The first line of the token file, trimmed; an empty or unreadable file is an error.
pub fn read_token(file: &Path) -> Result<String, SendError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        SendError::Local(format!(
            "cannot read the token file {}: {e} (it must be readable by the cluster user hacluster)",
            file.display()
        ))
    })?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(SendError::Local(format!("the token file {} is empty", file.display())));
    }
    Ok(token)
}

/// Roots for https: `ca_file` if set, else the system bundle, else the built-in Mozilla roots.
fn tls_config(ca_file: Option<&Path>) -> Result<ureq::tls::TlsConfig, SendError> {
    use ureq::tls::{parse_pem, PemItem, RootCerts, TlsConfig};
    let bundle = match ca_file {
        Some(f) => Some(f.to_path_buf()),
        None => SYSTEM_BUNDLES.iter().map(PathBuf::from).find(|p| p.is_file()),
    };
    let Some(bundle) = bundle else {
        return Ok(TlsConfig::builder().root_certs(RootCerts::WebPki).build());
    };
    let pem = std::fs::read(&bundle)
        .map_err(|e| SendError::Local(format!("cannot read the CA bundle {}: {e}", bundle.display())))?;
    let certs: Vec<_> = parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(SendError::Local(format!("{} holds no PEM certificate", bundle.display())));
    }
    Ok(TlsConfig::builder().root_certs(RootCerts::new_with_certs(&certs)).build())
}
