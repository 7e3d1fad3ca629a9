//! A server's last log lines (or its configuration check's output), as the agents turn them
//! into an exit reason and an exit code: which file or parameter the server rejected
//! (PostgreSQL, MariaDB, ActiveMQ, RabbitMQ; the file names nginx, Apache, HAProxy and Tomcat
//! print), the lines worth quoting (Java and Erlang traces shrunk to their messages), the ports
//! a bind error names. Runs the pieces agents/service/ (config_fault, explain) and the agents put together.
//!
//! Properties: nothing panics; what is extracted comes from the text (a culprit file or a port
//! is written in it); the code is 2 (node-local) or 6 (on the replicated partition, or a
//! parameter) and the reason names the server; the quoted lines are at most as many as asked
//! and no stack frame is quoted.

#![no_main]

use std::path::Path;

use hastack::agents::service::config_fault::{last_between, path_after, rejected, Culprit};
use hastack::agents::service::explain::ports_in_message;
use hastack::agents::service::{Quote, Service};
use hastack::agents::{activemq, mycnf, postgresql, rabbitmq};
use hastack::ocf::OcfStatus;
use libfuzzer_sys::fuzz_target;

/// The markers the front layer's configuration checks use to find the file at fault.
const FILE_MARKERS: &[(&str, char)] =
    &[(" of ", ':'), (" in ", ':'), ("parsing [", ':'), ("configuration file : ", ' '), ("systemId: file:", ';')];

fn check_culprit(text: &str, culprit: &Culprit, data_dir: Option<&Path>) {
    if let Culprit::File(f) = culprit {
        assert!(text.contains(f.to_str().expect("a path from text is text")), "{f:?} is not in the text");
    }
    let e = rejected("fuzzd", culprit, data_dir, text);
    assert!(matches!(e.status, OcfStatus::ErrArgs | OcfStatus::ErrConfigured), "{:?}", e.status);
    assert!(e.reason.contains("fuzzd"));
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let data_dir = Path::new("/srv/data/pg");

    for (start, end) in FILE_MARKERS {
        if let Some(p) = path_after(&text, start, *end) {
            assert!(p.is_absolute() && text.contains(p.to_str().unwrap()), "{p:?}");
            check_culprit(&text, &Culprit::File(p), None);
        }
    }
    if let Some(s) = last_between(&text, "configuration file \"", "\"") {
        assert!(text.contains(s) && !s.is_empty());
    }

    if let Some(c) = postgresql::rejected_config(&text) {
        check_culprit(&text, &c, Some(data_dir));
    }
    let amq_config = Path::new("/etc/activemq/instances-enabled/main/activemq.xml");
    if let Some(c) = activemq::rejected_config(&text, amq_config) {
        if c != Culprit::File(amq_config.into()) {
            check_culprit(&text, &c, Some(data_dir));
        }
    }
    let rmq_config = Path::new("/etc/rabbitmq/rabbitmq.conf");
    if let Some(c) = rabbitmq::rejected_config(&text, rmq_config, Path::new("/nonexistent/conf.d")) {
        if c != Culprit::File(rmq_config.into()) {
            check_culprit(&text, &c, Some(data_dir));
        }
    }
    if let Some(f) = mycnf::file_in_error(&text) {
        assert!(f.is_absolute());
        check_culprit(&text, &Culprit::File(f), Some(data_dir));
    }
    if let Some(option) = mycnf::rejected_option(&text) {
        assert!(!option.is_empty() && option == mycnf::canonical(&option));
    }

    // Every port is the number after some ':' in the text (leading zeros allowed: ":079" is 79).
    let after_colons: Vec<u64> = text
        .split(':')
        .skip(1)
        .filter_map(|s| s.chars().take_while(char::is_ascii_digit).take(5).collect::<String>().parse().ok())
        .collect();
    for port in ports_in_message(&text) {
        assert!(port > 0 && after_colons.contains(&u64::from(port)), "port {port}");
    }

    // The lines quoted in an exit reason, as the service model picks them from a start's output:
    // at most `lines` of them, each one a line of the output; the Java servers' quotes (whose
    // noise is a stack frame) never quote a frame. RabbitMQ's may: its noise is Erlang's.
    let output: Vec<String> = text.lines().map(str::to_string).collect();
    let quotes = [
        (Quote::LAST_LINES, true),
        (<hastack::agents::tomcat::Server as Service>::QUOTE, true),
        (<activemq::Server as Service>::QUOTE, true),
        (<rabbitmq::Server as Service>::QUOTE, false),
    ];
    for (quote, skips_frames) in quotes {
        let picked = quote.pick(&output);
        assert!(picked.len() <= quote.lines, "{picked:?}");
        assert!(picked.iter().all(|l| output.iter().any(|o| o.trim() == *l)), "{picked:?}");
        if skips_frames {
            assert!(!picked.iter().any(|l| l.starts_with("at ")), "{picked:?}");
        }
        let _ = quote.quote(&output);
    }
});
