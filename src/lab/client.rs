//! `hastack lab client`: sends numbered transactions through the stack's public address at a
//! steady rate and logs every step, for the failover measurement and the ledger check.
//!
//! Each transaction N of run RUN is `POST URL/tx/RUN/N`; 200 means committed. Any other outcome
//! (timeout, refused connection, 503) leaves its fate unknown: the transaction may have been
//! queued and committed after all. Then the client asks `GET URL/tx/RUN/N` until the ledger
//! answers (200 committed: acknowledged, 404 absent: send it again) and never resends without
//! that answer. Transactions run concurrently (at most `max_inflight`), so a request stuck on a
//! dead node does not stop the clock of the measurement: new ones keep starting at the rate.
//!
//! The log has one line per event, `MONO_NS WALL_MS EVENT TX ATTEMPT [DETAIL]`, with the
//! CLOCK_MONOTONIC time (the lab takes the power cut's time on the same clock) and the wall
//! clock in milliseconds; lines starting with `#` are comments (the header names the run).

use std::fs::File;
use std::io::{BufRead, BufReader, LineWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::net::http::{self, Url};
use crate::ocf::Deadline;

/// CLOCK_MONOTONIC in nanoseconds: one clock for every process on the machine (namespaces do
/// not change it), so the lab's cut and the client's acknowledgements compare directly.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes the timespec we pass; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// What happened to a transaction, one log line each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A POST left (attempt 1, or a resend after the ledger said absent).
    Send,
    /// The POST answered 200: committed. Detail: latency in ms.
    Ack,
    /// The POST failed or answered otherwise: fate unknown. Detail: why.
    Fail,
    /// A GET asked the ledger. Detail: `committed`, `absent` or `error ...`.
    Query,
    /// The ledger said committed after a failed POST: acknowledged all the same.
    Confirmed,
    /// The client stopped before learning the fate (it may still be committed).
    Abandoned,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Send => "SEND",
            Kind::Ack => "ACK",
            Kind::Fail => "FAIL",
            Kind::Query => "QUERY",
            Kind::Confirmed => "CONFIRMED",
            Kind::Abandoned => "ABANDONED",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        [Kind::Send, Kind::Ack, Kind::Fail, Kind::Query, Kind::Confirmed, Kind::Abandoned]
            .into_iter()
            .find(|k| k.name() == s)
    }

    /// Whether the client holds this transaction as committed.
    pub fn acknowledges(self) -> bool {
        matches!(self, Kind::Ack | Kind::Confirmed)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub mono_ns: u64,
    pub wall_ms: u64,
    pub kind: Kind,
    pub tx: u64,
    pub attempt: u32,
    pub detail: String,
}

impl Event {
    pub fn line(&self) -> String {
        let mut l = format!("{} {} {} {} {}", self.mono_ns, self.wall_ms, self.kind.name(), self.tx, self.attempt);
        if !self.detail.is_empty() {
            l.push(' ');
            l.push_str(&self.detail.replace(['\n', '\r'], " "));
        }
        l
    }

    pub fn parse(line: &str) -> Result<Event, String> {
        let mut f = line.splitn(6, ' ');
        let mut next = |what: &str| f.next().filter(|s| !s.is_empty()).ok_or(format!("no {what}"));
        let num = |s: &str, what: &str| s.parse::<u64>().map_err(|_| format!("bad {what} '{s}'"));
        let mono_ns = num(next("monotonic time")?, "monotonic time")?;
        let wall_ms = num(next("wall time")?, "wall time")?;
        let kind_s = next("event")?;
        let kind = Kind::parse(kind_s).ok_or(format!("unknown event '{kind_s}'"))?;
        let tx = num(next("transaction")?, "transaction")?;
        let attempt_s = next("attempt")?;
        let attempt = attempt_s.parse::<u32>().map_err(|_| format!("bad attempt '{attempt_s}'"))?;
        let detail = f.next().unwrap_or("").to_string();
        Ok(Event { mono_ns, wall_ms, kind, tx, attempt, detail })
    }
}

