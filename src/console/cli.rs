//! What the console's subcommands do (their definitions are in `args`): `serve`, and
//! `cluster add|rotate|list` (scriptable: `add` prints only the token on stdout).

use std::sync::Arc;

use super::args::{ClusterCommand, ConsoleCommand};
use super::rules::RuleSet;
use super::store::{DbUrl, Store};
use super::{now_us, pages::format, server, token};
use anyhow::{bail, Context, Result};

pub fn run(command: ConsoleCommand) -> Result<i32> {
    match command {
        ConsoleCommand::Serve { db, listen, writers, rules } => {
            let rules = Arc::new(RuleSet::load(rules.as_deref())?);
            let url = DbUrl::parse(&db)?;
            let writers = writers.unwrap_or(match url {
                DbUrl::Sqlite(_) => 1,
                // Two, not more: with 8 senders a writer's batch holds ~4 reports, whose
                // statements per report are fewer (BENCHMARKS.md, "Fewer plans"); 4 writers cost
                // ~15 % more CPU per report, server and console, at 1,000,000 events.
                DbUrl::Postgres(_) => 2,
            });
            let store = Arc::new(Store::open(&url)?);
            // Before the runtime: the PostgreSQL client runs one of its own.
            super::changes::create_tables(&store)?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_name("console-http")
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(server::serve(store, listen, writers, rules))?;
            Ok(0)
        }
        ConsoleCommand::Cluster { command } => cluster(command),
    }
}

fn cluster(command: ClusterCommand) -> Result<i32> {
    match command {
        ClusterCommand::Add { name, db } => {
            check_name(&name)?;
            let store = Store::open(&DbUrl::parse(&db)?)?;
            let t = token::generate()?;
            store.add_cluster(&name, &token::hash(&t), now_us())?;
            println!("{t}");
            eprintln!("cluster {name} registered; give its alert this token (a file readable by hacluster): it is not shown again");
            Ok(0)
        }
        ClusterCommand::Rotate { name, db } => {
            let store = Store::open(&DbUrl::parse(&db)?)?;
            let t = token::generate()?;
            store.rotate_token(&name, &token::hash(&t), now_us())?;
            println!("{t}");
            eprintln!("cluster {name}: new token issued; the old one no longer works");
            Ok(0)
        }
        ClusterCommand::List { db } => {
            let store = Store::open(&DbUrl::parse(&db)?)?;
            println!("{:<24} {:>8} {:<24} TOKEN ISSUED", "NAME", "REPORTS", "LAST REPORT");
            for c in store.registered()? {
                let last = c.last_report_us.map_or("never".to_string(), format::time);
                println!("{:<24} {:>8} {:<24} {}", c.name, c.reports, last, format::time(c.token_issued_us));
            }
            Ok(0)
        }
    }
}

/// Cluster ids appear in URLs, file names and logs: keep them plain.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !name.starts_with(['.', '-']);
    if !ok {
        bail!("cluster name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-' (not first)");
    }
    Ok(())
}
