//! Custos integration tests. The library part holds the deterministic consensus simulator
//! ([`sim`]); the integration tests in `tests/` and the `sim` binary (seed sweeps for
//! `scripts/sim.sh`) drive it. [`bench`] is the network benchmark behind
//! `scripts/bench.sh` (the `bench` binary).
#![warn(missing_docs)]

pub mod bench;
pub mod sim;
