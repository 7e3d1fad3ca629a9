//! The end of a log file, as lines: what a failed start quotes from a daemon's console or log.
//! One reader for every agent: it seeks (a server's log may be large) and returns lines, which
//! the agent picks from and joins only when it writes the exit reason.

use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The most read from the end of a file: a failed start quotes a few lines, and a server that
/// logged more than this since the start has its reason near the end.
pub const MAX_TAIL: u64 = 64 * 1024;

/// The size of `path` now (0 if it does not exist): taken before a start, so that a failure
/// quotes only what that start wrote.
pub fn mark(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// The non-blank lines written to `path` after byte `offset` (all of it if the file is shorter:
/// rotated or truncated since), at most the last [`MAX_TAIL`] bytes, with trailing white space
/// removed. A line cut by that limit is left out. A missing file has no lines.
pub fn lines_since(path: &Path, offset: u64) -> Vec<String> {
    let Ok(mut file) = File::open(path) else { return Vec::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let wanted = if len < offset { 0 } else { offset };
    let from = wanted.max(len.saturating_sub(MAX_TAIL));
    let mut buf = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_err() || file.read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.lines();
    if from > wanted {
        // Started in the middle of a line.
        lines.next();
    }
    lines.map(str::trim_end).filter(|l| !l.trim().is_empty()).map(String::from).collect()
}

/// The last `n` of `lines`.
pub fn last<T>(lines: &[T], n: usize) -> &[T] {
    &lines[lines.len().saturating_sub(n)..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_new_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        fs::write(&p, "old 1\nold 2\n").unwrap();
        let at = mark(&p);
        fs::write(&p, "old 1\nold 2\nnew 1\n\nnew 2  \n").unwrap();
        assert_eq!(lines_since(&p, at), ["new 1", "new 2"]);
        assert_eq!(last(&lines_since(&p, at), 1), ["new 2"]);
        assert_eq!(lines_since(&p, 0).len(), 4);
        assert!(lines_since(&dir.path().join("none"), 0).is_empty());
    }

    #[test]
    fn a_truncated_log_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        fs::write(&p, "a long line before the rotation\n").unwrap();
        let at = mark(&p);
        fs::write(&p, "after\n").unwrap();
        assert_eq!(lines_since(&p, at), ["after"]);
    }

    #[test]
    fn reads_only_the_end_of_a_large_log() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let mut text = "x".repeat(100 * 1024);
        text.push_str("\nthe reason\n");
        fs::write(&p, &text).unwrap();
        // The cut line of x's is not quoted.
        assert_eq!(lines_since(&p, 0), ["the reason"]);
    }
}
