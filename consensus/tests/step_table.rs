//! Table-driven tests of the pure state machine: one row per rule of Algorithm 1 (and per
//! guard that must keep a rule from firing). Each row names the paper lines it exercises.

use custos_consensus::state_machine::{Action, Event, State, apply};
use custos_consensus::{Height, Round, RoundValue, Step, TimeoutStep, ValueId};

const V: ValueId = ValueId([1; 32]);
const W: ValueId = ValueId([2; 32]);

fn r(round: u32) -> Round {
    Round::new(round)
}

fn at(round: u32, step: Step) -> State {
    State {
        round: r(round),
        step,
        ..State::new(Height::new(7))
    }
}

fn rv(round: u32, value: ValueId) -> Option<RoundValue> {
    Some(RoundValue {
        round: r(round),
        value,
    })
}

fn locked(mut state: State, round: u32, value: ValueId) -> State {
    state.locked = rv(round, value);
    state.valid = rv(round, value);
    state
}

fn with_valid(mut state: State, round: u32, value: ValueId) -> State {
    state.valid = rv(round, value);
    state
}

struct Row {
    lines: &'static str,
    given: State,
    event: Event,
    then: State,
    actions: Vec<Action>,
}

/// A row whose event must leave the state alone.
fn ignored(lines: &'static str, given: State, event: Event) -> Row {
    Row {
        lines,
        then: given.clone(),
        given,
        event,
        actions: vec![],
    }
}

