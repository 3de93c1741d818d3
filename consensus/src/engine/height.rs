//! The driver's state for one height: stored messages, vote counts, this validator's own
//! messages, and the evaluation of the paper's `upon` rules.

use std::collections::BTreeMap;

use crate::limits::{EVALUATION_STEPS_MAX, FUTURE_ROUNDS_MAX, PROPOSALS_PER_ROUND_MAX};
#[cfg(feature = "planted-bugs")]
use crate::planted::PlantedBug;
use crate::state_machine::{Action, Event, State, Step, apply};
use crate::types::{
    Height, Proposal, Round, RoundValue, SignedVote, Timeout, TimeoutStep, ValidatorIndex, ValueId,
    Vote, VoteKind,
};
use crate::validators::ValidatorSet;
use crate::votes::VoteKeeper;
use crate::wal::WalEntry;

use super::buffer::Message;
use super::{Decision, DropReason, EngineConfig, Output, TimeoutConfig};

/// A proposal from the round's proposer with the node's verdict on its value.
#[derive(Clone, Debug)]
struct ReceivedProposal {
    proposal: Proposal,
    valid: bool,
}

/// The paper's "for the first time" guards of the current round.
#[derive(Clone, Copy, Debug, Default)]
struct Fired {
    /// L34.
    polka_any: bool,
    /// L36.
    polka_value: bool,
    /// L47.
    precommit_any: bool,
}

/// The highest round each validator has sent a message in, for the round skip (L55).
#[derive(Clone, Debug)]
struct RoundsSeen {
    highest: Vec<Option<Round>>,
    /// The highest round `r` such that validators with more than a third of the power have
    /// sent messages of rounds `>= r`; recomputed when a highest round rises.
    skip_to: Option<Round>,
}

/// Everything the driver keeps for the current height.
#[derive(Debug)]
pub(crate) struct HeightState {
    pub(crate) state: State,
    pub(crate) validators: ValidatorSet,
    pub(crate) own_index: Option<ValidatorIndex>,
    timeouts: TimeoutConfig,
    votes: VoteKeeper,
    proposals: BTreeMap<Round, Vec<ReceivedProposal>>,
    /// Every vote this validator signed at this height: the guard against signing twice.
    pub(super) own_votes: BTreeMap<(Round, VoteKind), Option<ValueId>>,
    /// Every proposal this validator signed at this height.
    pub(super) own_proposals: BTreeMap<Round, Proposal>,
    rounds_seen: RoundsSeen,
    fired: Fired,
    /// The round in which the node was asked for a value and has not answered yet.
    value_request: Option<Round>,
    /// `(round, value)` pairs with precommits from more than two thirds of the power.
    commit_candidates: Vec<RoundValue>,
}

impl HeightState {
    pub(crate) fn new(config: &EngineConfig, height: Height, validators: ValidatorSet) -> Self {
        let own_index = validators.index_of(&config.address);
        #[allow(unused_mut)] // mutated only with planted bugs compiled in
        let mut state = State::new(height);
        #[cfg(feature = "planted-bugs")]
        {
            state.planted_bug = config.planted_bug;
        }
        let rounds_seen = RoundsSeen {
            highest: vec![None; validators.len()],
            skip_to: None,
        };
        Self {
            state,
            own_index,
            timeouts: config.timeouts,
            votes: VoteKeeper::default(),
            proposals: BTreeMap::new(),
            own_votes: BTreeMap::new(),
            own_proposals: BTreeMap::new(),
            rounds_seen,
            fired: Fired::default(),
            value_request: None,
            commit_candidates: Vec::new(),
            validators,
        }
    }

    /// The sender's voting power, or why its message cannot be used.
    pub(crate) fn check_sender(&self, sender: ValidatorIndex) -> Result<u64, DropReason> {
        self.validators
            .power(sender)
            .ok_or(DropReason::UnknownValidator {
                sender,
                height: self.state.height,
                validators: self.validators.len(),
            })
    }

