//! The OCF resource agents, one module each (DESIGN.md §2). Each holds its parameter table and
//! its actions; everything shared lives in the `ocf`, `sys` and `net` runtime modules. The
//! agents that run a server (haproxy, apache, nginx, tomcat, app, postgresql, mariadb,
//! activemq, rabbitmq) are built on the service model in `service`: each says only what is
//! specific to its server.

use crate::ocf::Agent;

pub mod activemq;
pub mod apache;
pub mod app;
pub mod drbd;
pub mod filesystem;
pub mod haproxy;
pub mod mariadb;
pub mod mycnf;
pub mod nginx;
pub mod postgresql;
pub mod rabbitmq;
pub mod service;
pub mod tcprelay;
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
    &tcprelay::Tcprelay,
];
