//! Every bound the engine puts on what it stores, in one place, with the reason for each.
//!
//! Inputs come from other validators, some of which may be Byzantine; nothing they send may
//! grow the engine's memory without bound. Messages beyond a bound are dropped and reported
//! as [`crate::Output::Dropped`] with a [`crate::DropReason`] the node can log.

/// Most validators in one set. Custos validators are organisations (control center,
/// ISACs, SOCs, CERTs, insurers): tens, not thousands. 256 keeps per-round vote tables small
/// and the all-to-all message pattern of Tendermint affordable.
pub const VALIDATORS_MAX: usize = 256;

/// Largest total voting power of a set. Power is a small integer weight per organisation,
/// not a stake; the bound keeps the proposer rotation (one entry per unit of power, after
/// dividing by the powers' gcd) at most 64 KiB and its construction cheap.
pub const VOTING_POWER_TOTAL_MAX: u64 = 1 << 16;

/// Most bytes of opaque signature (plus extension) a vote may carry: an Ed25519 signature is
/// 64 bytes, a BLS signature 96; the rest is room for a small vote extension.
pub const SIGNATURE_BYTES_MAX: usize = 256;

/// How many rounds ahead of the current one the engine stores messages for. Messages of the
/// next round or two routinely arrive just before this validator times out into it. A
/// validator further behind does not need the messages themselves: the round skip (L55)
/// works from the highest round seen per validator, which is kept for every message, and
/// the node's gossip resends the messages of the round it skips to.
pub const FUTURE_ROUNDS_MAX: u32 = 8;

/// Messages buffered per sender for the next height, before this validator has decided the
/// current one: a proposal and two votes for each of the first rounds of the next height
/// cover an honest validator that decided slightly earlier. More from one sender is either
/// a slow local node (the node's gossip resends) or an attempt to fill memory.
pub const NEXT_HEIGHT_MESSAGES_PER_VALIDATOR_MAX: usize = 9;

/// Most proposals kept per round. The first proposal from the round's proposer is always
/// kept; another one (an equivocating proposer) only once more than a third of the voting
/// power has voted for its value, since then an honest validator may act on it. Per vote
/// kind at most two values can hold more than a third of the power, so at most
/// 1 + 2 (prevotes) + 2 (precommits) proposals qualify.
pub const PROPOSALS_PER_ROUND_MAX: usize = 5;

/// Upper bound on state machine steps triggered by one input. Every step advances the
/// step, the round or a "for the first time" flag, so a handful suffice; the bound turns a
/// hypothetical bug into a stalled input instead of a hung validator.
pub const EVALUATION_STEPS_MAX: usize = 64;

/// Bytes of one borsh-encoded signed vote at most: height (8), round (4), kind (1), value
/// (1 + 32), validator (4), signature (4 + [`SIGNATURE_BYTES_MAX`]).
pub const SIGNED_VOTE_BYTES_MAX: usize = 8 + 4 + 1 + 33 + 4 + 4 + SIGNATURE_BYTES_MAX;

/// Largest WAL record payload: a polka entry (tag, height, round, value, vector length)
/// carrying one prevote from each of [`VALIDATORS_MAX`] validators.
pub const WAL_RECORD_BYTES_MAX: usize = 1 + 8 + 4 + 32 + 4 + VALIDATORS_MAX * SIGNED_VOTE_BYTES_MAX;

const _: () = {
    // Validator indices are u32 on the wire and u8 in the proposer rotation.
    assert!(VALIDATORS_MAX <= u8::MAX as usize + 1);
    // Quorum checks compute 3 * power without overflow.
    assert!(VOTING_POWER_TOTAL_MAX <= u64::MAX / 3);
    // The next-height buffer must hold at least one full round from each validator.
    assert!(NEXT_HEIGHT_MESSAGES_PER_VALIDATOR_MAX >= 3);
    // First proposal + two candidate values per vote kind.
    assert!(PROPOSALS_PER_ROUND_MAX == 1 + 2 + 2);
    // Record lengths are framed as u32.
    assert!(WAL_RECORD_BYTES_MAX <= u32::MAX as usize);
    // The round window must at least cover the next round.
    assert!(FUTURE_ROUNDS_MAX >= 1);
};
