//! Rule breakages that exist only to prove the simulator can catch them.
//!
//! A simulator that never fails proves nothing, so the test suite turns on one of these,
//! runs the seed sweep, and expects a reported violation. They are compiled only with the
//! `planted-bugs` feature (enabled by the test crate alone) and even then stay off unless
//! [`crate::EngineConfig::planted_bug`] names one, so honest runs behave the same with or
//! without the feature.

/// One deliberately broken rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PlantedBug {
    /// L23 and L29 ignore `lockedValue`/`lockedRound`: a locked validator prevotes any valid
    /// proposal. Two honest validators can then decide different values at one height.
    IgnoreLock,
    /// A quorum is `2f` of the power instead of `2f + 1` (with `f = (total - 1) / 3`).
    QuorumOffByOne,
    /// A vote is broadcast before its WAL entry is persisted: a crash between the two lets
    /// the restarted validator sign a different vote for the same step.
    BroadcastBeforePersist,
    /// `StartHeight` ignores the recovered WAL: a restarted validator forgets what it
    /// signed and its lock, and can sign a conflicting vote for a step it already voted in.
    ForgetWal,
}