    pub(crate) fn proposals(&self, round: Round) -> impl Iterator<Item = &Proposal> {
        self.proposals
            .get(&round)
            .into_iter()
            .flatten()
            .map(|p| &p.proposal)
    }

    pub(crate) fn votes(&self, round: Round, kind: VoteKind) -> impl Iterator<Item = &SignedVote> {
        self.votes
            .tally(round, kind)
            .into_iter()
            .flat_map(|t| t.votes())
    }

    /// A message of this height from a known sender with `power`.
    pub(crate) fn on_message(&mut self, message: Message, power: u64, out: &mut Vec<Output>) {
        if let Message::Proposal { proposal, .. } = &message {
            if let Err(reason) = self.check_proposal(proposal) {
                out.push(Output::Dropped(reason));
                return;
            }
        }
        let round = message.round();
        self.observe_round(message.sender(), round);
        if !self.in_window(round) {
            // The sender may have tipped the round skip; after it the round may fit.
            self.evaluate(out);
            if !self.in_window(round) {
                out.push(Output::Dropped(DropReason::RoundTooFarAhead {
                    round,
                    current: self.state.round,
                    window: FUTURE_ROUNDS_MAX,
                }));
                return;
            }
        }
        let changed = match message {
            Message::Proposal { proposal, valid } => self.store_proposal(proposal, valid, out),
            Message::Vote(vote) => self.count_vote(vote, power, out),
        };
        if changed {
            self.evaluate(out);
        }
    }

    /// Checks that do not depend on what is stored: sender and proof-of-lock round.
    fn check_proposal(&self, proposal: &Proposal) -> Result<(), DropReason> {
        let proposer = self.validators.proposer(proposal.height, proposal.round);
        if proposal.proposer != proposer {
            return Err(DropReason::NotProposer {
                round: proposal.round,
                sender: proposal.proposer,
                proposer,
            });
        }
        match proposal.pol_round {
            Some(pol_round) if pol_round >= proposal.round => Err(DropReason::InvalidPolRound {
                round: proposal.round,
                pol_round,
            }),
            _ => Ok(()),
        }
    }

    /// Keeps the round's first proposal, and a later one only if more than a third of the
    /// power voted for its value (see [`PROPOSALS_PER_ROUND_MAX`]). Returns whether a
    /// proposal was added.
    fn store_proposal(&mut self, proposal: Proposal, valid: bool, out: &mut Vec<Output>) -> bool {
        let round = proposal.round;
        let justified = [VoteKind::Prevote, VoteKind::Precommit]
            .into_iter()
            .any(|kind| {
                let weight = self.votes.weight(round, kind, Some(proposal.value));
                self.validators.exceeds_one_third(weight)
            });
        let stored = self.proposals.entry(round).or_default();
        if stored.iter().any(|p| p.proposal.value == proposal.value) {
            return false; // a resend (or the same value with another vr: keep the first)
        }
        if !stored.is_empty() && (!justified || stored.len() >= PROPOSALS_PER_ROUND_MAX) {
            out.push(Output::Dropped(DropReason::UnjustifiedProposal {
                round,
                value: proposal.value,
            }));
            return false;
        }
        stored.push(ReceivedProposal { proposal, valid });
        true
    }

    /// Counts a vote; reports equivocation. Returns whether the counts changed.
    fn count_vote(&mut self, signed: SignedVote, power: u64, out: &mut Vec<Output>) -> bool {
        let Vote {
            round, kind, value, ..
        } = signed.vote;
        let added = self.votes.add(signed, power, &self.validators);
        if let Some(evidence) = added.evidence {
            out.push(Output::Evidence(evidence));
        }
        if !added.counted {
            return false;
        }
        if let (VoteKind::Precommit, Some(value)) = (kind, value) {
            let candidate = RoundValue { round, value };
            let weight = self.votes.weight(round, kind, Some(value));
            if self.is_quorum(weight) && !self.commit_candidates.contains(&candidate) {
                self.commit_candidates.push(candidate);
            }
        }
        true
    }

