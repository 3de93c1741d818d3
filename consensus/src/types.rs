//! The values the engine reasons about: heights, rounds, value ids, votes and proposals.
//!
//! `Height` and `Round` are newtypes with no `From<u64>`/`From<u32>` on purpose: a height
//! must never be confused with a round, a count or an index, so each one is built with an
//! explicit `new` and read back with `get`.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};

use crate::limits::SIGNATURE_BYTES_MAX;

/// A height of the chain: one instance of consensus (the paper's `h_p`).
///
/// Arithmetic: [`Height::next`] panics on overflow. Heights only grow by one per decided
/// block, so reaching `u64::MAX` is impossible in practice and would mean a bug upstream.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Height(u64);

impl Height {
    /// Wraps a raw height.
    pub const fn new(height: u64) -> Self {
        Self(height)
    }

    /// The raw height.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The following height.
    ///
    /// # Panics
    /// At `u64::MAX`, which no chain reaches: a panic there means a corrupted height.
    pub const fn next(self) -> Self {
        match self.0.checked_add(1) {
            Some(next) => Self(next),
            None => panic!("height overflow: no chain decides 2^64 blocks"),
        }
    }
}

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A round within a height (the paper's `round_p`). The paper's `-1` ("no round") is
/// `Option<Round>::None` wherever it occurs (locked round, valid round, proof-of-lock round).
///
/// Arithmetic: [`Round::next`] saturates at [`Round::MAX`]. A height that somehow ran 2^32
/// rounds stays in its last round (timing out forever) instead of wrapping to round 0,
/// where this validator has already voted. [`Round::saturating_add`] saturates as well.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct Round(u32);

impl Round {
    /// The first round of every height.
    pub const ZERO: Round = Round(0);
    /// The last representable round; [`Round::next`] stays here.
    pub const MAX: Round = Round(u32::MAX);

    /// Wraps a raw round number.
    pub const fn new(round: u32) -> Self {
        Self(round)
    }

    /// The raw round number.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The following round, saturating at [`Round::MAX`].
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }

    /// `self + rounds`, saturating at [`Round::MAX`].
    pub const fn saturating_add(self, rounds: u32) -> Self {
        Self(self.0.saturating_add(rounds))
    }
}

impl fmt::Display for Round {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The id of a proposed value (for Custos: the BLAKE3 id of a block). The engine never sees
/// the value itself: the node checks it and reports the paper's `valid(v)` with the proposal.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize,
)]
pub struct ValueId(pub [u8; 32]);

impl fmt::Debug for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ValueId({self})")
    }
}

impl fmt::Display for ValueId {
    /// The first 8 bytes in hex: enough to tell values apart in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.0[..8] {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// The position of a validator in the [`crate::ValidatorSet`] of a height. Messages name
/// their sender by index; the node maps the authenticated signing key to this index.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct ValidatorIndex(u32);

impl ValidatorIndex {
    /// Wraps a raw index.
    pub const fn new(index: u32) -> Self {
        Self(index)
    }

    /// The raw index.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// The index as a `usize`, for indexing into per-validator tables.
    pub fn as_usize(self) -> usize {
        // u32 always fits in usize on the 32- and 64-bit targets Custos supports.
        usize::try_from(self.0).expect("u32 index fits in usize")
    }
}

impl fmt::Display for ValidatorIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A validator's stable identity across heights (for Custos: its Ed25519 public key). The
/// engine uses it only to find its own index in each height's validator set.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub struct ValidatorAddress(pub [u8; 32]);

/// Which of the two voting steps a vote belongs to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub enum VoteKind {
    /// `⟨PREVOTE, h, r, id(v)⟩`.
    Prevote,
    /// `⟨PRECOMMIT, h, r, id(v)⟩`.
    Precommit,
}

impl fmt::Display for VoteKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VoteKind::Prevote => "prevote",
            VoteKind::Precommit => "precommit",
        })
    }
}

/// A vote as the engine produces it: unsigned. The node signs these canonical fields
/// (borsh, under its own domain-separation tag) before sending.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Vote {
    /// Height voted at.
    pub height: Height,
    /// Round voted in.
    pub round: Round,
    /// Prevote or precommit.
    pub kind: VoteKind,
    /// The value voted for; `None` is the paper's `nil`.
    pub value: Option<ValueId>,
    /// The voter.
    pub validator: ValidatorIndex,
}

/// Opaque bytes the node attaches to a vote: its signature, optionally followed by an
/// extension. The engine stores them and hands them back in [`crate::Decision::commit`] and
/// [`crate::Equivocation`], so the node can build commit certificates and evidence.
#[derive(Clone, PartialEq, Eq, Hash, Default, BorshSerialize)]
pub struct Signature(Vec<u8>);

/// A signature longer than [`SIGNATURE_BYTES_MAX`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "signature of {len} bytes is longer than the {max} bytes a vote may carry; \
     an Ed25519 signature is 64 bytes"
)]
pub struct SignatureTooLong {
    /// Length given.
    pub len: usize,
    /// [`SIGNATURE_BYTES_MAX`].
    pub max: usize,
}

impl Signature {
    /// Wraps signature bytes, at most [`SIGNATURE_BYTES_MAX`] of them.
    pub fn new(bytes: Vec<u8>) -> Result<Self, SignatureTooLong> {
        if bytes.len() > SIGNATURE_BYTES_MAX {
            return Err(SignatureTooLong {
                len: bytes.len(),
                max: SIGNATURE_BYTES_MAX,
            });
        }
        Ok(Self(bytes))
    }

    /// The bytes as given to [`Signature::new`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({} bytes)", self.0.len())
    }
}

impl BorshDeserialize for Signature {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let bytes = Vec::<u8>::deserialize_reader(reader)?;
        Signature::new(bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()))
    }
}

/// A vote with the sender's signature, as received (the node has checked the signature
/// and that `vote.validator` is the signer before handing it to the engine).
#[derive(Clone, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct SignedVote {
    /// The signed content.
    pub vote: Vote,
    /// The signature, opaque to the engine.
    pub signature: Signature,
}

/// `⟨PROPOSAL, h, r, v, vr⟩`, unsigned. The node signs what the engine produces and
/// checks the signature of what it receives; `proposer` is the authenticated sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct Proposal {
    /// Height proposed at.
    pub height: Height,
    /// Round proposed in.
    pub round: Round,
    /// The proposed value's id.
    pub value: ValueId,
    /// The paper's `vr`: the round of the polka that justifies re-proposing a value, or
    /// `None` (the paper's `-1`) for a fresh value. Must be below `round`.
    pub pol_round: Option<Round>,
    /// The sender, who must be the proposer of `(height, round)`.
    pub proposer: ValidatorIndex,
}

/// A value together with the round in which something happened to it (the paper's
/// `lockedValue`/`lockedRound`, `validValue`/`validRound` and the decision).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct RoundValue {
    /// The round.
    pub round: Round,
    /// The value.
    pub value: ValueId,
}

/// The step a timeout belongs to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize,
)]
pub enum TimeoutStep {
    /// `timeoutPropose` (L21, handled at L57).
    Propose,
    /// `timeoutPrevote` (L35, handled at L61).
    Prevote,
    /// `timeoutPrecommit` (L48, handled at L65).
    Precommit,
}

/// Identifies a scheduled timeout; the node hands it back in
/// [`crate::Input::TimeoutElapsed`] once the duration has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeout {
    /// Height the timeout was scheduled at.
    pub height: Height,
    /// Round the timeout was scheduled in.
    pub round: Round,
    /// Which timeout.
    pub step: TimeoutStep,
}
