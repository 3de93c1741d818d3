//! Vote counting: per round and vote kind, the first vote of each validator and the
//! voting power behind each value.

use std::collections::{BTreeMap, BTreeSet};

use crate::types::{Round, SignedVote, ValidatorIndex, ValueId, VoteKind};
use crate::validators::ValidatorSet;

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
#[derive(Debug, Default)]
pub(crate) struct Added {
    /// Whether the vote now counts towards its value (a duplicate does not).
    pub(crate) counted: bool,
    /// Evidence, the first time the voter is caught equivocating in this round and kind.
    pub(crate) evidence: Option<Equivocation>,
}

/// The votes for one value (or nil).
#[derive(Clone, Debug, Default)]
struct ValueVotes {
    weight: u64,
    votes: BTreeMap<ValidatorIndex, SignedVote>,
}

/// The votes of one kind in one round.
///
/// As in the paper, votes are counted per value: "2f + 1 ⟨PRECOMMIT, h, r, id(v)⟩" means
/// precommits for `v` from validators holding more than two thirds of the power, whatever
/// else those validators signed. An equivocator's second vote therefore counts towards its
/// own value too; otherwise a validator that happened to receive an equivocator's nil
/// precommit first could never accept a commit certificate that holds its precommit for
/// `v`. Counting both is safe: a Byzantine validator can always show different votes to
/// different validators. "2f + 1 ⟨PREVOTE, h, r, ∗⟩" counts each validator once.
///
/// Memory stays bounded: a validator's first vote always counts, a conflicting one only if
/// its value already holds more than a third of the power (some honest validator voted for
/// it). At most two values per kind can hold that much, so a validator has at most three
/// votes stored per round and kind, however many it signs.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    /// Each validator's first vote: the distinct voters.
    first: BTreeMap<ValidatorIndex, SignedVote>,
    /// Counted votes per value (`None` is nil).
    by_value: BTreeMap<Option<ValueId>, ValueVotes>,
    /// Power of the distinct voters.
    total: u64,
    /// Validators already reported for equivocating here (one report each is enough).
    reported: BTreeSet<ValidatorIndex>,
}

impl Tally {
    fn add(&mut self, signed: SignedVote, power: u64, validators: &ValidatorSet) -> Added {
        let validator = signed.vote.validator;
        let value = signed.vote.value;
        let Some(first) = self.first.get(&validator) else {
            self.first.insert(validator, signed.clone());
            self.total += power;
            self.count(signed, power);
            return Added {
                counted: true,
                evidence: None,
            };
        };
        if first.vote == signed.vote
            || self
                .by_value
                .get(&value)
                .is_some_and(|v| v.votes.contains_key(&validator))
        {
            return Added::default();
        }
        let evidence = self.reported.insert(validator).then(|| Equivocation {
            first: first.clone(),
            second: signed.clone(),
        });
        let counted = validators.exceeds_one_third(self.weight(value));
        if counted {
            self.count(signed, power);
        }
        Added { counted, evidence }
    }

    fn count(&mut self, signed: SignedVote, power: u64) {
        let entry = self.by_value.entry(signed.vote.value).or_default();
        entry.weight += power;
        entry.votes.insert(signed.vote.validator, signed);
    }

    /// Power of the votes for `value` (`None`: nil).
    pub(crate) fn weight(&self, value: Option<ValueId>) -> u64 {
        self.by_value.get(&value).map_or(0, |v| v.weight)
    }

    /// Power of the distinct voters, whatever their value.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Counted votes, by value and then validator.
    pub(crate) fn votes(&self) -> impl Iterator<Item = &SignedVote> {
        self.by_value.values().flat_map(|v| v.votes.values())
    }

    /// Counted votes for `value`, in validator order.
    pub(crate) fn votes_for(&self, value: Option<ValueId>) -> Vec<SignedVote> {
        self.by_value
            .get(&value)
            .map(|v| v.votes.values().cloned().collect())
            .unwrap_or_default()
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
    pub(crate) fn add(&mut self, vote: SignedVote, power: u64, validators: &ValidatorSet) -> Added {
        let round = self.rounds.entry(vote.vote.round).or_default();
        let tally = match vote.vote.kind {
            VoteKind::Prevote => &mut round.prevotes,
            VoteKind::Precommit => &mut round.precommits,
        };
        tally.add(vote, power, validators)
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
