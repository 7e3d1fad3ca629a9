//! The one integration-test binary (like just's and coreutils'): one module per area.
//! Tests that need root, a namespace or a Debian package skip with a message on a laptop, and
//! fail under CI (`CI=true`), where a missing capability must never pass silently.

mod support;

mod agent;
mod alert;
mod cli;
mod config;
mod conformance;
mod console;
mod data;
mod drbd;
mod faults;
mod fence;
mod filesystem;
mod front;
mod lab;
mod lab_alert;
mod lab_app;
mod logging;
mod packaging;
mod tcprelay;
mod vip;
mod vm;
