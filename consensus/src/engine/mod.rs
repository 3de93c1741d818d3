//! The driver: validates and stores messages, counts votes, turns thresholds into state
//! machine events and state machine actions into [`Output`]s for the node.

mod buffer;
mod height;
mod restore;

#[cfg(feature = "planted-bugs")]
use crate::planted::PlantedBug;
use crate::state_machine::Step;
use crate::types::{
    Height, Proposal, Round, RoundValue, SignedVote, Timeout, TimeoutStep, ValidatorAddress,
    ValidatorIndex, ValueId, Vote, VoteKind,
};
use crate::validators::ValidatorSet;
use crate::votes::Equivocation;
use crate::wal::WalEntry;

use buffer::{Message, NextHeightBuffer};
use height::HeightState;

/// How long one step's timeout lasts: `base_ms + delta_ms * round`, so later rounds of a
/// troubled height wait longer and eventually outlast any message delay (the paper's
/// assumption for liveness after GST).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StepTimeout {
    /// Duration in round 0.
    pub base_ms: u64,
    /// Added per round.
    pub delta_ms: u64,
}

impl StepTimeout {
    /// The duration in `round`. Saturates at `u64::MAX` milliseconds instead of
    /// overflowing (half a billion years: effectively "never").
    pub fn duration_ms(&self, round: Round) -> u64 {
        self.base_ms
            .saturating_add(self.delta_ms.saturating_mul(u64::from(round.get())))
    }
}

/// The three timeouts of Algorithm 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeoutConfig {
    /// `timeoutPropose`: how long to wait for the round's proposal (L21).
    pub propose: StepTimeout,
    /// `timeoutPrevote`: how long to wait after `2f + 1` prevotes of any kind (L35).
    pub prevote: StepTimeout,
    /// `timeoutPrecommit`: how long to wait after `2f + 1` precommits of any kind (L48).
    pub precommit: StepTimeout,
}

impl TimeoutConfig {
    /// The timeout of `step`.
    pub fn get(&self, step: TimeoutStep) -> StepTimeout {
        match step {
            TimeoutStep::Propose => self.propose,
            TimeoutStep::Prevote => self.prevote,
            TimeoutStep::Precommit => self.precommit,
        }
    }
}

impl Default for TimeoutConfig {
    /// CometBFT's defaults: 3 s (+0.5 s per round) for the proposal, 1 s (+0.5 s) for each
    /// voting step.
    fn default() -> Self {
        Self {
            propose: StepTimeout {
                base_ms: 3000,
                delta_ms: 500,
            },
            prevote: StepTimeout {
                base_ms: 1000,
                delta_ms: 500,
            },
            precommit: StepTimeout {
                base_ms: 1000,
                delta_ms: 500,
            },
        }
    }
}

/// How an engine is set up. Build it with [`EngineConfig::new`] and adjust fields.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EngineConfig {
    /// This validator's address; at each height the engine looks up its index in that
    /// height's validator set. A node whose address is not in the set follows consensus
    /// without voting.
    pub address: ValidatorAddress,
    /// Timeout durations.
    pub timeouts: TimeoutConfig,
    /// Test-only: break one rule on purpose, see [`PlantedBug`]. `None` by default.
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<PlantedBug>,
}

impl EngineConfig {
    /// A configuration with the default timeouts.
    pub fn new(address: ValidatorAddress) -> Self {
        Self {
            address,
            timeouts: TimeoutConfig::default(),
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
        }
    }
}

