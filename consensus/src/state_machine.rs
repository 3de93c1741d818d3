//! Algorithm 1 of "The latest gossip on BFT consensus" (Buchman, Kwon, Milosevic,
//! arXiv:1807.04938) as one pure function, [`apply`].
//!
//! The state machine sees one height. It does not count votes or look at messages: the
//! [driver](crate::Engine) does that and feeds it [`Event`]s, each of which is the guard of
//! one `upon` rule of the paper already found true ("a proposal from the proposer and
//! `2f + 1` prevotes for its value"). The state machine checks the remaining conditions on
//! its own variables (step, round, lock) and answers with the new state and the
//! [`Action`]s to carry out. Every arm of the `match` cites the lines it implements.
//!
//! Deliberate differences from the paper, each harmless for safety:
//! - L21: the proposer schedules `timeoutPropose` too (as CometBFT does), so a proposer
//!   whose node never answers the value request still prevotes nil and lets the round end.
//! - L52–L54 (next height, reset, `StartRound(0)`) are the node's: after a decision the
//!   state machine waits in [`Step::Commit`] until the node starts the next height with
//!   that height's validator set.
//! - L55: the driver's round skip fires when validators holding more than a third of the
//!   power have sent messages of rounds `>= r` (not necessarily all of round `r`), see
//!   [`Event::RoundSkip`].

#[cfg(feature = "planted-bugs")]
use crate::planted::PlantedBug;
use crate::types::{Height, Round, RoundValue, TimeoutStep, ValueId};

/// Where a validator is within a round (the paper's `step_p`), plus the two states around
/// it: before the height's first round starts, and after the height is decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Step {
    /// The height exists but `StartRound` (L10) has not run yet.
    Unstarted,
    /// `propose`: waiting for the round's proposal.
    Propose,
    /// `prevote`: this validator has prevoted in the round.
    Prevote,
    /// `precommit`: this validator has precommitted in the round.
    Precommit,
    /// The height is decided (L51); nothing changes until the next height starts.
    Commit,
}

/// The paper's per-height variables (L2–L9) for one height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// `h_p`.
    pub height: Height,
    /// `round_p`.
    pub round: Round,
    /// `step_p`.
    pub step: Step,
    /// `lockedValue_p` and `lockedRound_p`; `None` is the paper's `nil` / `-1`.
    pub locked: Option<RoundValue>,
    /// `validValue_p` and `validRound_p`; `None` is the paper's `nil` / `-1`.
    pub valid: Option<RoundValue>,
    /// `decision_p[h_p]`, with the round it was decided in.
    pub decision: Option<RoundValue>,
    /// Test-only rule breakage, see [`PlantedBug`]. Always `None` outside planted-bug tests.
    #[cfg(feature = "planted-bugs")]
    pub planted_bug: Option<PlantedBug>,
}

impl State {
    /// The state of a height before its first round (L2–L9).
    pub fn new(height: Height) -> Self {
        Self {
            height,
            round: Round::ZERO,
            step: Step::Unstarted,
            locked: None,
            valid: None,
            decision: None,
            #[cfg(feature = "planted-bugs")]
            planted_bug: None,
        }
    }

    /// The lock as the prevote rules (L23, L29) see it.
    fn lock_for_prevote(&self) -> Option<RoundValue> {
        #[cfg(feature = "planted-bugs")]
        if self.planted_bug == Some(PlantedBug::IgnoreLock) {
            return None;
        }
        self.locked
    }
}