/// A client log read back: the run it belongs to and its events in order.
#[derive(Debug, Default)]
pub struct Log {
    pub run: String,
    pub events: Vec<Event>,
    /// The client wrote its `# end` line: nothing more will be sent in this run.
    pub finished: bool,
}

impl Log {
    pub fn read(path: &Path) -> Result<Log> {
        let file = File::open(path).with_context(|| format!("cannot read the client log {}", path.display()))?;
        Self::parse(BufReader::new(file)).with_context(|| format!("client log {}", path.display()))
    }

    pub fn parse(input: impl BufRead) -> Result<Log> {
        let mut log = Log::default();
        let lines = input.lines().collect::<Result<Vec<String>, _>>()?;
        for (i, line) in lines.iter().enumerate() {
            if let Some(comment) = line.strip_prefix('#') {
                log.finished |= comment.trim_start().starts_with("end ");
                if let Some(run) = comment.split_whitespace().find_map(|w| w.strip_prefix("run=")) {
                    log.run = run.to_string();
                }
                continue;
            }
            if line.trim().is_empty() {
                continue;
            }
            match Event::parse(line) {
                Ok(e) => log.events.push(e),
                // A client killed in the middle of a write leaves a partial last line.
                Err(_) if i + 1 == lines.len() => {}
                Err(e) => bail!("line {}: {e}: {line:?}", i + 1),
            }
        }
        if log.run.is_empty() {
            bail!("no '# ... run=RUN' header: not a hastack lab client log");
        }
        Ok(log)
    }

    /// The first acknowledgement (ACK or CONFIRMED) at or after `mono_ns`: when the stack served
    /// again after a fault injected at that time.
    pub fn first_ack_after(&self, mono_ns: u64) -> Option<&Event> {
        self.events.iter().filter(|e| e.mono_ns >= mono_ns && e.kind.acknowledges()).min_by_key(|e| e.mono_ns)
    }

    /// Latencies (ms) of the POSTs answered 200.
    pub fn ack_latencies_ms(&self) -> Vec<f64> {
        self.events.iter().filter(|e| e.kind == Kind::Ack).filter_map(|e| e.detail.parse().ok()).collect()
    }

    pub fn acknowledged_count(&self) -> usize {
        self.events.iter().filter(|e| e.kind.acknowledges()).count()
    }
}

/// How the client runs (`hastack lab client --help`).
#[derive(clap::Args, Clone, Debug)]
pub struct ClientArgs {
    /// The application's base URL through the public address, e.g. http://192.0.2.10/lab.
    #[arg(long)]
    pub url: String,
    /// Transactions started per second: `20/s` or `20`.
    #[arg(long, default_value = "20/s", value_parser = parse_rate)]
    pub rate: f64,
    /// Append the event log here.
    #[arg(long)]
    pub log: PathBuf,
    /// The run's name (letters, digits, - and _): the ledger keys transactions by run and number.
    #[arg(long, value_parser = parse_run)]
    pub run: Option<String>,
    /// Number of the first transaction.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=MAX_TX))]
    pub first: u64,
    /// Stop after this many transactions (default: until SIGTERM/SIGINT or --duration).
    #[arg(long)]
    pub count: Option<u64>,
    /// Stop starting transactions after this many seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Timeout of a POST in milliseconds: longer than the application's commit wait
    /// (lab.commit_wait_ms, 2000), or slow commits count as failures.
    #[arg(long, default_value_t = 3000)]
    pub timeout_ms: u64,
    /// Timeout of a GET asking the ledger, in milliseconds (one indexed query: short, so a
    /// server that accepts connections but does not serve yet is asked again soon).
    #[arg(long, default_value_t = 1000)]
    pub query_timeout_ms: u64,
    /// First pause before asking again or resending, in milliseconds (then doubling up to 1 s).
    #[arg(long, default_value_t = 200)]
    pub retry_ms: u64,
    /// At most this many transactions unresolved at once (then no new ones start).
    #[arg(long, default_value_t = 32)]
    pub max_inflight: usize,
    /// After the last start (or a stop signal), seconds to resolve open transactions.
    #[arg(long, default_value_t = 30.0)]
    pub drain: f64,
}

