//! The Custos validator node, collector and command-line tools.
#![warn(missing_docs)]

pub mod chain;
pub mod keys;
pub mod mempool;
pub mod p2p;
