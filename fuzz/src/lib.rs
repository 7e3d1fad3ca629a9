//! What the fuzz targets share: a peer that answers with the fuzzer's bytes (a server for the
//! protocol clients, a UPS for the APC Smart dialogue), the `NAME=VALUE` input form of the
//! environment targets, and a small POSIX sh word splitter to read back the pcs script.

use std::io::{self, Read, Write};
use std::time::Duration;

use hastack::net::wire::TimedStream;
use hastack::ocf::Deadline;

/// A deadline no fuzz input can reach: everything a client does here is bounded by the input.
pub fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(60))
}

/// A server that sends `input` and then closes the connection; what the client sends is
/// accepted and dropped. Reads return the bytes in pieces of varying size, as TCP delivers
/// them, so that the clients' loops over partial reads run too.
pub struct Script {
    input: Vec<u8>,
    at: usize,
    reads: usize,
}

/// Piece sizes, in turn: small ones cut headers and length fields in two.
const PIECES: &[usize] = &[1, 7, 4096, 2, 13, 3, 512, 5];

impl Script {
    pub fn new(input: &[u8]) -> Script {
        Script { input: input.to_vec(), at: 0, reads: 0 }
    }

    /// Whether every byte was read (the client did not stop early).
    pub fn consumed(&self) -> bool {
        self.at == self.input.len()
    }
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let piece = PIECES[self.reads % PIECES.len()];
        self.reads += 1;
        let n = buf.len().min(piece).min(self.input.len() - self.at);
        buf[..n].copy_from_slice(&self.input[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TimedStream for Script {
    fn set_timeouts(&self, _: Duration) -> io::Result<()> {
        Ok(())
    }
}

/// `NAME=VALUE` lines (split at the first `=`; a line without one is a name with an empty
/// value), as the environment targets take their input: seeds stay readable.
pub fn pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|l| match l.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (l.to_string(), String::new()),
        })
        .collect()
}

/// The commands of a POSIX sh script as sh would split them into words: unquoted newlines and
/// `;` end a command, `'...'` is literal, `"..."` keeps `\` only before `$`, `` ` ``, `"`, `\`
/// and newline, an unquoted `\` quotes the next character, `#` at a word's start begins a
/// comment. Only what hastack's renderers write is needed (no expansions, no here-documents);
/// None for unterminated quoting.
pub fn sh_commands(script: &str) -> Option<Vec<Vec<String>>> {
    let mut commands = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = script.chars().peekable();
    let end_word = |words: &mut Vec<String>, word: &mut String, in_word: &mut bool| {
        if *in_word {
            words.push(std::mem::take(word));
            *in_word = false;
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' | ';' => {
                end_word(&mut words, &mut word, &mut in_word);
                if !words.is_empty() {
                    commands.push(std::mem::take(&mut words));
                }
            }
            ' ' | '\t' => end_word(&mut words, &mut word, &mut in_word),
            '#' if !in_word => {
                while chars.peek().is_some_and(|c| *c != '\n') {
                    chars.next();
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            '\n' => {}
                            c @ ('$' | '`' | '"' | '\\') => word.push(c),
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => match chars.next()? {
                '\n' => {}
                c => {
                    in_word = true;
                    word.push(c);
                }
            },
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    end_word(&mut words, &mut word, &mut in_word);
    if !words.is_empty() {
        commands.push(words);
    }
    Some(commands)
}

/// Checks shared by the two fence option targets.
pub mod fence {
    use std::time::Duration;

    use hastack::fence::args::{Args, ACTIONS};
    use hastack::fence::config::{check, Password, Transport};

    /// validate-all's checks on parsed options; a configuration they accept keeps their limits.
    pub fn check_config(args: &Args) {
        let Ok(cfg) = check(args) else { return };
        assert!(ACTIONS.contains(&cfg.action.as_str()), "{}", cfg.action);
        let day = Duration::from_secs(86_400);
        assert!(cfg.power_timeout >= Duration::from_secs(2) && cfg.power_timeout <= day);
        assert!(cfg.delay <= day);
        match &cfg.transport {
            Transport::ApcSmart { serial_port } => assert!(serial_port.is_absolute()),
            Transport::Nut { host, port, ups_name, username, password } => {
                assert!(*port > 0 && !host.is_empty() && !host.contains(char::is_whitespace));
                assert!(!ups_name.contains(char::is_whitespace));
                assert_eq!(username.is_some(), *password != Password::None);
                if let Password::Script(argv) = password {
                    assert!(argv.first().is_some_and(|p| p.starts_with('/')));
                }
            }
        }
        if let (Some(plug), false, false) = (&cfg.plug, cfg.hostlist.is_empty(), cfg.action == "validate-all") {
            assert!(cfg.hostlist.iter().any(|h| h.eq_ignore_ascii_case(plug)), "{plug} not in {:?}", cfg.hostlist);
        }
        if let Some(serial) = &cfg.ups_serial {
            assert!(serial.chars().all(|c| c.is_ascii_graphic()));
        }
    }
}

/// A file in memory (memfd) holding `content`, and a path that opens it: for the readers that
/// take a path (PID files), without leaving anything on disk.
pub fn memory_file(content: &[u8]) -> std::path::PathBuf {
    use std::os::fd::FromRawFd;
    use std::os::unix::fs::FileExt;
    use std::sync::OnceLock;
    static FILE: OnceLock<(std::fs::File, std::path::PathBuf)> = OnceLock::new();
    let (file, path) = FILE.get_or_init(|| {
        // SAFETY: a NUL-terminated name; the descriptor returned is owned by the File.
        let fd = unsafe { libc::memfd_create(c"hastack-fuzz".as_ptr(), 0) };
        assert!(fd >= 0, "memfd_create: {}", io::Error::last_os_error());
        (unsafe { std::fs::File::from_raw_fd(fd) }, format!("/proc/self/fd/{fd}").into())
    });
    file.set_len(0).expect("truncate the memory file");
    file.write_all_at(content, 0).expect("write the memory file");
    path.clone()
}
