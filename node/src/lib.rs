//! The Custos validator node, collector and command-line tools.

pub mod chain;
pub mod keys;
pub mod mempool;