/// What the driver observed: the guard of one `upon` rule of Algorithm 1 (or a timeout or
/// an answer from the node). Events about "the round" refer to the current round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// L11 `StartRound(round)`; `is_proposer` is `proposer(h_p, round) = p`.
    NewRound {
        /// The round to start.
        round: Round,
        /// Whether this validator proposes in it.
        is_proposer: bool,
    },
    /// L18: `getValue()` returned `value` (answer to [`Action::RequestValue`]).
    ValueReady(ValueId),
    /// L22: `⟨PROPOSAL, h_p, round_p, v, -1⟩` from the proposer; `valid` is `valid(v)`.
    Proposal {
        /// `v`.
        value: ValueId,
        /// `valid(v)`.
        valid: bool,
    },
    /// L28: `⟨PROPOSAL, h_p, round_p, v, vr⟩` from the proposer and `2f + 1`
    /// `⟨PREVOTE, h_p, vr, id(v)⟩`, with `vr < round_p`.
    ProposalAndPolkaPrevious {
        /// `v`.
        value: ValueId,
        /// `valid(v)`.
        valid: bool,
        /// `vr`.
        pol_round: Round,
    },
    /// L34: `2f + 1` `⟨PREVOTE, h_p, round_p, ∗⟩`, for the first time in the round.
    PolkaAny,
    /// L36: `⟨PROPOSAL, h_p, round_p, v, ∗⟩` and `2f + 1` `⟨PREVOTE, h_p, round_p, id(v)⟩`,
    /// for the first time in the round.
    ProposalAndPolkaCurrent {
        /// `v`.
        value: ValueId,
        /// `valid(v)`.
        valid: bool,
    },
    /// L44: `2f + 1` `⟨PREVOTE, h_p, round_p, nil⟩`.
    PolkaNil,
    /// L47: `2f + 1` `⟨PRECOMMIT, h_p, round_p, ∗⟩`, for the first time in the round.
    PrecommitAny,
    /// L49: `⟨PROPOSAL, h_p, r, v, ∗⟩` and `2f + 1` `⟨PRECOMMIT, h_p, r, id(v)⟩`, any round.
    ProposalAndCommit {
        /// `r`.
        round: Round,
        /// `v`.
        value: ValueId,
        /// `valid(v)`.
        valid: bool,
    },
    /// L55: validators with more than a third of the power are in rounds `>= round`,
    /// `round > round_p`.
    RoundSkip(Round),
    /// L57 `OnTimeoutPropose(h_p, round)`.
    TimeoutPropose(Round),
    /// L61 `OnTimeoutPrevote(h_p, round)`.
    TimeoutPrevote(Round),
    /// L65 `OnTimeoutPrecommit(h_p, round)`.
    TimeoutPrecommit(Round),
}

/// What the state machine asks the driver to do, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// L18 `getValue()`: ask the node for a value to propose.
    RequestValue,
    /// L19 `broadcast ⟨PROPOSAL, h_p, round_p, value, pol_round⟩`.
    Propose {
        /// The value.
        value: ValueId,
        /// `validRound_p`, `None` for `-1`.
        pol_round: Option<Round>,
    },
    /// `broadcast ⟨PREVOTE, h_p, round_p, value⟩` (L24, L26, L30, L32, L59).
    Prevote(Option<ValueId>),
    /// `broadcast ⟨PRECOMMIT, h_p, round_p, value⟩` (L40, L45, L63).
    Precommit(Option<ValueId>),
    /// Schedule the timeout of `step` for the current round (L21, L35, L48).
    ScheduleTimeout(TimeoutStep),
    /// L51: decide.
    Decide(RoundValue),
    /// `StartRound(round)` (L56, L67): the driver answers with [`Event::NewRound`].
    StartRound(Round),
}

/// The result of [`apply`]: the next state and the actions to carry out, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The state after the event.
    pub state: State,
    /// Actions in the order the paper performs them.
    pub actions: Vec<Action>,
}

impl Transition {
    fn unchanged(state: &State) -> Self {
        Self {
            state: state.clone(),
            actions: Vec::new(),
        }
    }

    fn to(state: State, actions: Vec<Action>) -> Self {
        Self { state, actions }
    }
}

