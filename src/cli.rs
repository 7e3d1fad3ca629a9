//! The `hastack` command line: the things around the agents. Kept thin: each subcommand calls
//! library code. (clap's usage errors exit 2; that is fine here, the CLI is not an OCF agent.)

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser, Subcommand};

use crate::applets;

#[derive(Parser)]
#[command(name = "hastack", version, about = "Pacemaker OCF resource agents and a UPS fence agent, in one binary")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List every applet (agent) with its kind and the path it is installed under.
    List,
    /// Create the links that make each agent visible to Pacemaker (idempotent).
    Install {
        /// Install below this directory instead of / (packaging, tests).
        #[arg(long, default_value = "/")]
        root: PathBuf,
        /// The binary the links point at (default: this binary).
        #[arg(long)]
        binary: Option<PathBuf>,
    },
    /// Render or check a stack's cluster configuration (crm-config/README.md).
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// The node agent: applies the configuration changes the console holds for this cluster.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// The Pacemaker alert agent's companion commands (the agent itself is /usr/lib/hastack/alert).
    Alert {
        #[command(subcommand)]
        command: AlertCommand,
    },
    /// Run an OCF agent without a link: `hastack ocf vip monitor` (for debugging).
    Ocf {
        /// The agent type, e.g. vip.
        agent: String,
        /// The OCF action, e.g. start, monitor, meta-data.
        action: Option<String>,
    },
    /// The whole stack on a two-node Pacemaker cluster on this machine (namespaces; needs root).
    Lab(crate::lab::LabArgs),
    /// The enterprise console: stores many clusters' alert reports, shows the fleet live (README.md, Console).
    // Parsed here (help, usage errors, man page, completions), run by its own binary.
    Console {
        #[command(subcommand)]
        command: crate::console::args::ConsoleCommand,
    },
    /// A simulated APC Smart UPS on a pseudo-terminal (tests, benchmarks, lab clusters).
    #[command(hide = true)]
    UpsSim(crate::fence::sim::SimArgs),
    /// The tcprelay agent's relay daemon (started by the agent, not by hand).
    #[command(hide = true)]
    TcprelayDaemon(crate::agents::tcprelay::relay::DaemonArgs),
    /// Write the man pages and shell completions (used by packaging).
    #[command(hide = true)]
    Doc {
        /// Directory to write man/ and completions/ under.
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Print (or write) the stack's configuration: CIB XML, a pcs or crmsh script, or corosync.conf.
    Render {
        /// cib, pcs, crm or corosync.
        #[arg(long, value_parser = ["cib", "pcs", "crm", "corosync"])]
        format: String,
        /// Write here (atomically) instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// The stack description (TOML).
        stack: PathBuf,
    },
    /// Run crm_verify and the failure scenarios through crm_simulate; print what happens in each.
    Check {
        /// The stack description (TOML).
        stack: PathBuf,
    },
}

#[derive(Subcommand)]
enum AgentCommand {
    /// Poll the console and apply this cluster's changes: PLAN (the CIB diff), COMMIT (only if the
    /// CIB's version is unchanged), VERIFY (crm_verify, validate-all, settled) or ROLLBACK.
    /// Exit 0 when every change applied (or none waited), 1 when one was refused, rolled back or
    /// failed, 3 when the console could not be asked.
    Apply(crate::agent::apply::ApplyArgs),
}

#[derive(Subcommand)]
enum AlertCommand {
    /// Send every spooled report to its console (oldest first); for a timer or after an outage.
    /// Exit 0 when nothing is left in the spool, 1 when reports still wait.
    Flush {
        /// The spool directory (the alert's spool_dir attribute).
        #[arg(long, default_value = crate::alert::settings::DEFAULT_SPOOL_DIR)]
        spool_dir: PathBuf,
        /// Stop sending after this long (e.g. 60s, 500ms).
        #[arg(long, default_value = "50s", value_parser = parse_duration)]
        deadline: std::time::Duration,
    },
    /// Run the alert agent as Pacemaker would (reads CRM_alert_* from the environment).
    Run,
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    crate::alert::settings::parse_duration(text).ok_or_else(|| format!("'{text}' is not a duration such as 50s"))
}

pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(&args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return e.exit_code();
        }
    };
    let result = match cli.command {
        Command::List => {
            print!("{}", list());
            Ok(0)
        }
        Command::Install { root, binary } => install(&root, binary).map(|_| 0),
        Command::Ocf { agent, action } => run_ocf(&agent, action.as_deref()),
        Command::UpsSim(args) => crate::fence::sim::run_cli(args).map(|_| 0),
        Command::Doc { out } => crate::doc::write_all(&out, Cli::command()).map(|files| {
            for f in files {
                println!("{}", f.display());
            }
            0
        }),
        Command::Config { command } => run_config(command),
        Command::Lab(args) => crate::lab::run(args),
        Command::TcprelayDaemon(args) => return crate::agents::tcprelay::relay::main(args),
        Command::Alert { command: AlertCommand::Flush { spool_dir, deadline } } => {
            Ok(crate::alert::flush(&spool_dir, deadline))
        }
        Command::Alert { command: AlertCommand::Run } => Ok(crate::alert::main()),
        Command::Agent { command: AgentCommand::Apply(args) } => return crate::agent::apply::run(args),
        // Its own binary runs it, with the arguments as given (after `console`: no global
        // option precedes a subcommand).
        Command::Console { .. } => {
            let after = args.iter().skip(1).position(|a| a == "console").map_or(args.len(), |i| i + 2);
            return crate::console::launch::exec(&args[after..]);
        }
    };
    result.unwrap_or_else(|e| {
        eprintln!("hastack: {e:#}");
        1
    })
}

/// `hastack list`: one applet per line, `NAME KIND PATH`.
pub fn list() -> String {
    applets::all().iter().map(|a| format!("{:<12} {:<6} {}\n", a.name, a.kind_name(), a.link_path())).collect()
}

fn run_ocf(agent: &str, action: Option<&str>) -> Result<i32> {
    match applets::find_agent(agent) {
        Some(a) => Ok(crate::ocf::run_agent(a, action)),
        None => {
            let known: Vec<&str> = applets::all().iter().filter(|a| a.kind_name() == "ocf").map(|a| a.name).collect();
            bail!("unknown OCF agent '{agent}' (known: {})", known.join(", "))
        }
    }
}

fn run_config(command: ConfigCommand) -> Result<i32> {
    use crate::config;
    match command {
        ConfigCommand::Render { format, output, stack } => {
            let format = config::Format::parse(&format).expect("clap checked the format");
            // Everything is rendered before anything is written: a refused stack writes nothing.
            let loaded = config::load(&stack)?;
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            let text = loaded.render(format);
            match output {
                Some(path) => config::write_atomically(&path, &text)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => print!("{text}"),
            }
            Ok(0)
        }
        ConfigCommand::Check { stack } => {
            let loaded = config::load(&stack)?;
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            let report = config::check::run(&loaded)?;
            print!("{}", report.text);
            Ok(if report.ok { 0 } else { 1 })
        }
    }
}

/// Creates (or corrects) every applet link under `root`, pointing at `binary`.
pub fn install(root: &Path, binary: Option<PathBuf>) -> Result<()> {
    let binary = match binary {
        Some(b) => b,
        None => std::env::current_exe().context("cannot find this binary's path")?,
    };
    for applet in applets::all() {
        let link = root.join(applet.link_path().trim_start_matches('/'));
        let parent = link.parent().expect("link paths have a directory");
        fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        if fs::read_link(&link).is_ok_and(|t| t == binary) {
            continue;
        }
        // Replace atomically: a new link beside it, renamed over the old name.
        let tmp = parent.join(format!(".{}.hastack-new", applet.name));
        let _ = fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&binary, &tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        fs::rename(&tmp, &link).with_context(|| format!("cannot install {}", link.display()))?;
        println!("{} -> {}", link.display(), binary.display());
    }
    Ok(())
}