fn rows() -> Vec<Row> {
    use Action as A;
    use Event as E;
    use Step as S;
    let propose = |value, pol_round| A::Propose { value, pol_round };
    let timeout = A::ScheduleTimeout;
    vec![
        // StartRound, L10–L21.
        Row {
            lines: "L10-L18,L21 first round, proposer without validValue asks for a value",
            given: State::new(Height::new(7)),
            event: E::NewRound {
                round: r(0),
                is_proposer: true,
            },
            then: at(0, S::Propose),
            actions: vec![A::RequestValue, timeout(TimeoutStep::Propose)],
        },
        Row {
            lines: "L15-L16,L19 proposer re-proposes validValue with validRound",
            given: with_valid(at(1, S::Precommit), 1, V),
            event: E::NewRound {
                round: r(2),
                is_proposer: true,
            },
            then: with_valid(at(2, S::Propose), 1, V),
            actions: vec![propose(V, Some(r(1))), timeout(TimeoutStep::Propose)],
        },
        Row {
            lines: "L20-L21 non-proposer schedules timeoutPropose",
            given: at(3, S::Precommit),
            event: E::NewRound {
                round: r(4),
                is_proposer: false,
            },
            then: at(4, S::Propose),
            actions: vec![timeout(TimeoutStep::Propose)],
        },
        ignored(
            "L55/L67 StartRound never goes back to an earlier round",
            at(3, S::Prevote),
            E::NewRound {
                round: r(2),
                is_proposer: false,
            },
        ),
        ignored(
            "L11 StartRound of the current round is not restarted",
            at(3, S::Prevote),
            E::NewRound {
                round: r(3),
                is_proposer: true,
            },
        ),
        ignored(
            "L10 nothing happens before the first round starts",
            State::new(Height::new(7)),
            E::Proposal {
                value: V,
                valid: true,
            },
        ),
        // getValue, L18–L19.
        Row {
            lines: "L18-L19 the requested value is proposed with vr = -1",
            given: at(0, S::Propose),
            event: E::ValueReady(V),
            then: at(0, S::Propose),
            actions: vec![propose(V, None)],
        },
        ignored(
            "L19 a value arriving after the propose step is not proposed",
            at(0, S::Prevote),
            E::ValueReady(V),
        ),
        // L22–L27.
        Row {
            lines: "L22-L24,L27 valid proposal, not locked: prevote it",
            given: at(0, S::Propose),
            event: E::Proposal {
                value: V,
                valid: true,
            },
            then: at(0, S::Prevote),
            actions: vec![A::Prevote(Some(V))],
        },
        Row {
            lines: "L23-L24 locked on the proposed value: prevote it",
            given: locked(at(2, S::Propose), 1, V),
            event: E::Proposal {
                value: V,
                valid: true,
            },
            then: locked(at(2, S::Prevote), 1, V),
            actions: vec![A::Prevote(Some(V))],
        },
        Row {
            lines: "L23,L26 locked on another value: prevote nil",
            given: locked(at(2, S::Propose), 1, W),
            event: E::Proposal {
                value: V,
                valid: true,
            },
            then: locked(at(2, S::Prevote), 1, W),
            actions: vec![A::Prevote(None)],
        },
        Row {
            lines: "L23,L26 invalid value: prevote nil",
            given: at(0, S::Propose),
            event: E::Proposal {
                value: V,
                valid: false,
            },
            then: at(0, S::Prevote),
            actions: vec![A::Prevote(None)],
        },
        ignored(
            "L22 guard step = propose: a late proposal changes nothing",
            at(0, S::Prevote),
            E::Proposal {
                value: V,
                valid: true,
            },
        ),
        // L28–L33.
        Row {
            lines: "L28-L30 locked in a round before vr: prevote the re-proposed value",
            given: locked(at(3, S::Propose), 0, W),
            event: E::ProposalAndPolkaPrevious {
                value: V,
                valid: true,
                pol_round: r(1),
            },
            then: locked(at(3, S::Prevote), 0, W),
            actions: vec![A::Prevote(Some(V))],
        },
        Row {
            lines: "L29-L30 locked in round vr itself (lockedRound <= vr): prevote it",
            given: locked(at(3, S::Propose), 1, W),
            event: E::ProposalAndPolkaPrevious {
                value: V,
                valid: true,
                pol_round: r(1),
            },
            then: locked(at(3, S::Prevote), 1, W),
            actions: vec![A::Prevote(Some(V))],
        },
        Row {
            lines: "L29,L32 locked after vr on another value: prevote nil",
            given: locked(at(3, S::Propose), 2, W),
            event: E::ProposalAndPolkaPrevious {
                value: V,
                valid: true,
                pol_round: r(1),
            },
            then: locked(at(3, S::Prevote), 2, W),
            actions: vec![A::Prevote(None)],
        },
        Row {
            lines: "L29-L30 locked after vr on the same value: prevote it",
            given: locked(at(3, S::Propose), 2, V),
            event: E::ProposalAndPolkaPrevious {
                value: V,
                valid: true,
                pol_round: r(1),
            },
            then: locked(at(3, S::Prevote), 2, V),
            actions: vec![A::Prevote(Some(V))],
        },
        Row {
            lines: "L29,L32 invalid re-proposed value: prevote nil",
            given: at(3, S::Propose),
            event: E::ProposalAndPolkaPrevious {
                value: V,
                valid: false,
                pol_round: r(1),
            },
            then: at(3, S::Prevote),
            actions: vec![A::Prevote(None)],
        },
        ignored(
            "L28 guard vr < round_p",
            at(3, S::Propose),
            E::ProposalAndPolkaPrevious {
                value: V,
                valid: true,
                pol_round: r(3),
            },
        ),
        ignored(
            "L28 guard step = propose",
            at(3, S::Prevote),
            E::ProposalAndPolkaPrevious {
                value: V,
                valid: true,
                pol_round: r(1),
            },
        ),
        // L34–L35.
        Row {
            lines: "L34-L35 any 2f+1 prevotes in step prevote: schedule timeoutPrevote",
            given: at(1, S::Prevote),
            event: E::PolkaAny,
            then: at(1, S::Prevote),
            actions: vec![timeout(TimeoutStep::Prevote)],
        },
        ignored("L34 guard step = prevote", at(1, S::Propose), E::PolkaAny),
        // L36–L43.
        Row {
            lines: "L36-L43 polka for a valid proposal in step prevote: lock, precommit, valid",
            given: at(2, S::Prevote),
            event: E::ProposalAndPolkaCurrent {
                value: V,
                valid: true,
            },
            then: locked(at(2, S::Precommit), 2, V),
            actions: vec![A::Precommit(Some(V))],
        },
        Row {
            lines: "L36,L42-L43 in step precommit only validValue/validRound move",
            given: locked(at(2, S::Precommit), 1, W),
            event: E::ProposalAndPolkaCurrent {
                value: V,
                valid: true,
            },
            then: State {
                valid: rv(2, V),
                ..locked(at(2, S::Precommit), 1, W)
            },
            actions: vec![],
        },
        ignored(
            "L36 guard valid(v)",
            at(2, S::Prevote),
            E::ProposalAndPolkaCurrent {
                value: V,
                valid: false,
            },
        ),
        ignored(
            "L36 guard step >= prevote",
            at(2, S::Propose),
            E::ProposalAndPolkaCurrent {
                value: V,
                valid: true,
            },
        ),
        // L44–L46.
        Row {
            lines: "L44-L46 2f+1 nil prevotes: precommit nil",
            given: locked(at(2, S::Prevote), 1, W),
            event: E::PolkaNil,
            then: locked(at(2, S::Precommit), 1, W),
            actions: vec![A::Precommit(None)],
        },
        ignored("L44 guard step = prevote", at(2, S::Precommit), E::PolkaNil),
        // L47–L48.
        Row {
            lines: "L47-L48 any 2f+1 precommits: schedule timeoutPrecommit (step propose)",
            given: at(2, S::Propose),
            event: E::PrecommitAny,
            then: at(2, S::Propose),
            actions: vec![timeout(TimeoutStep::Precommit)],
        },
        Row {
            lines: "L47-L48 any 2f+1 precommits: schedule timeoutPrecommit (step precommit)",
            given: at(2, S::Precommit),
            event: E::PrecommitAny,
            then: at(2, S::Precommit),
            actions: vec![timeout(TimeoutStep::Precommit)],
        },
        // L49–L54.
        Row {
            lines: "L49-L51 commit of the current round: decide",
            given: at(2, S::Precommit),
            event: E::ProposalAndCommit {
                round: r(2),
                value: V,
                valid: true,
            },
            then: State {
                decision: rv(2, V),
                ..at(2, S::Commit)
            },
            actions: vec![A::Decide(RoundValue {
                round: r(2),
                value: V,
            })],
        },
        Row {
            lines: "L49-L51 commit of an earlier round, in any step: decide",
            given: locked(at(5, S::Propose), 3, W),
            event: E::ProposalAndCommit {
                round: r(1),
                value: V,
                valid: true,
            },
            then: State {
                decision: rv(1, V),
                ..locked(at(5, S::Commit), 3, W)
            },
            actions: vec![A::Decide(RoundValue {
                round: r(1),
                value: V,
            })],
        },
        ignored(
            "L50 guard valid(v)",
            at(2, S::Precommit),
            E::ProposalAndCommit {
                round: r(2),
                value: V,
                valid: false,
            },
        ),
        ignored(
            "L49 guard decision = nil: decided once",
            State {
                decision: rv(2, V),
                ..at(2, S::Commit)
            },
            E::ProposalAndCommit {
                round: r(2),
                value: W,
                valid: true,
            },
        ),
        ignored(
            "L49 after deciding, timeouts change nothing",
            State {
                decision: rv(2, V),
                ..at(2, S::Commit)
            },
            E::TimeoutPrecommit(r(2)),
        ),
        // L55–L56.
        Row {
            lines: "L55-L56 f+1 messages of a higher round: StartRound(round)",
            given: at(2, S::Prevote),
            event: E::RoundSkip(r(6)),
            then: at(2, S::Prevote),
            actions: vec![A::StartRound(r(6))],
        },
        ignored(
            "L55 guard round > round_p",
            at(6, S::Prevote),
            E::RoundSkip(r(6)),
        ),
        // L57–L67.
        Row {
            lines: "L57-L60 timeoutPropose in step propose: prevote nil",
            given: locked(at(2, S::Propose), 1, V),
            event: E::TimeoutPropose(r(2)),
            then: locked(at(2, S::Prevote), 1, V),
            actions: vec![A::Prevote(None)],
        },
        ignored(
            "L58 guard round = round_p",
            at(2, S::Propose),
            E::TimeoutPropose(r(1)),
        ),
        ignored(
            "L58 guard step = propose",
            at(2, S::Prevote),
            E::TimeoutPropose(r(2)),
        ),
        Row {
            lines: "L61-L64 timeoutPrevote in step prevote: precommit nil",
            given: at(2, S::Prevote),
            event: E::TimeoutPrevote(r(2)),
            then: at(2, S::Precommit),
            actions: vec![A::Precommit(None)],
        },
        ignored(
            "L62 guard round = round_p",
            at(2, S::Prevote),
            E::TimeoutPrevote(r(1)),
        ),
        ignored(
            "L62 guard step = prevote",
            at(2, S::Precommit),
            E::TimeoutPrevote(r(2)),
        ),
        Row {
            lines: "L65-L67 timeoutPrecommit: StartRound(round_p + 1)",
            given: at(2, S::Precommit),
            event: E::TimeoutPrecommit(r(2)),
            then: at(2, S::Precommit),
            actions: vec![A::StartRound(r(3))],
        },
        Row {
            lines: "L65-L67 timeoutPrecommit applies in any step",
            given: at(2, S::Propose),
            event: E::TimeoutPrecommit(r(2)),
            then: at(2, S::Propose),
            actions: vec![A::StartRound(r(3))],
        },
        ignored(
            "L66 guard round = round_p",
            at(2, S::Precommit),
            E::TimeoutPrecommit(r(1)),
        ),
        Row {
            lines: "L67 round_p + 1 saturates at the last round instead of wrapping to 0",
            given: at(u32::MAX, S::Precommit),
            event: E::TimeoutPrecommit(Round::MAX),
            then: at(u32::MAX, S::Precommit),
            actions: vec![A::StartRound(Round::MAX)],
        },
    ]
}

#[test]
fn every_rule_of_algorithm_1() {
    let rows = rows();
    for row in &rows {
        let transition = apply(&row.given, row.event);
        assert_eq!(transition.state, row.then, "{}: state", row.lines);
        assert_eq!(transition.actions, row.actions, "{}: actions", row.lines);
    }
    assert!(rows.len() > 40, "the table covers every rule and guard");
}

#[test]
fn apply_is_pure() {
    for row in rows() {
        assert_eq!(
            apply(&row.given, row.event),
            apply(&row.given, row.event),
            "{}",
            row.lines
        );
    }
}