/// Applies one event to the state of the current height. Pure: the same state and event
/// always give the same transition. Events whose remaining conditions do not hold leave
/// the state unchanged and produce no actions.
pub fn apply(state: &State, event: Event) -> Transition {
    use Event as E;
    use Step as S;
    match (state.step, event) {
        // L49 guard `decision_p[h_p] = nil`: once decided, the height is over.
        (S::Commit, _) => Transition::unchanged(state),

        // L49: upon ⟨PROPOSAL, h_p, r, v, ∗⟩ from proposer(h_p, r) AND 2f+1
        // ⟨PRECOMMIT, h_p, r, id(v)⟩ while decision_p[h_p] = nil.
        (
            _,
            E::ProposalAndCommit {
                round,
                value,
                valid,
            },
        ) => decide(state, round, value, valid),

        // L10 upon start do StartRound(0), L56 and L67 StartRound(round).
        (step, E::NewRound { round, is_proposer })
            if step == S::Unstarted || round > state.round =>
        {
            start_round(state, round, is_proposer)
        }

        // Nothing else happens before the height's first round.
        (S::Unstarted, _) => Transition::unchanged(state),

        // L18–L19: getValue() returned; broadcast ⟨PROPOSAL, h_p, round_p, v, -1⟩.
        (S::Propose, E::ValueReady(value)) => Transition::to(
            state.clone(),
            vec![Action::Propose {
                value,
                pol_round: None,
            }],
        ),

        // L22: upon ⟨PROPOSAL, h_p, round_p, v, -1⟩ from proposer(h_p, round_p)
        // while step_p = propose.
        (S::Propose, E::Proposal { value, valid }) => prevote_fresh(state, value, valid),

        // L28: upon ⟨PROPOSAL, h_p, round_p, v, vr⟩ from proposer(h_p, round_p) AND 2f+1
        // ⟨PREVOTE, h_p, vr, id(v)⟩ while step_p = propose ∧ (vr ≥ 0 ∧ vr < round_p).
        (
            S::Propose,
            E::ProposalAndPolkaPrevious {
                value,
                valid,
                pol_round,
            },
        ) if pol_round < state.round => prevote_with_polka(state, value, valid, pol_round),

        // L34: upon 2f+1 ⟨PREVOTE, h_p, round_p, ∗⟩ while step_p = prevote for the first
        // time.
        (S::Prevote, E::PolkaAny) => Transition::to(
            state.clone(),
            vec![Action::ScheduleTimeout(TimeoutStep::Prevote)],
        ),

        // L36: upon ⟨PROPOSAL, h_p, round_p, v, ∗⟩ from proposer(h_p, round_p) AND 2f+1
        // ⟨PREVOTE, h_p, round_p, id(v)⟩ while valid(v) ∧ step_p ≥ prevote for the first
        // time.
        (S::Prevote | S::Precommit, E::ProposalAndPolkaCurrent { value, valid: true }) => {
            lock_or_update_valid(state, value)
        }

        // L44: upon 2f+1 ⟨PREVOTE, h_p, round_p, nil⟩ while step_p = prevote.
        (S::Prevote, E::PolkaNil) => precommit(state, None),

        // L47: upon 2f+1 ⟨PRECOMMIT, h_p, round_p, ∗⟩ for the first time.
        (S::Propose | S::Prevote | S::Precommit, E::PrecommitAny) => Transition::to(
            state.clone(),
            vec![Action::ScheduleTimeout(TimeoutStep::Precommit)],
        ),

        // L55: upon f+1 ⟨∗, h_p, round, ∗, ∗⟩ with round > round_p do StartRound(round).
        (_, E::RoundSkip(round)) if round > state.round => {
            Transition::to(state.clone(), vec![Action::StartRound(round)])
        }

        // L57–L60: OnTimeoutPropose(h_p, round) with round = round_p ∧ step_p = propose.
        (S::Propose, E::TimeoutPropose(round)) if round == state.round => prevote(state, None),

        // L61–L64: OnTimeoutPrevote(h_p, round) with round = round_p ∧ step_p = prevote.
        (S::Prevote, E::TimeoutPrevote(round)) if round == state.round => precommit(state, None),

        // L65–L67: OnTimeoutPrecommit(h_p, round) with round = round_p: StartRound(round+1).
        (_, E::TimeoutPrecommit(round)) if round == state.round => {
            Transition::to(state.clone(), vec![Action::StartRound(round.next())])
        }

        // Any other combination: a guard of the paper does not hold.
        _ => Transition::unchanged(state),
    }
}

