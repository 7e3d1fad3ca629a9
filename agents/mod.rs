//! The OCF resource agents, one module each (DESIGN.md §2). Each holds its parameter table and
//! its actions; everything shared lives in the `ocf`, `sys` and `net` runtime modules.

use crate::ocf::Agent;

pub mod activemq;
pub mod datalayer;
pub mod mariadb;
pub mod postgresql;
pub mod rabbitmq;

/// Every OCF agent, in the order `hastack list` shows them.
pub static AGENTS: &[&dyn Agent] =
    &[&postgresql::Postgresql, &mariadb::Mariadb, &activemq::Activemq, &rabbitmq::Rabbitmq];
