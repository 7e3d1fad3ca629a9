//! `hastack lab bench N`: power cuts of the node running the data layers, timed from Pacemaker's
//! own records.

use anyhow::{bail, Result};

use super::layout::Lab;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// How many power cuts.
    #[arg(default_value_t = 1)]
    pub runs: u32,
}

pub fn run(_lab: &Lab, _args: BenchArgs) -> Result<i32> {
    bail!("lab bench: not built yet")
}