/// What the node tells the engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Start `height` with its validator set (first call, after every decision, after block
    /// sync, and after a restart). `wal` holds the WAL entries the node recovered with
    /// [`crate::wal::decode_records`] (empty unless restarting); entries of lower heights
    /// are ignored.
    StartHeight {
        /// Must be above the current height.
        height: Height,
        /// The validators of `height`.
        validators: ValidatorSet,
        /// Recovered WAL entries.
        wal: Vec<WalEntry>,
    },
    /// A proposal whose signature the node has checked (`proposal.proposer` is the
    /// authenticated sender), with the node's verdict on the proposed block: the paper's
    /// `valid(v)`. This validator's own proposals come back this way too (see [`Output`]).
    Proposal {
        /// The proposal.
        proposal: Proposal,
        /// `valid(v)`.
        valid: bool,
    },
    /// A vote whose signature the node has checked (`vote.validator` is the signer).
    /// This validator's own votes come back this way too, signed (see [`Output`]).
    Vote(SignedVote),
    /// The answer to [`Output::RequestValue`]: the value to propose.
    ValueReady {
        /// As requested.
        height: Height,
        /// As requested.
        round: Round,
        /// The value's id.
        value: ValueId,
    },
    /// A timeout scheduled by [`Output::ScheduleTimeout`] has elapsed.
    TimeoutElapsed(Timeout),
}

/// A decided value with the precommits that decided it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The decided height.
    pub height: Height,
    /// The round the value was decided in.
    pub round: Round,
    /// The decided value.
    pub value: ValueId,
    /// Precommits for `value` in `round` from validators holding more than two thirds of
    /// the power, with their signatures: the commit certificate.
    pub commit: Vec<SignedVote>,
}

/// What the engine asks the node to do.
///
/// # Contract
///
/// [`Engine::process`] returns outputs in order, and the node carries them out in that
/// order:
///
/// 1. [`Output::PersistWal`] must be durable (appended and synced) before any later output
///    of the same batch is carried out. A PersistWal always precedes the broadcast it
///    guards, so a crash never leaves a signed message the WAL does not know about.
///    Consecutive PersistWal outputs may be written with one sync.
/// 2. [`Output::BroadcastProposal`] and [`Output::BroadcastVote`] carry unsigned messages:
///    the node signs them, sends them to every validator, and also hands them back to this
///    engine as [`Input::Proposal`] (with `valid: true` for its own block) and
///    [`Input::Vote`]. The engine counts its own votes only when they come back signed, so
///    they can appear in commit certificates like anyone's.
/// 3. The node resends messages as its gossip sees fit (to peers that fell behind); the
///    engine ignores duplicates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Append this entry to the WAL and sync before carrying out the next output.
    PersistWal(WalEntry),
    /// Sign and send this proposal, then hand it back as an input.
    BroadcastProposal(Proposal),
    /// Sign and send this vote, then hand it back as an input.
    BroadcastVote(Vote),
    /// Call back with [`Input::TimeoutElapsed`] after `duration_ms`.
    ScheduleTimeout {
        /// What to hand back.
        timeout: Timeout,
        /// How long to wait.
        duration_ms: u64,
    },
    /// This validator proposes in `round`: answer with [`Input::ValueReady`].
    RequestValue {
        /// Height to propose at.
        height: Height,
        /// Round to propose in.
        round: Round,
    },
    /// The height is decided. Store the block with its commit, then start the next height
    /// with [`Input::StartHeight`].
    Decide(Decision),
    /// A validator signed two different votes for one step; commit the evidence on chain.
    Evidence(Equivocation),
    /// A message or answer was not used, for this reason (for the node's logs).
    Dropped(DropReason),
}

