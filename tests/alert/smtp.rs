//! The other end of the mail test: a minimal SMTP server on 127.0.0.1 that accepts every message
//! msmtp (Debian's msmtp-mta, the real sendmail under test) relays to it, and records it.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct Message {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

pub struct SmtpReceiver {
    pub port: u16,
    messages: Arc<Mutex<Vec<Message>>>,
}

impl SmtpReceiver {
    pub fn start() -> SmtpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let messages = Arc::new(Mutex::new(Vec::new()));
        let m = messages.clone();
        // Serves until the test process ends (one connection per mail).
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                let mut out = conn.try_clone().unwrap();
                let mut reader = BufReader::new(conn);
                let mut msg = Message::default();
                let _ = out.write_all(b"220 localhost ESMTP test\r\n");
                let mut line = String::new();
                while reader.read_line(&mut line).unwrap_or(0) > 0 {
                    let cmd = line.trim_end().to_string();
                    line.clear();
                    let upper = cmd.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250 localhost\r\n"
                    } else if let Some(a) = upper.strip_prefix("MAIL FROM:") {
                        msg.from = cmd[cmd.len() - a.len()..].trim().trim_matches(['<', '>']).to_string();
                        b"250 OK\r\n"
                    } else if let Some(a) = upper.strip_prefix("RCPT TO:") {
                        msg.to.push(cmd[cmd.len() - a.len()..].trim().trim_matches(['<', '>']).to_string());
                        b"250 OK\r\n"
                    } else if upper == "DATA" {
                        let _ = out.write_all(b"354 go ahead\r\n");
                        let mut data = String::new();
                        loop {
                            let mut l = String::new();
                            if reader.read_line(&mut l).unwrap_or(0) == 0 || l == ".\r\n" || l == ".\n" {
                                break;
                            }
                            data.push_str(&l);
                        }
                        msg.data = data;
                        m.lock().unwrap().push(std::mem::take(&mut msg));
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = out.write_all(b"221 bye\r\n");
                        break;
                    } else {
                        b"250 OK\r\n"
                    };
                    let _ = out.write_all(reply);
                }
            }
        });
        SmtpReceiver { port, messages }
    }

    pub fn messages(&self) -> Vec<Message> {
        self.messages.lock().unwrap().clone()
    }
}
