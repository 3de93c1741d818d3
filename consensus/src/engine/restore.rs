//! Starting a height, fresh or from the WAL after a restart.

#[cfg(feature = "planted-bugs")]
use crate::planted::PlantedBug;
use crate::state_machine::{Event, Step};
use crate::types::{Round, RoundValue, SignedVote, ValidatorIndex, ValueId, VoteKind};
use crate::wal::WalEntry;

use super::height::HeightState;
use super::{InputError, Output};

impl HeightState {
    /// Starts the height: L10 `StartRound(0)` if the WAL has nothing for it, otherwise
    /// resumes where the validator was before it crashed.
    pub(crate) fn start(
        &mut self,
        wal: Vec<WalEntry>,
        out: &mut Vec<Output>,
    ) -> Result<(), InputError> {
        let height = self.state.height;
        if let Some(ahead) = wal.iter().find(|e| e.height() > height) {
            return Err(InputError::WalAheadOfHeight {
                entry: ahead.height(),
                height,
            });
        }
        #[allow(unused_mut)] // emptied only with planted bugs compiled in
        let mut entries: Vec<WalEntry> = wal.into_iter().filter(|e| e.height() == height).collect();
        #[cfg(feature = "planted-bugs")]
        if self.state.planted_bug == Some(PlantedBug::ForgetWal) {
            entries.clear();
        }
        if entries.is_empty() {
            let is_proposer = self.is_proposer(Round::ZERO);
            self.apply_event(
                Event::NewRound {
                    round: Round::ZERO,
                    is_proposer,
                },
                out,
            );
            self.evaluate(out);
            return Ok(());
        }
        let me = self
            .own_index
            .ok_or(InputError::WalNotAValidator { height })?;
        let mut valid: Option<RoundValue> = None;
        for entry in entries {
            match entry {
                WalEntry::Proposal(p) => self.recover_proposal(me, p)?,
                WalEntry::Vote(v) => self.recover_vote(me, v)?,
                WalEntry::Polka {
                    round,
                    value,
                    prevotes,
                    ..
                } => {
                    self.recover_polka(round, value, prevotes)?;
                    valid = later(valid, Some(RoundValue { round, value }));
                }
            }
        }
        self.resume(me, valid, out);
        Ok(())
    }

    fn recover_proposal(
        &mut self,
        me: ValidatorIndex,
        proposal: crate::types::Proposal,
    ) -> Result<(), InputError> {
        if proposal.proposer != me {
            return Err(InputError::WalNotOwn {
                found: proposal.proposer,
                own: me,
                height: self.state.height,
            });
        }
        match self.own_proposals.insert(proposal.round, proposal) {
            Some(earlier) if earlier != proposal => Err(InputError::WalConflict {
                round: proposal.round,
                what: "proposals",
            }),
            _ => Ok(()),
        }
    }

    fn recover_vote(
        &mut self,
        me: ValidatorIndex,
        vote: crate::types::Vote,
    ) -> Result<(), InputError> {
        if vote.validator != me {
            return Err(InputError::WalNotOwn {
                found: vote.validator,
                own: me,
                height: self.state.height,
            });
        }
        match self.own_votes.insert((vote.round, vote.kind), vote.value) {
            Some(earlier) if earlier != vote.value => Err(InputError::WalConflict {
                round: vote.round,
                what: match vote.kind {
                    VoteKind::Prevote => "prevotes",
                    VoteKind::Precommit => "precommits",
                },
            }),
            _ => Ok(()),
        }
    }

    /// Puts the prevotes behind a valid value back into the vote counts.
    fn recover_polka(
        &mut self,
        round: Round,
        value: ValueId,
        prevotes: Vec<SignedVote>,
    ) -> Result<(), InputError> {
        let invalid = |reason| InputError::WalInvalidPolka { round, reason };
        for prevote in prevotes {
            let v = &prevote.vote;
            if v.height != self.state.height || v.round != round {
                return Err(invalid("a prevote of another height or round"));
            }
            if v.kind != VoteKind::Prevote || v.value != Some(value) {
                return Err(invalid("a vote that is not a prevote for the value"));
            }
            let power = self
                .check_sender(v.validator)
                .map_err(|_| invalid("a prevote from outside the validator set"))?;
            self.count_recovered(prevote, power);
        }
        if !self.is_quorum(self.recovered_weight(round, value)) {
            return Err(invalid("too little voting power"));
        }
        Ok(())
    }

    /// Rebuilds lock, valid value, round and step from the recovered messages, resends what
    /// was already signed in that round, and carries on.
    fn resume(&mut self, me: ValidatorIndex, valid: Option<RoundValue>, out: &mut Vec<Output>) {
        // The lock moves only at L38, together with a precommit for the value (L40), so the
        // latest non-nil own precommit is the lock.
        let locked = self
            .own_votes
            .iter()
            .filter(|((_, kind), _)| *kind == VoteKind::Precommit)
            .filter_map(|((round, _), value)| {
                value.map(|value| RoundValue {
                    round: *round,
                    value,
                })
            })
            .max_by_key(|rv| rv.round);
        let valid = later(valid, locked);
        let round = self
            .own_votes
            .keys()
            .map(|(round, _)| *round)
            .chain(self.own_proposals.keys().copied())
            .chain(valid.map(|v| v.round))
            .max()
            .unwrap_or(Round::ZERO);
        self.state.locked = locked;
        self.state.valid = valid;
        self.state.round = round;
        self.observe_round(me, round);
        let voted = |kind| self.own_votes.get(&(round, kind)).copied();
        let (prevote, precommit) = (voted(VoteKind::Prevote), voted(VoteKind::Precommit));
        if prevote.is_none() && precommit.is_none() {
            // Not voted in this round yet: start it again (L11); a proposal signed before the
            // crash is resent instead of a new one.
            let is_proposer = self.is_proposer(round);
            self.apply_event(Event::NewRound { round, is_proposer }, out);
        } else {
            self.state.step = if precommit.is_some() {
                Step::Precommit
            } else {
                Step::Prevote
            };
            if let Some(proposal) = self.own_proposals.get(&round) {
                out.push(Output::BroadcastProposal(*proposal));
            }
            for (kind, value) in [
                (VoteKind::Prevote, prevote),
                (VoteKind::Precommit, precommit),
            ] {
                if let Some(value) = value {
                    let height = self.state.height;
                    let vote = crate::types::Vote {
                        height,
                        round,
                        kind,
                        value,
                        validator: me,
                    };
                    out.push(Output::BroadcastVote(vote));
                }
            }
        }
        self.evaluate(out);
    }
}

/// The one of `a` and `b` with the higher round.
fn later(a: Option<RoundValue>, b: Option<RoundValue>) -> Option<RoundValue> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.round > a.round { b } else { a }),
        (a, b) => a.or(b),
    }
}
