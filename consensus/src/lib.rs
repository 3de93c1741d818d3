#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

mod engine;
pub mod limits;
#[cfg(feature = "planted-bugs")]
pub mod planted;
pub mod state_machine;
mod types;
mod validators;
mod votes;
pub mod wal;

pub use engine::{
    Decision, DropReason, Engine, EngineConfig, Input, InputError, Output, StepTimeout,
    TimeoutConfig,
};
pub use state_machine::Step;
pub use types::{
    Height, Proposal, Round, RoundValue, Signature, SignatureTooLong, SignedVote, Timeout,
    TimeoutStep, ValidatorAddress, ValidatorIndex, ValueId, Vote, VoteKind,
};
pub use validators::{Validator, ValidatorSet, ValidatorSetError};
pub use votes::Equivocation;
pub use wal::WalEntry;
