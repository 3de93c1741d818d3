#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod anchor;
pub mod block;
pub mod bundle;
pub mod c2sp;
pub mod claim;
pub mod codec;
pub mod crypto;
pub mod genesis;
pub mod hash;
pub mod incident;
pub mod limits;
pub mod membership;
pub mod merkle;
pub mod message;
pub mod risk;
pub mod storage;
