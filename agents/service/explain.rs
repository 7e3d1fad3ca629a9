//! The lines that explain a failed start: chosen from what the server wrote (its console or
//! log, read as lines by `sys::logtail`) and joined only for the exit reason; and the ports a
//! bind error names, to name who holds them.

/// Which lines of a server's output an exit reason quotes: the last `lines` that are not
/// `noise`, consecutive repeats dropped, and only those with one of the `markers` when any
/// has one.
#[derive(Copy, Clone)]
pub struct Quote {
    pub lines: usize,
    pub markers: &'static [&'static str],
    pub noise: fn(&str) -> bool,
}

impl Quote {
    /// The last four lines, without stack frames.
    pub const LAST_LINES: Quote = Quote { lines: 4, markers: &[], noise: is_stack_frame };

    /// The chosen lines of `output`, trimmed.
    pub fn pick<'a>(&self, output: &'a [String]) -> Vec<&'a str> {
        let mut kept: Vec<&str> = Vec::new();
        for line in output.iter().map(|l| l.trim()) {
            if line.is_empty() || (self.noise)(line) || kept.last() == Some(&line) {
                continue;
            }
            kept.push(line);
        }
        let marked: Vec<&str> = kept.iter().copied().filter(|l| self.markers.iter().any(|m| l.contains(m))).collect();
        let chosen = if marked.is_empty() { kept } else { marked };
        chosen[chosen.len().saturating_sub(self.lines)..].to_vec()
    }

    /// The chosen lines joined for an exit reason.
    pub fn quote(&self, output: &[String]) -> String {
        join(&self.pick(output))
    }
}

/// Lines joined for an exit reason (one line, as Pacemaker shows it).
pub fn join(lines: &[&str]) -> String {
    lines.join(" | ")
}

/// A Java stack frame (`at a.b(C.java:1)`) or its elision (`... 25 more`): noise after the
/// exception message every trace starts with.
pub fn is_stack_frame(line: &str) -> bool {
    let line = line.trim();
    line.starts_with("at ") || line.starts_with("...")
}

/// Ports named in a daemon's error message as `host:PORT` or `[v6]:PORT` (e.g. nginx's
/// "bind() to 127.0.0.1:8080 failed", Apache's "could not bind to address 127.0.0.1:8080"),
/// in order of appearance: candidates for "who holds the port we need".
pub fn ports_in_message(text: &str) -> Vec<u16> {
    let bytes = text.as_bytes();
    let mut ports = Vec::new();
    for (i, b) in bytes.iter().enumerate() {
        // A ':' right after a digit, ']' or '*' (an address), followed by 1-5 digits.
        if *b != b':' || i == 0 || !(bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b']' || bytes[i - 1] == b'*') {
            continue;
        }
        let digits: String = text[i + 1..].chars().take_while(char::is_ascii_digit).collect();
        if let Ok(port) = digits.parse::<u16>() {
            if digits.len() <= 5 && port > 0 && !ports.contains(&port) {
                ports.push(port);
            }
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(String::from).collect()
    }

    #[test]
    fn quotes_messages_not_stack_traces() {
        let console = lines(
            "INFO starting\nSEVERE Parse fatal error at line [9]\n\
             \torg.xml.sax.SAXParseException; lineNumber: 9; bad tag\n\t\tat a.b(C.java:1)\n\
             \torg.xml.sax.SAXParseException; lineNumber: 9; bad tag\n\t... 5 more\nSEVERE Cannot start server\n",
        );
        let tomcat = Quote { markers: &["SEVERE", "Exception;"], ..Quote::LAST_LINES };
        assert_eq!(
            tomcat.quote(&console),
            "SEVERE Parse fatal error at line [9] | org.xml.sax.SAXParseException; lineNumber: 9; bad tag | SEVERE Cannot start server"
        );
        assert_eq!(Quote { lines: 2, ..Quote::LAST_LINES }.quote(&lines("a\nb\n\nc\n")), "b | c");
        assert_eq!(Quote { markers: &["zzz"], ..Quote::LAST_LINES }.quote(&lines("a\nb\n")), "a | b");
    }

    #[test]
    fn java_traces_shrink_to_their_messages() {
        let log = lines(
            "INFO | starting\nERROR | Failed to load: x.xml\n\
             org.springframework.beans.factory.xml.XmlBeanDefinitionStoreException: bad\n\tat a.b(C.java:1)\n\
             Caused by: org.xml.sax.SAXParseException: cvc-complex-type.2.4.a\n\tat d.e(F.java:2)\n\t... 25 more\n",
        );
        assert_eq!(
            Quote { lines: 3, ..Quote::LAST_LINES }.quote(&log),
            "ERROR | Failed to load: x.xml | org.springframework.beans.factory.xml.XmlBeanDefinitionStoreException: bad | \
             Caused by: org.xml.sax.SAXParseException: cvc-complex-type.2.4.a"
        );
    }

    #[test]
    fn finds_ports_in_bind_errors() {
        assert_eq!(
            ports_in_message("nginx: [emerg] bind() to 127.0.0.1:18080 failed (98: Address already in use)"),
            vec![18080]
        );
        assert_eq!(
            ports_in_message("(98)Address already in use: AH00072: make_sock: could not bind to address [::]:80"),
            vec![80]
        );
        assert_eq!(ports_in_message("cannot bind socket (Address already in use) [0.0.0.0:8443]"), vec![8443]);
        assert_eq!(ports_in_message("at 10:30: error: 12:5"), vec![30, 5]);
        assert!(ports_in_message("no ports: here").is_empty());
    }
}
