//! `hastack-console`: the enterprise console's own binary (README.md, Console), run by
//! `hastack console ...`. Apart from the agents' binary so that they never load its HTTP server,
//! async runtime and databases (src/console/launch.rs).

use clap::Parser;

fn main() {
    let cli = hastack::console::args::ConsoleCli::parse();
    let code = hastack::console::run(cli.command).unwrap_or_else(|e| {
        eprintln!("hastack: {e:#}");
        1
    });
    std::process::exit(code);
}