/// The application takes transaction numbers of up to 18 digits.
const MAX_TX: u64 = 999_999_999_999_999_999;

/// What an answer says about a transaction. Only the application's own words count: a 200 or
/// 404 from anything else on the path (a wrong URL, a load balancer's error page) is an error,
/// not an acknowledgement or an "absent" that would be resent forever.
#[derive(Debug, PartialEq)]
enum Answer {
    Committed,
    Absent,
    Other(String),
}

fn answer(r: &http::Response, key: &str) -> Answer {
    let body = r.body.trim();
    let says = |word: &str| {
        body.strip_prefix(word)
            .and_then(|rest| rest.strip_prefix(' '))
            .is_some_and(|rest| rest.split_whitespace().next() == Some(key))
    };
    match r.status {
        200 if says("committed") => Answer::Committed,
        404 if says("absent") => Answer::Absent,
        status => Answer::Other(format!("HTTP {status} {}", body.chars().take(200).collect::<String>())),
    }
}

fn parse_rate(s: &str) -> Result<f64, String> {
    let n = s.strip_suffix("/s").unwrap_or(s);
    match n.parse::<f64>() {
        Ok(r) if r > 0.0 && r <= 10_000.0 => Ok(r),
        _ => Err(format!("'{s}' is not a rate like 20/s (more than 0, at most 10000 per second)")),
    }
}

fn parse_run(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(s.to_string())
    } else {
        Err(format!("'{s}': a run name is 1-64 letters, digits, '-' or '_'"))
    }
}

/// What a finished run did, as its summary line says.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    pub started: u64,
    pub acknowledged: u64,
    pub abandoned: u64,
    pub resent: u64,
}

struct Shared {
    args: ClientArgs,
    run: String,
    base: Url,
    log: Mutex<LineWriter<File>>,
    stop: AtomicBool,
    /// When open transactions must be resolved by (set when starting ends).
    drain_until: Mutex<Option<Instant>>,
    inflight: AtomicUsize,
    acknowledged: AtomicUsize,
    abandoned: AtomicUsize,
    resent: AtomicUsize,
}

impl Shared {
    fn log(&self, kind: Kind, tx: u64, attempt: u32, detail: impl Into<String>) {
        let e = Event { mono_ns: monotonic_ns(), wall_ms: wall_ms(), kind, tx, attempt, detail: detail.into() };
        let mut w = self.log.lock().unwrap_or_else(|p| p.into_inner());
        // A full disk must not stop the measurement silently: the summary reports it.
        if writeln!(w, "{}", e.line()).is_err() {
            eprintln!("hastack lab client: cannot write the log");
        }
    }

    fn url(&self, tx: u64) -> Url {
        Url {
            host: self.base.host.clone(),
            port: self.base.port,
            path: format!("{}/tx/{}/{tx}", self.base.path.trim_end_matches('/'), self.run),
        }
    }

