#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod anchor;
pub mod audit;
pub mod chain;
pub mod collect;
pub mod config;
pub mod cosign;
pub mod defense;
pub mod defense_cli;
pub mod evidence;
pub mod genesis_spec;
pub mod keys;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod p2p;
pub mod publish;
pub mod rate;
pub mod reads;
pub mod rpc_server;
pub mod runtime;
pub mod send;
pub mod stix;
pub mod wire;
