//! The OCF runtime: environment, exit codes, parameter tables, meta-data, time budget and the
//! action dispatcher every agent goes through.

pub mod agent;
pub mod deadline;
pub mod env;
pub mod host;
pub mod log;
pub mod metadata;
pub mod params;
pub mod status;

pub use agent::{run_agent, Action, ActionSpec, Agent, AgentSpec, Ctx};
pub use deadline::Deadline;
pub use env::OcfEnv;
pub use log::Logger;
pub use params::{ParamSpec, ParamType, Params};
pub use status::{OcfError, OcfResult, OcfStatus};