    fn draining_past_deadline(&self) -> bool {
        self.drain_until.lock().unwrap_or_else(|p| p.into_inner()).is_some_and(|t| Instant::now() >= t)
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// The pause before the `n`th retry of one transaction: `retry_ms`, doubling up to 1 s, with
    /// ±50 % jitter. Backing off keeps a recovering stack from being hammered by every open
    /// transaction at once; the jitter keeps them out of lockstep, so together they still probe
    /// it many times a second (the recovery time is measured at that resolution).
    fn pause(&self, tx: u64, n: u32) {
        let base = self.args.retry_ms.saturating_mul(1 << n.min(10)).min(1000.max(self.args.retry_ms));
        // xorshift over the transaction and retry number: cheap, different for each worker.
        let mut x = tx.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (n as u64 + 1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        x ^= x >> 31;
        x ^= x << 17;
        let jitter = 0.5 + (x % 1000) as f64 / 1000.0;
        std::thread::sleep(Duration::from_millis(base).mul_f64(jitter));
    }

    /// One transaction until the client knows its fate (or gives up while stopping).
    fn transaction(&self, tx: u64) {
        let timeout = Duration::from_millis(self.args.timeout_ms);
        let query_timeout = Duration::from_millis(self.args.query_timeout_ms);
        let url = self.url(tx);
        let payload = format!("run={} tx={tx}", self.run);
        let key = format!("{}/{tx}", self.run);
        let mut attempt = 1;
        let mut retries = 0;
        loop {
            // The first send is logged by the scheduler, in transaction order (see `run`).
            if attempt > 1 {
                self.log(Kind::Send, tx, attempt, "");
            }
            let sent = Instant::now();
            match http::request("POST", &url, Some(payload.as_bytes()), Deadline::after(timeout))
                .map(|r| answer(&r, &key))
            {
                Ok(Answer::Committed) => {
                    let ms = sent.elapsed().as_secs_f64() * 1000.0;
                    self.log(Kind::Ack, tx, attempt, format!("{ms:.3}"));
                    self.acknowledged.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Ok(Answer::Absent) => self.log(Kind::Fail, tx, attempt, "HTTP 404 absent"),
                Ok(Answer::Other(what)) => self.log(Kind::Fail, tx, attempt, what),
                Err(e) => self.log(Kind::Fail, tx, attempt, e),
            }
            // Fate unknown: ask the ledger until it answers.
            loop {
                if self.draining_past_deadline() {
                    self.log(Kind::Abandoned, tx, attempt, "stopped before the ledger answered");
                    self.abandoned.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                match http::request("GET", &url, None, Deadline::after(query_timeout)).map(|r| answer(&r, &key)) {
                    Ok(Answer::Committed) => {
                        self.log(Kind::Query, tx, attempt, "committed");
                        self.log(Kind::Confirmed, tx, attempt, "");
                        self.acknowledged.fetch_add(1, Ordering::SeqCst);
                        return;
                    }
                    Ok(Answer::Absent) => {
                        self.log(Kind::Query, tx, attempt, "absent");
                        break;
                    }
                    Ok(Answer::Other(what)) => self.log(Kind::Query, tx, attempt, format!("error {what}")),
                    Err(e) => self.log(Kind::Query, tx, attempt, format!("error {e}")),
                }
                self.pause(tx, retries);
                retries += 1;
            }
            if self.stopping() {
                self.log(Kind::Abandoned, tx, attempt, "not committed; not resent while stopping");
                self.abandoned.fetch_add(1, Ordering::SeqCst);
                return;
            }
            // The ledger has just answered, so the stack serves: the first resend goes at once
            // (a pause here would measure the client, not the recovery). Later ones back off, so
            // a stack that answers reads but refuses writes is not hammered.
            if attempt > 1 {
                self.pause(tx, retries);
                retries += 1;
            }
            attempt += 1;
            self.resent.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// SIGTERM and SIGINT end the run gracefully (no new transactions; open ones are resolved).
static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

fn catch_stop_signals() -> Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(SigHandler::Handler(on_signal), SaFlags::empty(), SigSet::empty());
    for sig in [Signal::SIGTERM, Signal::SIGINT] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }.with_context(|| format!("cannot catch {sig}"))?;
    }
    Ok(())
}

/// Runs the client until `count`, `duration` or a stop signal, then resolves what is open.
pub fn run(args: ClientArgs) -> Result<Summary> {
    let base = http::parse_url(&args.url).map_err(|e| anyhow::anyhow!("--url: {e}"))?;
    if args.max_inflight == 0 {
        bail!("--max-inflight must be at least 1");
    }
    let run = args.run.clone().unwrap_or_else(|| format!("r{}", wall_ms()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&args.log)
        .with_context(|| format!("cannot open the log {}", args.log.display()))?;
    let mut log = LineWriter::new(file);
    writeln!(
        log,
        "# hastack lab client run={run} url={} rate={}/s timeout_ms={} start_mono_ns={} start_wall_ms={}",
        args.url,
        args.rate,
        args.timeout_ms,
        monotonic_ns(),
        wall_ms()
    )?;
    catch_stop_signals()?;
    let shared = Arc::new(Shared {
        run,
        base,
        log: Mutex::new(log),
        stop: AtomicBool::new(false),
        drain_until: Mutex::new(None),
        inflight: AtomicUsize::new(0),
        acknowledged: AtomicUsize::new(0),
        abandoned: AtomicUsize::new(0),
        resent: AtomicUsize::new(0),
        args: args.clone(),
    });
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let started_at = Instant::now();
    let end = args.duration.map(|d| started_at + Duration::from_secs_f64(d.max(0.0)));
    let mut workers = Vec::new();
    let mut next_tick = started_at;
    let mut started = 0u64;
    loop {
        if SIGNALLED.load(Ordering::SeqCst) || end.is_some_and(|e| Instant::now() >= e) {
            break;
        }
        if args.count.is_some_and(|c| started >= c) {
            break;
        }
        let now = Instant::now();
        if now < next_tick {
            std::thread::sleep((next_tick - now).min(Duration::from_millis(50)));
            continue;
        }
        // A steady rate: a tick missed (at the in-flight cap) is skipped, not made up in a burst.
        next_tick = (next_tick + interval).max(now);
        if shared.inflight.load(Ordering::SeqCst) >= args.max_inflight {
            continue;
        }
        let tx = args.first + started;
        started += 1;
        shared.inflight.fetch_add(1, Ordering::SeqCst);
        // Logged here rather than by the worker: first sends appear in order, so a log read
        // while the client runs holds every transaction up to its last send (`verify` relies
        // on it), and the line is written before the request can leave.
        shared.log(Kind::Send, tx, 1, "");
        let s = Arc::clone(&shared);
        workers.push(std::thread::spawn(move || {
            s.transaction(tx);
            s.inflight.fetch_sub(1, Ordering::SeqCst);
        }));
        workers.retain(|w| !w.is_finished());
    }
    // No more starts. Open transactions get `drain` seconds to learn their fate; a stop signal
    // also stops resends (a transaction found absent then is abandoned, not sent again).
    *shared.drain_until.lock().unwrap_or_else(|p| p.into_inner()) =
        Some(Instant::now() + Duration::from_secs_f64(args.drain.max(0.0)));
    if SIGNALLED.load(Ordering::SeqCst) {
        shared.stop.store(true, Ordering::SeqCst);
    }
    while !workers.iter().all(|w| w.is_finished()) {
        if SIGNALLED.load(Ordering::SeqCst) {
            shared.stop.store(true, Ordering::SeqCst);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    for w in workers {
        let _ = w.join();
    }
    let summary = Summary {
        started,
        acknowledged: shared.acknowledged.load(Ordering::SeqCst) as u64,
        abandoned: shared.abandoned.load(Ordering::SeqCst) as u64,
        resent: shared.resent.load(Ordering::SeqCst) as u64,
    };
    let mut w = shared.log.lock().unwrap_or_else(|p| p.into_inner());
    writeln!(
        w,
        "# end run={} started={} acknowledged={} abandoned={} resent={}",
        shared.run, summary.started, summary.acknowledged, summary.abandoned, summary.resent
    )?;
    w.flush()?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "# hastack lab client run=r42 url=http://x/lab rate=20/s\n\
        1000 1700000000000 SEND 1 1\n\
        2500000 1700000000002 ACK 1 1 2.500\n\
        3000 1700000000000 SEND 2 1\n\
        3000000003 1700000003000 FAIL 2 1 no answer from 127.0.0.1:80 in time\n\
        3100000000 1700000003100 QUERY 2 1 error connect to 127.0.0.1:80: Connection refused (os error 111)\n\
        3300000000 1700000003300 QUERY 2 1 absent\n\
        3500000000 1700000003500 SEND 2 2\n\
        3600000000 1700000003600 ACK 2 2 100.000\n\
        3000 1700000000000 SEND 3 1\n\
        3000000004 1700000003000 FAIL 3 1 HTTP 503 queued, not committed within 2000 ms\n\
        3400000000 1700000003400 QUERY 3 1 committed\n\
        3400000001 1700000003400 CONFIRMED 3 1\n\
        # end run=r42 started=3 acknowledged=3 abandoned=0 resent=1\n";

    #[test]
    fn log_lines_round_trip() {
        let e = Event {
            mono_ns: 12,
            wall_ms: 34,
            kind: Kind::Fail,
            tx: 7,
            attempt: 2,
            detail: "HTTP 503 not queued:\nbroker down".into(),
        };
        assert_eq!(e.line(), "12 34 FAIL 7 2 HTTP 503 not queued: broker down");
        let back = Event::parse(&e.line()).unwrap();
        assert_eq!(back, Event { detail: "HTTP 503 not queued: broker down".into(), ..e.clone() });
        let plain = Event { kind: Kind::Send, detail: String::new(), ..e };
        assert_eq!(Event::parse(&plain.line()).unwrap(), plain);
    }

    #[test]
    fn parses_a_log_and_finds_the_first_ack_after_a_fault() {
        let log = Log::parse(LOG.as_bytes()).unwrap();
        assert_eq!(log.run, "r42");
        assert!(log.finished);
        assert!(!Log::parse(&LOG.as_bytes()[..LOG.find("# end").unwrap()]).unwrap().finished);
        assert_eq!(log.events.len(), 12);
        assert_eq!(log.acknowledged_count(), 3);
        assert_eq!(log.ack_latencies_ms(), vec![2.5, 100.0]);
        // A fault at 3.0 s: the first success after it is tx 3's confirmation at 3.4 s, not an
        // earlier ack, and not tx 2's later one.
        let first = log.first_ack_after(3_000_000_000).unwrap();
        assert_eq!((first.kind, first.tx, first.mono_ns), (Kind::Confirmed, 3, 3_400_000_001));
        assert!(log.first_ack_after(4_000_000_000).is_none());
    }

    #[test]
    fn rejects_what_is_not_a_client_log() {
        let bad = |text: &str| Log::parse(text.as_bytes()).unwrap_err().to_string();
        assert!(bad("1 2 SEND 1 1\n").contains("header"));
        assert!(bad("# run=x\n1 2 JUMP 1 1\n3 4 SEND 1 1\n").contains("unknown event 'JUMP'"));
        assert!(bad("# run=x\n1 2 SEND one 1\n3 4 SEND 1 1\n").contains("bad transaction 'one'"));
        assert!(bad("# run=x\n1 2 SEND\n3 4 SEND 1 1\n").contains("line 2: no transaction"));
        // Only the last line may be cut short (the client was killed while writing it).
        let cut = Log::parse("# run=x\n1 2 SEND 1 1\n3 4 AC".as_bytes()).unwrap();
        assert_eq!(cut.events.len(), 1);
    }

    #[test]
    fn only_the_applications_own_answers_count() {
        let r = |status, body: &str| http::Response { status, body: body.into() };
        assert_eq!(answer(&r(200, "committed r1/7\n"), "r1/7"), Answer::Committed);
        assert_eq!(answer(&r(200, "committed r1/7 rows=1\n"), "r1/7"), Answer::Committed);
        assert_eq!(answer(&r(404, "absent r1/7\n"), "r1/7"), Answer::Absent);
        // Another transaction's answer, a web server's own pages, a 503.
        for (status, body) in
            [(200, "committed r1/70"), (200, "<html>Welcome to nginx!</html>"), (404, "<h1>Not Found</h1>"), (503, "x")]
        {
            assert!(matches!(answer(&r(status, body), "r1/7"), Answer::Other(_)), "{status} {body}");
        }
    }

    #[test]
    fn rates_and_run_names_are_validated() {
        assert_eq!(parse_rate("20/s").unwrap(), 20.0);
        assert_eq!(parse_rate("2.5").unwrap(), 2.5);
        for bad in ["0/s", "-1", "fast", "20/min", "1e9"] {
            assert!(parse_rate(bad).is_err(), "{bad}");
        }
        assert!(parse_run("bench-3_a").is_ok());
        for bad in ["", "a b", "a/b", &"x".repeat(65)] {
            assert!(parse_run(bad).is_err(), "{bad}");
        }
    }
}
