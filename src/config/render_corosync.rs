//! corosync.conf for the stack's nodes: knet with two links, link 0 the crossover cable
//! (preferred), link 1 the public network. One option per line: corosync rejects `key: value` on
//! the line of a `{`.

use std::fmt::Write;

use super::stack::Stack;

pub fn render(stack: &Stack) -> String {
    let mut out = String::new();
    let name = stack.cluster.name.get_ref();
    let two_node = stack.nodes.len() == 2;
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