    /// The node's answer to a value request (L18).
    pub(crate) fn on_value_ready(
        &mut self,
        height: Height,
        round: Round,
        value: ValueId,
        out: &mut Vec<Output>,
    ) {
        let expected = height == self.state.height
            && round == self.state.round
            && self.value_request == Some(round);
        if !expected {
            out.push(Output::Dropped(DropReason::UnrequestedValue {
                height,
                round,
            }));
            return;
        }
        self.value_request = None;
        self.apply_event(Event::ValueReady(value), out);
        self.evaluate(out);
    }

    /// A timeout of this height elapsed (L57, L61, L65).
    pub(crate) fn on_timeout(&mut self, round: Round, step: TimeoutStep, out: &mut Vec<Output>) {
        let event = match step {
            TimeoutStep::Propose => Event::TimeoutPropose(round),
            TimeoutStep::Prevote => Event::TimeoutPrevote(round),
            TimeoutStep::Precommit => Event::TimeoutPrecommit(round),
        };
        self.apply_event(event, out);
        self.evaluate(out);
    }

    /// Whether a quorum (`2f + 1`) holds `weight`.
    pub(super) fn is_quorum(&self, weight: u64) -> bool {
        #[cfg(feature = "planted-bugs")]
        if self.state.planted_bug == Some(PlantedBug::QuorumOffByOne) {
            let f = (self.validators.total_power() - 1) / 3;
            return weight >= 2 * f;
        }
        self.validators.is_quorum(weight)
    }

    fn in_window(&self, round: Round) -> bool {
        round <= self.state.round.saturating_add(FUTURE_ROUNDS_MAX)
    }

    /// Records that `validator` reached `round` (L55 bookkeeping).
    pub(super) fn observe_round(&mut self, validator: ValidatorIndex, round: Round) {
        let slot = &mut self.rounds_seen.highest[validator.as_usize()];
        if slot.is_some_and(|seen| seen >= round) {
            return;
        }
        *slot = Some(round);
        if round <= self.state.round {
            return;
        }
        let mut seen: Vec<(Round, u64)> = self
            .rounds_seen
            .highest
            .iter()
            .zip(self.validators.iter())
            .filter_map(|(round, validator)| round.map(|r| (r, validator.power)))
            .collect();
        seen.sort_by_key(|(round, _)| std::cmp::Reverse(*round));
        let mut weight = 0;
        for (round, power) in seen {
            weight += power;
            if self.validators.exceeds_one_third(weight) {
                self.rounds_seen.skip_to = Some(round);
                return;
            }
        }
    }

    /// Feeds the state machine every rule that holds until none does.
    pub(super) fn evaluate(&mut self, out: &mut Vec<Output>) {
        for _ in 0..EVALUATION_STEPS_MAX {
            let Some(event) = self.next_event() else {
                return;
            };
            self.apply_event(event, out);
        }
    }

    /// The first `upon` rule whose guard holds and that would change something.
    fn next_event(&self) -> Option<Event> {
        if matches!(self.state.step, Step::Unstarted | Step::Commit) {
            return None;
        }
        self.commit_event()
            .or_else(|| self.skip_event())
            .or_else(|| match self.state.step {
                Step::Propose => self.proposal_event(),
                Step::Prevote => self
                    .polka_value_event()
                    .or_else(|| self.polka_nil_event())
                    .or_else(|| self.polka_any_event()),
                Step::Precommit => self.polka_value_event(),
                Step::Unstarted | Step::Commit => None,
            })
            .or_else(|| self.precommit_any_event())
    }

    /// L49: a valid proposal of some round whose value has `2f + 1` precommits there.
    fn commit_event(&self) -> Option<Event> {
        self.commit_candidates.iter().find_map(|candidate| {
            self.proposals
                .get(&candidate.round)?
                .iter()
                .find(|p| p.proposal.value == candidate.value && p.valid)
                .map(|_| Event::ProposalAndCommit {
                    round: candidate.round,
                    value: candidate.value,
                    valid: true,
                })
        })
    }

