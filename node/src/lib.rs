//! The Custos validator node: configuration, networking and the services that run a validator.
#![warn(missing_docs)]

pub mod p2p;
