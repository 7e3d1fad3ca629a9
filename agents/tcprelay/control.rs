//! The relay daemon's control socket, `/run/hastack/tcprelay-<resource>.ctl` (mode 0600): the
//! agent sends one request line and reads one answer line. Requests: `status`, and
//! `freeze port=P key=PATH drain_ms=D within_ms=T hold_ms=H` (migrate_to). Answers: a word (`running`,
//! `frozen`, `ok`, `error`) and `name=value` fields, or after `error` a free-text reason.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ocf::Deadline;
use crate::sys::identity;

/// Where the daemon of `resource` listens for the agent.
pub fn socket_path(resource: &str) -> PathBuf {
    identity::state_file("tcprelay", resource).with_extension("ctl")
}

/// Where migrate_from leaves the fetched state for the daemon it starts (mode 0600; the daemon
/// removes it once read).
pub fn state_path(resource: &str) -> PathBuf {
    identity::state_file("tcprelay", resource).with_extension("state")
}

/// One answer: its first word and its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub word: String,
    pub fields: BTreeMap<String, String>,
    /// Everything after the word, for `error` answers.
    pub text: String,
}

impl Answer {
    pub fn parse(line: &str) -> Answer {
        let line = line.trim();
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let fields = rest
            .split_whitespace()
            .filter_map(|kv| kv.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Answer { word: word.to_string(), fields, text: rest.to_string() }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.get(name).map(String::as_str)
    }

    pub fn num(&self, name: &str) -> u64 {
        self.get(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }
}

/// `word name=value ...` (values must hold no spaces).
pub fn format(word: &str, fields: &[(&str, String)]) -> String {
    let mut line = word.to_string();
    for (k, v) in fields {
        line.push_str(&format!(" {k}={v}"));
    }
    line
}

/// Sends one request and waits for its answer within the deadline.
pub fn ask(path: &Path, request: &str, deadline: Deadline) -> Result<Answer, String> {
    let mut stream =
        UnixStream::connect(path).map_err(|e| format!("cannot reach the relay at {}: {e}", path.display()))?;
    let left = deadline.remaining().max(Duration::from_millis(1));
    stream.set_read_timeout(Some(left)).ok();
    stream.set_write_timeout(Some(left)).ok();
    stream.write_all(format!("{request}\n").as_bytes()).map_err(|e| format!("cannot talk to the relay: {e}"))?;
    let mut line = String::new();
    match BufReader::new(stream).read_line(&mut line) {
        Ok(0) => Err("the relay closed the control connection without an answer".into()),
        Ok(_) => Ok(Answer::parse(&line)),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            Err("the relay did not answer in time".into())
        }
        Err(e) => Err(format!("the relay's answer: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        let a = Answer::parse("ok connections=3 unread=120\n");
        assert_eq!(a.word, "ok");
        assert_eq!(a.num("connections"), 3);
        assert_eq!(a.num("missing"), 0);
        let e = Answer::parse("error the application did not answer");
        assert_eq!((e.word.as_str(), e.text.as_str()), ("error", "the application did not answer"));
        assert_eq!(format("freeze", &[("port", "7480".into()), ("key", "/k".into())]), "freeze port=7480 key=/k");
    }
}