    /// L55.
    fn skip_event(&self) -> Option<Event> {
        self.rounds_seen
            .skip_to
            .filter(|r| *r > self.state.round)
            .map(Event::RoundSkip)
    }

    fn current_proposals(&self) -> impl Iterator<Item = &ReceivedProposal> {
        self.proposals.get(&self.state.round).into_iter().flatten()
    }

    /// L22 (fresh proposal) or L28 (re-proposal with a polka at `vr`).
    fn proposal_event(&self) -> Option<Event> {
        self.current_proposals().find_map(|p| {
            let ReceivedProposal { proposal, valid } = *p;
            let value = proposal.value;
            match proposal.pol_round {
                None => Some(Event::Proposal { value, valid }),
                Some(pol_round) => {
                    let weight = self.votes.weight(pol_round, VoteKind::Prevote, Some(value));
                    self.is_quorum(weight)
                        .then_some(Event::ProposalAndPolkaPrevious {
                            value,
                            valid,
                            pol_round,
                        })
                }
            }
        })
    }

    /// L36: a valid proposal of this round whose value has `2f + 1` prevotes.
    fn polka_value_event(&self) -> Option<Event> {
        if self.fired.polka_value {
            return None;
        }
        let round = self.state.round;
        self.current_proposals().filter(|p| p.valid).find_map(|p| {
            let value = p.proposal.value;
            let weight = self.votes.weight(round, VoteKind::Prevote, Some(value));
            self.is_quorum(weight)
                .then_some(Event::ProposalAndPolkaCurrent { value, valid: true })
        })
    }

    /// L44.
    fn polka_nil_event(&self) -> Option<Event> {
        let weight = self.votes.weight(self.state.round, VoteKind::Prevote, None);
        self.is_quorum(weight).then_some(Event::PolkaNil)
    }

    /// L34.
    fn polka_any_event(&self) -> Option<Event> {
        let total = self
            .votes
            .tally(self.state.round, VoteKind::Prevote)?
            .total();
        (!self.fired.polka_any && self.is_quorum(total)).then_some(Event::PolkaAny)
    }

    /// L47.
    fn precommit_any_event(&self) -> Option<Event> {
        let total = self
            .votes
            .tally(self.state.round, VoteKind::Precommit)?
            .total();
        (!self.fired.precommit_any && self.is_quorum(total)).then_some(Event::PrecommitAny)
    }

    /// Runs one event through the state machine and carries out its actions.
    pub(super) fn apply_event(&mut self, event: Event, out: &mut Vec<Output>) {
        match event {
            Event::PolkaAny => self.fired.polka_any = true,
            Event::ProposalAndPolkaCurrent { .. } => self.fired.polka_value = true,
            Event::PrecommitAny => self.fired.precommit_any = true,
            _ => {}
        }
        let transition = apply(&self.state, event);
        let before = std::mem::replace(&mut self.state, transition.state);
        if self.state.round != before.round {
            self.fired = Fired::default();
            self.value_request = None;
        }
        if self.state.valid != before.valid {
            if let Some(valid) = self.state.valid {
                self.persist_polka(valid, out);
            }
        }
        for action in transition.actions {
            self.perform(action, out);
        }
    }