/// Why the engine dropped a message or answer. Every variant is expected in normal
/// operation (late messages, Byzantine senders) except [`DropReason::OwnVoteConflict`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    /// The message belongs to a height this validator has finished.
    #[error("message for height {height} arrived at height {current}, which is past it")]
    StaleHeight {
        /// The message's height.
        height: Height,
        /// The engine's height.
        current: Height,
    },
    /// The message is more than one height ahead.
    #[error(
        "message for height {height} is more than one height ahead of {current}; \
         block sync has to catch this validator up"
    )]
    HeightTooFarAhead {
        /// The message's height.
        height: Height,
        /// The engine's height.
        current: Height,
    },
    /// The sender has filled its share of the next-height buffer.
    #[error(
        "validator {sender} already has {max} messages buffered for height {height}; \
         further ones are dropped until this validator reaches that height"
    )]
    NextHeightQuotaFull {
        /// The sender.
        sender: ValidatorIndex,
        /// The next height.
        height: Height,
        /// [`crate::limits::NEXT_HEIGHT_MESSAGES_PER_VALIDATOR_MAX`].
        max: usize,
    },
    /// The message's round is beyond the stored window.
    #[error(
        "message of round {round} is more than {window} rounds ahead of round {current}; \
         its sender still counts towards the round skip"
    )]
    RoundTooFarAhead {
        /// The message's round.
        round: Round,
        /// The engine's round.
        current: Round,
        /// [`crate::limits::FUTURE_ROUNDS_MAX`].
        window: u32,
    },
    /// A proposal from a validator that is not the round's proposer.
    #[error("proposal for round {round} from validator {sender}; the proposer is {proposer}")]
    NotProposer {
        /// The proposal's round.
        round: Round,
        /// Its sender.
        sender: ValidatorIndex,
        /// `proposer(h, round)`.
        proposer: ValidatorIndex,
    },
    /// A proposal whose proof-of-lock round is not below its round.
    #[error(
        "proposal for round {round} names proof-of-lock round {pol_round}, which must be \
         earlier than the proposal's round"
    )]
    InvalidPolRound {
        /// The proposal's round.
        round: Round,
        /// Its `vr`.
        pol_round: Round,
    },
    /// A second proposal from the proposer that no votes back yet.
    #[error(
        "another proposal for round {round} (value {value}) from the proposer, with no votes \
         behind it yet: the proposer equivocates, or gossip has to resend it later"
    )]
    UnjustifiedProposal {
        /// The round.
        round: Round,
        /// The proposed value.
        value: ValueId,
    },
    /// A message names a validator index outside the height's set (only for messages
    /// buffered before their height's set was known).
    #[error(
        "validator index {sender} is not in the set of height {height} ({validators} validators)"
    )]
    UnknownValidator {
        /// The index.
        sender: ValidatorIndex,
        /// The height.
        height: Height,
        /// Size of the set.
        validators: usize,
    },
    /// A [`Input::ValueReady`] the engine no longer waits for.
    #[error(
        "value for height {height} round {round} was not requested or came too late; \
         the engine has moved on"
    )]
    UnrequestedValue {
        /// As given.
        height: Height,
        /// As given.
        round: Round,
    },
    /// The engine refused to sign a vote conflicting with one it already signed. This
    /// indicates a bug in the engine and should be logged at error level.
    #[error(
        "refused to sign a {kind} for {refused:?} in round {round}: this validator already \
         signed one for {signed:?} (engine bug, please report)"
    )]
    OwnVoteConflict {
        /// The round.
        round: Round,
        /// The vote kind.
        kind: VoteKind,
        /// The value already signed.
        signed: Option<ValueId>,
        /// The value refused.
        refused: Option<ValueId>,
    },
}

