//! Vote counting: per round and vote kind, the first vote of each validator and the
//! voting power behind each value.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::{Round, SignedVote, ValidatorIndex, ValueId, VoteKind};

/// Two different votes signed by one validator for the same height, round and vote kind:
/// proof that the validator is Byzantine, to be committed on chain by the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    /// The vote received first (the one that counts).
    pub first: SignedVote,
    /// The conflicting vote received later.
    pub second: SignedVote,
}

/// What adding a vote did.
#[derive(Debug)]
pub(crate) enum Added {
    /// A new vote, now counted.
    Counted,
    /// The same vote again (gossip resends votes); nothing changed.
    Duplicate,
    /// A vote conflicting with the validator's first one; not counted. Carries the evidence
    /// the first time the validator is caught in this round and kind.
    Conflict(Option<Equivocation>),
}

/// The votes of one kind in one round.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    /// First vote per validator: only that one counts, later conflicting ones are evidence.
    votes: BTreeMap<ValidatorIndex, SignedVote>,
    /// Power per value (`None` is nil).
    weights: BTreeMap<Option<ValueId>, u64>,
    /// Power of all counted votes.
    total: u64,
    /// Validators already reported for equivocating here (one report each is enough).
    reported: BTreeSet<ValidatorIndex>,
}

impl Tally {
    fn add(&mut self, signed: SignedVote, power: u64) -> Added {
        let validator = signed.vote.validator;
        if let Some(first) = self.votes.get(&validator) {
            if first.vote == signed.vote {
                return Added::Duplicate;
            }
            let evidence = self.reported.insert(validator).then(|| Equivocation {
                first: first.clone(),
                second: signed,
            });
            return Added::Conflict(evidence);
        }
        *self.weights.entry(signed.vote.value).or_insert(0) += power;
        self.total += power;
        self.votes.insert(validator, signed);
        Added::Counted
    }

    /// Power of the votes for `value` (`None`: nil).
    pub(crate) fn weight(&self, value: Option<ValueId>) -> u64 {
        self.weights.get(&value).copied().unwrap_or(0)
    }

    /// Power of all counted votes, whatever their value.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Counted votes, in validator order.
    pub(crate) fn votes(&self) -> impl Iterator<Item = &SignedVote> {
        self.votes.values()
    }

    /// Counted votes for `value`, in validator order.
    pub(crate) fn votes_for(&self, value: Option<ValueId>) -> Vec<SignedVote> {
        self.votes
            .values()
            .filter(|v| v.vote.value == value)
            .cloned()
            .collect()
    }
}

/// Prevotes and precommits of one round.
#[derive(Clone, Debug, Default)]
struct RoundVotes {
    prevotes: Tally,
    precommits: Tally,
}

/// All votes of the current height, by round. Rounds are created only for votes inside the
/// engine's round window, see [`crate::limits::FUTURE_ROUNDS_MAX`].
#[derive(Clone, Debug, Default)]
pub(crate) struct VoteKeeper {
    rounds: BTreeMap<Round, RoundVotes>,
}

impl VoteKeeper {
    /// Counts `vote` with the voter's `power`.
    pub(crate) fn add(&mut self, vote: SignedVote, power: u64) -> Added {
        let round = self.rounds.entry(vote.vote.round).or_default();
        let tally = match vote.vote.kind {
            VoteKind::Prevote => &mut round.prevotes,
            VoteKind::Precommit => &mut round.precommits,
        };
        tally.add(vote, power)
    }

    /// The votes of `kind` in `round`, if any arrived.
    pub(crate) fn tally(&self, round: Round, kind: VoteKind) -> Option<&Tally> {
        let round = self.rounds.get(&round)?;
        Some(match kind {
            VoteKind::Prevote => &round.prevotes,
            VoteKind::Precommit => &round.precommits,
        })
    }

    /// Power of the `kind` votes for `value` in `round`.
    pub(crate) fn weight(&self, round: Round, kind: VoteKind, value: Option<ValueId>) -> u64 {
        self.tally(round, kind).map_or(0, |t| t.weight(value))
    }
}
