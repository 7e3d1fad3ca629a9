//! Telling the operator: syslog (always), a line appended to a file, a mail through the local
//! `sendmail` (any MTA's: postfix, exim, msmtp, dma all install one).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};

use super::event::Severity;
use crate::ocf::Deadline;
use crate::sys::proc::wait_until;

const FACILITY_DAEMON: u16 = 3;

/// One line to the local syslog socket as `hastack-alert[pid]: text`, at the severity's priority.
pub fn syslog(severity: Severity, text: &str) {
    let level: u16 = match severity {
        Severity::Info => 6,
        Severity::Warning => 4,
        Severity::Critical => 2,
    };
    let line = format!("<{}>hastack-alert[{}]: {text}", FACILITY_DAEMON * 8 + level, std::process::id());
    if let Ok(sock) = UnixDatagram::unbound() {
        let _ = sock.send_to(line.as_bytes(), "/dev/log");
    }
}

/// Appends `line` (a newline is added) with one write, so concurrent alerts do not interleave.
pub fn append(file: &Path, line: &str) -> std::io::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).mode(0o640).open(file)?;
    f.write_all(format!("{line}\n").as_bytes())
}

/// A plain-text mail.
pub struct Mail<'a> {
    pub to: &'a [String],
    pub from: Option<&'a str>,
    pub subject: &'a str,
    pub body: &'a str,
}

impl Mail<'_> {
    /// RFC 5322 headers and body; the subject is cut to one line.
    pub fn message(&self) -> String {
        let subject: String = self.subject.replace(['\r', '\n'], " ").chars().take(200).collect();
        let mut m = format!("To: {}\n", self.to.join(", "));
        if let Some(from) = self.from {
            m.push_str(&format!("From: {from}\n"));
        }
        m.push_str(&format!(
            "Subject: {subject}\nAuto-Submitted: auto-generated\nMIME-Version: 1.0\n\
             Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n{}\n",
            self.body
        ));
        m
    }
}

/// Hands the mail to `sendmail -i [-f FROM] -- ADDRESSES` and waits for it within the deadline
/// (a hung MTA is killed: the alert must end in time).
pub fn mail(sendmail: &Path, mail: &Mail, deadline: Deadline) -> Result<(), String> {
    let mut cmd = Command::new(sendmail);
    cmd.arg("-i");
    if let Some(from) = mail.from {
        cmd.args(["-f", from]);
    }
    cmd.arg("--").args(mail.to);
    use std::os::unix::process::CommandExt;
    cmd.stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {}: {e}", sendmail.display()))?;
    let text = mail.message();
    let mut stdin = child.stdin.take().expect("piped");
    // Written from a thread: an MTA that does not read must not block us past the deadline.
    let writer = std::thread::spawn(move || stdin.write_all(text.as_bytes()));
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    match wait_until(&mut child, deadline) {
        Some(status) => {
            let _ = writer.join();
            let err = reader.join().unwrap_or_default();
            if status.success() {
                Ok(())
            } else {
                Err(format!("{} failed ({status}): {}", sendmail.display(), err.trim()))
            }
        }
        None => {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(-(child.id() as i32)), nix::sys::signal::SIGKILL);
            let _ = child.wait();
            Err(format!("{} did not finish in time and was killed", sendmail.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_message_has_headers_and_one_line_subject() {
        let to = vec!["ops@example.com".to_string(), "b@example.com".to_string()];
        let m = Mail { to: &to, from: Some("ha@example.com"), subject: "a\nb", body: "text" };
        let msg = m.message();
        assert!(msg.starts_with("To: ops@example.com, b@example.com\nFrom: ha@example.com\nSubject: a b\n"), "{msg}");
        assert!(msg.ends_with("\n\ntext\n"));
    }

    #[test]
    fn sendmail_failures_and_hangs_are_reported_in_time() {
        let to = vec!["ops@example.com".to_string()];
        let m = Mail { to: &to, from: None, subject: "s", body: "b" };
        let err = mail(Path::new("/nonexistent/sendmail"), &m, Deadline::after(std::time::Duration::from_secs(1)))
            .unwrap_err();
        assert!(err.contains("cannot run"), "{err}");
        assert!(mail(Path::new("/bin/false"), &m, Deadline::after(std::time::Duration::from_secs(5))).is_err());
        let started = std::time::Instant::now();
        let dir = tempfile::tempdir().unwrap();
        let hang = dir.path().join("hang");
        std::fs::write(&hang, "#!/bin/sh\nsleep 30\n").unwrap();
        std::fs::set_permissions(&hang, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let err = mail(&hang, &m, Deadline::after(std::time::Duration::from_millis(300))).unwrap_err();
        assert!(err.contains("killed"), "{err}");
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }
}
