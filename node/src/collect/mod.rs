//! Collector building blocks: turning security log events into envelope metadata.
//!
//! Only the parsing layer lives here so far; tailing, spooling and submission come later.

pub mod parse;