    fn perform(&mut self, action: Action, out: &mut Vec<Output>) {
        let (height, round) = (self.state.height, self.state.round);
        match action {
            Action::RequestValue => {
                if let Some(proposal) = self.own_proposals.get(&round) {
                    // Signed before a crash: send that one again, never a second one.
                    out.push(Output::BroadcastProposal(*proposal));
                } else {
                    self.value_request = Some(round);
                    out.push(Output::RequestValue { height, round });
                }
            }
            Action::Propose { value, pol_round } => self.propose(value, pol_round, out),
            Action::Prevote(value) => self.vote(VoteKind::Prevote, value, out),
            Action::Precommit(value) => self.vote(VoteKind::Precommit, value, out),
            Action::ScheduleTimeout(step) => out.push(Output::ScheduleTimeout {
                timeout: Timeout {
                    height,
                    round,
                    step,
                },
                duration_ms: self.timeouts.get(step).duration_ms(round),
            }),
            Action::Decide(decided) => {
                let commit = self
                    .votes
                    .tally(decided.round, VoteKind::Precommit)
                    .map(|t| t.votes_for(Some(decided.value)))
                    .unwrap_or_default();
                out.push(Output::Decide(Decision {
                    height,
                    round: decided.round,
                    value: decided.value,
                    commit,
                }));
            }
            Action::StartRound(next) => {
                let is_proposer = self.is_proposer(next);
                self.apply_event(
                    Event::NewRound {
                        round: next,
                        is_proposer,
                    },
                    out,
                );
            }
        }
    }

    pub(super) fn is_proposer(&self, round: Round) -> bool {
        self.own_index == Some(self.validators.proposer(self.state.height, round))
    }

    /// L19, never signing two proposals for one round.
    fn propose(&mut self, value: ValueId, pol_round: Option<Round>, out: &mut Vec<Output>) {
        let Some(me) = self.own_index else { return };
        let round = self.state.round;
        if let Some(existing) = self.own_proposals.get(&round) {
            out.push(Output::BroadcastProposal(*existing));
            return;
        }
        let proposal = Proposal {
            height: self.state.height,
            round,
            value,
            pol_round,
            proposer: me,
        };
        self.own_proposals.insert(round, proposal);
        out.push(Output::PersistWal(WalEntry::Proposal(proposal)));
        out.push(Output::BroadcastProposal(proposal));
    }

    /// Signs (through the node) a vote of the current round, never two different ones for
    /// one round and kind.
    fn vote(&mut self, kind: VoteKind, value: Option<ValueId>, out: &mut Vec<Output>) {
        let Some(me) = self.own_index else { return };
        let round = self.state.round;
        let vote = Vote {
            height: self.state.height,
            round,
            kind,
            value,
            validator: me,
        };
        match self.own_votes.get(&(round, kind)) {
            Some(signed) if *signed == value => out.push(Output::BroadcastVote(vote)),
            Some(signed) => out.push(Output::Dropped(DropReason::OwnVoteConflict {
                round,
                kind,
                signed: *signed,
                refused: value,
            })),
            None => {
                self.own_votes.insert((round, kind), value);
                #[cfg(feature = "planted-bugs")]
                if self.state.planted_bug == Some(PlantedBug::BroadcastBeforePersist) {
                    out.push(Output::BroadcastVote(vote));
                    out.push(Output::PersistWal(WalEntry::Vote(vote)));
                    return;
                }
                out.push(Output::PersistWal(WalEntry::Vote(vote)));
                out.push(Output::BroadcastVote(vote));
            }
        }
    }

    /// Persists the prevotes behind a new valid value (L36, L42–L43).
    /// Observers sign nothing and keep no WAL.
    fn persist_polka(&mut self, valid: RoundValue, out: &mut Vec<Output>) {
        if self.own_index.is_none() {
            return;
        }
        let prevotes = self
            .votes
            .tally(valid.round, VoteKind::Prevote)
            .map(|t| t.votes_for(Some(valid.value)))
            .unwrap_or_default();
        out.push(Output::PersistWal(WalEntry::Polka {
            height: self.state.height,
            round: valid.round,
            value: valid.value,
            prevotes,
        }));
    }

    /// Counts a vote recovered from the WAL (restart), without evaluating rules.
    pub(super) fn count_recovered(&mut self, vote: SignedVote, power: u64) {
        let _ = self.votes.add(vote, power, &self.validators);
    }

    pub(super) fn recovered_weight(&self, round: Round, value: ValueId) -> u64 {
        self.votes.weight(round, VoteKind::Prevote, Some(value))
    }
}
