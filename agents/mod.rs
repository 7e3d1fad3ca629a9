//! The OCF resource agents, one module each (DESIGN.md §2). Each holds its parameter table and
//! its actions; everything shared lives in the `ocf`, `sys` and `net` runtime modules.
//! `front_service` and `datalayer` are helpers shared by the service agents of their layer;
//! `config_fault` decides the exit code of a configuration a server rejected, for both layers.

use crate::ocf::Agent;

pub mod activemq;
pub mod apache;
pub mod app;
pub mod config_fault;
pub mod datalayer;
pub mod drbd;
pub mod filesystem;
pub mod front_service;
pub mod haproxy;
pub mod mariadb;
pub mod mycnf;
pub mod nginx;
pub mod postgresql;
pub mod rabbitmq;
pub mod tomcat;
pub mod vip;

/// Every OCF agent, in the order `hastack list` shows them (the stack's layers, bottom up).
pub static AGENTS: &[&dyn Agent] = &[
    &vip::Vip,
    &filesystem::FILESYSTEM,
    &drbd::Drbd,
    &haproxy::Haproxy,
    &apache::Apache,
    &nginx::Nginx,
    &tomcat::Tomcat,
    &activemq::Activemq,
    &rabbitmq::Rabbitmq,
    &postgresql::Postgresql,
    &mariadb::Mariadb,
    &app::App,
];
