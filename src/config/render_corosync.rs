//! corosync.conf for the stack's nodes: knet with two links, link 0 the crossover cable
//! (preferred), link 1 the public network. One option per line: corosync rejects `key: value` on
//! the line of a `{`.

use std::fmt::Write;

use super::stack::Stack;

pub fn render(stack: &Stack) -> String {
    let mut out = String::new();
    let name = stack.cluster.name.get_ref();
    let two_node = stack.nodes.len() == 2;
    // Validation has checked the duration; corosync wants milliseconds.
    let token = match stack.cluster.token.as_ref().and_then(|t| super::validate::duration_ms(t.get_ref())) {
        Some(ms) => format!("    token: {ms}\n"),
        None => String::new(),
    };
    let consensus = match stack.cluster.consensus.as_ref().and_then(|t| super::validate::duration_ms(t.get_ref())) {
        Some(ms) => format!("    consensus: {ms}\n"),
        None => String::new(),
    };
    let _ = write!(
        out,
        "# Rendered by `hastack config render --format corosync`.\n\
         # Link 0: the crossover cable (preferred); link 1: the public network (fallback).\n\
         # crypto needs /etc/corosync/authkey on every node (corosync-keygen).\n\
         totem {{\n\
         \x20   version: 2\n\
         \x20   cluster_name: {name}\n\
         \x20   transport: knet\n\
         \x20   link_mode: passive\n\
         \x20   crypto_cipher: aes256\n\
         \x20   crypto_hash: sha256\n\
         {token}{consensus}\
         \x20   interface {{\n\
         \x20       linknumber: 0\n\
         \x20       knet_link_priority: 2\n\
         \x20   }}\n\
         \x20   interface {{\n\
         \x20       linknumber: 1\n\
         \x20       knet_link_priority: 1\n\
         \x20   }}\n\
         }}\n\n\
         nodelist {{\n"
    );
    for (i, node) in stack.nodes.iter().enumerate() {
        let n = node.get_ref();
        let _ = writeln!(out, "    node {{");
        for (link, addr) in n.links.get_ref().iter().enumerate() {
            let _ = writeln!(out, "        ring{link}_addr: {}", addr.get_ref());
        }
        let _ = writeln!(out, "        name: {}\n        nodeid: {}\n    }}", n.name.get_ref(), i + 1);
    }
    out.push_str("}\n\nquorum {\n    provider: corosync_votequorum\n");
    if two_node {
        out.push_str(
            "    # Two nodes: the survivor keeps quorum; fencing (fence_delay) settles a split.\n    two_node: 1\n",
        );
    }
    out.push_str(
        "}\n\nlogging {\n    to_logfile: yes\n    logfile: /var/log/corosync/corosync.log\n    to_syslog: yes\n    timestamp: on\n}\n",
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STACK: &str = "[cluster]\nname = \"c\"\n{token}\n[[node]]\nname = \"n1\"\nlinks = [\"10.0.0.1\", \"10.1.0.1\"]\n\n[[node]]\nname = \"n2\"\nlinks = [\"10.0.0.2\", \"10.1.0.2\"]\n";

    #[test]
    fn token_is_rendered_in_milliseconds_and_absent_by_default() {
        let with = crate::config::parse("s.toml", &STACK.replace("{token}", "token = \"1s\"")).unwrap();
        let text = render(&with.stack);
        let totem = &text[text.find("totem {").unwrap()..text.find("nodelist").unwrap()];
        assert!(totem.contains("\n    token: 1000\n"), "{totem}");
        let without = crate::config::parse("s.toml", &STACK.replace("{token}", "")).unwrap();
        assert!(!render(&without.stack).contains("token:"));
        let Err(bad) = crate::config::parse("s.toml", &STACK.replace("{token}", "token = \"0ms\"")) else {
            panic!("a zero token was accepted");
        };
        assert!(bad.to_string().contains("s.toml:3: token: '0ms'"), "{bad}");
        let with =
            crate::config::parse("s.toml", &STACK.replace("{token}", "token = \"1s\"\nconsensus = \"200ms\"")).unwrap();
        assert!(render(&with.stack).contains("\n    token: 1000\n    consensus: 200\n"), "{}", render(&with.stack));
        let Err(bad) = crate::config::parse("s.toml", &STACK.replace("{token}", "consensus = \"40ms\"")) else {
            panic!("a consensus below the join timeout was accepted");
        };
        assert!(bad.to_string().contains("s.toml:3: consensus: '40ms'"), "{bad}");
    }
}
