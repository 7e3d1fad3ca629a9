//! HTTP servers and health URLs (nginx, httpd, Tomcat): readiness by listening socket, status
//! URLs answered within the per-request timeout.

use crate::agents::service::Probe;
use crate::net::http;
use crate::ocf::{Ctx, Deadline, OcfError, OcfResult, OcfStatus};
use crate::sys::{listeners, tree};

/// GETs a health URL within `deadline`: Ok on 2xx, else a reason naming the URL.
pub fn http_ok(url: &str, deadline: Deadline) -> Result<(), String> {
    let parsed = http::parse_url(url)?;
    match http::get(&parsed, deadline) {
        Ok(r) if (200..300).contains(&r.status) => Ok(()),
        Ok(r) => Err(format!("GET {url} answered HTTP {}", r.status)),
        Err(e) => Err(format!("GET {url}: {e}")),
    }
}

/// The deadline of one network request: `request_timeout`, within the action's budget.
pub fn request_deadline(ctx: &Ctx) -> Deadline {
    ctx.deadline.at_most(ctx.params.secs("request_timeout"))
}

/// Readiness of a web server whose master binds every listen socket before it forks workers
/// (nginx, httpd): one listening port means all are bound.
pub fn ready_when_listening(pid: i32) -> Probe {
    if listeners::listening_ports(&tree::tree_of(pid)).is_empty() {
        Probe::NotYet(Some("it listens on no TCP port yet".into()))
    } else {
        Probe::Ready
    }
}

/// The monitor of a web server (nginx, httpd) past its main process: depth 0 = it listens;
/// depth 10 = also `statusurl` (default: `/` on the first port it listens on) answers 2xx in time.
pub fn web_server_check(ctx: &Ctx, server: &str, main: i32) -> OcfResult {
    // The master holds every listening socket; the workers only inherit them.
    let mut ports = listeners::listening_ports(&[main]);
    if ports.is_empty() {
        ports = listeners::listening_ports(&tree::tree_of(main));
    }
    let Some(first) = ports.first() else {
        return Err(OcfError::generic(format!("{server} (PID {main}) listens on no TCP port")));
    };
    if ctx.check_level() >= 10 {
        let url = match ctx.params.get("statusurl") {
            Some(u) => u.to_string(),
            None => format!("http://127.0.0.1:{first}/"),
        };
        http_ok(&url, request_deadline(ctx)).map_err(OcfError::generic)?;
    }
    Ok(OcfStatus::Success)
}