/// The node broke the engine's contract; the input was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// An input other than [`Input::StartHeight`] before any height was started.
    #[error("the engine has no height yet; start one with Input::StartHeight first")]
    NotStarted,
    /// [`Input::StartHeight`] for a height not above the current one.
    #[error("cannot start height {requested}: already at height {current}; heights only increase")]
    HeightNotIncreasing {
        /// Height given.
        requested: Height,
        /// The engine's height.
        current: Height,
    },
    /// A message at the current height names a validator outside its set.
    #[error(
        "validator index {sender} is not in the set of height {height} ({validators} \
         validators); the node must map authenticated senders to indices of that set"
    )]
    UnknownValidator {
        /// The index.
        sender: ValidatorIndex,
        /// The height.
        height: Height,
        /// Size of the set.
        validators: usize,
    },
    /// A WAL entry of a height above the one being started.
    #[error(
        "WAL entry of height {entry} is ahead of height {height} being started: the ledger \
         lost a decided block, or the WAL belongs to another chain"
    )]
    WalAheadOfHeight {
        /// The entry's height.
        entry: Height,
        /// The height being started.
        height: Height,
    },
    /// WAL entries for a height in which this validator does not vote.
    #[error("the WAL has entries for height {height}, where this validator is not in the set")]
    WalNotAValidator {
        /// The height.
        height: Height,
    },
    /// A WAL entry signed as another validator.
    #[error("WAL entry names validator {found}, but this validator is {own} at height {height}")]
    WalNotOwn {
        /// Index in the entry.
        found: ValidatorIndex,
        /// This validator's index.
        own: ValidatorIndex,
        /// The height.
        height: Height,
    },
    /// Two different own messages for the same step in the WAL.
    #[error("the WAL holds two different {what} for round {round}; the log is corrupt")]
    WalConflict {
        /// The round.
        round: Round,
        /// "prevotes", "precommits" or "proposals".
        what: &'static str,
    },
    /// A WAL polka entry that does not prove a polka.
    #[error("the WAL polka of round {round} is not 2f+1 prevotes for its value: {reason}")]
    WalInvalidPolka {
        /// The round.
        round: Round,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// A Tendermint validator (or observer) as a sans-IO state machine: the node feeds
/// [`Input`]s to [`Engine::process`] and carries out the returned [`Output`]s, following the
/// contract documented on [`Output`]. The engine reads no clock, does no I/O and draws no
/// randomness, so the same inputs always give the same outputs.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    current: Option<HeightState>,
    next_height: NextHeightBuffer,
}

impl Engine {
    /// An engine with no height yet; start one with [`Input::StartHeight`].
    pub fn new(config: EngineConfig) -> Self {
        Self {
            config,
            current: None,
            next_height: NextHeightBuffer::default(),
        }
    }

    /// Processes one input and returns the outputs to carry out, in order. An error means
    /// the node broke the input contract; the input was then not applied.
    pub fn process(&mut self, input: Input) -> Result<Vec<Output>, InputError> {
        let mut out = Vec::new();
        match input {
            Input::StartHeight {
                height,
                validators,
                wal,
            } => {
                self.start_height(height, validators, wal, &mut out)?;
            }
            Input::Proposal { proposal, valid } => {
                self.route(Message::Proposal { proposal, valid }, &mut out)?;
            }
            Input::Vote(vote) => self.route(Message::Vote(vote), &mut out)?,
            Input::ValueReady {
                height,
                round,
                value,
            } => {
                self.current_mut()?
                    .on_value_ready(height, round, value, &mut out);
            }
            Input::TimeoutElapsed(timeout) => {
                let current = self.current_mut()?;
                if timeout.height == current.state.height {
                    current.on_timeout(timeout.round, timeout.step, &mut out);
                }
            }
        }
        Ok(out)
    }

    fn current_mut(&mut self) -> Result<&mut HeightState, InputError> {
        self.current.as_mut().ok_or(InputError::NotStarted)
    }

    fn start_height(
        &mut self,
        height: Height,
        validators: ValidatorSet,
        wal: Vec<WalEntry>,
        out: &mut Vec<Output>,
    ) -> Result<(), InputError> {
        if let Some(current) = &self.current {
            if height <= current.state.height {
                return Err(InputError::HeightNotIncreasing {
                    requested: height,
                    current: current.state.height,
                });
            }
        }
        let mut next = HeightState::new(&self.config, height, validators);
        next.start(wal, out)?;
        self.current = Some(next);
        for message in self.next_height.take(height) {
            let current = self.current.as_mut().expect("just set");
            match current.check_sender(message.sender()) {
                Ok(power) => current.on_message(message, power, out),
                Err(reason) => out.push(Output::Dropped(reason)),
            }
        }
        Ok(())
    }

