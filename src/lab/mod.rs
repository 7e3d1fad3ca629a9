//! The lab: the whole stack on one machine. This part holds the pieces the lab runs end to end:
//! the servlet application (`app`), the transaction client (`client`) and the ledger check
//! (`ledger`), with their hidden `hastack lab` subcommands.

pub mod app;
pub mod client;
pub mod ledger;
