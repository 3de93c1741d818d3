#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod c2sp;
pub mod hash;
pub mod merkle;