    /// Sends a peer message to the height it belongs to.
    fn route(&mut self, message: Message, out: &mut Vec<Output>) -> Result<(), InputError> {
        let current = self.current.as_mut().ok_or(InputError::NotStarted)?;
        let height = current.state.height;
        let message_height = message.height();
        if message_height == height {
            let power = current.check_sender(message.sender()).map_err(|_| {
                InputError::UnknownValidator {
                    sender: message.sender(),
                    height,
                    validators: current.validators.len(),
                }
            })?;
            current.on_message(message, power, out);
        } else if message_height < height {
            out.push(Output::Dropped(DropReason::StaleHeight {
                height: message_height,
                current: height,
            }));
        } else if message_height == height.next() {
            if let Err(reason) = self.next_height.push(message) {
                out.push(Output::Dropped(reason));
            }
        } else {
            out.push(Output::Dropped(DropReason::HeightTooFarAhead {
                height: message_height,
                current: height,
            }));
        }
        Ok(())
    }

    /// The current height, if one was started.
    pub fn height(&self) -> Option<Height> {
        self.current.as_ref().map(|c| c.state.height)
    }

    /// The current round (round 0 before any height was started).
    pub fn round(&self) -> Round {
        self.current.as_ref().map_or(Round::ZERO, |c| c.state.round)
    }

    /// The current step ([`Step::Unstarted`] before any height was started).
    pub fn step(&self) -> Step {
        self.current
            .as_ref()
            .map_or(Step::Unstarted, |c| c.state.step)
    }

    /// `lockedValue`/`lockedRound` of the current height.
    pub fn locked(&self) -> Option<RoundValue> {
        self.current.as_ref().and_then(|c| c.state.locked)
    }

    /// `validValue`/`validRound` of the current height.
    pub fn valid(&self) -> Option<RoundValue> {
        self.current.as_ref().and_then(|c| c.state.valid)
    }

    /// The decision of the current height, once made.
    pub fn decision(&self) -> Option<RoundValue> {
        self.current.as_ref().and_then(|c| c.state.decision)
    }

    /// The validator set of the current height.
    pub fn validators(&self) -> Option<&ValidatorSet> {
        self.current.as_ref().map(|c| &c.validators)
    }

    /// This validator's index at the current height (`None`: not a validator there).
    pub fn own_index(&self) -> Option<ValidatorIndex> {
        self.current.as_ref().and_then(|c| c.own_index)
    }

    /// The proposals stored for `round` of the current height (for gossip to peers).
    pub fn proposals(&self, round: Round) -> impl Iterator<Item = &Proposal> {
        self.current.iter().flat_map(move |c| c.proposals(round))
    }

    /// The proposal this validator signed for `round` of the current height, if any. It
    /// survives a restart (through the WAL), so the node can re-sign and resend it.
    pub fn own_proposal(&self, round: Round) -> Option<Proposal> {
        self.current
            .as_ref()
            .and_then(|c| c.own_proposals.get(&round).copied())
    }

    /// The votes this validator signed in `round` of the current height (prevote first).
    /// They survive a restart (through the WAL), so the node can re-sign and resend them to
    /// peers still in that round; signing the same vote again is not equivocation.
    pub fn own_votes(&self, round: Round) -> impl Iterator<Item = Vote> + '_ {
        let current = self.current.as_ref();
        [VoteKind::Prevote, VoteKind::Precommit]
            .into_iter()
            .filter_map(move |kind| {
                let current = current?;
                let value = *current.own_votes.get(&(round, kind))?;
                let validator = current.own_index?;
                Some(Vote {
                    height: current.state.height,
                    round,
                    kind,
                    value,
                    validator,
                })
            })
    }

    /// The counted votes of `kind` in `round` of the current height, by value and then
    /// validator (for gossip to peers that missed them).
    pub fn votes(&self, round: Round, kind: VoteKind) -> impl Iterator<Item = &SignedVote> {
        self.current.iter().flat_map(move |c| c.votes(round, kind))
    }
}
