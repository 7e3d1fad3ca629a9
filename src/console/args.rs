//! The console's command line, as `hastack console ...` and `hastack-console ...` parse it. Only
//! clap definitions: the `hastack` binary shows them (help, man page, completions) without linking
//! the console itself (`launch` runs `hastack-console`).

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

/// Where the default database is (a constant: naming it links nothing of the store).
pub const DEFAULT_DB: &str = "sqlite:///var/lib/hastack/console/console.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7480";

#[derive(Subcommand)]
pub enum ConsoleCommand {
    /// Serve the fleet pages, the JSON API and report ingest (POST /api/v1/reports).
    Serve {
        /// sqlite://PATH (sqlite:///abs/path) or postgres://USER@HOST/DB.
        #[arg(long, env = "HASTACK_CONSOLE_DB", default_value = DEFAULT_DB)]
        db: String,
        /// Address and port to listen on (port 0: any free port, printed at start).
        #[arg(long, default_value = DEFAULT_LISTEN)]
        listen: SocketAddr,
        /// Database connections that store reports (default: 1 for SQLite, 2 for PostgreSQL).
        #[arg(long, hide = true)]
        writers: Option<usize>,
        /// The requirements (a rules TOML file); default /etc/hastack/console-rules.toml if it
        /// exists, else the built-in crm-config/console-rules.toml.
        #[arg(long, value_name = "FILE")]
        rules: Option<std::path::PathBuf>,
    },
    /// Register clusters and issue their tokens.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
}

#[derive(Subcommand)]
pub enum ClusterCommand {
    /// Register a cluster and print its token on stdout (shown once; the console keeps its hash).
    Add {
        /// The cluster's id, as its alert reports it (cluster_id): letters, digits, . _ - (64 at most).
        name: String,
        #[arg(long, env = "HASTACK_CONSOLE_DB", default_value = DEFAULT_DB)]
        db: String,
    },
    /// Issue a new token for a registered cluster (the old token stops working at once).
    Rotate {
        name: String,
        #[arg(long, env = "HASTACK_CONSOLE_DB", default_value = DEFAULT_DB)]
        db: String,
    },
    /// List the registered clusters.
    List {
        #[arg(long, env = "HASTACK_CONSOLE_DB", default_value = DEFAULT_DB)]
        db: String,
    },
}

/// `hastack-console`'s own parser: the same subcommands under the name users type.
#[derive(Parser)]
#[command(name = "hastack console", bin_name = "hastack console", version, about = CONSOLE_ABOUT)]
pub struct ConsoleCli {
    #[command(subcommand)]
    pub command: ConsoleCommand,
}

pub const CONSOLE_ABOUT: &str =
    "The enterprise console: stores many clusters' alert reports, shows the fleet live (README.md, Console).";