/// L11–L21 `StartRound(round)`.
fn start_round(state: &State, round: Round, is_proposer: bool) -> Transition {
    // L12–L13.
    let next = State {
        round,
        step: Step::Propose,
        ..state.clone()
    };
    let mut actions = Vec::with_capacity(2);
    if is_proposer {
        match state.valid {
            // L15–L16, L19: re-propose validValue with validRound.
            Some(valid) => actions.push(Action::Propose {
                value: valid.value,
                pol_round: Some(valid.round),
            }),
            // L18: proposal ← getValue(); L19 follows on Event::ValueReady.
            None => actions.push(Action::RequestValue),
        }
    }
    // L21 (for the proposer as well, see the module docs).
    actions.push(Action::ScheduleTimeout(TimeoutStep::Propose));
    Transition::to(next, actions)
}

/// L23–L27.
fn prevote_fresh(state: &State, value: ValueId, valid: bool) -> Transition {
    // L23: valid(v) ∧ (lockedRound_p = -1 ∨ lockedValue_p = v).
    let acceptable = match state.lock_for_prevote() {
        None => true,
        Some(locked) => locked.value == value,
    };
    // L24 prevote id(v), else L26 prevote nil; L27 step_p ← prevote.
    prevote(state, (valid && acceptable).then_some(value))
}

/// L29–L33.
fn prevote_with_polka(state: &State, value: ValueId, valid: bool, pol_round: Round) -> Transition {
    // L29: valid(v) ∧ (lockedRound_p ≤ vr ∨ lockedValue_p = v).
    let acceptable = match state.lock_for_prevote() {
        None => true,
        Some(locked) => locked.round <= pol_round || locked.value == value,
    };
    // L30 prevote id(v), else L32 prevote nil; L33 step_p ← prevote.
    prevote(state, (valid && acceptable).then_some(value))
}

/// L36–L43 for a valid `v`: in step prevote lock and precommit (L37–L41); in either step
/// remember the value as valid (L42–L43).
fn lock_or_update_valid(state: &State, value: ValueId) -> Transition {
    let here = RoundValue {
        round: state.round,
        value,
    };
    if state.step == Step::Prevote {
        // L38–L41 and L42–L43.
        let next = State {
            locked: Some(here),
            valid: Some(here),
            step: Step::Precommit,
            ..state.clone()
        };
        Transition::to(next, vec![Action::Precommit(Some(value))])
    } else {
        // L42–L43 only.
        Transition::to(
            State {
                valid: Some(here),
                ..state.clone()
            },
            Vec::new(),
        )
    }
}

/// L50–L51: decide `v` if it is valid.
fn decide(state: &State, round: Round, value: ValueId, valid: bool) -> Transition {
    if !valid {
        return Transition::unchanged(state);
    }
    let decision = RoundValue { round, value };
    let next = State {
        decision: Some(decision),
        step: Step::Commit,
        ..state.clone()
    };
    Transition::to(next, vec![Action::Decide(decision)])
}

/// Broadcast a prevote and move to step prevote.
fn prevote(state: &State, value: Option<ValueId>) -> Transition {
    let next = State {
        step: Step::Prevote,
        ..state.clone()
    };
    Transition::to(next, vec![Action::Prevote(value)])
}

/// Broadcast a precommit and move to step precommit.
fn precommit(state: &State, value: Option<ValueId>) -> Transition {
    let next = State {
        step: Step::Precommit,
        ..state.clone()
    };
    Transition::to(next, vec![Action::Precommit(value)])
}
