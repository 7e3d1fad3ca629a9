//! A console stand-in for the contract tests: an HTTP/1.1 server on 127.0.0.1 (a port the kernel
//! picks) that records every POST and answers as told: 200, another status, or too late. It
//! stores a report once per idempotency key, as docs/reports.md asks of the console.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub enum Mode {
    Ok,
    Status(u16),
    /// Stores the report, but answers only after this long (the agent has given up by then).
    Slow(Duration),
}

#[derive(Clone, Debug)]
pub struct Post {
    pub headers: BTreeMap<String, String>,
    pub body: serde_json::Value,
    pub raw: String,
    pub stored: bool,
}

impl Post {
    pub fn key(&self) -> String {
        self.body["idempotency_key"].as_str().unwrap_or_default().to_string()
    }
}

#[derive(Default)]
struct State {
    posts: Vec<Post>,
    stored: BTreeSet<String>,
}

pub struct Receiver {
    pub url: String,
    mode: Arc<Mutex<Mode>>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Receiver {
    pub fn start(mode: Mode) -> Receiver {
        Receiver::start_on("127.0.0.1:0", mode)
    }

    /// On a given address (a console that comes back where it was).
    pub fn start_on(addr: &str, mode: Mode) -> Receiver {
        Receiver::start_with(TcpListener::bind(addr).unwrap(), mode)
    }

    /// On a socket the caller bound (e.g. inside another network namespace).
    pub fn start_with(listener: TcpListener, mode: Mode) -> Receiver {
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/api/v1/reports", listener.local_addr().unwrap());
        let mode = Arc::new(Mutex::new(mode));
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s, st) = (mode.clone(), state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !st.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (m, s) = (m.clone(), s.clone());
                        std::thread::spawn(move || serve(conn, &m, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Receiver { url, mode, state, stop, thread: Some(thread) }
    }

    pub fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn posts(&self) -> Vec<Post> {
        self.state.lock().unwrap().posts.clone()
    }

    /// The idempotency keys stored (each once, however often it was sent).
    pub fn stored(&self) -> BTreeSet<String> {
        self.state.lock().unwrap().stored.clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// An address on which nothing listens (connection refused): a console that is down.
pub fn free_addr() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

pub fn url_of(addr: &str) -> String {
    format!("http://{addr}/api/v1/reports")
}

pub fn down_url() -> String {
    url_of(&free_addr())
}

fn serve(conn: TcpStream, mode: &Mutex<Mode>, state: &Mutex<State>) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() || !request_line.starts_with("POST ") {
        return;
    }
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut body = vec![0; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let raw = String::from_utf8_lossy(&body).into_owned();
    let json: serde_json::Value = serde_json::from_str(&raw).unwrap_or(serde_json::Value::Null);
    let mode = *mode.lock().unwrap();
    let stored = !matches!(mode, Mode::Status(_));
    {
        let mut s = state.lock().unwrap();
        let post = Post { headers, body: json, raw, stored };
        if stored {
            s.stored.insert(post.key());
        }
        s.posts.push(post);
    }
    let status = match mode {
        Mode::Ok => 200,
        Mode::Status(code) => code,
        Mode::Slow(delay) => {
            std::thread::sleep(delay);
            200
        }
    };
    let mut conn = conn;
    let _ = write!(conn, "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
}
